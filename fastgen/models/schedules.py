"""Learning-rate schedules over training passes, and the visible biases' start from the data.

A constant learning rate leaves persistent chains and weights "hot": published PCD results anneal
it (Tieleman 2008 decays it linearly to zero). The schedules here set one rate per pass over the
data. Hinton's practical guide (2010, section 8.1) starts the visible biases at the log-odds of
each unit's mean activity, so that the first updates need not learn the marginals.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .._checks import is_finite_real

SCHEDULES = ("constant", "linear")
# The annealed PCD recipe (BernoulliRBM.annealed_pcd): docs/performance.md ("Training recipes")
# has its likelihoods on MNIST and what the other settings tried gave.
ANNEALED_PCD = dict(learning_rate=0.05, learning_rate_schedule="linear", final_learning_rate=0.0, batch_size=100,
                    n_chains=100, n_iter=100, visible_bias_init="log_odds", persistent=True, cd_k=1)
# Units never or always on in the data get the log-odds of this probability (or its complement),
# not an infinite bias.
LOG_ODDS_CLIP = 1e-3


def learning_rate_for_pass(schedule: str | Callable, learning_rate: float, final_learning_rate: float,
                           pass_index: int, n_passes: int) -> float:
    """The learning rate of pass ``pass_index`` (0-based) of ``n_passes``.

    * ``"constant"``: ``learning_rate``.
    * ``"linear"``: from ``learning_rate`` at the first pass toward ``final_learning_rate``,
      ``learning_rate + (final_learning_rate - learning_rate) * pass_index / n_passes``.
    * a callable: ``schedule(pass_index, n_passes)``, which must return a finite number > 0.
    """
    if schedule == "constant":
        return float(learning_rate)
    if schedule == "linear":
        return float(learning_rate + (final_learning_rate - learning_rate) * pass_index / n_passes)
    rate = schedule(pass_index, n_passes)
    if isinstance(rate, (bool, np.bool_)) or not is_finite_real(rate) or not float(rate) > 0:
        raise ValueError(f"learning_rate_schedule must return a finite number > 0, got {rate!r} for pass "
                         f"{pass_index} of {n_passes}")
    return float(rate)


def log_odds_visible_bias(column_sums: np.ndarray, n_rows: int, dtype) -> np.ndarray:
    """``log(p / (1 - p))`` of each column's mean ``p = column_sums / n_rows``, with ``p`` clipped to
    ``[LOG_ODDS_CLIP, 1 - LOG_ODDS_CLIP]``; shape ``(n_features,)``, in ``dtype``."""
    p = np.clip(np.asarray(column_sums, np.float64) / max(int(n_rows), 1), LOG_ODDS_CLIP, 1.0 - LOG_ODDS_CLIP)
    return np.log(p / (1.0 - p)).astype(dtype)


__all__ = ["ANNEALED_PCD", "LOG_ODDS_CLIP", "SCHEDULES", "learning_rate_for_pass", "log_odds_visible_bias"]
