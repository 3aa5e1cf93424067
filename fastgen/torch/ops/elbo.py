"""``torch.ops.fastgen.bernoulli_log_likelihood`` and ``gaussian_log_likelihood``: the ELBO's
reconstruction terms as fused per-sample reductions, with autograd.

``bernoulli_log_likelihood(x, logits) -> (n,)``
    sum over every axis but the first of ``x * l - softplus(l)``; x in [0, 1].
``gaussian_log_likelihood(x, mean, logvar) -> (n,)``
    sum of ``-(log 2 pi + v + (x - m)^2 e^-v) / 2``; logvar of x's shape, of its per-feature
    shape ``x.shape[1:]`` (a learned decoder variance), or None (unit variance).

Both backward passes are custom ops too (one pass each, from the saved inputs); gradients
reach x as well when it requires them. First derivatives only.

CUDA tensors run kernels/elbo.cu on torch's current stream (CuPy views through DLPack, see
:mod:`fastgen.ops.elbo`); without CuPy or a usable device they raise a TypeError naming the
tensor. All tensors of one call must share a device.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from ._library import custom_op
from ._validate import cuda_arrays, finite_numpy, float_tensor, on_torch_stream, same_device, tensor_like, tensors
from ...ops.elbo import (bernoulli_log_likelihood_backward_cupy, bernoulli_log_likelihood_backward_numpy,
                         bernoulli_log_likelihood_cupy, bernoulli_log_likelihood_numpy,
                         bernoulli_log_likelihood_with_grad_numpy, check_logvar_shape,
                         check_unit_interval, check_unit_interval_cuda, gaussian_log_likelihood_backward_cupy,
                         gaussian_log_likelihood_backward_numpy, gaussian_log_likelihood_cupy,
                         gaussian_log_likelihood_numpy)


def _check_pair(x: torch.Tensor, other: torch.Tensor, other_name: str) -> None:
    float_tensor(x, "x")
    float_tensor(other, other_name)
    same_device("x", x, **{other_name: other})
    if x.dim() < 2:
        raise ValueError(f"x must be (batch, ...) with at least 2 dimensions, got shape {tuple(x.shape)}")
    if other.shape != x.shape or other.dtype != x.dtype:
        raise ValueError(f"{other_name} must have x's shape {tuple(x.shape)} and dtype {x.dtype}, got "
                         f"{tuple(other.shape)} {other.dtype}")


def _check_grad(grad, x) -> None:
    """The backward ops' upstream gradient: one value per sample, x's dtype and device."""
    same_device("x", x, grad=grad)
    tensor_like(grad, "grad", x.shape[:1], x.dtype, "(one value per sample of x)")


def _rows(a):
    return a.reshape(a.shape[0], math.prod(a.shape[1:]))


@custom_op("bernoulli_log_likelihood")
def _bernoulli_op(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    _check_pair(x, logits, "logits")
    x2d = _rows(finite_numpy(x, "x", finite=False))  # the finite check is fused into the reduction
    check_unit_interval(x2d)
    return torch.from_numpy(bernoulli_log_likelihood_numpy(x2d, _rows(finite_numpy(logits, "logits", False))))


@_bernoulli_op.register_fake
def _(x, logits):
    _check_pair(x, logits, "logits")
    return x.new_empty(x.shape[:1])


@custom_op("bernoulli_log_likelihood_backward")
def _bernoulli_backward_op(grad: torch.Tensor, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    _check_pair(x, logits, "logits")
    _check_grad(grad, x)
    g = grad.detach().contiguous().numpy()
    l2d = _rows(logits.detach().contiguous().numpy())
    out = bernoulli_log_likelihood_backward_numpy(g, _rows(x.detach().contiguous().numpy()), l2d)
    return torch.from_numpy(out).reshape(logits.shape)


@_bernoulli_backward_op.register_fake
def _(grad, x, logits):
    _check_pair(x, logits, "logits")
    _check_grad(grad, x)
    return torch.empty_like(logits)


def _bernoulli_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _bernoulli_backward(ctx, grad):
    x, logits = ctx.saved_tensors
    grad_logits = torch.ops.fastgen.bernoulli_log_likelihood_backward(grad, x, logits) \
        if ctx.needs_input_grad[1] else None
    grad_x = grad.reshape((-1,) + (1,) * (x.dim() - 1)) * logits if ctx.needs_input_grad[0] else None
    return grad_x, grad_logits


@_bernoulli_op.register_kernel("cuda")
def _(x, logits):
    _check_pair(x, logits, "logits")
    with on_torch_stream(x):
        xc, lc = cuda_arrays(("x", x), ("logits", logits))
        x2d = _rows(xc)
        check_unit_interval_cuda(x2d)
        return torch.from_dlpack(bernoulli_log_likelihood_cupy(x2d, _rows(lc)))


@_bernoulli_backward_op.register_kernel("cuda")
def _(grad, x, logits):
    _check_pair(x, logits, "logits")
    _check_grad(grad, x)
    with on_torch_stream(grad, "grad"):
        g, xc, lc = cuda_arrays(("grad", grad), ("x", x), ("logits", logits))
        return torch.from_dlpack(bernoulli_log_likelihood_backward_cupy(g, _rows(xc), _rows(lc))).reshape(
            logits.shape)


_bernoulli_op.register_autograd(_bernoulli_backward, setup_context=_bernoulli_setup)


# Training differentiates the likelihood every time, so the gradient's per-element factor
# x - sigmoid(l) comes out of the forward pass, from the same exponentials: the backward is one
# multiplication instead of a second op and pass over the data.
@custom_op("bernoulli_log_likelihood_with_grad")
def _bernoulli_with_grad_op(x: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-sample log-likelihood (n,), x - sigmoid(logits) shaped like logits)."""
    _check_pair(x, logits, "logits")
    x2d = _rows(finite_numpy(x, "x", finite=False))
    check_unit_interval(x2d)
    out, grad = bernoulli_log_likelihood_with_grad_numpy(x2d, _rows(finite_numpy(logits, "logits", False)))
    return torch.from_numpy(out), torch.from_numpy(grad).reshape(logits.shape)


