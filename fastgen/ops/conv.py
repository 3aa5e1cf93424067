"""Transposed convolution with the bias and activation fused into its output pass (the DCGAN
generator's layer), validated once here; the torch op with autograd is in
:mod:`fastgen.torch.ops.conv`.

``x`` (N, C_in, H, W), ``weight`` (C_in, C_out, kH, kW) (torch's ConvTranspose2d layout),
``bias`` (C_out,) or None; output (N, C_out, H_out, W_out) with
``H_out = (H - 1) stride - 2 padding + kH + output_padding`` (no dilation, no groups).
Computed as ``cols = W^T @ X`` with X = x as (C_in, N H W), then an output pass that gathers each
output pixel's contributions, adds the bias and applies the activation: both per chunk of images
in fastgen._C (:func:`forward_numpy`), so that cols is read back from cache, with the chunks spread
over the OpenMP threads and each chunk's GEMM single-threaded in SciPy's BLAS
(:func:`single_threaded_blas`).

CUDA input (CuPy, torch CUDA tensors, DLPack / ``__cuda_array_interface__`` producers) runs on the
caller's current stream (:mod:`fastgen._native.cuda_vae`): the GEMMs on cuBLAS, the output pass, im2col
and the activation's derivative in kernels/conv.cu. Those passes are the CPU's bit for bit on the
same cols; the GEMMs sum in another order, so results agree with the CPU's to rounding.
:func:`forward_cupy` / :func:`backward_cupy` are the entries for the torch op's CUDA kernels.
"""
from __future__ import annotations

import ctypes
import threading
from contextlib import contextmanager

import numpy as np

from .._native import cpu as _cpu
from .._backend import placement, wrap_like
from .._checks import check_int32_extent, check_output_size, finite_in_dtype, real
from .validation import DeviceChecks, float_array, float_array_cuda
from .pool import pair

ACTIVATIONS = {"none": 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "sigmoid": 4}


def activation_code(activation) -> int:
    if activation is None:
        return 0
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or None, got {activation!r}")
    return ACTIVATIONS[activation]


def check_slope(negative_slope, dtype=None) -> float:
    """A finite real number, finite in ``dtype`` (the kernel's float type) when given."""
    slope = real(negative_slope, "negative_slope")
    if dtype is not None:
        finite_in_dtype(slope, "negative_slope", dtype)
    return slope


def conv_transpose_geometry(x_shape, w_shape, bias_shape, stride, padding, output_padding):
    """Validated 13-entry geometry (batch, in_c, in_h, in_w, out_c, out_h, out_w, kh, kw, sh, sw, ph, pw)."""
    if len(x_shape) != 4:
        raise ValueError(f"x must be 4-D (N, C_in, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"weight must be 4-D (C_in, C_out, kH, kW), got shape {tuple(w_shape)}")
    n, c_in, h, w = x_shape
    if w_shape[0] != c_in:
        raise ValueError(f"weight must have C_in = {c_in} rows (x's channels) in its first axis, got shape "
                         f"{tuple(w_shape)}")
    c_out, kh, kw = w_shape[1:]
    if min(c_out, kh, kw) < 1:
        raise ValueError(f"weight must have C_out, kH, kW >= 1, got shape {tuple(w_shape)}")
    if bias_shape is not None and tuple(bias_shape) != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},), got {tuple(bias_shape)}")
    sh, sw = pair(stride, "stride", 1)
    ph, pw = pair(padding, "padding", 0)
    oph, opw = pair(output_padding, "output_padding", 0)
    if oph >= sh or opw >= sw:
        raise ValueError(f"output_padding must be smaller than stride, got output_padding {(oph, opw)} with "
                         f"stride {(sh, sw)}")
    out_h = (h - 1) * sh - 2 * ph + kh + oph
    out_w = (w - 1) * sw - 2 * pw + kw + opw
    if h < 1 or w < 1 or out_h < 1 or out_w < 1:
        raise ValueError(f"stride {(sh, sw)}, padding {(ph, pw)} and kernel {(kh, kw)} give no output for an input of "
                         f"size {(h, w)} (output {(out_h, out_w)})")
    # The GEMMs take these as 32-bit BLAS dimensions: C_in (K), C_out kH kW (rows of cols) and
    # an image's pixels (cols' columns per image)
    check_int32_extent(c_in, "x", "channels (C_in)")
    check_int32_extent(c_out * kh * kw, "weight", "output taps (C_out * kH * kW)")
    check_int32_extent(h * w, "x", "pixels per image (H * W)")
    check_output_size((n, c_out, out_h, out_w), "stride" if max(sh, sw) > 1 else "weight")
    return (n, c_in, h, w, c_out, out_h, out_w, kh, kw, sh, sw, ph, pw)


