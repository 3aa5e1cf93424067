"""AIS (fastgen.models.ais): the compiled loop against a NumPy reference on the same Philox
draws, and the estimate against exact log Z of small RBMs."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import logsumexp

from reference.ais import ais_log_weights as ais_log_weights_reference
from fastgen.models.ais import (AISResult, ais_log_partition, base_rate_bias, check_schedule, default_schedule)
from fastgen.models.rbm import RBM


def small_rbm(n_visible, n_hidden, dtype, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return RBM((rng.normal(size=(n_hidden, n_visible)) * scale).astype(dtype),
               (rng.normal(size=n_visible) * 0.5).astype(dtype), (rng.normal(size=n_hidden) * 0.5).astype(dtype))


REF_CHAINS = 16


def reference_ais(W, b, c, base, betas, seed, offset, n_chains=REF_CHAINS):
    return ais_log_weights_reference(W, b, c, base, betas, seed, offset, n_chains)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (33, 17)])
def test_log_weights_match_numpy_reference_float64(shape, binary):
    nv, nh = shape
    rbm = small_rbm(nv, nh, np.float64, seed=nv)
    base = np.random.default_rng(1).normal(size=nv)
    betas = default_schedule(40)
    result, states = ais_log_partition(rbm, n_chains=REF_CHAINS, betas=betas, base_visible_bias=base,
                                       generator=11, return_states=True, binary_products=binary)
    expected_w, expected_v = reference_ais(rbm.weights, rbm.visible_bias, rbm.hidden_bias, base, betas, 11, 0)
    np.testing.assert_array_equal(states, expected_v)
    np.testing.assert_allclose(result.log_weights, expected_w, rtol=1e-10, atol=1e-10)
    base_log_z = np.logaddexp(0, base).sum() + nh * np.log(2)
    assert result.base_log_z == pytest.approx(base_log_z, rel=1e-12)
    assert result.log_z == pytest.approx(base_log_z + logsumexp(expected_w) - np.log(REF_CHAINS), rel=1e-10)


def test_hidden_states_through_subset_tables_match_reference():
    """64 chains x 130 hidden units at about half ones: h @ W goes through the subset-sum tables,
    whose codes come from the bit masks the hidden sampler writes (wrong or missing masks would
    give other visible states than the reference's)."""
    nv, nh, chains = 40, 130, 64
    rbm = small_rbm(nv, nh, np.float64, seed=5, scale=0.3)
    base = np.random.default_rng(2).normal(size=nv)
    betas = default_schedule(30)
    result, states = ais_log_partition(rbm, n_chains=chains, betas=betas, base_visible_bias=base, generator=7,
                                       return_states=True)
    expected_w, expected_v = reference_ais(rbm.weights, rbm.visible_bias, rbm.hidden_bias, base, betas, 7, 0,
                                           n_chains=chains)
    np.testing.assert_array_equal(states, expected_v)
    np.testing.assert_allclose(result.log_weights, expected_w, rtol=1e-10, atol=1e-10)


def test_two_temperatures_is_plain_importance_sampling_from_the_base():
    """With betas = [0, 1] no transition runs: each weight is log p*_B(v_0) - log p*_A(v_0)."""
    rbm = small_rbm(9, 6, np.float64, seed=3)
    base = np.linspace(-1, 1, 9)
    result, v0 = ais_log_partition(rbm, n_chains=50, betas=[0.0, 1.0], base_visible_bias=base, generator=2,
                                   return_states=True)
    log_target = -rbm.free_energy(v0)
    log_base = v0 @ base + 6 * np.log(2)
    np.testing.assert_allclose(result.log_weights, log_target - log_base, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,seed", [((12, 8), 0), ((10, 15), 1), ((20, 10), 2), ((6, 18), 3)])
def test_estimate_matches_exact_log_partition(shape, seed, dtype):
    nv, nh = shape
    rbm = small_rbm(nv, nh, dtype, seed=seed)
    data = (np.random.default_rng(seed).random((300, nv)) < 0.3).astype(dtype)
    exact = rbm.log_partition()
    result = ais_log_partition(rbm, n_chains=200, betas=default_schedule(1500), data=data, generator=seed)
    # The estimate is far tighter than this bound (see the error bar test); the bound is what
    # a wrong formula (e.g. a missing visible term) could never meet.
    assert abs(result.log_z - exact) < 0.05
    assert result.log_z_lower < result.log_z < result.log_z_upper
    assert result.effective_sample_size > 100


def test_error_bar_covers_exact_value_for_most_seeds():
    rbm = small_rbm(14, 10, np.float64, seed=5, scale=1.5)
    exact = rbm.log_partition()
    covered = sum(
        ais_log_partition(rbm, n_chains=30, betas=default_schedule(300), generator=seed).log_z_lower <= exact
        <= ais_log_partition(rbm, n_chains=30, betas=default_schedule(300), generator=seed).log_z_upper
        for seed in range(20)
    )
    # +-3 sd: nominal coverage > 99%; AIS's log-normal weights make it somewhat lower.
    assert covered >= 17


def test_longer_schedule_reduces_error():
    rbm = small_rbm(16, 12, np.float64, seed=9, scale=2.0)
    exact = rbm.log_partition()
    errors = []
    for n_betas in (20, 2000):
        estimates = [ais_log_partition(rbm, n_chains=50, betas=default_schedule(n_betas), generator=s).log_z
                     for s in range(5)]
        errors.append(np.mean(np.abs(np.array(estimates) - exact)))
    assert errors[1] < errors[0] / 3


def test_weights_do_not_depend_on_thread_count(tmp_path):
    script = (
        "import sys, numpy as np\n"
        "from fastgen.models.rbm import RBM\n"
        "from fastgen.models.ais import ais_log_partition, default_schedule\n"
        "rng = np.random.default_rng(0)\n"
        "rbm = RBM((rng.normal(size=(300, 200)) * 0.05).astype(np.float32), np.zeros(200, np.float32) - 1,"
        " np.zeros(300, np.float32))\n"
        "r = ais_log_partition(rbm, n_chains=64, betas=default_schedule(30), generator=4)\n"
        "from fastgen.ops import raise_log_weights\n"   # and the kernel run backwards (RAISE)
        "x = (rng.random((16, 200)) < 0.2).astype(np.float32)\n"
        "w = raise_log_weights(rbm.weights, rbm.visible_bias, rbm.hidden_bias, np.zeros(200, np.float32),"
        " default_schedule(30), x, chains_per_row=4, generator=4)\n"
        "np.save(sys.argv[1], np.concatenate([r.log_weights, w.ravel()]))\n"
    )
    results = []
    for threads in ("1", "2"):
        path = tmp_path / f"w{threads}.npy"
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        subprocess.run([sys.executable, "-c", script, str(path)], check=True, env=env, timeout=300)
        results.append(np.load(path))
    np.testing.assert_array_equal(results[0], results[1])


def test_same_generator_state_same_estimate_and_offsets_consumed():
    import fastgen

    rbm = small_rbm(8, 5, np.float32)
    gen = fastgen.Generator(3)
    first = ais_log_partition(rbm, n_chains=10, betas=default_schedule(25), generator=gen)
    assert gen.offset == 2 * 25 - 3
    again = ais_log_partition(rbm, n_chains=10, betas=default_schedule(25), generator=fastgen.Generator(3))
    np.testing.assert_array_equal(first.log_weights, again.log_weights)
    third = ais_log_partition(rbm, n_chains=10, betas=default_schedule(25), generator=gen)
    assert not np.array_equal(first.log_weights, third.log_weights)


def test_float32_model_accumulates_in_float64():
    rbm = small_rbm(8, 5, np.float32)
    result = ais_log_partition(rbm, n_chains=4, betas=default_schedule(10), generator=0)
    assert isinstance(result, AISResult)
    assert result.log_weights.dtype == np.float64


# ---- schedule and base rate -------------------------------------------------------------------
def test_default_schedule_follows_the_paper():
    betas = default_schedule()
    assert betas.shape == (14500,)
    assert betas[0] == 0.0 and betas[-1] == 1.0
    assert np.all(np.diff(betas) > 0)
    assert np.sum(betas < 0.5) == 500 and np.sum((betas >= 0.5) & (betas < 0.9)) == 4000
    for n in (2, 3, 10, 101):
        b = default_schedule(n)
        assert b.shape == (n,) and b[0] == 0.0 and b[-1] == 1.0 and np.all(np.diff(b) >= 0)


def test_base_rate_bias_is_the_smoothed_logit_of_the_marginals():
    data = np.array([[1, 0, 1], [1, 0, 0], [1, 0, 1], [0, 0, 1]], np.float64)
    p = (data.sum(axis=0) + 1) / (4 + 2)
    np.testing.assert_allclose(base_rate_bias(data), np.log(p / (1 - p)))
    np.testing.assert_array_equal(base_rate_bias(None, 5), np.zeros(5))


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("betas,match", [
    ([0.1, 0.5, 1.0], "start at 0 and end at 1"),
    ([0.0, 0.5, 0.9], "start at 0 and end at 1"),
    ([0.0, 0.7, 0.5, 1.0], "non-decreasing"),
    ([0.0, np.nan, 1.0], "NaN"),
    ([1.0], "at least 2"),
    ([[0.0, 1.0]], "1-D"),
])
def test_schedule_that_does_not_run_from_0_to_1_is_refused(betas, match):
    with pytest.raises(ValueError, match=match):
        check_schedule(betas)
    with pytest.raises(ValueError, match="betas"):
        ais_log_partition(small_rbm(4, 3, np.float64), betas=betas)


def test_bad_arguments_are_refused():
    rbm = small_rbm(4, 3, np.float64)
    with pytest.raises(ValueError, match="n_chains"):
        ais_log_partition(rbm, n_chains=0)
    with pytest.raises(ValueError, match="data must have 4 columns"):
        ais_log_partition(rbm, data=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="data contains NaN"):
        ais_log_partition(rbm, data=np.full((5, 4), np.nan))
    with pytest.raises(ValueError, match="base_visible_bias must have shape"):
        ais_log_partition(rbm, base_visible_bias=np.zeros(3))
    with pytest.raises(ValueError, match="not both"):
        ais_log_partition(rbm, data=np.zeros((5, 4)), base_visible_bias=np.zeros(4))
    bad = RBM(rbm.weights.copy(), rbm.visible_bias, rbm.hidden_bias)
    bad.weights[0, 0] = np.inf
    with pytest.raises(ValueError, match="rbm.weights contains NaN or infinity"):
        ais_log_partition(bad)
    with pytest.raises(ValueError, match="n_betas"):
        default_schedule(1)


def test_mnist_sized_model_matches_enumeration(shared_data_dir):
    """784 visible units, 14 hidden (exact log Z by enumerating 2^14 hidden states), trained
    briefly on binarized MNIST: AIS with the data's base rate lands within its error bar."""
    from fastgen import BernoulliRBM

    with np.load(shared_data_dir / "mnist_test_10k.npz") as npz:
        X = np.ascontiguousarray((npz["data"][:2000].reshape(-1, 784) > 127), dtype=np.float32)
    model = BernoulliRBM(n_components=14, learning_rate=0.05, batch_size=20, n_iter=3, random_state=0).fit(X)
    rbm = RBM(model.components_, model.intercept_visible_, model.intercept_hidden_)
    exact = RBM(*(np.asarray(a, np.float64) for a in (model.components_, model.intercept_visible_,
                                                       model.intercept_hidden_))).log_partition()
    result = ais_log_partition(rbm, n_chains=100, betas=default_schedule(3000), data=X, generator=7)
    assert abs(result.log_z - exact) < 0.5
    assert result.log_z_lower - 0.05 <= exact <= result.log_z_upper + 0.05
