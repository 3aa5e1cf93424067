"""Data-parallel training on torch.distributed, as ``torchrun`` launches it.

``torchrun --nproc-per-node N -m fastgen train vae ...`` starts N processes; each calls
:func:`from_environment`, which joins the process group (gloo: CPU tensors) from torchrun's
environment. The trainers then share every step's batch out, one slice of it per rank:

* ``--batch-size`` is per process (as with torch's DistributedSampler): a step's global batch is
  N times that many rows, in the single-process run's shuffled order, and rank k takes rows
  [k * B, (k + 1) * B) of it (a short last batch as evenly as it goes);
* the model runs under ``DistributedDataParallel``, which averages the gradients; each rank's
  loss is scaled by its share of the global batch, so the update is the single process's with
  the global batch, to rounding (the order of the sums differs). Adam turns a rounding-size
  difference in a gradient near zero into a learning-rate-size difference in that parameter, so
  long runs drift apart at that scale (the digits VAE: 4e-7 after 26 steps, up to 3e-3 after 52);
* fastgen's random stream stays global: a VAE's rank draws with ``first_row`` = its first row's
  place in the global batch, so every row gets the eps the single process gives it; torch's own
  random numbers (dropout, a denoising autoencoder's noise, batch norm's per-rank statistics) are
  per rank and do not match the single process;
* rank 0 prints, evaluates and writes checkpoints and PNGs (an evaluation draws from a VAE's
  stream, so the other ranks then take rank 0's buffers); every collective times out after
  ``FASTGEN_DIST_TIMEOUT`` seconds (default 600), so a lost rank fails the job instead of hanging it.
"""
from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass

import torch

DEFAULT_TIMEOUT_S = 600


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> tuple[int, int]:
        """Rows [start, stop) of a global batch of ``n`` rows that this rank trains on (sizes
        differ by at most one; a rank may get none of a short last batch)."""
        from ...models.data_parallel import share

        return share(n, self.rank, self.world_size)

    def sum(self, value: float) -> float:
        """The sum of ``value`` over the ranks."""
        t = torch.tensor([float(value)], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return float(t.item())

    def barrier(self) -> None:
        torch.distributed.barrier()

    def all_reduce(self, array) -> None:
        """``array`` (a writeable C-contiguous NumPy array) becomes its sum over the ranks, in
        place: the collective fastgen.sklearn.data_parallel training calls once per batch."""
        torch.distributed.all_reduce(torch.from_numpy(array))

    def broadcast(self, array, root: int = 0) -> None:
        """``array`` (NumPy, in place) becomes rank ``root``'s."""
        torch.distributed.broadcast(torch.from_numpy(array), root)

    def average_gradients(self, params) -> None:
        """Each parameter's gradient becomes the mean over the ranks (one all-reduce of all of
        them, flattened): for trainers whose steps DistributedDataParallel cannot wrap (a GAN's
        generator step backpropagates through the discriminator without its gradients). A
        parameter without a gradient counts as zeros."""
        params = [p for p in params if p.requires_grad]
        if not params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.world_size
        at = 0
        for p, g in zip(params, grads):
            n = g.numel()
            p.grad = flat[at:at + n].view_as(p).clone()
            at += n

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Every rank takes rank 0's buffers (a VAE's stream after rank 0 alone evaluated)."""
        for buffer in module.buffers():
            torch.distributed.broadcast(buffer, 0)


def from_environment() -> Distributed | None:
    """The job torchrun started (joining its process group once), or None for a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        timeout = float(os.environ.get("FASTGEN_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=timeout))
    return Distributed(dist.get_rank(), dist.get_world_size())


def close(job: Distributed | None, *, failed: bool | None = None) -> None:
    """Leave the process group: after waiting for every rank, or at once when this rank failed:
    a failed rank must exit, so that torchrun stops the others, rather than wait at a barrier for
    ranks blocked in a collective. ``failed`` None: whether an exception is on its way out (as in
    ``try: ... finally: close(job)``)."""
    if failed is None:
        failed = sys.exc_info()[0] is not None
    if job is not None and torch.distributed.is_initialized():
        if not failed:
            job.barrier()
        torch.distributed.destroy_process_group()


def run_command(body, *args):
    """``body(*args, job)``, a command's work, in this process or as one rank of the torchrun job
    (joined here, left when it returns): the other ranks' standard output is dropped, so rank 0
    alone prints."""
    import contextlib
    import io

    job = from_environment()
    failed = True
    try:
        if job is None or job.is_main:
            result = body(*args, job)
        else:
            with contextlib.redirect_stdout(io.StringIO()):
                result = body(*args, job)
        failed = False
        return result
    finally:
        close(job, failed=failed)


class LossModule(torch.nn.Module):
    """``model.loss(batch)`` as a forward pass, for DistributedDataParallel to wrap (it hooks the
    model's parameters through this module); passes ``first_row`` to the models that take it."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        import inspect

        self._takes_first_row = "first_row" in inspect.signature(model.loss).parameters

    def forward(self, batch: torch.Tensor, first_row: int = 0) -> torch.Tensor:
        if self._takes_first_row:
            return self.model.loss(batch, first_row=first_row)
        return self.model.loss(batch)


def data_parallel(model: torch.nn.Module) -> torch.nn.Module:
    """``model.loss`` under DistributedDataParallel (CPU, gloo)."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(LossModule(model))


__all__ = ["Distributed", "from_environment", "close", "run_command", "data_parallel", "LossModule",
           "DEFAULT_TIMEOUT_S"]
