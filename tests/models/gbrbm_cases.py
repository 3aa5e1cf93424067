"""Tiny Gaussian-Bernoulli RBMs shared by the tests of fastgen.models.gbrbm."""
import numpy as np

from fastgen.models.gbrbm import GaussianRBM


def make_gbrbm(n_visible=10, n_hidden=8, dtype=np.float64, seed=0, scale=1.0, sigma_spread=0.4):
    rng = np.random.default_rng(seed)
    return GaussianRBM(rng.normal(0, scale, (n_hidden, n_visible)).astype(dtype),
                       rng.normal(0, 0.5, n_visible).astype(dtype), rng.normal(0, 0.5, n_hidden).astype(dtype),
                       rng.normal(0, sigma_spread, n_visible).astype(dtype))


def params(m: GaussianRBM):
    return m.weights, m.visible_bias, m.hidden_bias, m.log_sigma


def binary(shape, seed=1, p=0.5, dtype=np.float64):
    return (np.random.default_rng(seed).random(shape) < p).astype(dtype)
