"""The CUDA paths of ``fastgen.ops.reparameterize``, ``torch.ops.fastgen.reparameterize`` (and its
backward op) and ``fastgen.ops.conv.conv_transpose2d``.

``gpu`` tests (skipped without CuPy and a CUDA device; run by bench/gpu_check.sh): on CuPy arrays
and torch CUDA tensors, z and both gradients are the CPU's bit for bit (same Philox counters),
KL row sums agree with the CPU's within a per-dtype tolerance (and bitwise when every partial
sum is exact), the transposed convolution and its backward agree with the CPU op to rounding;
bad input (devices mixed, NaN / infinity, mismatched shapes) raises the CPU's errors;
``torch.library.opcheck`` passes on CUDA tensors; the work runs on the caller's stream.

The rest runs anywhere: the CUDA dispatch with CuPy hidden gives the documented TypeError,
device mixes the documented ValueError, NumPy input never loads the CUDA modules, and the CUDA
glue's Python (validation, output allocation, launcher arguments, the NaN search) runs on a
NumPy stand-in for CuPy with the launchers replaced by the CPU kernels.
"""
from __future__ import annotations

import inspect
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import fastgen
from fastgen._native import cpu as _cpu
from fastgen.ops import conv as ops_conv
from fastgen.ops import reparam as ops_reparam
from fake_cuda import FakeCudaArray as _FakeCudaArray

REPO = Path(__file__).resolve().parents[2]
DTYPES = [np.float32, np.float64]
# KL row sums: the GPU adds the row's terms in a shuffle tree, the CPU in its SIMD order; the
# bound is relative to the sum of the terms' magnitudes (float32 keeps 24 bits).
KL_RTOL = {np.float32: 1e-5, np.float64: 1e-13}
# the transposed convolution: cuBLAS and the CPU's BLAS sum the taps in other orders
CONV_RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def _run_python(code: str, **env):
    import os

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env=dict(os.environ, **env), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1.5, shape).astype(dtype), rng.normal(0, 1, shape).astype(dtype)


def kl_scale(mu, logvar):
    mu64, lv64 = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
    return (0.5 * np.abs(mu64 ** 2 + np.exp(lv64) - 1 - lv64)).sum(axis=-1) + 1e-30


# ==== anywhere: dispatch without a GPU ==========================================================
_NO_CUPY = "import sys; sys.modules['cupy'] = None\n"  # `import cupy` now raises ImportError


def test_cuda_input_without_cupy_raises_the_documented_error():
    code = _NO_CUPY + (
        "import numpy as np, pytest\n"
        "from fastgen.ops import reparameterize\n"
        "from fastgen.ops.conv import conv_transpose2d\n"
        "class Fake:\n"
        "    def __init__(self, shape):\n"
        "        self.__cuda_array_interface__ = {'shape': shape, 'typestr': '<f4', 'data': (0, False),"
        " 'version': 3}\n"
        "for call, name in ((lambda: reparameterize(Fake((2, 3)), Fake((2, 3))), 'mu'),\n"
        "                   (lambda: conv_transpose2d(Fake((1, 2, 3, 3)), Fake((2, 1, 2, 2))), 'x')):\n"
        "    with pytest.raises(TypeError) as info:\n"
        "        call()\n"
        "    msg = str(info.value)\n"
        "    want = f\"{name} lives on a CUDA device, but fastgen's CUDA backend is unavailable\"\n"
        "    assert msg.startswith(want), msg\n"
        "    assert 'CuPy is not importable' in msg and \"pip install 'fastgen[cuda]'\" in msg, msg\n"
        "print('ok')\n")
    assert _run_python(code).strip() == "ok"


