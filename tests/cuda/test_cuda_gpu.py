"""The CUDA backend on a GPU (``gpu`` marker: skipped without CuPy and a CUDA device).

Same stream on every device: bitwise-equal Philox words / uniforms / normals, samplers and Gibbs
chains equal to the CPU's where the arithmetic is exact; interop round trips zero-copy; work on
the caller's stream; mixed devices refused; the estimator trains on the GPU keeping the data
there. Run with ``python -m pytest -m gpu tests/cuda`` (docs/GPU.md).
"""
from __future__ import annotations

import numpy as np
import pytest

import fastgen
from fastgen.models.rbm import RBM, ContrastiveDivergence
from fastgen.ops import cd_gradients, gibbs, sample_bernoulli, sample_gaussian

pytestmark = pytest.mark.gpu
cp = pytest.importorskip("cupy")


def torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    return torch


def dyadic_rbm(nv, nh, dtype, seed=0):
    """Weights and biases in multiples of 1/8: with 0/1 states every dot product is exact in any
    order, so CPU BLAS, cuBLAS and the fused kernel give identical logits."""
    rng = np.random.default_rng(seed)
    W = (rng.integers(-12, 13, (nh, nv)) / 8).astype(dtype)
    return W, (rng.integers(-8, 9, nv) / 8).astype(dtype), (rng.integers(-8, 9, nh) / 8).astype(dtype)


# ---- one stream everywhere ------------------------------------------------------------------
@pytest.mark.parametrize("n,seed,offset", [(1, 0, 0), (4099, 7, 3), (100_003, 2**63 + 5, 2**40 + 1)])
def test_gpu_philox_words_uniforms_and_normals_are_bitwise_the_cpus(n, seed, offset):
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


