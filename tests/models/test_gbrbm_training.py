"""fastgen.models.gbrbm.GaussianContrastiveDivergence: its refusals, the CD/PCD trainer against
a NumPy reference, and training on data against the exact likelihood."""
import numpy as np
import pytest

import fastgen
import reference as ref
from fastgen.models.gbrbm import GaussianContrastiveDivergence, GaussianRBM, standardize
from gbrbm_cases import binary, make_gbrbm, params

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": np.nan}, "learning_rate"),
        ({"cd_k": 0}, "cd_k"),
        ({"n_chains": 0}, "n_chains"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"min_sigma": 0.0}, "min_sigma"),
        ({"min_sigma": np.array([0.1, -1.0])}, "min_sigma"),
        ({"persistent": "yes"}, "persistent"),
        ({"learn_sigma": 1}, "learn_sigma"),
    ],
)
def test_trainer_refuses_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianContrastiveDivergence(**kwargs)


def test_trainer_refuses_bad_data_and_reports_divergence():
    m = GaussianRBM.initialize(4, 3, generator=0)
    trainer = GaussianContrastiveDivergence()
    with pytest.raises(ValueError, match=r"data must have shape \(n, 4\)"):
        trainer.run(m, np.zeros((5, 3)), 2, fastgen.Generator(0))
    with pytest.raises(ValueError, match="batch_size"):
        trainer.run(m, np.zeros((5, 4)), 0, fastgen.Generator(0))
    frozen = GaussianRBM(m.weights, m.visible_bias, m.hidden_bias, np.zeros(4))
    frozen.log_sigma.flags.writeable = False
    with pytest.raises(ValueError, match="log_sigma"):
        trainer.run(frozen, np.zeros((5, 4)), 2, fastgen.Generator(0))
    data = np.random.default_rng(0).normal(0, 30, (200, 4))  # far from standardised, huge rate
    with pytest.raises(FloatingPointError, match="learning_rate"), np.errstate(all="ignore"):
        for _ in range(20):
            GaussianContrastiveDivergence(learning_rate=5.0).run(m, data, 10, fastgen.Generator(0))


# ---- the trainer against the NumPy reference ----------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("persistent,k", [(False, 1), (False, 3), (True, 1), (True, 2)],
                         ids=["CD-1", "CD-3", "PCD-1", "PCD-2"])
@pytest.mark.parametrize("learn_sigma", [False, True], ids=["fixed_sigma", "learn_sigma"])
def test_batch_gradients_match_reference(dtype, persistent, k, learn_sigma):
    m = make_gbrbm(12, 7, dtype, seed=3, scale=0.4, sigma_spread=0.3)
    v = np.random.default_rng(5).normal(size=(9, 12)).astype(dtype)
    chains = binary((6, 7), seed=9, dtype=dtype) if persistent else None
    trainer = GaussianContrastiveDivergence(cd_k=k, persistent=persistent, learn_sigma=learn_sigma,
                                            chains=None if chains is None else chains.copy())
    got = trainer.batch_gradients(m, v, 77, 5)
    expected = ref.gb_cd_gradients(v, *params(m), k=k, generator=fastgen.Generator(77, 5),
                                   persistent_chains=chains, learn_sigma=learn_sigma, dtype=dtype)
    assert expected.n_ambiguous == 0  # the seed is chosen so that no draw is within tol of its threshold
    tol = {np.float32: 2e-4, np.float64: 1e-11}[dtype]
    for name in ("weights", "visible_bias", "hidden_bias", "log_sigma"):
        a = getattr(got, name)
        assert a.dtype == dtype, name
        np.testing.assert_allclose(a, getattr(expected, name), rtol=tol, atol=tol, err_msg=name)
    if persistent:
        np.testing.assert_array_equal(trainer.chains, expected.chains)
    if not learn_sigma:
        assert not got.log_sigma.any()


@pytest.mark.parametrize("momentum,weight_decay", [(0.0, 0.0), (0.5, 0.01)])
def test_run_applies_the_documented_update(momentum, weight_decay):
    m = make_gbrbm(6, 4, seed=1, scale=0.3, sigma_spread=0.2)
    data = np.random.default_rng(2).normal(size=(10, 6))
    copy = GaussianRBM(*(a.copy() for a in params(m)))
    trainer = GaussianContrastiveDivergence(learning_rate=0.05, learn_sigma=True, momentum=momentum,
                                            weight_decay=weight_decay)
    twin = GaussianContrastiveDivergence(learning_rate=0.05, learn_sigma=True, momentum=momentum,
                                         weight_decay=weight_decay)
    gen = fastgen.Generator(3)
    trainer.run(m, data, 5, gen)  # two batches
    assert gen.offset == 2 * 3
    twin.prepare(copy, 5)
    velocities = [np.zeros_like(a) for a in params(copy)]
    for k, start in enumerate((0, 5)):
        g = twin.batch_gradients(copy, data[start:start + 5], 3, 3 * k)
        var = np.exp(2.0 * copy.log_sigma)  # the preconditioner, before this step's sigma update
        g = g._replace(weights=g.weights * var, visible_bias=g.visible_bias * var)
        for i, (param, grad) in enumerate(zip(params(copy), g)):
            decay = weight_decay if i == 0 else 0.0
            p, velocities[i] = ref.sgd_step(param, velocities[i], grad, learning_rate=0.05, momentum=momentum,
                                            weight_decay=decay)
            param[...] = p
    for name, a, b in zip(("weights", "visible_bias", "hidden_bias", "log_sigma"), params(m), params(copy)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)


