"""fastgen.BernoulliRBM as a drop-in for sklearn.neural_network.BernoulliRBM.

The helper tests of scikit-learn's ``neural_network/tests/test_rbm.py`` (test_transform,
test_sample_hiddens, test_fit_gibbs, test_small_sparse, test_small_sparse_partial_fit,
test_score_samples), restated for fastgen: they assert scikit-learn's semantics, not its random
bits (fastgen draws from its Philox stream). Also: the underscore helpers against scikit-learn's
own on the same parameters, parameter errors as scikit-learn's InvalidParameterError, the [0, 1]
warning in a MinMaxScaler grid search, and ``dir(fastgen)``.
"""
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit
from sklearn import config_context
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neural_network import BernoulliRBM as SkBernoulliRBM
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils._param_validation import InvalidParameterError

import fastgen
from fastgen import BernoulliRBM, GaussianBernoulliRBM
from fastgen.sklearn import DBN

SPARSE = [sp.csr_matrix, sp.csc_matrix, sp.lil_matrix, sp.coo_matrix, sp.csr_array]


@pytest.fixture(scope="module")
def digits():
    X = load_digits().data.astype(np.float64)
    return (X - X.min()) / (X.max() - X.min())


@pytest.fixture(scope="module")
def fitted(digits):
    return BernoulliRBM(n_components=16, batch_size=5, n_iter=5, random_state=42).fit(digits[:100])


def sklearn_twin(rbm):
    """scikit-learn's BernoulliRBM holding fastgen's fitted parameters (its helpers read only these)."""
    twin = SkBernoulliRBM(n_components=rbm.n_components)
    twin.components_ = rbm.components_.copy()
    twin.intercept_hidden_ = rbm.intercept_hidden_.copy()
    twin.intercept_visible_ = rbm.intercept_visible_.copy()
    return twin


# ---- _mean_hiddens, _free_energy: scikit-learn's values ------------------------------------------------
def test_transform_is_mean_hiddens(fitted, digits):  # scikit-learn's test_transform
    X = digits[:100]
    np.testing.assert_array_equal(fitted.transform(X), fitted._mean_hiddens(X))
    expected = expit(X @ fitted.components_.T + fitted.intercept_hidden_)
    np.testing.assert_allclose(fitted._mean_hiddens(X), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fitted._mean_hiddens(X), sklearn_twin(fitted)._mean_hiddens(X),
                               rtol=1e-12, atol=1e-14)


def test_mean_hiddens_of_one_row_is_one_dimensional(fitted, digits):
    h = fitted._mean_hiddens(digits[0])
    assert h.shape == (16,)
    np.testing.assert_allclose(h, fitted._mean_hiddens(digits[:1])[0], rtol=1e-12)


def test_free_energy_matches_scikit_learn_and_its_sign(fitted, digits):
    X = digits[:50]
    F = fitted._free_energy(X)
    assert F.shape == (50,)
    np.testing.assert_allclose(F, sklearn_twin(fitted)._free_energy(X), rtol=1e-12)
    by_hand = -(X @ fitted.intercept_visible_) - np.logaddexp(
        0, X @ fitted.components_.T + fitted.intercept_hidden_).sum(axis=1)
    np.testing.assert_allclose(F, by_hand, rtol=1e-12)


def test_free_energy_sign_gives_the_exact_distribution():
    # F(v) = -log sum_h exp(-E(v, h)): exp(-F) over all 2**4 visible vectors, normalised, is
    # P(v), and it sums to exp(log Z), the exact partition function. A flipped sign would not.
    rng = np.random.default_rng(0)
    rbm = BernoulliRBM(n_components=3, n_iter=0, random_state=0).fit(np.zeros((2, 4)))
    rbm.components_ = rng.normal(0, 1.5, (3, 4))
    rbm.intercept_visible_ = rng.normal(0, 1, 4)
    rbm.intercept_hidden_ = rng.normal(0, 1, 3)
    V = ((np.arange(16)[:, None] >> np.arange(4)) & 1).astype(np.float64)
    log_z = np.logaddexp.reduce(-rbm._free_energy(V))
    assert log_z == pytest.approx(rbm.log_partition(method="exact"), rel=1e-12)
    # likely vectors have low free energy: the most probable row under exact enumeration
    joint = -rbm._free_energy(V)
    assert np.argmin(rbm._free_energy(V)) == np.argmax(joint)


