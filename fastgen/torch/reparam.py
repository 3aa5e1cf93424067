"""``torch.ops.fastgen.reparameterize``: fused reparameterised sampling + KL, with autograd.

``torch.ops.fastgen.reparameterize(mu, logvar, seed, offset) -> (z, kl)``
    mu, logvar  float32/float64 CPU tensors of one shape (n, d), finite
    seed, offset  the Philox key and the call's offset as int64 (two's complement above 2**63);
                  eps of element (r, c) is normal number r * d + c; one offset per call
    z           mu + exp(logvar / 2) * eps, shape (n, d)
    kl          sum_d KL(N(mu, exp(logvar)) || N(0, 1)), shape (n,)

The backward (``torch.ops.fastgen.reparameterize_backward``) regenerates eps from the counters:
nothing but mu and logvar is saved. First derivatives only (a double backward raises).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ._validate import cpu_float_tensor
from ..ops.reparam import reparameterize_backward_numpy, reparameterize_numpy
from ..random import as_generator
from .ops import _signed, _to_u64

def _check(mu: torch.Tensor, logvar: torch.Tensor) -> None:
    for name, t in (("mu", mu), ("logvar", logvar)):
        cpu_float_tensor(t, name, 2, "(batch x latent)")
    if mu.shape != logvar.shape or mu.dtype != logvar.dtype:
        raise ValueError(f"mu and logvar must have the same shape and dtype, got {tuple(mu.shape)} {mu.dtype} "
                         f"and {tuple(logvar.shape)} {logvar.dtype}")


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


@torch.library.custom_op("fastgen::reparameterize", mutates_args=(), device_types="cpu")
def _reparameterize_op(mu: torch.Tensor, logvar: torch.Tensor, seed: int,
                       offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    _check(mu, logvar)
    # NaN / infinity in mu or logvar: the kernel reports them and reparameterize_numpy raises.
    z, kl = reparameterize_numpy(_numpy(mu), _numpy(logvar), _to_u64(seed, "seed"), _to_u64(offset, "offset"))
    return torch.from_numpy(z), torch.from_numpy(kl)


@_reparameterize_op.register_fake
def _(mu, logvar, seed, offset):
    _check(mu, logvar)
    return torch.empty_like(mu), mu.new_empty(mu.shape[:1])


@torch.library.custom_op("fastgen::reparameterize_backward", mutates_args=(), device_types="cpu")
def _reparameterize_backward_op(grad_z: Optional[torch.Tensor], grad_kl: Optional[torch.Tensor], mu: torch.Tensor,
                                logvar: torch.Tensor, seed: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    gz = None if grad_z is None else _numpy(grad_z)
    gk = None if grad_kl is None else _numpy(grad_kl)
    dmu, dlogvar = reparameterize_backward_numpy(gz, gk, _numpy(mu), _numpy(logvar), _to_u64(seed, "seed"),
                                                 _to_u64(offset, "offset"))
    return torch.from_numpy(dmu), torch.from_numpy(dlogvar)


@_reparameterize_backward_op.register_fake
def _(grad_z, grad_kl, mu, logvar, seed, offset):
    return torch.empty_like(mu), torch.empty_like(logvar)


def _setup_context(ctx, inputs, output):
    mu, logvar, seed, offset = inputs
    ctx.save_for_backward(mu, logvar)
    ctx.seed, ctx.offset = seed, offset


def _backward(ctx, grad_z, grad_kl):
    mu, logvar = ctx.saved_tensors
    grad_mu, grad_logvar = torch.ops.fastgen.reparameterize_backward(grad_z, grad_kl, mu, logvar, ctx.seed,
                                                                      ctx.offset)
    return grad_mu, grad_logvar, None, None


_reparameterize_op.register_autograd(_backward, setup_context=_setup_context)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator=None):
    """``(z, kl)`` through ``torch.ops.fastgen.reparameterize``; ``generator`` (a fastgen.Generator,
    int seed or None) gives one offset. Differentiable in mu and logvar."""
    gen = as_generator(generator)
    seed, offset = gen.seed, gen.take()
    return torch.ops.fastgen.reparameterize(mu, logvar, _signed(seed), _signed(offset))
