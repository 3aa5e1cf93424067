"""Regression tests for what a careful user found broken (issue: fork-safe, NaN-honest,
divergence-checked, safe to load, atomic to save). Process and thread safety are in
test_processes.py, the command line and file formats in the CLI and serialization tests."""
from __future__ import annotations

import warnings

import joblib
import numpy as np
import pytest

from fastgen import BernoulliRBM, GaussianBernoulliRBM
from fastgen.sklearn import DBN
from fastgen.models.rbm import RBM
from fastgen.ops import gibbs, sample_categorical


def binary_data(rows=200, cols=30, seed=0):
    return (np.random.default_rng(seed).random((rows, cols)) < 0.4).astype(np.float64)


def fitted_rbm(dtype=np.float64, **params):
    X = binary_data().astype(dtype)
    settings = dict(n_components=12, n_iter=3, batch_size=10, random_state=0)
    settings.update(params)
    return BernoulliRBM(**settings).fit(X), X


# ---- NaN never becomes a number -----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_weights_give_nan_not_numbers(dtype):
    rbm, X = fitted_rbm(dtype)
    W = rbm.components_.copy()
    W[3, :] = np.nan  # hidden unit 3 touches every visible unit
    model = RBM(W, rbm.intercept_visible_.copy(), rbm.intercept_hidden_.copy())
    h = model.hidden_probs(X)
    assert np.isnan(h[:, 3]).all() and np.isfinite(np.delete(h, 3, axis=1)).all()
    assert np.isnan(model.visible_probs(np.ones((4, 12), dtype))).all()
    assert np.isnan(model.pseudo_likelihood(X)).all()
    assert np.isnan(model.free_energy(X)).all()


@pytest.mark.parametrize("method", ["transform", "score_samples", "gibbs", "partial_fit", "log_likelihood"])
def test_estimator_refuses_nan_parameters(method):
    rbm, X = fitted_rbm()
    rbm.components_[0, 0] = np.nan
    with pytest.raises(ValueError, match="components_ contains NaN"):
        if method == "log_likelihood":
            rbm.log_likelihood(X, log_z=1.0)
        else:
            getattr(rbm, method)(X)


def test_gaussian_estimator_refuses_nan_parameters():
    Z = np.random.default_rng(0).normal(size=(100, 6))
    gb = GaussianBernoulliRBM(n_components=4, n_iter=2, random_state=0).fit(Z)
    gb.log_sigma_[1] = np.nan
    for method in ("transform", "score_samples", "partial_fit"):
        with pytest.raises(ValueError, match="log_sigma_ contains NaN"):
            getattr(gb, method)(Z)


