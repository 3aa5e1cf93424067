"""CUDA launch wrappers of the VAE / autoencoder / DCGAN kernels: kernels/vae.cu (reparameterised
sampling + KL, the ELBO's likelihood reductions), kernels/pool.cu (max pooling with indices,
unpooling, their backward passes) and kernels/conv.cu (the transposed convolution's output pass
and im2col, the activation backward), with the GEMMs on cuBLAS (:func:`fastgen._cuda.gemm`).

Like :mod:`fastgen._cuda` (whose module cache, launch and availability checks this reuses),
nothing here is imported by ``import fastgen``; every function takes CuPy arrays (C-contiguous
unless said otherwise, one float dtype), writes its outputs in place and launches on CuPy's
current stream, which the ops set to the caller's (torch's current stream for torch tensors).
Validation is the ops' job (fastgen/ops/*.py): these functions trust their arguments.

Determinism: every kernel here gives the same bits run to run. Reductions across threads (a
likelihood row, a KL row) use a fixed shuffle tree for a block size that depends only on the
shape (:func:`likelihood_threads`); max pooling's backward adds each plane serially (see
kernels/pool.cu) instead of with atomics.
"""
from __future__ import annotations

import numpy as np

from . import cuda as _cuda
from .cuda import launch, suffix

# ---- parameter structs (kernels/include/fastgen/gpu_params_vae.h) ---------------------------
# "p" pointer, "i" int64, "u" uint64, "d" double; StreamParams spelled out as its three fields.
_STREAM = _cuda._STREAM
_GEOMETRY = tuple((f, "i") for f in ("batch", "in_c", "in_h", "in_w", "out_c", "out_h", "out_w", "kernel_h",
                                     "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w"))
STRUCTS = {
    "ReparamGpuParams": (("mu", "p"), ("logvar", "p"), ("z", "p"), ("kl", "p"), ("rows", "i"), ("cols", "i"),
                         ("mu_stride", "i"), ("logvar_stride", "i")) + _STREAM,
    "ReparamBackwardGpuParams": (("grad_z", "p"), ("grad_kl", "p"), ("mu", "p"), ("logvar", "p"), ("grad_mu", "p"),
                                 ("grad_logvar", "p"), ("rows", "i"), ("cols", "i")) + _STREAM,
    "BernoulliLikelihoodGpuParams": (("x", "p"), ("logits", "p"), ("grad", "p"), ("out", "p"), ("grad_x", "p"),
                                     ("rows", "i"), ("cols", "i")),
    "GaussianLikelihoodGpuParams": (("x", "p"), ("mean", "p"), ("logvar", "p"), ("grad", "p"), ("out", "p"),
                                    ("grad_logvar", "p"), ("grad_x", "p"), ("logvar_mode", "i"), ("rows", "i"),
                                    ("cols", "i")),
    "MaxPoolGpuParams": (("in", "p"), ("out", "p"), ("indices", "p")) + tuple(
        (f, "i") for f in ("planes", "in_h", "in_w", "out_h", "out_w", "kernel_h", "kernel_w", "stride_h",
                           "stride_w", "pad_h", "pad_w")),
    "PlanesGpuParams": (("src", "p"), ("indices", "p"), ("dst", "p"), ("planes", "i"), ("src_plane", "i"),
                        ("dst_plane", "i"), ("accumulate", "i")),
    "AvgUnpoolGpuParams": (("in", "p"), ("out", "p"), ("planes", "i"), ("h", "i"), ("w", "i"), ("kernel_h", "i"),
                           ("kernel_w", "i")),
    "ConvTransposeGpuParams": (("cols", "p"), ("bias", "p"), ("out", "p")) + _GEOMETRY + (("activation", "i"),
                                                                                         ("slope", "d")),
    "ActivationBackwardGpuParams": (("grad_out", "p"), ("y", "p"), ("grad_in", "p"), ("n", "i"),
                                    ("activation", "i"), ("slope", "d")),
}
DTYPES = {name: np.dtype([(f, _cuda._CODES[c]) for f, c in fields]) for name, fields in STRUCTS.items()}


def pack(struct: str, **values) -> np.ndarray:
    """:func:`fastgen._cuda.pack_record` for the structs of this module, by name."""
    return _cuda.pack_record(DTYPES[struct], **values)