def test_mixed_devices_are_refused_naming_both_arguments():
    with pytest.raises(ValueError, match="logvar is on the CPU but mu is on cuda:0"):
        ops_reparam.reparameterize(_FakeCudaArray(), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="logvar is on cuda:0 but mu is on the CPU"):
        ops_reparam.reparameterize(np.zeros((2, 3), np.float32), _FakeCudaArray())
    with pytest.raises(ValueError, match="weight is on the CPU but x is on cuda:0"):
        ops_conv.conv_transpose2d(_FakeCudaArray((1, 2, 3, 3)), np.zeros((2, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="bias is on cuda:0 but x is on the CPU"):
        ops_conv.conv_transpose2d(np.zeros((1, 2, 3, 3)), np.zeros((2, 1, 2, 2)), _FakeCudaArray((1,)))


def test_numpy_and_cpu_tensor_input_never_load_the_cuda_modules():
    code = ("import sys, numpy as np, torch\n"
            "import fastgen\n"
            "from fastgen.ops import reparameterize\n"
            "from fastgen.ops.conv import conv_transpose2d\n"
            "from fastgen.torch.reparam import reparameterize as treparam\n"
            "rng = np.random.default_rng(0)\n"
            "mu, lv = rng.random((4, 5)), rng.random((4, 5))\n"
            "reparameterize(mu, lv, generator=1); reparameterize(mu[0], lv[0], generator=1)\n"
            "reparameterize(torch.tensor(mu), torch.tensor(lv), generator=1)\n"
            "m = torch.tensor(mu, requires_grad=True)\n"
            "z, kl = treparam(m, torch.tensor(lv), fastgen.Generator(1)); (z.sum() + kl.sum()).backward()\n"
            "conv_transpose2d(rng.random((2, 3, 4, 4)), rng.random((3, 2, 3, 3)), rng.random(2), 2, 1, 1, 'relu')\n"
            "bad = [m for m in ('cupy', 'fastgen._native.cuda', 'fastgen._native.cuda_vae') if m in sys.modules]\n"
            "assert not bad, bad\n")
    _run_python(code)


# ---- the CUDA glue on a NumPy stand-in for CuPy ------------------------------------------------
@pytest.fixture
def numpy_cupy(monkeypatch):
    """``import cupy`` gives NumPy (the functions the glue calls), and the _cuda_vae launchers run
    the CPU kernels with the same signatures: the Python between the op and the launch runs."""
    from fastgen._native import cuda_vae as _cuda_vae

    shim = types.ModuleType("cupy")
    for name in ("empty", "empty_like", "zeros", "zeros_like", "isfinite", "ascontiguousarray", "float32",
                 "float64", "int64"):
        setattr(shim, name, getattr(np, name))
    monkeypatch.setitem(sys.modules, "cupy", shim)

    def reparameterize(mu, logvar, z, kl, *, seed, offset):
        _cpu.C.reparameterize_forward(np.ascontiguousarray(mu), np.ascontiguousarray(logvar), z, kl, seed, offset)

    def reparameterize_backward(grad_z, grad_kl, mu, logvar, grad_mu, grad_logvar, *, seed, offset):
        _cpu.C.reparameterize_backward(grad_z, grad_kl, mu, logvar, grad_mu, grad_logvar, seed, offset)

    def conv_transpose2d_output(cols, bias, out, geometry, activation, slope):
        _cpu.C.conv_transpose2d_output(cols, bias, out, geometry, activation, out.dtype.type(slope))

    def activation_backward(grad_out, y, grad_in, activation, slope):
        _cpu.C.activation_backward(grad_out, y, grad_in, activation, grad_out.dtype.type(slope))

    stand_ins = {f.__name__: f for f in (reparameterize, reparameterize_backward, conv_transpose2d_output,
                                         activation_backward)}
    for name, fn in stand_ins.items():
        def params(f):
            return [(p.name, p.kind) for p in inspect.signature(f).parameters.values()]

        assert params(fn) == params(getattr(_cuda_vae, name)), name  # the glue calls the real ones so
        monkeypatch.setattr(_cuda_vae, name, fn)
    yield shim
    from fastgen._native import cuda as _cuda

    _cuda.unavailable_reason.cache_clear()  # in case anything asked while the shim stood in for CuPy


@pytest.mark.parametrize("dtype", DTYPES)
def test_reparam_glue_allocates_calls_and_checks_like_the_cpu_path(numpy_cupy, dtype):
    mu, lv = inputs((37, 9), dtype, seed=5)
    m2, l2 = ops_reparam.check_mu_logvar_cuda(mu[0], lv[0])
    assert m2.shape == (1, 9)
    m2, l2 = ops_reparam.check_mu_logvar_cuda(mu, lv.astype(np.float64))
    assert l2.dtype == dtype
    z, kl = ops_reparam.reparameterize_cupy(m2, l2, 3, 4)
    want_z, want_kl = ops_reparam.reparameterize(mu, lv, generator=fastgen.Generator(3, 4))
    np.testing.assert_array_equal(z, want_z)
    np.testing.assert_array_equal(kl, want_kl)
    rng = np.random.default_rng(1)
    gz, gk = rng.standard_normal(mu.shape).astype(dtype), rng.standard_normal(37).astype(dtype)
    for a, b in ((gz, gk), (gz, None), (None, gk)):
        got = ops_reparam.reparameterize_backward_cupy(a, b, mu, lv, 3, 4)
        want = ops_reparam.reparameterize_backward_numpy(a, b, mu, lv, 3, 4)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    # the NaN search after the kernel: mu named first, an overflowing KL of finite input passes
    for bad_mu, bad_lv, name in ((np.nan, None, "mu"), (None, np.inf, "logvar"), (-np.inf, np.nan, "mu")):
        m, v = mu.copy(), lv.copy()
        if bad_mu is not None:
            m[20, 3] = bad_mu
        if bad_lv is not None:
            v[36, 8] = bad_lv
        with pytest.raises(ValueError, match=f"^{name} contains NaN or infinity$"):
            ops_reparam.reparameterize_cupy(m, v, 3, 4)
    if dtype == np.float32:
        m = np.zeros((3, 5), dtype)
        m[1, 2] = 1e30
        _, kl = ops_reparam.reparameterize_cupy(m, np.zeros_like(m), 1, 2)
        assert np.isinf(kl[1])
    with pytest.raises(ValueError, match="same shape"):
        ops_reparam.check_mu_logvar_cuda(mu, lv[:, :4])
    with pytest.raises(ValueError, match="grad_z must have 333 elements"):
        ops_reparam.reparameterize_backward_cupy(gz[:5], gk, mu, lv, 0, 0)
    with pytest.raises(ValueError, match="grad_kl must have 37 elements"):
        ops_reparam.reparameterize_backward_cupy(gz, gk[:3], mu, lv, 0, 0)
    with pytest.raises(TypeError, match="grad_z must have mu's dtype"):
        ops_reparam.reparameterize_backward_cupy(gz.astype(np.float16), gk, mu, lv, 0, 0)


def test_conv_glue_edge_cases_match_the_cpu(numpy_cupy):
    rng = np.random.default_rng(3)
    b = rng.standard_normal(3)
    for x_shape, w_shape in (((0, 2, 3, 3), (2, 3, 4, 4)), ((2, 0, 3, 3), (0, 3, 4, 4))):
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        geom = ops_conv.conv_transpose_geometry(x.shape, w.shape, b.shape, 2, 1, 0)
        got = ops_conv.forward_cupy(x, w, b, geom, 3, 0.0)
        np.testing.assert_array_equal(got, ops_conv.conv_transpose2d(x, w, b, 2, 1, 0, "tanh"))
        g = rng.standard_normal(got.shape)
        gx, gw, gb = ops_conv.backward_cupy(g, got, x, w, geom, 3, 0.0)
        assert gx.shape == x.shape and gw.shape == w.shape and not gx.any() and not gw.any()
        np.testing.assert_allclose(gb, (g * (1 - got ** 2)).sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-300)
        assert ops_conv.backward_cupy(g, got, x, w, geom, 3, 0.0, need_bias=False)[2] is None


# ==== on a GPU ==================================================================================
@pytest.fixture
def cp():
    cupy = pytest.importorskip("cupy")
    from fastgen._native import cuda as _cuda

    if not _cuda.available():
        pytest.skip(_cuda.unavailable_reason())
    return cupy


@pytest.fixture
def torch_cuda(cp):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    return torch


# ---- fastgen.ops.reparameterize on CuPy arrays -------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (129, 7), (200, 33), (64, 64), (9, 1021), (3, 4128)])
def test_reparameterize_on_cupy_is_the_cpu_op(cp, dtype, shape):
    mu, lv = inputs(shape, dtype, seed=shape[1])
    mu_d, lv_d = cp.asarray(mu), cp.asarray(lv)
    gen = fastgen.Generator(2**63 + 9, 2**34 + 1)
    z, kl = ops_reparam.reparameterize(mu_d, lv_d, generator=gen)
    assert gen.offset == 2**34 + 2
    assert isinstance(z, cp.ndarray) and isinstance(kl, cp.ndarray)
    assert z.dtype == dtype and kl.dtype == dtype and z.shape == shape and kl.shape == (shape[0],)
    want_z, want_kl = ops_reparam.reparameterize(mu, lv, generator=fastgen.Generator(2**63 + 9, 2**34 + 1))
    np.testing.assert_array_equal(z.get(), want_z)
    assert np.all(np.abs(kl.get() - want_kl) <= KL_RTOL[dtype] * kl_scale(mu, lv))
    np.testing.assert_array_equal(mu_d.get(), mu)  # inputs untouched
    np.testing.assert_array_equal(lv_d.get(), lv)
    # the backward (the torch op's CUDA kernel runs it): bitwise, with either gradient alone
    rng = np.random.default_rng(7)
    gz, gk = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape[0]).astype(dtype)
    for a, b in ((gz, gk), (gz, None), (None, gk)):
        got = ops_reparam.reparameterize_backward_cupy(None if a is None else cp.asarray(a),
                                                       None if b is None else cp.asarray(b), mu_d, lv_d,
                                                       2**63 + 9, 2**34 + 1)
        want = ops_reparam.reparameterize_backward_numpy(a, b, mu, lv, 2**63 + 9, 2**34 + 1)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.get(), w)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_reparameterize_on_cupy_kl_is_exact_when_the_sums_are(cp, dtype):
    # logvar 0 (sigma exactly 1) and mu in quarters: every term and partial sum is exact, so any
    # summation order gives the same bits; a lost lane or a wrong row split would not.
    rng = np.random.default_rng(4)
    mu = (rng.integers(-8, 9, (70, 77)) / 4).astype(dtype)
    lv = np.zeros_like(mu)
    _, kl = ops_reparam.reparameterize(cp.asarray(mu), cp.asarray(lv), generator=5)
    np.testing.assert_array_equal(kl.get(), (mu.astype(np.float64) ** 2 / 2).sum(axis=1).astype(dtype))
    _, want = ops_reparam.reparameterize(mu, lv, generator=5)
    np.testing.assert_array_equal(kl.get(), want)


