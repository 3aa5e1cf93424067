"""The CUDA kernels of ``torch.ops.fastgen.conv_transpose2d`` and its backward op.

``gpu`` tests (skipped without CuPy and a CUDA device): forward and backward against the CPU op for
every activation with and without bias (both dtypes, to rounding: cuBLAS and the CPU's BLAS sum
the taps in other orders), the backward op's ``need_x`` / ``need_bias`` slots, ``opcheck`` of both
ops, float64 ``gradcheck``, ``torch.compile(fullgraph=True)``, non-contiguous input and empty
batches, the work on the caller's stream, and the CPU's errors (device mix naming both
arguments, NaN / infinity naming the argument, CuPy missing).

The rest runs anywhere: the CUDA kernels' Python (validation, the one-transfer NaN check,
:func:`fastgen.ops.conv.forward_cupy` / ``backward_cupy`` and the cuda_conv glue under them, the
``need_x`` / ``need_bias`` slots, DLPack out) on a NumPy stand-in for CuPy, with the kernel
launchers replaced by the CPU kernels and cuBLAS by NumPy's matmul, against the CPU op.
"""
from __future__ import annotations

import contextlib
import inspect
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastgen._native import cpu as _cpu  # noqa: E402
from fastgen.ops.conv import ACTIVATIONS  # noqa: E402
from fastgen.torch import conv as tconv  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DTYPES = [torch.float32, torch.float64]
# cuBLAS and the CPU's BLAS / oneDNN sum the taps in other orders
TOL = {torch.float32: dict(rtol=5e-5, atol=5e-5), torch.float64: dict(rtol=1e-11, atol=1e-11)}
CASES = [  # x shape, weight shape, stride, padding, output_padding
    ((3, 4, 5, 5), (4, 3, 4, 4), [2, 2], [1, 1], [1, 1]),
    ((4, 8, 1, 1), (8, 5, 4, 4), [1, 1], [0, 0], [0, 0]),         # the DCGAN projection of z
    ((2, 6, 12, 11), (6, 2, 4, 4), [2, 2], [1, 1], [0, 0]),      # >= 128 pixels: the CPU's C++ backward
    ((2, 3, 3, 7), (3, 4, 2, 5), [3, 1], [0, 2], [2, 0]),
]