# ---- divergence stops with the last finite parameters ----------------------------------------------
@pytest.mark.parametrize("params", [
    dict(persistent=True),
    dict(persistent=False),
    dict(persistent=True, momentum=0.5),
    dict(persistent=True, n_temperatures=3),
], ids=["pcd", "cd", "momentum", "tempering"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_diverging_fit_raises_and_keeps_finite_parameters(params, dtype):
    # weight_decay > 2 (1 + momentum) / learning_rate: every batch multiplies the weights by up
    # to |1 - 0.1 * 60| = 5
    rbm = BernoulliRBM(n_components=8, learning_rate=0.1, weight_decay=60.0, n_iter=20, batch_size=10,
                       random_state=0, **params)
    with pytest.raises(FloatingPointError, match="learning_rate=0.1"):
        rbm.fit(binary_data().astype(dtype))
    for a in (rbm.components_, rbm.intercept_hidden_, rbm.intercept_visible_):
        assert np.isfinite(a).all() and np.abs(a).max() <= 1e6


def test_diverging_partial_fit_leaves_the_model_as_it_was():
    rbm, X = fitted_rbm()
    rbm.set_params(learning_rate=0.1, weight_decay=60.0)  # weights x5 a call: 1e6 within ~10 calls
    state = None
    with pytest.raises(FloatingPointError):
        for _ in range(50):
            state = [a.copy() for a in (rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_,
                                        rbm.h_samples_)]
            rbm.partial_fit(X)
    # the failing call is undone entirely: the model is as the last successful call left it
    for a, b in zip((rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_, rbm.h_samples_), state):
        np.testing.assert_array_equal(a, b)


def first_failing_n_iter(make, X, limit=60):
    """The smallest n_iter whose fit raises FloatingPointError (the pass that diverges)."""
    for n_iter in range(1, limit):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                make(n_iter).fit(X)
        except FloatingPointError:
            return n_iter
    raise AssertionError("never diverged")


@pytest.mark.parametrize("kind", ["bernoulli", "tempering", "gaussian"])
def test_diverged_fit_keeps_the_parameters_of_the_pass_before(kind):
    if kind == "gaussian":
        X = np.random.default_rng(0).normal(size=(200, 6))
        make = lambda n: GaussianBernoulliRBM(n_components=4, learning_rate=0.1, weight_decay=25.0,  # noqa: E731
                                              batch_size=200, n_iter=n, random_state=0)
        names = ("components_", "intercept_visible_", "intercept_hidden_", "log_sigma_", "h_samples_")
    else:
        X = binary_data()
        extra = dict(n_temperatures=3) if kind == "tempering" else {}
        make = lambda n: BernoulliRBM(n_components=8, learning_rate=0.1, weight_decay=40.0,  # noqa: E731
                                      batch_size=200, n_iter=n, random_state=0, **extra)
        names = ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_")
    failing = first_failing_n_iter(make, X)
    assert failing > 2  # the parameters below are trained ones, not the initial weights
    diverged = make(failing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FloatingPointError):
            diverged.fit(X)
        good = make(failing - 1).fit(X)
    for name in names:
        np.testing.assert_array_equal(getattr(diverged, name), getattr(good, name), err_msg=name)
    if kind == "tempering":  # the undone pass's swaps are not counted
        np.testing.assert_array_equal(diverged.tempering_.swap_attempts, good.tempering_.swap_attempts)
        assert diverged.tempering_.steps == good.tempering_.steps


def test_undone_pass_restores_parameters_bitwise():
    rbm, X = fitted_rbm()
    before = [a.copy() for a in (rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_, rbm.h_samples_)]
    rbm.set_params(learning_rate=0.1, weight_decay=1e12)
    with pytest.raises(FloatingPointError):
        rbm.partial_fit(X)
    after = (rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_, rbm.h_samples_)
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)


def test_diverging_dbn_pretraining_and_fine_tuning_raise():
    X = binary_data()
    with pytest.raises(FloatingPointError):
        DBN(hidden_layer_sizes=(8, 6), learning_rate=0.1, weight_decay=30.0, n_iter=10, random_state=0).fit(X)
    dbn = DBN(hidden_layer_sizes=(8, 6), n_iter=2, random_state=0).fit(X)
    with pytest.raises(FloatingPointError, match="fine_tune diverged"):
        dbn.fine_tune(X, n_iter=5, learning_rate=1e300)
    params = [*dbn.recognition_weights_, *dbn.generative_weights_, dbn.rbms_[-1].components_]
    assert all(np.isfinite(a).all() and np.abs(a).max() <= 1e6 for a in params)


# ---- sample_categorical draws softmax(logits / T) ------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_categorical_never_draws_a_category_of_negligible_probability(dtype):
    # one category at 0 and 50,000 at -100: each of those has probability e^-100 / (1 + ...);
    # an infinite key from a uniform of exactly 0 picked one about once in 2^24 / 50,000 draws
    logits = np.full((200, 50001), -100.0, dtype)
    logits[:, 7] = 0.0
    for seed in range(30):
        draws = sample_categorical(logits, generator=seed)
        assert (draws == 7).all()


def test_reference_open_uniforms_never_reach_zero_or_one():
    # the documented mapping the kernels are tested against (test_categorical.py matches them
    # draw for draw), at the words that gave 0 and the largest value before
    import reference as ref

    words = np.array([0, 1, 2**31, 2**32 - 1], np.uint32)
    for dtype in (np.float32, np.float64):
        u = ref.uniform_open_from_words(words, dtype)
        assert (u > 0).all() and (u < 1).all() and (1 - u > 0).all()


# ---- read-only (memory-mapped) models --------------------------------------------------------------
def test_model_loaded_read_only_scores_samples_and_trains(tmp_path):
    rbm, X = fitted_rbm()
    path = tmp_path / "rbm.joblib"
    joblib.dump(rbm, path)
    loaded = joblib.load(path, mmap_mode="r")
    assert not loaded.components_.flags.writeable  # the case that failed
    np.testing.assert_array_equal(loaded.score_samples(X), rbm.score_samples(X))
    np.testing.assert_array_equal(loaded.transform(X), rbm.transform(X))
    np.testing.assert_array_equal(
        loaded.log_partition(method="ais", n_chains=8, n_betas=50, random_state=0),
        rbm.log_partition(method="ais", n_chains=8, n_betas=50, random_state=0))
    np.testing.assert_array_equal(loaded.gibbs(X), rbm.gibbs(X))  # both streams advance alike
    on_disk = joblib.load(path).components_.copy()
    loaded.partial_fit(X)
    rbm.partial_fit(X)
    np.testing.assert_array_equal(loaded.components_, rbm.components_)
    np.testing.assert_array_equal(joblib.load(path).components_, on_disk)  # the file is untouched


@pytest.mark.parametrize("kind", ["momentum", "tempering", "gaussian", "dbn"])
def test_read_only_models_of_every_kind_keep_training(tmp_path, kind):
    X = binary_data()
    if kind == "gaussian":
        X = np.random.default_rng(0).normal(size=(200, 6))
        model = GaussianBernoulliRBM(n_components=4, momentum=0.5, n_iter=2, random_state=0).fit(X)
    elif kind == "dbn":
        model = DBN(hidden_layer_sizes=(8, 6), n_iter=2, random_state=0).fit(X)
        model.fine_tune(X, n_iter=1)
    else:
        extra = dict(n_temperatures=3) if kind == "tempering" else dict(momentum=0.5)
        model = BernoulliRBM(n_components=8, n_iter=2, random_state=0, **extra).fit(X)
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib", mmap_mode="r")
    if kind == "dbn":
        loaded.fine_tune(X, n_iter=1)
        model.fine_tune(X, n_iter=1)
        np.testing.assert_array_equal(loaded.generative_weights_[0], model.generative_weights_[0])
    else:
        loaded.partial_fit(X)
        model.partial_fit(X)
        np.testing.assert_array_equal(loaded.components_, model.components_)


def test_ops_accept_read_only_inputs():
    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.1, (6, 9))
    b, c = np.zeros(9), np.zeros(6)
    v = (rng.random((5, 9)) < 0.5).astype(np.float64)
    expected = gibbs(v, W, b, c, steps=2, generator=3)
    for a in (W, b, c, v):
        a.flags.writeable = False
    np.testing.assert_array_equal(gibbs(v, W, b, c, steps=2, generator=3), expected)


