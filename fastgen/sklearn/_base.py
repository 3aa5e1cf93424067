"""What the RBM estimators share beyond their parameters: fitted-state checks and the pass loop."""
from __future__ import annotations

import contextlib

import numpy as np

# Sparse input is densified this many rows at a time (in fit: rounded to whole batches), and a
# larger batch (partial_fit of a memory-mapped file) is read and computed this many rows at a time.
SPARSE_CHUNK_ROWS = 4096

# The fitted parameters every RBM estimator has.
RBM_PARAMETERS = ("components_", "intercept_visible_", "intercept_hidden_")


def check_fitted_finite(estimator, names) -> None:
    """A fitted parameter with a NaN or infinity (a damaged file, or arrays set by hand) is
    refused: the kernels would propagate it into every output, or a sampler would turn it into
    states that look like numbers."""
    for name in names:
        a = getattr(estimator, name)
        if isinstance(a, np.ndarray) and a.size and not np.isfinite(a).all():
            raise ValueError(f"{type(estimator).__name__}.{name} contains NaN or infinity: the model is "
                             "unusable (fit it again)")


def _writeable(owner, names) -> None:
    """Arrays that training updates in place, made writeable copies where they are read-only (a
    model loaded with joblib's mmap_mode='r'); the file behind them is never written."""
    for name in names:
        a = getattr(owner, name, None)
        if isinstance(a, np.ndarray) and not a.flags.writeable:
            setattr(owner, name, np.array(a))
        elif isinstance(a, tuple) and any(isinstance(v, np.ndarray) and not v.flags.writeable for v in a):
            setattr(owner, name, tuple(np.array(v) for v in a))


def writeable_training_state(estimator) -> None:
    """Everything partial_fit updates in place: parameters, chains, momentum, tempering replicas."""
    _writeable(estimator, (*RBM_PARAMETERS, "log_sigma_", "h_samples_", "_velocities"))
    sampler = getattr(estimator, "tempering_", None)
    if sampler is not None:
        _writeable(sampler, ("visible", "swap_attempts", "swap_accepts"))


@contextlib.contextmanager
def training_passes(estimator, n_passes: int, *, show: bool = True):
    """``range(1, n_passes + 1)``, behind a tqdm progress bar when ``show`` and the estimator's
    ``progress`` ask for one (closed on the way out, after a failed pass too)."""
    iterations = range(1, n_passes + 1)
    if not (show and estimator.progress):
        yield iterations
        return
    from tqdm.auto import tqdm

    bar = tqdm(iterations, desc=type(estimator).__name__, unit="epoch")
    try:
        yield bar
    finally:
        bar.close()
