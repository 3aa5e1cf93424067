"""Reverse AIS (fastgen.models.ais.raise_log_likelihood, BernoulliRBM.log_likelihood_raise) on
RBMs small enough for the exact log-likelihood: with data drawn from the model itself, RAISE errs
low on short schedules and AIS (through its log Z) high, and both meet the exact value on long
ones. A wrong sign or term in either weight would miss these bounds."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from fastgen import BernoulliRBM
from fastgen.models.ais import ais_log_partition, raise_log_likelihood
from fastgen.models.rbm import RBM


@pytest.fixture(scope="module")
def model_and_data():
    rng = np.random.default_rng(0)
    rbm = RBM(rng.normal(0, 1.0, (6, 10)), rng.normal(0, 0.5, 10), rng.normal(0, 0.5, 6))
    log_z = rbm.log_partition()
    every = np.array(list(itertools.product([0.0, 1.0], repeat=10)))
    p = np.exp(-rbm.free_energy(every) - log_z)
    data = every[rng.choice(len(every), size=200, p=p / p.sum())]   # exact samples of the model
    exact = float((-rbm.free_energy(data) - log_z).mean())
    return rbm, data, exact


def ais_mean(rbm, data, betas, seed):
    return float((-rbm.free_energy(data) - ais_log_partition(rbm, n_chains=100, betas=betas, generator=seed).log_z)
                 .mean())


def test_a_long_schedule_gives_the_exact_log_likelihood_both_ways(model_and_data):
    rbm, data, exact = model_and_data
    betas = np.linspace(0, 1, 1000)
    result = raise_log_likelihood(rbm, data, n_chains=20, betas=betas, generator=1)
    assert result.log_likelihood.shape == (200,) and result.log_weights.shape == (200, 20)
    assert result.mean == pytest.approx(exact, abs=0.02)
    assert ais_mean(rbm, data, betas, 11) == pytest.approx(exact, abs=0.03)


def test_short_schedules_bracket_the_exact_value(model_and_data):
    rbm, data, exact = model_and_data
    for n_betas in (3, 5, 20):
        betas = np.linspace(0, 1, n_betas)
        low = raise_log_likelihood(rbm, data, n_chains=20, betas=betas, generator=1).mean
        assert low < exact, n_betas
    # the gap closes as the schedule lengthens, from below
    gaps = [exact - raise_log_likelihood(rbm, data, n_chains=20, betas=np.linspace(0, 1, n), generator=1).mean
            for n in (3, 20)]
    assert gaps[0] > 0.1 and gaps[0] > gaps[1] > 0
    assert ais_mean(rbm, data, np.linspace(0, 1, 20), 11) > exact


def test_the_same_generator_gives_the_same_estimates(model_and_data):
    rbm, data, _ = model_and_data
    betas = np.linspace(0, 1, 10)
    a = raise_log_likelihood(rbm, data[:20], n_chains=4, betas=betas, generator=5)
    b = raise_log_likelihood(rbm, data[:20], n_chains=4, betas=betas, generator=5)
    c = raise_log_likelihood(rbm, data[:20], n_chains=4, betas=betas, generator=6)
    assert a.log_weights.tobytes() == b.log_weights.tobytes()
    assert a.log_weights.tobytes() != c.log_weights.tobytes()


@pytest.mark.parametrize("kwargs,message", [
    (dict(data=np.zeros((3, 9))), "data must have 10 columns"),
    (dict(n_chains=0), "n_chains"),
    (dict(betas=[0.0, 0.5]), "betas must start at 0 and end at 1"),
    (dict(base_visible_bias=np.zeros(3)), "base_visible_bias must have shape"),
])
def test_bad_input_is_refused_naming_it(model_and_data, kwargs, message):
    rbm, data, _ = model_and_data
    args = dict(data=data[:3], n_chains=2, betas=np.linspace(0, 1, 4))
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        raise_log_likelihood(rbm, args.pop("data"), **args)


def test_the_estimator_brackets_its_exact_log_likelihood():
    rng = np.random.default_rng(3)
    X = (rng.random((300, 10)) < rng.random(10)).astype(np.float64)
    model = BernoulliRBM(n_components=6, n_iter=20, learning_rate=0.05, random_state=0).fit(X)
    exact = model.log_likelihood(X[:100], log_z=model.log_partition(method="exact")).mean()
    long = model.log_likelihood_raise(X[:100], n_chains=10, n_betas=1000, random_state=1)
    assert long.shape == (100,) and long.mean() == pytest.approx(exact, abs=0.03)
    result = model.log_likelihood_raise(X[:100], n_chains=10, n_betas=1000, random_state=1, return_result=True)
    assert result.log_likelihood.tobytes() == long.tobytes() and result.mean == pytest.approx(long.mean())



# ---- both bounds at once ------------------------------------------------------------------------
def test_bounds_bracket_the_exact_value_on_a_short_schedule_and_meet_on_a_long_one(model_and_data):
    """On 3 temperatures RAISE is below the exact value for every seed, and AIS (unbiased for Z,
    so only biased in log Z) above it on average over seeds; on 1,000 both meet it."""
    from fastgen.models.ais import likelihood_bounds

    rbm, data, exact = model_and_data
    short = [likelihood_bounds(rbm, data, ais_chains=100, raise_chains=20, betas=np.linspace(0, 1, 3), generator=seed)
             for seed in range(10)]
    assert all(b.lower < exact for b in short)
    assert np.mean([b.upper for b in short]) > exact + 0.05
    assert np.mean([b.width for b in short]) > 0.1
    b = short[0]
    assert b.width == pytest.approx(b.upper - b.lower)
    assert b.lower_standard_error > 0 and b.upper_standard_error > 0
    assert b.reverse.log_likelihood.shape == (200,) and b.ais.n_chains == 100
    long = likelihood_bounds(rbm, data, ais_chains=100, raise_chains=20, betas=np.linspace(0, 1, 1000), generator=3)
    assert long.lower == pytest.approx(exact, abs=0.03) and long.upper == pytest.approx(exact, abs=0.03)
    assert abs(long.width) < np.mean([b.width for b in short])
    assert "width" in str(long) and "200 rows" in str(long)


def test_bounds_share_one_generator_ais_first():
    import fastgen
    from fastgen.models.ais import ais_log_partition, likelihood_bounds

    rng = np.random.default_rng(7)
    rbm = RBM(rng.normal(0, 0.5, (5, 8)), rng.normal(0, 0.5, 8), rng.normal(0, 0.5, 5))
    data = (rng.random((4, 8)) < 0.5).astype(np.float64)
    betas = np.linspace(0, 1, 30)
    gen = fastgen.Generator(9)
    bounds = likelihood_bounds(rbm, data, ais_chains=10, raise_chains=3, betas=betas, generator=gen)
    assert gen.offset == (2 * 30 - 3) + 2 * 29
    alone = ais_log_partition(rbm, n_chains=10, betas=betas, base_visible_bias=np.zeros(8), generator=9)
    assert bounds.ais.log_weights.tobytes() == alone.log_weights.tobytes()
    after = raise_log_likelihood(rbm, data, n_chains=3, betas=betas, generator=fastgen.Generator(9, 2 * 30 - 3))
    assert bounds.reverse.log_weights.tobytes() == after.log_weights.tobytes()
    # refused before AIS runs: the generator has not moved
    for bad, message in ((np.zeros((0, 8)), "data"), (np.full((2, 8), 0.5), "only 0 and 1"),
                         (np.zeros((2, 7)), "8 columns")):
        gen = fastgen.Generator(9)
        with pytest.raises(ValueError, match=message):
            likelihood_bounds(rbm, bad, betas=betas, generator=gen)
        assert gen.offset == 0
    with pytest.raises(ValueError, match="raise_chains"):
        likelihood_bounds(rbm, data, betas=betas, raise_chains=0)


def test_the_estimators_bounds_are_the_functions_with_its_base_rate():
    from fastgen.models.ais import base_rate_bias, likelihood_bounds
    from fastgen.sklearn._params import generator_from

    rng = np.random.default_rng(3)
    X = (rng.random((300, 10)) < rng.random(10)).astype(np.float64)
    model = BernoulliRBM.annealed_pcd(n_components=6, n_iter=20, batch_size=20, random_state=0).fit(X)
    exact = model.log_likelihood(X[:100], log_z=model.log_partition(method="exact")).mean()
    bounds = model.log_likelihood_bounds(X[:100], ais_chains=50, raise_chains=5, n_betas=200, random_state=1)
    assert bounds.lower == pytest.approx(exact, abs=0.05) and bounds.upper == pytest.approx(exact, abs=0.05)
    direct = likelihood_bounds(model._model(), X[:100], ais_chains=50, raise_chains=5, betas=bounds.ais.betas,
                               base_visible_bias=base_rate_bias(X, 10), generator=generator_from(1))
    assert (bounds.lower, bounds.upper) == (direct.lower, direct.upper)
