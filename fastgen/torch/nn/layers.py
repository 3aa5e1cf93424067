"""nn.Module wrappers over fastgen's torch ops, with torch's parameter layouts where the op
allows, so a model can swap ``nn.ConvTranspose2d`` + activation for one fused op and keep its
state dict, or ``nn.Linear`` on mostly-zero input for :class:`SparseInputLinear` (whose state
dict stores the weight transposed and still loads an ``nn.Linear``'s)."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..ops.conv import conv_transpose2d
from ..ops.sparse_linear import sparse_input_linear
from ...ops.conv import activation_code
from ...ops.pool import pair


class ConvTranspose2d(nn.Module):
    """``activation(nn.ConvTranspose2d(...)(x))`` in one fused op (``torch.ops.fastgen.conv_transpose2d``).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding, output_padding : int or (int, int)
    bias : bool, default=True
    activation : {"none", "relu", "leaky_relu", "tanh", "sigmoid"}, default="none"
    negative_slope : float, default=0.01
        leaky_relu's slope.

    Shapes: x (n, in_channels, h, w) -> (n, out_channels, (h - 1) * stride - 2 * padding + kernel +
    output_padding, same for w). ``weight`` is (in_channels, out_channels, kh, kw) and the
    initialisation is nn.ConvTranspose2d's, so state dicts are interchangeable.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 bias: bool = True, activation: str = "none", negative_slope: float = 0.01):
        super().__init__()
        activation_code(activation)
        kh, kw = pair(kernel_size, "kernel_size", 1)
        self.stride, self.padding = pair(stride, "stride", 1), pair(padding, "padding", 0)
        self.output_padding = pair(output_padding, "output_padding", 0)
        self.activation, self.negative_slope = activation, float(negative_slope)
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        # nn.ConvTranspose2d's initialisation (kaiming_uniform with a = sqrt(5); fan_in from dim 1)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = out_channels * kh * kw
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                self.activation, self.negative_slope)

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[0]}, {self.weight.shape[1]}, kernel_size={tuple(self.weight.shape[2:])}, "
                f"stride={self.stride}, padding={self.padding}, output_padding={self.output_padding}, "
                f"activation={self.activation!r}, bias={self.bias is not None}")


class SparseInputLinear(nn.Module):
    """``nn.Linear`` for inputs with many exact zeros (``torch.ops.fastgen.sparse_input_linear``):
    the product runs over x's nonzeros only, or as a dense GEMM above the measured density
    crossover (see :mod:`fastgen.ops.sparse_linear`).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default=True

    Shapes: x (n, in_features) -> (n, out_features). The weight is stored transposed,
    ``weight_t`` (in_features, out_features) = ``nn.Linear.weight.T``, so that each nonzero of x
    selects a contiguous row. Initialisation draws exactly what ``nn.Linear(in_features,
    out_features)`` draws (same values from the same torch seed), and a state dict saved from
    an ``nn.Linear`` (key ``weight``, (out, in)) loads, transposed.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        # nn.Linear's initialisation on its own (out, in) layout, so the draws and fan-in match
        weight = torch.empty(self.out_features, self.in_features)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        self.weight_t = nn.Parameter(weight.t().contiguous())
        if bias:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            self.bias = nn.Parameter(torch.empty(self.out_features).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sparse_input_linear(x, self.weight_t, self.bias)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # an nn.Linear's (or an older fastgen checkpoint's) weight, (out, in): store it transposed
        linear_key = prefix + "weight"
        if linear_key in state_dict and prefix + "weight_t" not in state_dict:
            weight = state_dict.pop(linear_key)
            state_dict[prefix + "weight_t"] = weight.t() if weight.dim() == 2 else weight
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
