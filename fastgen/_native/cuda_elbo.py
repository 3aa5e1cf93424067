"""CUDA launchers of the ELBO's reconstruction terms, kernels/elbo.cu (csrc/elbo.cpp on the
device): the Bernoulli and Gaussian log-likelihoods summed per row, and their backward passes.

Determinism: a row's sum uses a fixed shuffle tree for a block size that depends only on the
row length (:func:`likelihood_threads`), so every run gives the same bits. Every function takes
CuPy arrays the ops have validated and launches on CuPy's current stream.
"""
from __future__ import annotations

from .cuda_runtime import current_device, launch, pack_record, sm_count, struct_dtypes, suffix

# kernels/include/fastgen/params/elbo.h
STRUCTS = {
    "BernoulliLikelihoodGpuParams": (("x", "p"), ("logits", "p"), ("grad", "p"), ("out", "p"), ("grad_x", "p"),
                                     ("rows", "i"), ("cols", "i")),
    "GaussianLikelihoodGpuParams": (("x", "p"), ("mean", "p"), ("logvar", "p"), ("grad", "p"), ("out", "p"),
                                    ("grad_logvar", "p"), ("grad_x", "p"), ("logvar_mode", "i"), ("rows", "i"),
                                    ("cols", "i")),
}
DTYPES = struct_dtypes(STRUCTS)


def likelihood_threads(cols: int) -> int:
    """Threads per row of the likelihood reductions: a function of the row length only, so the
    reduction tree (hence every bit of the result) is fixed for a shape."""
    if cols <= 128:
        return 32
    if cols <= 2048:
        return 128
    return 256


def _rows_grid(rows: int) -> int:
    return max(1, min(rows, sm_count(current_device()) * 32))


def bernoulli_log_likelihood(x, logits, out) -> None:
    """out[r] = sum_c x l - softplus(l) over [rows, cols] x and logits."""
    rows, cols = x.shape
    if rows == 0:
        return
    params = pack_record(DTYPES["BernoulliLikelihoodGpuParams"], x=x, logits=logits, out=out, rows=rows, cols=cols)
    launch("elbo", f"fg_bernoulli_ll_{suffix(x.dtype)}", rows, params, block=likelihood_threads(cols),
           grid=_rows_grid(rows))


def bernoulli_log_likelihood_backward(grad, x, logits, grad_logits, grad_x=None) -> None:
    """grad_logits = grad[r] (x - sigmoid(l)); grad_x = grad[r] l when given."""
    rows, cols = x.shape
    params = pack_record(DTYPES["BernoulliLikelihoodGpuParams"], x=x, logits=logits, grad=grad, out=grad_logits,
                         grad_x=grad_x, rows=rows, cols=cols)
    launch("elbo", f"fg_bernoulli_ll_backward_{suffix(x.dtype)}", rows * cols, params)


def _logvar_mode(logvar) -> int:
    return 0 if logvar is None else (2 if logvar.ndim == 2 else 1)


def gaussian_log_likelihood(x, mean, logvar, out) -> None:
    """out[r] = sum_c log N(x | m, e^v); logvar [rows, cols], [cols] or None (unit variance)."""
    rows, cols = x.shape
    if rows == 0:
        return
    params = pack_record(DTYPES["GaussianLikelihoodGpuParams"], x=x, mean=mean, logvar=logvar, out=out,
                         logvar_mode=_logvar_mode(logvar), rows=rows, cols=cols)
    launch("elbo", f"fg_gaussian_ll_{suffix(x.dtype)}", rows, params, block=likelihood_threads(cols),
           grid=_rows_grid(rows))


def gaussian_log_likelihood_backward(grad, x, mean, logvar, grad_mean, grad_logvar=None, grad_x=None) -> None:
    """grad_mean (and grad_x = -grad_mean, grad_logvar shaped like logvar) of sum_r grad[r] ll[r].
    A per-feature logvar's gradient sums over the rows serially per column (the CPU's order)."""
    rows, cols = x.shape
    mode = _logvar_mode(logvar)
    params = pack_record(DTYPES["GaussianLikelihoodGpuParams"], x=x, mean=mean, logvar=logvar, grad=grad,
                         out=grad_mean, grad_logvar=grad_logvar, grad_x=grad_x, logvar_mode=mode, rows=rows,
                         cols=cols)
    launch("elbo", f"fg_gaussian_ll_backward_{suffix(x.dtype)}", rows * cols, params)
    if mode == 1 and grad_logvar is not None:
        launch("elbo", f"fg_gaussian_ll_backward_logvar_{suffix(x.dtype)}", cols, params)
