"""fastgen.sklearn.GaussianBernoulliRBM: the scikit-learn contract, determinism, partial_fit,
scores against the model and the reference, sampling, the standardisation warning, learning
sigma on raw data, quality, and bad input."""
import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastgen
import reference as ref
from fastgen.models.gbrbm import GaussianRBM, standardize
from fastgen.sklearn import GaussianBernoulliRBM

DTYPES = [np.float32, np.float64]


def normal(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def fitted_params(est):
    return est.components_, est.intercept_visible_, est.intercept_hidden_, est.log_sigma_


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(X))
    return X[perm], y[perm]


# ---- the scikit-learn estimator contract ----------------------------------------------------------
@parametrize_with_checks([GaussianBernoulliRBM(n_iter=2)])
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        # the checks feed data that is not standardised; the warning is the documented answer
        warnings.filterwarnings("ignore", message="X does not look standardised", category=UserWarning)
        check(estimator)


def test_defaults():
    params = GaussianBernoulliRBM().get_params()
    assert params == {"n_components": 256, "learning_rate": 0.005, "batch_size": 10, "n_iter": 10, "verbose": 0,
                      "random_state": None, "cd_k": 1, "persistent": True, "n_chains": None, "momentum": 0.0,
                      "weight_decay": 0.0, "learn_sigma": False, "dtype": None, "progress": False}
    assert params["learning_rate"] < fastgen.BernoulliRBM().learning_rate


@pytest.mark.parametrize("dtype", DTYPES)
def test_fit_transform_shapes_attributes_and_dtype(dtype):
    X = normal((57, 12), dtype=dtype)
    est = GaussianBernoulliRBM(n_components=5, n_iter=2, random_state=0).fit(X)
    assert est.components_.shape == (5, 12) and est.intercept_hidden_.shape == (5,)
    assert est.intercept_visible_.shape == est.sigma_.shape == est.log_sigma_.shape == (12,)
    assert est.h_samples_.shape == (10, 5) and set(np.unique(est.h_samples_)) <= {0.0, 1.0}
    assert est.n_features_in_ == 12
    np.testing.assert_array_equal(est.sigma_, 1.0)  # not learned
    H = est.transform(X)
    assert H.shape == (57, 5) and ((H >= 0) & (H <= 1)).all()
    for a in (*fitted_params(est), est.sigma_, est.h_samples_, H, est.score_samples(X), est.fit_transform(X),
              est.gibbs(X), est.sample(3, n_steps=2)):
        assert a.dtype == dtype
    assert est.log_likelihood(X).dtype == np.float64
    np.testing.assert_array_equal(est.get_feature_names_out(), [f"gaussianbernoullirbm{i}" for i in range(5)])
    forced = GaussianBernoulliRBM(n_components=3, n_iter=1, dtype="float32").fit(X.astype(np.float64))
    assert forced.components_.dtype == np.float32 and forced.transform(X).dtype == np.float32
    assert GaussianBernoulliRBM(n_components=3, n_iter=1).fit(np.round(X * 3).astype(np.int64) / 3).components_.dtype == np.float64


def test_initialisation_from_the_data():
    X = normal((200, 6), seed=1) * 0.9 + 0.1  # standardised enough: no warning
    est = GaussianBernoulliRBM(n_components=4, n_iter=0, random_state=0).fit(X)
    np.testing.assert_allclose(est.intercept_visible_, X.mean(axis=0), rtol=1e-12)
    assert 0 < np.abs(est.components_).max() < 0.05
    np.testing.assert_allclose(est.transform(np.repeat(X.mean(axis=0)[None], 2, 0)), 0.5, rtol=1e-14)  # c = -W mean
    np.testing.assert_array_equal(est.sigma_, 1.0)
    raw = X * [1, 2, 3, 4, 5, 6] + 10
    raw[:, 2] = 4.0  # a constant feature gets sigma 1
    est = GaussianBernoulliRBM(n_components=4, n_iter=0, random_state=0, learn_sigma=True).fit(raw)
    expected = raw.std(axis=0)
    expected[2] = 1.0
    np.testing.assert_allclose(est.sigma_, expected, rtol=1e-12)


def test_random_state_determinism():
    X = normal((50, 8), seed=2)
    a = GaussianBernoulliRBM(n_components=6, n_iter=3, random_state=3).fit(X)
    b = GaussianBernoulliRBM(n_components=6, n_iter=3, random_state=3).fit(X)
    c = GaussianBernoulliRBM(n_components=6, n_iter=3, random_state=4).fit(X)
    d = GaussianBernoulliRBM(n_components=6, n_iter=3, random_state=np.random.RandomState(3)).fit(X)
    for name in ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.components_, d.components_)
    assert not np.allclose(a.components_, c.components_)
    e = GaussianBernoulliRBM(n_components=6, n_iter=3).fit(X)
    f = GaussianBernoulliRBM(n_components=6, n_iter=3).fit(X)
    assert not np.array_equal(e.components_, f.components_)  # random_state=None: fresh seeds
    np.testing.assert_array_equal(a.fit(X).components_, b.components_)  # refitting restarts
    np.testing.assert_array_equal(a.sample(4, n_steps=5), b.sample(4, n_steps=5))


