"""Max pooling that keeps the argmax, max unpooling and average unpooling, on NumPy arrays of
shape (N, C, H, W). Indices are flat positions ``h * W + w`` inside each input plane (torch's
``max_pool2d(return_indices=True)`` convention), so ``max_unpool2d`` puts every value back where
it came from. The torch ops with autograd are in :mod:`fastgen.torch.ops.pool`.

CUDA input (CuPy, torch CUDA tensors, DLPack / ``__cuda_array_interface__`` producers) runs
kernels/pool.cu on the caller's current stream (:mod:`fastgen._native.cuda_vae`), with the CPU's
results bit for bit (same window order and tie rule, values only moved or summed in the CPU's
order). One difference: indices that repeat within a plane of ``max_unpool2d`` (never the case
for max pooling's own indices when stride >= kernel) leave one of the values on the GPU, not
necessarily the CPU's last one.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._native import cpu as _cpu
from .._backend import placement, to_numpy, wrap_like
from .._checks import INT32_MAX, check_output_size
from .validation import float_array, float_array_cuda

# Window sizes, strides, paddings and output sizes: at most 2**31 - 1 each (the kernels take
# them as int64, but no image of either axis can be longer, and a bound here keeps every
# product of two of them inside int64).
MAX_EXTENT = INT32_MAX


def pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each in minimum..2**31 - 1."""
    values = (value, value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else tuple(value) \
        if isinstance(value, (tuple, list)) else None
    if values is None or len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral)
                                                 for v in values):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if any(v > MAX_EXTENT for v in values):
        raise ValueError(f"{name} must be at most 2**31 - 1 = {MAX_EXTENT}, got {value!r}")
    return int(values[0]), int(values[1])


