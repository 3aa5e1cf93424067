"""Single-kernel microbenchmarks: each fused kernel beside the plain NumPy sequence it replaces.

Run: ``pytest bench/test_kernels.py --benchmark-only --benchmark-group-by=group``.
Outside the CI suite (tests/ is what CI collects). A fused kernel that does not beat its NumPy
sequence here has no reason to exist.
"""
import numpy as np
import pytest
from scipy.special import expit

import fastgen
from fastgen._native import cpu as _cpu
from fastgen.ops import gibbs

ROWS, COLS = 100, 784  # one MNIST batch of visible pre-activations
DTYPES = [np.float32, np.float64]


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return request.param


def _logits(dtype):
    rng = np.random.default_rng(0)
    return rng.normal(0, 3, (ROWS, COLS)).astype(dtype), rng.normal(0, 1, COLS).astype(dtype)


@pytest.mark.benchmark(group="bias+sigmoid+bernoulli")
def test_fused_bernoulli(benchmark, dtype):
    x, b = _logits(dtype)
    probs, states = np.empty_like(x), np.empty_like(x)
    benchmark(_cpu.C.sample_bernoulli, x, b, probs, states, True, 1, 0)


@pytest.mark.benchmark(group="bias+sigmoid+bernoulli")
def test_numpy_bernoulli(benchmark, dtype):
    x, b = _logits(dtype)
    rng = np.random.default_rng(0)

    def numpy_sequence():
        p = expit(x + b)
        return p, (rng.random(p.shape, dtype=dtype) < p).astype(dtype)

    benchmark(numpy_sequence)


@pytest.mark.benchmark(group="normal")
def test_fused_normal(benchmark, dtype):
    out = np.empty(ROWS * COLS, dtype)
    benchmark(_cpu.C.fill_normal, out, 1, 0)


@pytest.mark.benchmark(group="normal")
def test_numpy_normal(benchmark, dtype):
    rng = np.random.default_rng(0)
    benchmark(rng.standard_normal, ROWS * COLS, dtype)


@pytest.mark.benchmark(group="momentum update")
def test_fused_momentum_update(benchmark, dtype):
    rng = np.random.default_rng(0)
    param, vel, grad = (rng.normal(size=500 * 784).astype(dtype) for _ in range(3))
    benchmark(_cpu.C.sgd_momentum_update, param, vel, grad, 0.01, 0.9, 1e-4)


@pytest.mark.benchmark(group="momentum update")
def test_numpy_momentum_update(benchmark, dtype):
    rng = np.random.default_rng(0)
    param, vel, grad = (rng.normal(size=500 * 784).astype(dtype) for _ in range(3))

    def numpy_sequence():
        vel[:] = 0.9 * vel + 0.01 * (grad - 1e-4 * param)
        param[:] += vel

    benchmark(numpy_sequence)


def _rbm(dtype):
    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.1, (500, 784)).astype(dtype)
    return W, np.zeros(784, dtype), np.zeros(500, dtype), (rng.random((100, 784)) < 0.5).astype(dtype)


@pytest.mark.benchmark(group="gibbs k=25, 100 chains")
def test_fused_gibbs(benchmark, dtype):
    W, b, c, v = _rbm(dtype)
    gen = fastgen.Generator(0)
    benchmark(gibbs, v, W, b, c, 25, generator=gen)


@pytest.mark.benchmark(group="gibbs k=25, 100 chains")
def test_numpy_gibbs(benchmark, dtype):
    W, b, c, v = _rbm(dtype)
    rng = np.random.default_rng(0)

    def numpy_loop():
        x = v
        for _ in range(25):
            h = (rng.random((x.shape[0], W.shape[0]), dtype=dtype) < expit(x @ W.T + c)).astype(dtype)
            x = (rng.random(x.shape, dtype=dtype) < expit(h @ W + b)).astype(dtype)
        return x

    benchmark(numpy_loop)
