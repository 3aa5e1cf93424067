"""Parallel tempering (fastgen.models.tempering): sampler against exact distributions of tiny
RBMs, swap bookkeeping, PT training, the estimator option."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

import fastgen
from fastgen import BernoulliRBM
from fastgen.models.rbm import RBM
from fastgen.models.tempering import (ParallelTempering, ParallelTemperingTrainer, check_ladder,
                                      temperature_ladder)

N_VISIBLE = 6
STATES = ((np.arange(2 ** N_VISIBLE)[:, None] >> np.arange(N_VISIBLE)) & 1).astype(np.float64)


def tiny_rbm(scale, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return RBM((rng.normal(size=(4, N_VISIBLE)) * scale).astype(dtype), rng.normal(size=N_VISIBLE).astype(dtype),
               rng.normal(size=4).astype(dtype))


def exact_distribution(rbm):
    lp = -rbm.free_energy(STATES.astype(rbm.dtype)).astype(np.float64)
    return np.exp(lp - logsumexp(lp))


def empirical_distribution(sampler, rbm, gen, burn_in=50, rounds=40, thin=5):
    sampler.step(rbm, gen, burn_in)
    counts = np.zeros(len(STATES))
    for _ in range(rounds):
        v = sampler.step(rbm, gen, thin)
        counts += np.bincount((v @ (1 << np.arange(N_VISIBLE))).astype(int), minlength=len(STATES))
    return counts / counts.sum()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_temperatures", [1, 2, 6])
def test_beta_one_replica_samples_the_model(n_temperatures, dtype):
    rbm = tiny_rbm(2.0, dtype=dtype)
    sampler = ParallelTempering.start(N_VISIBLE, 400, temperature_ladder(n_temperatures), dtype)
    q = empirical_distribution(sampler, rbm, fastgen.Generator(n_temperatures))
    # 16,000 draws (correlated in time): a wrong acceptance rule or temperature scaling moves
    # the total variation far above this.
    assert 0.5 * np.abs(exact_distribution(rbm) - q).sum() < 0.04


def test_hot_replicas_help_a_multimodal_model_mix():
    """Strong weights: plain Gibbs chains started at 0 stay stuck, PT's do not."""
    rbm = tiny_rbm(6.0, seed=4)
    p = exact_distribution(rbm)
    tv = {}
    for R in (1, 8):
        sampler = ParallelTempering.start(N_VISIBLE, 200, temperature_ladder(R), np.float64)
        q = empirical_distribution(sampler, rbm, fastgen.Generator(0), burn_in=20, rounds=20, thin=2)
        tv[R] = 0.5 * np.abs(p - q).sum()
    assert tv[8] < 0.05
    assert tv[8] < tv[1]


def test_swap_bookkeeping_and_offsets():
    rbm = tiny_rbm(1.0)
    sampler = ParallelTempering.start(N_VISIBLE, 30, temperature_ladder(5, 0.2), np.float64)
    gen = fastgen.Generator(0)
    sampler.step(rbm, gen, 4)
    assert gen.offset == 3 * 4
    # even steps propose pairs (0,1),(2,3); odd steps (1,2),(3,4): 2 proposals each of 30 chains
    np.testing.assert_array_equal(sampler.swap_attempts, [60, 60, 60, 60])
    assert np.all((sampler.swap_accepts >= 0) & (sampler.swap_accepts <= sampler.swap_attempts))
    rates = sampler.swap_rates
    assert rates.shape == (4,) and np.all((rates >= 0) & (rates <= 1))
    assert set(np.unique(sampler.visible)) <= {0.0, 1.0}


def test_identical_temperatures_always_swap():
    """Nearly equal temperatures accept (almost) every swap: log u < 1e-12 * dE."""
    rbm = tiny_rbm(1.0)
    sampler = ParallelTempering(np.array([1.0, 1.0 - 1e-12]), np.zeros((2, 50, N_VISIBLE)))
    sampler.step(rbm, fastgen.Generator(1), 1)
    assert sampler.swap_accepts[0] == 50


def test_ladder_validation():
    np.testing.assert_allclose(temperature_ladder(3, 0.5), [1.0, 0.75, 0.5])
    assert temperature_ladder(1).tolist() == [1.0]
    for bad in ([0.9, 0.5], [1.0, 1.0], [1.0, 0.5, 0.7], [1.0, -0.1], [[1.0]], [], [1.0, np.nan]):
        with pytest.raises(ValueError, match="betas"):
            check_ladder(bad)
    with pytest.raises(ValueError, match="min_beta"):
        temperature_ladder(3, 1.0)
    with pytest.raises(ValueError, match="n_temperatures"):
        temperature_ladder(0)
    with pytest.raises(ValueError, match="visible must have shape"):
        ParallelTempering(np.array([1.0, 0.5]), np.zeros((3, 2, 4)))
    sampler = ParallelTempering.start(5, 2, [1.0, 0.5])
    with pytest.raises(ValueError, match="replicas hold 5 visible units"):
        sampler.step(tiny_rbm(1.0), 0)


def test_pt_training_raises_the_exact_likelihood():
    rng = np.random.default_rng(0)
    prototypes = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], float)
    data = np.abs(prototypes[rng.integers(0, 2, 400)] - (rng.random((400, N_VISIBLE)) < 0.05))
    rbm = RBM.initialize(N_VISIBLE, 4, generator=fastgen.Generator(0))
    before = rbm.log_likelihood(data).mean()
    trainer = ParallelTemperingTrainer(learning_rate=0.1, n_chains=20, betas=temperature_ladder(4))
    gen = fastgen.Generator(1)
    for _ in range(30):
        trainer.run(rbm, data, 20, gen)
    after = rbm.log_likelihood(data).mean()
    assert after > before + 1.0
    # entropy of the noisy two-prototype source is about 2.0 nats per sample; a good fit is near it
    assert after > -3.5


def test_estimator_option_trains_and_continues(tmp_path):
    from fastgen.datasets import load_digits_binary

    X = (load_digits_binary() > 0.5).astype(np.float64)[:300]
    a = BernoulliRBM(n_components=8, n_iter=2, random_state=0, n_temperatures=3).fit(X)
    b = BernoulliRBM(n_components=8, n_iter=2, random_state=0, n_temperatures=3).fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert a.tempering_.n_temperatures == 3 and a.tempering_.swap_attempts.sum() > 0
    assert a.h_samples_.shape == (10, 8)
    steps = a.tempering_.steps
    a.partial_fit(X[:10])
    assert a.tempering_.steps == steps + 1
    plain = BernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(X)
    assert not hasattr(plain, "tempering_")
    assert not np.array_equal(plain.components_, a.components_)


def test_estimator_refuses_bad_tempering_options():
    X = np.zeros((4, 3))
    with pytest.raises(ValueError, match="needs persistent=True"):
        BernoulliRBM(n_temperatures=3, persistent=False).fit(X)
    with pytest.raises(ValueError, match="n_temperatures"):
        BernoulliRBM(n_temperatures=0).fit(X)
    with pytest.raises(ValueError, match="min_beta"):
        BernoulliRBM(n_temperatures=2, min_beta=1.0).fit(X)
