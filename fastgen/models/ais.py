"""Annealed importance sampling (AIS) of an RBM's log partition function.

Salakhutdinov & Murray, "On the quantitative analysis of deep belief networks" (ICML 2008):
anneal from a base-rate RBM A (no weights, no hidden bias, visible biases from the data's
marginals, so that log Z_A is exact) to the target RBM B along

    log p*_beta(v) = (1 - beta) b_A.v + beta b.v + sum_j softplus(beta (W_j v + c_j)),

with one block-Gibbs transition at every inverse temperature. Each chain's log importance
weight is the sum of log p*_beta_k(v_k) - log p*_beta_k-1(v_k); then

    log Z_B ~ log Z_A + log mean_m exp(log w_m).

All chains advance together in compiled code (:func:`fastgen.ops.ais.ais_log_weights`); the
log-weights are accumulated in float64 whatever the model's dtype. The estimate is unbiased for Z, so log Z is
biased low when the chains are too few or the schedule too short (log-likelihoods then come out
too high); the error bar is Salakhutdinov & Murray's log(Z_hat +- 3 sd(Z_hat)).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from .._checks import as_generator, positive_int
from ..ops.ais import ais_log_weights, ais_offsets, raise_log_weights, raise_offsets
from .data_parallel import gather_rows, share
from ..ops.validation import float_array

# Salakhutdinov & Murray's schedule: 500 temperatures in [0, 0.5), 4,000 in [0.5, 0.9) and
# 10,000 in [0.9, 1], evenly spaced in each stretch (14,500 in all).
PAPER_SCHEDULE = ((0.5, 500), (0.9, 4000), (1.0, 10000))
DEFAULT_N_BETAS = 14500
# Added to the data's per-pixel counts (ones and zeros alike) so that a pixel never seen on
# gets a finite base-rate bias.
BASE_RATE_PSEUDOCOUNT = 1.0


def default_schedule(n_betas: int = DEFAULT_N_BETAS) -> np.ndarray:
    """Inverse temperatures from 0 to 1, ``n_betas`` of them, in the paper's proportions
    (500 : 4,000 : 10,000 over [0, 0.5), [0.5, 0.9), [0.9, 1]); n_betas >= 2."""
    n_betas = positive_int(n_betas, "n_betas", minimum=2)
    total = sum(count for _, count in PAPER_SCHEDULE)
    parts, start = [], 0.0
    counts = [max(1, round(count * n_betas / total)) for _, count in PAPER_SCHEDULE]
    counts[-1] = max(1, n_betas - sum(counts[:-1]))
    if sum(counts) != n_betas or counts[-1] < 2:  # tiny n_betas: plain linear schedule
        return np.linspace(0.0, 1.0, n_betas)
    for (stop, _), count in zip(PAPER_SCHEDULE, counts):
        last = stop == 1.0
        parts.append(np.linspace(start, stop, count, endpoint=last))
        start = stop
    betas = np.concatenate(parts)
    return betas


def check_schedule(betas) -> np.ndarray:
    """Validate a user schedule: 1-D, finite, non-decreasing, from exactly 0 to exactly 1."""
    b = np.asarray(betas, dtype=np.float64)
    if b.ndim != 1 or b.shape[0] < 2:
        raise ValueError(f"betas must be a 1-D sequence of at least 2 inverse temperatures, got shape {b.shape}")
    if not np.isfinite(b).all():
        raise ValueError("betas contains NaN or infinity")
    if b[0] != 0.0 or b[-1] != 1.0:
        raise ValueError(f"betas must start at 0 and end at 1, got {b[0]!r} ... {b[-1]!r}")
    if np.any(np.diff(b) < 0):
        raise ValueError("betas must be non-decreasing")
    return np.ascontiguousarray(b)


def base_rate_bias(data=None, n_visible: int | None = None, dtype=np.float64) -> np.ndarray:
    """Visible biases of the base-rate RBM: logit of each unit's mean in ``data`` (with a
    pseudocount of 1 on and 1 off), or zeros (uniform base) when ``data`` is None."""
    if data is None:
        if n_visible is None:
            raise ValueError("base_rate_bias needs data or n_visible")
        return np.zeros(n_visible, dtype)
    x = float_array(data, "data", ndim=2, allow_empty=False)
    if n_visible is not None and x.shape[1] != n_visible:
        raise ValueError(f"data must have {n_visible} columns (n_visible), got shape {x.shape}")
    p = (x.sum(axis=0, dtype=np.float64) + BASE_RATE_PSEUDOCOUNT) / (x.shape[0] + 2 * BASE_RATE_PSEUDOCOUNT)
    return np.log(p / (1.0 - p)).astype(dtype)


@dataclass
class AISResult:
    """An AIS estimate of log Z.

    Attributes
    ----------
    log_z : float
        log Z_A + log mean exp(log_weights).
    log_z_lower, log_z_upper : float
        log(Z_hat - 3 sd) and log(Z_hat + 3 sd), sd the standard error of the mean weight
        (``log_z_lower`` is -inf when 3 sd exceeds Z_hat).
    log_weights : ndarray of shape (n_chains,), float64
    base_log_z : float
        Exact log Z of the base-rate model.
    betas : ndarray of shape (n_betas,)
    """

    log_z: float
    log_z_lower: float
    log_z_upper: float
    log_weights: np.ndarray
    base_log_z: float
    betas: np.ndarray

    @property
    def n_chains(self) -> int:
        return self.log_weights.shape[0]

    @property
    def effective_sample_size(self) -> float:
        """(sum w)^2 / sum w^2: how many of the chains effectively count."""
        lw = self.log_weights
        return float(np.exp(2 * logsumexp(lw) - logsumexp(2 * lw)))

    def __str__(self) -> str:
        return (f"log Z = {self.log_z:.4f} (3 sd: [{self.log_z_lower:.4f}, {self.log_z_upper:.4f}], "
                f"{self.n_chains} chains x {self.betas.shape[0]} temperatures)")


def _error_bar(log_weights: np.ndarray, base_log_z: float):
    m = log_weights.shape[0]
    log_mean = logsumexp(log_weights) - np.log(m)
    w = np.exp(log_weights - log_weights.max())
    relative_sd = (w.std(ddof=1) / w.mean() / np.sqrt(m)) if m > 1 else np.inf
    upper = log_mean + np.log1p(3 * relative_sd)
    lower = log_mean + np.log(1 - 3 * relative_sd) if 3 * relative_sd < 1 else -np.inf
    return base_log_z + log_mean, base_log_z + lower, base_log_z + upper


def _checked_base_bias(rbm, base_visible_bias, dtype) -> np.ndarray:
    base = float_array(base_visible_bias, "base_visible_bias", ndim=1, dtype=dtype)
    if base.shape[0] != rbm.n_visible:
        raise ValueError(f"base_visible_bias must have shape ({rbm.n_visible},), got {base.shape}")
    return base


def _check_finite(rbm) -> None:
    for name, a in (("weights", rbm.weights), ("visible_bias", rbm.visible_bias), ("hidden_bias", rbm.hidden_bias)):
        if not np.isfinite(a).all():
            raise ValueError(f"rbm.{name} contains NaN or infinity")


def ais_log_partition(rbm, *, n_chains: int = 100, betas=None, data=None, base_visible_bias=None,
                      generator=None, return_states: bool = False, binary_products: bool | None = None, job=None):
    """Estimate log Z of a Bernoulli-Bernoulli RBM by annealed importance sampling.

    Parameters
    ----------
    rbm : fastgen.models.rbm.RBM
        Weights (n_hidden, n_visible), float32 or float64 (the chains run in that dtype; the
        log-weights in float64).
    n_chains : int >= 1
        Independent AIS runs, advanced together as one batch.
    betas : array of shape (n_betas,), optional
        Inverse temperatures from 0 to 1 (non-decreasing); default :func:`default_schedule`
        (14,500 as in the paper).
    data : array of shape (n_samples, n_visible), optional
        Training data whose marginals define the base-rate model (recommended: a base close to
        the data makes the estimate far more accurate). Without it, the base is uniform.
    base_visible_bias : array of shape (n_visible,), optional
        The base-rate visible biases directly (instead of ``data``).
    generator : fastgen.Generator, int or None
        Takes ``2 * n_betas - 3`` offsets.
    return_states : bool
        Also return the chains' final visible states, shape (n_chains, n_visible).
    binary_products : bool, optional
        How the products with sampled states are computed (see
        :func:`fastgen.ops.ais.ais_log_weights`); the default follows FASTGEN_DENSE_PRODUCTS.
    job : data-parallel job, optional
        Spread the chains over its ranks (:mod:`fastgen.models.data_parallel`): rank k runs
        its share of them, each drawing what it draws in one process, and every rank gets all
        the log-weights (so the same result, to the rounding of products over fewer rows).

    Returns
    -------
    AISResult (and the states when ``return_states``)
    """
    n_chains = positive_int(n_chains, "n_chains")
    betas = default_schedule() if betas is None else check_schedule(betas)
    W, b, c = rbm.weights, rbm.visible_bias, rbm.hidden_bias
    if data is not None and base_visible_bias is not None:
        raise ValueError("give data or base_visible_bias, not both")
    if base_visible_bias is not None:
        base = _checked_base_bias(rbm, base_visible_bias, W.dtype)
    else:
        base = base_rate_bias(data, rbm.n_visible, W.dtype)
    base = np.ascontiguousarray(base, dtype=W.dtype)
    _check_finite(rbm)
    if job is None or job.world_size == 1:
        weights = ais_log_weights(W, b, c, base, betas, n_chains=n_chains, generator=generator,
                                  return_states=return_states, binary_products=binary_products)
        log_weights, states = weights if return_states else (weights, None)
    else:
        log_weights, states = _ais_on_ranks(job, W, b, c, base, betas, n_chains, as_generator(generator),
                                            return_states, binary_products)
    base_log_z = float(np.logaddexp(0.0, base.astype(np.float64)).sum() + rbm.n_hidden * np.log(2.0))
    log_z, lower, upper = _error_bar(log_weights, base_log_z)
    result = AISResult(float(log_z), float(lower), float(upper), log_weights, base_log_z, betas)
    return (result, states) if return_states else result


def _ais_on_ranks(job, W, b, c, base, betas, n_chains, generator, return_states, binary_products):
    """This rank's share of the AIS chains, then every rank's log-weights (and states)."""
    start, stop = share(n_chains, job.rank, job.world_size)
    if stop > start:
        mine = ais_log_weights(W, b, c, base, betas, n_chains=stop - start, generator=generator, return_states=True,
                               binary_products=binary_products, first_chain=start)
    else:  # no chains here: take the stream's offsets all the same
        generator.take(ais_offsets(betas.shape[0]))
        mine = (np.empty(0, np.float64), np.empty((0, W.shape[1]), W.dtype))
    log_weights = gather_rows(job, mine[0], n_chains)
    return log_weights, gather_rows(job, mine[1], n_chains) if return_states else None


# ---- reverse AIS -------------------------------------------------------------------------------
@dataclass
class RAISEResult:
    """Reverse-AIS estimates of log P(x), one per row of the data.

    Attributes
    ----------
    log_likelihood : ndarray of shape (n_samples,), float64
        log mean_m exp(log_weights[i, m]) for each row i.
    log_weights : ndarray of shape (n_samples, n_chains), float64
    betas : ndarray of shape (n_betas,)
    """

    log_likelihood: np.ndarray
    log_weights: np.ndarray
    betas: np.ndarray

    @property
    def mean(self) -> float:
        """The mean estimate over the rows."""
        return float(self.log_likelihood.mean())

    @property
    def standard_error(self) -> float:
        """Standard error of :attr:`mean` over the rows (0 for a single row)."""
        n = self.log_likelihood.shape[0]
        return float(self.log_likelihood.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0


def raise_log_likelihood(rbm, data, *, n_chains: int = 10, betas=None, base_visible_bias=None,
                         generator=None, binary_products: bool | None = None, job=None) -> RAISEResult:
    """Estimate log P(x) of each row of ``data`` by reverse annealed importance sampling (RAISE:
    Burda, Grosse & Salakhutdinov, AISTATS 2015).

    From each row x_K = x, ``n_chains`` chains run the forward AIS transitions backwards: x_{k-1}
    is one block-Gibbs step at inverse temperature beta_k from x_k (v -> h -> v, reversible for
    the annealed marginal p*_beta_k), down to beta_1. The log-weight

        log w = log p_A(x_0) + sum_k [log p*_beta_k(x_k) - log p*_beta_k(x_{k-1})]

    has E[w] = the probability of x under the forward annealing's output, and needs no log Z.
    The estimate is conservative: short schedules or few chains give values that are too low,
    where AIS's (through a log Z biased low) are too high; the two bracket the model's value as
    far as the annealing's output approaches the model (exactly, in expectation, for data drawn
    from the model).
    All rows' chains advance together in compiled code (:func:`fastgen.ops.ais.raise_log_weights`),
    the log-weights accumulated in float64.

    Parameters
    ----------
    rbm : fastgen.models.rbm.RBM
        The chains run in its dtype (float32 or float64).
    data : array of shape (n_samples, n_visible)
        Binary rows (the test data).
    n_chains : int >= 1
        Reverse chains per row.
    betas : array of shape (n_betas,), optional
        Inverse temperatures from 0 to 1; default :func:`default_schedule`.
    base_visible_bias : array of shape (n_visible,), optional
        The base-rate model's visible biases (as for :func:`ais_log_partition`); default zeros.
    generator : fastgen.Generator, int or None
        Takes ``2 * (n_betas - 1)`` offsets.
    binary_products : bool, optional
        As for :func:`ais_log_partition`.
    job : data-parallel job, optional
        Spread the rows (and their chains) over its ranks, as :func:`ais_log_partition` does.

    Returns
    -------
    RAISEResult
    """
    n_chains = positive_int(n_chains, "n_chains")
    betas = default_schedule() if betas is None else check_schedule(betas)
    W = rbm.weights
    x = float_array(data, "data", ndim=2, dtype=W.dtype)
    if x.shape[1] != rbm.n_visible:
        raise ValueError(f"data must have {rbm.n_visible} columns (n_visible), got shape {x.shape}")
    _check_finite(rbm)
    base = (np.zeros(rbm.n_visible, W.dtype) if base_visible_bias is None
            else _checked_base_bias(rbm, base_visible_bias, W.dtype))
    generator = as_generator(generator)
    if job is None or job.world_size == 1:
        reverse = raise_log_weights(W, rbm.visible_bias, rbm.hidden_bias, base, betas, x, chains_per_row=n_chains,
                                    generator=generator, binary_products=binary_products)
    else:
        start, stop = share(x.shape[0], job.rank, job.world_size)
        if stop > start:
            mine = raise_log_weights(W, rbm.visible_bias, rbm.hidden_bias, base, betas, x[start:stop],
                                     chains_per_row=n_chains, generator=generator, binary_products=binary_products,
                                     first_row=start)
        else:  # no rows here: take the stream's offsets all the same
            generator.take(raise_offsets(betas.shape[0]))
            mine = np.empty((0, n_chains), np.float64)
        reverse = gather_rows(job, mine, x.shape[0])
    # log w = log p*_1(x) - log Z_A + the reverse sum (fastgen.ops.ais.raise_log_weights)
    rbm64 = type(rbm)(*(np.asarray(a, np.float64) for a in (W, rbm.visible_bias, rbm.hidden_bias)))
    log_p_star = -rbm64.free_energy(x.astype(np.float64)) if x.shape[0] else np.empty(0)
    base_log_z = float(np.logaddexp(0.0, base.astype(np.float64)).sum() + rbm.n_hidden * np.log(2.0))
    log_weights = log_p_star[:, None] - base_log_z + reverse
    log_likelihood = logsumexp(log_weights, axis=1) - np.log(n_chains) if x.shape[0] else np.empty(0)
    return RAISEResult(np.asarray(log_likelihood, np.float64), log_weights, betas)


# ---- both bounds -------------------------------------------------------------------------------
DEFAULT_BOUNDS_AIS_CHAINS = 500
DEFAULT_BOUNDS_RAISE_CHAINS = 5


@dataclass
class LikelihoodBounds:
    """The mean log-likelihood of the same rows bracketed from both sides: RAISE below, AIS above
    (each errs that way in expectation; see :func:`likelihood_bounds` for when the bracket holds).

    Attributes
    ----------
    lower, upper : float
        Mean RAISE estimate and mean ``-F(x) - log Z`` with AIS's log Z.
    lower_standard_error, upper_standard_error : float
        Standard errors of those means over the rows (what another sample of rows would change);
        the AIS estimate of log Z adds its own error bar, in ``ais``.
    ais : AISResult
    reverse : RAISEResult
    """

    lower: float
    lower_standard_error: float
    upper: float
    upper_standard_error: float
    ais: AISResult
    reverse: RAISEResult

    @property
    def width(self) -> float:
        """upper - lower: how far apart the two estimates are (negative when they cross, which
        happens within their noise when the schedule is long enough)."""
        return self.upper - self.lower

    def __str__(self) -> str:
        return (f"[{self.lower:.2f} +- {self.lower_standard_error:.2f}, {self.upper:.2f} +- "
                f"{self.upper_standard_error:.2f}] (width {self.width:.2f}; RAISE, AIS over "
                f"{self.reverse.log_likelihood.shape[0]} rows)")


def likelihood_bounds(rbm, data, *, ais_chains: int = DEFAULT_BOUNDS_AIS_CHAINS,
                      raise_chains: int = DEFAULT_BOUNDS_RAISE_CHAINS, betas=None, base_visible_bias=None,
                      generator=None, binary_products: bool | None = None, job=None) -> LikelihoodBounds:
    """``[RAISE, AIS]``: the mean log-likelihood of the rows of ``data`` bracketed by reverse AIS
    (below) and by ``-F(x) - log Z`` with AIS's log Z (above), on one schedule and one base model.

    RAISE estimates the likelihood under the distribution the annealing actually reaches, which
    approaches the model's as the schedule lengthens; so the bracket is exact in expectation for
    data drawn from the model, and a close one where the two estimates agree. The defaults (500
    AIS chains, 5 reverse chains per row, the paper's 14,500 temperatures) put the two 1.8, 2.9
    and -0.9 nats apart on three 500-unit MNIST models trained with BernoulliRBM.annealed_pcd
    (they can cross by about a nat: both are noisy at this budget), in about 50 s for 100 rows on
    2 cores (docs/performance.md, "How wide the likelihood bounds are").

    Parameters
    ----------
    rbm : fastgen.models.rbm.RBM
    data : array of shape (n_samples, n_visible)
        Binary rows (held-out data), at least one.
    ais_chains, raise_chains : int >= 1
        AIS chains for log Z; reverse chains per row.
    betas : array of shape (n_betas,), optional
        Inverse temperatures from 0 to 1, for both; default :func:`default_schedule`.
    base_visible_bias : array of shape (n_visible,), optional
        The base-rate model (from the training data: :func:`base_rate_bias`); default zeros.
    generator : fastgen.Generator, int or None
        AIS takes its offsets first, then RAISE.
    binary_products : bool, optional
    job : data-parallel job, optional
        Spread both estimates' chains over its ranks (see :func:`ais_log_partition`).

    Returns
    -------
    LikelihoodBounds
    """
    betas = default_schedule() if betas is None else check_schedule(betas)
    # everything RAISE checks, before AIS spends its time
    ais_chains, raise_chains = positive_int(ais_chains, "ais_chains"), positive_int(raise_chains, "raise_chains")
    x = float_array(data, "data", ndim=2, allow_empty=False)
    if x.shape[1] != rbm.n_visible:
        raise ValueError(f"data must have {rbm.n_visible} columns (n_visible), got shape {x.shape}")
    if not np.all((x == 0) | (x == 1)):
        raise ValueError("data must hold only 0 and 1 (binary rows)")
    base = (np.zeros(rbm.n_visible, rbm.weights.dtype) if base_visible_bias is None
            else _checked_base_bias(rbm, base_visible_bias, rbm.weights.dtype))
    generator = as_generator(generator)
    ais = ais_log_partition(rbm, n_chains=ais_chains, betas=betas, base_visible_bias=base, generator=generator,
                            binary_products=binary_products, job=job)
    reverse = raise_log_likelihood(rbm, x, n_chains=raise_chains, betas=betas, base_visible_bias=base,
                                   generator=generator, binary_products=binary_products, job=job)
    rbm64 = type(rbm)(*(np.asarray(a, np.float64) for a in (rbm.weights, rbm.visible_bias, rbm.hidden_bias)))
    per_row = -rbm64.free_energy(x.astype(np.float64)) - ais.log_z
    n = x.shape[0]
    upper_se = float(per_row.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    return LikelihoodBounds(reverse.mean, reverse.standard_error, float(per_row.mean()), upper_se, ais, reverse)
