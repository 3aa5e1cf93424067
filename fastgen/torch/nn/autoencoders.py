"""Autoencoders as thin nn.Modules over fastgen's ops.

* :class:`Autoencoder` -- MLP encoder and mirrored decoder;
* :class:`DenoisingAutoencoder` -- trained to undo masking noise (binary data) or additive
  Gaussian noise (continuous data);
* :class:`ContractiveAutoencoder` -- one sigmoid encoder layer, penalised by the squared
  Frobenius norm of its Jacobian, which for h = sigmoid(W x + b) is in closed form
  ``sum_j (h_j (1 - h_j))^2 sum_i W_ji^2`` (Rifai et al. 2011);
* :func:`pretrain_stacked` -- greedy layer-wise pretraining of a deep autoencoder, one
  single-layer autoencoder per layer trained on the codes of the one below (Bengio et al. 2007);
* :class:`ConvAutoencoder` -- strided convolutions down and fastgen's fused transposed
  convolutions up, or (``pooling=True``) convolutions with max pooling down and max unpooling at
  the kept argmax indices up.

Every model scores a batch with :meth:`loss`, the mean over samples of the per-sample
reconstruction loss: for ``likelihood="bernoulli"`` (data in [0, 1]) the cross-entropy
``-fastgen.torch.bernoulli_log_likelihood(x, logits)``, for ``"gaussian"`` half the summed
squared error. Inputs are (n, features) for the MLP models and (n, C, H, W) for the
convolutional one.
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..._checks import positive_int
from ..ops.elbo import bernoulli_log_likelihood
from .layers import ConvTranspose2d, SparseInputLinear
from ..ops.pool import avg_unpool2d, max_pool2d, max_unpool2d
from ..train.loop import fit

LIKELIHOODS = ("bernoulli", "gaussian")
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}


def check_sizes(values, name: str) -> tuple[int, ...]:
    if isinstance(values, numbers.Integral) and not isinstance(values, bool):
        values = (values,)
    try:
        return tuple(positive_int(v, f"each entry of {name}") for v in values)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of integers >= 1, got {values!r}") from None


def check_choice(value, name: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_rate(value, name: str, low: float = 0.0, high: float = 1.0, *, high_open: bool = True) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= value and (
        value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{name} must be a number in [{low}, {high}{')' if high_open else ']'}, got {value!r}")
    return float(value)


def check_batch(x, n_features: int, name: str = "x") -> None:
    """ValueError / TypeError naming ``name`` unless x is a float (n, n_features) tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.dim() != 2 or x.shape[1] != n_features:
        raise ValueError(f"{name} must have shape (batch, {n_features}), got {tuple(x.shape)}")


def reconstruction_loss(x: torch.Tensor, output: torch.Tensor, likelihood: str) -> torch.Tensor:
    """Per-sample loss, shape (n,): Bernoulli cross-entropy from logits (fused op), or half the
    summed squared error from the Gaussian mean."""
    if likelihood == "bernoulli":
        return -bernoulli_log_likelihood(x, output)
    return 0.5 * (x - output).pow(2).reshape(x.shape[0], -1).sum(1)


def mlp(sizes: Sequence[int], activation: str, last_activation: bool, sparse_input: bool = False) -> nn.Sequential:
    """Linear layers with ``activation`` between them (and after the last with
    ``last_activation``). ``sparse_input``: the first layer is a :class:`SparseInputLinear`
    (same parameters, transposed weight), for data with many exact zeros."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(SparseInputLinear(a, b) if sparse_input and i == 0 else nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def check_image_geometry(in_channels, image_size, channels):
    """Validated ``(in_channels, (height, width), channels)`` of a convolutional model whose
    ``len(channels)`` stride-2 stages halve the image each time."""
    in_channels = positive_int(in_channels, "in_channels")
    size = (image_size, image_size) if isinstance(image_size, numbers.Integral) else tuple(image_size)
    size = check_sizes(size, "image_size")
    if len(size) != 2:
        raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}")
    channels = check_sizes(channels, "channels")
    factor = 2 ** len(channels)
    if any(s % factor for s in size):
        raise ValueError(f"image_size {size} must be divisible by 2 ** len(channels) = {factor}")
    return in_channels, size, channels


def check_images(x, data_shape: tuple, name: str = "x") -> None:
    """TypeError / ValueError naming ``name`` unless x is a (batch, *data_shape) tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or tuple(x.shape[1:]) != tuple(data_shape):
        raise ValueError(f"{name} must have shape (batch, {', '.join(map(str, data_shape))}), got {tuple(x.shape)}")


