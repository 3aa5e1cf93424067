"""Variational autoencoders (Kingma & Welling 2014) on fastgen's fused ops.

The encoder gives (mu, logvar) of q(z | x) = N(mu, diag(exp(logvar))); one fused op,
``torch.ops.fastgen.reparameterize``, draws z = mu + exp(logvar / 2) * eps from the Philox
stream and returns KL(q || N(0, I)) in the same pass (its backward draws eps again instead of
storing it); the decoder's log-likelihood is one fused reduction too
(``fastgen.torch.bernoulli_log_likelihood`` or ``gaussian_log_likelihood``). So

    ELBO(x) = log p(x | z) - KL(q(z | x) || p(z)),   one z per sample,

and :meth:`VAE.loss` is the mean negative ELBO over the batch.

:class:`VAE` has MLP encoder and decoder; :class:`ConvVAE` strided convolutions down and
fastgen's fused transposed convolutions up. Decoders are Bernoulli (logits; data in [0, 1]) or
Gaussian (a mean, with a learned per-feature log-variance).

The draws of z come from the model's Philox stream, a buffer (``stream``: seed, offset) that
``state_dict()`` carries and that a compiled forward reads and advances in the graph, so
``torch.compile`` compiles the model once. Its seed is the ``seed`` argument, else a draw from
torch's default generator (``torch.manual_seed(s)`` before building the model makes training
reproducible). ``model.generator`` is a ``fastgen.Generator`` over that buffer
(:mod:`fastgen.torch.random`).
"""
from __future__ import annotations

import numbers
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..._checks import as_generator, positive_int
from ...random import Generator
from .autoencoders import (ACTIVATIONS, LIKELIHOODS, check_batch, check_choice, check_image_geometry, check_images,
                           check_sizes, mlp)
from ..ops.elbo import bernoulli_log_likelihood, gaussian_log_likelihood
from .layers import ConvTranspose2d
from ..ops.reparam import reparameterize
from ..ops.stream import stream_snapshot
from ..random import BufferGenerator, initial_seed, stream_tensor


class VAEOutput(NamedTuple):
    """What one forward pass computes. Shapes for a batch of n: ``output`` like x (decoder
    logits or means), ``mu``, ``logvar``, ``z`` (n, n_latent), ``log_likelihood`` and ``kl`` (n,)."""

    output: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    log_likelihood: torch.Tensor
    kl: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        return self.log_likelihood - self.kl