@pytest.mark.gpu
def test_reparameterize_on_cupy_one_row_views_conversions_and_empties(cp):
    mu, lv = inputs((6, 10), np.float64)
    z1, kl1 = ops_reparam.reparameterize(cp.asarray(mu[0]), cp.asarray(lv[0]), generator=fastgen.Generator(1))
    assert z1.shape == (10,) and kl1.shape == ()
    want_z, want_kl = ops_reparam.reparameterize(mu[0], lv[0], generator=fastgen.Generator(1))
    np.testing.assert_array_equal(z1.get(), want_z)
    # the encoder's split output: strided rows, copied once to C order as on the CPU
    both = cp.asarray(np.concatenate([mu, lv], axis=1))
    zv, klv = ops_reparam.reparameterize(both[:, :10], both[:, 10:], generator=fastgen.Generator(2))
    want_z, want_kl = ops_reparam.reparameterize(mu, lv, generator=fastgen.Generator(2))
    np.testing.assert_array_equal(zv.get(), want_z)
    np.testing.assert_allclose(klv.get(), want_kl, rtol=1e-13)
    # float16 -> float32, integers -> float64, as on the CPU; logvar takes mu's dtype
    z16, _ = ops_reparam.reparameterize(cp.asarray(mu, cp.float16), cp.asarray(lv), generator=3)
    assert z16.dtype == np.float32
    zi, _ = ops_reparam.reparameterize(cp.zeros((2, 3), cp.int32), cp.zeros((2, 3), cp.int32), generator=3)
    assert zi.dtype == np.float64
    for shape in ((0, 5), (4, 0)):
        z, kl = ops_reparam.reparameterize(cp.zeros(shape), cp.zeros(shape), generator=1)
        assert z.shape == shape and kl.shape == (shape[0],) and not kl.get().any()


