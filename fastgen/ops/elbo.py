"""The reconstruction terms of a VAE's ELBO as fused per-sample reductions.

    bernoulli_log_likelihood(x, logits)        = sum_features  x * l - softplus(l)
    gaussian_log_likelihood(x, mean, logvar)   = sum_features -(log 2 pi + v + (x - m)^2 e^-v) / 2

The first axis is the sample; every other axis is summed (images stay (n, C, H, W)). The
Bernoulli term is the negative binary cross-entropy with logits, and is a proper
log-likelihood for x in {0, 1} (for grey levels in [0, 1], the usual relaxation). The Gaussian
log-variance is per element (x's shape), per feature (x's shape without the first axis) or
absent (unit variance). ``fastgen.torch.bernoulli_log_likelihood`` / ``gaussian_log_likelihood``
are the torch ops with autograd.

CUDA input (CuPy, torch CUDA tensors, DLPack / ``__cuda_array_interface__`` producers) runs
kernels/elbo.cu on the caller's current stream (:mod:`fastgen._native.cuda_elbo`): the same per-element
formulas (shared headers), each row summed in double in a fixed order, so results repeat bit
for bit and agree with the CPU's to double rounding (bitwise for float32 rows whose double sums
are exact); the backward passes are bitwise the CPU's.
"""
from __future__ import annotations

import numpy as np

from .._native import cpu as _cpu
from .._backend import placement, wrap_like
from .validation import check_finite, float_array, float_array_cuda


def _rows(a: np.ndarray) -> np.ndarray:
    return a.reshape(1, -1) if a.ndim == 1 else a.reshape(a.shape[0], int(np.prod(a.shape[1:])))


def check_unit_interval(x2d: np.ndarray, name: str = "x") -> None:
    """ValueError unless every value of ``x2d`` lies in [0, 1] (a Bernoulli decoder's data)."""
    if x2d.size and (x2d.min() < 0 or x2d.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1] for a Bernoulli likelihood, got values in "
                         f"[{x2d.min():g}, {x2d.max():g}]")


def check_logvar_shape(logvar_shape: tuple, x_shape: tuple) -> int:
    """How the log-variance is laid out: 2 per element, 1 per feature; ValueError otherwise."""
    if tuple(logvar_shape) == tuple(x_shape):
        return 2
    if len(x_shape) >= 2 and tuple(logvar_shape) == tuple(x_shape[1:]):
        return 1
    raise ValueError(f"logvar must have x's shape {tuple(x_shape)} or its per-feature shape "
                     f"{tuple(x_shape[1:])}, got {tuple(logvar_shape)}")


def check_inputs_if_not_finite(out: np.ndarray, named_inputs) -> None:
    """The finite check, fused into the reduction: a NaN or infinity in any input makes its
    row's sum non-finite, so the inputs are scanned (to name the culprit) only when the (n,)
    result is. Finite inputs whose terms overflow leave the inf result standing."""
    if out.size and not _cpu.C.all_finite(out):
        for name, a in named_inputs:
            if a is not None:
                check_finite(a, name)


def bernoulli_log_likelihood_numpy(x2d: np.ndarray, logits2d: np.ndarray) -> np.ndarray:
    """The kernel on C-contiguous 2-D arrays of one dtype; ValueError if an input is not finite."""
    out = np.empty(x2d.shape[0], x2d.dtype)
    _cpu.C.bernoulli_log_likelihood(x2d, logits2d, out)
    check_inputs_if_not_finite(out, (("x", x2d), ("logits", logits2d)))
    return out


