"""BernoulliRBM.log_partition / log_likelihood: exact for small models, AIS otherwise."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from fastgen import BernoulliRBM
from fastgen.datasets import load_digits_binary
from fastgen.models.ais import AISResult


@pytest.fixture(scope="module")
def binary_digits():
    return (load_digits_binary() > 0.5).astype(np.float64)


def test_small_model_uses_exact_log_partition_and_ais_agrees(binary_digits):
    model = BernoulliRBM(n_components=12, n_iter=3, random_state=0).fit(binary_digits)
    exact = model.log_partition()
    assert exact == model._model().log_partition()
    result = model.log_partition(method="ais", n_betas=2000, return_result=True)
    assert isinstance(result, AISResult)
    assert abs(result.log_z - exact) < 0.05
    assert result.log_z_lower <= exact + 0.02 and exact - 0.02 <= result.log_z_upper


def test_log_likelihood_is_minus_free_energy_minus_log_z(binary_digits):
    model = BernoulliRBM(n_components=10, n_iter=2, random_state=1).fit(binary_digits)
    X = binary_digits[:7]
    log_z = model.log_partition(method="exact")
    ll = model.log_likelihood(X)
    np.testing.assert_allclose(ll, -model._model().free_energy(X) - log_z, rtol=1e-12)
    np.testing.assert_allclose(model.log_likelihood(X, log_z=1.5), -model._model().free_energy(X) - 1.5)
    # probabilities of all 2^n states of a tiny model sum to 1
    tiny = BernoulliRBM(n_components=3, n_iter=2, random_state=0).fit(binary_digits[:, :6])
    states = ((np.arange(64)[:, None] >> np.arange(6)) & 1).astype(np.float64)
    assert np.exp(tiny.log_likelihood(states)).sum() == pytest.approx(1.0, rel=1e-10)


def test_sparse_input_gives_the_same_log_likelihood(binary_digits):
    model = BernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(binary_digits)
    np.testing.assert_allclose(model.log_likelihood(sp.csr_matrix(binary_digits[:20])),
                               model.log_likelihood(binary_digits[:20]))


def test_ais_is_reproducible_from_the_estimator_seed(binary_digits):
    model = BernoulliRBM(n_components=30, n_iter=2, random_state=3).fit(binary_digits)
    a = model.log_partition(n_betas=200)
    b = model.log_partition(n_betas=200)
    c = model.log_partition(n_betas=200, random_state=99)
    assert a == b and a != c


def test_base_rate_comes_from_training_marginals(binary_digits):
    """A base model matched to the data gives a tighter estimate than a uniform one."""
    model = BernoulliRBM(n_components=16, n_iter=5, random_state=0).fit(binary_digits)
    exact = model.log_partition()
    matched = model.log_partition(method="ais", n_betas=100, n_chains=200, return_result=True)
    uniform = model.log_partition(method="ais", n_betas=100, n_chains=200, return_result=True,
                                  data=np.full((1, 64), 0.5))
    assert abs(matched.log_z - exact) < abs(uniform.log_z - exact) or matched.effective_sample_size > uniform.effective_sample_size


def test_bad_arguments(binary_digits):
    model = BernoulliRBM(n_components=8, n_iter=1, random_state=0).fit(binary_digits)
    with pytest.raises(ValueError, match="method must be"):
        model.log_partition(method="mcmc")
    with pytest.raises(ValueError, match="n_betas or betas"):
        model.log_partition(method="ais", n_betas=10, betas=[0.0, 1.0])
    with pytest.raises(ValueError, match="start at 0 and end at 1"):
        model.log_partition(method="ais", betas=[0.0, 0.5])
    with pytest.raises(ValueError, match="log_z must be a finite"):
        model.log_likelihood(binary_digits[:2], log_z=np.nan)
    with pytest.raises(ValueError, match="features"):
        model.log_likelihood(binary_digits[:2, :10])
    with pytest.raises(ValueError, match="NaN|infinity"):
        model.log_likelihood(np.full((2, 64), np.nan))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        BernoulliRBM().log_partition()
