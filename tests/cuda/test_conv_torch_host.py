"""The CUDA kernels' Python of ``torch.ops.fastgen.conv_transpose2d`` and its backward op, without
a GPU: validation, the one-transfer NaN check, :func:`fastgen.ops.conv.forward_cupy` /
``backward_cupy`` and the cuda_conv glue under them, the ``need_x`` / ``need_bias`` slots and
DLPack out run on a NumPy stand-in for CuPy, with the kernel launchers replaced by the CPU kernels
and cuBLAS by NumPy's matmul, against the CPU op.

The op's ``gpu`` cases (forward and backward on CUDA tensors against the CPU op, opcheck,
gradcheck, torch.compile, the caller's stream, the CPU's errors) are in
tests/torch/test_torch_conv.py.
"""
from __future__ import annotations

import contextlib
import inspect
import sys
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cuda_helpers import CONV_CASES, conv_case_inputs  # noqa: E402
from fastgen._native import cpu as _cpu  # noqa: E402
from fastgen.ops.conv import ACTIVATIONS  # noqa: E402
from fastgen.torch import conv as tconv  # noqa: E402

# ==== anywhere: the CUDA kernels' Python on a NumPy stand-in for CuPy ============================
@pytest.fixture
def numpy_backend(monkeypatch):
    """``import cupy`` gives NumPy, the cuda_conv launchers run the CPU kernels (same signatures),
    cuBLAS's gemm runs in NumPy, and torch's stream context is a no-op that records its tensor."""
    from fastgen._native import cuda as _cuda, cuda_conv as _cuda_conv, cuda_vae as _cuda_vae

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
        # cuda_vae re-exports them (ops.conv calls them there): patched too, whichever imported first
        if hasattr(_cuda_vae, fn.__name__):
            monkeypatch.setattr(_cuda_vae, fn.__name__, fn)
    monkeypatch.setattr(_cuda_conv, "gemm", gemm)
    streams = []

    @contextlib.contextmanager
    def on_torch_stream(t, name="x"):
        streams.append(name)
        yield

    monkeypatch.setattr(tconv, "on_torch_stream", on_torch_stream)
    yield streams


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_cuda_kernels_python_on_numpy_matches_the_cpu_op(numpy_backend, case, activation):
    xs, ws, stride, padding, output_padding = case
    x, w, b = conv_case_inputs(xs, ws, torch.float64, seed=len(activation))
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
    x, w, b = conv_case_inputs((2, 3, 4, 4), (3, 2, 3, 3), torch.float32)
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
        ex, ew, eb = conv_case_inputs(xs, ws, torch.float64)
        for act in ("tanh", "none"):
            y = tconv._conv_transpose2d_cuda(ex, ew, eb, [2, 2], [1, 1], [0, 0], act, 0.0)
            want = torch.ops.fastgen.conv_transpose2d(ex, ew, eb, [2, 2], [1, 1], [0, 0], act, 0.0)
            torch.testing.assert_close(y, want, rtol=0, atol=0)
            g = torch.ones_like(y)
            got = tconv._conv_transpose2d_backward_cuda(g, y, ex, ew, [2, 2], [1, 1], [0, 0], act, 0.0)
            want_g = torch.ops.fastgen.conv_transpose2d_backward(g, want, ex, ew, [2, 2], [1, 1], [0, 0], act, 0.0)
            for a, c in zip(got, want_g):
                torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-12)
