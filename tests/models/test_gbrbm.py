"""fastgen.models.gbrbm: the Gaussian-Bernoulli RBM's energy, conditionals, free energy, exact
log Z / log-likelihood / gradient of tiny models, the Gibbs sampler against the exact
distribution, the CD/PCD trainer against a NumPy reference and on data, standardisation."""
import warnings

import numpy as np
import pytest
from scipy import integrate

import fastgen
import reference as ref
from fastgen.models.gbrbm import (
    MAX_ENUMERABLE_HIDDEN,
    GaussianContrastiveDivergence,
    GaussianRBM,
    check_standardized,
    destandardize,
    standardization_problems,
    standardize,
)

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 5e-5, np.float64: 1e-12}
# absolute tolerances for O(1)-O(100) sums of float32 / float64 products
ATOL = {np.float32: 2e-4, np.float64: 1e-10}


def make_gbrbm(n_visible=10, n_hidden=8, dtype=np.float64, seed=0, scale=1.0, sigma_spread=0.4):
    rng = np.random.default_rng(seed)
    return GaussianRBM(rng.normal(0, scale, (n_hidden, n_visible)).astype(dtype),
                       rng.normal(0, 0.5, n_visible).astype(dtype), rng.normal(0, 0.5, n_hidden).astype(dtype),
                       rng.normal(0, sigma_spread, n_visible).astype(dtype))


def params(m: GaussianRBM):
    return m.weights, m.visible_bias, m.hidden_bias, m.log_sigma


def binary(shape, seed=1, p=0.5, dtype=np.float64):
    return (np.random.default_rng(seed).random(shape) < p).astype(dtype)


# ---- energy, conditionals, free energy ------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_energy_matches_reference(dtype):
    m = make_gbrbm(23, 17, dtype)
    v = np.random.default_rng(2).normal(size=(9, 23)).astype(dtype)
    h = binary((9, 17), seed=3, dtype=dtype)
    np.testing.assert_allclose(m.energy(v, h), ref.gb_energy(v, h, *params(m)), rtol=RTOL[dtype], atol=ATOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_conditionals_match_reference(dtype):
    m = make_gbrbm(57, 33, dtype, scale=0.3)
    v = np.random.default_rng(4).normal(size=(12, 57)).astype(dtype)
    h = binary((12, 33), seed=5, dtype=dtype)
    ph, mean = m.hidden_probs(v), m.visible_mean(h)
    assert ph.shape == (12, 33) and mean.shape == (12, 57) and ph.dtype == mean.dtype == dtype
    prob_atol = {np.float32: 1e-6, np.float64: 1e-14}[dtype]
    np.testing.assert_allclose(ph, ref.gb_hidden_probs(v, *params(m)), rtol=RTOL[dtype], atol=prob_atol)
    np.testing.assert_allclose(mean, ref.gb_visible_mean(h, m.weights, m.visible_bias), rtol=RTOL[dtype],
                               atol=ATOL[dtype] / 10)
    pre = m.hidden_preactivation(v)
    np.testing.assert_allclose(ref.sigmoid(pre), ref.gb_hidden_probs(v, *params(m)), rtol=RTOL[dtype], atol=1e-6)
    v_copy = v.copy()
    m.hidden_probs(v)
    np.testing.assert_array_equal(v, v_copy)


def test_the_parameterisation_couples_through_v_over_sigma_squared():
    # documented choice: hidden input W (v / sigma^2), visible mean b + W^T h (no sigma)
    m = GaussianRBM(np.array([[2.0, -1.0]]), np.array([0.5, 0.0]), np.array([0.1]), np.log(np.array([2.0, 0.5])))
    v = np.array([[1.0, 1.0]])
    assert m.hidden_preactivation(v)[0, 0] == pytest.approx(0.1 + 2.0 / 4.0 - 1.0 / 0.25)
    np.testing.assert_allclose(m.visible_mean(np.array([[1.0]])), [[2.5, -1.0]])
    np.testing.assert_allclose(m.sigma, [2.0, 0.5])


@pytest.mark.parametrize("dtype", DTYPES)
def test_free_energy_is_minus_log_sum_over_h_of_exp_minus_energy(dtype):
    m = make_gbrbm(10, 8, dtype)
    v = np.random.default_rng(0).normal(size=(7, 10)).astype(dtype)
    H = ref.all_states(8)
    neg_e = np.stack([-ref.gb_energy(np.repeat(row[None], len(H), 0), H, *params(m)) for row in v])
    brute = -np.logaddexp.reduce(neg_e, axis=1)
    np.testing.assert_allclose(m.free_energy(v), brute, rtol=RTOL[dtype] * 10)
    np.testing.assert_allclose(m.free_energy(v), ref.gb_free_energy(v, *params(m)), rtol=RTOL[dtype] * 10)
    assert m.free_energy(v).dtype == dtype


# ---- exact partition function, likelihood, gradient --------------------------------------------------
def test_log_partition_matches_the_reference_mixture():
    for seed, shape in enumerate([(3, 4), (10, 8), (5, 12)]):
        m = make_gbrbm(*shape, seed=seed)
        assert m.log_partition() == pytest.approx(ref.gb_mixture(*params(m)).log_z, rel=1e-12, abs=1e-12)


def _grid_log_integral(m: GaussianRBM, points=161, width=9.0):
    """log of the integral of exp(-F(v)) over a box holding all the mass, by a tensor-product
    trapezoid rule (spectrally accurate for a smooth integrand that decays to 0 at the edges)."""
    means = ref.gb_mixture(*params(m)).means
    lo = means.min(axis=0) - width * m.sigma
    hi = means.max(axis=0) + width * m.sigma
    axes = [np.linspace(a, b, points) for a, b in zip(lo, hi)]
    cell = np.prod([ax[1] - ax[0] for ax in axes])
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, m.n_visible)
    values = -ref.gb_free_energy(grid, *params(m))
    top = values.max()
    # interior points: the edges are exp(-40) smaller than the peak, their half-weights are moot
    return float(top + np.log(np.exp(values - top).sum() * cell))


