"""Per-feature standardisation, and the check that data looks standardised (what a
unit-variance Gaussian-Bernoulli RBM models)."""
from __future__ import annotations

import warnings

import numpy as np

# Tolerance of check_standardized, per feature: |mean| <= MEAN_TOL and STD_RANGE[0] <= std <=
# STD_RANGE[1], each widened by the sampling spread of the statistic for n standard normals
# (tail probability _TAIL), so that samples of standardised data do not warn at any size.
STANDARDIZED_MEAN_TOL = 0.25
STANDARDIZED_STD_RANGE = (2.0 / 3.0, 1.5)
_STANDARDIZED_TAIL = 1e-6


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