def test_joblib_parallel_scores_with_a_memmapped_model():
    rbm, X = fitted_rbm()
    big = np.repeat(X, 20, axis=0)
    expected = rbm.score_samples(big)
    # max_nbytes=1: joblib memory-maps every array it sends, read-only, the model's included
    parts = joblib.Parallel(n_jobs=2, max_nbytes=1, backend="loky")(
        joblib.delayed(rbm.score_samples)(chunk) for chunk in np.array_split(big, 4))
    np.testing.assert_array_equal(np.concatenate(parts), expected)


# ---- models.RBM checks its arrays ------------------------------------------------------------------
@pytest.mark.parametrize("weights, error, match", [
    ([[0.0, 1.0]], TypeError, "weights must be a NumPy or CuPy array"),
    (np.zeros(3), ValueError, "weights must be 2-D"),
    (np.zeros((2, 3), np.complex128), TypeError, "weights must be float32 or float64"),
    (np.zeros((2, 3), np.int64), TypeError, "weights must be float32 or float64"),
])
def test_rbm_model_refuses_weights_it_cannot_use(weights, error, match):
    with pytest.raises(error, match=match):
        RBM(weights, np.zeros(3), np.zeros(2))


def test_rbm_model_refuses_mismatched_biases():
    with pytest.raises(ValueError, match=r"visible_bias must have shape \(3,\)"):
        RBM(np.zeros((2, 3)), np.zeros(4), np.zeros(2))
    with pytest.raises(TypeError, match="hidden_bias must have the weights' dtype"):
        RBM(np.zeros((2, 3)), np.zeros(3), np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="visible_bias must be a NumPy or CuPy array"):
        RBM(np.zeros((2, 3)), [0.0, 0.0, 0.0], np.zeros(2))


