"""Pooling kernels (fastgen.ops.pool) against torch.nn.functional as the reference, and their
errors; the torch ops' autograd/opcheck/compile are in tests/torch/test_torch_pool.py.

On a GPU (``gpu`` marker): pooling, scatter, gather and unpooling on CuPy arrays are the CPU's
bitwise."""
from __future__ import annotations

import numpy as np
import pytest

from fastgen.ops import pool

from fastgen.ops.pool import avg_unpool2d, max_pool2d, max_unpool2d

torch = pytest.importorskip("torch")
F = torch.nn.functional

DTYPES = [np.float32, np.float64]
CASES = [  # (shape, kernel, stride, padding)
    ((2, 3, 9, 7), 3, 2, 1),
    ((1, 1, 1, 1), 1, 1, 0),
    ((2, 2, 8, 8), 2, None, 0),
    ((1, 4, 129, 5), (3, 2), (2, 1), (1, 0)),
    ((3, 1, 4, 4), 4, 1, 2),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kernel,stride,padding", CASES)
def test_max_pool_and_unpool_match_torch(shape, kernel, stride, padding, dtype):
    x = np.random.default_rng(sum(shape)).normal(size=shape).astype(dtype)
    x_copy = x.copy()
    out, indices = max_pool2d(x, kernel, stride, padding)
    t_out, t_idx = F.max_pool2d(torch.from_numpy(x), kernel, stride, padding, return_indices=True)
    np.testing.assert_array_equal(out, t_out.numpy())
    np.testing.assert_array_equal(indices, t_idx.numpy())
    restored = max_unpool2d(out, indices, shape[2:])
    expected = F.max_unpool2d(t_out, t_idx, kernel, stride, padding, output_size=shape[2:])
    np.testing.assert_array_equal(restored, expected.numpy())
    np.testing.assert_array_equal(x, x_copy)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", [1, 2, (2, 3)])
def test_avg_unpool_is_undone_by_avg_pool(kernel, dtype):
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype(dtype)
    up = avg_unpool2d(x, kernel)
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    assert up.shape == (2, 3, 5 * k[0], 4 * k[1])
    np.testing.assert_array_equal(up, np.repeat(np.repeat(x, k[0], axis=2), k[1], axis=3))
    np.testing.assert_allclose(F.avg_pool2d(torch.from_numpy(up), k).numpy(), x, rtol=1e-6)


def test_ties_pick_the_first_maximum_and_empty_batches_work():
    x = np.zeros((1, 1, 2, 2))
    out, idx = max_pool2d(x, 2)
    assert out[0, 0, 0, 0] == 0 and idx[0, 0, 0, 0] == 0
    out, idx = max_pool2d(np.zeros((0, 3, 4, 4)), 2)
    assert out.shape == (0, 3, 2, 2) and idx.shape == (0, 3, 2, 2)
    assert max_unpool2d(out, idx, (4, 4)).shape == (0, 3, 4, 4)


def test_torch_cpu_tensors_come_back_as_tensors():
    x = torch.randn(1, 2, 4, 4)
    out, idx = max_pool2d(x, 2)
    assert isinstance(out, torch.Tensor) and idx.dtype == torch.int64


def test_non_contiguous_input_equals_its_copy():
    x = np.random.default_rng(1).normal(size=(2, 3, 8, 10))[:, :, :, ::2]
    a = max_pool2d(x, 2)
    b = max_pool2d(np.ascontiguousarray(x), 2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_bad_input_is_refused_with_the_argument_named():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="x must be 4-D"):
        max_pool2d(np.zeros((4, 4)), 2)
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        max_pool2d(x, 0)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        max_pool2d(x, 2, stride=-1)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        max_pool2d(x, 2, padding=-1)
    with pytest.raises(ValueError, match="padding must be at most half"):
        max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="does not fit the input"):
        max_pool2d(x, 5)
    with pytest.raises(ValueError, match="kernel_size must be an int or a pair"):
        max_pool2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match="x contains NaN"):
        max_pool2d(np.full((1, 1, 2, 2), np.nan), 2)
    out, idx = max_pool2d(x, 2)
    with pytest.raises(ValueError, match="indices must lie in"):
        max_unpool2d(out, idx + 100, (4, 4))
    with pytest.raises(ValueError, match="indices must have the shape"):
        max_unpool2d(out, idx[:, :, :1], (4, 4))
    with pytest.raises(TypeError, match="indices must be an integer array"):
        max_unpool2d(out, idx.astype(float), (4, 4))
    with pytest.raises(ValueError, match="output_size must be >= 1"):
        max_unpool2d(out, idx, (0, 4))


# ==== on a GPU (CuPy arrays and torch CUDA tensors against the CPU) =============================


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("window", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_pooling_on_cupy_is_the_cpu_bitwise(cp, dtype, window):
    k, s, p = window
    rng = np.random.default_rng(k + s)
    x = rng.integers(-3, 4, (8, 5, 13, 11)).astype(dtype)  # ties everywhere
    out, idx = pool.max_pool2d(cp.asarray(x), k, s, p)
    want_out, want_idx = pool.max_pool2d(x, k, s, p)
    np.testing.assert_array_equal(out.get(), want_out)
    np.testing.assert_array_equal(idx.get(), want_idx)
    grad = rng.standard_normal(want_out.shape).astype(dtype)
    np.testing.assert_array_equal(pool.scatter_cupy(cp.asarray(grad), idx, x.shape[2:], True).get(),
                                  pool.scatter_numpy(grad, want_idx, x.shape[2:], True))
    if s >= k:  # distinct indices: unpooling is exact
        np.testing.assert_array_equal(pool.max_unpool2d(out, idx, x.shape[2:]).get(),
                                      pool.max_unpool2d(want_out, want_idx, x.shape[2:]))
    big = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(pool.gather_cupy(cp.asarray(big), idx).get(), pool.gather_numpy(big, want_idx))
    np.testing.assert_array_equal(pool.avg_unpool2d(cp.asarray(x), (2, 3)).get(), pool.avg_unpool2d(x, (2, 3)))
    np.testing.assert_array_equal(pool.avg_unpool2d_cupy(cp.asarray(big), (1, 1), backward=True).get(),
                                  pool.avg_unpool2d_numpy(big, (1, 1), backward=True))
