"""Parallel tempering for Bernoulli-Bernoulli RBMs, as a sampler and as the negative phase of
training (Desjardins, Courville, Bengio, Vincent & Delalleau, AISTATS 2010).

Replica r holds chains of the tempered model p_r(v, h) ~ exp(-beta_r E(v, h)), with
beta_0 = 1 > beta_1 > ... > beta_{R-1} >= 0: the hot replicas (small beta) mix fast, and swap
moves between neighbouring temperatures carry their states down to beta = 1. One PT step is a
block-Gibbs step in every replica (h | v, then v | h, all replicas' chains as one batch) followed
by swap proposals between neighbours, accepted with probability
``min(1, exp((beta_r - beta_r+1) (E_r - E_r+1)))`` on the joint states (v, h). Pairs
(0,1), (2,3), ... are proposed on even steps and (1,2), (3,4), ... on odd steps.

The energy of the new joint state needs no extra product: with A = h W (already computed to
sample v), E(v, h) = -v.(A + b) - h.c.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._checks import positive_int, real
from ..ops.sampling import sample_bernoulli_numpy
from ..ops.sgd import sgd_momentum_update_numpy
from ..random import Generator, as_generator
from ._divergence import guarded_pass
from .rbm import RBM, ContrastiveDivergence, diverged_message


def temperature_ladder(n_temperatures: int, min_beta: float = 0.0) -> np.ndarray:
    """Inverse temperatures 1 = beta_0 > ... > beta_{R-1} = min_beta, evenly spaced."""
    n_temperatures = positive_int(n_temperatures, "n_temperatures")
    min_beta = real(min_beta, "min_beta", low=0.0, high=1.0)
    if n_temperatures == 1:
        return np.ones(1)
    if min_beta >= 1.0:
        raise ValueError(f"min_beta must be < 1 with more than one temperature, got {min_beta}")
    return np.linspace(1.0, min_beta, n_temperatures)


def check_ladder(betas) -> np.ndarray:
    b = np.asarray(betas, dtype=np.float64)
    if b.ndim != 1 or b.shape[0] < 1:
        raise ValueError(f"betas must be a non-empty 1-D sequence, got shape {b.shape}")
    if not np.isfinite(b).all() or b[0] != 1.0 or np.any(b < 0) or np.any(np.diff(b) >= 0):
        raise ValueError("betas must start at 1 and decrease strictly, staying >= 0")
    return b


@dataclass
class ParallelTempering:
    """Replicas of ``n_chains`` chains at the inverse temperatures ``betas``, and their statistics.

    Attributes
    ----------
    betas : ndarray of shape (n_temperatures,)
        1 = betas[0] > betas[1] > ... >= 0.
    visible : ndarray of shape (n_temperatures, n_chains, n_visible)
        Current visible states of every replica (0/1).
    swap_attempts, swap_accepts : ndarray of shape (n_temperatures - 1,)
        Counts of proposed and accepted swaps between temperatures r and r + 1.
    steps : int
        PT steps taken (selects which pairs are proposed next).
    """

    betas: np.ndarray
    visible: np.ndarray
    swap_attempts: np.ndarray = field(default=None)
    swap_accepts: np.ndarray = field(default=None)
    steps: int = 0

    def __post_init__(self):
        self.betas = check_ladder(self.betas)
        if self.visible.ndim != 3 or self.visible.shape[0] != self.betas.shape[0]:
            raise ValueError(f"visible must have shape ({self.betas.shape[0]}, n_chains, n_visible), "
                             f"got {self.visible.shape}")
        pairs = self.betas.shape[0] - 1
        if self.swap_attempts is None:
            self.swap_attempts = np.zeros(pairs, np.int64)
        if self.swap_accepts is None:
            self.swap_accepts = np.zeros(pairs, np.int64)

    @classmethod
    def start(cls, n_visible: int, n_chains: int, betas, dtype=np.float64):
        """All replicas' chains start at v = 0 (as scikit-learn's persistent chains do)."""
        betas = check_ladder(betas)
        n_chains = positive_int(n_chains, "n_chains")
        return cls(betas, np.zeros((betas.shape[0], n_chains, n_visible), dtype))

    @property
    def n_temperatures(self) -> int:
        return self.betas.shape[0]

    @property
    def swap_rates(self) -> np.ndarray:
        """Accepted / proposed swaps for each neighbouring pair (NaN before any proposal)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.swap_accepts / self.swap_attempts

    def step(self, rbm: RBM, generator=None, n_steps: int = 1) -> np.ndarray:
        """``n_steps`` PT steps; returns the beta = 1 replica's visible states (n_chains, n_visible).

        Takes 3 offsets of ``generator`` per step: h, v (all replicas as one batch), swaps.
        """
        gen = as_generator(generator)
        W, b, c = rbm.weights, rbm.visible_bias, rbm.hidden_bias
        if self.visible.dtype != W.dtype or self.visible.shape[2] != rbm.n_visible:
            raise ValueError(f"the replicas hold {self.visible.shape[2]} visible units of {self.visible.dtype}, "
                             f"the RBM {rbm.n_visible} of {W.dtype}")
        R, n, nv = self.visible.shape
        beta = self.betas.astype(W.dtype)[:, None, None]
        for _ in range(n_steps):
            v = self.visible.reshape(R * n, nv)
            pre_h = (v @ W.T + c).reshape(R, n, -1)
            pre_h *= beta
            h = np.empty_like(pre_h)
            sample_bernoulli_numpy(pre_h.reshape(R * n, -1), states=h.reshape(R * n, -1), seed=gen.seed,
                                   offset=gen.take())
            coupling = (h.reshape(R * n, -1) @ W).reshape(R, n, nv)
            coupling += b
            logits = coupling * beta
            sample_bernoulli_numpy(logits.reshape(R * n, nv), states=self.visible.reshape(R * n, nv), seed=gen.seed,
                                   offset=gen.take())
            energy = -np.einsum("rni,rni->rn", self.visible, coupling, dtype=np.float64) - (h @ c).astype(np.float64)
            self._swap(energy, gen)
        return self.visible[0]

    def _swap(self, energy: np.ndarray, gen: Generator) -> None:
        R, n = energy.shape
        u = gen.uniform((max(R - 1, 1), n), np.float64)
        first = self.steps % 2
        self.steps += 1
        lower = np.arange(first, R - 1, 2)
        if lower.size == 0:
            return
        upper = lower + 1
        log_accept = (self.betas[lower] - self.betas[upper])[:, None] * (energy[lower] - energy[upper])
        accept = np.log(u[lower]) < log_accept
        self.swap_attempts[lower] += n
        self.swap_accepts[lower] += accept.sum(axis=1)
        rows, chains = np.nonzero(accept)
        lo, hi = lower[rows], upper[rows]
        moved = self.visible[lo, chains].copy()
        self.visible[lo, chains] = self.visible[hi, chains]
        self.visible[hi, chains] = moved


