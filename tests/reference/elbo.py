"""References for fastgen.ops.elbo: per-row log-likelihoods of x under Bernoulli logits and under
a Gaussian (mean, log-variance), summed over every axis but the first, in float64."""
from __future__ import annotations

import numpy as np

LOG_2PI = np.log(2 * np.pi)


def bernoulli_log_likelihood(x, logits):
    """sum x * logits - softplus(logits) per row (a scalar for one-dimensional input)."""
    x, logits = np.asarray(x, np.float64), np.asarray(logits, np.float64)
    terms = x * logits - np.logaddexp(0.0, logits)
    return terms.reshape(terms.shape[0], int(np.prod(terms.shape[1:]))).sum(1) if terms.ndim > 1 else terms.sum()


def gaussian_log_likelihood(x, mean, logvar=None):
    """sum -(log 2 pi + logvar + (x - mean)^2 exp(-logvar)) / 2 per row; logvar None means 0."""
    x, mean = np.asarray(x, np.float64), np.asarray(mean, np.float64)
    v = np.zeros_like(x) if logvar is None else np.broadcast_to(np.asarray(logvar, np.float64), x.shape)
    terms = -0.5 * (LOG_2PI + v + (x - mean) ** 2 * np.exp(-v))
    return terms.reshape(terms.shape[0], int(np.prod(terms.shape[1:]))).sum(1) if terms.ndim > 1 else terms.sum()
