"""Gaussian-Bernoulli restricted Boltzmann machine (real-valued visible units, binary hidden).

Parameterisation (Cho, Ilin and Raiko 2011, "Improved learning of Gaussian-Bernoulli
restricted Boltzmann machines"): with weights ``W`` of shape (n_hidden, n_visible), visible
bias ``b``, hidden bias ``c`` and per-visible-unit standard deviation ``sigma = exp(log_sigma)``,

    E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2)  -  c.h  -  sum_ij h_j W_ji v_i / sigma_i^2

so the visible units couple to the hidden ones through ``v / sigma^2``. Consequences:

* ``P(h_j = 1 | v) = sigmoid(c_j + sum_i W_ji v_i / sigma_i^2)``;
* ``v | h ~ N(b + W^T h, diag(sigma^2))``: the mean does *not* move when sigma changes (with the
  other common choice, coupling through ``v / sigma``, the mean is ``b + sigma * W^T h``);
* free energy ``F(v) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + W_j (v / sigma^2))``;
* the marginal ``P(v)`` is a mixture of ``2**n_hidden`` Gaussians with means ``b + W^T h`` and the
  shared covariance ``diag(sigma^2)``, so integrating v out is analytic:
  ``log Z = n_visible / 2 log(2 pi) + sum_i log sigma_i
  + logsumexp_h [c.h + sum_i ((W^T h)_i^2 + 2 b_i (W^T h)_i) / (2 sigma_i^2)]``,
  exact by enumerating h for up to :data:`MAX_ENUMERABLE_HIDDEN` hidden units.

With ``sigma = 1`` both parameterisations coincide; that is the usual setting (``learn_sigma``
off) and it expects standardised data (:func:`standardize`, :func:`check_standardized`).

Gradients of the log-likelihood are data-minus-model expectations of ``-dE/dtheta``:

* ``-dE/dW_ji = h_j v_i / sigma_i^2``,  ``-dE/db_i = (v_i - b_i) / sigma_i^2``,  ``-dE/dc_j = h_j``;
* ``-dE/dlog sigma_i = ((v_i - b_i)^2 - 2 v_i (W^T h)_i) / sigma_i^2``.

All four are linear in h, so both phases use P(h | v) in place of sampled h (Rao-Blackwellised).
:class:`GaussianContrastiveDivergence` estimates them by CD-k / PCD-k and scales the W and b
steps of unit i by sigma_i^2 (a preconditioner that makes training independent of the units of
each feature; nothing changes at sigma = 1).

Randomness comes from fastgen's Philox stream through the compiled samplers
(``_C.sample_bernoulli``, ``_C.sample_gaussian``); the products are NumPy GEMMs (BLAS).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp

from .._native import cpu as _cpu
from ..ops.validation import positive_int, real
from ..random import Generator, as_generator
from ._divergence import guarded_pass
from .rbm import check_trainer_params

# Exact log Z enumerates 2**n_hidden hidden configurations.
MAX_ENUMERABLE_HIDDEN = 20
# Hidden configurations (times n_visible) evaluated at once by the exact computations.
_ENUM_CHUNK_ELEMENTS = 1 << 22

# Tolerance of check_standardized, per feature: |mean| <= MEAN_TOL and STD_RANGE[0] <= std <=
# STD_RANGE[1], each widened by the sampling spread of the statistic for n standard normals
# (tail probability _TAIL), so that samples of standardised data do not warn at any size.
STANDARDIZED_MEAN_TOL = 0.25
STANDARDIZED_STD_RANGE = (2.0 / 3.0, 1.5)
_STANDARDIZED_TAIL = 1e-6

# A pass that ends with some |W_ji| / sigma_i above this has diverged (GaussianContrastiveDivergence.run).
_DIVERGED = 1e6


def _softplus(x):
    return np.logaddexp(0.0, x)


class Gradients(NamedTuple):
    """Log-likelihood gradient (or a CD estimate of it), one array per parameter."""

    weights: np.ndarray       # (n_hidden, n_visible)
    visible_bias: np.ndarray  # (n_visible,)
    hidden_bias: np.ndarray   # (n_hidden,)
    log_sigma: np.ndarray     # (n_visible,); zeros when sigma is not learned


def _statistics(v, ph, W, b, inv_var, with_sigma, row_weights=None):
    """Averages over the rows of ``-dE/dtheta`` at (v, h = ph): the sufficient statistics of one
    phase. ``row_weights`` (summing to 1) replaces the plain mean."""
    n = v.shape[0]
    if row_weights is None:
        scale = v.dtype.type(1.0 / max(n, 1))
        v_scaled = v * inv_var                                  # v / sigma^2
        g_w = ph.T @ v_scaled
        g_w *= scale
        g_b = v_scaled.mean(axis=0) - b * inv_var if n else np.zeros_like(b)
        g_c = ph.mean(axis=0) if n else np.zeros(ph.shape[1], ph.dtype)
        if with_sigma:
            d = v - b
            g_s = ((d * d - 2.0 * v * (ph @ W)) * inv_var).mean(axis=0) if n else np.zeros_like(b)
        else:
            g_s = np.zeros_like(b)
        return Gradients(g_w, g_b, g_c, g_s)
    w = row_weights[:, None]
    v_scaled = v * inv_var
    g_w = (ph * w).T @ v_scaled
    g_b = row_weights @ v_scaled - row_weights.sum() * b * inv_var
    g_c = row_weights @ ph
    if with_sigma:
        d = v - b
        g_s = row_weights @ ((d * d - 2.0 * v * (ph @ W)) * inv_var)
    else:
        g_s = np.zeros_like(b)
    return Gradients(g_w, g_b, g_c, g_s)


@dataclass
class GaussianRBM:
    """Parameters of a Gaussian-Bernoulli RBM; arrays are used (and trained) in place.

    See the module docstring for the energy and its parameterisation.

    Attributes
    ----------
    weights : ndarray of shape (n_hidden, n_visible)
    visible_bias : ndarray of shape (n_visible,)
        ``b``: the mean of v when every hidden unit is off.
    hidden_bias : ndarray of shape (n_hidden,)
    log_sigma : ndarray of shape (n_visible,)
        Log standard deviation of each visible unit given h (0 for unit variance).
    """

    weights: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray
    log_sigma: np.ndarray = None

    def __post_init__(self):
        W = self.weights
        if not isinstance(W, np.ndarray) or W.ndim != 2 or W.dtype not in (np.float32, np.float64):
            raise ValueError("weights must be a 2-D float32 or float64 array (n_hidden, n_visible)")
        if self.log_sigma is None:
            self.log_sigma = np.zeros(W.shape[1], W.dtype)
        for name, size in (("visible_bias", W.shape[1]), ("hidden_bias", W.shape[0]), ("log_sigma", W.shape[1])):
            a = getattr(self, name)
            if not isinstance(a, np.ndarray) or a.shape != (size,) or a.dtype != W.dtype:
                raise ValueError(f"{name} must be a {W.dtype} array of shape ({size},), got "
                                 f"{getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}")

    @classmethod
    def initialize(cls, n_visible: int, n_hidden: int, *, dtype=np.float64, generator=None, scale: float = 0.01,
                   visible_bias=None, sigma=None):
        """Weights ~ N(0, scale^2) from the Philox stream (one offset); hidden bias 0; visible
        bias ``visible_bias`` (default 0) and standard deviations ``sigma`` (default 1)."""
        n_visible = positive_int(n_visible, "n_visible")
        n_hidden = positive_int(n_hidden, "n_hidden")
        dtype = np.dtype(dtype)
        gen = as_generator(generator)
        weights = gen.normal((n_hidden, n_visible), dtype)
        weights *= dtype.type(scale)
        b = np.zeros(n_visible, dtype) if visible_bias is None else np.array(visible_bias, dtype=dtype).reshape(n_visible)
        if sigma is None:
            log_sigma = np.zeros(n_visible, dtype)
        else:
            s = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (n_visible,))
            if not (np.isfinite(s).all() and (s > 0).all()):
                raise ValueError("sigma must be finite and > 0")
            log_sigma = np.log(s).astype(dtype)
        return cls(weights, b, np.zeros(n_hidden, dtype), log_sigma)

    @property
    def n_visible(self) -> int:
        return self.weights.shape[1]

    @property
    def n_hidden(self) -> int:
        return self.weights.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.weights.dtype

    @property
    def sigma(self) -> np.ndarray:
        """Standard deviation of each visible unit given h, shape (n_visible,)."""
        return np.exp(self.log_sigma)

    def _inv_var(self) -> np.ndarray:
        return np.exp(-2.0 * self.log_sigma).astype(self.dtype, copy=False)

    def _as_input(self, v, name="v"):
        v = np.asarray(v, dtype=self.dtype)
        if v.ndim != 2 or v.shape[1] != self.n_visible:
            raise ValueError(f"{name} must have shape (n, {self.n_visible}), got {v.shape}")
        return np.ascontiguousarray(v)

    def _as_hidden(self, h, name="h"):
        h = np.asarray(h, dtype=self.dtype)
        if h.ndim != 2 or h.shape[1] != self.n_hidden:
            raise ValueError(f"{name} must have shape (n, {self.n_hidden}), got {h.shape}")
        return np.ascontiguousarray(h)

    # ---- quantities --------------------------------------------------------------------------
    def hidden_preactivation(self, v) -> np.ndarray:
        """``c + (v / sigma^2) @ W.T``, shape (n, n_hidden)."""
        x = (self._as_input(v) * self._inv_var()) @ self.weights.T
        x += self.hidden_bias
        return x

    def hidden_probs(self, v) -> np.ndarray:
        """P(h_j = 1 | v) = sigmoid(c_j + sum_i W_ji v_i / sigma_i^2), shape (n, n_hidden)."""
        x = (self._as_input(v) * self._inv_var()) @ self.weights.T
        _cpu.C.sample_bernoulli(x, self.hidden_bias, x, None, True, 0, 0)
        return x

    def visible_mean(self, h) -> np.ndarray:
        """E[v | h] = b + W^T h, shape (n, n_visible)."""
        x = self._as_hidden(h) @ self.weights
        x += self.visible_bias
        return x

    def sample_hidden(self, v, generator=None) -> np.ndarray:
        """h ~ P(h | v) as 0/1 states. Takes 1 offset."""
        gen = as_generator(generator)
        x = (self._as_input(v) * self._inv_var()) @ self.weights.T
        states = np.empty_like(x)
        _cpu.C.sample_bernoulli(x, self.hidden_bias, None, states, True, gen.seed, gen.take())
        return states

    def sample_visible(self, h, generator=None) -> np.ndarray:
        """v ~ N(b + W^T h, sigma^2). Takes 1 offset."""
        gen = as_generator(generator)
        x = self._as_hidden(h) @ self.weights
        _cpu.C.sample_gaussian(x, self.visible_bias, np.ascontiguousarray(self.sigma), 0.0, x, gen.seed, gen.take())
        return x

    def energy(self, v, h) -> np.ndarray:
        """E(v, h) for paired rows of v (n, n_visible) and h (n, n_hidden), shape (n,)."""
        v = self._as_input(v)
        h = self._as_hidden(h)
        inv_var = self._inv_var()
        d = v - self.visible_bias
        quadratic = 0.5 * (d * d * inv_var).sum(axis=1)
        return quadratic - h @ self.hidden_bias - np.einsum("nj,nj->n", h, (v * inv_var) @ self.weights.T)

    def free_energy(self, v) -> np.ndarray:
        """F(v) = -log sum_h exp(-E(v, h)), shape (n,). ``P(v) = exp(-F(v)) / Z``."""
        v = self._as_input(v)
        d = v - self.visible_bias
        quadratic = 0.5 * (d * d * self._inv_var()).sum(axis=1)
        return quadratic - _softplus(self.hidden_preactivation(v)).sum(axis=1)

    def reconstruction_error(self, v) -> float:
        """Mean squared error between v and its mean-field reconstruction E[v | h = P(h | v)]."""
        v = self._as_input(v)
        return float(np.mean((v - self.visible_mean(self.hidden_probs(v))) ** 2))

    # ---- sampling ----------------------------------------------------------------------------
    def gibbs(self, v, steps: int = 1, *, generator=None, clamp=None, return_hidden: bool = False):
        """``steps`` block-Gibbs steps v -> h -> v from ``v``.

        Takes ``2 * steps`` offsets: step s samples h with offset ``first + 2 s`` and v with
        ``first + 2 s + 1``. ``clamp`` (bool, shape (n_visible,) or v's shape) marks visible
        units that keep their value from ``v``. With ``return_hidden``, also returns
        P(h = 1 | v_k). The visible values returned are samples, not means.
        """
        v0 = self._as_input(v)
        steps = positive_int(steps, "steps", minimum=0)
        mask = None
        if clamp is not None:
            mask = np.asarray(clamp)
            if mask.dtype != np.bool_:
                raise TypeError(f"clamp must be a boolean mask, got dtype {mask.dtype}")
            if mask.shape not in ((self.n_visible,), v0.shape):
                raise ValueError(f"clamp must have shape ({self.n_visible},) or {v0.shape}, got {mask.shape}")
        gen = as_generator(generator)
        first = gen.take(2 * steps)
        inv_var = self._inv_var()
        sigma = np.ascontiguousarray(self.sigma)
        W, b, c = self.weights, self.visible_bias, self.hidden_bias
        vk = v0.copy()
        h = np.empty((v0.shape[0], self.n_hidden), self.dtype)
        for s in range(steps):
            x = (vk * inv_var) @ W.T
            _cpu.C.sample_bernoulli(x, c, None, h, True, gen.seed, first + 2 * s)
            vk = h @ W
            _cpu.C.sample_gaussian(vk, b, sigma, 0.0, vk, gen.seed, first + 2 * s + 1)
            if mask is not None:
                np.copyto(vk, v0, where=mask)
        if return_hidden:
            return vk, self.hidden_probs(vk)
        return vk

    def sample(self, n: int, steps: int = 1000, *, generator=None, init=None) -> np.ndarray:
        """n visible samples after ``steps`` Gibbs steps from ``init`` (default: draws from
        P(v | h = 0) = N(b, sigma^2), one offset), shape (n, n_visible)."""
        n = positive_int(n, "n", minimum=0)
        gen = as_generator(generator)
        if init is None:
            init = np.zeros((n, self.n_visible), self.dtype)
            _cpu.C.sample_gaussian(init, self.visible_bias, np.ascontiguousarray(self.sigma), 0.0, init,
                                   gen.seed, gen.take())
        return self.gibbs(init, steps, generator=gen)

    # ---- exact quantities for small models ---------------------------------------------------
    def _check_enumerable(self):
        if self.n_hidden > MAX_ENUMERABLE_HIDDEN:
            raise ValueError(
                f"exact computations enumerate the hidden layer: need n_hidden <= {MAX_ENUMERABLE_HIDDEN}, "
                f"got {self.n_hidden}"
            )

    def _hidden_configurations(self):
        """Chunks of (H, log weight of each h) over all 2**n_hidden configurations, float64.
        The log weight is log of the integral over v of exp(-E(v, h)) minus the constant
        n_visible/2 log(2 pi) + sum log sigma."""
        self._check_enumerable()
        W = self.weights.astype(np.float64)
        b = self.visible_bias.astype(np.float64)
        c = self.hidden_bias.astype(np.float64)
        inv_var = np.exp(-2.0 * self.log_sigma.astype(np.float64))
        n_hidden = self.n_hidden
        chunk = max(1, min(1 << n_hidden, _ENUM_CHUNK_ELEMENTS // max(self.n_visible, n_hidden)))
        for start in range(0, 1 << n_hidden, chunk):
            idx = np.arange(start, min(start + chunk, 1 << n_hidden), dtype=np.int64)
            H = ((idx[:, None] >> np.arange(n_hidden)) & 1).astype(np.float64)
            m = H @ W
            yield H, m, H @ c + (m * (m + 2.0 * b) * inv_var).sum(axis=1) * 0.5

    def _log_gaussian_normaliser(self) -> float:
        return 0.5 * self.n_visible * np.log(2.0 * np.pi) + float(self.log_sigma.astype(np.float64).sum())

    def log_partition(self) -> float:
        """Exact log Z (v integrated analytically, h enumerated; n_hidden <= 20), in float64."""
        terms = [logsumexp(lw) for _, _, lw in self._hidden_configurations()]
        return float(logsumexp(terms)) + self._log_gaussian_normaliser()

    def log_likelihood(self, v, log_z: float | None = None) -> np.ndarray:
        """log p(v) = -F(v) - log Z (a density; exact log Z unless given), float64, shape (n,)."""
        if log_z is None:
            log_z = self.log_partition()
        v = np.asarray(self._as_input(v), dtype=np.float64)
        W = self.weights.astype(np.float64)
        inv_var = np.exp(-2.0 * self.log_sigma.astype(np.float64))
        d = v - self.visible_bias.astype(np.float64)
        fe = 0.5 * (d * d * inv_var).sum(axis=1) - _softplus((v * inv_var) @ W.T
                                                             + self.hidden_bias.astype(np.float64)).sum(axis=1)
        return -fe - log_z

    def model_statistics(self, with_sigma: bool = True) -> Gradients:
        """Exact model expectations of ``-dE/dtheta`` (n_hidden <= 20), float64.

        Given h, v ~ N(mu_h, sigma^2) with mu_h = b + W^T h; every statistic is linear in v
        except ``-dE/dlog sigma``, whose quadratic term adds E[(v - mu_h)^2] / sigma^2 = 1."""
        chunks = list(self._hidden_configurations())
        log_z = logsumexp([logsumexp(lw) for _, _, lw in chunks])
        W = self.weights.astype(np.float64)
        b = self.visible_bias.astype(np.float64)
        inv_var = np.exp(-2.0 * self.log_sigma.astype(np.float64))
        total = None
        for H, m, lw in chunks:
            part = _statistics(b + m, H, W, b, inv_var, with_sigma, row_weights=np.exp(lw - log_z))
            total = part if total is None else Gradients(*(t + p for t, p in zip(total, part)))
        if with_sigma:
            total = total._replace(log_sigma=total.log_sigma + 1.0)
        return total

    def log_likelihood_gradient(self, v, with_sigma: bool = True) -> Gradients:
        """Exact gradient of the mean log-likelihood of the rows of v (n_hidden <= 20), float64:
        data statistics at P(h | v) minus the exact model statistics."""
        v = np.asarray(self._as_input(v), dtype=np.float64)
        W = self.weights.astype(np.float64)
        b = self.visible_bias.astype(np.float64)
        inv_var = np.exp(-2.0 * self.log_sigma.astype(np.float64))
        ph = 1.0 / (1.0 + np.exp(-((v * inv_var) @ W.T + self.hidden_bias.astype(np.float64))))
        data = _statistics(v, ph, W, b, inv_var, with_sigma)
        model = self.model_statistics(with_sigma)
        return Gradients(*(d - m for d, m in zip(data, model)))


@dataclass
class GaussianContrastiveDivergence:
    """CD-k / PCD-k training of a :class:`GaussianRBM` with momentum and L2 weight decay.

    Per mini-batch: the positive phase uses P(h | v_data); the negative phase runs ``cd_k``
    block-Gibbs steps (h sampled, v sampled from N(b + W^T h, sigma^2)) from the data (CD) or
    from persistent hidden states (PCD) and uses P(h | v_k) for the hidden statistics. The
    update is ``param += velocity``, ``velocity = momentum * velocity + learning_rate * (step -
    weight_decay * param)`` (weight decay on the weights only), where ``step`` is the gradient
    of the module docstring (sample means over the batch rows and over the chains) with, when
    ``precondition``, the W and b entries of visible unit i multiplied by ``sigma_i^2``.

    Why the preconditioning: rescaling feature i by a (v_i -> a v_i) maps a model to an
    equivalent one (W_:i, b_i, sigma_i -> a W_:i, a b_i, a sigma_i) but scales the exact
    gradients of W_:i and b_i by 1 / a; plain gradient steps then act like a learning rate
    divided by a^2 (hopeless on data in [0, 255], explosive for sigma -> 0). Multiplying by
    sigma_i^2, a positive diagonal preconditioner (still an ascent direction, same fixed
    points), makes the whole trajectory equivariant to the units of each feature (the log
    sigma gradient is unit-free already). With ``sigma = 1`` it changes nothing.

    Parameters
    ----------
    learning_rate : float > 0
        Default 0.005, as :class:`fastgen.sklearn.GaussianBernoulliRBM` (which documents the
        measurement behind it).
    cd_k : int >= 1
        Gibbs steps per negative phase.
    persistent : bool
        Persistent chains (PCD, Tieleman 2008) instead of restarting from the data (CD).
    n_chains : int >= 1, optional
        Number of persistent chains (default: the batch size).
    momentum : float in [0, 1)
    weight_decay : float >= 0
        L2 penalty on the weights.
    learn_sigma : bool
        Also learn ``log_sigma`` (otherwise it stays fixed).
    precondition : bool
        Scale the W and b gradient entries of visible unit i by sigma_i^2 (see above).
    min_sigma : float > 0, or array of shape (n_visible,) > 0
        Learned standard deviations are kept >= min_sigma (the likelihood is unbounded when a
        Gaussian collapses onto one data point, e.g. a constant feature, and the gradients grow
        like 1 / sigma^2).
    """

    learning_rate: float = 0.005
    cd_k: int = 1
    persistent: bool = True
    n_chains: int | None = None
    momentum: float = 0.0
    weight_decay: float = 0.0
    learn_sigma: bool = False
    precondition: bool = True
    min_sigma: float = 1e-2
    chains: np.ndarray | None = field(default=None, repr=False)
    velocities: tuple | None = field(default=None, repr=False)

    def __post_init__(self):
        check_trainer_params(self)
        if np.ndim(self.min_sigma) == 0:
            real(self.min_sigma, "min_sigma", low=0.0, low_open=True)
        else:
            floor = np.asarray(self.min_sigma, dtype=np.float64)
            if floor.ndim != 1 or not (np.isfinite(floor).all() and (floor > 0).all()):
                raise ValueError("min_sigma must be a finite number > 0 or a 1-D array of them")
        if not isinstance(self.persistent, (bool, np.bool_)):
            raise ValueError(f"persistent must be a bool, got {self.persistent!r}")
        for name in ("learn_sigma", "precondition"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")

    def offsets_per_batch(self) -> int:
        return 2 * self.cd_k + 1

    def offsets_per_epoch(self, n_samples: int, batch_size: int) -> int:
        return -(-n_samples // batch_size) * self.offsets_per_batch()

    def prepare(self, model: GaussianRBM, batch_size: int) -> None:
        """Create the chains (zero hidden states, as scikit-learn) and momentum buffers if missing."""
        if self.persistent and (self.chains is None or self.chains.shape[1] != model.n_hidden):
            self.chains = np.zeros((self.n_chains or batch_size, model.n_hidden), model.dtype)
        if self.momentum > 0 and self.velocities is None:
            self.velocities = tuple(np.zeros_like(a) for a in
                                    (model.weights, model.visible_bias, model.hidden_bias, model.log_sigma))

    def batch_gradients(self, model: GaussianRBM, batch: np.ndarray, seed: int, offset: int) -> Gradients:
        """The CD/PCD gradient estimate of one mini-batch (data minus model statistics).

        Uses offsets ``offset .. offset + 2 cd_k`` of the stream ``seed``: ``offset`` draws
        h ~ P(h | v_data) to start CD (unused by PCD); step s draws v with ``offset + 1 + 2 s``
        and h with ``offset + 2 + 2 s`` (not on the last step of CD, which keeps P(h | v_k)).
        Advances the persistent chains (PCD).
        """
        W, b, c = model.weights, model.visible_bias, model.hidden_bias
        dt = model.dtype.type
        unit = not model.log_sigma.any()  # sigma = 1: skip the scalings by 1 / sigma^2
        inv_var = None if unit else model._inv_var()
        sigma = None if unit else np.ascontiguousarray(model.sigma)
        sigma_scalar = 1.0 if unit else 0.0

        def scaled(v):  # v / sigma^2
            return v if unit else v * inv_var

        vs_pos = scaled(batch)
        ph_pos = vs_pos @ W.T
        if self.persistent:
            _cpu.C.sample_bernoulli(ph_pos, c, ph_pos, None, True, 0, 0)
            chains = self.chains
        else:
            chains = np.empty_like(ph_pos)
            _cpu.C.sample_bernoulli(ph_pos, c, ph_pos, chains, True, seed, offset)
        for step in range(self.cd_k):
            v_neg = chains @ W
            _cpu.C.sample_gaussian(v_neg, b, sigma, sigma_scalar, v_neg, seed, offset + 1 + 2 * step)
            vs_neg = scaled(v_neg)
            ph_neg = vs_neg @ W.T
            if step + 1 == self.cd_k and not self.persistent:
                _cpu.C.sample_bernoulli(ph_neg, c, ph_neg, None, True, 0, 0)
            else:
                chains = np.empty_like(ph_neg)
                _cpu.C.sample_bernoulli(ph_neg, c, ph_neg, chains, True, seed, offset + 2 + 2 * step)
        if self.persistent:
            self.chains = chains
        # data minus model averages of -dE/dtheta (module docstring), h at P(h | v); the
        # b / sigma^2 part of -dE/db is the same in both phases and cancels
        g_w = ph_pos.T @ vs_pos
        g_w *= dt(1.0 / batch.shape[0])
        neg = ph_neg.T @ vs_neg
        neg *= dt(1.0 / v_neg.shape[0])
        g_w -= neg
        g_b = vs_pos.mean(axis=0) - vs_neg.mean(axis=0)
        g_c = ph_pos.mean(axis=0) - ph_neg.mean(axis=0)
        if self.learn_sigma:
            def sigma_statistic(v, ph):
                d = v - b
                d *= d
                d -= 2.0 * v * (ph @ W)
                return scaled(d).mean(axis=0)

            g_s = sigma_statistic(batch, ph_pos) - sigma_statistic(v_neg, ph_neg)
        else:
            g_s = np.zeros_like(b)
        return Gradients(g_w, g_b, g_c, g_s)

    def apply(self, model: GaussianRBM, grads: Gradients) -> None:
        """One momentum / weight-decay step along ``grads`` (preconditioned, see the class
        docstring), updating ``model`` in place."""
        vel = self.velocities if self.momentum > 0 else (None, None, None, None)
        lr, mom, wd = float(self.learning_rate), float(self.momentum), float(self.weight_decay)
        g_w, g_b = grads.weights, grads.visible_bias
        if self.precondition and model.log_sigma.any():
            var = np.exp(2.0 * model.log_sigma).astype(model.dtype, copy=False)
            g_w = g_w * var
            g_b = g_b * var
        _cpu.C.sgd_momentum_update(model.weights, vel[0], g_w, lr, mom, wd)
        _cpu.C.sgd_momentum_update(model.visible_bias, vel[1], g_b, lr, mom, 0.0)
        _cpu.C.sgd_momentum_update(model.hidden_bias, vel[2], grads.hidden_bias, lr, mom, 0.0)
        if self.learn_sigma:
            _cpu.C.sgd_momentum_update(model.log_sigma, vel[3], grads.log_sigma, lr, mom, 0.0)
            np.maximum(model.log_sigma, np.log(self.min_sigma).astype(model.dtype), out=model.log_sigma)

    def run(self, model: GaussianRBM, data: np.ndarray, batch_size: int, generator: Generator) -> None:
        """One pass over ``data`` (rows of n_visible values) in consecutive mini-batches of
        ``batch_size`` rows (the last may be shorter), updating ``model`` in place. Takes
        ``(2 cd_k + 1)`` offsets per batch. Raises FloatingPointError when the parameters end
        the pass non-finite or with a weight |W_ji| above 1e6 sigma_i (a hidden unit moving the
        visible mean by a million standard deviations: the learning rate was too large)."""
        batch_size = positive_int(batch_size, "batch_size")
        data = np.ascontiguousarray(data, dtype=model.dtype)
        if data.ndim != 2 or data.shape[1] != model.n_visible:
            raise ValueError(f"data must have shape (n, {model.n_visible}), got {data.shape}")
        for name in ("weights", "visible_bias", "hidden_bias", "log_sigma"):
            a = getattr(model, name)
            if a.dtype != model.dtype or not a.flags.c_contiguous or not a.flags.writeable:
                raise ValueError(f"model.{name} must be a writeable C-contiguous {model.dtype} array")
        self.prepare(model, batch_size)
        per_batch = self.offsets_per_batch()
        first = generator.take(self.offsets_per_epoch(data.shape[0], batch_size))
        def run():
            for k, start in enumerate(range(0, data.shape[0], batch_size)):
                grads = self.batch_gradients(model, data[start:start + batch_size], generator.seed,
                                             first + k * per_batch)
                self.apply(model, grads)

        def diverged():
            finite = all(np.isfinite(a).all() for a in (model.weights, model.visible_bias, model.hidden_bias,
                                                         model.log_sigma))
            return not finite or bool(model.weights.size and np.max(np.abs(model.weights) / model.sigma) > _DIVERGED)

        chains = self.chains  # batch_gradients may replace it
        try:
            guarded_pass(
                run, (model.weights, model.visible_bias, model.hidden_bias, model.log_sigma),
                (self.chains, *(self.velocities or ())), diverged=diverged,
                message=(f"training diverged (non-finite parameters, or a weight above {_DIVERGED:g} sigma) with "
                         f"learning_rate={self.learning_rate}: the model keeps its parameters from before this "
                         "pass; lower learning_rate (or momentum), or standardise the data"),
            )
        except BaseException:  # the pass was undone: so are its chains
            self.chains = chains
            raise


# ---- standardisation ---------------------------------------------------------------------------
def standardize(X):
    """Per-feature standardisation: ``Z = (X - mean) / std``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        float32 stays float32, anything else becomes float64.

    Returns
    -------
    Z : ndarray of shape (n_samples, n_features)
    mean : ndarray of shape (n_features,)
    std : ndarray of shape (n_features,)
        Population standard deviation (ddof=0); constant features get 1 (their Z is 0), so
        ``destandardize(Z, mean, std)`` gives X back.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("X has 0 samples: cannot standardise")
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    X = X.astype(dtype, copy=False)
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity")
    mean = X.mean(axis=0, dtype=np.float64)
    std = X.std(axis=0, dtype=np.float64)
    std[std <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
    Z = ((X - mean) / std).astype(dtype)
    return Z, mean.astype(dtype), std.astype(dtype)


def destandardize(Z, mean, std):
    """Inverse of :func:`standardize`: ``Z * std + mean``, shape of Z."""
    Z = np.asarray(Z)
    dtype = np.float32 if Z.dtype == np.float32 else np.float64
    mean = np.asarray(mean, dtype)
    std = np.asarray(std, dtype)
    if Z.ndim < 1 or mean.shape != (Z.shape[-1],) or std.shape != (Z.shape[-1],):
        raise ValueError(f"mean and std must have shape ({Z.shape[-1] if Z.ndim else '?'},), "
                         f"got {mean.shape} and {std.shape}")
    return Z.astype(dtype, copy=False) * std + mean


def standardization_problems(X) -> list:
    """What makes the rows of X look not standardised, as sentences (empty when they look fine).

    Tolerance, per feature, for n rows: ``|mean| <= 0.25 + z / sqrt(n)`` and, unless the
    feature is constant (std 0, as :func:`standardize` leaves one) or n < 2,
    ``(2/3) q_lo <= std <= 1.5 q_hi``. The base tolerance (0.25; a factor 1.5) is what "far
    from standardised" means: data on another scale (pixels in [0, 255] or [0, 1], binary
    data, physical units). The widening makes the check exact for samples of standardised
    Gaussian data, which exceed it with probability below 1e-6 per feature and statistic even
    without the base tolerance: ``z`` is the two-sided 1e-6 normal quantile (4.9) and
    ``q_lo``, ``q_hi`` are the square roots of the 0.5e-6 and 1 - 0.5e-6 quantiles of
    ``chi2(n - 1) / n`` (the law of the population variance of n standard normals).
    """
    X = np.asarray(X)
    n = X.shape[0]
    if n == 0 or X.ndim != 2 or X.shape[1] == 0:
        return []
    from scipy import stats

    problems = []
    mean = X.mean(axis=0, dtype=np.float64)
    mean_tol = STANDARDIZED_MEAN_TOL + stats.norm.isf(_STANDARDIZED_TAIL / 2) / np.sqrt(n)
    worst = int(np.argmax(np.abs(mean)))
    if abs(mean[worst]) > mean_tol:
        problems.append(f"feature {worst} has mean {mean[worst]:.3g} (tolerance +-{mean_tol:.2g})")
    if n >= 2:
        std = X.std(axis=0, dtype=np.float64)
        varying = np.flatnonzero(std > 1e-12 * np.maximum(1.0, np.abs(mean)))
        if varying.size:
            low = STANDARDIZED_STD_RANGE[0] * np.sqrt(stats.chi2.ppf(_STANDARDIZED_TAIL / 2, n - 1) / n)
            high = STANDARDIZED_STD_RANGE[1] * np.sqrt(stats.chi2.isf(_STANDARDIZED_TAIL / 2, n - 1) / n)
            outside = varying[(std[varying] < low) | (std[varying] > high)]
            if outside.size:
                worst = int(outside[np.argmax(np.abs(np.log(std[outside])))])
                problems.append(f"feature {worst} has std {std[worst]:.3g} (tolerance [{low:.2g}, {high:.2g}])")
    return problems


def check_standardized(X, *, name: str = "X", stacklevel: int = 2) -> bool:
    """Warn (UserWarning) when X does not look standardised, with the tolerance of
    :func:`standardization_problems`; returns whether it looks standardised. A unit-variance
    Gaussian-Bernoulli RBM (sigma = 1, not learned) models features with mean ~0 and std ~1."""
    problems = standardization_problems(X)
    if problems:
        warnings.warn(
            f"{name} does not look standardised: {'; '.join(problems)}. A Gaussian-Bernoulli RBM with unit "
            "variances models standardised data: use fastgen.models.gbrbm.standardize(X) first, or learn_sigma=True",
            UserWarning,
            stacklevel=stacklevel + 1,
        )
    return not problems


__all__ = [
    "GaussianRBM", "GaussianContrastiveDivergence", "Gradients", "MAX_ENUMERABLE_HIDDEN",
    "standardize", "destandardize", "check_standardized", "standardization_problems",
]