@pytest.mark.parametrize("container", SPARSE)
def test_helpers_take_sparse_input(fitted, digits, container):
    X = digits[:40]
    Xs = container(X)
    np.testing.assert_allclose(fitted._mean_hiddens(Xs), fitted._mean_hiddens(X), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fitted._free_energy(Xs), fitted._free_energy(X), rtol=1e-12)
    np.testing.assert_array_equal(fitted._sample_hiddens(Xs, np.random.RandomState(3)),
                                  fitted._sample_hiddens(X, np.random.RandomState(3)))
    np.testing.assert_allclose(fitted.transform(Xs), fitted.transform(X), rtol=1e-12, atol=1e-15)


# ---- _sample_hiddens, _sample_visibles ------------------------------------------------------------------
def test_sample_hiddens_average_to_mean_hiddens(digits):  # scikit-learn's test_sample_hiddens
    rbm = BernoulliRBM(n_components=2, batch_size=5, n_iter=5, random_state=42).fit(digits[:100])
    rng = np.random.RandomState(0)
    h = rbm._mean_hiddens(digits[0])
    draws = np.array([rbm._sample_hiddens(digits[0], rng) for _ in range(400)])
    assert draws.shape == (400, 2) and draws.dtype == bool  # booleans, as scikit-learn returns
    np.testing.assert_allclose(draws.mean(axis=0), h, atol=0.08)   # 4 standard errors at p = 0.5
    assert len({d.tobytes() for d in draws}) > 1                   # successive calls differ


def test_sample_hiddens_frequencies_follow_each_probability(fitted, digits):
    # many rows at once: each unit's hit rate over 2000 draws of the same row tracks P(h | v)
    v = np.repeat(digits[:3], 2000, axis=0)
    states = fitted._sample_hiddens(v, np.random.RandomState(1))
    rates = states.reshape(3, 2000, -1).mean(axis=1)
    np.testing.assert_allclose(rates, fitted._mean_hiddens(digits[:3]), atol=0.05)


def test_sample_visibles_follow_p_v_given_h(fitted):
    rng = np.random.default_rng(5)
    h = (rng.random((4, 16)) < 0.5).astype(np.float64)
    p = expit(h @ fitted.components_ + fitted.intercept_visible_)
    v = fitted._sample_visibles(np.repeat(h, 2000, axis=0), np.random.RandomState(2))
    assert v.shape == (8000, 64) and v.dtype == bool
    np.testing.assert_allclose(v.reshape(4, 2000, 64).mean(axis=1), p, atol=0.05)
    assert fitted._sample_visibles(h[0], np.random.RandomState(2)).shape == (64,)


