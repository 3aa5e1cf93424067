"""Bernoulli-Bernoulli restricted Boltzmann machine.

Energy ``E(v, h) = -v.b - h.c - h W v`` with ``W`` of shape (n_hidden, n_visible) (the layout
of scikit-learn's ``components_``), ``b`` the visible bias and ``c`` the hidden bias.
Free energy ``F(v) = -v.b - sum_j softplus(c_j + W_j v)``.

:class:`RBM` holds the parameters and the quantities computed from them; :class:`ContrastiveDivergence`
holds a training configuration and its state (persistent chains, momentum buffers) and runs
epochs in compiled code.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from .._checks import flag, positive_int, real
from ..ops.cd import cd_epoch, offsets_per_epoch
from ..ops.gibbs import gibbs as gibbs_op
from ..ops.pseudo_likelihood import pseudo_likelihood_numpy
from ..ops.sampling import sample_bernoulli_numpy, sigmoid_numpy
from ..random import Generator, as_generator
from ._divergence import DIVERGED, guarded_pass

# Enumeration cost is 2**min(n_visible, n_hidden) configurations.
MAX_ENUMERABLE_UNITS = 20


def _softplus(x):
    return np.logaddexp(0.0, x)


@dataclass
class RBM:
    """Parameters of a Bernoulli-Bernoulli RBM; arrays are used (and trained) in place.

    Attributes
    ----------
    weights : ndarray of shape (n_hidden, n_visible)
    visible_bias : ndarray of shape (n_visible,)
    hidden_bias : ndarray of shape (n_hidden,)
    """

    weights: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray

    def __post_init__(self):
        # The arrays are used and trained in place, so they are checked, never converted: a
        # converted copy would silently detach the model from the caller's arrays.
        for name in ("weights", "visible_bias", "hidden_bias"):
            a = getattr(self, name)
            if not (isinstance(a, np.ndarray) or _array_module(a) is not np):
                raise TypeError(f"{name} must be a NumPy or CuPy array, got {type(a).__name__}")
            if a.dtype not in (np.float32, np.float64):
                raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
        if self.weights.ndim != 2:
            raise ValueError(f"weights must be 2-D (n_hidden, n_visible), got shape {self.weights.shape}")
        for name, size in (("visible_bias", self.weights.shape[1]), ("hidden_bias", self.weights.shape[0])):
            a = getattr(self, name)
            if a.shape != (size,):
                raise ValueError(f"{name} must have shape ({size},) to match weights {self.weights.shape}, "
                                 f"got {a.shape}")
            if a.dtype != self.weights.dtype:
                raise TypeError(f"{name} must have the weights' dtype {self.weights.dtype}, got {a.dtype}")

    @classmethod
    def initialize(cls, n_visible: int, n_hidden: int, *, dtype=np.float64, generator=None, scale: float = 0.01):
        """Weights ~ N(0, scale^2) from the Philox stream (one offset), zero biases."""
        n_visible = positive_int(n_visible, "n_visible")
        n_hidden = positive_int(n_hidden, "n_hidden")
        gen = as_generator(generator)
        weights = gen.normal((n_hidden, n_visible), dtype)
        weights *= weights.dtype.type(scale)
        return cls(weights, np.zeros(n_visible, dtype), np.zeros(n_hidden, dtype))

    @property
    def n_visible(self) -> int:
        return self.weights.shape[1]

    @property
    def n_hidden(self) -> int:
        return self.weights.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.weights.dtype

    def _as_input(self, v, name="v"):
        v = np.asarray(v, dtype=self.dtype)
        if v.ndim != 2 or v.shape[1] != self.n_visible:
            raise ValueError(f"{name} must have shape (n, {self.n_visible}), got {v.shape}")
        return np.ascontiguousarray(v)

    # ---- quantities --------------------------------------------------------------------------
    def hidden_preactivation(self, v) -> np.ndarray:
        """``v @ W.T + c``, shape (n, n_hidden)."""
        x = self._as_input(v) @ self.weights.T
        x += self.hidden_bias
        return x

    def hidden_probs(self, v) -> np.ndarray:
        """P(h_j = 1 | v) = sigmoid(c_j + W_j v), shape (n, n_hidden)."""
        x = self._as_input(v) @ self.weights.T
        return sigmoid_numpy(x, bias=self.hidden_bias, out=x)

    def visible_probs(self, h) -> np.ndarray:
        """P(v_i = 1 | h) = sigmoid(b_i + h W_:i), shape (n, n_visible)."""
        h = np.asarray(h, dtype=self.dtype)
        if h.ndim != 2 or h.shape[1] != self.n_hidden:
            raise ValueError(f"h must have shape (n, {self.n_hidden}), got {h.shape}")
        x = np.ascontiguousarray(h) @ self.weights
        return sigmoid_numpy(x, bias=self.visible_bias, out=x)

    def sample_hidden(self, v, generator=None) -> np.ndarray:
        gen = as_generator(generator)
        x = self._as_input(v) @ self.weights.T
        states = np.empty_like(x)
        sample_bernoulli_numpy(x, bias=self.hidden_bias, states=states, seed=gen.seed, offset=gen.take())
        return states

    def sample_visible(self, h, generator=None) -> np.ndarray:
        gen = as_generator(generator)
        x = np.ascontiguousarray(np.asarray(h, dtype=self.dtype)) @ self.weights
        states = np.empty_like(x)
        sample_bernoulli_numpy(x, bias=self.visible_bias, states=states, seed=gen.seed, offset=gen.take())
        return states

    def energy(self, v, h) -> np.ndarray:
        """E(v, h) for paired rows of v (n, n_visible) and h (n, n_hidden)."""
        v = self._as_input(v)
        h = np.asarray(h, dtype=self.dtype)
        return -(v @ self.visible_bias) - (h @ self.hidden_bias) - np.einsum("nj,nj->n", h, v @ self.weights.T)

    def free_energy(self, v) -> np.ndarray:
        """F(v) = -log sum_h exp(-E(v, h)), shape (n,)."""
        v = self._as_input(v)
        return -(v @ self.visible_bias) - _softplus(self.hidden_preactivation(v)).sum(axis=1)

    def pseudo_likelihood(self, v) -> np.ndarray:
        """Exact log pseudo-likelihood ``sum_i log P(v_i | v_-i)`` of each row, shape (n,).

        Deterministic (the expectation of scikit-learn's one-random-bit estimate), at the cost
        of n * n_visible * n_hidden softplus evaluations in compiled code.
        """
        v = self._as_input(v)
        return pseudo_likelihood_numpy(self.weights, self.visible_bias, self.hidden_bias, v,
                                       hidden_preactivation=self.hidden_preactivation(v))

    def reconstruction_error(self, v) -> float:
        """Mean squared error between v and its mean-field reconstruction P(v | P(h | v))."""
        v = self._as_input(v)
        return float(np.mean((v - self.visible_probs(self.hidden_probs(v))) ** 2))

    # ---- sampling ----------------------------------------------------------------------------
    def gibbs(self, v, steps: int = 1, *, generator=None, clamp=None) -> np.ndarray:
        """``steps`` block-Gibbs steps from v (see :func:`fastgen.ops.gibbs`)."""
        return gibbs_op(v, self.weights, self.visible_bias, self.hidden_bias, steps, generator=generator, clamp=clamp)

    def sample(self, n: int, steps: int = 1000, *, generator=None, init=None) -> np.ndarray:
        """n visible samples after ``steps`` Gibbs steps from ``init`` (default: uniform noise
        states, one offset), shape (n, n_visible)."""
        n = positive_int(n, "n", minimum=0)
        gen = as_generator(generator)
        if init is None:
            init = (gen.uniform((n, self.n_visible), self.dtype) < 0.5).astype(self.dtype)
        return self.gibbs(init, steps, generator=gen)

    # ---- exact likelihood for small models ---------------------------------------------------
    def log_partition(self) -> float:
        """Exact log Z by enumerating the smaller layer (at most 20 units), in float64."""
        W = self.weights.astype(np.float64)
        b = self.visible_bias.astype(np.float64)
        c = self.hidden_bias.astype(np.float64)
        n_hidden, n_visible = W.shape
        if min(n_hidden, n_visible) > MAX_ENUMERABLE_UNITS:
            raise ValueError(
                f"exact log Z needs n_visible or n_hidden <= {MAX_ENUMERABLE_UNITS}, got {n_visible} x {n_hidden}"
            )
        # Sum out the larger layer analytically, enumerate the smaller one in chunks.
        if n_hidden <= n_visible:
            units, own_bias, other_bias, coupling = n_hidden, c, b, W        # h configs; sum over v
        else:
            units, own_bias, other_bias, coupling = n_visible, b, c, W.T     # v configs; sum over h
        terms = []
        chunk = 1 << min(units, 16)
        for start in range(0, 1 << units, chunk):
            idx = np.arange(start, min(start + chunk, 1 << units), dtype=np.int64)
            states = ((idx[:, None] >> np.arange(units)) & 1).astype(np.float64)
            terms.append(states @ own_bias + _softplus(states @ coupling + other_bias).sum(axis=1))
        return float(logsumexp(np.concatenate(terms)))

    def log_likelihood(self, v, log_z: float | None = None) -> np.ndarray:
        """log P(v) = -F(v) - log Z (exact log Z unless given), shape (n,)."""
        if log_z is None:
            log_z = self.log_partition()
        v = np.asarray(v, dtype=np.float64)
        W = self.weights.astype(np.float64)
        fe = -(v @ self.visible_bias.astype(np.float64)) - _softplus(v @ W.T + self.hidden_bias).sum(axis=1)
        return -fe - log_z


def _array_module(a):
    """NumPy, or CuPy for a CuPy array (imported only then)."""
    if isinstance(a, np.ndarray) or not type(a).__module__.startswith("cupy"):
        return np
    import cupy

    return cupy


def diverged_message(trainer) -> str:
    return (
        f"training diverged (a parameter became NaN, infinite or larger than {DIVERGED:g}) with "
        f"learning_rate={trainer.learning_rate}, weight_decay={trainer.weight_decay}, "
        f"momentum={trainer.momentum}: the model keeps its parameters from before this pass; lower "
        "learning_rate (weight_decay must stay below 2 / learning_rate)"
    )


def check_trainer_params(trainer) -> None:
    """The settings every CD/PCD trainer has: learning_rate > 0, cd_k >= 1, n_chains >= 1 or
    None, momentum in [0, 1), weight_decay >= 0."""
    real(trainer.learning_rate, "learning_rate", low=0.0, low_open=True)
    positive_int(trainer.cd_k, "cd_k")
    if trainer.n_chains is not None:
        positive_int(trainer.n_chains, "n_chains")
    real(trainer.momentum, "momentum", low=0.0, high=1.0)
    if trainer.momentum >= 1.0:
        raise ValueError(f"momentum must be < 1, got {trainer.momentum}")
    real(trainer.weight_decay, "weight_decay", low=0.0)


@dataclass
class ContrastiveDivergence:
    """CD-k / PCD-k training with momentum and L2 weight decay, epochs in compiled code.

    Parameters
    ----------
    learning_rate : float > 0
    cd_k : int >= 1
        Gibbs steps per negative phase.
    persistent : bool
        Persistent chains (PCD, Tieleman 2008) instead of restarting from the data (CD).
    n_chains : int >= 1, optional
        Number of persistent chains, independent of the batch size (default: the batch size).
    momentum : float in [0, 1)
    weight_decay : float >= 0
        L2 penalty on the weights (not the biases).
    binary_products : bool, optional
        How the CPU epoch computes products with a 0/1 operand (see
        :func:`fastgen.ops.cd_epoch`); default: binary where it beats BLAS, unless the
        environment sets FASTGEN_DENSE_PRODUCTS=1.
    """

    learning_rate: float = 0.1
    cd_k: int = 1
    persistent: bool = True
    n_chains: int | None = None
    momentum: float = 0.0
    weight_decay: float = 0.0
    chains: np.ndarray | None = field(default=None, repr=False)
    velocities: tuple | None = field(default=None, repr=False)
    binary_products: bool | None = field(default=None, repr=False)

    def __post_init__(self):
        check_trainer_params(self)
        if self.binary_products is not None:
            flag(self.binary_products, "binary_products")

    def offsets_per_epoch(self, n_samples: int, batch_size: int) -> int:
        return offsets_per_epoch(n_samples, batch_size, self.cd_k)

    def prepare(self, rbm: RBM, batch_size: int) -> None:
        """Create the chains (zeros, as scikit-learn) and momentum buffers if missing, as arrays
        of the weights' library (NumPy, or CuPy for a model on the GPU)."""
        xp = _array_module(rbm.weights)
        if self.persistent and (self.chains is None or self.chains.shape[1] != rbm.n_hidden):
            self.chains = xp.zeros((self.n_chains or batch_size, rbm.n_hidden), rbm.dtype)
        if self.momentum > 0 and self.velocities is None:
            self.velocities = tuple(xp.zeros_like(a) for a in (rbm.weights, rbm.visible_bias, rbm.hidden_bias))

    def run(self, rbm: RBM, data: np.ndarray, batch_size: int, generator: Generator) -> None:
        """One pass over ``data`` (C-contiguous, rbm's dtype) in consecutive mini-batches of
        ``batch_size`` rows (the last may be shorter), updating ``rbm`` in place.

        With the parameters, chains, velocities and data all CuPy arrays on one device, the pass
        runs there (see :func:`fastgen.ops.cd_epoch`), on CuPy's current stream, drawing from the
        same counters as the CPU loop."""
        self.prepare(rbm, batch_size)
        guarded_pass(
            lambda: cd_epoch(rbm.weights, rbm.visible_bias, rbm.hidden_bias, data, batch_size=batch_size,
                             cd_k=self.cd_k, learning_rate=self.learning_rate, momentum=self.momentum,
                             weight_decay=self.weight_decay, chains=self.chains if self.persistent else None,
                             velocities=self.velocities if self.momentum > 0 else None, generator=generator,
                             binary_products=self.binary_products, check_input=False),
            (rbm.weights, rbm.visible_bias, rbm.hidden_bias),
            (self.chains, *(self.velocities or ())),
            message=diverged_message(self),
        )
