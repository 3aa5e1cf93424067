"""Core guarantees of the foundation, in one place: the Philox stream, the shared formulas,
the kernels against NumPy references, the trainer against the op, and the estimator contract.
(Finer-grained suites live beside it, mirroring the package.)"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy.special import expit, logsumexp

import fastgen
from fastgen._native import cpu as _cpu
from fastgen.models.rbm import RBM, ContrastiveDivergence
from fastgen.ops import cd_gradients, gibbs, sample_bernoulli, sample_gaussian

TOL = {np.float32: 2e-6, np.float64: 1e-13}
DTYPES = [np.float32, np.float64]


def uniform_ref(words, dtype):
    if dtype == np.float32:
        return ((words >> 8).astype(np.float64) * 2.0**-24).astype(np.float32)
    return words.astype(np.float64) * 2.0**-32


# ---- Philox -------------------------------------------------------------------------------------
KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_philox_random123_known_answers(ctr, key, expected):
    assert list(_cpu.C.philox4x32_10(ctr, key)) == expected


def test_stream_layout_element_i_is_lane_i_mod_4_of_block_i_div_4():
    seed, n = 0x1234_5678_9ABC_DEF0, 37
    gen = fastgen.Generator(seed, offset=(1 << 40) + 3)
    words = gen.bits(n)
    for i in range(n):
        ctr = [i // 4, 0, 3, 1 << 8]
        assert words[i] == _cpu.C.philox4x32_10(ctr, [seed & 0xFFFFFFFF, seed >> 32])[i % 4]
    assert gen.offset == (1 << 40) + 4


@pytest.mark.parametrize("dtype", DTYPES)
def test_uniforms_are_the_documented_function_of_the_words(dtype):
    words = fastgen.Generator(7).bits(4096 + 32)
    u = fastgen.Generator(7).uniform(4096 + 32, dtype)
    np.testing.assert_array_equal(u, uniform_ref(words, dtype))
    assert u.min() >= 0 and u.max() < 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_normals_are_box_muller_of_the_words(dtype):
    n = 4096 + 32
    words = fastgen.Generator(3).bits(n)
    z = fastgen.Generator(3).normal(n, dtype)
    u = uniform_ref(words, dtype).astype(np.float64)
    r = np.sqrt(-2 * np.log(1 - u[0::2]))
    ref = np.empty(n)
    ref[0::2], ref[1::2] = r * np.cos(2 * np.pi * u[1::2]), r * np.sin(2 * np.pi * u[1::2])
    np.testing.assert_allclose(z, ref, rtol=0, atol=50 * TOL[dtype] * max(1, np.abs(ref).max()))


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_moments(dtype):
    from scipy import stats

    z = fastgen.Generator(11).normal(1_000_000, dtype).astype(np.float64)
    assert abs(z.mean()) < 5 / 1000 and abs(z.var() - 1) < 5 * np.sqrt(2 / 1e6)
    assert stats.kstest(z, "norm").pvalue > 1e-4


def test_generator_state_resumes_the_exact_stream():
    import pickle

    a = fastgen.Generator(5)
    a.uniform(10)
    saved = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(a.normal(100), saved.normal(100))
    b = fastgen.Generator(0)
    b.set_state(a.get_state())
    np.testing.assert_array_equal(a.bits(50), b.bits(50))


@pytest.mark.parametrize("seed", [-1, 1 << 64, 1.5, "3"])
def test_bad_seed_is_rejected(seed):
    with pytest.raises((ValueError, TypeError), match="seed"):
        fastgen.Generator(seed)


_THREAD_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, fastgen
    from fastgen.ops import sample_bernoulli, gibbs
    g = fastgen.Generator(123)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, (300, 1000)).astype(np.float32)
    W = rng.normal(0, 0.3, (129, 257))
    v0 = (rng.random((64, 257)) < 0.5).astype(float)
    out = [g.uniform(300001, np.float32), g.normal(300001), sample_bernoulli(x, output="both", generator=g)[1],
           gibbs(v0, W, np.zeros(257), np.zeros(129), 5, generator=g)]
    np.savez(sys.argv[1], *out)
    """
)


