"""``torch.ops.fastgen.conv_transpose2d``: transposed convolution + bias + activation in one
output pass, with autograd (``torch.ops.fastgen.conv_transpose2d_backward``).

``conv_transpose2d(x, weight, bias, stride[2], padding[2], output_padding[2], activation,
negative_slope) -> y``; the layout and output size of ``torch.nn.functional.conv_transpose2d``
(no groups, no dilation), ``activation`` one of "none", "relu", "leaky_relu", "tanh",
"sigmoid". The forward runs whole in fastgen._C (:func:`fastgen.ops.conv.forward_numpy`: per chunk
of images a GEMM in SciPy's BLAS and the gather/bias/activation pass, chunks spread over the
OpenMP threads); the backward takes the fused activation's derivative in fastgen._C, then computes
grad_x and grad_weight chunked in fastgen._C for images of >= 128 pixels, else in torch's own
transposed-convolution backward (``aten.convolution_backward``, oneDNN for float32); grad_x and
grad_bias only when autograd asks for them. The backward needs only x, weight and y (the activations'
derivatives are written in terms of their output).

CUDA tensors run on torch's current stream through CuPy views (DLPack, zero-copy):
the forward is :func:`fastgen.ops.conv.forward_cupy` (cuBLAS + kernels/conv.cu's output pass), after
one NaN / infinity check of x, weight and bias on the device; the backward is
:func:`fastgen.ops.conv.backward_cupy` (the activation's derivative and im2col in kernels/conv.cu,
cuBLAS GEMMs). cuBLAS rather than torch's cuDNN ``convolution_backward``: under torch's defaults
cuDNN runs float32 convolutions in TF32 (``torch.backends.cudnn.allow_tf32``), which would put the
float32 gradients 1e-3 away from the CPU op's and from this op's own (full-precision cuBLAS)
forward, and toggling that process-wide flag per call would race with other threads. Results equal
the CPU op's to rounding (the GEMMs sum in another order). grad_x is computed even when not needed
(only the 1 x 1 projection's input, where it is tiny, does not need it) and returned empty as on
the CPU. Without CuPy or a usable device a CUDA tensor raises a TypeError naming it; all tensors
of one call must share a device (a mix raises a ValueError naming both).
"""
from __future__ import annotations

from typing import List, Optional

import torch

from ._library import custom_op
from ._validate import cuda_arrays, finite_numpy, float_tensor, on_torch_stream, same_device, tensors
from ...ops.conv import (activation_backward_numpy, activation_code, backward_cupy, backward_numpy, check_slope,
                         conv_transpose_geometry, forward_cupy, forward_numpy)
from ...ops.pool import pair
from ...ops.validation import DeviceChecks


def _check(x, weight, bias):
    """Types and dtypes on any device (CPU, CUDA, meta / fake); a device mix names both arguments."""
    for name, t in (("x", x), ("weight", weight)) + ((("bias", bias),) if bias is not None else ()):
        float_tensor(t, name)
        if t.dtype != x.dtype:
            raise TypeError(f"{name} must have x's dtype {x.dtype}, got {t.dtype}")
    same_device("x", x, weight=weight, bias=bias)


def _np_dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _check_backward(grad_out, y, x, weight, stride, padding, output_padding, activation, negative_slope):
    """(geometry, code, slope) of the backward op, its tensors checked against x's geometry (the
    kernels index grad_out and y by it): any inconsistency is refused before anything is read."""
    float_tensor(x, "x")
    float_tensor(weight, "weight")
    if weight.dtype != x.dtype:
        raise TypeError(f"weight must have x's dtype {x.dtype}, got {weight.dtype}")
    same_device("x", x, grad_out=grad_out, y=y, weight=weight)
    geometry = _geometry(x, weight, None, stride, padding, output_padding)
    code, slope = activation_code(activation), check_slope(negative_slope, _np_dtype(x))
    out_shape = (geometry[0], geometry[4], geometry[5], geometry[6])
    for name, t in (("grad_out", grad_out), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if tuple(t.shape) != out_shape or t.dtype != x.dtype:
            raise ValueError(f"{name} must have the output's shape {out_shape} and x's dtype {x.dtype}, got "
                             f"{tuple(t.shape)} {t.dtype}")
    return geometry, code, slope


def _geometry(x, weight, bias, stride, padding, output_padding):
    return conv_transpose_geometry(tuple(x.shape), tuple(weight.shape), None if bias is None else tuple(bias.shape),
                                   list(stride), list(padding), list(output_padding))


@custom_op("conv_transpose2d")
def _conv_transpose2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: List[int],
                      padding: List[int], output_padding: List[int], activation: str,
                      negative_slope: float) -> torch.Tensor:
    _check(x, weight, bias)
    geometry = _geometry(x, weight, bias, stride, padding, output_padding)
    code, slope = activation_code(activation), check_slope(negative_slope, _np_dtype(x))
    # x's NaN / inf check is fused into the kernel's read of x (forward_numpy raises); the small
    # weight and bias are checked here.
    w = finite_numpy(weight, "weight")
    b = None if bias is None else finite_numpy(bias, "bias")
    return torch.from_numpy(forward_numpy(finite_numpy(x, "x", finite=False), w, b, geometry, code, slope))


@_conv_transpose2d.register_fake
def _(x, weight, bias, stride, padding, output_padding, activation, negative_slope):
    _check(x, weight, bias)
    g = _geometry(x, weight, bias, stride, padding, output_padding)
    activation_code(activation)
    return x.new_empty((g[0], g[4], g[5], g[6]))


# Images of at least this many pixels get fastgen._C's chunked backward; smaller ones (packed 4x4,
# 8x8, the 1 x 1 projection) run faster in torch's convolution_backward (docs/performance.md).
_CPP_BACKWARD_MIN_PIXELS = 128


@custom_op("conv_transpose2d_backward")
def _conv_transpose2d_backward(grad_out: torch.Tensor, y: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                               stride: List[int], padding: List[int], output_padding: List[int], activation: str,
                               negative_slope: float, need_x: bool = True,
                               need_bias: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grad_x, grad_weight, grad_bias); grad_x is empty (0,) unless need_x, grad_bias unless need_bias."""
    geometry, code, slope = _check_backward(grad_out, y, x, weight, stride, padding, output_padding, activation,
                                            negative_slope)
    g = grad_out.detach().contiguous()
    if code != 0:
        g = torch.from_numpy(activation_backward_numpy(g.numpy(), y.detach().contiguous().numpy(), code, slope))
    x, weight = x.detach(), weight.detach()
    grad_b = (g.sum(dim=(0, 2, 3)) if g.numel() else g.new_zeros((weight.shape[1],))) if need_bias \
        else g.new_empty((0,))
    if x.numel() == 0 or g.numel() == 0:  # nothing to multiply: every gradient is zero
        return (torch.zeros_like(x) if need_x else x.new_empty((0,))), torch.zeros_like(weight), grad_b
    if x.shape[2] * x.shape[3] >= _CPP_BACKWARD_MIN_PIXELS:
        grad_x, grad_w = backward_numpy(g.numpy(), x.contiguous().numpy(), weight.contiguous().numpy(), geometry,
                                        need_x)
        return (torch.from_numpy(grad_x) if need_x else x.new_empty((0,))), torch.from_numpy(grad_w), grad_b
    # grad_x (a strided convolution of g with the weight) and grad_weight in torch's own
    # transposed-convolution backward (oneDNN for float32)
    grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
        g, x.contiguous(), weight.contiguous(), None, list(stride), list(padding), [1, 1], True,
        list(output_padding), 1, [need_x, True, False])
    return (grad_x.contiguous() if need_x else x.new_empty((0,))), grad_w.contiguous(), grad_b


@_conv_transpose2d_backward.register_fake
def _(grad_out, y, x, weight, stride, padding, output_padding, activation, negative_slope, need_x=True,
      need_bias=True):
    _check_backward(grad_out, y, x, weight, stride, padding, output_padding, activation, negative_slope)
    return (torch.empty_like(x) if need_x else x.new_empty((0,))), torch.empty_like(weight), \
        x.new_empty((weight.shape[1] if need_bias else 0,))


# ---- CUDA kernels ------------------------------------------------------------------------------
# The dispatcher picks the CUDA kernel whenever any tensor argument is on CUDA, so a CUDA/CPU mix
# arrives here and is refused by _check / same_device before anything is read.
def _check_finite_cuda(*named) -> None:
    """ValueError naming the first of (name, CuPy array) pairs holding a NaN or infinity; one
    device-to-host transfer for all of them."""
    checks = DeviceChecks()
    for name, a in named:
        checks.finite(a, name)
    checks.raise_first()


def _conv_transpose2d_cuda(x, weight, bias, stride, padding, output_padding, activation, negative_slope):
    _check(x, weight, bias)
    geometry = _geometry(x, weight, bias, stride, padding, output_padding)
    code, slope = activation_code(activation), check_slope(negative_slope, _np_dtype(x))
    with on_torch_stream(x):
        xc, wc, bc = cuda_arrays(("x", x), ("weight", weight), ("bias", bias))
        # forward_cupy does not look for NaN in x (a relu could hide it); checked in the CPU op's order
        _check_finite_cuda(("weight", wc), ("bias", bc), ("x", xc))
        return torch.from_dlpack(forward_cupy(xc, wc, bc, geometry, code, slope))


def _conv_transpose2d_backward_cuda(grad_out, y, x, weight, stride, padding, output_padding, activation,
                                    negative_slope, need_x=True, need_bias=True):
    # the kernels index grad_out and y by x's geometry: refuse anything else before a launch
    geometry, code, slope = _check_backward(grad_out, y, x, weight, stride, padding, output_padding, activation,
                                            negative_slope)
    with on_torch_stream(grad_out, "grad_out"):
        g, yc, xc, wc = cuda_arrays(("grad_out", grad_out), ("y", y), ("x", x), ("weight", weight))
        grad_x, grad_w, grad_b = backward_cupy(g, yc, xc, wc, geometry, code, slope, need_bias=need_bias)
        return (torch.from_dlpack(grad_x) if need_x else x.new_empty((0,))), torch.from_dlpack(grad_w), \
            (torch.from_dlpack(grad_b) if need_bias else x.new_empty((0,)))


_conv_transpose2d.register_kernel("cuda")(_conv_transpose2d_cuda)
_conv_transpose2d_backward.register_kernel("cuda")(_conv_transpose2d_backward_cuda)


def _setup(ctx, inputs, output):
    x, weight, bias, stride, padding, output_padding, activation, negative_slope = inputs
    ctx.save_for_backward(x, weight, output)
    ctx.args = (list(stride), list(padding), list(output_padding), activation, negative_slope)
    ctx.has_bias = bias is not None


def _backward(ctx, grad_out):
    x, weight, y = ctx.saved_tensors
    need_x = ctx.needs_input_grad[0]
    need_bias = ctx.has_bias and ctx.needs_input_grad[2]
    grad_x, grad_w, grad_b = torch.ops.fastgen.conv_transpose2d_backward(grad_out, y, x, weight, *ctx.args,
                                                                         need_x, need_bias)
    return (grad_x if need_x else None), (grad_w if ctx.needs_input_grad[1] else None), \
        (grad_b if need_bias else None), None, None, None, None, None


_conv_transpose2d.register_autograd(_backward, setup_context=_setup)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, activation="none",
                     negative_slope=0.01):
    """``act(F.conv_transpose2d(x, weight, bias, stride, padding, output_padding))`` in one op."""
    tensors(x=x, weight=weight, bias=bias)
    return torch.ops.fastgen.conv_transpose2d(x, weight, bias, list(pair(stride, "stride", 1)),
                                              list(pair(padding, "padding", 0)),
                                              list(pair(output_padding, "output_padding", 0)),
                                              activation or "none", negative_slope)
