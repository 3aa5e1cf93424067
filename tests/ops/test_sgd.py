"""fastgen.ops.sgd_momentum_update against the update written out in NumPy, and its refusals."""
import numpy as np
import pytest

from fastgen.ops import sgd_momentum_update

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_velocity", [False, True])
def test_step_matches_the_formula(dtype, with_velocity):
    rng = np.random.default_rng(0)
    param = rng.normal(size=(7, 5)).astype(dtype)
    grad = rng.normal(size=(7, 5)).astype(dtype)
    velocity = rng.normal(size=(7, 5)).astype(dtype) if with_velocity else None
    p64, g64 = param.astype(np.float64), grad.astype(np.float64)
    step = 0.1 * (g64 - 0.01 * p64)
    if with_velocity:
        want_velocity = 0.5 * velocity.astype(np.float64) + step
        want = p64 + want_velocity
    else:
        want = p64 + step
    sgd_momentum_update(param, grad, velocity=velocity, learning_rate=0.1, momentum=0.5, weight_decay=0.01)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(param, want, rtol=0, atol=tol)
    if with_velocity:
        np.testing.assert_allclose(velocity, want_velocity, rtol=0, atol=tol)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(param=np.zeros(3, np.int32)), TypeError, "param must be float32 or float64"),
        (dict(param=np.zeros((3, 2)).T), ValueError, "param must be a writeable C-contiguous array"),
        (dict(grad=np.zeros(4)), ValueError, r"grad must have param's shape \(3,\)"),
        (dict(grad=np.array([0.0, np.nan, 0.0])), ValueError, "grad contains NaN"),
        (dict(velocity=np.zeros(3, np.float32)), ValueError, "velocity must be a float64 array of shape"),
        (dict(learning_rate=0.0), ValueError, "learning_rate must be > 0"),
        (dict(momentum=1.0), ValueError, "momentum must be < 1"),
        (dict(weight_decay=-0.1), ValueError, "weight_decay must be >= 0"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs, error, match):
    args = dict(param=np.zeros(3), grad=np.ones(3), learning_rate=0.1)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        sgd_momentum_update(args.pop("param"), args.pop("grad"), **args)
