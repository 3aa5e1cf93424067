"""CUDA launchers of the pooling kernels, kernels/pool.cu (csrc/pool.cpp on the device): max
pooling with indices, the plane scatter and gather, average unpooling and its adjoint.

Determinism: max pooling's backward adds each plane serially in the CPU's order (bitwise the
CPU) instead of with atomics. Every function takes CuPy arrays the ops have validated and
launches on CuPy's current stream.
"""
from __future__ import annotations

import numpy as np

from .cuda_runtime import launch, pack_record, struct_dtypes, suffix

# kernels/include/fastgen/params/pool.h
STRUCTS = {
    "MaxPoolGpuParams": (("in", "p"), ("out", "p"), ("indices", "p")) + tuple(
        (f, "i") for f in ("planes", "in_h", "in_w", "out_h", "out_w", "kernel_h", "kernel_w", "stride_h",
                           "stride_w", "pad_h", "pad_w")),
    "PlanesGpuParams": (("src", "p"), ("indices", "p"), ("dst", "p"), ("planes", "i"), ("src_plane", "i"),
                        ("dst_plane", "i"), ("accumulate", "i")),
    "AvgUnpoolGpuParams": (("in", "p"), ("out", "p"), ("planes", "i"), ("h", "i"), ("w", "i"), ("kernel_h", "i"),
                           ("kernel_w", "i")),
}
DTYPES = struct_dtypes(STRUCTS)


def _pack(struct: str, **values) -> np.ndarray:
    return pack_record(DTYPES[struct], **values)


def max_pool2d(x, out, indices, kernel, stride, pad) -> None:
    """x [N, C, H, W] -> out, indices (int64) [N, C, oh, ow]; the first maximum of a window wins."""
    n, c, h, w = x.shape
    oh, ow = out.shape[2:]
    params = _pack("MaxPoolGpuParams", **{"in": x}, out=out, indices=indices, planes=n * c, in_h=h, in_w=w,
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
    params = _pack("PlanesGpuParams", src=src, indices=indices, dst=dst, planes=planes, src_plane=src_plane,
                   dst_plane=dst_plane, accumulate=int(bool(accumulate)))
    if accumulate:
        launch("pool", f"fg_scatter_add_{suffix(src.dtype)}", planes, params)
    else:
        launch("pool", f"fg_scatter_assign_{suffix(src.dtype)}", planes * src_plane, params)


def gather_planes(src, indices, dst) -> None:
    """dst [N, C, h, w] = src[plane][indices] for src [N, C, H, W] (max unpooling's backward)."""
    planes = src.shape[0] * src.shape[1]
    params = _pack("PlanesGpuParams", src=src, indices=indices, dst=dst, planes=planes,
                   src_plane=int(np.prod(src.shape[2:])), dst_plane=int(np.prod(dst.shape[2:])))
    launch("pool", f"fg_gather_planes_{suffix(src.dtype)}", dst.size, params)


def avg_unpool2d(x, out, kernel, backward: bool = False) -> None:
    """Forward: x [N, C, h, w] -> out [N, C, h kh, w kw] (each value fills its block); backward:
    x is that output's gradient and out [N, C, h, w] gets the block sums."""
    small = out if backward else x
    n, c, h, w = small.shape
    params = _pack("AvgUnpoolGpuParams", **{"in": x}, out=out, planes=n * c, h=h, w=w, kernel_h=kernel[0],
                   kernel_w=kernel[1])
    name = "fg_avg_unpool2d_backward" if backward else "fg_avg_unpool2d"
    launch("pool", f"{name}_{suffix(x.dtype)}", out.size, params)
