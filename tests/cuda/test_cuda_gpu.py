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


# ---- issue 27: what the toolchain must not change ----------------------------------------------
def test_float32_sigmoid_tails_are_the_cpus(cp):
    # sigmoid(x) for x in [-104, -80] sits at the bottom of float32's normal range (fg_exp's floor
    # is exp(-87) ~ 1.6e-38), where a flush-to-zero build rounds intermediates differently.
    logits = np.linspace(-104.0, -80.0, 4128, dtype=np.float32).reshape(32, 129)
    bias = np.linspace(-1.0, 1.0, 129, dtype=np.float32)
    for b in (None, bias):
        want = sample_bernoulli(logits, b, output="probs")
        assert (want > 0).all() and want.min() < 1e-37
        got = sample_bernoulli(cp.asarray(logits), None if b is None else cp.asarray(b), output="probs")
        np.testing.assert_array_equal(got.get(), want)


def test_softplus_of_large_logits_and_subnormal_categorical_logits_match_the_cpu(cp):
    from fastgen.ops import bernoulli_log_likelihood, sample_categorical

    rng = np.random.default_rng(27)
    logits = rng.uniform(86.0, 104.0, (16, 129)).astype(np.float32) * rng.choice([-1, 1], (16, 129)).astype(np.float32)
    x = (rng.random((16, 129)) < 0.5).astype(np.float32)
    want = bernoulli_log_likelihood(x, logits)
    got = bernoulli_log_likelihood(cp.asarray(x), cp.asarray(logits)).get()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    tiny = np.float32(np.finfo(np.float32).smallest_subnormal)
    sub = np.zeros((64, 33), np.float32)
    sub[:, ::2] = tiny * np.arange(1, 18, dtype=np.float32)   # subnormal, distinct from 0
    for top_k in (None, 3):
        want_k = sample_categorical(sub, top_k=top_k, generator=fastgen.Generator(5))
        got_k = sample_categorical(cp.asarray(sub), top_k=top_k, generator=fastgen.Generator(5)).get()
        np.testing.assert_array_equal(got_k, want_k)


def test_the_epoch_graph_replays_only_for_the_same_shapes(cp, monkeypatch):
    # fit(X[:1000]) then fit(X[:2000]): one data pointer, two shapes; each replay equals an eager
    # run of its own shape.
    from fastgen._native import cuda as _cuda, graphs

    rng = np.random.default_rng(3)
    X = cp.asarray((rng.random((2000, 30)) < 0.3).astype(np.float32))
    W0 = (0.1 * rng.standard_normal((20, 30))).astype(np.float32)

    W, bv, bh = cp.empty((20, 30), cp.float32), cp.empty(30, cp.float32), cp.empty(20, cp.float32)

    def epoch(rows, seed, first):
        W.set(W0)
        bv.fill(0)
        bh.fill(0)
        how = _cuda.train_epoch(W, bv, bh, X[:rows], batch_size=100, cd_k=1, lr=0.05, momentum=0.0,
                                weight_decay=0.0, seed=seed, first=first)
        return how, W.get()

    _cuda.clear_graphs()
    runs = [(rows, epoch(rows, 9, 4 * i)) for i, rows in enumerate((1000, 2000, 1000, 2000, 1000, 2000))]
    monkeypatch.setattr(graphs, "graphs_enabled", lambda: False)
    for i, (rows, (how, W)) in enumerate(runs):
        eager = epoch(rows, 9, 4 * i)
        assert eager[0] == "eager"
        np.testing.assert_array_equal(W, eager[1], err_msg=f"run {i} ({rows} rows, {how})")
    assert [how for _, (how, _) in runs] == ["eager", "eager", "graph", "graph", "graph", "graph"]


def test_graph_capture_of_cublas_gemms_works_and_warns_nothing(cp, recwarn):
    from fastgen._native import cuda as _cuda

    rng = np.random.default_rng(8)
    W = cp.asarray((0.1 * rng.standard_normal((24, 40))).astype(np.float64))
    bv, bh = cp.zeros(40, cp.float64), cp.zeros(24, cp.float64)
    v = cp.asarray((rng.random((300, 40)) < 0.5).astype(np.float64))
    _cuda.clear_graphs()
    outs = []
    for _ in range(3):
        out = v.copy()
        outs.append((_cuda.gibbs(out, W, bv, bh, 4, seed=3, first=0, method="graph"), out.get()))
    assert [m for m, _ in outs] == ["eager", "graph", "graph"]
    np.testing.assert_array_equal(outs[1][1], outs[0][1])
    np.testing.assert_array_equal(outs[2][1], outs[0][1])
    assert not [w for w in recwarn if "graph capture" in str(w.message)]


def test_the_toolchain_probe_passes_where_a_device_is():
    # Not on the cp fixture: that fixture skips when the probe fails, which would hide a probe
    # that wrongly fails on a working GPU behind skipped tests.
    cupy = pytest.importorskip("cupy")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        pytest.skip(f"no CUDA device ({exc})")
    if count < 1:
        pytest.skip("no CUDA device")
    from fastgen._native import cublas, cuda as _cuda

    assert _cuda.unavailable_reason() is None
    assert cublas.version() >= 11000