@pytest.mark.gpu
def test_reparameterize_on_cupy_refuses_what_the_cpu_refuses(cp):
    mu, lv = inputs((300, 64), np.float32)
    for row, col in ((0, 0), (151, 17), (299, 63)):
        for bad in (np.nan, np.inf, -np.inf):
            for name in ("mu", "logvar"):
                m, v = mu.copy(), lv.copy()
                (m if name == "mu" else v)[row, col] = bad
                with pytest.raises(ValueError, match=f"^{name} contains NaN or infinity$"):
                    ops_reparam.reparameterize(cp.asarray(m), cp.asarray(v), generator=1)
        m, v = mu.copy(), lv.copy()
        m[row, col] = v[row, (col + 1) % 64] = np.nan
        with pytest.raises(ValueError, match="^mu contains NaN or infinity$"):
            ops_reparam.reparameterize(cp.asarray(m), cp.asarray(v), generator=1)
    m = np.zeros((3, 5), np.float32)
    m[1, 2] = 1e30  # mu^2 overflows: an infinite KL of finite input is no error, as on the CPU
    z, kl = ops_reparam.reparameterize(cp.asarray(m), cp.zeros((3, 5), cp.float32), generator=2)
    assert np.isinf(kl.get()[1]) and np.isfinite(z.get()).all()
    good = cp.zeros((2, 3))
    with pytest.raises(ValueError, match="mu and logvar must have the same shape"):
        ops_reparam.reparameterize(good, cp.zeros((2, 4)))
    with pytest.raises(ValueError, match="mu must be 1-D or 2-D"):
        ops_reparam.reparameterize(cp.zeros((2, 3, 4)), cp.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="logvar is on the CPU but mu is on cuda:0"):
        ops_reparam.reparameterize(good, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="grad_z must have 6 elements"):
        ops_reparam.reparameterize_backward_cupy(cp.zeros(5), None, good, good, 0, 0)


