"""fastgen.ops.bernoulli_log_likelihood / gaussian_log_likelihood against the NumPy formulas.

On a GPU (``gpu`` marker): the likelihoods on CuPy arrays match the CPU's and name the argument in
their errors."""
from __future__ import annotations

import numpy as np
import pytest

from cuda_helpers import array_module
from fastgen.ops import elbo

from fastgen.ops.elbo import bernoulli_log_likelihood, gaussian_log_likelihood
from reference.elbo import bernoulli_log_likelihood as bernoulli_reference, gaussian_log_likelihood as gaussian_reference

TOL = {np.float32: dict(rtol=2e-5, atol=2e-4), np.float64: dict(rtol=1e-12, atol=1e-10)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 129), (2, 4096 + 32), (5, 1, 7, 9), (0, 12)])
def test_bernoulli_matches_the_formula(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x = (rng.random(shape) < 0.4).astype(dtype)
    x.reshape(-1)[: x.size // 3] = rng.random(x.size // 3)  # grey levels too
    logits = (rng.normal(size=shape) * 6).astype(dtype)
    out = bernoulli_log_likelihood(x, logits)
    assert out.shape == (shape[0],) and out.dtype == dtype
    np.testing.assert_allclose(out, bernoulli_reference(x, logits), **TOL[dtype])


def test_bernoulli_is_stable_for_huge_logits():
    x = np.array([[1.0, 0.0, 1.0, 0.0]], np.float32)
    logits = np.array([[200.0, -200.0, -90.0, 90.0]], np.float32)
    np.testing.assert_allclose(bernoulli_log_likelihood(x, logits), [-180.0], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("logvar_kind", ["none", "element", "feature"])
@pytest.mark.parametrize("shape", [(1, 1), (4, 129), (2, 4096 + 32), (3, 2, 5, 5), (0, 6)])
def test_gaussian_matches_the_formula(dtype, logvar_kind, shape):
    rng = np.random.default_rng(len(shape) + shape[-1])
    x = rng.normal(size=shape).astype(dtype)
    mean = rng.normal(size=shape).astype(dtype)
    logvar = {"none": None, "element": rng.normal(size=shape), "feature": rng.normal(size=shape[1:])}[logvar_kind]
    logvar = None if logvar is None else logvar.astype(dtype)
    out = gaussian_log_likelihood(x, mean, logvar)
    assert out.shape == (shape[0],) and out.dtype == dtype
    np.testing.assert_allclose(out, gaussian_reference(x, mean, logvar), **TOL[dtype])


def test_one_dimensional_input_is_one_sample_and_views_are_copied_not_changed():
    rng = np.random.default_rng(3)
    x = (rng.random((6, 10)) < 0.5).astype(np.float64)
    logits = rng.normal(size=(10, 6)).T  # Fortran-ordered view
    before = logits.copy()
    np.testing.assert_allclose(bernoulli_log_likelihood(x, logits), bernoulli_reference(x, logits), rtol=1e-12)
    np.testing.assert_array_equal(logits, before)
    scalar = bernoulli_log_likelihood(x[0], logits[0])
    assert scalar.shape == ()
    np.testing.assert_allclose(scalar, bernoulli_reference(x[:1], logits[:1])[0], rtol=1e-12)
    strided = x[:, ::2]
    np.testing.assert_allclose(gaussian_log_likelihood(strided, strided * 0.5),
                               gaussian_reference(strided, strided * 0.5), rtol=1e-12)


def test_bad_input_names_the_argument():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="logits must have x's shape"):
        bernoulli_log_likelihood(x, np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        bernoulli_log_likelihood(x - 0.5, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="logits contains NaN"):
        bernoulli_log_likelihood(x, np.full((2, 3), np.nan))
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        bernoulli_log_likelihood(np.array([["a", "b"]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="at least 1 dimension"):
        gaussian_log_likelihood(np.float64(1.0), np.float64(1.0))
    with pytest.raises(ValueError, match="logvar must have x's shape"):
        gaussian_log_likelihood(x, x, np.zeros(2))
    with pytest.raises(ValueError, match="mean contains NaN"):
        gaussian_log_likelihood(x, np.full((2, 3), np.inf))


# ==== on a GPU (CuPy arrays and torch CUDA tensors against the CPU) =============================


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", [1, 20, 784, 3000])
def test_likelihoods_on_cupy_match_the_cpu(cp, dtype, cols):
    rng = np.random.default_rng(cols)
    x = (rng.random((67, cols)) < 0.4).astype(dtype)
    logits = rng.uniform(-4, 4, x.shape).astype(dtype)
    got = elbo.bernoulli_log_likelihood(cp.asarray(x), cp.asarray(logits))
    assert isinstance(got, cp.ndarray) and got.dtype == dtype
    want = elbo.bernoulli_log_likelihood(x, logits)
    if dtype == np.float32:  # float32 terms in [0.018, 4.1]: exact double sums, any order
        np.testing.assert_array_equal(got.get(), want)
    else:
        np.testing.assert_allclose(got.get(), want, rtol=1e-13)
    for lv in (None, rng.uniform(-1, 1, cols).astype(dtype), rng.uniform(-1, 1, x.shape).astype(dtype)):
        got = elbo.gaussian_log_likelihood(cp.asarray(logits), cp.asarray(x), None if lv is None else cp.asarray(lv))
        np.testing.assert_allclose(got.get(), elbo.gaussian_log_likelihood(logits, x, lv),
                                   rtol=1e-6 if dtype == np.float32 else 1e-13)


def test_likelihood_errors_name_the_argument_on_each_device(device):
    xp = array_module(device)
    x = xp.zeros((2, 3))
    with pytest.raises(ValueError, match="x must lie in"):
        elbo.bernoulli_log_likelihood(x + 2, x)
    with pytest.raises(ValueError, match="logits contains NaN"):
        elbo.bernoulli_log_likelihood(x, x + xp.nan)
    with pytest.raises(ValueError, match="logvar must have x's shape"):
        elbo.gaussian_log_likelihood(x, x, xp.zeros(2))