def test_log_partition_of_3_visible_4_hidden_matches_numerical_integration():
    m = make_gbrbm(3, 4, seed=11, scale=1.0, sigma_spread=0.3)
    log_z = m.log_partition()
    numeric = _grid_log_integral(m)
    print(f"log Z: enumeration {log_z:.12f}, 161^3-point grid {numeric:.12f}")
    assert log_z == pytest.approx(numeric, abs=1e-8)


def test_log_partition_of_1_visible_unit_matches_adaptive_quadrature():
    m = make_gbrbm(1, 5, seed=3, scale=1.5)
    value, err = integrate.quad(lambda x: np.exp(-ref.gb_free_energy(np.array([[x]]), *params(m))[0]),
                                -np.inf, np.inf, epsabs=0, epsrel=1e-12, limit=500)
    assert m.log_partition() == pytest.approx(np.log(value), abs=1e-9)


def test_log_partition_by_importance_sampling_agrees_within_its_error():
    # Monte Carlo: Z = E_q[exp(-F(v)) / q(v)] with q a broad Gaussian; bound = 6 standard errors
    m = make_gbrbm(3, 4, seed=12)
    mean, cov, _ = ref.gb_moments(*params(m))
    q_cov = 2.0 * cov
    rng = np.random.default_rng(0)
    x = rng.multivariate_normal(mean, q_cov, size=400_000)
    diff = x - mean
    inv = np.linalg.inv(q_cov)
    log_q = -0.5 * np.einsum("ni,ij,nj->n", diff, inv, diff) - 0.5 * np.linalg.slogdet(2 * np.pi * q_cov)[1]
    w = np.exp(-ref.gb_free_energy(x, *params(m)) - log_q - m.log_partition())  # mean 1 if log Z is right
    se = w.std() / np.sqrt(len(w))
    assert abs(w.mean() - 1.0) < 6 * se and se < 0.01


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_likelihood_is_normalised(dtype):
    m = make_gbrbm(2, 3, dtype, seed=4)
    axes = [np.linspace(-12, 12, 801)] * 2
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    ll = m.log_likelihood(grid.astype(dtype))
    assert ll.dtype == np.float64 and ll.shape == (len(grid),)
    assert np.exp(ll).sum() * (axes[0][1] - axes[0][0]) ** 2 == pytest.approx(1.0, abs=1e-6)
    log_z = m.log_partition()
    np.testing.assert_allclose(m.log_likelihood(grid[:5], log_z=log_z + 1.0), ll[:5] - 1.0, rtol=1e-12)
    np.testing.assert_allclose(ll[:50], -ref.gb_free_energy(grid[:50].astype(dtype), *params(m)) - log_z,
                               rtol=1e-6 if dtype == np.float32 else 1e-12)


def test_log_partition_refuses_large_hidden_layers():
    with pytest.raises(ValueError, match=f"n_hidden <= {MAX_ENUMERABLE_HIDDEN}"):
        GaussianRBM.initialize(3, MAX_ENUMERABLE_HIDDEN + 1, generator=0).log_partition()


