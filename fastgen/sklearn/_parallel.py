"""The job the estimators train in: a single process, or one rank of a data-parallel job."""
from __future__ import annotations

import contextlib
import contextvars

import numpy as np

_JOB = contextvars.ContextVar("fastgen_data_parallel_job", default=None)


@contextlib.contextmanager
def data_parallel(job):
    """Inside this block, the RBM estimators train as one rank of ``job``.

    ``fit`` and ``partial_fit`` of :class:`BernoulliRBM` and :class:`DBN` (layer by layer) then
    train data-parallel: every rank passes the same X (the same file, memory-mapped, is best:
    each rank reads only its rows of each batch), ``batch_size`` and ``n_chains`` are per rank
    (a step's batch is ``world_size * batch_size`` rows, in X's order, as the one-process run
    with that batch), and one all-reduce per batch gives every rank the same update, so each
    rank ends with the same fitted estimator. The likelihood estimates (``log_partition``,
    ``log_likelihood``, ``likelihood_bounds``) spread their AIS / RAISE chains over the ranks and
    gather the log-weights. :mod:`fastgen.models.data_parallel` says what is bitwise equal to the
    one-process run and what equal to rounding.

    Parameters
    ----------
    job : object with ``rank``, ``world_size``, ``all_reduce(array)``, ``broadcast(array, root)``
        :func:`fastgen.torch.train.distributed.from_environment` returns one for the process
        group ``torchrun`` starts; None trains in this process alone.
    """
    if job is not None:
        for name in ("rank", "world_size", "all_reduce", "broadcast"):
            if not hasattr(job, name):
                raise TypeError(f"job must have rank, world_size, all_reduce and broadcast (a "
                                f"fastgen.torch.train.distributed.Distributed), got {type(job).__name__} without {name}")
    token = _JOB.set(job)
    try:
        yield job
    finally:
        _JOB.reset(token)


def current_job():
    """The job of the enclosing :func:`data_parallel` block, or None."""
    return _JOB.get()


def world_size() -> int:
    job = _JOB.get()
    return 1 if job is None else int(job.world_size)


def same_seed(generator):
    """``generator`` with rank 0's seed on every rank (``random_state=None`` seeds each process
    differently; the ranks must start from the same weights and share one stream)."""
    job = _JOB.get()
    if job is None or job.world_size == 1:
        return generator
    from ..random import Generator

    seed = np.array([generator.seed], dtype=np.uint64).view(np.int64)  # torch's collectives have no uint64
    job.broadcast(seed, 0)
    return Generator(int(seed.view(np.uint64)[0]), generator.offset)


def same_ints(values: list[int]) -> list[int]:
    """``values`` (non-negative ints below 2**63) as rank 0 has them, on every rank."""
    job = _JOB.get()
    if job is None or job.world_size == 1:
        return list(values)
    array = np.array(values, dtype=np.int64)
    job.broadcast(array, 0)
    return [int(v) for v in array]


__all__ = ["current_job", "data_parallel", "same_ints", "same_seed", "world_size"]
