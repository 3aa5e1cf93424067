"""Pooling and unpooling as torch custom ops (``torch.ops.fastgen.*``) with autograd, over the
kernels of :mod:`fastgen.ops.pool` (same index convention as torch: flat positions in each
input plane).

``max_pool2d(x, kernel_size[2], stride[2], padding[2]) -> (out, indices)``
``max_unpool2d(x, indices, output_size[2]) -> out``
``avg_unpool2d(x, kernel_size[2]) -> out``   (each value fills its block; avg_pool2d undoes it)

Backward passes are ops of their own (``max_pool2d_backward``: scatter-add of the gradient at
the indices; ``gather_planes``: the gradient at the indices; ``avg_unpool2d_backward``: block
sums), so they too run under torch.compile. ``indices`` carry no gradient.

CUDA tensors run kernels/pool.cu on torch's current stream (CuPy views through DLPack, see
:mod:`fastgen.ops.pool`), with the CPU's results bit for bit; without CuPy or a usable device
they raise a TypeError naming the tensor.
"""
from __future__ import annotations

from typing import List, Sequence

import torch

from ..._checks import check_output_size
from ._library import custom_op
from ._validate import (cuda_arrays, finite_numpy, float_tensor, index_range, on_torch_stream, same_device, tensor_like,
                        tensors)
from ...ops.pool import (avg_unpool2d_cupy, avg_unpool2d_numpy, gather_cupy, gather_numpy, images_cuda,
                         max_pool2d_cupy, max_pool2d_numpy, pair, pool_geometry, scatter_cupy, scatter_numpy,
                         unpool_kernel)


def _images(x: torch.Tensor, name: str = "x") -> None:
    float_tensor(x, name, 4, "(N, C, H, W)")


_numpy = finite_numpy


def _check_indices(indices: torch.Tensor, x: torch.Tensor, out_hw) -> None:
    shape = x.shape
    if not isinstance(indices, torch.Tensor) or indices.dtype != torch.int64:
        raise TypeError(f"indices must be an int64 torch.Tensor, got {getattr(indices, 'dtype', type(indices))}")
    same_device("x", x, indices=indices)
    if tuple(indices.shape) != tuple(shape):
        raise ValueError(f"indices must have the shape of x {tuple(shape)}, got {tuple(indices.shape)}")
    check_output_size(tuple(x.shape[:2]) + tuple(out_hw), "output_size", x.element_size())
    index_range(indices, "indices", out_hw[0] * out_hw[1], f"positions in an output plane of size {tuple(out_hw)}")


def _check_max_pool_backward(grad_out, indices, in_h, in_w) -> tuple[int, int]:
    """The backward's scatter writes grad_out at indices inside (in_h, in_w) planes."""
    _images(grad_out, "grad_out")
    tensor_like(indices, "indices", grad_out.shape, torch.int64, "(grad_out's)")
    same_device("grad_out", grad_out, indices=indices)
    if not all(isinstance(v, int) for v in (in_h, in_w)):  # SymInts under torch.compile: sizes it derived
        return in_h, in_w
    in_hw = pair([in_h, in_w], "(in_h, in_w)", 1)
    check_output_size(tuple(grad_out.shape[:2]) + in_hw, "(in_h, in_w)", grad_out.element_size())
    return in_hw


def _check_gather(src, indices) -> None:
    """gather_planes reads src's planes at indices: one plane of indices per plane of src."""
    _images(src, "grad_out")
    if not isinstance(indices, torch.Tensor) or indices.dtype != torch.int64 or indices.dim() != 4:
        raise TypeError(f"indices must be a 4-D int64 torch.Tensor, got {getattr(indices, 'dtype', type(indices))} "
                        f"of shape {tuple(getattr(indices, 'shape', ()))}")
    same_device("grad_out", src, indices=indices)
    if tuple(indices.shape[:2]) != tuple(src.shape[:2]):
        raise ValueError(f"indices must have grad_out's (N, C) = {tuple(src.shape[:2])}, got shape {tuple(indices.shape)}")


def _check_avg_unpool_backward(grad_out, kernel_size) -> tuple[int, int]:
    _images(grad_out, "grad_out")
    kernel = pair(list(kernel_size), "kernel_size", 1)
    if grad_out.shape[2] % kernel[0] or grad_out.shape[3] % kernel[1]:
        raise ValueError(f"grad_out's (H, W) {tuple(grad_out.shape[2:])} must be multiples of kernel_size {kernel}")
    return kernel


