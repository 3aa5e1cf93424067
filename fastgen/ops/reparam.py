"""Reparameterised Gaussian sampling with the KL term, fused (the VAE encoder's output layer).

    z  = mu + exp(logvar / 2) * eps,    eps ~ N(0, I) from the Philox stream
    kl = sum over the last axis of KL(N(mu, exp(logvar)) || N(0, I))

:func:`reparameterize` is the NumPy entry; ``fastgen.torch.reparameterize`` is the torch op
with autograd. The backward draws eps again from (seed, offset) instead of storing it.

CUDA input (CuPy, torch CUDA tensors, DLPack / ``__cuda_array_interface__`` producers) runs
kernels/reparam.cu on the caller's current stream (:mod:`fastgen._native.cuda_reparam`). eps of element (r, c)
is the same Philox normal as on the CPU, so z and both gradients are the CPU's bit for bit; the
KL row sums add the same terms in another order (a warp's shuffle tree), so they agree with the
CPU's to rounding. A NaN or infinity in mu or logvar raises the CPU's ValueError, found the same
way (a non-finite KL row sends the inputs to be searched: one device reduction and a host
synchronisation per call).
"""
from __future__ import annotations

import numpy as np

from .. import _buffers
from .._native import cpu as _cpu
from .._backend import placement, wrap_like
from .._checks import as_generator
from .validation import float_array, float_array_cuda


def _as_rows(mu_arr, logvar_arr):
    if mu_arr.shape != logvar_arr.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {mu_arr.shape} and {logvar_arr.shape}")
    # one row of d (reshape(-1, d) fails for d = 0: "cannot reshape array of size 0")
    return mu_arr.reshape(1, mu_arr.shape[-1]) if mu_arr.ndim == 1 else mu_arr, \
        logvar_arr.reshape(1, logvar_arr.shape[-1]) if logvar_arr.ndim == 1 else logvar_arr


def check_mu_logvar(mu, logvar):
    """C-contiguous 2-D float arrays of one dtype and shape (1-D inputs become one row); NaN and
    infinity are left to the kernel (see reparameterize_numpy)."""
    mu_arr = float_array(mu, "mu", ndim=(1, 2), finite=False)
    logvar_arr = float_array(logvar, "logvar", ndim=(1, 2), dtype=mu_arr.dtype, finite=False)
    return _as_rows(mu_arr, logvar_arr)


def check_mu_logvar_cuda(mu, logvar):
    """:func:`check_mu_logvar` for CuPy arrays: the same rules and messages."""
    mu_arr = float_array_cuda(mu, "mu", ndim=(1, 2), finite=False)
    logvar_arr = float_array_cuda(logvar, "logvar", ndim=(1, 2), dtype=mu_arr.dtype, finite=False)
    return _as_rows(mu_arr, logvar_arr)


def check_first_row(first_row) -> int:
    """``first_row``: an int >= 0 (where the rows sit in a larger batch, e.g. a data-parallel rank's share)."""
    import numbers

    if isinstance(first_row, bool) or not isinstance(first_row, numbers.Integral) or first_row < 0:
        raise ValueError(f"first_row must be an integer >= 0, got {first_row!r}")
    return int(first_row)


def reparameterize_numpy(mu2d: np.ndarray, logvar2d: np.ndarray, seed: int, offset: int, first_row: int = 0):
    """The kernel on 2-D arrays of one shape and dtype: (z, kl). ValueError naming mu or logvar if
    either holds a NaN or infinity (the kernel reports them from the pass that reads them anyway)."""
    z = _buffers.empty(mu2d.shape, mu2d.dtype)
    kl = np.empty(mu2d.shape[0], mu2d.dtype)
    bad = _cpu.C.reparameterize_forward(mu2d, logvar2d, z, kl, seed, offset, first_row)
    if bad:
        raise ValueError(f"{'mu' if bad & 1 else 'logvar'} contains NaN or infinity")
    return z, kl


def reparameterize_backward_numpy(grad_z, grad_kl, mu2d, logvar2d, seed: int, offset: int, first_row: int = 0):
    grad_mu = _buffers.empty(mu2d.shape, mu2d.dtype)
    grad_logvar = _buffers.empty(mu2d.shape, mu2d.dtype)
    _cpu.C.reparameterize_backward(grad_z, grad_kl, mu2d, logvar2d, grad_mu, grad_logvar, seed, offset, first_row)
    return grad_mu, grad_logvar