@_bernoulli_with_grad_op.register_fake
def _(x, logits):
    _check_pair(x, logits, "logits")
    return x.new_empty(x.shape[:1]), torch.empty_like(logits, memory_format=torch.contiguous_format)


@_bernoulli_with_grad_op.register_kernel("cuda")
def _(x, logits):
    _check_pair(x, logits, "logits")
    with on_torch_stream(x):
        xc, lc = cuda_arrays(("x", x), ("logits", logits))
        x2d, l2d = _rows(xc), _rows(lc)
        check_unit_interval_cuda(x2d)
        out = bernoulli_log_likelihood_cupy(x2d, l2d)
        import cupy as cp

        grad = bernoulli_log_likelihood_backward_cupy(cp.ones_like(out), x2d, l2d)
        return torch.from_dlpack(out), torch.from_dlpack(grad).reshape(logits.shape)


def _bernoulli_with_grad_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs, output[1])
    ctx.mark_non_differentiable(output[1])


def _bernoulli_with_grad_backward(ctx, grad, _unused):
    x, logits, grad_factor = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph: the two-op backward, which refuses a second derivative
        grad_logits = torch.ops.fastgen.bernoulli_log_likelihood_backward(grad, x, logits) \
            if ctx.needs_input_grad[1] else None
    else:
        grad_logits = grad.reshape((-1,) + (1,) * (logits.dim() - 1)) * grad_factor \
            if ctx.needs_input_grad[1] else None
    grad_x = grad.reshape((-1,) + (1,) * (x.dim() - 1)) * logits if ctx.needs_input_grad[0] else None
    return grad_x, grad_logits


_bernoulli_with_grad_op.register_autograd(_bernoulli_with_grad_backward, setup_context=_bernoulli_with_grad_setup)


def _check_gaussian(x, mean, logvar) -> None:
    _check_pair(x, mean, "mean")
    if logvar is not None:
        float_tensor(logvar, "logvar")
        same_device("x", x, logvar=logvar)
        if logvar.dtype != x.dtype:
            raise ValueError(f"logvar must have x's dtype {x.dtype}, got {logvar.dtype}")
        check_logvar_shape(tuple(logvar.shape), tuple(x.shape))


def _logvar_numpy(logvar, x_shape, finite: bool):
    if logvar is None:
        return None
    v = finite_numpy(logvar, "logvar", finite)
    return _rows(v) if tuple(logvar.shape) == tuple(x_shape) else v.reshape(-1)


@custom_op("gaussian_log_likelihood")
def _gaussian_op(x: torch.Tensor, mean: torch.Tensor, logvar: Optional[torch.Tensor]) -> torch.Tensor:
    _check_gaussian(x, mean, logvar)
    # the finite check is fused into the reduction (gaussian_log_likelihood_numpy)
    out = gaussian_log_likelihood_numpy(_rows(finite_numpy(x, "x", False)), _rows(finite_numpy(mean, "mean", False)),
                                        _logvar_numpy(logvar, x.shape, False))
    return torch.from_numpy(out)