def test_graph_offset_buffer_reads_the_same_stream():
    from fastgen._native import cuda as _cuda

    rng_buf = cp.zeros(2, cp.uint64)
    _cuda.set_stream(rng_buf, 99, 1000)
    u = cp.empty(1001, cp.float32)
    _cuda.fill_uniform(u, 0, 5, rng=rng_buf)  # offset relative to the buffer's 1000
    np.testing.assert_array_equal(u.get(), fastgen.Generator(99, 1005).uniform(1001, np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bernoulli_and_gaussian_on_gpu_equal_the_cpu(dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((257, 131)) * 4).astype(dtype)
    bias = rng.standard_normal(131).astype(dtype)
    want_p, want_s = sample_bernoulli(x, bias, output="both", generator=fastgen.Generator(3, 7))
    got_p, got_s = sample_bernoulli(cp.asarray(x), cp.asarray(bias), output="both", generator=fastgen.Generator(3, 7))
    assert isinstance(got_p, cp.ndarray) and got_p.dtype == dtype
    # same formula (shared header, --fmad=false, IEEE division) and same uniforms: the
    # probabilities are bitwise equal, hence the states too
    np.testing.assert_array_equal(got_p.get(), want_p)
    np.testing.assert_array_equal(got_s.get(), want_s)
    p = rng.random((33, 65)).astype(dtype)
    np.testing.assert_array_equal(
        sample_bernoulli(cp.asarray(p), from_logits=False, generator=5).get(),
        sample_bernoulli(p, from_logits=False, generator=5))
    std = (rng.random(131) * 2).astype(dtype)
    np.testing.assert_array_equal(
        sample_gaussian(cp.asarray(x), cp.asarray(std), bias=cp.asarray(bias), generator=9).get(),
        sample_gaussian(x, std, bias=bias, generator=9))
    np.testing.assert_array_equal(sample_gaussian(cp.asarray(x), 0.5, generator=9).get(),
                                  sample_gaussian(x, 0.5, generator=9))


def test_samples_agree_except_near_ties_when_logits_are_computed_differently():
    # Logits from a GEMM (cuBLAS vs OpenBLAS round differently): the states may differ only
    # where the probability lies within a few ulp of the element's uniform.
    rng = np.random.default_rng(2)
    v = (rng.random((512, 784)) < 0.3).astype(np.float32)
    W = (rng.standard_normal((500, 784)) * 0.05).astype(np.float32)
    cpu_logits = v @ W.T
    gpu_logits = cp.asarray(v) @ cp.asarray(W).T
    cpu_p, cpu_s = sample_bernoulli(cpu_logits, output="both", generator=11)
    gpu_p, gpu_s = sample_bernoulli(gpu_logits, output="both", generator=11)
    u = fastgen.Generator(11).uniform(cpu_logits.size, np.float32).reshape(cpu_logits.shape)
    differ = cpu_s != gpu_s.get()
    assert np.all(np.abs(cpu_p[differ] - u[differ]) <= 1e-5), "a state differs away from a near-tie"
    assert differ.mean() < 1e-3


@pytest.mark.parametrize("method", ["fused", "graph", "eager"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gibbs_on_gpu_equals_the_cpu_chain_when_products_are_exact(method, dtype):
    W, b_vis, b_hid = dyadic_rbm(40, 24, dtype)
    v0 = (np.random.default_rng(3).random((50, 40)) < 0.5).astype(dtype)
    mask = np.zeros(40, bool)
    mask[::5] = True
    dev = [cp.asarray(a) for a in (W, b_vis, b_hid)]
    for call in range(3):  # graph: eager, then capture + replay, then replay with a new offset
        gen_cpu, gen_gpu = fastgen.Generator(21, 100 * call), fastgen.Generator(21, 100 * call)
        want, want_h = gibbs(v0, W, b_vis, b_hid, 15, generator=gen_cpu, clamp=mask, return_hidden=True)
        got, got_h = gibbs(cp.asarray(v0), *dev, 15, generator=gen_gpu, clamp=cp.asarray(mask), return_hidden=True,
                           method=method)
        np.testing.assert_array_equal(got.get(), want)
        np.testing.assert_allclose(got_h.get(), want_h, rtol=1e-6 if dtype == np.float32 else 1e-12)
        assert gen_cpu.offset == gen_gpu.offset
    assert np.array_equal(want[:, mask], v0[:, mask]) and 0.1 < want.mean() < 0.9


def test_gibbs_graph_replays_after_the_first_call():
    from fastgen._native import cuda as _cuda

    W, b_vis, b_hid = (cp.asarray(a) for a in dyadic_rbm(30, 20, np.float32))
    v = cp.asarray((np.random.default_rng(4).random((64, 30)) < 0.5).astype(np.float32))
    used = [_cuda.gibbs(v.copy(), W, b_vis, b_hid, 5, seed=1, first=2 * i, method="graph") for i in range(3)]
    assert used == ["eager", "graph", "graph"]


def test_cd_gradients_on_gpu_match_the_cpu():
    W, b_vis, b_hid = dyadic_rbm(30, 16, np.float64)
    v = (np.random.default_rng(5).random((32, 30)) < 0.4).astype(np.float64)
    chains = (np.random.default_rng(6).random((32, 16)) < 0.5).astype(np.float64)
    for persistent in (None, chains):
        want = cd_gradients(v, W, b_vis, b_hid, k=3, generator=4, persistent_chains=persistent)
        got = cd_gradients(cp.asarray(v), *(cp.asarray(a) for a in (W, b_vis, b_hid)), k=3, generator=4,
                           persistent_chains=None if persistent is None else cp.asarray(persistent))
        np.testing.assert_array_equal(got.chains.get(), want.chains)
        for g, w in zip(got[:3], want[:3]):
            np.testing.assert_allclose(g.get(), w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("momentum,persistent", [(0.0, True), (0.5, True), (0.0, False)])
def test_gpu_training_epochs_match_the_cpu_loop(momentum, persistent):
    # float64 and dyadic data/parameters: the first batches agree to rounding; over epochs the
    # trajectories may part at near-ties, so later epochs are compared loosely.
    W, b_vis, b_hid = dyadic_rbm(24, 12, np.float64, seed=7)
    data = (np.random.default_rng(8).random((64, 24)) < 0.4).astype(np.float64)

    def train(xp, epochs):
        rbm = RBM(*(xp.asarray(a).copy() for a in (W, b_vis, b_hid)))
        trainer = ContrastiveDivergence(learning_rate=0.125, persistent=persistent, n_chains=16, momentum=momentum,
                                        weight_decay=0.001)
        gen = fastgen.Generator(12)
        X = xp.asarray(data)
        for _ in range(epochs):
            trainer.run(rbm, X, 16, gen)
        return rbm, gen

    cpu, gen_cpu = train(np, 1)
    gpu, gen_gpu = train(cp, 1)
    assert gen_cpu.offset == gen_gpu.offset
    np.testing.assert_allclose(gpu.weights.get(), cpu.weights, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.visible_bias.get(), cpu.visible_bias, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.hidden_bias.get(), cpu.hidden_bias, rtol=1e-9, atol=1e-12)
    cpu5, _ = train(np, 5)   # epochs 2-5 replay the captured epoch graph on the GPU
    gpu5, _ = train(cp, 5)
    assert np.abs(gpu5.weights.get() - cpu5.weights).mean() < 0.05 * np.abs(cpu5.weights).mean()


# ---- interop --------------------------------------------------------------------------------
def test_cupy_and_torch_cuda_views_are_zero_copy_both_ways():
    from fastgen import _backend

    torch = torch_cuda()
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


def test_every_input_kind_returns_its_kind_on_its_device():
    torch = torch_cuda()
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


def test_mixed_devices_raise_naming_the_arguments():
    with pytest.raises(ValueError, match="bias is on the CPU but x is on cuda:0"):
        sample_bernoulli(cp.zeros((2, 3)), np.zeros(3))
    torch = torch_cuda()
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
    torch = torch_cuda()
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


def test_work_runs_on_cupys_current_stream():
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


def test_bernoulli_rbm_trains_on_the_gpu_keeping_the_data_there(monkeypatch):
    from fastgen._native import cuda as _cuda

    torch = torch_cuda()
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
