"""fastgen.ops.pseudo_likelihood against the flip-each-bit NumPy reference, and its refusals."""
import numpy as np
import pytest

import reference as ref
from fastgen.models.rbm import RBM
from fastgen.ops import pseudo_likelihood

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 1e-4, np.float64: 1e-10}


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_the_reference_and_the_model(dtype):
    rng = np.random.default_rng(3)
    W = rng.normal(0, 0.5, (6, 9)).astype(dtype)
    b, c = rng.normal(size=9).astype(dtype), rng.normal(size=6).astype(dtype)
    v = (rng.random((11, 9)) < 0.4).astype(dtype)
    got = pseudo_likelihood(v, W, b, c)
    assert got.shape == (11,) and got.dtype == dtype
    np.testing.assert_allclose(got, ref.pseudo_likelihood(v, W, b, c), rtol=0, atol=TOL[dtype])
    assert got.tobytes() == RBM(W, b, c).pseudo_likelihood(v).tobytes()


@pytest.mark.parametrize(
    "args,match",
    [
        ((np.ones((2, 4)), np.zeros((3, 5)), np.zeros(5), np.zeros(3)), "v must have 5 columns"),
        ((np.full((2, 5), np.nan), np.zeros((3, 5)), np.zeros(5), np.zeros(3)), "v contains NaN"),
        ((np.ones((2, 5)), np.zeros((3, 5)), np.zeros(4), np.zeros(3)), "b_vis must have shape"),
    ],
)
def test_bad_input_raises_naming_the_argument(args, match):
    with pytest.raises(ValueError, match=match):
        pseudo_likelihood(*args)
