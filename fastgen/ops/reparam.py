"""Reparameterised Gaussian sampling with the KL term, fused (the VAE encoder's output layer).

    z  = mu + exp(logvar / 2) * eps,    eps ~ N(0, I) from the Philox stream
    kl = sum over the last axis of KL(N(mu, exp(logvar)) || N(0, I))

:func:`reparameterize` is the NumPy entry; ``fastgen.torch.reparameterize`` is the torch op
with autograd. The backward draws eps again from (seed, offset) instead of storing it.
"""
from __future__ import annotations

import numpy as np

from .. import _buffers, _cpu
from .._backend import wrap_like
from ..random import as_generator
from ._validate import float_array


def check_mu_logvar(mu, logvar):
    """C-contiguous 2-D float arrays of one dtype and shape (1-D inputs become one row); NaN and
    infinity are left to the kernel (see reparameterize_numpy)."""
    mu_arr = float_array(mu, "mu", ndim=(1, 2), finite=False)
    logvar_arr = float_array(logvar, "logvar", ndim=(1, 2), dtype=mu_arr.dtype, finite=False)
    if mu_arr.shape != logvar_arr.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {mu_arr.shape} and {logvar_arr.shape}")
    return mu_arr.reshape(-1, mu_arr.shape[-1]) if mu_arr.ndim == 1 else mu_arr, \
        logvar_arr.reshape(-1, logvar_arr.shape[-1]) if logvar_arr.ndim == 1 else logvar_arr


def reparameterize_numpy(mu2d: np.ndarray, logvar2d: np.ndarray, seed: int, offset: int):
    """The kernel on 2-D arrays of one shape and dtype: (z, kl). ValueError naming mu or logvar if
    either holds a NaN or infinity (the kernel reports them from the pass that reads them anyway)."""
    z = _buffers.empty(mu2d.shape, mu2d.dtype)
    kl = np.empty(mu2d.shape[0], mu2d.dtype)
    bad = _cpu.C.reparameterize_forward(mu2d, logvar2d, z, kl, seed, offset)
    if bad:
        raise ValueError(f"{'mu' if bad & 1 else 'logvar'} contains NaN or infinity")
    return z, kl


def reparameterize_backward_numpy(grad_z, grad_kl, mu2d, logvar2d, seed: int, offset: int):
    grad_mu = _buffers.empty(mu2d.shape, mu2d.dtype)
    grad_logvar = _buffers.empty(mu2d.shape, mu2d.dtype)
    _cpu.C.reparameterize_backward(grad_z, grad_kl, mu2d, logvar2d, grad_mu, grad_logvar, seed, offset)
    return grad_mu, grad_logvar


def reparameterize(mu, logvar, *, generator=None):
    """Draw z = mu + exp(logvar / 2) * eps and the KL divergence to N(0, I), in one pass.

    Parameters
    ----------
    mu, logvar : arrays of shape (n, d) or (d,), finite
    generator : fastgen.Generator, int or None
        Takes 1 offset; eps of element (r, c) is normal number ``r * d + c`` of the stream.

    Returns
    -------
    z : array of shape like ``mu``
    kl : array of shape (n,) (a scalar array for 1-D input), sum over the last axis
    """
    mu2d, logvar2d = check_mu_logvar(mu, logvar)
    gen = as_generator(generator)
    z, kl = reparameterize_numpy(mu2d, logvar2d, gen.seed, gen.take())
    if np.ndim(mu) == 1:
        z, kl = z.reshape(-1), kl.reshape(())
    return wrap_like(z, mu), wrap_like(kl, mu)
