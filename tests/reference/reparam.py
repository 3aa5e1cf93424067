"""Reference for fastgen.ops.reparameterize: z = mu + exp(logvar / 2) eps on the Philox normals of
the call, and the per-row KL divergence to N(0, 1)."""
from __future__ import annotations

import numpy as np

from .philox import normal


def reparameterize(mu, logvar, seed, offset):
    """(z, kl, eps, z error scale, kl error scale) in float64: eps are the normals of (seed,
    offset) in mu's dtype; the scales are |mu| + sigma * radius and sum |terms| + 1."""
    mu64, lv64 = mu.astype(np.float64), logvar.astype(np.float64)
    eps = normal(seed, offset, mu.shape, mu.dtype)
    sigma = np.exp(0.5 * lv64)
    z = mu64 + sigma * eps.values
    terms = 0.5 * (mu64 ** 2 + sigma ** 2 - 1 - lv64)
    return z, terms.sum(axis=1), eps, np.abs(mu64) + sigma * eps.radius, np.abs(terms).sum(axis=1) + 1
