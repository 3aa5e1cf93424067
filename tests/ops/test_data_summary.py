"""fastgen.ops.data_summary, the estimators' one-pass data check (csrc/data_summary.cpp, CuPy
reductions on CUDA) against NumPy: finiteness, range and float64 column sums, its input errors,
and BernoulliRBM's use of it."""
from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import fastgen
from fastgen.ops.data_summary import DataSummary, data_summary
from reference.data_summary import data_summary as summary_ref

DTYPES = [np.float32, np.float64]
# rows x cols: ones, odd sizes, more rows than one block of the sums (256), wide rows, empty.
SHAPES = [(1, 1), (129, 129), (1000, 784), (3, 4096 + 32), (0, 5), (7, 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_summary_matches_numpy(dtype, shape):
    x = np.random.default_rng(sum(shape)).normal(size=shape).astype(dtype)
    finite, low, high, sums = data_summary(x, column_sums=True)
    ref = summary_ref(x)
    assert finite == ref[0] and low == ref[1] and high == ref[2]
    np.testing.assert_allclose(sums, ref[3], rtol=1e-12, atol=1e-12 * max(1, shape[0]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (999, 783), (300, 17)])
def test_summary_finds_any_non_finite_value(dtype, bad, where):
    x = np.random.default_rng(1).random((1000, 784)).astype(dtype)
    x[where] = bad
    before = x.copy()
    summary = data_summary(x)
    assert not summary.finite and summary.column_sums is None
    np.testing.assert_array_equal(x, before)  # the input is only read


def test_summary_column_sums_do_not_depend_on_the_thread_count():
    x = np.random.default_rng(2).random((5000, 300)).astype(np.float32)
    results = []
    for threads in (1, 2):
        with threadpool_limits(threads, user_api="openmp"):
            results.append(data_summary(x, column_sums=True).column_sums)
    np.testing.assert_array_equal(results[0], results[1])


def test_summary_converts_other_real_dtypes_once():
    x = np.arange(12, dtype=np.int16).reshape(3, 4)
    summary = data_summary(x, column_sums=True)
    assert summary == DataSummary(True, 0.0, 11.0, summary.column_sums)
    np.testing.assert_array_equal(summary.column_sums, x.sum(axis=0))


def test_summary_of_a_cpu_torch_tensor_matches_numpy():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(6).random((9, 5))
    summary = data_summary(torch.from_numpy(x), column_sums=True)
    assert summary.finite and summary.min == x.min() and summary.max == x.max()
    np.testing.assert_allclose(summary.column_sums, x.sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("x, column_sums, error, match", [
    (np.zeros(5), False, ValueError, "x must be 2-D"),
    (np.zeros((2, 3, 4)), False, ValueError, "x must be 2-D"),
    (np.array([["a", "b"]]), False, TypeError, "x must be a real numeric array"),
    (np.zeros((2, 3)), "yes", TypeError, "column_sums must be a bool"),
])
def test_summary_input_errors_name_the_argument(x, column_sums, error, match):
    with pytest.raises(error, match=match):
        data_summary(x, column_sums=column_sums)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_cuda_summary_matches_the_cpu(dtype, shape):
    cp = pytest.importorskip("cupy")
    x = np.random.default_rng(sum(shape)).normal(size=shape).astype(dtype)
    cpu, gpu = data_summary(x, column_sums=True), data_summary(cp.asarray(x), column_sums=True)
    assert (gpu.finite, gpu.min, gpu.max) == (cpu.finite, cpu.min, cpu.max)
    assert isinstance(gpu.column_sums, np.ndarray)
    np.testing.assert_allclose(gpu.column_sums, cpu.column_sums, rtol=1e-12, atol=1e-12 * max(1, shape[0]))
    for bad in (np.nan, np.inf, -np.inf):
        if x.size:
            y = x.copy()
            y[-1, -1] = bad
            assert not data_summary(cp.asarray(y)).finite


@pytest.mark.parametrize("dtype", DTYPES)
def test_rbm_fit_keeps_the_column_sums_of_its_data(dtype):
    X = (np.random.default_rng(3).random((300, 20)) < 0.3).astype(dtype)
    rbm = fastgen.BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(X)
    sums, count = rbm._visible_sums
    np.testing.assert_array_equal(sums, X.astype(np.float64).sum(axis=0))
    assert count == 300


@pytest.mark.parametrize("bad,message", [(np.nan, "Input X contains NaN"), (np.inf, "Input X contains infinity")])
def test_rbm_fit_rejects_non_finite_data_with_scikit_learns_message(bad, message):
    X = np.random.default_rng(4).random((50, 6))
    X[10, 2] = bad
    before = X.copy()
    with pytest.raises(ValueError, match=message):
        fastgen.BernoulliRBM(n_iter=1).fit(X)
    np.testing.assert_array_equal(X, before)


def test_rbm_fit_rejecting_non_finite_data_leaves_the_estimator_as_it_was():
    X = np.random.default_rng(5).random((40, 6))
    bad = X.copy()
    bad[3, 1] = np.nan
    fresh = fastgen.BernoulliRBM(n_iter=1)
    with pytest.raises(ValueError):
        fresh.fit(bad)
    assert not hasattr(fresh, "n_features_in_")  # still unfitted for check_is_fitted
    fitted = fastgen.BernoulliRBM(n_components=3, n_iter=1, random_state=0).fit(X)
    with pytest.raises(ValueError):
        fitted.fit(np.hstack([bad, bad]))
    assert fitted.n_features_in_ == 6