@pytest.mark.gpu
def test_reparameterize_on_cupy_runs_on_cupys_current_stream(cp):
    mu, lv = inputs((512, 64), np.float32)
    want_z, _ = ops_reparam.reparameterize(mu, lv, generator=1)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        # a long write queued first on this stream: a launch elsewhere would race with it
        m = cp.asarray(mu)
        for _ in range(50):
            m = m * 1
        z, _ = ops_reparam.reparameterize(m, cp.asarray(lv), generator=1)
    stream.synchronize()
    np.testing.assert_array_equal(z.get(), want_z)


# ---- torch.ops.fastgen.reparameterize on CUDA tensors ------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 1), (200, 33), (4096, 64)])
def test_torch_reparameterize_on_cuda_matches_the_cpu_op(torch_cuda, dtype, shape):
    torch = torch_cuda
    from fastgen.torch.reparam import reparameterize

    dt = getattr(torch, dtype)
    mu, lv = (torch.tensor(a) for a in inputs(shape, getattr(np, dtype), seed=shape[1]))
    grads = (torch.randn(shape, dtype=dt), torch.randn(shape[0], dtype=dt))
    results = {}
    for device in ("cpu", "cuda"):
        m = mu.to(device).requires_grad_()
        v = lv.to(device).requires_grad_()
        gen = fastgen.Generator(11, 2**40)
        z, kl = reparameterize(m, v, gen)
        assert gen.offset == 2**40 + 1 and z.device.type == device and kl.device.type == device
        assert z.dtype == dt and kl.dtype == dt and z.is_contiguous()
        torch.autograd.backward((z, kl), tuple(g.to(device) for g in grads))
        results[device] = [t.detach().cpu() for t in (z, kl, m.grad, v.grad)]
    (zc, klc, gmc, gvc), (zg, klg, gmg, gvg) = results["cpu"], results["cuda"]
    assert torch.equal(zg, zc) and torch.equal(gmg, gmc) and torch.equal(gvg, gvc)
    tol = KL_RTOL[getattr(np, dtype)] * kl_scale(mu.numpy(), lv.numpy())
    assert np.all(np.abs(klg.numpy() - klc.numpy()) <= tol)