# ---- max pooling -------------------------------------------------------------------------------
@custom_op("max_pool2d")
def _max_pool2d(x: torch.Tensor, kernel_size: List[int], stride: List[int],
                padding: List[int]) -> tuple[torch.Tensor, torch.Tensor]:
    _images(x)
    kernel, stride_, pad, out_hw = pool_geometry(x.shape[2], x.shape[3], list(kernel_size), list(stride), list(padding))
    out, indices = max_pool2d_numpy(_numpy(x), kernel, stride_, pad, out_hw)
    return torch.from_numpy(out), torch.from_numpy(indices)


@_max_pool2d.register_fake
def _(x, kernel_size, stride, padding):
    _images(x)
    _, _, _, (oh, ow) = pool_geometry(x.shape[2], x.shape[3], list(kernel_size), list(stride), list(padding))
    shape = (x.shape[0], x.shape[1], oh, ow)
    return x.new_empty(shape), x.new_empty(shape, dtype=torch.int64)


@custom_op("max_pool2d_backward")
def _max_pool2d_backward(grad_out: torch.Tensor, indices: torch.Tensor, in_h: int, in_w: int) -> torch.Tensor:
    _check_max_pool_backward(grad_out, indices, in_h, in_w)
    index_range(indices, "indices", in_h * in_w, f"positions in an input plane of size {(in_h, in_w)}")
    grad = scatter_numpy(_numpy(grad_out, "grad_out", finite=False), indices.contiguous().numpy(), (in_h, in_w),
                         accumulate=True)
    return torch.from_numpy(grad)


@_max_pool2d_backward.register_fake
def _(grad_out, indices, in_h, in_w):
    _check_max_pool_backward(grad_out, indices, in_h, in_w)
    return grad_out.new_empty((grad_out.shape[0], grad_out.shape[1], in_h, in_w))


def _max_pool_setup(ctx, inputs, output):
    ctx.save_for_backward(output[1])
    ctx.in_hw = (inputs[0].shape[2], inputs[0].shape[3])
    ctx.mark_non_differentiable(output[1])


def _max_pool_backward(ctx, grad_out, grad_indices):
    (indices,) = ctx.saved_tensors
    return torch.ops.fastgen.max_pool2d_backward(grad_out, indices, *ctx.in_hw), None, None, None


@_max_pool2d.register_kernel("cuda")
def _(x, kernel_size, stride, padding):
    _images(x)
    kernel, stride_, pad, out_hw = pool_geometry(x.shape[2], x.shape[3], list(kernel_size), list(stride), list(padding))
    with on_torch_stream(x):
        (xc,) = cuda_arrays(("x", x))
        out, indices = max_pool2d_cupy(images_cuda(xc, "x"), kernel, stride_, pad, out_hw)
        return torch.from_dlpack(out), torch.from_dlpack(indices)


@_max_pool2d_backward.register_kernel("cuda")
def _(grad_out, indices, in_h, in_w):
    _check_max_pool_backward(grad_out, indices, in_h, in_w)
    index_range(indices, "indices", in_h * in_w, f"positions in an input plane of size {(in_h, in_w)}")
    with on_torch_stream(grad_out, "grad_out"):
        g, idx = cuda_arrays(("grad_out", grad_out), ("indices", indices))
        return torch.from_dlpack(scatter_cupy(g, idx, (in_h, in_w), accumulate=True))


_max_pool2d.register_autograd(_max_pool_backward, setup_context=_max_pool_setup)


# ---- max unpooling -----------------------------------------------------------------------------
@custom_op("max_unpool2d")
def _max_unpool2d(x: torch.Tensor, indices: torch.Tensor, output_size: List[int]) -> torch.Tensor:
    _images(x)
    out_hw = pair(list(output_size), "output_size", 1)
    _check_indices(indices, x, out_hw)
    return torch.from_numpy(scatter_numpy(_numpy(x), indices.contiguous().numpy(), out_hw, accumulate=False))


@_max_unpool2d.register_fake
def _(x, indices, output_size):
    _images(x)
    oh, ow = pair(list(output_size), "output_size", 1)
    return x.new_empty((x.shape[0], x.shape[1], oh, ow))


@custom_op("gather_planes")
def _gather_planes(src: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    _check_gather(src, indices)
    index_range(indices, "indices", src.shape[2] * src.shape[3], f"positions in a grad_out plane {tuple(src.shape[2:])}")
    return torch.from_numpy(gather_numpy(_numpy(src, "grad_out", finite=False), indices.contiguous().numpy()))


@_gather_planes.register_fake
def _(src, indices):
    _check_gather(src, indices)
    return src.new_empty(indices.shape)


def _max_unpool_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])


def _max_unpool_backward(ctx, grad_out):
    (indices,) = ctx.saved_tensors
    return torch.ops.fastgen.gather_planes(grad_out, indices), None, None


