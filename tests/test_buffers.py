"""fastgen._buffers: large op results in reusable memory maps, reused only when nothing can
reach them any more."""
from __future__ import annotations

import gc

import numpy as np
import pytest

from fastgen import _buffers


@pytest.fixture(autouse=True)
def _collect():
    gc.collect()
    yield
    gc.collect()


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_small_results_are_plain_numpy_arrays():
    a = _buffers.empty((3, 4), np.float32)
    assert a.shape == (3, 4) and a.dtype == np.float32 and a.flags.owndata


def test_a_released_map_is_reused_for_the_next_result_of_its_size():
    a = _buffers.empty((1024, 256), np.float64)
    assert a.shape == (1024, 256) and a.dtype == np.float64 and a.flags.c_contiguous and a.flags.writeable
    where = _address(a)
    del a
    b = _buffers.empty((1024, 256), np.float64)
    assert _address(b) == where
    c = _buffers.empty((1024, 256), np.float64)  # b still alive: a new map
    assert _address(c) != where


def test_views_and_tensors_keep_the_memory_from_being_reused():
    a = _buffers.empty((512, 512), np.float32)
    a[:] = 7.0
    view = a[3:, ::2]
    reshaped = a.reshape(-1)
    where = _address(a)
    del a
    b = _buffers.empty((512, 512), np.float32)
    assert _address(b) != where
    b[:] = -1.0
    assert np.all(view == 7.0) and np.all(reshaped == 7.0)
    del view, reshaped, b
    torch = pytest.importorskip("torch")
    c = _buffers.empty((512, 512), np.float32)
    c[:] = 3.0
    t = torch.from_numpy(c)[1:]
    where = _address(c)
    del c
    d = _buffers.empty((512, 512), np.float32)
    assert _address(d) != where
    d[:] = 0.0
    assert bool((t == 3.0).all())


def test_the_pool_keeps_at_most_its_limit(monkeypatch):
    monkeypatch.setattr(_buffers, "MAX_POOLED_BYTES", 3 << 20)
    monkeypatch.setattr(_buffers, "_free", {})
    monkeypatch.setattr(_buffers, "_pooled", 0)
    arrays = [_buffers.empty((1 << 18,), np.float32) for _ in range(5)]  # 1 MB each
    assert _buffers.pooled_bytes() == 0
    del arrays
    assert _buffers.pooled_bytes() == 3 << 20  # three kept, two unmapped