def test_draws_are_bitwise_identical_for_1_and_2_threads(tmp_path):
    files = []
    for threads in ("1", "2"):
        path = tmp_path / f"t{threads}.npz"
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        subprocess.run([sys.executable, "-c", _THREAD_SCRIPT, str(path)], check=True, env=env)
        files.append(np.load(path))
    for key in files[0].files:
        assert files[0][key].tobytes() == files[1][key].tobytes(), key


# ---- sampling ops ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 129), (2, 4096 + 32), (0, 5)])
def test_sample_bernoulli_matches_reference(dtype, shape):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 3, shape).astype(dtype)
    b = rng.normal(0, 1, shape[1]).astype(dtype)
    x_copy = x.copy()
    gen = fastgen.Generator(9)
    probs, states = sample_bernoulli(x, b, output="both", generator=gen)
    assert probs.dtype == dtype and states.dtype == dtype and probs.shape == shape
    np.testing.assert_array_equal(x, x_copy)
    p_ref = expit(x.astype(np.float64) + b)
    np.testing.assert_allclose(probs, p_ref, rtol=0, atol=4 * TOL[dtype])
    u = uniform_ref(fastgen.Generator(9).bits(x.size), dtype).reshape(shape)
    decided = np.abs(p_ref - u) > 1e-5
    np.testing.assert_array_equal(states[decided], (u < p_ref)[decided].astype(dtype))


def test_sample_bernoulli_non_contiguous_and_integer_input():
    x = np.arange(40, dtype=np.int64).reshape(5, 8) - 20
    view = x.astype(np.float64)[:, ::2]
    got = sample_bernoulli(view, output="probs")
    np.testing.assert_allclose(got, expit(view), rtol=1e-14)
    np.testing.assert_allclose(sample_bernoulli(x, output="probs"), expit(x.astype(float)), rtol=1e-14)


