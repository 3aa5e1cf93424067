"""The VAE / pooling / transposed-convolution CUDA kernels on a GPU (``gpu`` marker: skipped
without CuPy and a CUDA device). Run with ``python -m pytest -m gpu tests/cuda`` (docs/GPU.md).

Against the CPU (fastgen._C): reparameterised z and its backward bitwise (same Philox counters),
likelihood backward passes, pooling and the transposed convolution's output pass / im2col bitwise,
row sums to double rounding; the ops for CuPy arrays and the torch ops for CUDA tensors
(torch.library.opcheck, gradcheck in float64, torch.compile fullgraph), on the caller's stream.
"""
from __future__ import annotations

import numpy as np
import pytest

from fastgen._native import cpu as _cpu
from fastgen.ops import conv as ops_conv
from fastgen.ops import elbo, pool

pytestmark = pytest.mark.gpu
cp = pytest.importorskip("cupy")


def torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    return torch


def _vae():
    from fastgen._native import cuda as _cuda, cuda_vae as _cuda_vae

    if not _cuda.available():
        pytest.skip(_cuda.unavailable_reason())
    return _cuda_vae


# ---- reparameterisation ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (129, 20), (64, 783), (3, 5000)])
def test_reparam_forward_and_backward_match_the_cpu(dtype, shape):
    v = _vae()
    rows, cols = shape
    rng = np.random.default_rng(cols)
    mu = rng.standard_normal(shape).astype(dtype)
    lv = rng.standard_normal(shape).astype(dtype)
    seed, offset = 2**63 + 3, 2**35 + 7
    z, kl = cp.empty(shape, dtype), cp.empty(rows, dtype)
    v.reparameterize(cp.asarray(mu), cp.asarray(lv), z, kl, seed=seed, offset=offset)
    want_z, want_kl = np.empty_like(mu), np.empty(rows, dtype)
    _cpu.C.reparameterize_forward(mu, lv, want_z, want_kl, seed, offset)
    np.testing.assert_array_equal(z.get(), want_z)
    np.testing.assert_allclose(kl.get(), want_kl, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    gz, gk = rng.standard_normal(shape).astype(dtype), rng.standard_normal(rows).astype(dtype)
    for a, b in ((gz, gk), (gz, None), (None, gk)):
        dmu, dlv = cp.empty(shape, dtype), cp.empty(shape, dtype)
        v.reparameterize_backward(None if a is None else cp.asarray(a), None if b is None else cp.asarray(b),
                                  cp.asarray(mu), cp.asarray(lv), dmu, dlv, seed=seed, offset=offset)
        want_mu, want_lv = np.empty_like(mu), np.empty_like(mu)
        _cpu.C.reparameterize_backward(a, b, mu, lv, want_mu, want_lv, seed, offset)
        np.testing.assert_array_equal(dmu.get(), want_mu)
        np.testing.assert_array_equal(dlv.get(), want_lv)


def test_reparam_with_row_strides_and_repeatable_kl():
    v = _vae()
    rng = np.random.default_rng(0)
    both = cp.asarray(rng.standard_normal((50, 40)))
    mu, lv = both[:, :20], both[:, 20:]  # the encoder's split output: strided rows
    z1, kl1, z2, kl2 = cp.empty((50, 20)), cp.empty(50), cp.empty((50, 20)), cp.empty(50)
    v.reparameterize(mu, lv, z1, kl1, seed=1, offset=2)
    v.reparameterize(mu, lv, z2, kl2, seed=1, offset=2)
    np.testing.assert_array_equal(kl1.get(), kl2.get())
    want_z, want_kl = np.empty((50, 20)), np.empty(50)
    _cpu.C.reparameterize_forward(np.ascontiguousarray(mu.get()), np.ascontiguousarray(lv.get()), want_z, want_kl, 1, 2)
    np.testing.assert_array_equal(z1.get(), want_z)


# ---- likelihoods -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", [1, 20, 784, 3000])
def test_likelihoods_on_cupy_match_the_cpu(dtype, cols):
    rng = np.random.default_rng(cols)
    x = (rng.random((67, cols)) < 0.4).astype(dtype)
    logits = rng.uniform(-4, 4, x.shape).astype(dtype)
    got = elbo.bernoulli_log_likelihood(cp.asarray(x), cp.asarray(logits))
    assert isinstance(got, cp.ndarray) and got.dtype == dtype
    want = elbo.bernoulli_log_likelihood(x, logits)
    if dtype == np.float32:  # float32 terms in [0.018, 4.1]: exact double sums, any order
        np.testing.assert_array_equal(got.get(), want)
    else:
        np.testing.assert_allclose(got.get(), want, rtol=1e-13)
    for lv in (None, rng.uniform(-1, 1, cols).astype(dtype), rng.uniform(-1, 1, x.shape).astype(dtype)):
        got = elbo.gaussian_log_likelihood(cp.asarray(logits), cp.asarray(x), None if lv is None else cp.asarray(lv))
        np.testing.assert_allclose(got.get(), elbo.gaussian_log_likelihood(logits, x, lv),
                                   rtol=1e-6 if dtype == np.float32 else 1e-13)


def test_likelihood_errors_on_the_gpu_name_the_argument():
    x = cp.zeros((2, 3))
    with pytest.raises(ValueError, match="x must lie in"):
        elbo.bernoulli_log_likelihood(x + 2, x)
    with pytest.raises(ValueError, match="logits contains NaN"):
        elbo.bernoulli_log_likelihood(x, x + cp.nan)
    with pytest.raises(ValueError, match="logvar must have x's shape"):
        elbo.gaussian_log_likelihood(x, x, cp.zeros(2))


# ---- pooling -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("window", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_pooling_on_cupy_is_the_cpu_bitwise(dtype, window):
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


# ---- transposed convolution ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [0, 1, 2, 3, 4])
def test_conv_transpose_pieces_match_the_cpu(dtype, activation):
    v = _vae()
    rng = np.random.default_rng(activation)
    x = rng.standard_normal((4, 6, 7, 7)).astype(dtype)
    w = rng.standard_normal((6, 3, 4, 4)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    geom = ops_conv.conv_transpose_geometry(x.shape, w.shape, b.shape, 2, 1, 1)
    cols = (w.reshape(6, -1).T @ x.transpose(1, 0, 2, 3).reshape(6, -1)).astype(dtype)
    out = cp.empty((4, 3) + geom[5:7], dtype)
    v.conv_transpose2d_output(cp.asarray(cols), cp.asarray(b), out, geom, activation, 0.2)
    want = ops_conv.output_pass(np.ascontiguousarray(cols), b, geom, activation, 0.2, np.dtype(dtype))
    np.testing.assert_array_equal(out.get(), want)  # same cols: bitwise
    full = v.conv_transpose2d(cp.asarray(x), cp.asarray(w), cp.asarray(b), geom, activation, 0.2)
    np.testing.assert_allclose(full.get(), want, rtol=1e-4 if dtype == np.float32 else 1e-11, atol=1e-5)
    grad = rng.standard_normal(want.shape).astype(dtype)
    c_gpu = cp.empty(cols.shape, dtype)
    v.conv_transpose2d_im2col(cp.asarray(grad), c_gpu, geom)
    c_cpu = np.empty_like(cols)
    _cpu.C.conv_transpose2d_im2col(grad, c_cpu, geom)
    np.testing.assert_array_equal(c_gpu.get(), c_cpu)
    g_in = cp.empty_like(out)
    v.activation_backward(cp.asarray(grad), out, g_in, activation, 0.2)
    want_g = np.empty_like(grad)
    _cpu.C.activation_backward(grad, want, want_g, activation, dtype(0.2))
    np.testing.assert_array_equal(g_in.get(), want_g)


def test_conv_transpose_backward_matches_torch_autograd():
    torch = torch_cuda()
    v = _vae()
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.standard_normal((3, 4, 5, 5)), device="cuda", requires_grad=True)
    w = torch.tensor(rng.standard_normal((4, 2, 4, 4)), device="cuda", requires_grad=True)
    b = torch.tensor(rng.standard_normal(2), device="cuda", requires_grad=True)
    y = torch.tanh(torch.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=1))
    g = torch.randn_like(y)
    y.backward(g)
    geom = ops_conv.conv_transpose_geometry(tuple(x.shape), tuple(w.shape), (2,), 2, 1, 0)
    gx, gw, gb = v.conv_transpose2d_backward(cp.from_dlpack(g), cp.from_dlpack(y.detach()),
                                             cp.from_dlpack(x.detach()), cp.from_dlpack(w.detach()), geom, 3, 0.0)
    for got, want in ((gx, x.grad), (gw, w.grad), (gb, b.grad)):
        np.testing.assert_allclose(got.get(), want.cpu().numpy(), rtol=1e-9, atol=1e-10)