# ---- pictures are written atomically ----------------------------------------------------------------
def test_interrupted_png_write_keeps_the_previous_picture(tmp_path, monkeypatch):
    from PIL import Image

    from fastgen._png import save_image_grid

    path = tmp_path / "samples.png"
    save_image_grid(np.zeros((4, 9)), path, (3, 3))
    before = path.read_bytes()

    def fail_half_way(self, fh, *args, **kwargs):
        fh.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", fail_half_way)
    with pytest.raises(OSError, match="disk full"):
        save_image_grid(np.ones((4, 9)), path, (3, 3))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["samples.png"]  # no temporary left behind


# ---- estimator parameters the compiled loops cannot take -------------------------------------------
@pytest.mark.parametrize("name", ["n_components", "batch_size", "n_chains", "cd_k"])
def test_estimator_refuses_extents_past_32_bits(name):
    with pytest.raises(ValueError, match=f"{name} must be at most 2147483647"):
        BernoulliRBM(**{name: 2**40}).fit(binary_data())


@pytest.mark.parametrize("make", [
    lambda seed: BernoulliRBM(n_components=3, n_iter=1, random_state=seed),
    lambda seed: GaussianBernoulliRBM(n_components=3, n_iter=1, random_state=seed),
    lambda seed: DBN(hidden_layer_sizes=(3,), n_iter=1, random_state=seed),
], ids=["bernoulli", "gaussian", "dbn"])
@pytest.mark.parametrize("seed", [-1, 1.5, "a", 2**40])
def test_bad_random_state_is_named(make, seed):
    with pytest.raises(ValueError, match="random_state must be"):
        make(seed).fit(binary_data())


# ---- Python ints past 2**64 as real parameters -------------------------------------------------------
def test_huge_python_ints_are_numbers_not_numpy_type_errors():
    # np.isfinite(2**70) raises "ufunc 'isfinite' not supported" (found by the fuzz test through
    # conv_transpose2d's negative_slope); float(2**2000) overflows
    from fastgen.ops import sample_categorical, sample_gaussian
    from fastgen.ops.conv import check_slope
    from fastgen.ops.validation import is_finite_real

    assert is_finite_real(2**70) and not is_finite_real(2**2000) and not is_finite_real(True)
    assert check_slope(2**70) == float(2**70)
    assert sample_categorical(np.zeros((2, 3)), temperature=2**70, generator=0).shape == (2,)
    with pytest.raises(ValueError, match="std must be a finite number"):
        sample_gaussian(np.zeros(3), std=2**2000)
    with pytest.raises(ValueError, match="learning_rate"):
        BernoulliRBM(learning_rate=2**2000).fit(binary_data())
    rbm, X = fitted_rbm()
    assert np.isfinite(rbm.log_likelihood(X, log_z=2**70)).all()
    with pytest.raises(ValueError, match="log_z must be a finite real number"):
        rbm.log_likelihood(X, log_z=2**2000)