@_max_unpool2d.register_kernel("cuda")
def _(x, indices, output_size):
    _images(x)
    out_hw = pair(list(output_size), "output_size", 1)
    _check_indices(indices, x, out_hw)
    with on_torch_stream(x):
        xc, idx = cuda_arrays(("x", x), ("indices", indices))
        return torch.from_dlpack(scatter_cupy(images_cuda(xc, "x"), idx, out_hw, accumulate=False))


@_gather_planes.register_kernel("cuda")
def _(src, indices):
    _check_gather(src, indices)
    index_range(indices, "indices", src.shape[2] * src.shape[3], f"positions in a grad_out plane {tuple(src.shape[2:])}")
    with on_torch_stream(src, "grad_out"):
        g, idx = cuda_arrays(("grad_out", src), ("indices", indices))
        return torch.from_dlpack(gather_cupy(g, idx))


_max_unpool2d.register_autograd(_max_unpool_backward, setup_context=_max_unpool_setup)


# ---- average unpooling -------------------------------------------------------------------------
@custom_op("avg_unpool2d")
def _avg_unpool2d(x: torch.Tensor, kernel_size: List[int]) -> torch.Tensor:
    _images(x)
    kernel = unpool_kernel(tuple(x.shape), list(kernel_size), x.element_size())
    return torch.from_numpy(avg_unpool2d_numpy(_numpy(x), kernel))


@_avg_unpool2d.register_fake
def _(x, kernel_size):
    _images(x)
    kh, kw = unpool_kernel(tuple(x.shape), list(kernel_size), x.element_size())
    return x.new_empty((x.shape[0], x.shape[1], x.shape[2] * kh, x.shape[3] * kw))


@custom_op("avg_unpool2d_backward")
def _avg_unpool2d_backward(grad_out: torch.Tensor, kernel_size: List[int]) -> torch.Tensor:
    kernel = _check_avg_unpool_backward(grad_out, kernel_size)
    return torch.from_numpy(avg_unpool2d_numpy(_numpy(grad_out, "grad_out", finite=False), kernel, backward=True))


@_avg_unpool2d_backward.register_fake
def _(grad_out, kernel_size):
    kh, kw = _check_avg_unpool_backward(grad_out, kernel_size)
    return grad_out.new_empty((grad_out.shape[0], grad_out.shape[1], grad_out.shape[2] // kh, grad_out.shape[3] // kw))


def _avg_unpool_setup(ctx, inputs, output):
    ctx.kernel_size = list(inputs[1])


def _avg_unpool_backward(ctx, grad_out):
    return torch.ops.fastgen.avg_unpool2d_backward(grad_out, ctx.kernel_size), None


@_avg_unpool2d.register_kernel("cuda")
def _(x, kernel_size):
    _images(x)
    with on_torch_stream(x):
        (xc,) = cuda_arrays(("x", x))
        kernel = unpool_kernel(tuple(x.shape), list(kernel_size), x.element_size())
        return torch.from_dlpack(avg_unpool2d_cupy(images_cuda(xc, "x"), kernel))


@_avg_unpool2d_backward.register_kernel("cuda")
def _(grad_out, kernel_size):
    kernel = _check_avg_unpool_backward(grad_out, kernel_size)
    with on_torch_stream(grad_out, "grad_out"):
        (g,) = cuda_arrays(("grad_out", grad_out))
        return torch.from_dlpack(avg_unpool2d_cupy(g, kernel, backward=True))


_avg_unpool2d.register_autograd(_avg_unpool_backward, setup_context=_avg_unpool_setup)


# ---- user-facing wrappers ----------------------------------------------------------------------
def _list2(value, name, minimum) -> list:
    return list(pair(list(value) if isinstance(value, Sequence) else value, name, minimum))


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """``(out, indices)``: max pooling of (N, C, H, W) with the argmax of every window."""
    tensors(x=x)
    kernel = _list2(kernel_size, "kernel_size", 1)
    return torch.ops.fastgen.max_pool2d(x, kernel, kernel if stride is None else _list2(stride, "stride", 1),
                                        _list2(padding, "padding", 0))


def max_unpool2d(x, indices, output_size):
    """Values of x put back at their indices in a zero tensor of spatial size ``output_size``."""
    tensors(x=x, indices=indices)
    return torch.ops.fastgen.max_unpool2d(x, indices, _list2(output_size, "output_size", 1))


def avg_unpool2d(x, kernel_size):
    """Each value of x fills its ``kernel_size`` block (the inverse of average pooling)."""
    tensors(x=x)
    return torch.ops.fastgen.avg_unpool2d(x, _list2(kernel_size, "kernel_size", 1))
