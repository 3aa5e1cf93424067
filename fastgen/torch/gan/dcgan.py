"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016) for 28x28, 32x32 and
64x64 images, and the small MLP pair of the 2-D mixture experiments (Metz et al. 2017).

Radford et al.'s guidelines, as built here: the generator up-samples with fractionally-strided
(transposed) convolutions -- fastgen's fused op, ``torch.ops.fastgen.conv_transpose2d`` -- and
the discriminator down-samples with strided convolutions (no pooling); batch norm in both except
the generator's output and the discriminator's input layer; ReLU in the generator with a Tanh
output, LeakyReLU (slope 0.2) in the discriminator; no fully connected hidden layers; weights
from N(0, 0.02), batch-norm scales from N(1, 0.02). Convolutions followed by batch norm carry no
bias (it would be cancelled by the normalisation's mean subtraction).

Options beyond the paper: ``n_classes`` (conditional GAN: a one-hot label is appended to z and,
as constant feature maps, to the discriminator's input), ``norm="virtual"`` (virtual batch
norm against a reference batch, :class:`.VirtualBatchNorm`), ``norm="none"``, and
``minibatch_kernels`` (minibatch discrimination before the discriminator's last layer).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.conv import conv_transpose2d
from ..._checks import positive_int
from ._checks import check_labels, float_tensor, one_hot
from .stabilizers import MinibatchDiscrimination, VirtualBatchNorm, reference_pass

IMAGE_SIZES = (28, 32, 64)
NORMS = ("batch", "virtual", "none")
LEAKY_SLOPE = 0.2
INIT_STD = 0.02
# Width multipliers of the hidden feature maps, from the generator's first (smallest) map to its
# last; the discriminator mirrors them. 64x64: 4 -> 8 -> 16 -> 32 -> 64; 32x32: 4 -> 8 -> 16 -> 32;
# 28x28: 7 -> 14 -> 28 (MNIST's size does not halve down to 4).
_PLANS = {64: ((8, 4, 2, 1), 4), 32: ((4, 2, 1), 4), 28: ((2, 1), 7)}


def check_image_size(image_size) -> int:
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {', '.join(map(str, IMAGE_SIZES))} (the DCGAN architectures "
                         f"built here), got {image_size!r}")
    return int(image_size)


def _check_norm(norm) -> str:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    return norm


def _norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        layer = nn.BatchNorm2d(channels)
    elif norm == "virtual":
        layer = VirtualBatchNorm(channels)
    else:
        return nn.Identity()
    with torch.no_grad():
        layer.weight.normal_(1.0, INIT_STD)
        layer.bias.zero_()
    return layer


class _ReferenceBatch(nn.Module):
    """Holds the fixed reference batch of virtual batch norm as buffers (saved in state_dict) and
    runs it through the network before every forward pass when ``norm == "virtual"``."""

    def _init_reference(self, norm: str, reference_size: int, shape: tuple, n_classes: int):
        self.norm = norm
        size = positive_int(reference_size, "reference_size") if norm == "virtual" else 0
        self.register_buffer("reference_inputs", torch.zeros((size,) + shape))
        self.register_buffer("reference_labels", torch.zeros(size if n_classes else 0, dtype=torch.long))
        self._has_reference = False

    @property
    def input_shape(self) -> tuple:
        """Shape of one input sample (without the batch axis)."""
        return tuple(self.reference_inputs.shape[1:])

    def set_reference(self, inputs: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Fix the reference batch of virtual batch norm (chosen once, at the start of training).

        Parameters
        ----------
        inputs : Tensor of the shape of ``reference_inputs`` (R, ...)
            Noise for a generator, real data for a discriminator.
        labels : LongTensor of shape (R,), required for a conditional model
        """
        if self.norm != "virtual":
            raise ValueError(f"set_reference: the model uses norm={self.norm!r}; a reference batch is for "
                             "norm='virtual'")
        float_tensor(inputs, "inputs")
        if tuple(inputs.shape) != tuple(self.reference_inputs.shape):
            raise ValueError(f"inputs must have shape {tuple(self.reference_inputs.shape)} (reference_size, ...), "
                             f"got {tuple(inputs.shape)}")
        labels = check_labels(labels, inputs.shape[0], self.n_classes)
        with torch.no_grad():
            self.reference_inputs.copy_(inputs)
            if labels is not None:
                self.reference_labels.copy_(labels)
        self._has_reference = True

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if prefix + "reference_inputs" in state_dict and self.norm == "virtual":
            self._has_reference = True

    def _run(self, x, labels):
        if self.norm == "virtual":
            if not self._has_reference:
                raise RuntimeError("norm='virtual' needs a reference batch: call set_reference(...) first")
            ref_labels = self.reference_labels if self.n_classes else None
            with reference_pass(self):
                self._forward(self.reference_inputs.to(x.dtype), ref_labels)
        return self._forward(x, labels)


class DCGANGenerator(_ReferenceBatch):
    """DCGAN generator: z -> image in [-1, 1].

    Parameters
    ----------
    latent_dim : int, default=100
    image_size : {28, 32, 64}, default=64
    channels : int, default=3
    width : int, default=64
        Feature maps of the last hidden layer (Radford et al.'s ngf); earlier layers have
        2, 4, 8 times as many.
    n_classes : int, default=0
        > 0 makes it conditional: ``forward(z, labels)`` appends one_hot(labels) to z.
    norm : {"batch", "virtual", "none"}, default="batch"
    reference_size : int, default=64
        Size of the reference batch with ``norm="virtual"``.

    Shapes: z (N, latent_dim) or (N, latent_dim, 1, 1), labels (N,) -> (N, channels, image_size, image_size).
    """

    def __init__(self, latent_dim: int = 100, image_size: int = 64, channels: int = 3, width: int = 64,
                 n_classes: int = 0, norm: str = "batch", reference_size: int = 64):
        super().__init__()
        self.config = dict(latent_dim=latent_dim, image_size=image_size, channels=channels, width=width,
                           n_classes=n_classes, norm=norm, reference_size=reference_size)
        self.latent_dim = positive_int(latent_dim, "latent_dim")
        self.image_size = check_image_size(image_size)
        self.channels = positive_int(channels, "channels")
        self.width = positive_int(width, "width")
        self.n_classes = positive_int(n_classes, "n_classes", minimum=0)
        _check_norm(norm)
        multipliers, first_kernel = _PLANS[self.image_size]
        sizes = [self.latent_dim + self.n_classes] + [m * self.width for m in multipliers]
        # (stride, padding) per layer: the first maps 1x1 to first_kernel x first_kernel, the rest double.
        self.geometry = [(1, 0)] + [(2, 1)] * len(multipliers)
        kernels = [first_kernel] + [4] * len(multipliers)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(c_in, c_out, k, k) * INIT_STD)
            for c_in, c_out, k in zip(sizes, sizes[1:] + [self.channels], kernels))
        self.norms = nn.ModuleList(_norm_layer(norm, c) for c in sizes[1:])
        # Hidden layers have a bias only without normalisation (batch norm cancels it).
        self.hidden_biases = nn.ParameterList(nn.Parameter(torch.zeros(c)) for c in sizes[1:]) if norm == "none" \
            else nn.ParameterList()
        self.output_bias = nn.Parameter(torch.zeros(self.channels))
        self._init_reference(norm, reference_size, (self.latent_dim,), self.n_classes)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        float_tensor(z, "z")
        if not (z.dim() == 2 and z.shape[1] == self.latent_dim) and \
                not (z.dim() == 4 and tuple(z.shape[1:]) == (self.latent_dim, 1, 1)):
            raise ValueError(f"z must have shape (N, {self.latent_dim}) or (N, {self.latent_dim}, 1, 1), "
                             f"got {tuple(z.shape)}")
        labels = check_labels(labels, z.shape[0], self.n_classes)
        return self._run(z.reshape(z.shape[0], self.latent_dim), labels)

    def _forward(self, z, labels):
        if labels is not None:
            z = torch.cat([z, one_hot(labels, self.n_classes, z.dtype)], dim=1)
        h = z.reshape(z.shape[0], -1, 1, 1)
        last = len(self.weights) - 1
        for i, weight in enumerate(self.weights):
            stride, padding = self.geometry[i]
            if i == last:
                return conv_transpose2d(h, weight, self.output_bias, stride, padding, 0, "tanh")
            if self.norm == "none":   # bias and ReLU fused into the convolution
                h = conv_transpose2d(h, weight, self.hidden_biases[i], stride, padding, 0, "relu")
            else:
                h = F.relu(self.norms[i](conv_transpose2d(h, weight, None, stride, padding, 0, "none")),
                           inplace=True)
        raise AssertionError("unreachable")


class DCGANDiscriminator(_ReferenceBatch):
    """DCGAN discriminator: image -> logit (a score for LSGAN).

    Parameters
    ----------
    image_size : {28, 32, 64}, default=64
    channels : int, default=3
    width : int, default=64
        Feature maps of the first layer (Radford et al.'s ndf); later layers 2, 4, 8 times.
    n_classes : int, default=0
        > 0: conditional, ``forward(x, labels)`` appends one_hot(labels) as constant input maps.
    norm : {"batch", "virtual", "none"}, default="batch"
    minibatch_kernels : int, default=0
        > 0 adds minibatch discrimination (B kernels of ``minibatch_kernel_dim``) on the last
        feature maps, followed by a linear output layer instead of the last convolution.
    minibatch_kernel_dim : int, default=5
    reference_size : int, default=64

    Shapes: x (N, channels, image_size, image_size), labels (N,) -> (N,).

    On the CPU the convolutions run in the channels-last layout (``channels_last = True``, a
    class attribute: set it to False on an instance for the NCHW layout): the input is copied to
    channels-last once and every feature map after it stays so. oneDNN's strided convolutions
    and their backward are faster on it (docs/performance.md); the parameters, the state dict and
    the results (to rounding) are those of the NCHW model.
    """

    channels_last = True

    def __init__(self, image_size: int = 64, channels: int = 3, width: int = 64, n_classes: int = 0,
                 norm: str = "batch", minibatch_kernels: int = 0, minibatch_kernel_dim: int = 5,
                 reference_size: int = 64):
        super().__init__()
        self.config = dict(image_size=image_size, channels=channels, width=width, n_classes=n_classes, norm=norm,
                           minibatch_kernels=minibatch_kernels, minibatch_kernel_dim=minibatch_kernel_dim,
                           reference_size=reference_size)
        self.image_size = check_image_size(image_size)
        self.channels = positive_int(channels, "channels")
        self.width = positive_int(width, "width")
        self.n_classes = positive_int(n_classes, "n_classes", minimum=0)
        _check_norm(norm)
        multipliers, last_kernel = _PLANS[self.image_size]
        multipliers = multipliers[::-1]
        sizes = [self.channels + self.n_classes] + [m * self.width for m in multipliers]
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 4, 2, 1, bias=(i == 0 or norm == "none"))
            for i, (c_in, c_out) in enumerate(zip(sizes, sizes[1:])))
        # Radford et al.: no normalisation on the discriminator's input layer.
        self.norms = nn.ModuleList([nn.Identity()] + [_norm_layer(norm, c) for c in sizes[2:]])
        features = sizes[-1]
        self.minibatch_kernels = positive_int(minibatch_kernels, "minibatch_kernels", minimum=0)
        if self.minibatch_kernels:
            flat = features * last_kernel * last_kernel
            self.minibatch = MinibatchDiscrimination(flat, self.minibatch_kernels, minibatch_kernel_dim)
            self.output = nn.Linear(self.minibatch.out_features, 1)
        else:
            self.minibatch = None
            self.output = nn.Conv2d(features, 1, last_kernel, 1, 0)
        for conv in list(self.convs) + [self.output]:
            with torch.no_grad():
                conv.weight.normal_(0.0, INIT_STD)
                if conv.bias is not None:
                    conv.bias.zero_()
        self._init_reference(norm, reference_size, (self.channels, self.image_size, self.image_size),
                             self.n_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        float_tensor(x, "x")
        expected = (self.channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must be images of shape (N, {', '.join(map(str, expected))}) for this "
                             f"discriminator (image_size={self.image_size}, channels={self.channels}), "
                             f"got {tuple(x.shape)}")
        labels = check_labels(labels, x.shape[0], self.n_classes)
        return self._run(x, labels)

    def _forward(self, x, labels):
        if labels is not None:
            maps = one_hot(labels, self.n_classes, x.dtype)[:, :, None, None]
            x = torch.cat([x, maps.expand(-1, -1, x.shape[2], x.shape[3])], dim=1)
        last = self.channels_last and x.device.type == "cpu"
        # .to, not .contiguous: with one input channel x already counts as channels-last, and only
        # .to gives it the strides that make oneDNN keep the layout (it would go back to NCHW)
        h = x.to(memory_format=torch.channels_last) if last else x
        for conv, norm in zip(self.convs, self.norms):
            h = F.leaky_relu(norm(_conv2d(conv, h, last)), LEAKY_SLOPE, inplace=True)
        if self.minibatch is not None:
            return self.output(self.minibatch(h.flatten(1))).reshape(-1)
        return _conv2d(self.output, h, last).reshape(-1)


def _conv2d(conv: nn.Conv2d, h: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``conv(h)``; with ``channels_last`` the weight enters as a channels-last copy (the
    parameter stays NCHW), which oneDNN would otherwise reorder itself, at a higher cost, on every call."""
    if not channels_last:
        return conv(h)
    return F.conv2d(h, conv.weight.to(memory_format=torch.channels_last), conv.bias, conv.stride,
                    conv.padding, conv.dilation, conv.groups)


# ---- the 2-D mixture experiments ---------------------------------------------------------------
class MLPGenerator(_ReferenceBatch):
    """Fully connected generator of the 2-D mixture experiments (Metz et al. 2017: two hidden
    ReLU layers of 128 units; here sizes are options).

    Shapes: z (N, latent_dim), labels (N,) -> (N, out_features).
    """

    def __init__(self, latent_dim: int = 64, out_features: int = 2, hidden: int = 128, n_layers: int = 2,
                 n_classes: int = 0, norm: str = "none", reference_size: int = 64):
        super().__init__()
        self.config = dict(latent_dim=latent_dim, out_features=out_features, hidden=hidden, n_layers=n_layers,
                           n_classes=n_classes, norm=norm, reference_size=reference_size)
        self.latent_dim = positive_int(latent_dim, "latent_dim")
        self.out_features = positive_int(out_features, "out_features")
        self.n_classes = positive_int(n_classes, "n_classes", minimum=0)
        hidden, n_layers = positive_int(hidden, "hidden"), positive_int(n_layers, "n_layers")
        if _check_norm(norm) == "batch":
            norm_layer = nn.BatchNorm1d
        elif norm == "virtual":
            norm_layer = VirtualBatchNorm
        else:
            norm_layer = None
        sizes = [self.latent_dim + self.n_classes] + [hidden] * n_layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.norms = nn.ModuleList((norm_layer(b) if norm_layer else nn.Identity()) for b in sizes[1:])
        self.output = nn.Linear(hidden, self.out_features)
        self._init_reference(norm, reference_size, (self.latent_dim,), self.n_classes)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        float_tensor(z, "z")
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self._run(z, check_labels(labels, z.shape[0], self.n_classes))

    def _forward(self, z, labels):
        h = z if labels is None else torch.cat([z, one_hot(labels, self.n_classes, z.dtype)], dim=1)
        for layer, norm in zip(self.hidden, self.norms):
            h = torch.relu(norm(layer(h)))
        return self.output(h)


class MLPDiscriminator(_ReferenceBatch):
    """Fully connected discriminator of the 2-D mixture experiments (Metz et al. 2017: one
    hidden ReLU layer of 128 units), with optional minibatch discrimination before the output.

    Shapes: x (N, in_features), labels (N,) -> (N,).
    """

    def __init__(self, in_features: int = 2, hidden: int = 128, n_layers: int = 1, n_classes: int = 0,
                 minibatch_kernels: int = 0, minibatch_kernel_dim: int = 5, norm: str = "none",
                 reference_size: int = 64):
        super().__init__()
        self.config = dict(in_features=in_features, hidden=hidden, n_layers=n_layers, n_classes=n_classes,
                           minibatch_kernels=minibatch_kernels, minibatch_kernel_dim=minibatch_kernel_dim, norm=norm,
                           reference_size=reference_size)
        self.in_features = positive_int(in_features, "in_features")
        self.n_classes = positive_int(n_classes, "n_classes", minimum=0)
        hidden, n_layers = positive_int(hidden, "hidden"), positive_int(n_layers, "n_layers")
        if _check_norm(norm) == "batch":
            raise ValueError("norm='batch' is not offered for MLPDiscriminator (real and fake batches would "
                             "be normalised apart); use 'none' or 'virtual'")
        sizes = [self.in_features + self.n_classes] + [hidden] * n_layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.norms = nn.ModuleList((VirtualBatchNorm(b) if norm == "virtual" else nn.Identity()) for b in sizes[1:])
        self.minibatch_kernels = positive_int(minibatch_kernels, "minibatch_kernels", minimum=0)
        self.minibatch = (MinibatchDiscrimination(hidden, self.minibatch_kernels, minibatch_kernel_dim)
                          if self.minibatch_kernels else None)
        self.output = nn.Linear(self.minibatch.out_features if self.minibatch else hidden, 1)
        self._init_reference(norm, reference_size, (self.in_features,), self.n_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        float_tensor(x, "x")
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"x must have shape (N, {self.in_features}), got {tuple(x.shape)}")
        return self._run(x, check_labels(labels, x.shape[0], self.n_classes))

    def _forward(self, x, labels):
        h = x if labels is None else torch.cat([x, one_hot(labels, self.n_classes, x.dtype)], dim=1)
        for layer, norm in zip(self.hidden, self.norms):
            h = torch.relu(norm(layer(h)))
        if self.minibatch is not None:
            h = self.minibatch(h)
        return self.output(h).reshape(-1)


__all__ = ["IMAGE_SIZES", "NORMS", "DCGANGenerator", "DCGANDiscriminator", "MLPGenerator", "MLPDiscriminator",
           "check_image_size"]