def test_sampling_is_deterministic_given_the_rng_state(fitted, digits):
    X = digits[:20]
    a = fitted._sample_hiddens(X, np.random.RandomState(7))
    b = fitted._sample_hiddens(X, np.random.RandomState(7))
    c = fitted._sample_hiddens(X, np.random.RandomState(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    rng = np.random.RandomState(7)
    first, second = fitted._sample_hiddens(X, rng), fitted._sample_hiddens(X, rng)
    np.testing.assert_array_equal(first, a)          # one draw of rng per call: the same seed ...
    assert not np.array_equal(first, second)         # ... and the next call goes on from rng
    v1 = fitted._sample_visibles(a, np.random.RandomState(9))
    np.testing.assert_array_equal(v1, fitted._sample_visibles(a, np.random.RandomState(9)))
    # a NumPy Generator and a fastgen.Generator work too, deterministically
    np.testing.assert_array_equal(fitted._sample_hiddens(X, np.random.default_rng(4)),
                                  fitted._sample_hiddens(X, np.random.default_rng(4)))
    np.testing.assert_array_equal(fitted._sample_hiddens(X, fastgen.Generator(11)),
                                  fitted._sample_hiddens(X, fastgen.Generator(11)))


def test_sampling_with_an_rng_leaves_the_estimator_stream_alone(digits):
    X = digits[:20]
    a = BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(X)
    b = BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(X)
    a._sample_hiddens(X, np.random.RandomState(0))
    a._sample_visibles(a._mean_hiddens(X), np.random.RandomState(0))
    np.testing.assert_array_equal(a.gibbs(X), b.gibbs(X))
    # rng=None continues the estimator's own stream (as gibbs does): two calls differ
    assert not np.array_equal(a._sample_hiddens(X, None), a._sample_hiddens(X, None))


def test_helpers_refuse_what_they_cannot_use(fitted, digits):
    with pytest.raises(NotFittedError):
        BernoulliRBM()._mean_hiddens(digits[:2])
    with pytest.raises(NotFittedError):
        BernoulliRBM()._sample_hiddens(digits[:2], np.random.RandomState(0))
    with pytest.raises(ValueError, match=r"v must have shape \(n, 64\)"):
        fitted._mean_hiddens(digits[:2, :10])
    with pytest.raises(ValueError, match=r"h must have shape \(n, 16\)"):
        fitted._sample_visibles(np.zeros((2, 5)), np.random.RandomState(0))
    with pytest.raises(ValueError, match="rng must be"):
        fitted._sample_hiddens(digits[:2], "seed")


# ---- scikit-learn's fit/score tests, as semantics ----------------------------------------------------------
@pytest.mark.parametrize("container", [sp.csc_matrix, sp.csc_array])
def test_fit_gibbs_dense_and_sparse_agree(container):  # scikit-learn's test_fit_gibbs
    # scikit-learn pins components_ to its own random stream; what it asserts beyond that is
    # that sparse and dense data give the same model from the same RandomState, and that one
    # Gibbs step returns the visible layer's shape.
    X = np.array([[0.0], [1.0]])
    dense = BernoulliRBM(n_components=2, batch_size=2, n_iter=42, random_state=np.random.RandomState(42)).fit(X)
    sparse = BernoulliRBM(n_components=2, batch_size=2, n_iter=42,
                          random_state=np.random.RandomState(42)).fit(container(X))
    np.testing.assert_array_equal(dense.components_, sparse.components_)
    np.testing.assert_array_equal(dense.intercept_visible_, sparse.intercept_visible_)
    # one feature with mean 0.5: weights and visible bias random-walk near 0 (200 seeds: at most
    # 0.17 and 0.35), far from what a sign error in the updates would give after 42 passes
    assert np.abs(dense.components_).max() < 0.5
    assert abs(dense.intercept_visible_[0]) < 1.0
    step = dense.gibbs(X)
    assert step.shape == X.shape and step.dtype == bool


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csr_array])
def test_small_sparse(container, digits):  # scikit-learn's test_small_sparse
    rbm = BernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(container(digits[:4]))
    assert rbm.components_.shape == (8, 64) and np.isfinite(rbm.components_).all()


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array])
def test_small_sparse_partial_fit(container, digits):  # scikit-learn's test_small_sparse_partial_fit
    X = digits[:100]
    a = BernoulliRBM(n_components=64, learning_rate=0.1, batch_size=10, random_state=9).partial_fit(container(X))
    b = BernoulliRBM(n_components=64, learning_rate=0.1, batch_size=10, random_state=9).partial_fit(X)
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-12)
    np.testing.assert_allclose(a.score_samples(X), b.score_samples(X), rtol=1e-10)


