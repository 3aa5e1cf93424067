"""``torch.ops.fastgen.reparameterize``: fused reparameterised sampling + KL, with autograd.

``torch.ops.fastgen.reparameterize(mu, logvar, seed, offset) -> (z, kl)``
    mu, logvar  float32/float64 tensors of one shape (n, d) on one device (CPU or CUDA), finite
    seed, offset  the Philox key and the call's offset as int64 (two's complement above 2**63);
                  eps of element (r, c) is normal number r * d + c; one offset per call
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
from ._library import custom_op, int64_from_uint64, uint64_from_int64
from ._validate import cpu_float_tensor, cuda_arrays, float_tensor, on_torch_stream, same_device, tensor_like
from ...ops.reparam import (reparameterize_backward_cupy, reparameterize_backward_numpy, reparameterize_cupy,
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
def _reparameterize_cpu(mu: torch.Tensor, logvar: torch.Tensor, seed: int,
                        offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    _check(mu, logvar)
    # NaN / infinity in mu or logvar: the kernel reports them and reparameterize_numpy raises.
    z, kl = reparameterize_numpy(_numpy(mu), _numpy(logvar), uint64_from_int64(seed, "seed"),
                                 uint64_from_int64(offset, "offset"))
    return torch.from_numpy(z), torch.from_numpy(kl)


@custom_op("reparameterize_backward")
def _reparameterize_backward_cpu(grad_z: Optional[torch.Tensor], grad_kl: Optional[torch.Tensor], mu: torch.Tensor,
                                 logvar: torch.Tensor, seed: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    _check_backward(grad_z, grad_kl, mu, logvar)
    gz = None if grad_z is None else _numpy(grad_z)
    gk = None if grad_kl is None else _numpy(grad_kl)
    dmu, dlogvar = reparameterize_backward_numpy(gz, gk, _numpy(mu), _numpy(logvar), uint64_from_int64(seed, "seed"),
                                                 uint64_from_int64(offset, "offset"))
    return torch.from_numpy(dmu), torch.from_numpy(dlogvar)


@_reparameterize_cpu.register_kernel("cuda")
def _reparameterize_cuda(mu, logvar, seed, offset):
    _check_any(mu, logvar)
    seed_u, offset_u = uint64_from_int64(seed, "seed"), uint64_from_int64(offset, "offset")
    with on_torch_stream(mu, "mu"):
        m, lv = cuda_arrays(("mu", mu), ("logvar", logvar))
        z, kl = reparameterize_cupy(m, lv, seed_u, offset_u)
        return torch.from_dlpack(z), torch.from_dlpack(kl)


@_reparameterize_backward_cpu.register_kernel("cuda")
def _reparameterize_backward_cuda(grad_z, grad_kl, mu, logvar, seed, offset):
    _check_backward(grad_z, grad_kl, mu, logvar)
    seed_u, offset_u = uint64_from_int64(seed, "seed"), uint64_from_int64(offset, "offset")
    with on_torch_stream(mu, "mu"):
        gz, gk, m, lv = cuda_arrays(("grad_z", grad_z), ("grad_kl", grad_kl), ("mu", mu), ("logvar", logvar))
        dmu, dlogvar = reparameterize_backward_cupy(gz, gk, m, lv, seed_u, offset_u)
        return torch.from_dlpack(dmu), torch.from_dlpack(dlogvar)


@_reparameterize_cpu.register_fake
def _(mu, logvar, seed, offset):
    _check_any(mu, logvar)
    return torch.empty_like(mu), mu.new_empty(mu.shape[:1])


@_reparameterize_backward_cpu.register_fake
def _(grad_z, grad_kl, mu, logvar, seed, offset):
    _check_backward(grad_z, grad_kl, mu, logvar)
    return torch.empty_like(mu), torch.empty_like(logvar)


def _setup(ctx, inputs, output):
    """Saves mu and logvar (not eps); the backward op draws eps again from (seed, offset)."""
    mu, logvar, seed, offset = inputs
    ctx.save_for_backward(mu, logvar)
    ctx.seed, ctx.offset = seed, offset


def _backward(ctx, grad_z, grad_kl):
    mu, logvar = ctx.saved_tensors
    grad_mu, grad_logvar = torch.ops.fastgen.reparameterize_backward(grad_z, grad_kl, mu, logvar, ctx.seed, ctx.offset)
    return grad_mu, grad_logvar, None, None


# An output nobody used gets None, not zeros: the backward kernel then skips its term (with only
# kl used it draws no eps at all).
_reparameterize_cpu.register_autograd(_backward, setup_context=_setup, materialize_grads=False)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator=None):
    """``(z, kl)`` through ``torch.ops.fastgen.reparameterize``; ``generator`` (a fastgen.Generator,
    int seed or None) gives one offset. Differentiable in mu and logvar."""
    gen = as_generator(generator)
    seed, offset = gen.seed, gen.take()
    return torch.ops.fastgen.reparameterize(mu, logvar, int64_from_uint64(seed), int64_from_uint64(offset))
