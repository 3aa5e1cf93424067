"""fastgen.models.rbm.RBM: energies, conditionals, exact pseudo-likelihood, exact log Z and
log-likelihood of tiny RBMs, sampling, and training that truly raises the likelihood."""
import numpy as np
import pytest

import fastgen
import reference as ref
from fastgen.models.rbm import RBM, ContrastiveDivergence

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def make_rbm(n_visible=10, n_hidden=8, dtype=np.float64, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return RBM(rng.normal(0, scale, (n_hidden, n_visible)).astype(dtype),
               rng.normal(0, 0.5, n_visible).astype(dtype), rng.normal(0, 0.5, n_hidden).astype(dtype))


def params(m: RBM):
    return m.weights, m.visible_bias, m.hidden_bias


def binary(shape, seed=1, p=0.5, dtype=np.float64):
    return (np.random.default_rng(seed).random(shape) < p).astype(dtype)


# ---- energies and conditionals -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_energy_matches_reference(dtype):
    m = make_rbm(23, 17, dtype)
    v = np.random.default_rng(2).random((9, 23)).astype(dtype)
    h = binary((9, 17), seed=3, dtype=dtype)
    np.testing.assert_allclose(m.energy(v, h), ref.energy(v, h, *params(m)), rtol=RTOL[dtype], atol=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_free_energy_is_minus_log_sum_over_h_of_exp_minus_energy(dtype):
    m = make_rbm(10, 8, dtype)
    V, H = ref.all_states(10), ref.all_states(8)
    neg_e = np.stack([-ref.energy(np.repeat(v[None], len(H), 0), H, *params(m)) for v in V[::37]])
    brute = -np.logaddexp.reduce(neg_e, axis=1)
    fe = m.free_energy(V[::37].astype(dtype))
    np.testing.assert_allclose(fe, brute, rtol=RTOL[dtype])
    v = np.random.default_rng(0).random((5, 10))  # non-binary v
    np.testing.assert_allclose(m.free_energy(v.astype(dtype)), ref.free_energy(v.astype(dtype), *params(m)), rtol=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_conditionals_match_reference(dtype):
    m = make_rbm(57, 33, dtype, scale=0.5)
    v = binary((12, 57), dtype=dtype)
    h = binary((12, 33), seed=5, dtype=dtype)
    ph, pv = m.hidden_probs(v), m.visible_probs(h)
    assert ph.shape == (12, 33) and pv.shape == (12, 57) and ph.dtype == pv.dtype == dtype
    np.testing.assert_allclose(ph, ref.hidden_probs(v, *params(m)), rtol=RTOL[dtype], atol=1e-7)
    np.testing.assert_allclose(pv, ref.visible_probs(h, *params(m)), rtol=RTOL[dtype], atol=1e-7)
    np.testing.assert_allclose(m.hidden_preactivation(v), v.astype(np.float64) @ m.weights.T.astype(np.float64)
                               + m.hidden_bias, rtol=RTOL[dtype], atol=1e-6)
    v_copy = v.copy()
    m.hidden_probs(v)
    np.testing.assert_array_equal(v, v_copy)


def test_sample_hidden_and_visible_are_bernoulli_of_the_conditionals():
    m = make_rbm(40, 20, scale=0.5)
    v = binary((30, 40))
    gen = fastgen.Generator(4, 2)
    h = m.sample_hidden(v, generator=gen)
    v2 = m.sample_visible(h, generator=gen)
    assert gen.offset == 4
    np.testing.assert_array_equal(h, ref.bernoulli(ref.hidden_probs(v, *params(m)), ref.uniform(4, 2, (30, 20))))
    np.testing.assert_array_equal(v2, ref.bernoulli(ref.visible_probs(h, *params(m)), ref.uniform(4, 3, (30, 40))))


# ---- pseudo-likelihood ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(23, 17), (100, 60)], ids=["small", "parallel"])
def test_pseudo_likelihood_matches_flip_each_bit_reference(dtype, shape):
    n_visible, n_hidden = shape
    m = make_rbm(n_visible, n_hidden, dtype, scale=0.7)
    rows = 9 if n_visible < 50 else 40  # 40 * 100 * 60 > 2**15: the OpenMP path
    v = binary((rows, n_visible), dtype=dtype)
    got = m.pseudo_likelihood(v)
    assert got.shape == (rows,) and got.dtype == dtype and (got < 0).all()
    np.testing.assert_allclose(got, ref.pseudo_likelihood(v, *params(m)),
                               rtol={np.float32: 1e-5, np.float64: 1e-11}[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_pseudo_likelihood_for_non_binary_visible_values(dtype):
    m = make_rbm(23, 17, dtype, scale=0.7)
    v = np.random.default_rng(6).random((9, 23)).astype(dtype)
    v[0] = 0.5  # a flip maps 0.5 to itself: every term is log sigmoid(0)
    got = m.pseudo_likelihood(v)
    np.testing.assert_allclose(got, ref.pseudo_likelihood(v, *params(m)), rtol={np.float32: 1e-5, np.float64: 1e-11}[dtype])
    assert got[0] == pytest.approx(23 * np.log(0.5), rel=1e-6)


def test_pseudo_likelihood_exact_conditionals_of_a_tiny_rbm():
    # sum_i log P(v_i | v_-i) with each conditional from the exact joint P(v)
    m = make_rbm(6, 4, scale=1.2)
    V = ref.all_states(6)
    log_p = -ref.free_energy(V, *params(m))
    index = {tuple(row): k for k, row in enumerate(V.astype(int))}
    expected = []
    for row in V[::5]:
        total = 0.0
        for i in range(6):
            other = row.copy()
            other[i] = 1 - other[i]
            a, b = log_p[index[tuple(row.astype(int))]], log_p[index[tuple(other.astype(int))]]
            total += a - np.logaddexp(a, b)
        expected.append(total)
    np.testing.assert_allclose(m.pseudo_likelihood(V[::5]), expected, rtol=1e-12)


# ---- exact partition function and likelihood ---------------------------------------------------------
@pytest.mark.parametrize("shape", [(10, 8), (8, 10), (10, 10)], ids=["nv>nh", "nv<nh", "square"])
def test_log_partition_matches_brute_force_over_v_and_h(shape):
    m = make_rbm(*shape, seed=sum(shape))
    log_z = ref.log_partition_brute_force(*params(m))
    assert m.log_partition() == pytest.approx(log_z, rel=1e-13, abs=1e-12)
    # the transposed RBM (visible <-> hidden) has the same partition function
    t = RBM(m.weights.T.copy(), m.hidden_bias.copy(), m.visible_bias.copy())
    assert t.log_partition() == pytest.approx(log_z, rel=1e-13, abs=1e-12)


def test_log_partition_of_a_float32_model_is_computed_in_float64():
    m = make_rbm(10, 8, np.float32)
    assert isinstance(m.log_partition(), float)
    assert m.log_partition() == pytest.approx(ref.log_partition_brute_force(*params(m)), rel=1e-12)


def test_log_partition_enumerates_in_several_chunks():
    # 17 hidden units: 2 chunks of 2**16 configurations; compare with -F summed over all v
    m = make_rbm(18, 17, scale=0.3, seed=3)
    V = ref.all_states(17)
    t = RBM(m.weights.T.copy(), m.hidden_bias.copy(), m.visible_bias.copy())  # 17 visible: enumerate v
    log_z = np.logaddexp.reduce(-ref.free_energy(V, *params(t)))
    assert t.log_partition() == pytest.approx(log_z, rel=1e-12)
    assert m.log_partition() == pytest.approx(log_z, rel=1e-12)


def test_log_partition_refuses_large_models():
    with pytest.raises(ValueError, match="n_visible or n_hidden <= 20"):
        make_rbm(21, 22).log_partition()


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_likelihood_normalises_over_all_visible_configurations(dtype):
    m = make_rbm(10, 8, dtype)
    V = ref.all_states(10)
    ll = m.log_likelihood(V)
    assert ll.shape == (1024,) and ll.dtype == np.float64
    assert np.logaddexp.reduce(ll) == pytest.approx(0.0, abs=1e-10)
    log_z = ref.log_partition_brute_force(*params(m))
    np.testing.assert_allclose(ll, -ref.free_energy(V, *params(m)) - log_z, rtol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(m.log_likelihood(V[:5], log_z=log_z + 1.0), ll[:5] - 1.0, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reconstruction_error(dtype):
    m = make_rbm(30, 12, dtype, scale=0.5)
    v = binary((20, 30), dtype=dtype)
    W, b, c = params(m)
    expected = np.mean((v - ref.visible_probs(ref.hidden_probs(v, W, b, c), W, b, c)) ** 2)
    assert m.reconstruction_error(v) == pytest.approx(expected, rel=RTOL[dtype])


# ---- construction, sampling -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_initialize_is_small_normal_weights_from_the_stream_and_zero_biases(dtype):
    gen = fastgen.Generator(5)
    m = RBM.initialize(30, 12, dtype=dtype, generator=gen, scale=0.01)
    assert gen.offset == 1 and m.dtype == dtype and (m.n_visible, m.n_hidden) == (30, 12)
    np.testing.assert_array_equal(m.weights, fastgen.Generator(5).normal((12, 30), dtype) * dtype(0.01))
    assert not m.visible_bias.any() and not m.hidden_bias.any()
    with pytest.raises(ValueError, match="n_visible"):
        RBM.initialize(0, 3)
    with pytest.raises(ValueError, match="n_hidden"):
        RBM.initialize(3, 2.5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_shapes_and_determinism(dtype):
    m = make_rbm(20, 10, dtype, scale=0.8)
    a = m.sample(7, steps=15, generator=3)
    assert a.shape == (7, 20) and a.dtype == dtype and set(np.unique(a)) <= {0.0, 1.0}
    np.testing.assert_array_equal(a, m.sample(7, steps=15, generator=fastgen.Generator(3)))
    assert not np.array_equal(a, m.sample(7, steps=15, generator=4))
    # documented: init = (uniform < 0.5) from one offset, then `steps` Gibbs steps
    gen = fastgen.Generator(3)
    init = (gen.uniform((7, 20), dtype) < 0.5).astype(dtype)
    np.testing.assert_array_equal(a, m.gibbs(init, 15, generator=gen))
    assert m.sample(0, steps=3, generator=1).shape == (0, 20)
    start = np.ones((2, 20), dtype)
    np.testing.assert_array_equal(m.sample(2, steps=4, generator=1, init=start), m.gibbs(start, 4, generator=1))
    clamp = np.zeros(20, bool)
    clamp[:5] = True
    np.testing.assert_array_equal(m.gibbs(start, 4, generator=1, clamp=clamp)[:, :5], 1.0)


def test_bad_shapes_are_refused():
    m = make_rbm(10, 8)
    with pytest.raises(ValueError, match=r"v must have shape \(n, 10\)"):
        m.free_energy(np.zeros((3, 9)))
    with pytest.raises(ValueError, match=r"v must have shape \(n, 10\)"):
        m.pseudo_likelihood(np.zeros(10))
    with pytest.raises(ValueError, match=r"h must have shape \(n, 8\)"):
        m.visible_probs(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="n must be"):
        m.sample(-1)


# ---- training raises the exact likelihood --------------------------------------------------------
def _prototype_data(n, seed):
    rng = np.random.default_rng(seed)
    prototypes = (np.random.default_rng(100).random((3, 10)) < 0.5).astype(float)
    data = prototypes[rng.integers(0, 3, n)]
    return np.abs(data - (rng.random(data.shape) < 0.05))  # 5% bit noise


@pytest.mark.parametrize("persistent,k", [(False, 1), (True, 1)], ids=["CD-1", "PCD-1"])
def test_training_raises_the_exact_log_likelihood(persistent, k):
    train, test = _prototype_data(600, 0), _prototype_data(300, 1)
    gen = fastgen.Generator(1)
    m = RBM.initialize(10, 8, generator=gen)
    before_train, before_test = m.log_likelihood(train).mean(), m.log_likelihood(test).mean()
    trainer = ContrastiveDivergence(learning_rate=0.1, cd_k=k, persistent=persistent)
    for _ in range(30):
        trainer.run(m, train, 10, gen)
    after_train, after_test = m.log_likelihood(train).mean(), m.log_likelihood(test).mean()
    print(f"mean exact log-likelihood: train {before_train:.3f} -> {after_train:.3f}, "
          f"held out {before_test:.3f} -> {after_test:.3f}")
    # start: ~10 log 2 = -6.93; a perfect fit of 3 prototypes with 5% noise: about -3.1
    assert before_train == pytest.approx(-10 * np.log(2), abs=0.05)
    assert after_train > before_train + 2.5
    assert after_test > before_test + 2.5
    # the pseudo-likelihood rises too
    assert m.pseudo_likelihood(test).mean() > RBM.initialize(10, 8, generator=1).pseudo_likelihood(test).mean() + 2


def test_pcd_with_more_chains_than_the_batch_trains():
    train = _prototype_data(600, 2)
    gen = fastgen.Generator(7)
    m = RBM.initialize(10, 8, generator=gen)
    before = m.log_likelihood(train).mean()
    trainer = ContrastiveDivergence(learning_rate=0.05, persistent=True, n_chains=25, momentum=0.5)
    for _ in range(20):
        trainer.run(m, train, 10, gen)
    assert trainer.chains.shape == (25, 8)
    assert set(np.unique(trainer.chains)) <= {0.0, 1.0}
    after = m.log_likelihood(train).mean()
    print(f"PCD, 25 chains, batch 10: {before:.3f} -> {after:.3f}")
    assert after > before + 2.5
