"""``torch.ops.fastgen.reparameterize``: fused reparameterised sampling + KL, with autograd.

``torch.ops.fastgen.reparameterize(mu, logvar, stream, first_row=0) -> (z, kl)``
    mu, logvar  float32/float64 tensors of one shape (n, d) on one device (CPU or CUDA), finite
    stream      int64 tensor [2]: the Philox seed and the call's offset (two's complement above
                2**63; :func:`fastgen.torch.random.stream_tensor`); eps of element (r, c) is
                normal number (first_row + r) * d + c; one offset per call. A tensor, not two
                ints, so that a compiled model reads its stream buffer instead of guarding on the
                offset's value
    first_row   where the rows sit in a larger batch (a data-parallel rank's share: its rows
                get the eps the whole batch's rows get), default 0
    z           mu + exp(logvar / 2) * eps, shape (n, d)
    kl          sum_d KL(N(mu, exp(logvar)) || N(0, 1)), shape (n,)

The backward (``torch.ops.fastgen.reparameterize_backward``) regenerates eps from the counters:
nothing but mu and logvar is saved. First derivatives only (a double backward raises).

CUDA tensors run kernels/reparam.cu on torch's current stream (CuPy views through DLPack, no
copies of contiguous tensors; see :mod:`fastgen.ops.reparam`): the same eps as on the CPU, so z
and the gradients are the CPU's bit for bit and kl agrees to rounding. Without CuPy or a usable
device they raise a TypeError naming the tensor; tensors on two devices, a ValueError naming
both. The NaN / infinity check costs a host synchronisation per forward call on CUDA.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..._checks import as_generator
from ._library import custom_op
from .stream import check_stream as _check_stream, stream_values as _stream_values
from ._validate import cpu_float_tensor, cuda_arrays, float_tensor, on_torch_stream, same_device, tensor_like, tensors
from ...ops.reparam import (check_first_row, reparameterize_backward_cupy, reparameterize_backward_numpy, reparameterize_cupy,
                            reparameterize_numpy)


def _same_layout(mu: torch.Tensor, logvar: torch.Tensor) -> None:
    if mu.shape != logvar.shape or mu.dtype != logvar.dtype:
        raise ValueError(f"mu and logvar must have the same shape and dtype, got {tuple(mu.shape)} {mu.dtype} "
                         f"and {tuple(logvar.shape)} {logvar.dtype}")


def _check(mu: torch.Tensor, logvar: torch.Tensor) -> None:
    """The CPU kernel's checks (the dispatcher sends it CPU tensors only, so no device checks)."""
    for name, t in (("mu", mu), ("logvar", logvar)):
        cpu_float_tensor(t, name, 2, "(batch x latent)")
    _same_layout(mu, logvar)


def _check_any(mu: torch.Tensor, logvar: torch.Tensor) -> None:
    """:func:`_check` on any device (the CUDA and fake kernels), plus one device for both."""
    for name, t in (("mu", mu), ("logvar", logvar)):
        float_tensor(t, name, 2, "(batch x latent)")
    same_device("mu", mu, logvar=logvar)
    _same_layout(mu, logvar)


def _check_backward(grad_z, grad_kl, mu, logvar) -> None:
    """The backward op's tensors against the forward's layout (any device): mu and logvar as
    :func:`_check_any`, grad_z mu's shape and grad_kl one value per row (each may be None)."""
    _check_any(mu, logvar)
    same_device("mu", mu, grad_z=grad_z, grad_kl=grad_kl)
    if grad_z is not None:
        tensor_like(grad_z, "grad_z", mu.shape, mu.dtype, "(mu's)")
    if grad_kl is not None:
        tensor_like(grad_kl, "grad_kl", mu.shape[:1], mu.dtype, "(one value per row of mu)")


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


