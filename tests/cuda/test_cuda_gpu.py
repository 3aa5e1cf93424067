"""The CUDA backend on a GPU, across ops (``gpu`` marker: skipped without CuPy and a CUDA device).

Same stream on every device: bitwise-equal Philox words / uniforms / normals; interop round trips
zero-copy; work on the caller's stream; mixed devices refused; the estimator trains on the GPU
keeping the data there. Each op's own GPU cases are in its test file (tests/ops/test_<op>.py).
Run with ``python -m pytest -m gpu tests`` (docs/GPU.md).
"""
from __future__ import annotations

import numpy as np
import pytest

import fastgen
from cuda_helpers import torch_cuda_or_skip
from fastgen.ops import gibbs, sample_bernoulli

pytestmark = pytest.mark.gpu


# ---- one stream everywhere ------------------------------------------------------------------
@pytest.mark.parametrize("n,seed,offset", [(1, 0, 0), (4099, 7, 3), (100_003, 2**63 + 5, 2**40 + 1)])
def test_gpu_philox_words_uniforms_and_normals_are_bitwise_the_cpus(cp, n, seed, offset):
    from fastgen._native import cuda as _cuda

    bits = cp.empty(n, cp.uint32)
    _cuda.fill_bits(bits, seed, offset)
    np.testing.assert_array_equal(bits.get(), fastgen.Generator(seed, offset).bits(n))
    for dtype in (np.float32, np.float64):
        u = cp.empty(n, dtype)
        _cuda.fill_uniform(u, seed, offset)
        np.testing.assert_array_equal(u.get(), fastgen.Generator(seed, offset).uniform(n, dtype))
        z = cp.empty(n, dtype)
        _cuda.fill_normal(z, seed, offset)
        np.testing.assert_array_equal(z.get(), fastgen.Generator(seed, offset).normal(n, dtype))


def test_graph_offset_buffer_reads_the_same_stream(cp):
    from fastgen._native import cuda as _cuda

    rng_buf = cp.zeros(2, cp.uint64)
    _cuda.set_stream(rng_buf, 99, 1000)
    u = cp.empty(1001, cp.float32)
    _cuda.fill_uniform(u, 0, 5, rng=rng_buf)  # offset relative to the buffer's 1000
    np.testing.assert_array_equal(u.get(), fastgen.Generator(99, 1005).uniform(1001, np.float32))


# ---- interop --------------------------------------------------------------------------------
def test_cupy_and_torch_cuda_views_are_zero_copy_both_ways(cp):
    from fastgen import _backend

    torch = torch_cuda_or_skip()
    t = torch.rand(5, 7, device="cuda")
    view = _backend.to_cupy(t, "x")
    assert view.data.ptr == t.data_ptr()
    back = _backend.wrap_like(view, t)
    assert isinstance(back, torch.Tensor) and back.is_cuda and back.data_ptr() == view.data.ptr
    c = cp.ones((3, 3), cp.float32)
    assert _backend.to_cupy(c, "x") is c
    assert _backend.to_cupy(_CAI(c), "x").data.ptr == c.data.ptr


class _CAI:
    def __init__(self, a):
        self.__cuda_array_interface__ = a.__cuda_array_interface__
        self._keep = a


class _DLPackOnly:
    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kw):
        return self._a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_every_input_kind_returns_its_kind_on_its_device(cp):
    torch = torch_cuda_or_skip()
    x = np.random.default_rng(9).standard_normal((6, 10)).astype(np.float32)
    want = sample_bernoulli(x, output="probs")
    t = torch.from_numpy(x).cuda()
    out = sample_bernoulli(t, output="probs")
    assert isinstance(out, torch.Tensor) and out.is_cuda and out.device == t.device
    np.testing.assert_array_equal(out.cpu().numpy(), want)
    out = sample_bernoulli(torch.from_numpy(x), output="probs")        # CPU torch stays CPU torch
    assert isinstance(out, torch.Tensor) and not out.is_cuda
    for producer in (_CAI(cp.asarray(x)), _DLPackOnly(cp.asarray(x))):  # foreign CUDA producers -> CuPy
        out = sample_bernoulli(producer, output="probs")
        assert isinstance(out, cp.ndarray)
        np.testing.assert_array_equal(out.get(), want)


