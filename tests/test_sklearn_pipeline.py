"""fastgen.BernoulliRBM as a feature extractor inside a scikit-learn Pipeline (and the example
script examples/rbm_logistic_digits.py that shows it)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

import fastgen

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = REPO_ROOT / "examples" / "rbm_logistic_digits.py"


@pytest.fixture(scope="module")
def digits_split():
    digits = load_digits()
    return train_test_split(digits.data / 16.0, digits.target, test_size=0.25, random_state=0,
                            stratify=digits.target)


def make_pipeline():
    return Pipeline([
        ("rbm", fastgen.BernoulliRBM(n_components=64, learning_rate=0.06, batch_size=10, n_iter=10, random_state=0)),
        ("logistic", LogisticRegression(C=100.0, max_iter=2000)),
    ])


def test_rbm_features_feed_a_logistic_regression(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    # One BLAS thread: OpenBLAS's spinning threads stall the logistic regression's many small
    # products on a busy machine; the results are the same.
    with threadpool_limits(limits=1, user_api="blas"):
        pipeline = make_pipeline().fit(X_train, y_train)
        accuracy = pipeline.score(X_test, y_test)
        predictions = pipeline.predict(X_test)
    assert accuracy > 0.85                                          # measured: 0.91-0.93 over splits
    assert predictions.shape == y_test.shape and set(predictions) <= set(range(10))
    rbm = pipeline.named_steps["rbm"]
    assert rbm.components_.shape == (64, 64)
    features = pipeline[:-1].transform(X_test)                     # P(h = 1 | v): the logistic input
    assert features.shape == (len(X_test), 64) and 0 <= features.min() and features.max() <= 1
    np.testing.assert_array_equal(features, rbm.transform(X_test))

    # clone + refit with the same random_state reproduces the RBM exactly
    with threadpool_limits(limits=1, user_api="blas"):
        twin = clone(pipeline).fit(X_train, y_train)
    np.testing.assert_array_equal(twin.named_steps["rbm"].components_, rbm.components_)


def test_pipeline_parameters_reach_the_rbm(digits_split):
    X_train, _, y_train, _ = digits_split
    pipeline = make_pipeline().set_params(rbm__n_components=16, rbm__n_iter=2, logistic__max_iter=200)
    with threadpool_limits(limits=1, user_api="blas"):
        pipeline.fit(X_train[:300], y_train[:300])
    assert pipeline.named_steps["rbm"].components_.shape == (16, 64)
    assert pipeline.named_steps["logistic"].coef_.shape == (10, 16)


def test_example_script_runs(tmp_path):
    if not EXAMPLE.is_file():
        pytest.skip(f"{EXAMPLE} is not in this checkout")
    # One BLAS thread for the same reason as above: about 3 s instead of 15+ on a loaded machine.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, cwd=tmp_path,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    rbm = re.search(r"RBM features \(256\) \+ logistic regression: ([0-9.]+)", result.stdout)
    raw = re.search(r"logistic regression on the raw pixels:\s+([0-9.]+)", result.stdout)
    assert rbm and raw, result.stdout
    assert float(rbm.group(1)) > 0.9 and float(raw.group(1)) > 0.9