def test_fit_is_the_model_trainer_on_centred_data():
    from fastgen.models.gbrbm import GaussianContrastiveDivergence
    from fastgen.sklearn._params import generator_from

    X = normal((45, 7), seed=3) * 3 + 5
    est = GaussianBernoulliRBM(n_components=4, n_iter=3, batch_size=8, momentum=0.3, weight_decay=0.01,
                               learn_sigma=True, random_state=5).fit(X)
    gen = generator_from(5)
    mean, std = X.mean(axis=0), X.std(axis=0)
    m = GaussianRBM.initialize(7, 4, generator=gen, sigma=std)
    m.weights *= std
    trainer = GaussianContrastiveDivergence(learning_rate=0.005, momentum=0.3, weight_decay=0.01, learn_sigma=True,
                                            n_chains=8, min_sigma=0.01 * std)
    for _ in range(3):
        trainer.run(m, X - mean, 8, gen)
    np.testing.assert_array_equal(est.components_, m.weights)
    np.testing.assert_array_equal(est.log_sigma_, m.log_sigma)
    np.testing.assert_array_equal(est.h_samples_, trainer.chains)
    # the same model expressed for uncentred data: b + mean, c - W (mean / sigma^2)
    np.testing.assert_allclose(est.intercept_visible_, m.visible_bias + mean, rtol=1e-13)
    np.testing.assert_allclose(est.intercept_hidden_, m.hidden_bias - m.weights @ (mean / m.sigma ** 2), rtol=1e-12)
    np.testing.assert_allclose(est.score_samples(X), -m.free_energy(X - mean), rtol=1e-12)
    np.testing.assert_allclose(est.log_likelihood(X), m.log_likelihood(X - mean), rtol=1e-12)


def test_partial_fit():
    X = normal((25, 6), seed=1)
    est = GaussianBernoulliRBM(n_components=5, random_state=0)
    est.partial_fit(X)
    assert est.components_.shape == (5, 6) and est.h_samples_.shape == (10, 5)
    first = est.components_.copy()
    est.partial_fit(X[:7])
    assert not np.allclose(first, est.components_)
    # one partial_fit on X is one update with X as the batch: fit with one epoch of one batch
    one = GaussianBernoulliRBM(n_components=5, batch_size=25, random_state=0).partial_fit(X)
    fitted = GaussianBernoulliRBM(n_components=5, batch_size=25, n_iter=1, random_state=0).fit(X)
    for a, b in zip(fitted_params(one), fitted_params(fitted)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one.h_samples_, fitted.h_samples_)
    twin = GaussianBernoulliRBM(n_components=5, random_state=0)
    twin.partial_fit(X)
    twin.partial_fit(X[:7])
    np.testing.assert_array_equal(twin.components_, est.components_)
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(normal((4, 7)))