@pytest.mark.gpu
def test_torch_reparameterize_on_cuda_each_output_alone_and_first_derivatives_only(torch_cuda):
    torch = torch_cuda
    mu, lv = (torch.tensor(a, device="cuda", requires_grad=True) for a in inputs((5, 6), np.float64, 4))
    z, kl = torch.ops.fastgen.reparameterize(mu, lv, 3, 1)
    (kl * torch.arange(5.0, device="cuda", dtype=torch.float64)).sum().backward()  # z unused
    g = torch.arange(5.0, device="cuda", dtype=torch.float64)[:, None]
    torch.testing.assert_close(mu.grad, g * mu.detach())
    torch.testing.assert_close(lv.grad, 0.5 * g * (torch.exp(lv.detach()) - 1))
    mu.grad = lv.grad = None
    z, kl = torch.ops.fastgen.reparameterize(mu, lv, 3, 1)
    z.sum().backward()  # kl unused
    m_cpu, v_cpu = mu.detach().cpu().requires_grad_(), lv.detach().cpu().requires_grad_()
    torch.ops.fastgen.reparameterize(m_cpu, v_cpu, 3, 1)[0].sum().backward()
    assert torch.equal(lv.grad.cpu(), v_cpu.grad) and torch.equal(mu.grad.cpu(), m_cpu.grad)
    z, kl = torch.ops.fastgen.reparameterize(mu, lv, 3, 1)
    (grad_mu,) = torch.autograd.grad(z.sum() + kl.sum(), mu, create_graph=True)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        grad_mu.sum().backward()


@pytest.mark.gpu
def test_torch_reparameterize_on_cuda_opcheck_gradcheck_compile(torch_cuda):
    torch = torch_cuda
    for shape in ((3, 5), (1, 1), (0, 4), (4, 0)):
        mu, lv = (torch.randn(shape, dtype=torch.float64, device="cuda", requires_grad=True) for _ in range(2))
        torch.library.opcheck(torch.ops.fastgen.reparameterize.default, (mu, lv, 11, 2))
    mu, lv = (torch.randn(4, 6, dtype=torch.float64, device="cuda") for _ in range(2))
    g = torch.randn(4, 6, dtype=torch.float64, device="cuda")
    gk = torch.randn(4, dtype=torch.float64, device="cuda")
    for args in ((g, gk), (g, None), (None, gk)):
        torch.library.opcheck(torch.ops.fastgen.reparameterize_backward.default, (*args, mu, lv, 1, 2))
    mu, lv = (torch.randn(5, 4, dtype=torch.float64, device="cuda", requires_grad=True) for _ in range(2))
    assert torch.autograd.gradcheck(lambda a, b: torch.ops.fastgen.reparameterize(a, b, 3, 7), (mu, lv))

    def elbo_terms(m, v):
        z, kl = torch.ops.fastgen.reparameterize(m, v, 5, 1)
        return (z ** 2).sum() + kl.sum()

    compiled = torch.compile(elbo_terms, fullgraph=True)
    m1, v1 = (torch.randn(3, 4, device="cuda", requires_grad=True) for _ in range(2))
    out = compiled(m1, v1)
    out.backward()
    m2, v2 = m1.detach().clone().requires_grad_(), v1.detach().clone().requires_grad_()
    expected = elbo_terms(m2, v2)
    expected.backward()
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(m1.grad, m2.grad)
    torch.testing.assert_close(v1.grad, v2.grad)