def test_sample_bernoulli_from_probabilities_frequency():
    p = np.linspace(0, 1, 11)[None, :].repeat(20000, 0)
    s = sample_bernoulli(p, from_logits=False, generator=0)
    freq = s.mean(axis=0)
    assert freq[0] == 0 and freq[-1] == 1
    np.testing.assert_allclose(freq, p[0], atol=4 * np.sqrt(0.25 / 20000))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_gaussian_matches_mean_plus_std_eps(dtype):
    rng = np.random.default_rng(2)
    mean = rng.normal(size=(7, 129)).astype(dtype)
    std = rng.random(129).astype(dtype)
    out = sample_gaussian(mean, std, generator=fastgen.Generator(4))
    eps = fastgen.Generator(4).normal(mean.size, dtype).reshape(mean.shape)
    np.testing.assert_allclose(out, mean + std * eps, rtol=0, atol=10 * TOL[dtype])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: sample_bernoulli(np.array([[np.nan]])), "x contains NaN"),
        (lambda: sample_bernoulli(np.ones((2, 2, 2))), "x must be"),
        (lambda: sample_bernoulli(np.ones((2, 3)), np.ones(2)), "bias must have shape"),
        (lambda: sample_bernoulli(np.array([["a"]])), "x must be a real numeric"),
        (lambda: sample_bernoulli(np.ones((2, 3)), output="nope"), "output"),
        (lambda: sample_bernoulli(np.full((1, 2), 2.0), from_logits=False), "probabilities"),
        (lambda: sample_gaussian(np.ones((2, 3)), -1.0), "std"),
        (lambda: sample_gaussian(np.ones((2, 3)), np.inf), "std"),
        (lambda: gibbs(np.ones((2, 4)), np.ones((3, 5)), np.zeros(5), np.zeros(3)), "v must have 5 columns"),
        (lambda: gibbs(np.ones((2, 5)), np.ones((3, 5)), np.zeros(4), np.zeros(3)), "b_vis"),
        (lambda: gibbs(np.ones((2, 5)), np.ones((3, 5)), np.zeros(5), np.zeros(3), steps=-1), "steps"),
        (lambda: gibbs(np.ones((2, 5)), np.ones((3, 5)), np.zeros(5), np.zeros(3), clamp=np.ones(4, bool)), "clamp"),
        (lambda: cd_gradients(np.ones((2, 5)), np.ones((3, 5)), np.zeros(5), np.zeros(3), k=0), "k must"),
        (lambda: cd_gradients(np.ones((0, 5)), np.ones((3, 5)), np.zeros(5), np.zeros(3)), "v is empty"),
    ],
)
def test_bad_input_to_ops_names_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ---- Gibbs and CD ----------------------------------------------------------------------------------
def small_rbm(n_visible=10, n_hidden=8, dtype=np.float64, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return RBM(rng.normal(0, scale, (n_hidden, n_visible)).astype(dtype),
               rng.normal(0, 0.5, n_visible).astype(dtype), rng.normal(0, 0.5, n_hidden).astype(dtype))


def bernoulli_ref(logits, seed, offset, dtype):
    words = fastgen.Generator(seed, offset).bits(logits.size).reshape(logits.shape)
    return (uniform_ref(words, dtype) < expit(logits)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gibbs_matches_step_by_step_reference(dtype):
    m = small_rbm(129, 33, dtype, scale=0.3)
    v0 = (np.random.default_rng(5).random((17, 129)) < 0.5).astype(dtype)
    out = gibbs(v0, m.weights, m.visible_bias, m.hidden_bias, 3, generator=fastgen.Generator(8, 10))
    v = v0.astype(np.float64)
    W = m.weights.astype(np.float64)
    for s in range(3):
        h = bernoulli_ref(v @ W.T + m.hidden_bias, 8, 10 + 2 * s, dtype).astype(np.float64)
        v = bernoulli_ref(h @ W + m.visible_bias, 8, 11 + 2 * s, dtype).astype(np.float64)
    mismatch = np.mean(out != v)
    assert mismatch < 0.002, mismatch  # only draws within rounding of their threshold may differ


def test_gibbs_clamped_units_keep_their_values():
    m = small_rbm(30, 12, scale=2.0)
    v0 = (np.random.default_rng(1).random((50, 30)) < 0.5).astype(float)
    clamp = np.zeros(30, bool)
    clamp[:10] = True
    out = gibbs(v0, m.weights, m.visible_bias, m.hidden_bias, 10, generator=0, clamp=clamp)
    np.testing.assert_array_equal(out[:, :10], v0[:, :10])
    assert (out[:, 10:] != v0[:, 10:]).any()
    np.testing.assert_array_equal(gibbs(v0, m.weights, m.visible_bias, m.hidden_bias, 0), v0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("persistent", [False, True])
def test_compiled_trainer_applies_the_cd_gradient_of_the_op(dtype, persistent):
    m = small_rbm(41, 19, dtype, scale=0.2)
    v = (np.random.default_rng(3).random((13, 41)) < 0.4).astype(dtype)
    chains = (np.random.default_rng(4).random((7, 19)) < 0.5).astype(dtype)
    lr, k = 0.05, 2
    grads = cd_gradients(v, m.weights, m.visible_bias, m.hidden_bias, k=k, generator=fastgen.Generator(21),
                         persistent_chains=chains if persistent else None)
    trainer = ContrastiveDivergence(learning_rate=lr, cd_k=k, persistent=persistent, n_chains=7,
                                    chains=chains.copy() if persistent else None)
    W0 = m.weights.copy()
    trainer.run(m, v, 13, fastgen.Generator(21))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(m.weights, W0 + lr * grads.weights, atol=tol)
    np.testing.assert_allclose(m.visible_bias, lr * grads.visible_bias + small_rbm(41, 19, dtype).visible_bias, atol=tol)
    if persistent:
        np.testing.assert_array_equal(trainer.chains, grads.chains)


# ---- RBM model -------------------------------------------------------------------------------------
def all_states(n):
    return ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(float)


def test_free_energy_and_log_partition_match_brute_force():
    m = small_rbm(10, 8)
    V, H = all_states(10), all_states(8)
    neg_energy = V @ m.visible_bias[:, None] + (H @ m.hidden_bias)[None, :] + V @ m.weights.T @ H.T
    np.testing.assert_allclose(m.free_energy(V), -logsumexp(neg_energy, axis=1), rtol=1e-12)
    log_z = logsumexp(neg_energy)
    assert m.log_partition() == pytest.approx(log_z, rel=1e-12)
    transposed = RBM(m.weights.T.copy(), m.hidden_bias.copy(), m.visible_bias.copy())
    assert transposed.log_partition() == pytest.approx(log_z, rel=1e-12)
    assert logsumexp(m.log_likelihood(V)) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_pseudo_likelihood_matches_flip_each_bit(dtype):
    m = small_rbm(23, 17, dtype, scale=0.7)
    v = np.random.default_rng(6).random((9, 23)).astype(dtype)  # also non-binary values
    v[:4] = v[:4] > 0.5
    ref = np.zeros(9)
    fe = m.free_energy(v.astype(np.float64))
    for i in range(23):
        flipped = v.astype(np.float64).copy()
        flipped[:, i] = 1 - flipped[:, i]
        ref += -np.logaddexp(0, -(m.free_energy(flipped) - fe))
    np.testing.assert_allclose(m.pseudo_likelihood(v), ref, rtol=1e-5 if dtype == np.float32 else 1e-11)


@pytest.mark.parametrize("persistent", [True, False])
def test_training_raises_the_exact_log_likelihood(persistent):
    rng = np.random.default_rng(0)
    prototypes = (rng.random((3, 10)) < 0.5).astype(float)
    data = prototypes[rng.integers(0, 3, 600)]
    data = np.abs(data - (rng.random(data.shape) < 0.05))
    gen = fastgen.Generator(1)
    m = RBM.initialize(10, 8, generator=gen)
    before = m.log_likelihood(data).mean()
    trainer = ContrastiveDivergence(learning_rate=0.1, persistent=persistent, n_chains=20, momentum=0.5)
    for _ in range(30):
        trainer.run(m, np.ascontiguousarray(data), 10, gen)
    after = m.log_likelihood(data).mean()
    assert after > before + 2.0, (before, after)
    assert trainer.chains is None or trainer.chains.shape == (20, 8)


# ---- estimator -------------------------------------------------------------------------------------
def test_check_estimator_passes():
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(fastgen.BernoulliRBM(n_iter=2), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "failed"]
    assert not failed
    skipped = [r["check_name"] for r in results if r["status"] == "skipped"]
    assert set(skipped) <= {"check_array_api_input"}, skipped


def test_same_parameters_and_defaults_as_scikit_learn():
    from sklearn.neural_network import BernoulliRBM as SkRBM

    ours, theirs = fastgen.BernoulliRBM().get_params(), SkRBM().get_params()
    assert {k: ours[k] for k in theirs} == theirs


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_is_preserved_and_sparse_equals_dense(dtype):
    import scipy.sparse as sp

    X = (np.random.default_rng(0).random((57, 20)) < 0.3).astype(dtype)
    dense = fastgen.BernoulliRBM(n_components=7, n_iter=3, random_state=0).fit(X)
    sparse = fastgen.BernoulliRBM(n_components=7, n_iter=3, random_state=0).fit(sp.csr_matrix(X))
    assert dense.components_.dtype == dtype and dense.transform(X).dtype == dtype
    np.testing.assert_array_equal(dense.components_, sparse.components_)
    np.testing.assert_allclose(dense.score_samples(X), sparse.score_samples(sp.csr_matrix(X)), rtol=1e-6)


def test_verbose_prints_scikit_learn_line(capsys):
    X = (np.random.default_rng(0).random((30, 8)) < 0.5).astype(float)
    fastgen.BernoulliRBM(n_components=4, n_iter=2, verbose=1, random_state=0).fit(X)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[BernoulliRBM] Iteration 1, pseudo-likelihood = ") and lines[0].endswith("s")


def test_held_out_pseudo_likelihood_at_least_scikit_learns():
    from sklearn.datasets import load_digits
    from sklearn.neural_network import BernoulliRBM as SkRBM

    X = load_digits().data / 16
    train, test = X[:1500], X[1500:]
    ours = fastgen.BernoulliRBM(random_state=0).fit(train)
    theirs = SkRBM(random_state=0).fit(train)
    theirs_model = RBM(np.ascontiguousarray(theirs.components_), theirs.intercept_visible_.copy(),
                       theirs.intercept_hidden_.copy())
    ours_pl, theirs_pl = ours.score_samples(test).mean(), theirs_model.pseudo_likelihood(test).mean()
    print(f"held-out exact pseudo-likelihood: fastgen {ours_pl:.3f}, scikit-learn {theirs_pl:.3f}")
    assert ours_pl >= theirs_pl - 0.5


def test_pipeline_with_logistic_regression():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    X, y = load_digits(return_X_y=True)
    X = X / 16
    model = Pipeline([("rbm", fastgen.BernoulliRBM(n_components=100, n_iter=20, learning_rate=0.06, random_state=0)),
                      ("clf", LogisticRegression(max_iter=1000))])
    model.fit(X[:1200], y[:1200])
    assert model.score(X[1200:], y[1200:]) > 0.8


@pytest.mark.parametrize(
    "params,match",
    [
        ({"n_components": 0}, "n_components"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"n_iter": -1}, "n_iter"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"cd_k": 0}, "cd_k"),
        ({"n_chains": 0}, "n_chains"),
        ({"dtype": "int32"}, "dtype"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_hyper_parameters_are_named(params, match):
    X = np.zeros((4, 3))
    with pytest.raises(ValueError, match=match):
        fastgen.BernoulliRBM(**params).fit(X)


def test_bad_data_gets_clear_errors_and_input_is_not_modified():
    rbm = fastgen.BernoulliRBM(n_components=3, n_iter=1, random_state=0)
    with pytest.raises(ValueError, match="NaN"):
        rbm.fit(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="infinity|inf"):
        rbm.fit(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="2D|2-D|Expected 2D"):
        rbm.fit(np.zeros(5))
    with pytest.raises(ValueError, match="0 sample"):
        rbm.fit(np.zeros((0, 5)))
    with pytest.raises((ValueError, TypeError)):
        rbm.fit(np.array([["a", "b"]]))
    X = np.random.default_rng(0).random((20, 5))
    X_copy = X.copy()
    rbm.fit(X)
    rbm.transform(X)
    rbm.score_samples(X)
    np.testing.assert_array_equal(X, X_copy)
    with pytest.raises(ValueError, match="features"):
        rbm.transform(np.zeros((2, 6)))
    with pytest.warns(UserWarning, match=r"\[0, 1\]"):
        fastgen.BernoulliRBM(n_components=2, n_iter=1).fit(X * 3)


_SPIN_SCRIPT = "import os, fastgen._native.cpu; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"


@pytest.mark.parametrize("user_env, expected", [
    ({}, "5000 None"),
    ({"OMP_WAIT_POLICY": "PASSIVE"}, "None PASSIVE"),
    ({"GOMP_SPINCOUNT": "100"}, "100 None"),
])
def test_openmp_spin_count_default_leaves_user_settings_alone(user_env, expected):
    # Guards the short-spin default (a sleeping team made each region of the binary loops wait
    # for a wake-up) and that a user's own OpenMP wait settings are never overridden.
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env.update(user_env)
    out = subprocess.run([sys.executable, "-c", _SPIN_SCRIPT], check=True, env=env, capture_output=True, text=True)
    assert out.stdout.split("\n")[-2] == expected
