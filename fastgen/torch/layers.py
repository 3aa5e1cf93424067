"""nn.Module wrappers over fastgen's torch ops, with torch's parameter layouts, so a model
can swap ``nn.ConvTranspose2d`` + activation for one fused op and keep its state dict."""
from __future__ import annotations

import math

import torch
from torch import nn

from .conv import conv_transpose2d
from ..ops.conv import activation_code
from ..ops.pool import pair


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