class _VAEBase(nn.Module):
    """The parts of a VAE that do not depend on the encoder's and decoder's architecture."""

    def _init_common(self, n_latent: int, likelihood: str):
        self.n_latent = positive_int(n_latent, "n_latent")
        self.likelihood = check_choice(likelihood, "likelihood", LIKELIHOODS)

    def _init_stream(self, seed) -> None:
        """The stream buffer, after the layers (a seed drawn from torch's generator must not shift
        their initialisation); a fastgen.Generator passed as ``seed`` gives its seed and offset."""
        offset = seed.offset if isinstance(seed, Generator) else 0
        self.register_buffer("stream", stream_tensor(initial_seed(seed), offset))

    @property
    def generator(self) -> Generator:
        """The model's stream as a fastgen.Generator (its state is the ``stream`` buffer)."""
        return BufferGenerator(self, "stream")

    @generator.setter
    def generator(self, value) -> None:
        gen = as_generator(value)
        self.generator.set_state(gen.get_state())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # state dicts saved before the stream was a buffer lack it: keep the model's own stream
        state_dict.setdefault(prefix + "stream", self.stream.clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # Subclasses define: check_input, encode (-> mu, logvar), decode_output (z -> logits/means),
    # decoder_logvar (tensor or None), data_shape (tuple without the batch axis).

    def log_likelihood(self, x: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """log p(x | decoder output), per sample (n,)."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(x, output)
        return gaussian_log_likelihood(x, output, self.decoder_logvar)

    def forward(self, x: torch.Tensor, generator=None, first_row: int = 0) -> VAEOutput:
        """One ELBO evaluation: encode, draw z (one offset of ``generator``, default the
        model's), decode, and both terms per sample. ``first_row``: where x's rows sit in a
        larger batch (a data-parallel rank's share), so that they draw that batch's eps."""
        self.check_input(x)
        mu, logvar = self.encode(x)
        if generator is None:  # the model's stream: read and advanced as a tensor (one graph under torch.compile)
            stream = stream_snapshot(self.stream)  # this call's (seed, offset), kept for the backward
            with torch.no_grad():
                self.stream[1] += 1
            z, kl = torch.ops.fastgen.reparameterize(mu, logvar, stream, first_row)
        else:
            z, kl = reparameterize(mu, logvar, generator, first_row)
        output = self.decode_output(z)
        return VAEOutput(output, mu, logvar, z, self.log_likelihood(x, output), kl)

    def loss(self, x: torch.Tensor, generator=None, first_row: int = 0) -> torch.Tensor:
        """Mean negative ELBO over the batch (nats per sample)."""
        return -self.forward(x, generator, first_row).elbo.mean()

    def to_data_space(self, output: torch.Tensor) -> torch.Tensor:
        """The decoder's mean: sigmoid of the logits (Bernoulli) or the mean itself (Gaussian)."""
        return torch.sigmoid(output) if self.likelihood == "bernoulli" else output

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder mean at z = mu(x) (no sampling), shaped like x."""
        self.check_input(x)
        return self.to_data_space(self.decode_output(self.encode(x)[0]))

    @torch.no_grad()
    def sample(self, n: int, generator=None) -> torch.Tensor:
        """Decoder means for n draws z ~ N(0, I) (one offset of ``generator``, default the
        model's): (n, *data_shape)."""
        n = positive_int(n, "n")
        gen = as_generator(self.generator if generator is None else generator)
        dtype = next(self.parameters()).dtype
        zeros = torch.zeros(n, self.n_latent, dtype=dtype)
        z, _ = reparameterize(zeros, zeros, gen)  # mu 0, logvar 0: a standard normal draw
        return self.to_data_space(self.decode_output(z))

    @torch.no_grad()
    def latent_mean(self, x: torch.Tensor) -> torch.Tensor:
        """mu(x): (n, n_latent)."""
        self.check_input(x)
        return self.encode(x)[0]

    @torch.no_grad()
    def interpolate(self, x_start: torch.Tensor, x_end: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decoder means along the straight line from mu(x_start) to mu(x_end), ends included:
        (steps, *data_shape). x_start and x_end are single samples (no batch axis)."""
        steps = positive_int(steps, "steps")
        mus = self.latent_mean(torch.stack([x_start, x_end]))
        t = torch.linspace(0, 1, steps, dtype=mus.dtype).unsqueeze(1)
        return self.to_data_space(self.decode_output(mus[:1] + t * (mus[1:] - mus[:1])))

    @staticmethod
    def shift_towards(z: torch.Tensor, target_mean: torch.Tensor, alpha: float) -> torch.Tensor:
        """Latent attribute arithmetic: ``z + alpha * (target_mean - z)`` (alpha 0 keeps z, 1
        lands on the attribute's mean code, in between blends). z (n, d), target_mean (d,)."""
        if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool):
            raise ValueError(f"alpha must be a real number, got {alpha!r}")
        if target_mean.shape != z.shape[-1:]:
            raise ValueError(f"target_mean must have shape ({z.shape[-1]},), got {tuple(target_mean.shape)}")
        return z + alpha * (target_mean - z)

    @torch.no_grad()
    def attribute_shift(self, x: torch.Tensor, x_with_attribute: torch.Tensor, alphas=(0.0, 0.5, 1.0)) -> torch.Tensor:
        """Move each x's code towards the mean code of ``x_with_attribute`` and decode:
        (len(alphas), n, *data_shape)."""
        z = self.latent_mean(x)
        target = self.latent_mean(x_with_attribute).mean(0)
        return torch.stack([self.to_data_space(self.decode_output(self.shift_towards(z, target, a)))
                            for a in alphas])


class VAE(_VAEBase):
    """MLP VAE.

    Parameters
    ----------
    n_features : int
    hidden : sequence of int, default=(400,)
        Encoder hidden layers (ReLU); the decoder mirrors them.
    n_latent : int, default=20
    likelihood : {"bernoulli", "gaussian"}, default="bernoulli"
        Bernoulli: the decoder gives logits, data in [0, 1]. Gaussian: the decoder gives the
        mean, with a learned per-feature log-variance (``decoder_logvar``, initialised to 0).
    activation : {"relu", "sigmoid", "tanh", "leaky_relu"}, default="relu"
    seed : int or fastgen.Generator, optional
        The Philox stream of z (training draws and :meth:`sample`), copied into the ``stream``
        buffer; default a seed drawn from torch's default generator.

    Shapes: x (n, n_features); mu, logvar, z (n, n_latent).
    """

    def __init__(self, n_features: int, hidden: Sequence[int] = (400,), n_latent: int = 20,
                 likelihood: str = "bernoulli", activation: str = "relu", seed=None):
        super().__init__()
        self.n_features = positive_int(n_features, "n_features")
        self.hidden = check_sizes(hidden, "hidden") if len(tuple(hidden)) else ()
        self.activation = check_choice(activation, "activation", tuple(ACTIVATIONS))
        self._init_common(n_latent, likelihood)
        # The first layer reads the data, which for images (MNIST: 81 % of pixels exactly 0) is
        # mostly zeros: SparseInputLinear skips them, and runs a dense GEMM for dense data.
        self.encoder = mlp((self.n_features, *self.hidden), self.activation, True, sparse_input=True) \
            if self.hidden else nn.Identity()
        last = self.hidden[-1] if self.hidden else self.n_features
        self.mu_head, self.logvar_head = nn.Linear(last, self.n_latent), nn.Linear(last, self.n_latent)
        self.decoder = mlp((self.n_latent, *self.hidden[::-1], self.n_features), self.activation, False)
        self.decoder_logvar = nn.Parameter(torch.zeros(self.n_features)) if self.likelihood == "gaussian" else None
        self._init_stream(seed)

    @property
    def data_shape(self) -> tuple:
        return (self.n_features,)

    def config(self) -> dict:
        return dict(n_features=self.n_features, hidden=list(self.hidden), n_latent=self.n_latent,
                    likelihood=self.likelihood, activation=self.activation)

    def check_input(self, x) -> None:
        check_batch(x, self.n_features)

    def encode(self, x: torch.Tensor):
        h = self.encoder(x)
        return self.mu_head(h), self.logvar_head(h)

    def decode_output(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class ConvVAE(_VAEBase):
    """Convolutional VAE for (n, C, H, W) images.

    Encoder: 4x4 stride-2 convolutions + ReLU per entry of ``channels``, flattened, then linear
    heads for mu and logvar. Decoder: a linear layer back to the last feature map, then
    fastgen's fused 4x4 stride-2 transposed convolutions (+ ReLU, the last without) to
    logits or means.

    Parameters
    ----------
    in_channels : int, default=1
    image_size : int or (int, int), default=28
        Divisible by ``2 ** len(channels)``.
    channels : sequence of int, default=(32, 64)
    n_latent : int, default=16
    likelihood : {"bernoulli", "gaussian"}, default="bernoulli"
    seed : int or fastgen.Generator, optional
        As for :class:`VAE`.
    """

    def __init__(self, in_channels: int = 1, image_size=28, channels: Sequence[int] = (32, 64), n_latent: int = 16,
                 likelihood: str = "bernoulli", seed=None):
        super().__init__()
        self.in_channels, self.image_size, self.channels = check_image_geometry(in_channels, image_size, channels)
        factor = 2 ** len(self.channels)
        self._init_common(n_latent, likelihood)
        widths = (self.in_channels, *self.channels)
        self.down = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1) for a, b in zip(widths[:-1], widths[1:]))
        self.code_shape = (self.channels[-1], self.image_size[0] // factor, self.image_size[1] // factor)
        flat = self.code_shape[0] * self.code_shape[1] * self.code_shape[2]
        self.mu_head, self.logvar_head = nn.Linear(flat, self.n_latent), nn.Linear(flat, self.n_latent)
        self.from_latent = nn.Linear(self.n_latent, flat)
        pairs = list(zip(widths[1:], widths[:-1]))[::-1]
        self.up = nn.ModuleList(ConvTranspose2d(a, b, 4, 2, 1, activation="relu" if i < len(pairs) - 1 else "none")
                                for i, (a, b) in enumerate(pairs))
        self.decoder_logvar = (nn.Parameter(torch.zeros(self.in_channels, *self.image_size))
                               if self.likelihood == "gaussian" else None)
        self._init_stream(seed)

    @property
    def data_shape(self) -> tuple:
        return (self.in_channels, *self.image_size)

    def config(self) -> dict:
        return dict(in_channels=self.in_channels, image_size=list(self.image_size), channels=list(self.channels),
                    n_latent=self.n_latent, likelihood=self.likelihood)

    def check_input(self, x) -> None:
        check_images(x, self.data_shape)

    def encode(self, x: torch.Tensor):
        h = x
        for conv in self.down:
            h = F.relu(conv(h))
        h = h.flatten(1)
        return self.mu_head(h), self.logvar_head(h)

    def decode_output(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.from_latent(z)).reshape(z.shape[0], *self.code_shape)
        for layer in self.up:
            h = layer(h)
        return h