# ---- scores ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_score_samples_is_the_negative_free_energy(dtype):
    X = normal((60, 5), seed=4, dtype=dtype)
    est = GaussianBernoulliRBM(n_components=6, n_iter=5, learning_rate=0.02, random_state=0, learn_sigma=True).fit(X)
    s = est.score_samples(X)
    assert s.shape == (60,) and s.dtype == dtype
    np.testing.assert_allclose(s, -ref.gb_free_energy(X, *fitted_params(est)),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(s, est.score_samples(X))
    # log p = -F - log Z: the two scores differ by one constant, exact log Z
    ll = est.log_likelihood(X)
    log_z = ref.gb_mixture(*fitted_params(est)).log_z
    np.testing.assert_allclose(s.astype(np.float64) - ll, log_z, rtol=1e-5 if dtype == np.float32 else 1e-10)
    np.testing.assert_allclose(ll, -ref.gb_free_energy(X, *fitted_params(est)) - log_z, rtol=1e-5 if dtype == np.float32 else 1e-11)


def test_log_likelihood_refuses_large_models():
    est = GaussianBernoulliRBM(n_components=21, n_iter=0, random_state=0).fit(normal((20, 3)))
    with pytest.raises(ValueError, match="n_hidden <= 20"):
        est.log_likelihood(normal((2, 3)))
    assert est.score_samples(normal((2, 3))).shape == (2,)  # any size


# ---- sampling ----------------------------------------------------------------------------------------
def test_gibbs_and_sample():
    X = normal((30, 6), seed=2)
    est = GaussianBernoulliRBM(n_components=5, n_iter=2, random_state=0).fit(X)
    twin = GaussianBernoulliRBM(n_components=5, n_iter=2, random_state=0).fit(X)
    v1, v2 = est.gibbs(X), est.gibbs(X)
    assert v1.shape == X.shape and v1.dtype == X.dtype and not np.array_equal(v1, v2)
    np.testing.assert_array_equal(twin.gibbs(X), v1)
    samples = est.sample(7, n_steps=3)
    assert samples.shape == (7, 6) and np.isfinite(samples).all()
    assert est.sample().shape == (1, 6)
    # a model with W = 0 samples N(b, sigma^2) exactly
    est.components_[:] = 0
    est.intercept_visible_[:] = np.arange(6.0)
    est.log_sigma_[:] = np.log(0.5)
    many = est.sample(20_000, n_steps=1)
    assert (np.abs(many.mean(axis=0) - np.arange(6.0)) < 5 * 0.5 / np.sqrt(20_000)).all()
    assert (np.abs(many.std(axis=0) / 0.5 - 1) < 5 / np.sqrt(2 * 20_000)).all()
    with pytest.raises(ValueError, match="n_samples"):
        est.sample(0)
    with pytest.raises(ValueError, match="n_steps"):
        est.sample(2, n_steps=-1)


def test_pickle_round_trip():
    X = normal((40, 6), seed=3)
    est = GaussianBernoulliRBM(n_components=6, n_iter=2, random_state=0, learn_sigma=True).fit(X)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.sigma_, est.sigma_)
    np.testing.assert_array_equal(clone.transform(X), est.transform(X))
    np.testing.assert_array_equal(clone.gibbs(X), est.gibbs(X))  # the stream resumes exactly
    clone.partial_fit(X)
    est.partial_fit(X)
    np.testing.assert_array_equal(clone.components_, est.components_)


def test_verbose_prints_the_reconstruction_error(capsys):
    X = normal((30, 5))
    est = GaussianBernoulliRBM(n_components=4, n_iter=3, verbose=1, random_state=0).fit(X)
    lines = capsys.readouterr().out.strip().splitlines()
    pattern = re.compile(r"^\[GaussianBernoulliRBM\] Iteration (\d+), reconstruction error = (\d+\.\d{4}), time = \d+\.\d\ds$")
    assert len(lines) == 3 and all(pattern.match(line) for line in lines), lines
    assert float(pattern.match(lines[-1]).group(2)) == pytest.approx(est._model().reconstruction_error(X), abs=1e-4)
    GaussianBernoulliRBM(n_components=4, n_iter=3, progress=True, random_state=0).fit(X)
    captured = capsys.readouterr()
    assert "GaussianBernoulliRBM" in captured.err and captured.out == ""


# ---- the standardisation warning ----------------------------------------------------------------------
def test_data_that_is_not_standardised_warns_when_sigma_is_fixed():
    X = normal((100, 5)) * 4 + 3
    with pytest.warns(UserWarning, match="X does not look standardised"):
        est = GaussianBernoulliRBM(n_components=3, n_iter=1, random_state=0).fit(X)
    with pytest.warns(UserWarning, match="X does not look standardised"):
        est.partial_fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z = standardize(X)[0]
        est = GaussianBernoulliRBM(n_components=3, n_iter=1, random_state=0).fit(Z)
        est.partial_fit(Z[:3])
        est.transform(X)  # only the training data is checked
        GaussianBernoulliRBM(n_components=3, n_iter=1, random_state=0, learn_sigma=True).fit(X)  # sigma is learned