# ---- torch ops on CUDA tensors -----------------------------------------------------------------
def test_torch_likelihood_ops_on_cuda_opcheck_gradcheck_compile():
    torch = torch_cuda()
    from fastgen.torch import elbo as telbo

    rng = np.random.default_rng(0)
    x = torch.tensor((rng.random((5, 2, 3)) < 0.5).astype(np.float64), device="cuda")
    logits = torch.tensor(rng.standard_normal((5, 2, 3)), device="cuda", requires_grad=True)
    mean = torch.tensor(rng.standard_normal((5, 2, 3)), device="cuda", requires_grad=True)
    lv_feat = torch.tensor(rng.uniform(-1, 1, (2, 3)), device="cuda", requires_grad=True)
    lv_elem = torch.tensor(rng.uniform(-1, 1, (5, 2, 3)), device="cuda", requires_grad=True)
    got = telbo.bernoulli_log_likelihood(x, logits)
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.detach().cpu().numpy(),
                               telbo.bernoulli_log_likelihood(x.cpu(), logits.detach().cpu()).numpy(), rtol=1e-13)
    torch.library.opcheck(torch.ops.fastgen.bernoulli_log_likelihood.default, (x, logits))
    torch.library.opcheck(torch.ops.fastgen.gaussian_log_likelihood.default, (x, mean, lv_feat))
    torch.library.opcheck(torch.ops.fastgen.gaussian_log_likelihood.default, (x, mean, None))
    assert torch.autograd.gradcheck(lambda l: telbo.bernoulli_log_likelihood(x, l), (logits,))
    for lv in (lv_feat, lv_elem):
        assert torch.autograd.gradcheck(lambda m, v: telbo.gaussian_log_likelihood(x, m, v), (mean, lv))
    compiled = torch.compile(lambda a, b, c: telbo.gaussian_log_likelihood(a, b, c).sum(), fullgraph=True)
    loss = compiled(x, mean, lv_feat)
    loss.backward()
    assert lv_feat.grad is not None and lv_feat.grad.device.type == "cuda"


