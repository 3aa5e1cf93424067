"""References for the Gaussian-Bernoulli RBM (fastgen.models.gbrbm).

E(v, h) = sum_i (v_i - b_i)^2 / (2 s_i^2) - c.h - sum_ij h_j W_ji v_i / s_i^2, s = exp(log_sigma)
(Cho, Ilin and Raiko 2011): P(h_j = 1 | v) = sigmoid(c_j + W_j (v / s^2)), v | h ~ N(b + W^T h, s^2).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import sigmoid, softplus
from .philox import normal, seed_and_offset, uniform
from .rbm import all_states, as_float64
from .sampling import ambiguous_tol, bernoulli


def gb_energy(v, h, W, b_vis, b_hid, log_sigma):
    v, h, W, b_vis, b_hid, log_sigma = as_float64(v, h, W, b_vis, b_hid, log_sigma)
    var = np.exp(2.0 * log_sigma)
    total = np.zeros(v.shape[0])
    for i in range(v.shape[1]):
        total += (v[:, i] - b_vis[i]) ** 2 / (2.0 * var[i])
        total -= (h @ W[:, i]) * v[:, i] / var[i]
    return total - h @ b_hid


def gb_hidden_probs(v, W, b_vis, b_hid, log_sigma):
    v, W, b_hid, log_sigma = as_float64(v, W, b_hid, log_sigma)
    return sigmoid((v / np.exp(2.0 * log_sigma)) @ W.T + b_hid)


def gb_visible_mean(h, W, b_vis):
    h, W, b_vis = as_float64(h, W, b_vis)
    return h @ W + b_vis


def gb_free_energy(v, W, b_vis, b_hid, log_sigma):
    """F(v) = sum_i (v_i - b_i)^2 / (2 s_i^2) - sum_j softplus(c_j + W_j (v / s^2))."""
    v, W, b_vis, b_hid, log_sigma = as_float64(v, W, b_vis, b_hid, log_sigma)
    var = np.exp(2.0 * log_sigma)
    return ((v - b_vis) ** 2 / (2.0 * var)).sum(axis=1) - softplus((v / var) @ W.T + b_hid).sum(axis=1)


class GBMixture(NamedTuple):
    log_weights: np.ndarray  # [2**n_hidden] log P(h), normalised
    hidden: np.ndarray       # [2**n_hidden, n_hidden] every configuration
    means: np.ndarray        # [2**n_hidden, n_visible] E[v | h] = b + W^T h
    sigma: np.ndarray        # [n_visible] shared standard deviations
    log_z: float


def gb_mixture(W, b_vis, b_hid, log_sigma) -> GBMixture:
    """The exact marginal of a small GB-RBM as a mixture of Gaussians, one per hidden
    configuration: the integral over v of exp(-E(v, h)) is, unit by unit,
    sqrt(2 pi) s_i exp(((b_i + m_i)^2 - b_i^2) / (2 s_i^2)) with m = W^T h, times exp(c.h)."""
    W, b_vis, b_hid, log_sigma = as_float64(W, b_vis, b_hid, log_sigma)
    H = all_states(W.shape[0])
    s = np.exp(log_sigma)
    log_mass = np.empty(len(H))
    for k, h in enumerate(H):
        m = h @ W
        per_unit = 0.5 * np.log(2.0 * np.pi) + np.log(s) + ((b_vis + m) ** 2 - b_vis ** 2) / (2.0 * s ** 2)
        log_mass[k] = h @ b_hid + per_unit.sum()
    top = log_mass.max()
    log_z = float(top + np.log(np.exp(log_mass - top).sum()))
    return GBMixture(log_mass - log_z, H, H @ W + b_vis, s, log_z)


def gb_moments(W, b_vis, b_hid, log_sigma):
    """Exact (mean, covariance) of v and E[h] under the model."""
    mix = gb_mixture(W, b_vis, b_hid, log_sigma)
    p = np.exp(mix.log_weights)
    mean = p @ mix.means
    centred = mix.means - mean
    cov = np.diag(mix.sigma ** 2) + (centred * p[:, None]).T @ centred
    return mean, cov, p @ mix.hidden


class GBCDRef(NamedTuple):
    weights: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray
    log_sigma: np.ndarray
    chains: np.ndarray
    n_ambiguous: int


def gb_cd_gradients(v, W, b_vis, b_hid, log_sigma, *, k=1, generator=0, persistent_chains=None,
                    learn_sigma=True, dtype=None, tol=None) -> GBCDRef:
    """Reference for GaussianContrastiveDivergence.batch_gradients (takes 2k + 1 offsets):
    offset ``first`` draws h ~ P(h | v_data) (CD only); step s draws v = b + W^T h + s * z with
    the normals of ``first + 1 + 2 s`` and h with the uniforms of ``first + 2 + 2 s`` (not on
    CD's last step). Statistics -dE/dtheta at h = P(h | v), data mean minus chain mean:
    W: h v / s^2; b: (v - b) / s^2; c: h; log s: ((v - b)^2 - 2 v (W^T h)) / s^2."""
    dtype = np.dtype(dtype or np.asarray(W).dtype)
    tol = ambiguous_tol(dtype) if tol is None else tol
    v, W, b_vis, b_hid, log_sigma = as_float64(v, W, b_vis, b_hid, log_sigma)
    seed, first = seed_and_offset(generator, 2 * k + 1)
    var = np.exp(2.0 * log_sigma)
    n_ambiguous = 0

    def draw(p, offset):
        nonlocal n_ambiguous
        u = uniform(seed, offset, p.shape, dtype).astype(np.float64)
        n_ambiguous += int((np.abs(p - u) < tol).sum())
        return bernoulli(p, u)

    def stats(x, ph):
        out = [ph.T @ (x / var) / len(x), ((x - b_vis) / var).mean(axis=0), ph.mean(axis=0)]
        if learn_sigma:
            out.append((((x - b_vis) ** 2 - 2.0 * x * (ph @ W)) / var).mean(axis=0))
        else:
            out.append(np.zeros_like(b_vis))
        return out

    hidden_pos = gb_hidden_probs(v, W, b_vis, b_hid, log_sigma)
    chains = draw(hidden_pos, first) if persistent_chains is None else np.asarray(persistent_chains, np.float64)
    for step in range(k):
        z = normal(seed, first + 1 + 2 * step, (chains.shape[0], W.shape[1]), dtype).values
        visible_neg = chains @ W + b_vis + np.exp(log_sigma) * z
        hidden_neg = gb_hidden_probs(visible_neg, W, b_vis, b_hid, log_sigma)
        if not (step + 1 == k and persistent_chains is None):
            chains = draw(hidden_neg, first + 2 + 2 * step)
    pos, neg = stats(v, hidden_pos), stats(visible_neg, hidden_neg)
    return GBCDRef(*(p - q for p, q in zip(pos, neg)), chains, n_ambiguous)