def output_pass(cols: np.ndarray, bias, geometry, activation: int, slope: float, dtype) -> np.ndarray:
    """The output pass alone over a whole batch's cols [C_out kH kW, N H W] (the reference the CUDA
    kernel is tested against; the forward itself runs chunked, :func:`forward_numpy`)."""
    n, _, _, _, c_out, out_h, out_w = geometry[:7]
    out = np.empty((n, c_out, out_h, out_w), dtype)
    if out.size:
        _cpu.C.conv_transpose2d_output(cols, bias, out, geometry, activation, dtype.type(slope))
    return out


# ---- SciPy's BLAS on one thread --------------------------------------------------------------
# fastgen._C calls SciPy's OpenBLAS; its own threads would fight the OpenMP chunks for the cores,
# so BLAS runs on one thread while any chunked kernel runs (the count is process-wide: lowered
# for the first such kernel, restored when the last ends; other threads' SciPy BLAS calls run on
# one thread meanwhile).
_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved = 0
_blas_functions = None


def _blas_thread_functions():
    """(get_num_threads, set_num_threads) of the BLAS behind scipy.linalg.cython_blas, or () when
    it is not an OpenBLAS (then the chunks run one after the other on BLAS's threads)."""
    global _blas_functions
    if _blas_functions is None:
        found = ()
        try:
            from scipy.linalg import cython_blas

            lib = ctypes.CDLL(cython_blas.__file__)  # already loaded: dlsym also searches its BLAS
            for prefix, suffix in (("scipy_openblas", ""), ("scipy_openblas", "64_"), ("openblas", ""),
                                   ("openblas", "64_")):
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    set_.restype, set_.argtypes = None, [ctypes.c_int]
                    found = (get, set_)
                    break
        except (ImportError, OSError):
            pass
        _blas_functions = found
    return _blas_functions


@contextmanager
def single_threaded_blas():
    """Within the block SciPy's OpenBLAS runs on one thread; yields whether it could be set."""
    global _blas_users, _blas_saved
    functions = _blas_thread_functions()
    if not functions:
        yield False
        return
    get, set_ = functions
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved = get()
            set_(1)
        _blas_users += 1
    try:
        yield True
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                set_(_blas_saved)


def forward_numpy(x: np.ndarray, weight: np.ndarray, bias, geometry, activation: int, slope: float) -> np.ndarray:
    """The fused forward on C-contiguous arrays of one float dtype (weight and bias finite); ValueError
    if x holds a NaN or infinity (found by the kernel as it reads x)."""
    n, _, _, _, c_out, out_h, out_w = geometry[:7]
    out = np.empty((n, c_out, out_h, out_w), x.dtype)
    if out.size:
        with single_threaded_blas() as one_thread:
            bad = _cpu.C.conv_transpose2d_forward(x, weight, bias, out, geometry, activation, x.dtype.type(slope),
                                                  one_thread)
        if bad:
            raise ValueError("x contains NaN or infinity")
    return out


def activation_backward_numpy(grad_out: np.ndarray, y: np.ndarray, activation: int, slope: float) -> np.ndarray:
    """The gradient before the fused activation: ``grad_out * act'``, the derivative written in
    terms of the activation's output ``y``. grad_out and y: C-contiguous arrays of one float dtype
    and one shape (the forward's output shape), already checked."""
    grad_in = np.empty_like(grad_out)
    _cpu.C.activation_backward(grad_out, y, grad_in, activation, grad_out.dtype.type(slope))
    return grad_in


