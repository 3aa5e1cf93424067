"""fastgen.ops.raise_log_weights (reverse AIS): the compiled kernel against the NumPy reference
on the same Philox draws, its offsets and its refusals. Thread-count independence is checked
with AIS's in tests/models/test_ais.py; that the assembled estimate brackets exact
log-likelihoods, in tests/models/test_raise.py."""
import numpy as np
import pytest

import fastgen
from fastgen.models.ais import default_schedule
from fastgen.ops import raise_log_weights
from reference.ais import raise_log_weights as raise_log_weights_reference


def rbm_and_rows(nv, nh, rows, dtype=np.float64, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    W = (rng.normal(size=(nh, nv)) * scale).astype(dtype)
    b, c = (rng.normal(size=nv) * 0.5).astype(dtype), (rng.normal(size=nh) * 0.5).astype(dtype)
    base = rng.normal(size=nv).astype(dtype)
    data = (rng.random((rows, nv)) < 0.4).astype(dtype)
    return W, b, c, base, data


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 5, 3), (33, 17, 4), (129, 40, 2)])
def test_log_weights_match_numpy_reference_float64(shape, binary):
    nv, nh, rows = shape
    W, b, c, base, data = rbm_and_rows(nv, nh, rows, seed=nv)
    betas = default_schedule(40)
    got = raise_log_weights(W, b, c, base, betas, data, chains_per_row=3, generator=fastgen.Generator(11),
                            binary_products=binary)
    expected = raise_log_weights_reference(W, b, c, base, betas, data, 11, 0, 3)
    assert got.shape == (rows, 3) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_hidden_states_through_subset_tables_match_reference():
    """64 chains x 130 hidden units at about half ones: h @ W goes through the subset-sum tables."""
    W, b, c, base, data = rbm_and_rows(40, 130, 16, seed=5, scale=0.3)
    betas = default_schedule(30)
    got = raise_log_weights(W, b, c, base, betas, data, chains_per_row=4, generator=7)
    np.testing.assert_allclose(got, raise_log_weights_reference(W, b, c, base, betas, data, 7, 0, 4),
                               rtol=1e-10, atol=1e-10)


def test_float32_chains_follow_the_reference_closely():
    """float32 states may differ from the float64 reference where a uniform falls within rounding
    of its probability; on this small model with a short schedule none does, and the float64
    accumulation keeps the weights within float32 rounding of the reference's."""
    W, b, c, base, data = rbm_and_rows(20, 9, 5, np.float32, seed=3, scale=0.5)
    betas = default_schedule(25)
    got = raise_log_weights(W, b, c, base, betas, data, chains_per_row=4, generator=2)
    expected = raise_log_weights_reference(W, b, c, base, betas, data, 2, 0, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_non_contiguous_rows_are_read_as_given():
    W, b, c, base, data = rbm_and_rows(12, 6, 8, seed=4)
    view = np.asfortranarray(data)[::2]
    betas = default_schedule(12)
    got = raise_log_weights(W, b, c, base, betas, view, chains_per_row=2, generator=1)
    np.testing.assert_array_equal(got, raise_log_weights(W, b, c, base, betas, np.ascontiguousarray(view),
                                                         chains_per_row=2, generator=1))


def test_no_rows_gives_no_weights_and_takes_the_offsets():
    W, b, c, base, _ = rbm_and_rows(6, 4, 1)
    gen = fastgen.Generator(3, 5)
    got = raise_log_weights(W, b, c, base, np.linspace(0, 1, 10), np.zeros((0, 6)), chains_per_row=3, generator=gen)
    assert got.shape == (0, 3)
    assert gen.offset == 5 + 2 * 9


def test_two_temperatures_is_one_step_at_beta_1():
    """With betas = [0, 1] each chain takes one Gibbs step from its row at beta = 1 and adds
    log p*_0(x_0) - log p*_1(x_0) = -(b - b_A).x_0 + sum_j [log 2 - softplus(W_j x_0 + c_j)]:
    every weight is that formula at some binary x_0, and with one visible unit (two states) both
    values occur."""
    rng = np.random.default_rng(8)
    W, b, c, base = rng.normal(size=(3, 1)), rng.normal(size=1), rng.normal(size=3), rng.normal(size=1)
    got = raise_log_weights(W, b, c, base, [0.0, 1.0], np.array([[0.0], [1.0]]), chains_per_row=40, generator=4)
    formula = {x0: float(-(b - base)[0] * x0 + (np.log(2.0) - np.logaddexp(0.0, W[:, 0] * x0 + c)).sum())
               for x0 in (0.0, 1.0)}
    matched = [min(formula, key=lambda x0: abs(formula[x0] - w)) for w in got.ravel()]
    np.testing.assert_allclose(got.ravel(), [formula[x0] for x0 in matched], rtol=0, atol=1e-12)
    assert set(matched) == {0.0, 1.0}


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(chains_per_row=0), ValueError, "chains_per_row must be an integer >= 1"),
        (dict(betas=np.array([0.0])), ValueError, "betas must hold at least 2"),
        (dict(betas=np.array([0.0, np.nan, 1.0])), ValueError, "betas contains NaN"),
        (dict(base_visible_bias=np.zeros(5)), ValueError, r"base_visible_bias must have shape \(6,\)"),
        (dict(data=np.zeros((2, 5))), ValueError, r"data must have 6 columns"),
        (dict(data=np.full((2, 6), 0.5)), ValueError, "data must hold only 0 and 1"),
        (dict(data=np.zeros(6)), ValueError, "data must be 2-D"),
        (dict(binary_products="yes"), TypeError, "binary_products must be a bool"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs, error, match):
    W, b, c, _, _ = rbm_and_rows(6, 4, 1)
    args = dict(base_visible_bias=np.zeros(6), betas=np.linspace(0, 1, 5), data=np.zeros((2, 6)), chains_per_row=3)
    args.update(kwargs)
    data = args.pop("data").copy()
    before = data.copy()
    with pytest.raises(error, match=match):
        raise_log_weights(W, b, c, args.pop("base_visible_bias"), args.pop("betas"), data, **args)
    np.testing.assert_array_equal(data, before)
