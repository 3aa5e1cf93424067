"""The CUDA dispatch of ``fastgen.ops.reparameterize``, ``torch.ops.fastgen.reparameterize`` and
``fastgen.ops.conv.conv_transpose2d``, without a GPU: the CUDA dispatch with CuPy hidden gives the
documented TypeError, device mixes the documented ValueError, NumPy input never loads the CUDA
modules, and the CUDA glue's Python (validation, output allocation, launcher arguments, the NaN
search) runs on a NumPy stand-in for CuPy with the launchers replaced by the CPU kernels.

The ops' ``gpu`` cases are in their test files: tests/ops/test_reparam.py,
tests/torch/test_torch_reparam.py and tests/torch/test_torch_conv.py.
"""
from __future__ import annotations

import inspect
import sys
import types

import numpy as np
import pytest

import fastgen
from fastgen._native import cpu as _cpu
from fastgen.ops import conv as ops_conv
from fastgen.ops import reparam as ops_reparam
from cuda_helpers import NO_CUPY, reparam_inputs, run_python
from fake_cuda import FakeCudaArray as _FakeCudaArray

DTYPES = [np.float32, np.float64]


# ==== anywhere: dispatch without a GPU ==========================================================
def test_cuda_input_without_cupy_raises_the_documented_error():
    code = NO_CUPY + (
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
    assert run_python(code).strip() == "ok"


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
    run_python(code)


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

    def reparameterize(mu, logvar, z, kl, *, seed, offset, first_row=0):
        _cpu.C.reparameterize_forward(np.ascontiguousarray(mu), np.ascontiguousarray(logvar), z, kl, seed, offset,
                                      first_row)

    def reparameterize_backward(grad_z, grad_kl, mu, logvar, grad_mu, grad_logvar, *, seed, offset, first_row=0):
        _cpu.C.reparameterize_backward(grad_z, grad_kl, mu, logvar, grad_mu, grad_logvar, seed, offset, first_row)

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
    mu, lv = reparam_inputs((37, 9), dtype, seed=5)
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