class _AutoencoderBase(nn.Module):
    """What every autoencoder here shares; subclasses define ``check_input``, ``encode``,
    ``decode_output`` (code -> logits or means), ``per_sample_loss`` and ``likelihood``."""

    def to_data_space(self, output: torch.Tensor) -> torch.Tensor:
        """The decoder's mean: sigmoid of the logits (Bernoulli) or the mean itself (Gaussian)."""
        return torch.sigmoid(output) if self.likelihood == "bernoulli" else output

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The training objective on a batch: mean per-sample reconstruction loss."""
        self.check_input(x)
        return self.per_sample_loss(x).mean()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.forward(x)

    @torch.no_grad()
    def interpolate(self, x_start: torch.Tensor, x_end: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decoded points on the straight line between the codes of two inputs (single samples,
        no batch axis), ends included: (steps, *x_start.shape)."""
        steps = positive_int(steps, "steps")
        codes = self.encode(torch.stack([x_start, x_end]))
        t = torch.linspace(0, 1, steps, dtype=codes.dtype).reshape(-1, *([1] * (codes.dim() - 1)))
        return self.to_data_space(self.decode_output(codes[:1] + t * (codes[1:] - codes[:1])))


class Autoencoder(_AutoencoderBase):
    """MLP autoencoder.

    Parameters
    ----------
    n_features : int
        Input size.
    hidden : sequence of int, default=(256,)
        Encoder hidden layers; the decoder mirrors them.
    n_latent : int, default=32
        Code size.
    activation : {"relu", "sigmoid", "tanh", "leaky_relu"}, default="relu"
        Hidden-layer nonlinearity (the code layer is linear unless ``code_activation``).
    likelihood : {"bernoulli", "gaussian"}, default="bernoulli"
        The decoder outputs logits (Bernoulli, data in [0, 1]) or the mean (Gaussian).
    code_activation : bool, default=False
        Apply ``activation`` to the code too (sigmoid codes for stacking).

    Shapes: x (n, n_features); :meth:`encode` -> (n, n_latent); :meth:`decode_output` -> (n,
    n_features) logits or means; :meth:`forward` -> reconstruction in data space (sigmoid of
    the logits for Bernoulli).
    """

    def __init__(self, n_features: int, hidden: Sequence[int] = (256,), n_latent: int = 32, activation: str = "relu",
                 likelihood: str = "bernoulli", code_activation: bool = False):
        super().__init__()
        self.n_features = positive_int(n_features, "n_features")
        self.hidden = check_sizes(hidden, "hidden") if len(tuple(hidden)) else ()
        self.n_latent = positive_int(n_latent, "n_latent")
        self.activation = check_choice(activation, "activation", tuple(ACTIVATIONS))
        self.likelihood = check_choice(likelihood, "likelihood", LIKELIHOODS)
        self.code_activation = bool(code_activation)
        sizes = (self.n_features, *self.hidden, self.n_latent)
        self.encoder = mlp(sizes, self.activation, self.code_activation)
        self.decoder = mlp(sizes[::-1], self.activation, False)

    def config(self) -> dict:
        """Constructor arguments: ``type(self)(**self.config())`` rebuilds the architecture."""
        return dict(n_features=self.n_features, hidden=list(self.hidden), n_latent=self.n_latent,
                    activation=self.activation, likelihood=self.likelihood, code_activation=self.code_activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode_output(self, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(code)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_data_space(self.decode_output(self.encode(x)))

    def check_input(self, x) -> None:
        check_batch(x, self.n_features)

    def per_sample_loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruction loss of each sample (n,), reconstructing ``target`` (default x) from x."""
        return reconstruction_loss(x if target is None else target, self.decode_output(self.encode(x)),
                                   self.likelihood)


class DenoisingAutoencoder(Autoencoder):
    """Autoencoder trained to reconstruct x from a corrupted copy (Vincent et al. 2008).

    Parameters (besides :class:`Autoencoder`'s)
    ----------
    noise : {"masking", "gaussian"}, default="masking"
        Masking noise sets each input to 0 with probability ``noise_level`` (binary data);
        Gaussian noise adds ``noise_level * N(0, 1)`` (continuous data).
    noise_level : float, default=0.25
        Masking probability in [0, 1), or the Gaussian noise's standard deviation (>= 0).

    Noise is drawn from torch's random stream (seed it with ``torch.manual_seed`` or pass a
    ``torch.Generator`` to :meth:`corrupt`); it is applied in :meth:`loss` only (in training
    and evaluation alike: it defines the objective), never in :meth:`forward`.
    """

    def __init__(self, n_features: int, hidden: Sequence[int] = (256,), n_latent: int = 32, activation: str = "relu",
                 likelihood: str = "bernoulli", code_activation: bool = False, noise: str = "masking",
                 noise_level: float = 0.25):
        super().__init__(n_features, hidden, n_latent, activation, likelihood, code_activation)
        self.noise = check_choice(noise, "noise", ("masking", "gaussian"))
        self.noise_level = check_rate(noise_level, "noise_level") if noise == "masking" else \
            check_rate(noise_level, "noise_level", 0.0, math.inf)

    def config(self) -> dict:
        return {**super().config(), "noise": self.noise, "noise_level": self.noise_level}

    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        # rand_like without a generator: the same draws, and a symbolic batch size under torch.compile
        # (torch.rand with generator=None needs concrete sizes there)
        if self.noise == "masking":
            u = torch.rand_like(x) if generator is None else torch.rand(x.shape, generator=generator, dtype=x.dtype)
            return x * (u >= self.noise_level)
        noise = torch.randn_like(x) if generator is None else torch.randn(x.shape, generator=generator, dtype=x.dtype)
        return x + self.noise_level * noise

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        self.check_input(x)
        return self.per_sample_loss(self.corrupt(x, generator), target=x).mean()


class ContractiveAutoencoder(Autoencoder):
    """One sigmoid encoder layer h = sigmoid(W x + b), a linear decoder (logits or mean), and
    the contractive penalty ``contraction * ||dh/dx||_F^2`` per sample (Rifai et al. 2011).

    For a sigmoid layer dh_j/dx_i = h_j (1 - h_j) W_ji, so ``||J||_F^2 = sum_j (h_j (1 -
    h_j))^2 ||W_j||^2`` costs one (n, n_latent) product instead of a Jacobian per sample.
    """

    def __init__(self, n_features: int, n_latent: int = 64, likelihood: str = "bernoulli",
                 contraction: float = 0.1):
        super().__init__(n_features, (), n_latent, "sigmoid", likelihood, code_activation=True)
        self.contraction = check_rate(contraction, "contraction", 0.0, math.inf)

    def config(self) -> dict:
        return dict(n_features=self.n_features, n_latent=self.n_latent, likelihood=self.likelihood,
                    contraction=self.contraction)

    def _penalty(self, h: torch.Tensor) -> torch.Tensor:
        weight = self.encoder[0].weight  # (n_latent, n_features)
        return (h * (1 - h)).pow(2) @ weight.pow(2).sum(1)

    def jacobian_penalty(self, x: torch.Tensor) -> torch.Tensor:
        """``||d encode(x) / dx||_F^2`` of each sample, shape (n,), in closed form."""
        return self._penalty(self.encode(x))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        h = self.encode(x)
        recon = reconstruction_loss(x, self.decode_output(h), self.likelihood)
        return (recon + self.contraction * self._penalty(h)).mean()


def pretrain_stacked(X: torch.Tensor, layer_sizes: Sequence[int], *, epochs: int = 5, batch_size: int = 64,
                     lr: float = 1e-3, noise_level: float = 0.0, likelihood: str = "bernoulli", seed: int = 0,
                     progress=None) -> Autoencoder:
    """Greedy layer-wise pretraining of a deep sigmoid autoencoder.

    Layer k is the encoder of a one-hidden-layer autoencoder (sigmoid code, optionally
    denoising with masking noise ``noise_level``) trained for ``epochs`` on the codes of layers
    1..k-1; the deep model's decoder is the layers' decoders in reverse order. The first layer
    reconstructs X under ``likelihood``; deeper layers reconstruct sigmoid codes in [0, 1] under
    the Bernoulli cross-entropy. Fine-tune the result with :func:`fit` afterwards.

    Parameters
    ----------
    X : tensor of shape (n, n_features)
    layer_sizes : sequence of int
        Code sizes from the bottom up; the last is the deep model's ``n_latent``.

    Returns
    -------
    Autoencoder with ``hidden = layer_sizes[:-1]``, ``activation="sigmoid"``,
    ``code_activation=True``, holding the pretrained weights.
    """
    sizes = check_sizes(layer_sizes, "layer_sizes")
    check_batch(X, X.shape[1] if X.dim() == 2 else -1, "X")
    deep = Autoencoder(X.shape[1], sizes[:-1], sizes[-1], "sigmoid", likelihood, code_activation=True)
    codes = X
    for k, size in enumerate(sizes):
        layer_likelihood = likelihood if k == 0 else "bernoulli"
        torch.manual_seed(seed + k)  # each layer's initialisation is reproducible on its own
        if noise_level > 0:
            shallow = DenoisingAutoencoder(codes.shape[1], (), size, "sigmoid", layer_likelihood, True, "masking",
                                           noise_level)
        else:
            shallow = Autoencoder(codes.shape[1], (), size, "sigmoid", layer_likelihood, code_activation=True)
        fit(shallow, codes, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed + k, progress=progress,
            description=f"layer {k + 1}/{len(sizes)}")
        deep.encoder[2 * k].load_state_dict(shallow.encoder[0].state_dict())
        deep.decoder[2 * (len(sizes) - 1 - k)].load_state_dict(shallow.decoder[0].state_dict())
        with torch.no_grad():
            codes = shallow.encode(codes)
    return deep


class ConvAutoencoder(_AutoencoderBase):
    """Convolutional autoencoder for (n, C, H, W) images.

    Parameters
    ----------
    in_channels : int
    image_size : int or (int, int)
        H and W; each must be divisible by ``2 ** len(channels)``.
    channels : sequence of int, default=(32, 64)
        Feature maps after each down-sampling stage.
    pooling : bool, default=False
        False: 4x4 stride-2 convolutions down (ReLU) and fastgen's fused 4x4 stride-2
        transposed convolutions (+ ReLU) up. True: 3x3 convolutions + ReLU + 2x2 max pooling
        (fastgen.torch.max_pool2d, argmax indices kept) down, and max unpooling to those indices
        (fastgen.torch.max_unpool2d) + 3x3 convolutions up.
    likelihood : {"bernoulli", "gaussian"}, default="bernoulli"
    n_latent : int or None, default=None
        None: the code is the last stage's feature map, (n, channels[-1], H / 2^k, W / 2^k),
        which can hold more numbers than the image (no bottleneck: 64 x 2 x 2 = 256 for 8x8
        digits). An int: a linear layer maps that feature map to an (n, n_latent) code, and a
        linear layer + ReLU maps the code back to the feature map before the decoder.

    unpool : {"argmax", "block"}, default="argmax"
        How the pooling decoder up-samples. "argmax": max unpooling to the encoder's argmax
        positions. Those positions (which of the 4 inputs of each 2x2 window was the maximum)
        reach the decoder beside the code and carry most of the image: with them, a decoder
        reconstructs 8x8 digits nearly as well from the mean code as from each image's own, so
        the code is no bottleneck. "block" (fastgen.torch.avg_unpool2d: each value fills its 2x2
        block) gives the decoder the code alone; it can then decode any code, so
        :meth:`interpolate` works.
    """

    def __init__(self, in_channels: int = 1, image_size=28, channels: Sequence[int] = (32, 64), pooling: bool = False,
                 likelihood: str = "bernoulli", n_latent: int | None = None, unpool: str = "argmax"):
        super().__init__()
        self.in_channels, self.image_size, self.channels = check_image_geometry(in_channels, image_size, channels)
        self.pooling = bool(pooling)
        self.likelihood = check_choice(likelihood, "likelihood", LIKELIHOODS)
        self.n_latent = None if n_latent is None else positive_int(n_latent, "n_latent")
        self.unpool = check_choice(unpool, "unpool", ("argmax", "block"))
        factor = 2 ** len(self.channels)
        self.feature_shape = (self.channels[-1], self.image_size[0] // factor, self.image_size[1] // factor)
        flat = self.feature_shape[0] * self.feature_shape[1] * self.feature_shape[2]
        if self.n_latent is not None:
            self.to_code, self.from_code = nn.Linear(flat, self.n_latent), nn.Linear(self.n_latent, flat)
        widths = (self.in_channels, *self.channels)
        if self.pooling:
            self.down = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths[:-1], widths[1:]))
            self.up = nn.ModuleList(nn.Conv2d(b, a, 3, padding=1) for a, b in zip(widths[:-1], widths[1:]))[::-1]
        else:
            self.down = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(widths[:-1], widths[1:]))
            pairs = list(zip(widths[1:], widths[:-1]))[::-1]
            self.up = nn.ModuleList(
                ConvTranspose2d(a, b, 4, 2, 1, activation="relu" if i < len(pairs) - 1 else "none")
                for i, (a, b) in enumerate(pairs))

    def config(self) -> dict:
        return dict(in_channels=self.in_channels, image_size=list(self.image_size), channels=list(self.channels),
                    pooling=self.pooling, likelihood=self.likelihood, n_latent=self.n_latent, unpool=self.unpool)

    @property
    def needs_indices(self) -> bool:
        """Whether decoding needs the argmax positions of an encoding pass (pooling, "argmax")."""
        return self.pooling and self.unpool == "argmax"

    @property
    def code_size(self) -> int:
        """Numbers in one sample's code: n_latent, or the last feature map's size."""
        return self.n_latent if self.n_latent is not None else math.prod(self.feature_shape)

    def check_input(self, x) -> None:
        check_images(x, (self.in_channels, *self.image_size))

    def _encode(self, x):
        indices = []
        for conv in self.down:
            if self.pooling:
                x, idx = max_pool2d(F.relu(conv(x)), 2)
                indices.append(idx)
            else:
                x = F.relu(conv(x))
        if self.n_latent is not None:
            x = self.to_code(x.flatten(1))
        return x, indices

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(x)[0]

    def _decode(self, code, indices):
        h = code
        if self.n_latent is not None:
            h = F.relu(self.from_code(code)).reshape(code.shape[0], *self.feature_shape)
        for i, layer in enumerate(self.up):
            if self.pooling:
                if self.unpool == "block":
                    h = layer(avg_unpool2d(h, 2))
                else:
                    idx = indices[len(indices) - 1 - i]
                    h = layer(max_unpool2d(h, idx, (h.shape[2] * 2, h.shape[3] * 2)))
                if i < len(self.up) - 1:
                    h = F.relu(h)
            else:
                h = layer(h)
        return h

    def decode_output(self, code: torch.Tensor, indices=None) -> torch.Tensor:
        """Logits (Bernoulli) or means (Gaussian) of the images. The pooling variant needs the
        argmax ``indices`` of the encoding pass (see :meth:`forward`)."""
        if self.needs_indices and indices is None:
            raise ValueError("indices: the pooling autoencoder decodes with the argmax indices of its encoder")
        return self._decode(code, indices or [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code, indices = self._encode(x)
        return self.to_data_space(self._decode(code, indices))

    def per_sample_loss(self, x: torch.Tensor) -> torch.Tensor:
        code, indices = self._encode(x)
        return reconstruction_loss(x, self._decode(code, indices), self.likelihood)

    def interpolate(self, x_start: torch.Tensor, x_end: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decoded straight-line path between two images' codes (not with ``unpool="argmax"``:
        that decoder has no argmax positions for codes that no image produced)."""
        if self.needs_indices:
            raise ValueError("interpolate: the pooling autoencoder cannot decode codes without argmax indices")
        return super().interpolate(x_start, x_end, steps)
