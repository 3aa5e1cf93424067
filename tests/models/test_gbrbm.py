"""fastgen.models.gbrbm: the Gaussian-Bernoulli RBM's energy, conditionals, free energy, exact
log Z / log-likelihood / gradient of tiny models, the Gibbs sampler against the exact
distribution, construction and bad input (the trainer: test_gbrbm_training.py; standardisation:
test_gbrbm_standardization.py)."""
import numpy as np
import pytest
from scipy import integrate

import fastgen
import reference as ref
from fastgen.models.gbrbm import MAX_ENUMERABLE_HIDDEN, GaussianRBM
from gbrbm_cases import binary, make_gbrbm, params

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 5e-5, np.float64: 1e-12}
# absolute tolerances for O(1)-O(100) sums of float32 / float64 products
ATOL = {np.float32: 2e-4, np.float64: 1e-10}


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