@dataclass
class ParallelTemperingTrainer(ContrastiveDivergence):
    """Maximum-likelihood training with the negative phase from parallel tempering.

    Each mini-batch: positive statistics from the data, ``cd_k`` PT steps, negative statistics
    from the beta = 1 replica (its visible states and P(h | v)), then the same update as
    :class:`ContrastiveDivergence` (learning rate, momentum, L2 weight decay).

    Parameters (besides those of ContrastiveDivergence)
    ----------
    betas : array of shape (n_temperatures,)
        The ladder, 1 = betas[0] > ... >= 0 (see :func:`temperature_ladder`).
    """

    betas: np.ndarray = field(default_factory=lambda: temperature_ladder(10))
    sampler: ParallelTempering | None = field(default=None, repr=False)

    def __post_init__(self):
        super().__post_init__()
        self.betas = check_ladder(self.betas)
        self.persistent = True

    def offsets_per_epoch(self, n_samples: int, batch_size: int) -> int:
        return -(-n_samples // batch_size) * 3 * self.cd_k

    def prepare(self, rbm: RBM, batch_size: int) -> None:
        if self.sampler is None or self.sampler.visible.shape[2] != rbm.n_visible:
            self.sampler = ParallelTempering.start(rbm.n_visible, self.n_chains or batch_size, self.betas, rbm.dtype)
        if self.momentum > 0 and self.velocities is None:
            self.velocities = tuple(np.zeros_like(a) for a in (rbm.weights, rbm.visible_bias, rbm.hidden_bias))

    def run(self, rbm: RBM, data: np.ndarray, batch_size: int, generator: Generator) -> None:
        self.prepare(rbm, batch_size)
        chains, steps = self.chains, self.sampler.steps  # _run replaces the one and advances the other
        sampler = self.sampler
        try:
            guarded_pass(
                lambda: self._run(rbm, data, batch_size, generator),
                (rbm.weights, rbm.visible_bias, rbm.hidden_bias),
                (sampler.visible, sampler.swap_attempts, sampler.swap_accepts, *(self.velocities or ())),
                message=diverged_message(self),
            )
        except BaseException:  # the pass was undone: so is its sampler state
            self.chains, sampler.steps = chains, steps
            raise

    def _run(self, rbm: RBM, data: np.ndarray, batch_size: int, generator: Generator) -> None:
        dt = rbm.dtype.type
        lr, mom, decay = dt(self.learning_rate), dt(self.momentum), dt(self.weight_decay)
        velocities = self.velocities if self.momentum > 0 else (None, None, None)
        for start in range(0, data.shape[0], batch_size):
            v_pos = data[start:start + batch_size]
            h_pos = rbm.hidden_probs(v_pos)
            v_neg = self.sampler.step(rbm, generator, self.cd_k)
            h_neg = rbm.hidden_probs(v_neg)
            grads = (
                h_pos.T @ v_pos / dt(v_pos.shape[0]) - h_neg.T @ v_neg / dt(v_neg.shape[0]),
                v_pos.mean(axis=0, dtype=rbm.dtype) - v_neg.mean(axis=0, dtype=rbm.dtype),
                h_pos.mean(axis=0, dtype=rbm.dtype) - h_neg.mean(axis=0, dtype=rbm.dtype),
            )
            for param, velocity, grad, wd in zip((rbm.weights, rbm.visible_bias, rbm.hidden_bias), velocities,
                                                 grads, (decay, dt(0), dt(0))):
                sgd_momentum_update_numpy(param, np.ascontiguousarray(grad, rbm.dtype), velocity=velocity,
                                          learning_rate=lr, momentum=mom, weight_decay=wd)
        self.chains = rbm.hidden_probs(self.sampler.visible[0])