def make(xs, ws, dtype, device="cpu", seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(xs, generator=g, dtype=dtype)
    w = torch.randn(ws, generator=g, dtype=dtype) * 0.5
    b = torch.randn(ws[1], generator=g, dtype=dtype)
    return tuple(t.to(device).requires_grad_(grad) for t in (x, w, b))


# ==== anywhere: the CUDA kernels' Python on a NumPy stand-in for CuPy ============================
@pytest.fixture
def numpy_backend(monkeypatch):
    """``import cupy`` gives NumPy, the cuda_conv launchers run the CPU kernels (same signatures),
    cuBLAS's gemm runs in NumPy, and torch's stream context is a no-op that records its tensor."""
    from fastgen._native import cuda as _cuda, cuda_conv as _cuda_conv

    shim = types.ModuleType("cupy")
    for name in ("asarray", "empty", "empty_like", "zeros", "zeros_like", "isfinite", "ascontiguousarray",
                 "stack", "float32", "float64"):
        setattr(shim, name, getattr(np, name))
    monkeypatch.setitem(sys.modules, "cupy", shim)
    monkeypatch.setattr(_cuda, "unavailable_reason", lambda: None)

    def conv_transpose2d_output(cols, bias, out, geometry, activation, slope):
        _cpu.C.conv_transpose2d_output(cols, bias, out, geometry, activation, out.dtype.type(slope))

    def conv_transpose2d_im2col(grad, cols, geometry):
        _cpu.C.conv_transpose2d_im2col(grad, cols, geometry)

    def activation_backward(grad_out, y, grad_in, activation, slope):
        _cpu.C.activation_backward(grad_out, y, grad_in, activation, grad_out.dtype.type(slope))

    def gemm(transa, transb, a, b, out, alpha=1.0, beta=0.0):
        op_a = a.T if transa == "T" else a
        op_b = b.T if transb == "T" else b
        out[...] = alpha * (op_a @ op_b) + (beta * out if beta else 0)  # cuBLAS ignores out when beta is 0

    for fn in (conv_transpose2d_output, conv_transpose2d_im2col, activation_backward):
        real = getattr(_cuda_conv, fn.__name__)
        assert [p.name for p in inspect.signature(fn).parameters.values()] == \
            [p.name for p in inspect.signature(real).parameters.values()], fn.__name__
        monkeypatch.setattr(_cuda_conv, fn.__name__, fn)
    monkeypatch.setattr(_cuda_conv, "gemm", gemm)
    streams = []

    @contextlib.contextmanager
    def on_torch_stream(t, name="x"):
        streams.append(name)
        yield

    monkeypatch.setattr(tconv, "on_torch_stream", on_torch_stream)
    yield streams


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_cuda_kernels_python_on_numpy_matches_the_cpu_op(numpy_backend, case, activation):
    xs, ws, stride, padding, output_padding = case
    x, w, b = make(xs, ws, torch.float64, seed=len(activation))
    args = (stride, padding, output_padding, activation, 0.2)
    for bias in (b, None):
        want = torch.ops.fastgen.conv_transpose2d(x, w, bias, *args)
        got = tconv._conv_transpose2d_cuda(x, w, bias, *args)
        assert got.shape == want.shape and got.dtype == want.dtype
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g = torch.randn(want.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    full = torch.ops.fastgen.conv_transpose2d_backward(g, want, x, w, *args, True, True)
    for need_x in (True, False):
        for need_bias in (True, False):
            got = tconv._conv_transpose2d_backward_cuda(g, want, x, w, *args, need_x, need_bias)
            want_slots = torch.ops.fastgen.conv_transpose2d_backward(g, want, x, w, *args, need_x, need_bias)
            for slot, (a, c, f) in enumerate(zip(got, want_slots, full)):
                assert a.shape == c.shape and a.dtype == c.dtype, (slot, need_x, need_bias)
                if c.numel():
                    torch.testing.assert_close(a, f, rtol=1e-11, atol=1e-11)
    assert numpy_backend == ["x"] * 2 + ["grad_out"] * 4  # the forward on x's stream, the backward on grad_out's


def test_cuda_kernels_python_on_numpy_nan_checks_and_empties(numpy_backend):
    x, w, b = make((2, 3, 4, 4), (3, 2, 3, 3), torch.float32)
    args = ([2, 2], [1, 1], [0, 0], "relu", 0.0)
    for name in ("x", "weight", "bias"):
        for bad in (float("nan"), float("inf"), float("-inf")):
            t = {"x": x.clone(), "weight": w.clone(), "bias": b.clone()}
            t[name].view(-1)[-1] = bad
            for op in (tconv._conv_transpose2d_cuda, torch.ops.fastgen.conv_transpose2d):  # and the CPU's
                with pytest.raises(ValueError, match=f"^{name} contains NaN or infinity$"):
                    op(t["x"], t["weight"], t["bias"], *args)
    # several bad: named in the CPU op's order (weight, bias, x)
    bx, bw = x.clone(), w.clone()
    bx[0, 0, 0, 0] = bw[0, 0, 0, 0] = float("nan")
    for op in (tconv._conv_transpose2d_cuda, torch.ops.fastgen.conv_transpose2d):
        with pytest.raises(ValueError, match="^weight contains NaN or infinity$"):
            op(bx, bw, b, *args)
    # empty batch, no input channels: act(bias) or empty outputs, zero gradients, the CPU's grad_bias
    for xs, ws in (((0, 3, 4, 4), (3, 2, 3, 3)), ((2, 0, 4, 4), (0, 2, 3, 3))):
        ex, ew, eb = make(xs, ws, torch.float64)
        for act in ("tanh", "none"):
            y = tconv._conv_transpose2d_cuda(ex, ew, eb, [2, 2], [1, 1], [0, 0], act, 0.0)
            want = torch.ops.fastgen.conv_transpose2d(ex, ew, eb, [2, 2], [1, 1], [0, 0], act, 0.0)
            torch.testing.assert_close(y, want, rtol=0, atol=0)
            g = torch.ones_like(y)
            got = tconv._conv_transpose2d_backward_cuda(g, y, ex, ew, [2, 2], [1, 1], [0, 0], act, 0.0)
            want_g = torch.ops.fastgen.conv_transpose2d_backward(g, want, ex, ew, [2, 2], [1, 1], [0, 0], act, 0.0)
            for a, c in zip(got, want_g):
                torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-12)


# ==== on a GPU ==================================================================================
@pytest.fixture
def cuda():
    pytest.importorskip("cupy")
    from fastgen._native import cuda as _cuda

    if not _cuda.available():
        pytest.skip(_cuda.unavailable_reason())
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    return torch.device("cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("case", CASES)
def test_forward_and_backward_on_cuda_match_the_cpu_op(cuda, dtype, activation, case):
    xs, ws, stride, padding, output_padding = case
    for with_bias in (True, False):
        results = {}
        for device in ("cpu", "cuda"):
            x, w, b = make(xs, ws, dtype, device, seed=3, grad=True)
            bias = b if with_bias else None
            y = tconv.conv_transpose2d(x, w, bias, stride, padding, output_padding, activation, 0.2)
            assert y.device.type == device and y.dtype == dtype and y.is_contiguous()
            g = torch.randn(y.shape, dtype=dtype, generator=torch.Generator().manual_seed(5)).to(device)
            y.backward(g)
            results[device] = [t.detach().cpu() for t in (y, x.grad, w.grad) + ((b.grad,) if with_bias else ())]
            if not with_bias:
                assert b.grad is None
        for got, want in zip(results["cuda"], results["cpu"]):
            torch.testing.assert_close(got, want, **TOL[dtype])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_op_need_flags_on_cuda(cuda, dtype):
    x, w, b = make((3, 4, 5, 5), (4, 3, 4, 4), dtype, "cuda")
    args = ([2, 2], [1, 1], [0, 0], "leaky_relu", 0.2)
    y = torch.ops.fastgen.conv_transpose2d(x, w, b, *args)
    g = torch.randn_like(y)
    full = torch.ops.fastgen.conv_transpose2d_backward(g, y, x, w, *args)
    cpu = torch.ops.fastgen.conv_transpose2d_backward(g.cpu(), y.cpu(), x.cpu(), w.cpu(), *args)
    for a, c in zip(full, cpu):
        torch.testing.assert_close(a.cpu(), c, **TOL[dtype])
    for need_x in (True, False):
        for need_bias in (True, False):
            gx, gw, gb = torch.ops.fastgen.conv_transpose2d_backward(g, y, x, w, *args, need_x, need_bias)
            assert all(t.device.type == "cuda" and t.dtype == dtype for t in (gx, gw, gb))
            assert gx.shape == (x.shape if need_x else (0,)) and gb.shape == ((3,) if need_bias else (0,))
            torch.testing.assert_close(gw, full[1], rtol=0, atol=0)
            if need_x:
                torch.testing.assert_close(gx, full[0], rtol=0, atol=0)
            if need_bias:
                torch.testing.assert_close(gb, full[2], rtol=0, atol=0)
    # autograd asks only for what is needed: x without grad (the projection of z), no bias
    xw = w.clone().requires_grad_()
    tconv.conv_transpose2d(x, xw, None, 2, 1, 0, "tanh").sum().backward()
    want_w = w.cpu().requires_grad_()
    tconv.conv_transpose2d(x.cpu(), want_w, None, 2, 1, 0, "tanh").sum().backward()
    torch.testing.assert_close(xw.grad.cpu(), want_w.grad, **TOL[dtype])


@pytest.mark.gpu
def test_opcheck_gradcheck_and_compile_on_cuda(cuda):
    for dtype in DTYPES:
        for xs, ws, stride, padding, output_padding in CASES[:2]:
            x, w, b = make(xs, ws, dtype, "cuda", grad=True)
            for bias in (b, None):
                torch.library.opcheck(torch.ops.fastgen.conv_transpose2d.default,
                                      (x, w, bias, stride, padding, output_padding, "tanh", 0.0))
            y = torch.ops.fastgen.conv_transpose2d(x.detach(), w.detach(), b.detach(), stride, padding,
                                                   output_padding, "sigmoid", 0.0)
            g = torch.randn_like(y)
            for need_x, need_bias in ((True, True), (False, True), (True, False), (False, False)):
                torch.library.opcheck(torch.ops.fastgen.conv_transpose2d_backward.default,
                                      (g, y, x.detach(), w.detach(), stride, padding, output_padding, "sigmoid",
                                       0.0, need_x, need_bias))
    for activation in ("none", "leaky_relu", "tanh", "sigmoid"):
        x, w, b = make((2, 2, 3, 3), (2, 3, 3, 3), torch.float64, "cuda", seed=2, grad=True)
        assert torch.autograd.gradcheck(
            lambda a, c, d: tconv.conv_transpose2d(a, c, d, 2, 1, 1, activation, 0.2), (x, w, b))

    def generator_block(z, weight, bias):
        return torch.ops.fastgen.conv_transpose2d(z, weight, bias, [2, 2], [1, 1], [0, 0], "tanh", 0.0).square().sum()

    compiled = torch.compile(generator_block, fullgraph=True)
    x, w, b = make((2, 3, 4, 4), (3, 2, 4, 4), torch.float32, "cuda", grad=True)
    out = compiled(x, w, b)
    grads = torch.autograd.grad(out, (x, w, b))
    x2, w2, b2 = (t.detach().cpu().requires_grad_() for t in (x, w, b))
    want = generator_block(x2, w2, b2)
    want_grads = torch.autograd.grad(want, (x2, w2, b2))
    torch.testing.assert_close(out.cpu(), want, rtol=1e-4, atol=1e-4)
    for got, exp in zip(grads, want_grads):
        assert got.device.type == "cuda"
        torch.testing.assert_close(got.cpu(), exp, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_non_contiguous_input_and_empties_on_cuda(cuda):
    x, w, b = make((4, 6, 7, 7), (6, 3, 4, 4), torch.float64, "cuda")
    x_cl = x.to(memory_format=torch.channels_last).requires_grad_()
    w_t = w.transpose(2, 3).contiguous().transpose(2, 3).requires_grad_()  # same values, other strides
    y = tconv.conv_transpose2d(x_cl, w_t, b, 2, 1, 1, "relu")
    y.backward(torch.ones_like(y))
    x2, w2 = x.cpu().requires_grad_(), w.cpu().requires_grad_()
    want = tconv.conv_transpose2d(x2, w2, b.cpu(), 2, 1, 1, "relu")
    want.backward(torch.ones_like(want))
    torch.testing.assert_close(y.cpu(), want, **TOL[torch.float64])
    torch.testing.assert_close(x_cl.grad.cpu(), x2.grad, **TOL[torch.float64])
    torch.testing.assert_close(w_t.grad.cpu(), w2.grad, **TOL[torch.float64])
    for xs, ws in (((0, 3, 4, 4), (3, 2, 3, 3)), ((2, 0, 4, 4), (0, 2, 3, 3))):
        ex, ew, eb = make(xs, ws, torch.float64, "cuda", grad=True)
        y = tconv.conv_transpose2d(ex, ew, eb, 2, 1, 0, "tanh")
        y.sum().backward()
        cx, cw, cb = (t.detach().cpu().requires_grad_() for t in (ex, ew, eb))
        want = tconv.conv_transpose2d(cx, cw, cb, 2, 1, 0, "tanh")
        want.sum().backward()
        torch.testing.assert_close(y.detach().cpu(), want.detach(), rtol=0, atol=0)
        for got, exp in ((ex.grad, cx.grad), (ew.grad, cw.grad), (eb.grad, cb.grad)):
            torch.testing.assert_close(got.cpu(), exp, rtol=1e-12, atol=1e-12)


@pytest.mark.gpu
def test_cuda_refuses_what_the_cpu_refuses(cuda):
    x, w, b = make((2, 3, 4, 4), (3, 2, 3, 3), torch.float32, "cuda")
    args = ([2, 2], [1, 1], [0, 0], "relu", 0.0)
    with pytest.raises(ValueError, match="weight is on cpu but x is on cuda:0"):
        torch.ops.fastgen.conv_transpose2d(x, w.cpu(), b, *args)
    with pytest.raises(ValueError, match="weight is on cuda:0 but x is on cpu"):
        torch.ops.fastgen.conv_transpose2d(x.cpu(), w, b.cpu(), *args)
    with pytest.raises(ValueError, match="bias is on cpu but x is on cuda:0"):
        torch.ops.fastgen.conv_transpose2d(x, w, b.cpu(), *args)
    y = torch.ops.fastgen.conv_transpose2d(x, w, b, *args)
    with pytest.raises(ValueError, match="grad_out is on cpu but x is on cuda:0"):
        torch.ops.fastgen.conv_transpose2d_backward(y.cpu(), y, x, w, *args)
    for name in ("x", "weight", "bias"):
        t = {"x": x.clone(), "weight": w.clone(), "bias": b.clone()}
        t[name].view(-1)[-1] = float("nan")
        with pytest.raises(ValueError, match=f"^{name} contains NaN or infinity$"):
            torch.ops.fastgen.conv_transpose2d(t["x"], t["weight"], t["bias"], *args)
    with pytest.raises(ValueError, match="weight must have C_in = 3"):
        torch.ops.fastgen.conv_transpose2d(x, w[:2], b, *args)
    with pytest.raises(TypeError, match="weight must have x's dtype"):
        torch.ops.fastgen.conv_transpose2d(x, w.double(), None, *args)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        torch.ops.fastgen.conv_transpose2d(x.half(), w.half(), None, *args)
    with pytest.raises(ValueError, match="grad_out must have the output's shape"):
        torch.ops.fastgen.conv_transpose2d_backward(y[:1], y, x, w, *args)


@pytest.mark.gpu
def test_runs_on_the_callers_stream(cuda):
    x, w, b = make((64, 32, 16, 16), (32, 16, 4, 4), torch.float32, "cuda")
    want = torch.ops.fastgen.conv_transpose2d(x, w, b, [2, 2], [1, 1], [0, 0], "tanh", 0.0)
    g = torch.randn_like(want)
    want_grads = torch.ops.fastgen.conv_transpose2d_backward(g, want, x, w, [2, 2], [1, 1], [0, 0], "tanh", 0.0)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        xs = x
        for _ in range(50):  # written on the side stream: the op must wait for it there
            xs = xs * 1
        got = torch.ops.fastgen.conv_transpose2d(xs, w, b, [2, 2], [1, 1], [0, 0], "tanh", 0.0)
        gs = g
        for _ in range(50):
            gs = gs * 1
        got_grads = torch.ops.fastgen.conv_transpose2d_backward(gs, got, xs, w, [2, 2], [1, 1], [0, 0], "tanh", 0.0)
    torch.cuda.current_stream().wait_stream(side)
    # an op launched off the side stream would read xs / gs before they were written: far off, not rounding
    torch.testing.assert_close(got, want, **TOL[torch.float32])
    for a, c in zip(got_grads, want_grads):
        torch.testing.assert_close(a, c, **TOL[torch.float32])


@pytest.mark.gpu
def test_cuda_tensors_without_cupy_raise_the_documented_error(cuda):
    code = ("import sys; sys.modules['cupy'] = None\n"
            "import torch, pytest\n"
            "import fastgen.torch.conv\n"
            "x = torch.zeros(1, 2, 3, 3, device='cuda'); w = torch.zeros(2, 1, 2, 2, device='cuda')\n"
            "with pytest.raises(TypeError, match=\"x lives on a CUDA device, but fastgen's CUDA backend is "
            "unavailable: CuPy is not importable\"):\n"
            "    torch.ops.fastgen.conv_transpose2d(x, w, None, [1, 1], [0, 0], [0, 0], 'none', 0.0)\n"
            "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env=dict(os.environ), timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr
