"""``torch.ops.fastgen.sparse_input_linear``: ``x @ weight_t + bias`` computed on x's nonzeros,
with autograd (``torch.ops.fastgen.sparse_input_linear_backward``).

``sparse_input_linear(x, weight_t, bias) -> y``
    x (batch, in_features), weight_t (in_features, out_features) (``nn.Linear.weight``
    transposed), bias (out_features,) or None; float32 or float64, one dtype, CPU, finite.
    y (batch, out_features).

The kernel is :mod:`fastgen.ops.sparse_linear`'s (csrc/sparse_linear.cpp): each row of x as
the list of its nonzeros, the rows of weight_t they select summed into the output row in SIMD
registers; the weight gradient ``x.T @ grad_y`` on the column lists of x. Where x is denser
than the measured crossover (``fastgen.ops.sparse_linear.FORWARD_MAX_DENSITY`` /
``BACKWARD_MAX_DENSITY``) the product is torch's dense GEMM instead. grad_x (``grad_y @
weight_t.T``) is computed, densely, only when x requires grad; grad_bias is summed over the
batch in row order. First derivatives only.
"""
from __future__ import annotations

from typing import Optional

import torch

from ._library import custom_op
from ._validate import cpu_float_tensor, finite_numpy, tensor_like, tensors
from ...ops.sparse_linear import backward_numpy, check_shapes, forward_numpy


def _check(x, weight_t, bias) -> None:
    cpu_float_tensor(x, "x", 2, "(batch, in_features)")
    cpu_float_tensor(weight_t, "weight_t", 2, "(in_features, out_features)")
    if weight_t.dtype != x.dtype:
        raise TypeError(f"weight_t must have x's dtype {x.dtype}, got {weight_t.dtype}")
    if bias is not None:
        cpu_float_tensor(bias, "bias", 1, "(out_features,)")
        if bias.dtype != x.dtype:
            raise TypeError(f"bias must have x's dtype {x.dtype}, got {bias.dtype}")
    check_shapes(tuple(x.shape), tuple(weight_t.shape), None if bias is None else tuple(bias.shape))


def _check_backward(grad, x, weight_t) -> None:
    """The backward op's tensors: x (batch, in) and weight_t (in, out) as the forward's, grad
    (batch, out)."""
    _check(x, weight_t, None)
    tensor_like(grad, "grad", (x.shape[0], weight_t.shape[1]), x.dtype, "(batch, out_features)")


@custom_op("sparse_input_linear")
def _sparse_input_linear(x: torch.Tensor, weight_t: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    _check(x, weight_t, bias)
    # x's NaN / inf check rides on the kernel's count of its nonzeros; weight_t and bias here
    w = finite_numpy(weight_t, "weight_t")
    b = None if bias is None else finite_numpy(bias, "bias")
    y = forward_numpy(finite_numpy(x, "x", finite=False), w, b)
    if y is not None:
        return torch.from_numpy(y)
    weight_t = weight_t.detach()
    if bias is None:
        return torch.mm(x.detach(), weight_t)
    return torch.addmm(bias.detach(), x.detach(), weight_t)


@_sparse_input_linear.register_fake
def _(x, weight_t, bias):
    _check(x, weight_t, bias)
    return x.new_empty((x.shape[0], weight_t.shape[1]))


@custom_op("sparse_input_linear_backward")
def _sparse_input_linear_backward(grad: torch.Tensor, x: torch.Tensor, weight_t: torch.Tensor, need_x: bool,
                                  need_weight: bool,
                                  need_bias: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grad_x, grad_weight_t, grad_bias), each empty (0,) unless asked for."""
    _check_backward(grad, x, weight_t)
    g = grad.detach().contiguous()
    x = x.detach().contiguous()
    grad_w, grad_b = backward_numpy(x.numpy(), g.numpy(), need_weight, need_bias)
    grad_w = torch.from_numpy(grad_w) if grad_w is not None else (
        torch.mm(x.t(), g) if need_weight else x.new_empty((0,)))
    grad_b = torch.from_numpy(grad_b) if grad_b is not None else x.new_empty((0,))
    grad_x = torch.mm(g, weight_t.detach().t()) if need_x else x.new_empty((0,))
    return grad_x, grad_w, grad_b


@_sparse_input_linear_backward.register_fake
def _(grad, x, weight_t, need_x, need_weight, need_bias):
    _check_backward(grad, x, weight_t)
    empty = x.new_empty((0,))
    return (x.new_empty(x.shape) if need_x else empty, weight_t.new_empty(weight_t.shape) if need_weight else empty,
            x.new_empty((weight_t.shape[1],)) if need_bias else empty)


def _setup(ctx, inputs, output):
    x, weight_t, bias = inputs
    ctx.has_bias = bias is not None
    ctx.save_for_backward(x, weight_t)


def _backward(ctx, grad):
    x, weight_t = ctx.saved_tensors
    need_x, need_w, need_b = ctx.needs_input_grad
    need_b = need_b and ctx.has_bias
    grad_x, grad_w, grad_b = torch.ops.fastgen.sparse_input_linear_backward(grad, x, weight_t, need_x, need_w, need_b)
    return grad_x if need_x else None, grad_w if need_w else None, grad_b if need_b else None


_sparse_input_linear.register_autograd(_backward, setup_context=_setup)


def sparse_input_linear(x: torch.Tensor, weight_t: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``x @ weight_t + bias`` on x's nonzeros (``torch.ops.fastgen.sparse_input_linear``);
    differentiable in all three. weight_t is (in_features, out_features)."""
    tensors(x=x, weight_t=weight_t, bias=bias)
    return torch.ops.fastgen.sparse_input_linear(x, weight_t, bias)