def backward_numpy(grad: np.ndarray, x: np.ndarray, weight: np.ndarray, geometry, need_x: bool = True):
    """``(grad_x or None, grad_weight)`` of the transposed convolution (before bias and
    activation: ``grad`` is the gradient of its output, shape (N, C_out, H_out, W_out)); per image
    the gradient's im2col, then the grad_x and grad_weight GEMMs, images spread over the OpenMP
    threads with single-threaded BLAS. C-contiguous arrays of one float dtype, checked against
    ``geometry`` (:func:`conv_transpose_geometry`) by the caller."""
    grad_x = np.empty(x.shape, x.dtype) if need_x else None
    grad_weight = np.empty(weight.shape, weight.dtype)
    with single_threaded_blas() as one_thread:
        _cpu.C.conv_transpose2d_backward(grad, x, weight, grad_x, grad_weight, geometry, one_thread)
    return grad_x, grad_weight


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, activation=None,
                     negative_slope=0.01):
    """``act(conv_transpose2d(x, weight, bias))`` on NumPy arrays (or CPU tensors, returned as such).

    activation: None / "none", "relu", "leaky_relu" (``negative_slope``), "tanh", "sigmoid".
    """
    pl = placement(x=x, weight=weight, bias=bias)
    if pl.cuda:
        with pl.activate():
            # x is checked for NaN / inf up front here: a relu output pass could hide a NaN.
            checks = DeviceChecks()
            a = float_array_cuda(pl.array(x, "x"), "x", ndim=4, checks=checks)
            wt = float_array_cuda(pl.array(weight, "weight"), "weight", ndim=4, dtype=a.dtype, checks=checks)
            b = None if bias is None else float_array_cuda(pl.array(bias, "bias"), "bias", ndim=1, dtype=a.dtype,
                                                           checks=checks)
            geometry = conv_transpose_geometry(a.shape, wt.shape, None if b is None else b.shape, stride, padding,
                                               output_padding)
            code, slope = activation_code(activation), check_slope(negative_slope, a.dtype)
            checks.raise_first()
            return pl.wrap(forward_cupy(a, wt, b, geometry, code, slope))
    a = float_array(x, "x", ndim=4, finite=False)  # NaN / inf: found by the kernel (forward_numpy)
    wt = float_array(weight, "weight", ndim=4, dtype=a.dtype)
    b = None if bias is None else float_array(bias, "bias", ndim=1, dtype=a.dtype)
    geometry = conv_transpose_geometry(a.shape, wt.shape, None if b is None else b.shape, stride, padding,
                                       output_padding)
    code, slope = activation_code(activation), check_slope(negative_slope, a.dtype)
    return wrap_like(forward_numpy(a, wt, b, geometry, code, slope), x)


# ---- CUDA (CuPy arrays; also the torch op's CUDA kernels) -----------------------------------
def forward_cupy(x, weight, bias, geometry, activation: int, slope: float):
    """:func:`forward_numpy` on C-contiguous CuPy arrays of one float dtype, already validated
    (x, weight and bias finite: unlike the CPU's, this pass does not look for NaN in x)."""
    import cupy as cp

    from .._native import cuda_vae as _cuda_vae

    n, c_in, _, _, c_out, out_h, out_w = geometry[:7]
    if n == 0 or c_in == 0:  # nothing for cuBLAS to multiply: the output is act(bias) or empty
        out = cp.empty((n, c_out, out_h, out_w), x.dtype)
        if out.size:
            cols = cp.zeros((c_out * geometry[7] * geometry[8], n * geometry[2] * geometry[3]), x.dtype)
            _cuda_vae.conv_transpose2d_output(cols, bias, out, geometry, activation, slope)
        return out
    return _cuda_vae.conv_transpose2d(x, weight, bias, geometry, activation, slope)


def backward_cupy(grad_out, y, x, weight, geometry, activation: int, slope: float, need_bias: bool = True):
    """(grad_x, grad_weight, grad_bias or None) of :func:`forward_cupy`'s ``y = act(...)`` on
    C-contiguous CuPy arrays: the activation's derivative taken from y, im2col of the gradient
    (kernels/conv.cu) and two cuBLAS GEMMs; grad_bias sums over (N, H_out, W_out)."""
    import cupy as cp

    from .._native import cuda_vae as _cuda_vae

    n, c_in = geometry[:2]
    if n == 0 or c_in == 0:  # no GEMM to run; every gradient is zero or empty
        c_out = geometry[4]
        grad_bias = None
        if need_bias:
            g = grad_out
            if activation != 0 and g.size:
                g = cp.empty_like(grad_out)
                _cuda_vae.activation_backward(grad_out, y, g, activation, slope)
            grad_bias = g.sum(axis=(0, 2, 3)) if g.size else cp.zeros(c_out, x.dtype)
        return cp.zeros_like(x), cp.zeros_like(weight), grad_bias
    return _cuda_vae.conv_transpose2d_backward(grad_out, y, x, weight, geometry, activation, slope,
                                               need_bias=need_bias)