@pytest.mark.parametrize("container", [sp.lil_matrix, sp.lil_array])
def test_score_samples_unclipped_and_sparse(container):  # scikit-learn's test_score_samples
    X = np.vstack([np.zeros(1000), np.ones(1000)])
    rbm = BernoulliRBM(n_components=10, batch_size=2, n_iter=10, random_state=np.random.RandomState(42)).fit(X)
    # pseudo-likelihood of 1000 units, none clipped: far below what a clipped log would allow
    assert (rbm.score_samples(X) < -300).all()
    np.testing.assert_allclose(rbm.score_samples(container(X)), rbm.score_samples(X), rtol=1e-12)
    with warnings.catch_warnings():  # huge values (#2785 in scikit-learn): finite, no warning
        warnings.simplefilter("error")
        assert np.isfinite(rbm.score_samples([np.arange(1000) * 100.0])).all()
        assert np.isfinite(rbm._free_energy([np.arange(1000) * 100.0])).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_helpers_keep_the_fitted_dtype(digits, dtype):
    X = digits[:30].astype(dtype)
    rbm = BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(X)
    assert rbm._mean_hiddens(X).dtype == dtype
    assert rbm._free_energy(X).dtype == dtype
    assert rbm.transform(X).dtype == dtype


# ---- parameter errors: scikit-learn's InvalidParameterError, naming the parameter ---------------------
BAD_COMMON = [
    ("n_components", 0), ("n_components", 2.5), ("n_components", 2**40), ("n_components", True),
    ("learning_rate", 0.0), ("learning_rate", np.inf), ("learning_rate", "fast"),
    ("batch_size", 0), ("batch_size", 2**40), ("n_iter", -1), ("verbose", -1),
    ("random_state", -1), ("random_state", "a"), ("cd_k", 0), ("cd_k", 2**40), ("n_chains", 0),
    ("momentum", 1.0), ("momentum", np.nan), ("weight_decay", -0.1), ("weight_decay", np.inf),
    ("persistent", "yes"), ("dtype", "int32"), ("dtype", "no such dtype"), ("progress", "bar"),
]


@pytest.mark.parametrize("name, value", BAD_COMMON + [
    ("device", "tpu"), ("device", "cuda:x"), ("n_temperatures", 0), ("min_beta", 1.0)])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_bernoulli_parameter_errors_are_invalid_parameter_errors(digits, name, value, method):
    with pytest.raises(InvalidParameterError, match=name):
        getattr(BernoulliRBM(**{name: value}), method)(digits[:10])


@pytest.mark.parametrize("name, value", BAD_COMMON + [("learn_sigma", "no")])
def test_gaussian_parameter_errors_are_invalid_parameter_errors(name, value):
    X = np.random.default_rng(0).standard_normal((10, 4))
    with pytest.raises(InvalidParameterError, match=name):
        GaussianBernoulliRBM(**{name: value}).fit(X)


