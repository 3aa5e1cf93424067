"""Shards of a batch (the ranks of a data-parallel job, the chunks of an out-of-core batch): the
samplers' ``first_row``, cd_gradients' ``first_row`` / ``first_chain`` / ``batch_rows`` /
``total_chains`` and the AIS kernels' ``first_chain`` / ``first_row`` make a split run draw
exactly what the whole run draws, and make the shards' gradients add up to the whole batch's."""
import numpy as np
import pytest

from fastgen.ops import cd_gradients
from fastgen.ops.ais import ais_log_weights, raise_log_weights
from fastgen.ops.sampling import sample_bernoulli_numpy, sample_gaussian_numpy
from fastgen.random import Generator

DTYPES = [np.float32, np.float64]
SUM_TOL = {np.float32: 2e-6, np.float64: 1e-14}  # shards' sum vs the whole batch (float sums reordered)
SPLITS = [(0, 1, 129), (0, 64, 129), (0, 5, 17, 129)]  # shard boundaries over 129 rows


def rbm(dtype, n_visible=37, n_hidden=23, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.3, (n_hidden, n_visible)).astype(dtype), rng.normal(0, 0.5, n_visible).astype(dtype),
            rng.normal(0, 0.5, n_hidden).astype(dtype))


def binary(shape, seed, dtype=np.float64):
    return (np.random.default_rng(seed).random(shape) < 0.4).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bounds", SPLITS)
def test_sampler_rows_drawn_as_in_the_whole_matrix(dtype, bounds):
    x = np.random.default_rng(3).normal(0, 2, (129, 31)).astype(dtype)
    whole_b, whole_g = np.empty_like(x), np.empty_like(x)
    sample_bernoulli_numpy(x, states=whole_b, seed=9, offset=4)
    sample_gaussian_numpy(x, out=whole_g, std_scalar=0.5, seed=9, offset=4)
    for start, stop in zip(bounds, bounds[1:]):
        part = np.ascontiguousarray(x[start:stop])
        states, normal = np.empty_like(part), np.empty_like(part)
        sample_bernoulli_numpy(part, states=states, seed=9, offset=4, first_row=start)
        sample_gaussian_numpy(part, out=normal, std_scalar=0.5, seed=9, offset=4, first_row=start)
        np.testing.assert_array_equal(states, whole_b[start:stop])
        np.testing.assert_array_equal(normal, whole_g[start:stop])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("persistent", [False, True], ids=["CD-2", "PCD-2"])
@pytest.mark.parametrize("bounds", SPLITS)
def test_cd_gradient_shards_add_up_to_the_whole_batch(dtype, persistent, bounds):
    W, b, c = rbm(dtype)
    v = binary((129, 37), seed=1, dtype=dtype)
    chains = binary((129, 23), seed=2, dtype=dtype) if persistent else None
    whole = cd_gradients(v, W, b, c, k=2, generator=Generator(5, 11), persistent_chains=chains)
    total = [np.zeros_like(a) for a in (W, b, c)]
    drawn = []
    for start, stop in zip(bounds, bounds[1:]):
        part = cd_gradients(v[start:stop], W, b, c, k=2, generator=Generator(5, 11),
                            persistent_chains=None if chains is None else chains[start:stop], first_row=start,
                            first_chain=start, batch_rows=129, total_chains=129 if persistent else None)
        for t, g in zip(total, part[:3]):
            t += g
        drawn.append(part.chains)
    np.testing.assert_array_equal(np.concatenate(drawn), whole.chains)  # the same draws, bit for bit
    for t, g in zip(total, whole[:3]):
        np.testing.assert_allclose(t, g, rtol=0, atol=SUM_TOL[dtype])


def test_a_shard_without_rows_adds_only_its_chains():
    W, b, c = rbm(np.float64)
    chains = binary((6, 23), seed=2)
    part = cd_gradients(np.empty((0, 37)), W, b, c, generator=1, persistent_chains=chains, batch_rows=10,
                        total_chains=12)
    assert part.weights.shape == W.shape and np.isfinite(part.weights).all()
    assert (part.visible_bias <= 0).all()  # minus the model term only: -sum(v_k) / 12


def test_shard_arguments_are_checked():
    W, b, c = rbm(np.float64)
    v = binary((4, 37), seed=1)
    with pytest.raises(ValueError, match="first_row must be an integer >= 0"):
        cd_gradients(v, W, b, c, first_row=-1)
    with pytest.raises(ValueError, match="batch_rows must be an integer >= 4"):
        cd_gradients(v, W, b, c, batch_rows=3)
    with pytest.raises(ValueError, match="total_chains must be an integer >= 5"):
        cd_gradients(v, W, b, c, persistent_chains=binary((5, 23), seed=2), total_chains=2)
    with pytest.raises(ValueError, match="must not be empty|at least one|empty"):
        cd_gradients(np.empty((0, 37)), W, b, c)  # whole batches have rows
    with pytest.raises(ValueError, match="first_chain must be an integer >= 0"):
        ais_log_weights(W, b, c, np.zeros(37), np.linspace(0, 1, 5), n_chains=2, first_chain=-3)
    with pytest.raises(ValueError, match="first_row must be an integer >= 0"):
        raise_log_weights(W, b, c, np.zeros(37), np.linspace(0, 1, 5), v, chains_per_row=2, first_row=1.5)


LOG_WEIGHT_TOL = {np.float32: 1e-5, np.float64: 1e-12}  # BLAS may round a product of fewer rows differently


@pytest.mark.parametrize("dtype", DTYPES)
def test_ais_and_raise_chains_split_draw_as_one_run(dtype):
    W, b, c = rbm(dtype, n_visible=13, n_hidden=9)
    base, betas = np.zeros(13, dtype), np.linspace(0, 1, 40)
    whole = ais_log_weights(W, b, c, base, betas, n_chains=11, generator=Generator(1), binary_products=False)
    split = np.concatenate([ais_log_weights(W, b, c, base, betas, n_chains=n, generator=Generator(1),
                                            binary_products=False, first_chain=f) for f, n in ((0, 4), (4, 7))])
    np.testing.assert_allclose(split, whole, rtol=LOG_WEIGHT_TOL[dtype])
    v = binary((10, 13), seed=5, dtype=dtype)
    whole = raise_log_weights(W, b, c, base, betas, v, chains_per_row=3, generator=Generator(2), binary_products=False)
    split = np.concatenate([raise_log_weights(W, b, c, base, betas, v[s:e], chains_per_row=3, generator=Generator(2),
                                              binary_products=False, first_row=s) for s, e in ((0, 3), (3, 10))])
    np.testing.assert_allclose(split, whole, rtol=LOG_WEIGHT_TOL[dtype])