def test_steps_are_equivariant_to_the_units_of_each_feature():
    # feature i in units a_i: the model with a_i W_:i, a_i b_i, a_i sigma_i is the same model,
    # and the preconditioned trajectory stays the image of the original one
    a = np.array([0.01, 1.0, 30.0, 255.0])
    m = make_gbrbm(4, 3, seed=4, scale=0.5, sigma_spread=0.2)

    def in_units(model):
        return GaussianRBM(model.weights * a, model.visible_bias * a, model.hidden_bias.copy(), model.log_sigma + np.log(a))

    scaled, m_plain, scaled_plain = in_units(m), GaussianRBM(*(x.copy() for x in params(m))), in_units(m)
    data = np.random.default_rng(1).normal(size=(60, 4))
    np.testing.assert_allclose(scaled.hidden_probs(data * a), m.hidden_probs(data), rtol=1e-12)
    np.testing.assert_allclose(scaled.log_likelihood(data * a), m.log_likelihood(data) - np.log(a).sum(), rtol=1e-12)
    for model, x in ((m, data), (scaled, data * a)):
        trainer = GaussianContrastiveDivergence(learning_rate=0.01, learn_sigma=True, momentum=0.5, min_sigma=1e-9)
        for _ in range(5):
            trainer.run(model, x, 10, fastgen.Generator(2, 0))
    np.testing.assert_allclose(scaled.weights, m.weights * a, rtol=1e-9)
    np.testing.assert_allclose(scaled.visible_bias, m.visible_bias * a, rtol=1e-9)
    np.testing.assert_allclose(scaled.hidden_bias, m.hidden_bias, rtol=1e-9)
    np.testing.assert_allclose(scaled.log_sigma, m.log_sigma + np.log(a), rtol=1e-9)
    # plain gradient steps are not: one step in other units is a step with the rate over a^2
    for model, x in ((m_plain, data[:10]), (scaled_plain, data[:10] * a)):
        GaussianContrastiveDivergence(learning_rate=0.01, learn_sigma=True, precondition=False, min_sigma=1e-9).run(
            model, x, 10, fastgen.Generator(2, 0))
    assert not np.allclose(scaled_plain.weights, m_plain.weights * a, rtol=1e-3)


def test_min_sigma_floors_the_learned_standard_deviations():
    m = GaussianRBM.initialize(3, 2, generator=0)
    data = np.zeros((50, 3))
    data[:, 1] = np.random.default_rng(0).normal(0, 1, 50)  # features 0 and 2 are constant
    trainer = GaussianContrastiveDivergence(learning_rate=0.05, learn_sigma=True, min_sigma=np.array([0.2, 0.01, 0.3]))
    gen = fastgen.Generator(0)
    for _ in range(40):
        trainer.run(m, data, 10, gen)
    np.testing.assert_allclose(m.sigma[[0, 2]], [0.2, 0.3], rtol=1e-12)
    assert 0.6 < m.sigma[1] < 1.4


def test_pcd_gradient_estimate_is_unbiased_at_equilibrium():
    # a tiny model whose PCD chains start at equilibrium: the mean of many one-batch gradient
    # estimates is the exact log-likelihood gradient (the negative phase is then an exact
    # sample average), including log sigma
    m = make_gbrbm(3, 4, seed=2, scale=0.8, sigma_spread=0.3)
    data = np.random.default_rng(3).normal(0.2, 1.1, size=(40, 3))
    exact = m.log_likelihood_gradient(data)
    n_chains = 50_000
    gen = fastgen.Generator(8)
    start = m.sample_hidden(m.sample(n_chains, steps=30, generator=gen), generator=gen)
    trainer = GaussianContrastiveDivergence(persistent=True, learn_sigma=True, chains=start)
    got = trainer.batch_gradients(m, data, gen.seed, gen.take(3))
    for name in ("weights", "visible_bias", "hidden_bias", "log_sigma"):
        # generous: each entry is a mean over 50,000 chains with O(1) spread -> SE ~ 0.01
        np.testing.assert_allclose(getattr(got, name), getattr(exact, name), atol=0.06, err_msg=name)


# ---- training on data ----------------------------------------------------------------------------------
def _mixture_data(n, seed, n_visible=4, k=3, spread=0.35):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(100).normal(0, 1.2, (k, n_visible))
    return centres[rng.integers(0, k, n)] + rng.normal(0, spread, (n, n_visible))