@pytest.mark.gpu
def test_torch_reparameterize_on_cuda_refuses_what_the_cpu_refuses(torch_cuda):
    torch = torch_cuda
    mu, lv = (torch.randn(300, 64, device="cuda") for _ in range(2))
    for row in (0, 150, 299):
        for name in ("mu", "logvar"):
            bad_mu, bad_lv = mu.clone(), lv.clone()
            (bad_mu if name == "mu" else bad_lv)[row, 3] = float("nan")
            with pytest.raises(ValueError, match=f"^{name} contains NaN or infinity$"):
                torch.ops.fastgen.reparameterize(bad_mu, bad_lv, 0, 0)
            with pytest.raises(ValueError, match=f"^{name} contains NaN or infinity$"):  # and the CPU's
                torch.ops.fastgen.reparameterize(bad_mu.cpu(), bad_lv.cpu(), 0, 0)
    with pytest.raises(ValueError, match="logvar is on cpu but mu is on cuda:0"):
        torch.ops.fastgen.reparameterize(mu, lv.cpu(), 0, 0)
    with pytest.raises(ValueError, match="logvar is on cuda:0 but mu is on cpu"):
        torch.ops.fastgen.reparameterize(mu.cpu(), lv, 0, 0)
    with pytest.raises(ValueError, match="grad_z is on cpu but mu is on cuda:0"):
        torch.ops.fastgen.reparameterize_backward(torch.zeros(300, 64), None, mu, lv, 0, 0)
    with pytest.raises(ValueError, match="same shape"):
        torch.ops.fastgen.reparameterize(mu, lv[:, :2], 0, 0)
    with pytest.raises(ValueError, match="mu must be 2-D"):
        torch.ops.fastgen.reparameterize(mu[0], lv[0], 0, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        torch.ops.fastgen.reparameterize(mu.half(), lv.half(), 0, 0)
    with pytest.raises(ValueError, match="grad_kl must have 300 elements"):
        torch.ops.fastgen.reparameterize_backward(None, torch.zeros(3, device="cuda"), mu, lv, 0, 0)


@pytest.mark.gpu
def test_torch_reparameterize_runs_on_the_callers_stream(torch_cuda):
    torch = torch_cuda
    mu, lv = (torch.randn(1024, 64, device="cuda") for _ in range(2))
    want = torch.ops.fastgen.reparameterize(mu, lv, 1, 2)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        m = mu
        for _ in range(50):  # written on the side stream: the op must wait for it there
            m = m * 1
        got = torch.ops.fastgen.reparameterize(m, lv, 1, 2)
    torch.cuda.current_stream().wait_stream(side)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.gpu
def test_torch_cuda_tensors_without_cupy_raise_the_documented_error(torch_cuda):
    code = _NO_CUPY + (
        "import torch, pytest\n"
        "import fastgen.torch.reparam\n"
        "mu = torch.zeros(2, 3, device='cuda')\n"
        "with pytest.raises(TypeError, match=\"mu lives on a CUDA device, but fastgen's CUDA backend is "
        "unavailable: CuPy is not importable\"):\n"
        "    torch.ops.fastgen.reparameterize(mu, mu, 0, 0)\n"
        "print('ok')\n")
    assert _run_python(code).strip() == "ok"


@pytest.mark.gpu
def test_ops_reparameterize_takes_torch_cuda_tensors_and_gives_them_back(torch_cuda):
    torch = torch_cuda
    mu, lv = (torch.randn(8, 5, device="cuda", dtype=torch.float64) for _ in range(2))
    z, kl = ops_reparam.reparameterize(mu, lv, generator=4)
    assert isinstance(z, torch.Tensor) and z.device.type == "cuda" and kl.device.type == "cuda"
    want_z, _ = ops_reparam.reparameterize(mu.cpu().numpy(), lv.cpu().numpy(), generator=4)
    np.testing.assert_array_equal(z.cpu().numpy(), want_z)


# ---- fastgen.ops.conv.conv_transpose2d on CuPy arrays -------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu", "tanh", "sigmoid"])
def test_conv_transpose2d_on_cupy_matches_the_cpu(cp, dtype, activation):
    rng = np.random.default_rng(len(activation or ""))
    x = rng.standard_normal((4, 6, 7, 7)).astype(dtype)
    w = rng.standard_normal((6, 3, 4, 4)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    for bias in (b, None):
        got = ops_conv.conv_transpose2d(cp.asarray(x), cp.asarray(w), None if bias is None else cp.asarray(bias),
                                        2, 1, 1, activation, 0.2)
        want = ops_conv.conv_transpose2d(x, w, bias, 2, 1, 1, activation, 0.2)
        assert isinstance(got, cp.ndarray) and got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got.get(), want, rtol=CONV_RTOL[dtype], atol=CONV_RTOL[dtype] * 10)


@pytest.mark.gpu
@pytest.mark.parametrize("activation", ["none", "leaky_relu", "tanh", "sigmoid"])
def test_conv_transpose2d_backward_on_cupy_matches_the_cpu_torch_op(torch_cuda, cp, activation):
    torch = torch_cuda
    from fastgen.torch.conv import conv_transpose2d as tconv

    rng = np.random.default_rng(2)
    x = torch.tensor(rng.standard_normal((3, 4, 5, 5)), requires_grad=True)
    w = torch.tensor(rng.standard_normal((4, 2, 4, 4)), requires_grad=True)
    b = torch.tensor(rng.standard_normal(2), requires_grad=True)
    y = tconv(x, w, b, 2, 1, 1, activation, 0.2)
    g = torch.randn_like(y)
    y.backward(g)
    geom = ops_conv.conv_transpose_geometry(tuple(x.shape), tuple(w.shape), (2,), 2, 1, 1)
    code = ops_conv.activation_code(activation)
    y_d = ops_conv.forward_cupy(cp.asarray(x.detach().numpy()), cp.asarray(w.detach().numpy()),
                                cp.asarray(b.detach().numpy()), geom, code, 0.2)
    np.testing.assert_allclose(y_d.get(), y.detach().numpy(), rtol=1e-12, atol=1e-12)
    gx, gw, gb = ops_conv.backward_cupy(cp.asarray(g.numpy()), y_d, cp.asarray(x.detach().numpy()),
                                        cp.asarray(w.detach().numpy()), geom, code, 0.2)
    for got, want in ((gx, x.grad), (gw, w.grad), (gb, b.grad)):
        np.testing.assert_allclose(got.get(), want.numpy(), rtol=1e-10, atol=1e-11)
    assert ops_conv.backward_cupy(cp.asarray(g.numpy()), y_d, cp.asarray(x.detach().numpy()),
                                  cp.asarray(w.detach().numpy()), geom, code, 0.2, need_bias=False)[2] is None


@pytest.mark.gpu
def test_conv_transpose2d_on_cuda_refuses_what_the_cpu_refuses_and_handles_empties(torch_cuda, cp):
    torch = torch_cuda
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    w = np.ones((3, 2, 3, 3))
    bad = x.copy()
    bad[1, 2, 3, 3] = np.nan
    for lib in ("cupy", "torch"):
        put = cp.asarray if lib == "cupy" else (lambda a: torch.tensor(a, device="cuda"))
        with pytest.raises(ValueError, match="x contains NaN or infinity"):
            ops_conv.conv_transpose2d(put(bad), put(w), None, 2, 1, 0, "relu")
        with pytest.raises(ValueError, match="weight must have C_in = 3"):
            ops_conv.conv_transpose2d(put(x), put(w[:2]))
        with pytest.raises(ValueError, match="weight is on the CPU but x is on cuda:0"):
            ops_conv.conv_transpose2d(put(x), w)
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        ops_conv.conv_transpose2d(bad, w, None, 2, 1, 0, "relu")
    got = ops_conv.conv_transpose2d(torch.tensor(x, device="cuda"), torch.tensor(w, device="cuda"), None, 2, 1, 0)
    assert isinstance(got, torch.Tensor) and got.device.type == "cuda"
    np.testing.assert_allclose(got.cpu().numpy(), ops_conv.conv_transpose2d(x, w, None, 2, 1, 0), rtol=1e-12)
    b = np.arange(2.0)
    for xs, ws in (((0, 3, 4, 4), (3, 2, 3, 3)), ((2, 0, 4, 4), (0, 2, 3, 3))):
        got = ops_conv.conv_transpose2d(cp.zeros(xs), cp.ones(ws), cp.asarray(b), 2, 1, 0, "tanh")
        np.testing.assert_array_equal(got.get(), ops_conv.conv_transpose2d(np.zeros(xs), np.ones(ws), b, 2, 1, 0,
                                                                           "tanh"))