def _row_stride(a) -> int:
    return int(a.strides[0] // a.itemsize)


def _sms() -> int:
    return _cuda._sm_count(_cuda._device())


# ---- reparameterisation (kernels/vae.cu) ----------------------------------------------------
_ROWS_PER_BLOCK = 4  # the forward runs one warp per row, 4 warps per block


def reparameterize(mu, logvar, z, kl, *, seed: int, offset: int) -> None:
    """z = mu + exp(logvar / 2) eps and kl[r] = the row's KL sum (``kl`` may be None), with eps of
    element (r, c) normal number ``r * cols + c`` of (seed, offset): the CPU's counters. mu and
    logvar are 2-D with contiguous rows (row strides allowed), z contiguous."""
    rows, cols = mu.shape
    if rows == 0:
        return
    if cols == 0:  # the CPU's convention: an empty sum
        if kl is not None:
            kl[...] = 0
        return
    params = pack("ReparamGpuParams", mu=mu, logvar=logvar, z=z, kl=kl, rows=rows, cols=cols,
                  mu_stride=_row_stride(mu), logvar_stride=_row_stride(logvar),
                  **_cuda.stream_fields(seed, offset))
    grid = max(1, min(-(-rows // _ROWS_PER_BLOCK), _sms() * 16))
    launch("vae", f"fg_reparam_forward_{suffix(mu.dtype)}", rows, params, block=32 * _ROWS_PER_BLOCK, grid=grid)


def reparameterize_backward(grad_z, grad_kl, mu, logvar, grad_mu, grad_logvar, *, seed: int, offset: int) -> None:
    """grad_mu, grad_logvar of ``<grad_z, z> + <grad_kl, kl>`` (either gradient may be None), eps drawn
    again from the forward's (seed, offset). All [rows, cols] contiguous, grad_kl [rows]."""
    rows, cols = mu.shape
    params = pack("ReparamBackwardGpuParams", grad_z=grad_z, grad_kl=grad_kl, mu=mu, logvar=logvar, grad_mu=grad_mu,
                  grad_logvar=grad_logvar, rows=rows, cols=cols, **_cuda.stream_fields(seed, offset))
    launch("vae", f"fg_reparam_backward_{suffix(mu.dtype)}", -(-(rows * cols) // 4), params)


# ---- likelihoods (kernels/vae.cu) ------------------------------------------------------------
def likelihood_threads(cols: int) -> int:
    """Threads per row of the likelihood reductions: a function of the row length only, so the
    reduction tree (hence every bit of the result) is fixed for a shape."""
    if cols <= 128:
        return 32
    if cols <= 2048:
        return 128
    return 256


def _rows_grid(rows: int) -> int:
    return max(1, min(rows, _sms() * 32))


def bernoulli_log_likelihood(x, logits, out) -> None:
    """out[r] = sum_c x l - softplus(l) over [rows, cols] x and logits."""
    rows, cols = x.shape
    if rows == 0:
        return
    params = pack("BernoulliLikelihoodGpuParams", x=x, logits=logits, out=out, rows=rows, cols=cols)
    launch("vae", f"fg_bernoulli_ll_{suffix(x.dtype)}", rows, params, block=likelihood_threads(cols),
           grid=_rows_grid(rows))


def bernoulli_log_likelihood_backward(grad, x, logits, grad_logits, grad_x=None) -> None:
    """grad_logits = grad[r] (x - sigmoid(l)); grad_x = grad[r] l when given."""
    rows, cols = x.shape
    params = pack("BernoulliLikelihoodGpuParams", x=x, logits=logits, grad=grad, out=grad_logits, grad_x=grad_x,
                  rows=rows, cols=cols)
    launch("vae", f"fg_bernoulli_ll_backward_{suffix(x.dtype)}", rows * cols, params)


def _logvar_mode(logvar) -> int:
    return 0 if logvar is None else (2 if logvar.ndim == 2 else 1)


def gaussian_log_likelihood(x, mean, logvar, out) -> None:
    """out[r] = sum_c log N(x | m, e^v); logvar [rows, cols], [cols] or None (unit variance)."""
    rows, cols = x.shape
    if rows == 0:
        return
    params = pack("GaussianLikelihoodGpuParams", x=x, mean=mean, logvar=logvar, out=out,
                  logvar_mode=_logvar_mode(logvar), rows=rows, cols=cols)
    launch("vae", f"fg_gaussian_ll_{suffix(x.dtype)}", rows, params, block=likelihood_threads(cols),
           grid=_rows_grid(rows))


def gaussian_log_likelihood_backward(grad, x, mean, logvar, grad_mean, grad_logvar=None, grad_x=None) -> None:
    """grad_mean (and grad_x = -grad_mean, grad_logvar shaped like logvar) of sum_r grad[r] ll[r].
    A per-feature logvar's gradient sums over the rows serially per column (the CPU's order)."""
    rows, cols = x.shape
    mode = _logvar_mode(logvar)
    params = pack("GaussianLikelihoodGpuParams", x=x, mean=mean, logvar=logvar, grad=grad, out=grad_mean,
                  grad_logvar=grad_logvar, grad_x=grad_x, logvar_mode=mode, rows=rows, cols=cols)
    launch("vae", f"fg_gaussian_ll_backward_{suffix(x.dtype)}", rows * cols, params)
    if mode == 1 and grad_logvar is not None:
        launch("vae", f"fg_gaussian_ll_backward_logvar_{suffix(x.dtype)}", cols, params)


# ---- pooling (kernels/pool.cu) ---------------------------------------------------------------
def max_pool2d(x, out, indices, kernel, stride, pad) -> None:
    """x [N, C, H, W] -> out, indices (int64) [N, C, oh, ow]; the first maximum of a window wins."""
    n, c, h, w = x.shape
    oh, ow = out.shape[2:]
    params = pack("MaxPoolGpuParams", **{"in": x}, out=out, indices=indices, planes=n * c, in_h=h, in_w=w,
                  out_h=oh, out_w=ow, kernel_h=kernel[0], kernel_w=kernel[1], stride_h=stride[0],
                  stride_w=stride[1], pad_h=pad[0], pad_w=pad[1])
    launch("pool", f"fg_max_pool2d_{suffix(x.dtype)}", out.size, params)


def scatter_planes(src, indices, dst, accumulate: bool) -> None:
    """dst [N, C, H, W] = 0, then dst[plane][indices] (+)= src [N, C, h, w] (indices int64 like src).
    accumulate=True (max pooling's backward) runs one thread per plane, serially in the CPU's
    order (bitwise the CPU); False (max unpooling) one thread per element."""
    planes = src.shape[0] * src.shape[1]
    src_plane = int(np.prod(src.shape[2:]))
    dst_plane = int(np.prod(dst.shape[2:]))
    dst.fill(0)
    params = pack("PlanesGpuParams", src=src, indices=indices, dst=dst, planes=planes, src_plane=src_plane,
                  dst_plane=dst_plane, accumulate=int(bool(accumulate)))
    if accumulate:
        launch("pool", f"fg_scatter_add_{suffix(src.dtype)}", planes, params)
    else:
        launch("pool", f"fg_scatter_assign_{suffix(src.dtype)}", planes * src_plane, params)


def gather_planes(src, indices, dst) -> None:
    """dst [N, C, h, w] = src[plane][indices] for src [N, C, H, W] (max unpooling's backward)."""
    planes = src.shape[0] * src.shape[1]
    params = pack("PlanesGpuParams", src=src, indices=indices, dst=dst, planes=planes,
                  src_plane=int(np.prod(src.shape[2:])), dst_plane=int(np.prod(dst.shape[2:])))
    launch("pool", f"fg_gather_planes_{suffix(src.dtype)}", dst.size, params)


def avg_unpool2d(x, out, kernel, backward: bool = False) -> None:
    """Forward: x [N, C, h, w] -> out [N, C, h kh, w kw] (each value fills its block); backward:
    x is that output's gradient and out [N, C, h, w] gets the block sums."""
    small = out if backward else x
    n, c, h, w = small.shape
    params = pack("AvgUnpoolGpuParams", **{"in": x}, out=out, planes=n * c, h=h, w=w, kernel_h=kernel[0],
                  kernel_w=kernel[1])
    name = "fg_avg_unpool2d_backward" if backward else "fg_avg_unpool2d"
    launch("pool", f"{name}_{suffix(x.dtype)}", out.size, params)


# ---- transposed convolution (kernels/conv.cu) ------------------------------------------------
def _geometry_fields(geometry) -> dict:
    return {name: int(v) for (name, _), v in zip(_GEOMETRY, geometry)}


def conv_transpose2d_output(cols, bias, out, geometry, activation: int, slope: float) -> None:
    """out [N, C_out, H_out, W_out] = act(bias + the taps gathered from cols [C_out kh kw, N H W]);
    ``geometry`` as :func:`fastgen.ops.conv.conv_transpose_geometry` returns it."""
    params = pack("ConvTransposeGpuParams", cols=cols, bias=bias, out=out, activation=int(activation),
                  slope=float(slope), **_geometry_fields(geometry))
    launch("conv", f"fg_conv_transpose2d_output_{suffix(out.dtype)}", out.size, params)


def conv_transpose2d_im2col(grad, cols, geometry) -> None:
    """cols [C_out kh kw, N H W] gathered from grad [N, C_out, H_out, W_out] (the backward)."""
    params = pack("ConvTransposeGpuParams", cols=cols, out=grad, **_geometry_fields(geometry))
    launch("conv", f"fg_conv_transpose2d_im2col_{suffix(grad.dtype)}", cols.size, params)


def activation_backward(grad_out, y, grad_in, activation: int, slope: float) -> None:
    """grad_in = grad_out act'(x), from the activation's output y (all the same size)."""
    params = pack("ActivationBackwardGpuParams", grad_out=grad_out, y=y, grad_in=grad_in, n=grad_out.size,
                  activation=int(activation), slope=float(slope))
    launch("conv", f"fg_activation_backward_{suffix(grad_out.dtype)}", grad_out.size, params)


def conv_transpose2d(x, weight, bias, geometry, activation: int, slope: float):
    """The whole forward on the GPU: cols = W^T X (cuBLAS, X = x as [C_in, N H W]) then the output
    pass. Returns out [N, C_out, H_out, W_out]."""
    import cupy as cp

    n, c_in, h, w = x.shape
    c_out, out_h, out_w = geometry[4:7]
    X = cp.ascontiguousarray(x.reshape(n, c_in, h * w).transpose(1, 0, 2)).reshape(c_in, n * h * w)
    W2 = weight.reshape(c_in, -1)
    cols = cp.empty((W2.shape[1], n * h * w), x.dtype)
    _cuda.gemm("T", "N", W2, X, cols)
    out = cp.empty((n, c_out, out_h, out_w), x.dtype)
    conv_transpose2d_output(cols, bias, out, geometry, activation, slope)
    return out


def conv_transpose2d_backward(grad_out, y, x, weight, geometry, activation: int, slope: float, *,
                              need_bias: bool = True):
    """(grad_x, grad_weight, grad_bias) of the forward above, given its output y (the activation's
    derivative is taken from y): g = grad_out act'(y); cols = im2col(g); grad_x = W cols,
    grad_weight = X cols^T (cuBLAS); grad_bias = g summed over (N, H_out, W_out) (None unless
    need_bias)."""
    import cupy as cp

    n, c_in, h, w = x.shape
    g = grad_out
    if activation != 0:
        g = cp.empty_like(grad_out)
        activation_backward(grad_out, y, g, activation, slope)
    W2 = weight.reshape(c_in, -1)
    cols = cp.empty((W2.shape[1], n * h * w), x.dtype)
    conv_transpose2d_im2col(g, cols, geometry)
    gx = cp.empty((c_in, n * h * w), x.dtype)
    _cuda.gemm("N", "N", W2, cols, gx)
    grad_x = cp.ascontiguousarray(gx.reshape(c_in, n, h * w).transpose(1, 0, 2)).reshape(n, c_in, h, w)
    X = cp.ascontiguousarray(x.reshape(n, c_in, h * w).transpose(1, 0, 2)).reshape(c_in, n * h * w)
    gw = cp.empty((c_in, W2.shape[1]), x.dtype)
    _cuda.gemm("N", "T", X, cols, gw)
    grad_bias = g.sum(axis=(0, 2, 3)) if need_bias else None
    return grad_x, gw.reshape(weight.shape), grad_bias