def test_log_partition_enumerates_in_several_chunks(monkeypatch):
    from fastgen.models.gbrbm import _model as gb

    m = make_gbrbm(6, 9, seed=8, scale=0.7)
    whole = m.log_partition()
    monkeypatch.setattr(gb, "_ENUM_CHUNK_ELEMENTS", 50)  # chunks of 5 configurations
    assert m.log_partition() == pytest.approx(whole, rel=1e-13)
    assert whole == pytest.approx(ref.gb_mixture(*params(m)).log_z, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_log_likelihood_gradient_matches_finite_differences(seed):
    m = make_gbrbm(3, 4, seed=seed, scale=0.8)
    v = np.random.default_rng(seed + 10).normal(0.3, 1.2, size=(25, 3))
    grad = m.log_likelihood_gradient(v)
    eps = 1e-5
    for name in ("weights", "visible_bias", "hidden_bias", "log_sigma"):
        a = getattr(m, name)
        fd = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            up = m.log_likelihood(v).mean()
            a[idx] = old - eps
            down = m.log_likelihood(v).mean()
            a[idx] = old
            fd[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(getattr(grad, name), fd, rtol=1e-6, atol=1e-8, err_msg=name)
    # without sigma the log-sigma entry is zero and the rest is unchanged
    fixed = m.log_likelihood_gradient(v, with_sigma=False)
    assert not fixed.log_sigma.any()
    np.testing.assert_allclose(fixed.weights, grad.weights, rtol=1e-12)


def test_exact_model_statistics_match_the_reference_mixture():
    m = make_gbrbm(4, 5, seed=6)
    stats = m.model_statistics()
    mix = ref.gb_mixture(*params(m))
    p = np.exp(mix.log_weights)
    var = mix.sigma ** 2
    # E[h v^T / s^2], E[(v - b) / s^2], E[h], E[((v - b)^2 - 2 v W^T h) / s^2] from the mixture
    np.testing.assert_allclose(stats.weights, (mix.hidden * p[:, None]).T @ (mix.means / var), rtol=1e-10)
    np.testing.assert_allclose(stats.visible_bias, p @ ((mix.means - m.visible_bias) / var), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats.hidden_bias, p @ mix.hidden, rtol=1e-10)
    wh = mix.hidden @ m.weights
    second = var + (mix.means - m.visible_bias) ** 2  # E[(v - b)^2 | h]
    expected = p @ ((second - 2.0 * mix.means * wh) / var)
    np.testing.assert_allclose(stats.log_sigma, expected, rtol=1e-10)


# ---- sampling ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_hidden_and_visible_follow_the_stream(dtype):
    m = make_gbrbm(40, 20, dtype, scale=0.3)
    v = np.random.default_rng(0).normal(size=(30, 40)).astype(dtype)
    gen = fastgen.Generator(4, 2)
    h = m.sample_hidden(v, generator=gen)
    x = m.sample_visible(h, generator=gen)
    assert gen.offset == 4 and h.dtype == x.dtype == dtype
    p = ref.gb_hidden_probs(v, *params(m))
    u = ref.uniform(4, 2, (30, 20), dtype)
    certain = np.abs(p - u) > ref.ambiguous_tol(dtype)
    np.testing.assert_array_equal(h[certain], ref.bernoulli(p, u)[certain])
    expected, scale = ref.sample_gaussian(h @ m.weights.astype(np.float64), m.sigma.astype(np.float64),
                                          bias=m.visible_bias, generator=fastgen.Generator(4, 3), dtype=dtype)
    np.testing.assert_allclose(x, expected, rtol=0, atol=float(np.max(scale)) * (1e-5 if dtype == np.float32 else 1e-13))


def test_conditional_draws_have_the_conditional_moments():
    m = make_gbrbm(5, 3, scale=0.8, seed=2)
    h = np.repeat(binary((1, 3), seed=7), 40_000, axis=0)
    x = m.sample_visible(h, generator=3)
    mu, s = m.visible_mean(h[:1])[0], m.sigma
    n = len(x)
    assert (np.abs(x.mean(axis=0) - mu) < 5 * s / np.sqrt(n)).all()
    assert (np.abs(x.std(axis=0) / s - 1.0) < 5 / np.sqrt(2 * n)).all()
    v = np.repeat(np.random.default_rng(1).normal(size=(1, 5)), 40_000, axis=0)
    hs = m.sample_hidden(v, generator=4)
    p = m.hidden_probs(v[:1])[0]
    assert (np.abs(hs.mean(axis=0) - p) < 5 * np.sqrt(p * (1 - p) / len(hs))).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_gibbs_chains_reach_the_exact_distribution(dtype):
    # 20,000 independent chains x 40 steps on a 3-visible, 2-hidden model: the final states are
    # (nearly) independent exact samples; compare moments with bounds of 6 standard errors.
    m = make_gbrbm(3, 2, dtype, seed=5, scale=1.2, sigma_spread=0.4)
    n = 20_000
    gen = fastgen.Generator(21)
    x = m.sample(n, steps=40, generator=gen)
    assert x.shape == (n, 3) and x.dtype == dtype and gen.offset == 1 + 80
    x = x.astype(np.float64)
    mean, cov, h_mean = ref.gb_moments(*params(m))
    se_mean = np.sqrt(np.diag(cov) / n)
    assert (np.abs(x.mean(axis=0) - mean) < 6 * se_mean).all(), (x.mean(axis=0), mean, se_mean)
    centred = x - mean
    products = centred[:, :, None] * centred[:, None, :]
    se_cov = products.reshape(n, -1).std(axis=0).reshape(3, 3) / np.sqrt(n)
    assert (np.abs(products.mean(axis=0) - cov) < 6 * se_cov).all(), (products.mean(axis=0), cov)
    ph = m.hidden_probs(x.astype(dtype)).astype(np.float64)
    assert (np.abs(ph.mean(axis=0) - h_mean) < 6 * ph.std(axis=0) / np.sqrt(n)).all()
    # the bounds have power: the other parameterisation (mean b + sigma W^T h) is far outside
    W_alt = m.weights * m.sigma
    alt_mean, _, _ = ref.gb_moments(W_alt, m.visible_bias, m.hidden_bias, m.log_sigma)
    assert (np.abs(alt_mean - mean) > 20 * se_mean).any()


def test_gibbs_takes_two_offsets_per_step_and_clamps():
    m = make_gbrbm(6, 4, seed=1)
    v = np.random.default_rng(2).normal(size=(5, 6))
    gen = fastgen.Generator(9)
    a = m.gibbs(v, 3, generator=gen)
    assert gen.offset == 6
    # by hand: h with offset 2s, v with 2s + 1
    b = v
    g = fastgen.Generator(9)
    for _ in range(3):
        h = m.sample_hidden(b, generator=g)
        b = m.sample_visible(h, generator=g)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m.gibbs(v, 0, generator=1), v)
    mask = np.zeros(6, bool)
    mask[[0, 4]] = True
    out, ph = m.gibbs(v, 4, generator=2, clamp=mask, return_hidden=True)
    np.testing.assert_array_equal(out[:, mask], v[:, mask])
    assert not np.allclose(out[:, ~mask], v[:, ~mask])
    np.testing.assert_allclose(ph, m.hidden_probs(out), rtol=1e-14)
    with pytest.raises(TypeError, match="clamp"):
        m.gibbs(v, 1, clamp=np.zeros(6))
    with pytest.raises(ValueError, match="clamp"):
        m.gibbs(v, 1, clamp=np.zeros(5, bool))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_shapes_and_determinism(dtype):
    m = make_gbrbm(8, 5, dtype, scale=0.5)
    a = m.sample(7, steps=15, generator=3)
    assert a.shape == (7, 8) and a.dtype == dtype and np.isfinite(a).all()
    np.testing.assert_array_equal(a, m.sample(7, steps=15, generator=fastgen.Generator(3)))
    assert not np.array_equal(a, m.sample(7, steps=15, generator=4))
    assert m.sample(0, steps=3, generator=1).shape == (0, 8)
    start = np.ones((2, 8), dtype)
    np.testing.assert_array_equal(m.sample(2, steps=4, generator=1, init=start), m.gibbs(start, 4, generator=1))


# ---- construction and bad input -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_initialize(dtype):
    gen = fastgen.Generator(5)
    m = GaussianRBM.initialize(30, 12, dtype=dtype, generator=gen, scale=0.01)
    assert gen.offset == 1 and m.dtype == dtype and (m.n_visible, m.n_hidden) == (30, 12)
    np.testing.assert_array_equal(m.weights, fastgen.Generator(5).normal((12, 30), dtype) * dtype(0.01))
    assert not m.visible_bias.any() and not m.hidden_bias.any() and not m.log_sigma.any()
    assert all(a.dtype == dtype for a in params(m))
    m2 = GaussianRBM.initialize(3, 2, dtype=dtype, generator=0, visible_bias=[1, 2, 3], sigma=[0.5, 1, 2])
    np.testing.assert_allclose(m2.sigma, [0.5, 1, 2], rtol=1e-6)
    np.testing.assert_array_equal(m2.visible_bias, [1, 2, 3])
    assert GaussianRBM(np.zeros((2, 3)), np.zeros(3), np.zeros(2)).log_sigma.shape == (3,)
    with pytest.raises(ValueError, match="n_visible"):
        GaussianRBM.initialize(0, 3)
    with pytest.raises(ValueError, match="n_hidden"):
        GaussianRBM.initialize(3, 2.5)
    with pytest.raises(ValueError, match="sigma"):
        GaussianRBM.initialize(3, 2, sigma=[1, 0, 1])


def test_inconsistent_parameters_are_refused():
    W = np.zeros((2, 3))
    with pytest.raises(ValueError, match="weights"):
        GaussianRBM(np.zeros(3), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="weights"):
        GaussianRBM(W.astype(np.int64), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match=r"visible_bias must be a float64 array of shape \(3,\)"):
        GaussianRBM(W, np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="hidden_bias"):
        GaussianRBM(W, np.zeros(3), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="log_sigma"):
        GaussianRBM(W, np.zeros(3), np.zeros(2), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="log_sigma"):
        GaussianRBM(W, np.zeros(3), np.zeros(2), [0.0, 0.0, 0.0])


def test_bad_shapes_are_refused():
    m = make_gbrbm(10, 8)
    with pytest.raises(ValueError, match=r"v must have shape \(n, 10\)"):
        m.free_energy(np.zeros((3, 9)))
    with pytest.raises(ValueError, match=r"v must have shape \(n, 10\)"):
        m.hidden_probs(np.zeros(10))
    with pytest.raises(ValueError, match=r"h must have shape \(n, 8\)"):
        m.visible_mean(np.zeros((3, 10)))
    with pytest.raises(ValueError, match=r"h must have shape \(n, 8\)"):
        m.energy(np.zeros((3, 10)), np.zeros((3, 7)))
    with pytest.raises(ValueError, match="n must be"):
        m.sample(-1)
    with pytest.raises(ValueError, match="steps must be"):
        m.gibbs(np.zeros((1, 10)), -1)


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


# ---- standardisation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_standardize_round_trip(dtype):
    X = np.random.default_rng(0).normal([3.0, -1.0, 100.0, 0.0], [2.0, 0.1, 30.0, 1.0], size=(500, 4)).astype(dtype)
    X[:, 3] = 7.0  # constant feature
    Z, mean, std = standardize(X)
    assert Z.dtype == mean.dtype == std.dtype == dtype and Z.shape == X.shape
    np.testing.assert_allclose(Z[:, :3].mean(axis=0), 0.0, atol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(Z[:, :3].std(axis=0), 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert std[3] == 1.0 and not Z[:, 3].any()
    back = destandardize(Z, mean, std)
    assert back.dtype == dtype
    error = np.abs(back.astype(np.float64) - X) / np.abs(X).max(axis=0)  # relative to each feature's scale
    assert error.max() < (1e-6 if dtype == np.float32 else 1e-14)
    assert standardize(X.astype(np.int64))[0].dtype == np.float64
    with pytest.raises(ValueError, match="NaN"):
        standardize(np.array([[np.nan, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        standardize(np.zeros(3))
    with pytest.raises(ValueError, match="0 samples"):
        standardize(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="mean and std"):
        destandardize(Z, mean[:2], std)


def test_standardised_data_never_warns_at_any_sample_size():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed in range(100):
            rng = np.random.default_rng(seed)
            for n in (1, 2, 5, 20, 1000):
                assert check_standardized(rng.normal(size=(n, 50)))
        assert check_standardized(standardize(np.random.default_rng(0).gamma(2.0, 3.0, (300, 20)))[0])
        assert check_standardized(np.zeros((10, 4)))  # constant zero features: as standardize leaves them


@pytest.mark.parametrize(
    "transform,what",
    [
        (lambda z: z + 2.0, "mean"),
        (lambda z: 3.0 * z, "std"),
        (lambda z: 0.1 * z, "std"),
        (lambda z: np.clip(np.round(128 + 60 * z), 0, 255), "mean"),  # raw 8-bit pixels
        (lambda z: (z > 0).astype(float), "mean"),                      # binary data, mean 0.5, std 0.5
        (lambda z: 2.0 * z, "std"),
    ],
)
def test_data_that_is_not_standardised_warns(transform, what):
    X = transform(np.random.default_rng(0).normal(size=(1000, 8)))
    with pytest.warns(UserWarning, match=f"X does not look standardised: feature \\d+ has {what}"):
        assert not check_standardized(X)
    assert standardization_problems(X)
    assert standardization_problems(standardize(X)[0]) == []