@pytest.mark.parametrize("params, match", [
    (dict(hidden_layer_sizes=()), "hidden_layer_sizes"),
    (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes"),
    (dict(learning_rate=[0.1]), "learning_rate"),
    (dict(n_iter=[1, -1]), r"n_iter\[1\]"),
    (dict(batch_size=0), "batch_size"),
    (dict(cd_k=0), "cd_k"),
    (dict(momentum=1.0), "momentum"),
    (dict(dtype="int32"), "dtype"),
    (dict(random_state=-1), "random_state"),
    (dict(init_rbms="rbm"), "init_rbms"),
])
def test_dbn_parameter_errors_are_invalid_parameter_errors(digits, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        DBN(**{"hidden_layer_sizes": (4, 2), "n_iter": 1, **params}).fit(digits[:10])


def test_dbn_layer_errors_name_the_dbn(digits):
    with pytest.raises(InvalidParameterError, match="'cd_k' parameter of DBN"):
        DBN((4,), cd_k=0).fit(digits[:10])


def test_constraint_table_covers_every_parameter():
    for cls in (BernoulliRBM, GaussianBernoulliRBM):
        assert set(cls._parameter_constraints) == set(cls().get_params())
    # scikit-learn's six parameters carry scikit-learn's own constraints
    for name in SkBernoulliRBM._parameter_constraints:
        assert BernoulliRBM._parameter_constraints[name] == SkBernoulliRBM._parameter_constraints[name] or \
            [str(c) for c in BernoulliRBM._parameter_constraints[name]] == \
            [str(c) for c in SkBernoulliRBM._parameter_constraints[name]]


@pytest.mark.parametrize("estimator", [BernoulliRBM(n_components=3, n_iter=1),
                                       GaussianBernoulliRBM(n_components=3, n_iter=1)], ids=lambda e: type(e).__name__)
def test_scikit_learns_own_parameter_validation_check(estimator):
    # every constrained parameter, given a value of a wrong type or out of range, raises
    # InvalidParameterError with scikit-learn's "The 'name' parameter of Est must be ..." message
    from sklearn.utils.estimator_checks import check_param_validation

    check_param_validation(type(estimator).__name__, estimator)


def test_values_scikit_learn_accepts_still_work(digits):
    X = digits[:10]
    for params in (dict(dtype="f4"), dict(dtype=np.float64), dict(device="cpu"), dict(device="CPU"),
                   dict(n_chains=None, verbose=False, random_state=np.random.RandomState(0)),
                   dict(persistent=np.bool_(False), n_components=np.int64(3), learning_rate=np.float32(0.05))):
        BernoulliRBM(n_iter=1, **params).fit(X)


def test_fastgen_limits_hold_when_scikit_learn_validation_is_skipped(digits):
    # skip_parameter_validation turns off scikit-learn's table only; the 32-bit extents of the
    # compiled loops are always checked
    with config_context(skip_parameter_validation=True):
        with pytest.raises(InvalidParameterError, match="n_components must be at most 2147483647"):
            BernoulliRBM(n_components=2**40).fit(digits[:10])
        with pytest.raises(InvalidParameterError, match="learning_rate"):
            BernoulliRBM(learning_rate=-1.0).fit(digits[:10])


# ---- the [0, 1] warning -------------------------------------------------------------------------------------
def test_rounding_outside_unit_interval_does_not_warn(digits):
    X = digits[:50].copy()
    X[0, 0], X[1, 1] = -1e-17, 1 + 2e-16                      # MinMaxScaler's rounding
    X32 = digits[:50].astype(np.float32)
    X32[0, 0] = np.nextafter(np.float32(1), np.float32(2))    # 1 + 1.2e-7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(X).partial_fit(X)
        BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(X32)
        BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(sp.csr_matrix(X))
    X[2, 2] = 1 + 1e-3                                        # a real excursion still warns
    with pytest.warns(UserWarning, match=r"values in \[0, 1\].*max 1.001"):
        BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(X)
    with pytest.warns(UserWarning, match=r"values in \[0, 1\]"):
        BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(sp.csr_matrix(-X))


def test_minmax_scaler_grid_search_is_silent():
    X = load_digits().data
    cv = KFold(3, shuffle=True, random_state=0)
    # the held-out folds really do leave [0, 1] (MinMaxScaler fitted on the other folds) ...
    train, test = next(cv.split(X))
    held_out = MinMaxScaler().fit(X[train]).transform(X[test])
    assert held_out.max() > 1
    pipeline = Pipeline([("scale", MinMaxScaler()),
                         ("rbm", BernoulliRBM(n_components=8, n_iter=2, batch_size=20, random_state=0))])
    search = GridSearchCV(pipeline, {"rbm__learning_rate": [0.05, 0.1]}, cv=cv,
                          scoring=lambda est, X, y=None: est.score_samples(X).mean(), error_score="raise")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search.fit(X)
    # ... and neither fitting, transforming nor scoring them warns (scikit-learn's RBM does not)
    assert [str(w.message) for w in caught] == []
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


# ---- dir(fastgen) -------------------------------------------------------------------------------------
def test_dir_lists_the_lazy_names_without_importing_them():
    code = ("import sys, fastgen; names = dir(fastgen); "
            "assert 'fastgen.sklearn' not in sys.modules, 'dir imported fastgen.sklearn'; "
            "print(' '.join(names))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    names = result.stdout.split()
    for name in ("BernoulliRBM", "GaussianBernoulliRBM", "DBN", "RBM", "ContrastiveDivergence",
                 "ops", "models", "Generator", "__version__"):
        assert name in names
    assert names == sorted(names)
    assert set(fastgen.__all__) <= set(dir(fastgen))