def pool_geometry(height: int, width: int, kernel_size, stride=None, padding=0):
    """(kernel, stride, padding, output size) of a max pooling, validated: padding at most half
    the kernel, and a window that fits the padded input (output size >= 1)."""
    kernel = pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else pair(stride, "stride", 1)
    pad = pair(padding, "padding", 0)
    if pad[0] * 2 > kernel[0] or pad[1] * 2 > kernel[1]:
        raise ValueError(f"padding must be at most half of kernel_size, got padding {pad} with kernel_size {kernel}")
    out = tuple((size + 2 * p - k) // s + 1 for size, k, s, p in zip((height, width), kernel, stride, pad))
    if height + 2 * pad[0] < kernel[0] or width + 2 * pad[1] < kernel[1] or min(out) < 1:
        raise ValueError(f"kernel_size {kernel} with padding {pad} does not fit the input of size "
                         f"{(height, width)}: no output")
    return kernel, stride, pad, out


def images(x, name: str, dtype=None) -> np.ndarray:
    return float_array(x, name, ndim=4, dtype=dtype)


def max_pool2d_numpy(x: np.ndarray, kernel, stride, pad, out_hw):
    n, c, h, w = x.shape
    out = np.empty((n, c) + tuple(out_hw), x.dtype)
    indices = np.empty(out.shape, np.int64)
    if out.size:
        _cpu.C.max_pool2d(x.reshape(n * c, h, w), out.reshape(n * c, *out_hw), indices.reshape(n * c, *out_hw),
                          (*kernel, *stride, *pad))
    return out, indices


def scatter_numpy(src: np.ndarray, indices: np.ndarray, out_hw, accumulate: bool):
    n, c = src.shape[:2]
    dst = np.empty((n, c) + tuple(out_hw), src.dtype)
    if n * c:
        _cpu.C.scatter_planes(src.reshape(n * c, -1), indices.reshape(n * c, -1), dst.reshape(n * c, -1), accumulate)
    return dst


def gather_numpy(src: np.ndarray, indices: np.ndarray):
    n, c = src.shape[:2]
    dst = np.empty(indices.shape, src.dtype)
    if n * c:
        _cpu.C.gather_planes(src.reshape(n * c, -1), indices.reshape(n * c, -1), dst.reshape(n * c, -1))
    return dst


def avg_unpool2d_numpy(x: np.ndarray, kernel, backward: bool = False):
    """Forward: x (N, C, h, w) -> (N, C, h kh, w kw); backward: x is the gradient of that
    output and the block sums come back at (N, C, h, w)."""
    n, c, h, w = x.shape
    if backward:
        out = np.empty((n, c, h // kernel[0], w // kernel[1]), x.dtype)
    else:
        out = np.empty((n, c, h * kernel[0], w * kernel[1]), x.dtype)
    if n * c:
        _cpu.C.avg_unpool2d(x.reshape(n * c, *x.shape[2:]), out.reshape(n * c, *out.shape[2:]), kernel[0], kernel[1],
                            backward)
    return out


def check_indices(indices, x_shape, out_hw, name="indices") -> np.ndarray:
    idx = to_numpy(indices, name)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {idx.dtype}")
    if idx.shape != tuple(x_shape):
        raise ValueError(f"{name} must have the shape of the pooled input {tuple(x_shape)}, got {idx.shape}")
    limit = out_hw[0] * out_hw[1]
    # range first, in the caller's dtype: a uint64 index >= 2**63 would turn negative as int64
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= limit):
        raise ValueError(f"{name} must lie in [0, {limit}) (positions in an output plane of size {tuple(out_hw)}), "
                         f"got values in [{int(idx.min())}, {int(idx.max())}]")
    return np.ascontiguousarray(idx, dtype=np.int64)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling of (N, C, H, W) images; returns ``(out, indices)``, indices int64 flat
    positions in each input plane (the first maximum of a window wins a tie)."""
    pl = placement(x=x)
    if pl.cuda:
        with pl.activate():
            a = images_cuda(pl.array(x, "x"), "x")
            kernel, stride, pad, out_hw = pool_geometry(a.shape[2], a.shape[3], kernel_size, stride, padding)
            return tuple(pl.wrap(r) for r in max_pool2d_cupy(a, kernel, stride, pad, out_hw))
    a = images(x, "x")
    kernel, stride, pad, out_hw = pool_geometry(a.shape[2], a.shape[3], kernel_size, stride, padding)
    out, indices = max_pool2d_numpy(a, kernel, stride, pad, out_hw)
    return wrap_like(out, x), wrap_like(indices, x)


def max_unpool2d(x, indices, output_size):
    """Put each value of x (N, C, h, w) at its index in a zero (N, C, H, W) output,
    ``output_size = (H, W)``; the inverse of :func:`max_pool2d` on the kept values."""
    pl = placement(x=x, indices=indices)
    if pl.cuda:
        with pl.activate():
            a = images_cuda(pl.array(x, "x"), "x")
            out_hw = pair(output_size, "output_size", 1)
            check_output_size(a.shape[:2] + out_hw, "output_size", a.itemsize)
            idx = check_indices_cuda(pl.array(indices, "indices"), a.shape, out_hw)
            return pl.wrap(scatter_cupy(a, idx, out_hw, accumulate=False))
    a = images(x, "x")
    out_hw = pair(output_size, "output_size", 1)
    check_output_size(a.shape[:2] + out_hw, "output_size", a.itemsize)
    idx = check_indices(indices, a.shape, out_hw)
    return wrap_like(scatter_numpy(a, idx, out_hw, accumulate=False), x)


def avg_unpool2d(x, kernel_size):
    """Average unpooling: each value of x (N, C, h, w) fills its kh x kw block of the
    (N, C, h kh, w kw) output, so average pooling with that window gives x back."""
    pl = placement(x=x)
    if pl.cuda:
        with pl.activate():
            a = images_cuda(pl.array(x, "x"), "x")
            return pl.wrap(avg_unpool2d_cupy(a, unpool_kernel(a.shape, kernel_size, a.itemsize)))
    a = images(x, "x")
    kernel = unpool_kernel(a.shape, kernel_size, a.itemsize)
    return wrap_like(avg_unpool2d_numpy(a, kernel), x)


def unpool_kernel(x_shape, kernel_size, itemsize: int = 8) -> tuple[int, int]:
    """kernel_size of :func:`avg_unpool2d`, validated, with an output (N, C, h kh, w kw) that
    can exist."""
    kernel = pair(kernel_size, "kernel_size", 1)
    n, c, h, w = x_shape
    check_output_size((n, c, h * kernel[0], w * kernel[1]), "kernel_size", itemsize)
    return kernel


# ---- CUDA (CuPy arrays; also the torch ops' CUDA kernels) -----------------------------------
def images_cuda(x, name: str, dtype=None):
    """:func:`images` for a CuPy array."""
    return float_array_cuda(x, name, ndim=4, dtype=dtype)


def check_indices_cuda(idx, x_shape, out_hw, name="indices"):
    """:func:`check_indices` for a CuPy array (the range check is one reduction on the device)."""
    import cupy as cp

    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {idx.dtype}")
    if idx.shape != tuple(x_shape):
        raise ValueError(f"{name} must have the shape of the pooled input {tuple(x_shape)}, got {idx.shape}")
    limit = out_hw[0] * out_hw[1]
    if idx.size:
        lo, hi = (int(v) for v in cp.stack([idx.min(), idx.max()]).tolist())  # one synchronisation
        if lo < 0 or hi >= limit:
            raise ValueError(f"{name} must lie in [0, {limit}) (positions in an output plane of size "
                             f"{tuple(out_hw)}), got values in [{lo}, {hi}]")
    return cp.ascontiguousarray(idx, dtype=cp.int64)


def max_pool2d_cupy(x, kernel, stride, pad, out_hw):
    import cupy as cp

    from .._native import cuda_vae as _cuda_vae

    n, c = x.shape[:2]
    out = cp.empty((n, c) + tuple(out_hw), x.dtype)
    indices = cp.empty(out.shape, cp.int64)
    if out.size:
        _cuda_vae.max_pool2d(x, out, indices, kernel, stride, pad)
    return out, indices


def scatter_cupy(src, indices, out_hw, accumulate: bool):
    import cupy as cp

    from .._native import cuda_vae as _cuda_vae

    n, c = src.shape[:2]
    dst = cp.empty((n, c) + tuple(out_hw), src.dtype)
    if dst.size:
        _cuda_vae.scatter_planes(src, indices, dst, accumulate)
    return dst


def gather_cupy(src, indices):
    import cupy as cp

    from .._native import cuda_vae as _cuda_vae

    dst = cp.empty(indices.shape, src.dtype)
    if dst.size:
        _cuda_vae.gather_planes(src, indices, dst)
    return dst


def avg_unpool2d_cupy(x, kernel, backward: bool = False):
    """:func:`avg_unpool2d_numpy` on the device."""
    import cupy as cp

    from .._native import cuda_vae as _cuda_vae

    n, c, h, w = x.shape
    if backward:
        out = cp.empty((n, c, h // kernel[0], w // kernel[1]), x.dtype)
    else:
        out = cp.empty((n, c, h * kernel[0], w * kernel[1]), x.dtype)
    if out.size:
        _cuda_vae.avg_unpool2d(x, out, kernel, backward)
    return out