def test_mixed_devices_raise_naming_the_arguments(cp):
    with pytest.raises(ValueError, match="bias is on the CPU but x is on cuda:0"):
        sample_bernoulli(cp.zeros((2, 3)), np.zeros(3))
    torch = torch_cuda_or_skip()
    with pytest.raises(ValueError, match="W is on the CPU but v is on cuda:0"):
        gibbs(torch.zeros(2, 3, device="cuda"), torch.zeros(4, 3), torch.zeros(3), torch.zeros(4))


_SPIN = r'''
extern "C" __global__ void spin(long long cycles) {
  long long start = clock64();
  while (clock64() - start < cycles) {}
}
'''


def test_work_runs_on_the_callers_torch_stream():
    # x is written on a non-blocking torch stream after a long spin; an op that ran on any other
    # stream without ordering would read x before the write lands.
    torch = torch_cuda_or_skip()
    x_host = np.random.default_rng(10).standard_normal((256, 256)).astype(np.float32)
    src = torch.from_numpy(x_host).cuda()
    stream = torch.cuda.Stream()
    torch.cuda.synchronize()
    with torch.cuda.stream(stream):
        x = torch.zeros_like(src)
        torch.cuda._sleep(200_000_000)
        x.copy_(src)
        out = sample_bernoulli(x, output="probs")
    stream.synchronize()
    np.testing.assert_array_equal(out.cpu().numpy(), sample_bernoulli(x_host, output="probs"))


def test_work_runs_on_cupys_current_stream(cp):
    spin = cp.RawKernel(_SPIN, "spin")
    x_host = np.random.default_rng(11).standard_normal((256, 256)).astype(np.float32)
    src = cp.asarray(x_host)
    cp.cuda.Device().synchronize()
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        x = cp.zeros_like(src)
        spin((1,), (1,), (np.int64(200_000_000),))
        x[...] = src
        out = sample_bernoulli(x, output="probs")
    stream.synchronize()
    np.testing.assert_array_equal(out.get(), sample_bernoulli(x_host, output="probs"))


# ---- the estimator --------------------------------------------------------------------------
def _digits():
    from sklearn.datasets import load_digits

    return (load_digits().data[:1000] / 16.0 > 0.5).astype(np.float32)


def test_bernoulli_rbm_trains_on_the_gpu_keeping_the_data_there(cp, monkeypatch):
    from fastgen._native import cuda as _cuda

    torch = torch_cuda_or_skip()
    X = _digits()
    seen = []
    real = _cuda.train_epoch

    def spy(W, b_vis, b_hid, data, **kw):
        seen.append(int(data.data.ptr))
        return real(W, b_vis, b_hid, data, **kw)

    monkeypatch.setattr(_cuda, "train_epoch", spy)
    params = dict(n_components=64, batch_size=20, n_iter=5, learning_rate=0.05, random_state=0)
    cpu = fastgen.BernoulliRBM(device="cpu", **params).fit(X)
    assert not seen
    X_cp = cp.asarray(X)
    gpu = fastgen.BernoulliRBM(**params).fit(X_cp)          # device="auto" follows the data
    assert seen and set(seen) == {X_cp.data.ptr}             # the caller's array, never copied
    assert isinstance(gpu.components_, np.ndarray) and gpu.components_.dtype == np.float32
    X_t = torch.from_numpy(X).cuda()
    seen.clear()
    fastgen.BernoulliRBM(**params).fit(X_t)
    assert set(seen) == {X_t.data_ptr()}
    seen.clear()
    fastgen.BernoulliRBM(device="cuda", **params).fit(X)      # host data copied once
    assert len(set(seen)) == 1 and len(seen) == params["n_iter"]
    # same algorithm and stream: the models agree statistically (GEMM rounding parts the chains)
    pl_cpu, pl_gpu = cpu.score_samples(X).mean(), gpu.score_samples(X).mean()
    assert abs(pl_gpu - pl_cpu) < 0.05 * abs(pl_cpu), (pl_cpu, pl_gpu)
    h = gpu.transform(X_cp)
    assert isinstance(h, cp.ndarray)
    np.testing.assert_allclose(h.get(), gpu.transform(X), rtol=1e-5, atol=1e-6)
    gpu.partial_fit(X_cp[:100])
    assert np.all(np.isfinite(gpu.components_))


def test_bernoulli_rbm_device_errors_name_the_parameter():
    with pytest.raises(ValueError, match="parallel tempering"):
        fastgen.BernoulliRBM(n_temperatures=2, device="cuda").fit(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="device"):
        fastgen.BernoulliRBM(device="cuda:x").fit(np.zeros((4, 3)))