@_gaussian_op.register_fake
def _(x, mean, logvar):
    _check_gaussian(x, mean, logvar)
    return x.new_empty(x.shape[:1])


@custom_op("gaussian_log_likelihood_backward")
def _gaussian_backward_op(grad: torch.Tensor, x: torch.Tensor, mean: torch.Tensor,
                          logvar: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_mean, grad_logvar); grad_logvar is empty (0 elements) when logvar is None."""
    _check_gaussian(x, mean, logvar)
    _check_grad(grad, x)
    g = grad.detach().contiguous().numpy()
    v = _logvar_numpy(logvar, x.shape, False)
    grad_mean, grad_logvar = gaussian_log_likelihood_backward_numpy(
        g, _rows(x.detach().contiguous().numpy()), _rows(mean.detach().contiguous().numpy()), v, v is not None)
    gm = torch.from_numpy(grad_mean).reshape(mean.shape)
    gv = torch.from_numpy(grad_logvar).reshape(logvar.shape) if logvar is not None else mean.new_empty((0,))
    return gm, gv


@_gaussian_backward_op.register_fake
def _(grad, x, mean, logvar):
    _check_gaussian(x, mean, logvar)
    _check_grad(grad, x)
    return torch.empty_like(mean), (torch.empty_like(logvar) if logvar is not None else mean.new_empty((0,)))


def _gaussian_setup(ctx, inputs, output):
    x, mean, logvar = inputs
    ctx.has_logvar = logvar is not None
    ctx.save_for_backward(x, mean, logvar if logvar is not None else None)


def _gaussian_backward(ctx, grad):
    x, mean, logvar = ctx.saved_tensors
    grad_mean, grad_logvar = torch.ops.fastgen.gaussian_log_likelihood_backward(grad, x, mean, logvar)
    # d/dx is -d/dmean element for element
    grad_x = -grad_mean if ctx.needs_input_grad[0] else None
    return (grad_x, grad_mean if ctx.needs_input_grad[1] else None,
            grad_logvar if (ctx.has_logvar and ctx.needs_input_grad[2]) else None)


def _logvar_cupy(lv, x_shape, logvar):
    if lv is None:
        return None
    return _rows(lv) if tuple(logvar.shape) == tuple(x_shape) else lv.reshape(-1)


@_gaussian_op.register_kernel("cuda")
def _(x, mean, logvar):
    _check_gaussian(x, mean, logvar)
    with on_torch_stream(x):
        xc, mc, lv = cuda_arrays(("x", x), ("mean", mean), ("logvar", logvar))
        return torch.from_dlpack(gaussian_log_likelihood_cupy(_rows(xc), _rows(mc), _logvar_cupy(lv, x.shape, logvar)))


@_gaussian_backward_op.register_kernel("cuda")
def _(grad, x, mean, logvar):
    _check_gaussian(x, mean, logvar)
    _check_grad(grad, x)
    with on_torch_stream(grad, "grad"):
        g, xc, mc, lv = cuda_arrays(("grad", grad), ("x", x), ("mean", mean), ("logvar", logvar))
        v = _logvar_cupy(lv, x.shape, logvar)
        grad_mean, grad_logvar = gaussian_log_likelihood_backward_cupy(g, _rows(xc), _rows(mc), v, v is not None)
        gm = torch.from_dlpack(grad_mean).reshape(mean.shape)
        gv = torch.from_dlpack(grad_logvar).reshape(logvar.shape) if logvar is not None else mean.new_empty((0,))
        return gm, gv


_gaussian_op.register_autograd(_gaussian_backward, setup_context=_gaussian_setup)


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Per-sample ``sum(x * logits - softplus(logits))`` (shape (n,)); differentiable. When the
    logits need a gradient, their gradient factor comes out of the same pass
    (``torch.ops.fastgen.bernoulli_log_likelihood_with_grad``)."""
    tensors(x=x, logits=logits)
    if torch.is_grad_enabled() and isinstance(logits, torch.Tensor) and logits.requires_grad:
        return torch.ops.fastgen.bernoulli_log_likelihood_with_grad(x, logits)[0]
    return torch.ops.fastgen.bernoulli_log_likelihood(x, logits)


def gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, logvar: Optional[torch.Tensor] = None):
    """Per-sample ``log N(x | mean, exp(logvar))`` summed over features (shape (n,)); differentiable."""
    tensors(x=x, mean=mean, logvar=logvar)
    return torch.ops.fastgen.gaussian_log_likelihood(x, mean, logvar)
