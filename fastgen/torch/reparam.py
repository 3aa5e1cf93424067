"""``torch.ops.fastgen.reparameterize``: fused reparameterised sampling + KL, with autograd.

``torch.ops.fastgen.reparameterize(mu, logvar, seed, offset) -> (z, kl)``
    mu, logvar  float32/float64 tensors of one shape (n, d) on one device (CPU or CUDA), finite
    seed, offset  the Philox key and the call's offset as int64 (two's complement above 2**63);
                  eps of element (r, c) is normal number r * d + c; one offset per call
    z           mu + exp(logvar / 2) * eps, shape (n, d)
    kl          sum_d KL(N(mu, exp(logvar)) || N(0, 1)), shape (n,)

The backward (``torch.ops.fastgen.reparameterize_backward``) regenerates eps from the counters:
nothing but mu and logvar is saved. First derivatives only (a double backward raises).

CUDA tensors run kernels/vae.cu on torch's current stream (CuPy views through DLPack, no
copies of contiguous tensors; see :mod:`fastgen.ops.reparam`): the same eps as on the CPU, so z
and the gradients are the CPU's bit for bit and kl agrees to rounding. Without CuPy or a usable
device they raise a TypeError naming the tensor; tensors on two devices, a ValueError naming
both. The NaN / infinity check costs a host synchronisation per forward call on CUDA.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ._validate import cpu_float_tensor, cuda_arrays, float_tensor, on_torch_stream, same_device, tensor_like
from ..ops.reparam import (reparameterize_backward_cupy, reparameterize_backward_numpy, reparameterize_cupy,
                           reparameterize_numpy)
from ..ops.validation import as_generator
from .ops import _signed, _to_u64

def _same_layout(mu: torch.Tensor, logvar: torch.Tensor) -> None:
    if mu.shape != logvar.shape or mu.dtype != logvar.dtype:
        raise ValueError(f"mu and logvar must have the same shape and dtype, got {tuple(mu.shape)} {mu.dtype} "
                         f"and {tuple(logvar.shape)} {logvar.dtype}")


def _check(mu: torch.Tensor, logvar: torch.Tensor) -> None:
    """The CPU kernel's checks (kept apart from :func:`_check_any`: the CPU call is timed, and
    the dispatcher sends it CPU tensors only)."""
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


# Registered through torch.library.Library with an autograd.Function of our own rather than
# torch.library.custom_op: the op is small enough at VAE sizes (4096 x 64: about 0.1 ms of
# kernel per direction) that custom_op's per-call Python layers (default filling, keyset
# bookkeeping, output alias checks, in both ops) were a measurable share of the call; this
# path keeps the schema, the fake kernels, opcheck and torch.compile support, with fewer layers.
# Each device has its kernel through _lib.impl(name, fn, "CPU" / "CUDA").
_lib = torch.library.Library("fastgen", "FRAGMENT")
_lib.define("reparameterize(Tensor mu, Tensor logvar, SymInt seed, SymInt offset) -> (Tensor, Tensor)")
_lib.define("reparameterize_backward(Tensor? grad_z, Tensor? grad_kl, Tensor mu, Tensor logvar, SymInt seed, "
            "SymInt offset) -> (Tensor, Tensor)")


def _reparameterize_cpu(mu: torch.Tensor, logvar: torch.Tensor, seed: int,
                        offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    _check(mu, logvar)
    # NaN / infinity in mu or logvar: the kernel reports them and reparameterize_numpy raises.
    z, kl = reparameterize_numpy(_numpy(mu), _numpy(logvar), _to_u64(seed, "seed"), _to_u64(offset, "offset"))
    return torch.from_numpy(z), torch.from_numpy(kl)


def _reparameterize_backward_cpu(grad_z: Optional[torch.Tensor], grad_kl: Optional[torch.Tensor], mu: torch.Tensor,
                                 logvar: torch.Tensor, seed: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    _check_backward(grad_z, grad_kl, mu, logvar)
    gz = None if grad_z is None else _numpy(grad_z)
    gk = None if grad_kl is None else _numpy(grad_kl)
    dmu, dlogvar = reparameterize_backward_numpy(gz, gk, _numpy(mu), _numpy(logvar), _to_u64(seed, "seed"),
                                                 _to_u64(offset, "offset"))
    return torch.from_numpy(dmu), torch.from_numpy(dlogvar)


_lib.impl("reparameterize", _reparameterize_cpu, "CPU")
_lib.impl("reparameterize_backward", _reparameterize_backward_cpu, "CPU")


# The dispatcher picks the CUDA kernel whenever any tensor argument is on CUDA, so a CUDA/CPU
# mix arrives here (and is refused by _check_any / same_device), never at the CPU kernel.
def _reparameterize_cuda(mu: torch.Tensor, logvar: torch.Tensor, seed: int,
                         offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    _check_any(mu, logvar)
    seed_u, offset_u = _to_u64(seed, "seed"), _to_u64(offset, "offset")
    with on_torch_stream(mu, "mu"):
        m, lv = cuda_arrays(("mu", mu), ("logvar", logvar))
        z, kl = reparameterize_cupy(m, lv, seed_u, offset_u)
        return torch.from_dlpack(z), torch.from_dlpack(kl)


def _reparameterize_backward_cuda(grad_z: Optional[torch.Tensor], grad_kl: Optional[torch.Tensor],
                                  mu: torch.Tensor, logvar: torch.Tensor, seed: int,
                                  offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    _check_backward(grad_z, grad_kl, mu, logvar)
    seed_u, offset_u = _to_u64(seed, "seed"), _to_u64(offset, "offset")
    with on_torch_stream(mu, "mu"):
        gz, gk, m, lv = cuda_arrays(("grad_z", grad_z), ("grad_kl", grad_kl), ("mu", mu), ("logvar", logvar))
        dmu, dlogvar = reparameterize_backward_cupy(gz, gk, m, lv, seed_u, offset_u)
        return torch.from_dlpack(dmu), torch.from_dlpack(dlogvar)


_lib.impl("reparameterize", _reparameterize_cuda, "CUDA")
_lib.impl("reparameterize_backward", _reparameterize_backward_cuda, "CUDA")


@torch.library.register_fake("fastgen::reparameterize", lib=_lib)
def _(mu, logvar, seed, offset):
    _check_any(mu, logvar)
    return torch.empty_like(mu), mu.new_empty(mu.shape[:1])


@torch.library.register_fake("fastgen::reparameterize_backward", lib=_lib)
def _(grad_z, grad_kl, mu, logvar, seed, offset):
    _check_backward(grad_z, grad_kl, mu, logvar)
    return torch.empty_like(mu), torch.empty_like(logvar)


class _Reparameterize(torch.autograd.Function):
    """Saves mu and logvar (not eps); the backward op draws eps again from (seed, offset)."""

    @staticmethod
    def forward(ctx, mu, logvar, seed, offset):
        with torch._C._AutoDispatchBelowAutograd():  # on to the CPU / CUDA / fake kernel, not back here
            z, kl = torch.ops.fastgen.reparameterize(mu, logvar, seed, offset)
        ctx.save_for_backward(mu, logvar)
        ctx.seed, ctx.offset = seed, offset
        # An output nobody used gets None, not zeros: the backward kernel then skips its term
        # (with only kl used it draws no eps at all).
        ctx.set_materialize_grads(False)
        return z, kl

    @staticmethod
    def backward(ctx, grad_z, grad_kl):
        mu, logvar = ctx.saved_tensors
        # The backward op's autograd kernel, called directly: one dispatcher round trip less.
        grad_mu, grad_logvar = _backward_autograd(grad_z, grad_kl, mu, logvar, ctx.seed, ctx.offset)
        return grad_mu, grad_logvar, None, None


class _FirstDerivativesOnly(torch.autograd.Function):
    """The backward op when its own result needs a gradient (create_graph=True): runs it, and
    raises if that gradient is then asked for, rather than letting autograd treat it as constant."""

    @staticmethod
    def forward(ctx, grad_z, grad_kl, mu, logvar, seed, offset):
        with torch._C._AutoDispatchBelowAutograd():
            return torch.ops.fastgen.reparameterize_backward(grad_z, grad_kl, mu, logvar, seed, offset)

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("fastgen::reparameterize has first derivatives only: a double backward (through "
                           "fastgen::reparameterize_backward) is not supported")


def _backward_autograd(grad_z, grad_kl, mu, logvar, seed, offset):
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (grad_z, grad_kl, mu, logvar)):
        return _FirstDerivativesOnly.apply(grad_z, grad_kl, mu, logvar, seed, offset)
    with torch._C._AutoDispatchBelowAutograd():  # an ordinary backward pass: no graph to record
        return torch.ops.fastgen.reparameterize_backward(grad_z, grad_kl, mu, logvar, seed, offset)


_lib.impl("reparameterize", _Reparameterize.apply, "Autograd")
_lib.impl("reparameterize_backward", _backward_autograd, "Autograd")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator=None):
    """``(z, kl)`` through ``torch.ops.fastgen.reparameterize``; ``generator`` (a fastgen.Generator,
    int seed or None) gives one offset. Differentiable in mu and logvar."""
    gen = as_generator(generator)
    seed, offset = gen.seed, gen.take()
    return torch.ops.fastgen.reparameterize(mu, logvar, _signed(seed), _signed(offset))