def test_torch_pool_ops_on_cuda_opcheck_gradcheck_compile():
    torch = torch_cuda()
    from fastgen.torch import pool as tpool

    rng = np.random.default_rng(1)
    x = torch.tensor(rng.standard_normal((2, 3, 6, 6)), device="cuda", requires_grad=True)
    out, idx = tpool.max_pool2d(x, 2)
    want_out, want_idx = tpool.max_pool2d(x.detach().cpu(), 2)
    assert torch.equal(out.detach().cpu(), want_out) and torch.equal(idx.cpu(), want_idx)
    torch.library.opcheck(torch.ops.fastgen.max_pool2d.default, (x, [3, 3], [2, 2], [1, 1]))
    torch.library.opcheck(torch.ops.fastgen.max_unpool2d.default, (out.detach().requires_grad_(), idx, [6, 6]))
    torch.library.opcheck(torch.ops.fastgen.avg_unpool2d.default, (out.detach().requires_grad_(), [2, 2]))
    assert torch.autograd.gradcheck(lambda a: tpool.max_pool2d(a, 3, 2, 1)[0], (x,))
    small = out.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a: tpool.max_unpool2d(a, idx, (6, 6)), (small,))
    assert torch.autograd.gradcheck(lambda a: tpool.avg_unpool2d(a, (2, 3)), (small,))

    def f(a):
        o, i = tpool.max_pool2d(a, 2)
        return tpool.avg_unpool2d(tpool.max_unpool2d(o, i, (6, 6)), 1).sum()

    compiled = torch.compile(f, fullgraph=True)
    compiled(x).backward()
    assert x.grad is not None and x.grad.device.type == "cuda"


def test_torch_cuda_ops_run_on_the_callers_stream():
    torch = torch_cuda()
    from fastgen.torch import elbo as telbo

    x = torch.rand(256, 784, device="cuda").round()
    logits = torch.randn(256, 784, device="cuda")
    want = telbo.bernoulli_log_likelihood(x, logits)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        logits2 = logits * 1  # written on the side stream: the op must see it there
        got = telbo.bernoulli_log_likelihood(x, logits2)
    torch.cuda.current_stream().wait_stream(side)
    assert torch.equal(got, want)


def test_cuda_tensor_mixed_with_a_cpu_tensor_is_refused():
    torch = torch_cuda()
    from fastgen.torch import elbo as telbo

    with pytest.raises(ValueError, match="logits is on cpu but x is on cuda"):
        telbo.bernoulli_log_likelihood(torch.zeros(2, 3, device="cuda"), torch.zeros(2, 3))
