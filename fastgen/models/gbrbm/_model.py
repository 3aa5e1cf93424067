"""The Gaussian-Bernoulli RBM's parameters and the quantities computed from them (see the
package docstring for the energy)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp

from ..._checks import positive_int
from ...ops.sampling import sample_bernoulli_numpy, sample_gaussian_numpy, sigmoid_numpy
from ...random import as_generator

# Exact log Z enumerates 2**n_hidden hidden configurations.
MAX_ENUMERABLE_HIDDEN = 20
# Hidden configurations (times n_visible) evaluated at once by the exact computations.
_ENUM_CHUNK_ELEMENTS = 1 << 22



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

    See the package docstring for the energy and its parameterisation.

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
        return sigmoid_numpy(x, bias=self.hidden_bias, out=x)

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
        sample_bernoulli_numpy(x, bias=self.hidden_bias, states=states, seed=gen.seed, offset=gen.take())
        return states

    def sample_visible(self, h, generator=None) -> np.ndarray:
        """v ~ N(b + W^T h, sigma^2). Takes 1 offset."""
        gen = as_generator(generator)
        x = self._as_hidden(h) @ self.weights
        return sample_gaussian_numpy(x, out=x, bias=self.visible_bias, std=np.ascontiguousarray(self.sigma),
                                     seed=gen.seed, offset=gen.take())

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
            sample_bernoulli_numpy(x, bias=c, states=h, seed=gen.seed, offset=first + 2 * s)
            vk = h @ W
            sample_gaussian_numpy(vk, out=vk, bias=b, std=sigma, seed=gen.seed, offset=first + 2 * s + 1)
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
            sample_gaussian_numpy(init, out=init, bias=self.visible_bias, std=np.ascontiguousarray(self.sigma),
                                  seed=gen.seed, offset=gen.take())
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