def bernoulli_log_likelihood_with_grad_numpy(x2d: np.ndarray, logits2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the per-row sums, x - sigmoid(logits)) from one pass; ValueError if an input is not finite."""
    out = np.empty(x2d.shape[0], x2d.dtype)
    grad_logits = np.empty_like(logits2d)
    _cpu.C.bernoulli_log_likelihood_with_grad(x2d, logits2d, out, grad_logits)
    check_inputs_if_not_finite(out, (("x", x2d), ("logits", logits2d)))
    return out, grad_logits


def bernoulli_log_likelihood_backward_numpy(grad: np.ndarray, x2d: np.ndarray, logits2d: np.ndarray) -> np.ndarray:
    grad_logits = np.empty_like(logits2d)
    _cpu.C.bernoulli_log_likelihood_backward(x2d, logits2d, grad, grad_logits, None)
    return grad_logits


def gaussian_log_likelihood_numpy(x2d, mean2d, logvar) -> np.ndarray:
    """The kernel on C-contiguous arrays (logvar 2-D, 1-D per feature, or None); ValueError if
    an input is not finite."""
    out = np.empty(x2d.shape[0], x2d.dtype)
    _cpu.C.gaussian_log_likelihood(x2d, mean2d, logvar, out)
    check_inputs_if_not_finite(out, (("x", x2d), ("mean", mean2d), ("logvar", logvar)))
    return out


def gaussian_log_likelihood_backward_numpy(grad, x2d, mean2d, logvar, want_logvar: bool):
    grad_mean = np.empty_like(mean2d)
    grad_logvar = np.empty_like(logvar) if (logvar is not None and want_logvar) else None
    _cpu.C.gaussian_log_likelihood_backward(x2d, mean2d, logvar, grad, grad_mean, grad_logvar, None)
    return grad_mean, grad_logvar


def _pair(x, other, other_name: str):
    if np.ndim(x) == 0:
        raise ValueError("x must have at least 1 dimension (samples first), got a scalar")
    x_arr = float_array(x, "x", finite=False)  # checked inside the reduction
    o = float_array(other, other_name, dtype=x_arr.dtype, finite=False)
    if o.shape != x_arr.shape:
        raise ValueError(f"{other_name} must have x's shape {x_arr.shape}, got {o.shape}")
    return x_arr, o


def _result(out: np.ndarray, x, like):
    return wrap_like(out.reshape(()) if np.ndim(x) == 1 else out, like)


def bernoulli_log_likelihood(x, logits):
    """log p(x | logits) of independent Bernoulli units, summed per sample.

    Parameters
    ----------
    x : array of shape (n, ...) or (d,), values in [0, 1]
    logits : array of x's shape, finite (converted to x's dtype)

    Returns
    -------
    array of shape (n,) (a scalar array for 1-D input), ``sum(x * l - softplus(l))`` per sample
    """
    pl = placement(x=x, logits=logits)
    if pl.cuda:
        with pl.activate():
            x_arr, l_arr = _pair_cuda(pl, x, logits, "logits")
            x2d, l2d = _rows(x_arr), _rows(l_arr)
            check_unit_interval_cuda(x2d)
            out = bernoulli_log_likelihood_cupy(x2d, l2d)
            return pl.wrap(out.reshape(()) if x_arr.ndim == 1 else out)
    x_arr, l_arr = _pair(x, logits, "logits")
    x2d, l2d = _rows(x_arr), _rows(l_arr)
    check_unit_interval(x2d)
    return _result(bernoulli_log_likelihood_numpy(x2d, l2d), x_arr, logits)


def gaussian_log_likelihood(x, mean, logvar=None):
    """log N(x | mean, exp(logvar)) of independent Gaussian units, summed per sample.

    Parameters
    ----------
    x : array of shape (n, ...) or (d,)
    mean : array of x's shape
    logvar : array of x's shape, of x's per-feature shape ``x.shape[1:]``, or None (unit variance)

    Returns
    -------
    array of shape (n,) (a scalar array for 1-D input)
    """
    pl = placement(x=x, mean=mean, logvar=logvar)
    if pl.cuda:
        with pl.activate():
            x_arr, m_arr = _pair_cuda(pl, x, mean, "mean")
            v = None
            if logvar is not None:
                v_arr = float_array_cuda(pl.array(logvar, "logvar"), "logvar", dtype=x_arr.dtype, finite=False)
                mode = check_logvar_shape(v_arr.shape, x_arr.shape)
                v = _rows(v_arr) if mode == 2 else v_arr.reshape(-1)
            out = gaussian_log_likelihood_cupy(_rows(x_arr), _rows(m_arr), v)
            return pl.wrap(out.reshape(()) if x_arr.ndim == 1 else out)
    x_arr, m_arr = _pair(x, mean, "mean")
    v = None
    if logvar is not None:
        v_arr = float_array(logvar, "logvar", dtype=x_arr.dtype, finite=False)
        mode = check_logvar_shape(v_arr.shape, x_arr.shape)
        v = _rows(v_arr) if mode == 2 else v_arr.reshape(-1)
    return _result(gaussian_log_likelihood_numpy(_rows(x_arr), _rows(m_arr), v), x_arr, mean)


# ---- CUDA (CuPy arrays; also the torch ops' CUDA kernels) -----------------------------------
def _pair_cuda(pl, x, other, other_name: str):
    x_arr = float_array_cuda(pl.array(x, "x"), "x", finite=False)  # checked inside the reduction
    if x_arr.ndim == 0:
        raise ValueError("x must have at least 1 dimension (samples first), got a scalar")
    o = float_array_cuda(pl.array(other, other_name), other_name, dtype=x_arr.dtype, finite=False)
    if o.shape != x_arr.shape:
        raise ValueError(f"{other_name} must have x's shape {x_arr.shape}, got {o.shape}")
    return x_arr, o


def check_unit_interval_cuda(x2d, name: str = "x") -> None:
    """:func:`check_unit_interval` for a CuPy array (two reductions, one host synchronisation)."""
    import cupy as cp

    if x2d.size:
        lo, hi = cp.stack([x2d.min(), x2d.max()]).tolist()
        if lo < 0 or hi > 1:  # NaN fails neither: it is caught by the finite check of the result
            raise ValueError(f"{name} must lie in [0, 1] for a Bernoulli likelihood, got values in [{lo:g}, {hi:g}]")


def check_inputs_if_not_finite_cuda(out, named_inputs) -> None:
    """:func:`check_inputs_if_not_finite` on the device: the inputs are scanned (to name the
    culprit) only when the (n,) result holds a NaN or infinity."""
    import cupy as cp

    if out.size and not bool(cp.isfinite(out).all()):
        for name, a in named_inputs:
            if a is not None and a.size and not bool(cp.isfinite(a).all()):
                raise ValueError(f"{name} contains NaN or infinity")


def bernoulli_log_likelihood_cupy(x2d, logits2d):
    """The CUDA kernel on C-contiguous 2-D CuPy arrays of one dtype; ValueError if an input is
    not finite."""
    import cupy as cp

    from .._native import cuda_vae as _cuda_vae

    out = cp.empty(x2d.shape[0], x2d.dtype)
    _cuda_vae.bernoulli_log_likelihood(x2d, logits2d, out)
    check_inputs_if_not_finite_cuda(out, (("x", x2d), ("logits", logits2d)))
    return out


def bernoulli_log_likelihood_backward_cupy(grad, x2d, logits2d):
    import cupy as cp

    from .._native import cuda_vae as _cuda_vae

    grad_logits = cp.empty_like(logits2d)
    _cuda_vae.bernoulli_log_likelihood_backward(grad, x2d, logits2d, grad_logits)
    return grad_logits


def gaussian_log_likelihood_cupy(x2d, mean2d, logvar):
    """The CUDA kernel (logvar 2-D, 1-D per feature, or None); ValueError if an input is not finite."""
    import cupy as cp

    from .._native import cuda_vae as _cuda_vae

    out = cp.empty(x2d.shape[0], x2d.dtype)
    _cuda_vae.gaussian_log_likelihood(x2d, mean2d, logvar, out)
    check_inputs_if_not_finite_cuda(out, (("x", x2d), ("mean", mean2d), ("logvar", logvar)))
    return out


def gaussian_log_likelihood_backward_cupy(grad, x2d, mean2d, logvar, want_logvar: bool):
    import cupy as cp

    from .._native import cuda_vae as _cuda_vae

    grad_mean = cp.empty_like(mean2d)
    grad_logvar = cp.empty_like(logvar) if (logvar is not None and want_logvar) else None
    _cuda_vae.gaussian_log_likelihood_backward(grad, x2d, mean2d, logvar, grad_mean, grad_logvar)
    return grad_mean, grad_logvar
