"""The estimators' input data: checked and converted once, on the host or on a GPU."""
from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_array, validate_data

from .. import _backend
from ..ops.data_summary import data_summary

# What validate_data(reset=True) sets on the estimator.
_FEATURE_ATTRIBUTES = ("n_features_in_", "feature_names_in_")

# Training data outside [0, 1] by more than this warns (MinMaxScaler's rounding gives values like
# -1e-17 or 1 + 2e-16, float32 data 1 + 1.2e-7: not worth a warning).
_RANGE_TOLERANCE = 1e-6


def compute_dtype(requested, data_dtype) -> np.dtype:
    """The estimators' ``dtype`` parameter applied: ``requested`` (float32 or float64), or for
    None the data's float32, anything else float64."""
    if requested is not None:
        return np.dtype(requested)
    return np.dtype(np.float32) if data_dtype == np.float32 else np.dtype(np.float64)


def warn_outside_unit_interval(low, high, stacklevel) -> None:
    if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        warnings.warn(
            "BernoulliRBM expects values in [0, 1] (binary or probabilities); "
            f"X has values outside that range (min {float(low):.6g}, max {float(high):.6g})",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


def refuse_iterator(X, estimator) -> None:
    """TypeError for an iterator passed as X (NumPy would make a 0-d object array of it, and the
    error would not say what to do)."""
    if isinstance(X, Iterator):
        advice = ("for chunks from an iterator, call partial_fit once per chunk" if hasattr(estimator, "partial_fit")
                  else "stack the chunks into one array (a memory-mapped file is read in place)")
        raise TypeError(f"X must be an array of rows (n_samples, n_features), got an iterator "
                        f"({type(X).__name__}): {advice}")


def validate_rows(estimator, X, *, reset, dtype, column_sums=False, training=False):
    """``(X, sums)``: X checked and converted on the host (CSR or C-contiguous, in ``dtype``, or
    for None the fitted one, :func:`compute_dtype` of X's at reset), as scikit-learn's
    ``validate_data`` does; sums the float64 column sums of dense X with ``column_sums``, else
    None.

    ``training`` (fit, partial_fit): a warning when X has values outside [0, 1] by more than
    rounding (``_RANGE_TOLERANCE``). Data that is only transformed or scored never warns, as in
    scikit-learn: P(h | v) and the free energy are defined for any real v, and a scaler fitted on
    other rows (MinMaxScaler in cross-validation) routinely gives held-out values outside [0, 1]."""
    refuse_iterator(X, estimator)
    if _backend.is_cuda_array(X):  # the CPU methods: one copy to the host
        X = _backend.to_host(X, "X")
    # Dense data gets its NaN/inf check from data_summary, with the range and the column sums
    # (one pass instead of NumPy's four).
    dense = not sp.issparse(X)
    # validate_data(reset=True) records the feature count before the pass below can reject X; a
    # rejected X must leave those attributes as they were (scikit-learn checks first).
    kept = {k: v for k, v in vars(estimator).items() if k in _FEATURE_ATTRIBUTES} if reset else None
    X = validate_data(estimator, X, accept_sparse="csr", reset=reset, dtype=(np.float64, np.float32),
                      ensure_all_finite=not dense)
    if dtype is None:
        dtype = compute_dtype(estimator.dtype, X.dtype) if reset else estimator.components_.dtype
    sums = None
    if sp.issparse(X):
        X = X.astype(dtype, copy=False)
        low, high = (X.data.min(), X.data.max()) if X.data.size else (0, 0)
    else:
        X = np.ascontiguousarray(X, dtype=dtype)
        finite, low, high, sums = data_summary(X, column_sums=column_sums)
        if not finite:  # scikit-learn's own error, for its wording
            if kept is not None:
                for name in _FEATURE_ATTRIBUTES:
                    estimator.__dict__.pop(name, None)
                estimator.__dict__.update(kept)
            check_array(X, ensure_all_finite=True, input_name="X", estimator=estimator)
    if training:
        warn_outside_unit_interval(low, high, stacklevel=3)
    return X, sums


def validate_rows_on_device(estimator, X, *, reset, column_sums=False, training=False):
    """:func:`validate_rows` for the GPU methods: X as a C-contiguous CuPy array of the compute
    dtype on the current device (zero-copy when it is already there in that layout)."""
    if sp.issparse(X):
        X = X.toarray()
    X = _backend.to_cupy(X, "X")
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got array of shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must hold real numbers, got dtype {X.dtype}")
    if reset:
        estimator.n_features_in_ = X.shape[1]
        estimator.__dict__.pop("feature_names_in_", None)
    elif X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
                         f"{estimator.n_features_in_} features as input.")
    dtype = compute_dtype(estimator.dtype, X.dtype) if reset else estimator.components_.dtype
    X = _backend.cuda_module("X").ascontiguousarray(X, dtype=dtype)
    finite, low, high, sums = data_summary(X, column_sums=column_sums)
    if not finite:
        raise ValueError("Input X contains NaN or infinity.")
    if training:
        warn_outside_unit_interval(low, high, stacklevel=3)
    return X, sums
