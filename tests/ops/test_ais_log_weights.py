"""fastgen.ops.ais_log_weights: the kernel behind fastgen.models.ais (whose tests check it
against the NumPy AIS reference), its offsets and its refusals."""
import numpy as np
import pytest

import fastgen
from fastgen.models.ais import ais_log_partition
from fastgen.models.rbm import RBM
from fastgen.ops import ais_log_weights


def params(dtype=np.float64):
    rng = np.random.default_rng(2)
    return (rng.normal(size=(4, 6)).astype(dtype), rng.normal(size=6).astype(dtype), rng.normal(size=4).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_weights_are_the_estimators_and_take_2n_minus_3_offsets(dtype):
    W, b, c = params(dtype)
    base, betas = np.zeros(6, dtype), np.linspace(0, 1, 30)
    gen = fastgen.Generator(4, 1)
    log_w, states = ais_log_weights(W, b, c, base, betas, n_chains=9, generator=gen, return_states=True)
    assert gen.offset == 1 + 2 * 30 - 3
    assert log_w.shape == (9,) and log_w.dtype == np.float64 and states.shape == (9, 6) and states.dtype == dtype
    result = ais_log_partition(RBM(W, b, c), n_chains=9, betas=betas, base_visible_bias=base,
                               generator=fastgen.Generator(4, 1))
    assert log_w.tobytes() == result.log_weights.tobytes()
    assert set(np.unique(states)) <= {0, 1}


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(n_chains=0), ValueError, "n_chains must be an integer >= 1"),
        (dict(betas=np.array([0.0])), ValueError, "betas must hold at least 2"),
        (dict(betas=np.array([0.0, np.nan, 1.0])), ValueError, "betas contains NaN"),
        (dict(base_visible_bias=np.zeros(5)), ValueError, r"base_visible_bias must have shape \(6,\)"),
        (dict(return_states=1), TypeError, "return_states must be a bool"),
        (dict(binary_products="yes"), TypeError, "binary_products must be a bool"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs, error, match):
    W, b, c = params()
    args = dict(base_visible_bias=np.zeros(6), betas=np.linspace(0, 1, 5), n_chains=3)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        ais_log_weights(W, b, c, args.pop("base_visible_bias"), args.pop("betas"), **args)
