"""BernoulliRBM's learning-rate schedules and its log-odds start of the visible biases (issue 32):
the defaults keep scikit-learn's behaviour bit for bit, each schedule gives each pass the rate it
documents, and bad schedules are refused naming the parameter."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils._param_validation import InvalidParameterError

from fastgen import BernoulliRBM
from fastgen.models.schedules import LOG_ODDS_CLIP, learning_rate_for_pass, log_odds_visible_bias


def binary(shape, seed=0, p=0.3):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.float64)


def fitted(**params):
    X = binary((60, 9))
    base = dict(n_components=7, n_iter=4, batch_size=10, random_state=0)
    return BernoulliRBM(**{**base, **params}).fit(X)


def same_fit(a, b):
    return all(getattr(a, k).tobytes() == getattr(b, k).tobytes()
               for k in ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_"))


def test_the_defaults_are_scikit_learns_constant_rate_and_zero_visible_biases():
    default = fitted()
    explicit = fitted(learning_rate_schedule="constant", final_learning_rate=0.5, visible_bias_init="zeros")
    assert same_fit(default, explicit)


def test_linear_gives_each_pass_the_documented_rate():
    rates = []

    def recording(i, n):
        rate = learning_rate_for_pass("linear", 0.1, 0.02, i, n)
        rates.append(rate)
        return rate

    by_name = fitted(learning_rate_schedule="linear", learning_rate=0.1, final_learning_rate=0.02)
    by_callable = fitted(learning_rate_schedule=recording, learning_rate=0.1)
    assert rates == pytest.approx([0.1, 0.08, 0.06, 0.04])
    assert same_fit(by_name, by_callable)
    assert not same_fit(by_name, fitted(learning_rate=0.1))


def test_linear_toward_the_same_rate_is_the_constant_schedule():
    assert same_fit(fitted(learning_rate_schedule="linear", learning_rate=0.05, final_learning_rate=0.05),
                    fitted(learning_rate=0.05))


def test_a_callable_schedule_is_called_once_per_pass_with_the_pass_and_its_count():
    calls = []
    fitted(learning_rate_schedule=lambda i, n: calls.append((i, n)) or 0.05, n_iter=3)
    assert calls == [(0, 3), (1, 3), (2, 3)]


def test_partial_fit_keeps_the_learning_rate():
    X = binary((10, 9), seed=1)
    calls = []
    scheduled = BernoulliRBM(n_components=7, random_state=0, learning_rate=0.07,
                             learning_rate_schedule=lambda i, n: calls.append(i) or 1.0).partial_fit(X)
    plain = BernoulliRBM(n_components=7, random_state=0, learning_rate=0.07).partial_fit(X)
    assert calls == [] and same_fit(scheduled, plain)


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf"), "0.1", None, True])
def test_a_schedule_returning_anything_but_a_positive_number_is_refused(bad):
    with pytest.raises(InvalidParameterError, match="learning_rate_schedule must return a finite number > 0"):
        fitted(learning_rate_schedule=lambda i, n: bad)


@pytest.mark.parametrize("params,name", [
    (dict(learning_rate_schedule="cosine"), "learning_rate_schedule"),
    (dict(learning_rate_schedule=0.1), "learning_rate_schedule"),
    (dict(final_learning_rate=-0.01), "final_learning_rate"),
    (dict(final_learning_rate=float("nan")), "final_learning_rate"),
    (dict(visible_bias_init="data"), "visible_bias_init"),
])
def test_bad_parameters_are_refused_naming_them(params, name):
    with pytest.raises(InvalidParameterError, match=name):
        fitted(**params)


def test_log_odds_start_is_the_clipped_log_odds_of_the_column_means():
    X = binary((50, 6), seed=2, p=0.4)
    X[:, 0] = 0.0   # never on: clipped
    X[:, 1] = 1.0   # always on: clipped
    # one pass at a negligible rate: the visible biases stay at their start to within 1e-9
    model = BernoulliRBM(n_components=4, n_iter=1, random_state=0, visible_bias_init="log_odds",
                         learning_rate_schedule=lambda i, n: 1e-12).fit(X)
    p = np.clip(X.mean(axis=0), LOG_ODDS_CLIP, 1 - LOG_ODDS_CLIP)
    np.testing.assert_allclose(model.intercept_visible_, np.log(p / (1 - p)), atol=1e-9)
    assert model.intercept_visible_[0] == pytest.approx(np.log(LOG_ODDS_CLIP / (1 - LOG_ODDS_CLIP)), abs=1e-9)
    assert model.intercept_visible_[1] == pytest.approx(-model.intercept_visible_[0], abs=1e-9)


def test_log_odds_start_is_the_same_for_sparse_and_float32_data():
    X = binary((40, 8), seed=3)
    dense = BernoulliRBM(n_components=4, n_iter=1, random_state=0, visible_bias_init="log_odds").fit(X)
    sparse = BernoulliRBM(n_components=4, n_iter=1, random_state=0, visible_bias_init="log_odds").fit(
        sp.csr_matrix(X))
    np.testing.assert_allclose(sparse.intercept_visible_, dense.intercept_visible_, rtol=1e-12)
    single = BernoulliRBM(n_components=4, n_iter=1, random_state=0, visible_bias_init="log_odds").fit(
        X.astype(np.float32))
    assert single.intercept_visible_.dtype == np.float32
    np.testing.assert_allclose(single.intercept_visible_, dense.intercept_visible_, rtol=1e-5, atol=1e-5)


def test_log_odds_helper_clips_and_keeps_the_dtype():
    bias = log_odds_visible_bias(np.array([0.0, 5.0, 10.0]), 10, np.float32)
    assert bias.dtype == np.float32
    np.testing.assert_allclose(bias, [np.log(1e-3 / 0.999), 0.0, np.log(0.999 / 1e-3)], rtol=1e-6)


def test_parallel_tempering_follows_the_schedule_too():
    constant = fitted(n_temperatures=2)
    assert same_fit(constant, fitted(n_temperatures=2, learning_rate_schedule=lambda i, n: 0.1))
    assert not same_fit(constant, fitted(n_temperatures=2, learning_rate_schedule="linear"))


def test_annealed_pcd_is_an_ordinary_estimator_with_the_recipe_and_overrides():
    from sklearn.base import clone

    from fastgen.models.schedules import ANNEALED_PCD

    model = BernoulliRBM.annealed_pcd()
    params = model.get_params()
    assert params["n_components"] == 500
    assert {k: params[k] for k in ANNEALED_PCD} == ANNEALED_PCD
    assert (params["learning_rate_schedule"], params["final_learning_rate"], params["visible_bias_init"],
            params["persistent"]) == ("linear", 0.0, "log_odds", True)
    # the chains do not follow the batch size
    assert params["n_chains"] == 100 and params["batch_size"] == 100
    small = BernoulliRBM.annealed_pcd(n_components=7, n_iter=3, batch_size=10, random_state=0)
    assert (small.n_components, small.n_iter, small.batch_size, small.n_chains) == (7, 3, 10, 100)
    assert clone(small).get_params() == small.get_params()
    # and it trains as the same parameters given one by one
    X = binary((60, 9))
    by_hand = BernoulliRBM(n_components=7, n_iter=3, batch_size=10, random_state=0, **{
        k: v for k, v in ANNEALED_PCD.items() if k not in ("n_iter", "batch_size")})
    assert same_fit(small.fit(X), by_hand.fit(X))
    assert small.h_samples_.shape == (100, 7)
