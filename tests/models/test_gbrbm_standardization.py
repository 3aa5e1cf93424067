"""fastgen.models.gbrbm's standardisation: the round trip and the not-standardised warning."""
import warnings

import numpy as np
import pytest

from fastgen.models.gbrbm import check_standardized, destandardize, standardization_problems, standardize

DTYPES = [np.float32, np.float64]


# ---- standardisation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_standardize_round_trip(dtype):
    X = np.random.default_rng(0).normal([3.0, -1.0, 100.0, 0.0], [2.0, 0.1, 30.0, 1.0], size=(500, 4)).astype(dtype)
    X[:, 3] = 7.0  # constant feature
    Z, mean, std = standardize(X)
    assert Z.dtype == mean.dtype == std.dtype == dtype and Z.shape == X.shape
    np.testing.assert_allclose(Z[:, :3].mean(axis=0), 0.0, atol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(Z[:, :3].std(axis=0), 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert std[3] == 1.0 and not Z[:, 3].any()
    back = destandardize(Z, mean, std)
    assert back.dtype == dtype
    error = np.abs(back.astype(np.float64) - X) / np.abs(X).max(axis=0)  # relative to each feature's scale
    assert error.max() < (1e-6 if dtype == np.float32 else 1e-14)
    assert standardize(X.astype(np.int64))[0].dtype == np.float64
    with pytest.raises(ValueError, match="NaN"):
        standardize(np.array([[np.nan, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        standardize(np.zeros(3))
    with pytest.raises(ValueError, match="0 samples"):
        standardize(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="mean and std"):
        destandardize(Z, mean[:2], std)


def test_standardised_data_never_warns_at_any_sample_size():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed in range(100):
            rng = np.random.default_rng(seed)
            for n in (1, 2, 5, 20, 1000):
                assert check_standardized(rng.normal(size=(n, 50)))
        assert check_standardized(standardize(np.random.default_rng(0).gamma(2.0, 3.0, (300, 20)))[0])
        assert check_standardized(np.zeros((10, 4)))  # constant zero features: as standardize leaves them


@pytest.mark.parametrize(
    "transform,what",
    [
        (lambda z: z + 2.0, "mean"),
        (lambda z: 3.0 * z, "std"),
        (lambda z: 0.1 * z, "std"),
        (lambda z: np.clip(np.round(128 + 60 * z), 0, 255), "mean"),  # raw 8-bit pixels
        (lambda z: (z > 0).astype(float), "mean"),                      # binary data, mean 0.5, std 0.5
        (lambda z: 2.0 * z, "std"),
    ],
)
def test_data_that_is_not_standardised_warns(transform, what):
    X = transform(np.random.default_rng(0).normal(size=(1000, 8)))
    with pytest.warns(UserWarning, match=f"X does not look standardised: feature \\d+ has {what}"):
        assert not check_standardized(X)
    assert standardization_problems(X)
    assert standardization_problems(standardize(X)[0]) == []