def reparameterize(mu, logvar, *, generator=None, first_row: int = 0):
    """Draw z = mu + exp(logvar / 2) * eps and the KL divergence to N(0, I), in one pass.

    Parameters
    ----------
    mu, logvar : arrays of shape (n, d) or (d,), finite
    generator : fastgen.Generator, int or None
        Takes 1 offset; eps of element (r, c) is normal number ``(first_row + r) * d + c`` of the
        stream.
    first_row : int, default=0
        Where these rows sit in a larger batch: rows a..b of a batch drawn with ``first_row=a``
        get the eps that rows a..b of the whole batch get (data-parallel ranks use it).

    Returns
    -------
    z : array of shape like ``mu``
    kl : array of shape (n,) (a scalar array for 1-D input), sum over the last axis
    """
    first_row = check_first_row(first_row)
    pl = placement(mu=mu, logvar=logvar)
    if pl.cuda:
        with pl.activate():
            mu_arr = pl.array(mu, "mu")
            mu2d, logvar2d = check_mu_logvar_cuda(mu_arr, pl.array(logvar, "logvar"))
            one_row = mu_arr.ndim == 1
            gen = as_generator(generator)
            z, kl = reparameterize_cupy(mu2d, logvar2d, gen.seed, gen.take(), first_row)
            if one_row:
                z, kl = z.reshape(-1), kl.reshape(())
            return pl.wrap(z), pl.wrap(kl)
    mu2d, logvar2d = check_mu_logvar(mu, logvar)
    gen = as_generator(generator)
    z, kl = reparameterize_numpy(mu2d, logvar2d, gen.seed, gen.take(), first_row)
    if np.ndim(mu) == 1:
        z, kl = z.reshape(-1), kl.reshape(())
    return wrap_like(z, mu), wrap_like(kl, mu)


# ---- CUDA (CuPy arrays; also the torch op's CUDA kernels) -----------------------------------
def reparameterize_cupy(mu2d, logvar2d, seed: int, offset: int, first_row: int = 0):
    """:func:`reparameterize_numpy` on C-contiguous 2-D CuPy arrays of one shape and dtype, on
    CuPy's current stream; the same ValueError for a NaN or infinity in mu or logvar."""
    import cupy as cp

    from .._native import cuda_vae as _cuda_vae
    from .elbo import check_inputs_if_not_finite_cuda

    z = cp.empty(mu2d.shape, mu2d.dtype)
    kl = cp.empty(mu2d.shape[0], mu2d.dtype)
    _cuda_vae.reparameterize(mu2d, logvar2d, z, kl, seed=seed, offset=offset, first_row=first_row)
    # The kernel cannot raise: as on the CPU, a non-finite input always makes its row's KL
    # non-finite (mu^2, -logvar), so the inputs are searched only when some row sum is, and a
    # finite input whose KL overflows is not an error. mu is named first, as on the CPU.
    check_inputs_if_not_finite_cuda(kl, (("mu", mu2d), ("logvar", logvar2d)))
    return z, kl


def _check_backward_cuda(grad_z, grad_kl, mu2d, logvar2d) -> None:
    # fastgen._C refuses these mismatches itself (the same size rule); the CUDA kernel trusts
    # its arguments and would read out of bounds.
    rows, cols = mu2d.shape
    for name, a, size in (("grad_z", grad_z, rows * cols), ("grad_kl", grad_kl, rows),
                          ("logvar", logvar2d, rows * cols)):
        if a is None:
            continue
        if a.dtype != mu2d.dtype:
            raise TypeError(f"{name} must have mu's dtype {mu2d.dtype}, got {a.dtype}")
        if a.size != size:
            raise ValueError(f"{name} must have {size} elements (mu is {rows} x {cols}), got shape {tuple(a.shape)}")


def reparameterize_backward_cupy(grad_z, grad_kl, mu2d, logvar2d, seed: int, offset: int, first_row: int = 0):
    """:func:`reparameterize_backward_numpy` on C-contiguous CuPy arrays (grad_z and/or grad_kl
    may be None): bitwise the CPU's gradients."""
    import cupy as cp

    from .._native import cuda_vae as _cuda_vae

    _check_backward_cuda(grad_z, grad_kl, mu2d, logvar2d)
    grad_mu = cp.empty(mu2d.shape, mu2d.dtype)
    grad_logvar = cp.empty(mu2d.shape, mu2d.dtype)
    _cuda_vae.reparameterize_backward(grad_z, grad_kl, mu2d, logvar2d, grad_mu, grad_logvar, seed=seed,
                                      offset=offset, first_row=first_row)
    return grad_mu, grad_logvar