@pytest.fixture(scope="module")
def mixture():
    train, test = _mixture_data(1000, 0), _mixture_data(500, 1)
    z, mean, std = standardize(train)
    return z, (test - mean) / std


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("persistent", [False, True], ids=["CD-1", "PCD-1"])
def test_training_raises_the_exact_log_likelihood(mixture, persistent, dtype):
    train, test = (a.astype(dtype) for a in mixture)
    gen = fastgen.Generator(1)
    m = GaussianRBM.initialize(4, 6, generator=gen, dtype=dtype)
    before_train, before_test = m.log_likelihood(train).mean(), m.log_likelihood(test).mean()
    trainer = GaussianContrastiveDivergence(learning_rate=0.02, persistent=persistent)
    for _ in range(30):
        trainer.run(m, train, 10, gen)
    after_train, after_test = m.log_likelihood(train).mean(), m.log_likelihood(test).mean()
    print(f"mean exact log-likelihood: train {before_train:.3f} -> {after_train:.3f}, "
          f"held out {before_test:.3f} -> {after_test:.3f}")
    # start: a standard normal per unit, about -4 * 1.419 = -5.68; the best unit-variance
    # GB-RBM with 6 hidden units (exact gradient ascent) reaches about -5.01 on train
    assert before_train == pytest.approx(-5.68, abs=0.05)
    assert after_train > before_train + 0.4
    assert after_test > before_test + 0.4
    assert after_train > -5.25


def test_pcd_with_learned_sigma_beats_unit_variance(mixture):
    train, test = mixture
    results = {}
    for learn_sigma in (False, True):
        gen = fastgen.Generator(2)
        m = GaussianRBM.initialize(4, 6, generator=gen)
        trainer = GaussianContrastiveDivergence(learning_rate=0.005, persistent=True, cd_k=5, learn_sigma=learn_sigma)
        for _ in range(60):
            trainer.run(m, train, 10, gen)
        results[learn_sigma] = m.log_likelihood(test).mean()
        sigma = m.sigma
    print(f"held-out exact log-likelihood: unit variance {results[False]:.3f}, learned sigma {results[True]:.3f}; "
          f"sigma {np.round(sigma, 3)}")
    # the within-cluster std is 0.35 / (each feature's std) = 0.31-0.61: sigma shrinks towards
    # it from 1 without collapsing below it
    within = 0.35 / _mixture_data(1000, 0).std(axis=0)
    assert results[True] > results[False] + 0.7
    assert sigma.mean() < 0.7 and sigma.max() < 1.05 and (sigma > 0.8 * within).all()


def test_learn_sigma_recovers_known_per_feature_standard_deviations():
    # independent Gaussian features in their own units: the maximum-likelihood GB-RBM has
    # sigma = std and mean = the data mean (W = 0); training starts from sigma = 1, b = 0
    rng = np.random.default_rng(0)
    std = np.array([0.3, 0.7, 1.5, 3.0])
    mean = np.array([1.0, -2.0, 0.0, 0.5])
    data = rng.normal(mean, std, size=(2000, 4))
    gen = fastgen.Generator(5)
    m = GaussianRBM.initialize(4, 3, generator=gen)
    trainer = GaussianContrastiveDivergence(learning_rate=0.005, persistent=True, learn_sigma=True)
    for _ in range(30):
        trainer.run(m, data, 20, gen)
    model_mean, model_cov, _ = ref.gb_moments(*params(m))
    print(f"learned sigma {np.round(m.sigma, 3)}, true {std}; model mean {np.round(model_mean, 3)}")
    np.testing.assert_allclose(m.sigma, std, rtol=0.1)
    np.testing.assert_allclose(np.sqrt(np.diag(model_cov)), std, rtol=0.1)
    np.testing.assert_allclose(model_mean, mean, atol=0.1)


def test_learn_sigma_learns_the_within_cluster_variance_not_the_data_variance():
    # two clusters, one hidden unit: P(v) is exactly a two-component mixture with shared
    # diagonal covariance sigma^2, so sigma should reach the within-cluster std (0.4, 0.5),
    # well below the data's std (1.25, 1.0) it starts from
    rng = np.random.default_rng(1)
    within = np.array([0.4, 0.5])
    centres = np.array([[1.2, -0.9], [-1.2, 0.9]])
    data = centres[rng.integers(0, 2, 2000)] + rng.normal(0, within, (2000, 2))
    gen = fastgen.Generator(1)
    m = GaussianRBM.initialize(2, 1, generator=gen, visible_bias=data.mean(axis=0), sigma=data.std(axis=0), scale=0.1)
    trainer = GaussianContrastiveDivergence(learning_rate=0.01, persistent=True, learn_sigma=True, n_chains=100)
    for _ in range(60):
        trainer.run(m, data, 20, gen)
    ll = m.log_likelihood(data).mean()
    print(f"sigma {np.round(m.sigma, 3)} (within-cluster {within}, data std {np.round(data.std(axis=0), 3)}), "
          f"W {np.round(m.weights, 2)}, log-likelihood {ll:.3f}")
    np.testing.assert_allclose(m.sigma, within, rtol=0.1)
    np.testing.assert_allclose(np.abs(m.weights[0]), 2 * np.abs(centres[0]), rtol=0.15)  # the cluster offset
    assert ll > -2.1  # two well-fitted Gaussians: about -1.94