def test_learn_sigma_fits_raw_data_in_its_own_units():
    # two clusters in raw units (feature scales 0.05 and 200): learning sigma, the estimator
    # finds the within-cluster standard deviations without any standardisation
    rng = np.random.default_rng(1)
    scale = np.array([0.05, 200.0])
    centres = np.array([[1.2, -0.9], [-1.2, 0.9]])
    X = (centres[rng.integers(0, 2, 2000)] + rng.normal(0, [0.4, 0.5], (2000, 2))) * scale + [3.0, -500.0]
    est = GaussianBernoulliRBM(n_components=1, learning_rate=0.01, batch_size=20, n_iter=60, n_chains=100,
                               learn_sigma=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.fit(X)
    print(f"sigma {est.sigma_} (within-cluster {np.array([0.4, 0.5]) * scale})")
    np.testing.assert_allclose(est.sigma_, [0.4 * 0.05, 0.5 * 200.0], rtol=0.15)
    assert est.log_likelihood(X).mean() > -2.1 - np.log(scale).sum()


# ---- quality -----------------------------------------------------------------------------------------
def test_held_out_exact_log_likelihood_on_standardised_digits_improves(digits):
    X = digits[0]
    Z, mean, std = standardize(X[:1500])
    test = (X[1500:] - mean) / std
    untrained = GaussianBernoulliRBM(n_components=16, n_iter=0, random_state=0).fit(Z)
    trained = GaussianBernoulliRBM(n_components=16, n_iter=10, random_state=0).fit(Z)
    before, after = untrained.log_likelihood(test).mean(), trained.log_likelihood(test).mean()
    print(f"digits, 16 hidden units, held-out exact log-likelihood: untrained {before:.2f}, trained {after:.2f}")
    assert after > before + 4  # measured: 5.4 (10 epochs at the default rate)


def test_features_of_a_default_sized_model_classify_digits(digits):
    from sklearn.linear_model import LogisticRegression

    X, y = digits
    Z, mean, std = standardize(X[:1200])
    test = (X[1200:] - mean) / std
    est = GaussianBernoulliRBM(n_components=256, n_iter=10, random_state=0).fit(Z)
    assert np.isfinite(est.components_).all()
    clf = LogisticRegression(max_iter=3000).fit(est.transform(Z), y[:1200])
    accuracy = clf.score(est.transform(test), y[1200:])
    print(f"GB-RBM features + logistic regression on digits: held-out accuracy {accuracy:.3f}")
    assert accuracy > 0.85


# ---- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params,match",
    [
        ({"n_components": 0}, "n_components"),
        ({"n_components": 2.5}, "n_components"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1}, "learning_rate"),
        ({"learning_rate": np.inf}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"n_iter": -1}, "n_iter"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.5}, "momentum"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"cd_k": 0}, "cd_k"),
        ({"n_chains": 0}, "n_chains"),
        ({"persistent": "yes"}, "persistent"),
        ({"learn_sigma": "no"}, "learn_sigma"),
        ({"dtype": "int32"}, "dtype"),
        ({"dtype": "not-a-dtype"}, "dtype"),
    ],
)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_bad_hyper_parameters_raise_naming_the_parameter(params, match, method):
    with pytest.raises(ValueError, match=match):
        getattr(GaussianBernoulliRBM(**params), method)(normal((4, 3)))


@pytest.mark.parametrize(
    "X,match",
    [
        (np.array([[np.nan, 0.0], [1.0, 2.0]]), "Input X contains NaN"),
        (np.array([[np.inf, 0.0], [1.0, 2.0]]), "Input X contains infinity"),
        (np.zeros(5), "Expected 2D array"),
        (np.zeros((2, 3, 2)), "dim 3"),
        (np.zeros((0, 5)), "0 sample"),
        (np.zeros((3, 0)), "0 feature"),
        (np.array([["a", "b"]]), "could not convert string to float"),
    ],
)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_bad_data_in_fit(X, match, method):
    with pytest.raises(ValueError, match=match):
        getattr(GaussianBernoulliRBM(n_components=3, n_iter=1), method)(X)


@pytest.mark.parametrize("method", ["transform", "score_samples", "log_likelihood", "gibbs"])
def test_bad_data_after_fit(method):
    est = GaussianBernoulliRBM(n_components=3, n_iter=1, random_state=0).fit(normal((10, 5)))
    with pytest.raises(ValueError, match="X has 6 features, but GaussianBernoulliRBM is expecting 5 features"):
        getattr(est, method)(normal((2, 6)))
    bad = normal((2, 5))
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        getattr(est, method)(bad)


@pytest.mark.parametrize("method", ["transform", "score_samples", "log_likelihood", "gibbs", "sample"])
def test_methods_before_fit_raise_not_fitted(method):
    from sklearn.exceptions import NotFittedError

    est = GaussianBernoulliRBM()
    with pytest.raises(NotFittedError, match="not fitted"):
        est.sample(2) if method == "sample" else getattr(est, method)(normal((2, 5)))
    assert not hasattr(est, "sigma_")


def test_divergence_raises_naming_the_learning_rate():
    X = normal((200, 8))
    with pytest.raises(FloatingPointError, match="learning_rate"), np.errstate(all="ignore"):
        GaussianBernoulliRBM(n_components=256, learning_rate=1.0, n_iter=5, random_state=0).fit(X)


def test_input_array_is_never_modified():
    X = normal((30, 6))
    X32 = X.astype(np.float32)
    copies = (X.copy(), X32.copy())
    for data in (X, X32):
        est = GaussianBernoulliRBM(n_components=3, n_iter=2, random_state=0).fit(data)
        est.transform(data)
        est.score_samples(data)
        est.partial_fit(data)
        est.gibbs(data)
        est.fit_transform(data)
    np.testing.assert_array_equal(X, copies[0])
    np.testing.assert_array_equal(X32, copies[1])