@custom_op("reparameterize")
def _reparameterize_cpu(mu: torch.Tensor, logvar: torch.Tensor, stream: torch.Tensor,
                        first_row: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    _check(mu, logvar)
    _check_stream(stream)
    first_row = check_first_row(first_row)
    # NaN / infinity in mu or logvar: the kernel reports them and reparameterize_numpy raises.
    z, kl = reparameterize_numpy(_numpy(mu), _numpy(logvar), *_stream_values(stream), first_row)
    return torch.from_numpy(z), torch.from_numpy(kl)


@custom_op("reparameterize_backward")
def _reparameterize_backward_cpu(grad_z: Optional[torch.Tensor], grad_kl: Optional[torch.Tensor], mu: torch.Tensor,
                                 logvar: torch.Tensor, stream: torch.Tensor,
                                 first_row: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    _check_backward(grad_z, grad_kl, mu, logvar)
    _check_stream(stream)
    first_row = check_first_row(first_row)
    gz = None if grad_z is None else _numpy(grad_z)
    gk = None if grad_kl is None else _numpy(grad_kl)
    dmu, dlogvar = reparameterize_backward_numpy(gz, gk, _numpy(mu), _numpy(logvar), *_stream_values(stream),
                                                 first_row)
    return torch.from_numpy(dmu), torch.from_numpy(dlogvar)


@_reparameterize_cpu.register_kernel("cuda")
def _reparameterize_cuda(mu, logvar, stream, first_row=0):
    _check_any(mu, logvar)
    _check_stream(stream)
    first_row = check_first_row(first_row)
    seed_u, offset_u = _stream_values(stream)
    with on_torch_stream(mu, "mu"):
        m, lv = cuda_arrays(("mu", mu), ("logvar", logvar))
        z, kl = reparameterize_cupy(m, lv, seed_u, offset_u, first_row)
        return torch.from_dlpack(z), torch.from_dlpack(kl)


@_reparameterize_backward_cpu.register_kernel("cuda")
def _reparameterize_backward_cuda(grad_z, grad_kl, mu, logvar, stream, first_row=0):
    _check_backward(grad_z, grad_kl, mu, logvar)
    _check_stream(stream)
    first_row = check_first_row(first_row)
    seed_u, offset_u = _stream_values(stream)
    with on_torch_stream(mu, "mu"):
        gz, gk, m, lv = cuda_arrays(("grad_z", grad_z), ("grad_kl", grad_kl), ("mu", mu), ("logvar", logvar))
        dmu, dlogvar = reparameterize_backward_cupy(gz, gk, m, lv, seed_u, offset_u, first_row)
        return torch.from_dlpack(dmu), torch.from_dlpack(dlogvar)


@_reparameterize_cpu.register_fake
def _(mu, logvar, stream, first_row=0):
    _check_any(mu, logvar)
    _check_stream(stream)
    if isinstance(first_row, int):  # a SymInt under dynamic shapes has no value to check
        check_first_row(first_row)
    return torch.empty_like(mu), mu.new_empty(mu.shape[:1])


@_reparameterize_backward_cpu.register_fake
def _(grad_z, grad_kl, mu, logvar, stream, first_row=0):
    _check_backward(grad_z, grad_kl, mu, logvar)
    _check_stream(stream)
    if isinstance(first_row, int):
        check_first_row(first_row)
    return torch.empty_like(mu), torch.empty_like(logvar)


def _setup(ctx, inputs, output):
    """Saves mu and logvar (not eps) and the stream; the backward op draws eps again from it.
    Callers that advance their stream tensor pass a :func:`~.stream.stream_snapshot` of it."""
    mu, logvar, stream, *rest = inputs
    ctx.save_for_backward(mu, logvar, stream)
    ctx.first_row = rest[0] if rest else 0


def _backward(ctx, grad_z, grad_kl):
    mu, logvar, stream = ctx.saved_tensors
    grad_mu, grad_logvar = torch.ops.fastgen.reparameterize_backward(grad_z, grad_kl, mu, logvar, stream,
                                                                     ctx.first_row)
    return grad_mu, grad_logvar, None, None


# An output nobody used gets None, not zeros: the backward kernel then skips its term (with only
# kl used it draws no eps at all).
_reparameterize_cpu.register_autograd(_backward, setup_context=_setup, materialize_grads=False)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator=None, first_row: int = 0):
    """``(z, kl)`` through ``torch.ops.fastgen.reparameterize``; ``generator`` (a fastgen.Generator,
    int seed or None) gives one offset. Differentiable in mu and logvar. In compiled code pass a
    stream tensor to the op instead (as the VAEs do): a Generator's offset is a Python int, which
    torch.compile guards on."""
    from .stream import stream_tensor

    tensors(mu=mu, logvar=logvar)
    gen = as_generator(generator)
    seed, offset = gen.seed, gen.take()
    return torch.ops.fastgen.reparameterize(mu, logvar, stream_tensor(seed, offset), first_row)
