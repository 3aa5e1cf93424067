"""fastgen's transposed convolution (+ bias + activation) against F.conv_transpose2d followed by
the activation: values (float32/float64, odd sizes, strides, paddings), gradients (gradcheck),
opcheck, torch.compile, and bad input.

On a GPU (``gpu`` marker): the CUDA kernels (output pass, im2col, backward) and the op on CuPy
arrays and CUDA tensors against the CPU op, opcheck, gradcheck, compile, the caller's stream and
the CPU's errors."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastgen.ops.conv import conv_transpose2d as conv_transpose2d_numpy  # noqa: E402
from fastgen.torch.conv import conv_transpose2d  # noqa: E402
from cuda_helpers import CONV_CASES, REPO_ROOT, conv_case_inputs, cuda_module_or_skip, torch_cuda_or_skip  # noqa: E402
from fastgen.torch import conv as tconv  # noqa: E402
from fastgen._native import cpu as _cpu  # noqa: E402
from fastgen.ops import conv as ops_conv  # noqa: E402

F = torch.nn.functional
ACTIVATIONS = {"none": lambda t: t, "relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, 0.2),
               "tanh": torch.tanh, "sigmoid": torch.sigmoid}
CASES = [  # x shape, (C_out, kH, kW), stride, padding, output_padding
    ((2, 3, 5, 4), (4, 3, 3), 2, 1, 1),
    ((1, 1, 1, 1), (1, 1, 1), 1, 0, 0),
    ((2, 8, 4, 4), (5, 4, 4), 2, 1, 0),       # the DCGAN up-sampling layer
    ((3, 6, 1, 1), (7, 4, 4), 1, 0, 0),       # the DCGAN projection of z
    ((1, 2, 3, 7), (3, 2, 5), (3, 1), (0, 2), (2, 0)),
    ((2, 2, 1, 1), (3, 5, 5), 2, 2, 0),       # kernel wider than the output: taps that land nowhere
    ((1, 3, 2, 3), (2, 5, 3), (2, 3), (2, 1), (1, 2)),
]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-12)}
# GPU against CPU: cuBLAS and the CPU's BLAS sum the taps in other orders
CONV_GPU_RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def inputs(shape, wshape, dtype, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype)
    w = torch.randn((shape[1],) + wshape, generator=g, dtype=dtype) * 0.5
    b = torch.randn(wshape[0], generator=g, dtype=dtype)
    return tuple(t.requires_grad_(grad) for t in (x, w, b))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("shape,wshape,stride,padding,output_padding", CASES)
def test_matches_torch_pair(shape, wshape, stride, padding, output_padding, activation, dtype):
    x, w, b = inputs(shape, wshape, dtype)
    expected = ACTIVATIONS[activation](F.conv_transpose2d(x, w, b, stride, padding, output_padding))
    out = conv_transpose2d(x, w, b, stride, padding, output_padding, activation, 0.2)
    torch.testing.assert_close(out, expected, **TOL[dtype])
    out_np = conv_transpose2d_numpy(x.numpy(), w.numpy(), b.numpy(), stride, padding, output_padding, activation,
                                    0.2)
    np.testing.assert_allclose(out_np, expected.numpy(), **TOL[dtype])


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_gradients_match_torch_pair(activation):
    x, w, b = inputs((2, 3, 4, 5), (4, 3, 3), torch.float64, grad=True)
    out = conv_transpose2d(x, w, b, 2, 1, 1, activation, 0.2)
    weights = torch.randn_like(out)
    grads = torch.autograd.grad((out * weights).sum(), (x, w, b))
    expected = ACTIVATIONS[activation](F.conv_transpose2d(x, w, b, 2, 1, 1))
    expected_grads = torch.autograd.grad((expected * weights).sum(), (x, w, b))
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("activation", ["none", "tanh", "leaky_relu"])
def test_gradcheck(activation):
    x, w, b = inputs((1, 2, 2, 3), (2, 3, 3), torch.float64, grad=True)
    assert torch.autograd.gradcheck(lambda a, bb, c: conv_transpose2d(a, bb, c, 2, 1, 1, activation, 0.2), (x, w, b))


def test_without_bias_and_empty_batch():
    x, w, _ = inputs((2, 3, 4, 4), (2, 4, 4), torch.float64, grad=True)
    out = conv_transpose2d(x, w, None, 2, 1)
    torch.testing.assert_close(out, F.conv_transpose2d(x, w, None, 2, 1))
    small_x, small_w = x[:1, :, :2, :2].detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, bb: conv_transpose2d(a, bb, None, 2, 1), (small_x, small_w))
    empty = conv_transpose2d(torch.zeros(0, 3, 4, 4, dtype=torch.float64), w.detach(), None, 2, 1)
    assert empty.shape == (0, 2, 8, 8)


def test_opcheck_and_compile():
    x, w, b = inputs((2, 3, 4, 4), (2, 4, 4), torch.float32, grad=True)
    torch.library.opcheck(torch.ops.fastgen.conv_transpose2d.default, (x, w, b, [2, 2], [1, 1], [0, 0], "relu", 0.0))

    def generator_block(z, weight, bias):
        return torch.ops.fastgen.conv_transpose2d(z, weight, bias, [2, 2], [1, 1], [0, 0], "tanh", 0.0).sum()

    compiled = torch.compile(generator_block, fullgraph=True, backend="aot_eager")
    out = compiled(x, w, b)
    grads = torch.autograd.grad(out, (x, w, b))
    expected = torch.tanh(F.conv_transpose2d(x, w, b, 2, 1)).sum()
    expected_grads = torch.autograd.grad(expected, (x, w, b))
    torch.testing.assert_close(out, expected)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_bad_input_is_refused_with_the_argument_named():
    x, w, b = inputs((1, 3, 4, 4), (2, 3, 3), torch.float32)
    with pytest.raises(ValueError, match="x must be 4-D"):
        conv_transpose2d(x[0], w, b)
    with pytest.raises(ValueError, match="weight must have C_in = 3"):
        conv_transpose2d(x, w[:2], b)
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        conv_transpose2d(x, w, b[:1])
    with pytest.raises(ValueError, match="stride must be >= 1"):
        conv_transpose2d(x, w, b, stride=0)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        conv_transpose2d(x, w, b, padding=-1)
    with pytest.raises(ValueError, match="output_padding must be smaller than stride"):
        conv_transpose2d(x, w, b, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="give no output"):
        conv_transpose2d(x, w, b, stride=1, padding=4)
    with pytest.raises(ValueError, match="activation must be one of"):
        conv_transpose2d(x, w, b, activation="gelu")
    with pytest.raises(TypeError, match="weight must have x's dtype"):
        conv_transpose2d(x, w.double(), b)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        conv_transpose2d(bad, w, b)
    with pytest.raises(ValueError, match="negative_slope must be a finite"):
        conv_transpose2d(x, w, b, activation="leaky_relu", negative_slope=float("nan"))


# ---- the chunked forward and its k4s2p1 output pass (the DCGAN layer) ---------------------------
K4S2P1_SHAPES = [  # x shape (N, C_in, H, W), C_out
    ((1, 1, 1, 1), 1),
    ((1, 3, 1, 7), 2),
    ((2, 129, 3, 2), 1),      # many input channels, one output channel
    ((1, 2, 5, 5), 129),      # many output channels
    ((3, 4, 12, 11), 3),      # 132 pixels per image: each image's GEMM reads x in place
    ((5, 6, 4, 4), 7),        # 16 pixels: images packed side by side for one GEMM
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("shape,c_out", K4S2P1_SHAPES)
def test_k4s2p1_matches_torch_pair(shape, c_out, activation, dtype):
    x, w, b = inputs(shape, (c_out, 4, 4), dtype, seed=shape[1])
    for bias in (b, None):
        expected = ACTIVATIONS[activation](F.conv_transpose2d(x, w, bias, 2, 1))
        torch.testing.assert_close(conv_transpose2d(x, w, bias, 2, 1, 0, activation, 0.2), expected, **TOL[dtype])
    # kernel 4, stride 2, padding 1 with output_padding 1 is not the fast case: the general pass
    expected = ACTIVATIONS[activation](F.conv_transpose2d(x, w, b, 2, 1, 1))
    torch.testing.assert_close(conv_transpose2d(x, w, b, 2, 1, 1, activation, 0.2), expected, **TOL[dtype])


def test_k4s2p1_non_contiguous_and_empty_input():
    x, w, b = inputs((4, 6, 5, 3), (3, 4, 4), torch.float64)
    view = x.transpose(2, 3)  # (4, 6, 3, 5), not contiguous
    assert not view.is_contiguous()
    torch.testing.assert_close(conv_transpose2d(view, w, b, 2, 1, 0, "tanh"),
                               torch.tanh(F.conv_transpose2d(view, w, b, 2, 1)), **TOL[torch.float64])
    channels_last = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(conv_transpose2d(channels_last, w, b, 2, 1, 0, "relu"),
                               F.relu(F.conv_transpose2d(x, w, b, 2, 1)), **TOL[torch.float64])
    empty = conv_transpose2d(x[:0], w, b, 2, 1, 0, "relu")
    assert empty.shape == (0, 3, 10, 6)


@pytest.mark.parametrize("geometry_case", [0, 2, 3, 4, 6])  # 3: the projection of a 1 x 1 input
@pytest.mark.parametrize("parallel_chunks", [True, False])
@pytest.mark.parametrize("chunk_elements", [1, 500, 0])
def test_chunking_does_not_change_the_result(geometry_case, parallel_chunks, chunk_elements):
    """Every chunk size (1 element: one image per chunk; 0: the default, one chunk here) and both
    schedules (chunks over OpenMP threads with single-threaded BLAS, or in turn) give the pair's result."""
    from fastgen._native import cpu as _cpu
    from fastgen.ops.conv import conv_transpose_geometry, single_threaded_blas

    shape, wshape, stride, padding, output_padding = CASES[geometry_case]
    shape = (7,) + shape[1:]
    x, w, b = inputs(shape, wshape, torch.float64, seed=geometry_case)
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    geometry = conv_transpose_geometry(x.shape, w.shape, b.shape, pair(stride), pair(padding), pair(output_padding))
    expected = torch.sigmoid(F.conv_transpose2d(x, w, b, stride, padding, output_padding))
    out = np.empty(tuple(expected.shape))
    with single_threaded_blas() as one_thread:
        bad = _cpu.C.conv_transpose2d_forward(x.numpy(), w.numpy(), b.numpy(), out, geometry, 4, 0.0,
                                              parallel_chunks and one_thread, chunk_elements)
    assert bad == 0
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 2, 12, 11), (5, 2, 4, 4)])  # x read in place / packed per chunk
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_infinity_in_x_found_by_the_forward_kernel(shape, bad):
    x, w, b = inputs(shape, (3, 4, 4), torch.float32)
    for where in ((0, 0, 0, 0), (shape[0] - 1, 1, shape[2] - 1, shape[3] - 1)):
        poisoned = x.clone()
        poisoned[where] = bad
        with pytest.raises(ValueError, match="x contains NaN or infinity"):
            conv_transpose2d(poisoned, w, b, 2, 1, 0, "relu")  # ReLU would hide a NaN in the output
        with pytest.raises(ValueError, match="x contains NaN or infinity"):
            conv_transpose2d_numpy(poisoned.numpy(), w.numpy(), b.numpy(), 2, 1, 0, "relu")
    w_bad = w.clone()
    w_bad[0, 0, 0, 0] = bad
    with pytest.raises(ValueError, match="weight contains NaN or infinity"):
        conv_transpose2d(x, w_bad, b, 2, 1)


def test_single_threaded_blas_restores_the_thread_count_after_the_last_user():
    from fastgen.ops.conv import _blas_thread_functions, single_threaded_blas

    functions = _blas_thread_functions()
    if not functions:
        pytest.skip("SciPy's BLAS is not an OpenBLAS: the chunks run in turn instead")
    get, set_ = functions
    before = get()
    set_(2)
    try:
        with single_threaded_blas() as outer:
            assert outer and get() == 1
            with single_threaded_blas():
                assert get() == 1
            assert get() == 1  # the outer user is still inside
        assert get() == 2
    finally:
        set_(before)


def test_forward_does_not_depend_on_the_thread_count(tmp_path):
    """Chunks are a function of the shape: the same bits on 1 and 2 OpenMP threads (small images
    packed per chunk, wide ones with a GEMM each, and the projection of 1 x 1 inputs)."""
    import os
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "from fastgen.ops.conv import conv_transpose2d\n"
        "rng = np.random.default_rng(0)\n"
        "outs = [conv_transpose2d(rng.normal(size=(37, 8, h, h)).astype(np.float32),\n"
        "                         rng.normal(size=(8, 5, 4, 4)).astype(np.float32),\n"
        "                         rng.normal(size=5).astype(np.float32), 2, 1, 0, 'tanh').ravel() for h in (4, 12)]\n"
        "outs.append(conv_transpose2d(rng.normal(size=(37, 9, 1, 1)).astype(np.float32),\n"
        "                             rng.normal(size=(9, 5, 4, 4)).astype(np.float32), None, 1, 0, 0,\n"
        "                             'relu').ravel())\n"
        "np.save(sys.argv[1], np.concatenate(outs))\n"
    )
    results = []
    for threads in ("1", "2"):
        path = tmp_path / f"c{threads}.npy"
        subprocess.run([sys.executable, "-c", script, str(path)], check=True,
                       env=dict(os.environ, OMP_NUM_THREADS=threads), timeout=300)
        results.append(np.load(path))
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", ["none", "relu", "tanh"])
@pytest.mark.parametrize("batch,c_in,c_out,k", [(37, 9, 5, 4), (1, 3, 2, 7), (16, 100, 6, 4), (17, 1, 1, 1)])
def test_projection_of_1x1_inputs_matches_torch_pair(batch, c_in, c_out, k, activation, dtype):
    # a 1 x 1 input with stride 1 and no padding is one GEMM straight into the output (the DCGAN
    # generator's first layer), in chunks of images: batches not a multiple of the chunk, batch 1
    x, w, b = inputs((batch, c_in, 1, 1), (c_out, k, k), dtype, seed=batch)
    for bias in (b, None):
        expected = ACTIVATIONS[activation](F.conv_transpose2d(x, w, bias))
        torch.testing.assert_close(conv_transpose2d(x, w, bias, 1, 0, 0, activation), expected, **TOL[dtype])
    # the same 1 x 1 input with padding or output_padding is not the projection: the general pass
    if k > 2:
        expected = ACTIVATIONS[activation](F.conv_transpose2d(x, w, b, 2, 1, 1))
        torch.testing.assert_close(conv_transpose2d(x, w, b, 2, 1, 1, activation), expected, **TOL[dtype])
    # a non-contiguous z: (N, C, 1, 1) as a strided view
    wide = torch.randn(batch, 2 * c_in, 1, 1, dtype=dtype)[:, ::2]
    torch.testing.assert_close(conv_transpose2d(wide, w, b, 1, 0, 0, activation),
                               ACTIVATIONS[activation](F.conv_transpose2d(wide, w, b)), **TOL[dtype])


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("shape,wshape,stride,padding,output_padding", CASES + [
    ((1, 5, 3, 3), (4, 4, 4), 2, 1, 0),       # batch 1, odd input size, the k4s2p1 layer
    ((3, 7, 1, 1), (5, 4, 4), 1, 0, 0),       # the projection
])
def test_backward_matches_torch_autograd(shape, wshape, stride, padding, output_padding, activation):
    """Gradients of x, weight and bias against F.conv_transpose2d + activation under autograd,
    float32 and float64, with the incoming gradient non-contiguous (a transposed view)."""
    for dtype, tol in ((torch.float64, dict(rtol=1e-10, atol=1e-10)), (torch.float32, dict(rtol=1e-4, atol=1e-5))):
        x, w, b = inputs(shape, wshape, dtype, seed=len(shape) + shape[1], grad=True)
        out = conv_transpose2d(x, w, b, stride, padding, output_padding, activation, 0.2)
        expected = ACTIVATIONS[activation](F.conv_transpose2d(x, w, b, stride, padding, output_padding))
        weights = torch.randn(out.shape[0], out.shape[1], out.shape[3], out.shape[2], dtype=dtype)
        grads = torch.autograd.grad((out.transpose(2, 3) * weights).sum(), (x, w, b))
        want = torch.autograd.grad((expected.transpose(2, 3) * weights).sum(), (x, w, b))
        for got, ref in zip(grads, want):
            assert got.shape == ref.shape and got.is_contiguous()
            torch.testing.assert_close(got, ref, **tol)


def test_backward_of_a_channels_last_input():
    x, w, b = inputs((3, 4, 5, 6), (3, 4, 4), torch.float64, grad=True)
    xl = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    out = conv_transpose2d(xl, w, b, 2, 1, 0, "leaky_relu", 0.2)
    grads = torch.autograd.grad(out.square().sum(), (xl, w, b))
    want = torch.autograd.grad(F.leaky_relu(F.conv_transpose2d(x, w, b, 2, 1), 0.2).square().sum(), (x, w, b))
    for got, ref in zip(grads, want):
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("geometry_case", range(len(CASES)))
@pytest.mark.parametrize("parallel_chunks", [True, False])
@pytest.mark.parametrize("chunk_elements", [1, 500, 0])
def test_cpp_backward_matches_torch_for_every_chunking(geometry_case, parallel_chunks, chunk_elements):
    """fastgen._C's chunked backward (grad_x, grad_weight; grad_x optional) against torch's, for
    every geometry and chunk size, chunks over threads or in turn."""
    from fastgen._native import cpu as _cpu
    from fastgen.ops.conv import conv_transpose_geometry, single_threaded_blas

    shape, wshape, stride, padding, output_padding = CASES[geometry_case]
    shape = (11,) + shape[1:]
    x, w, _ = inputs(shape, wshape, torch.float64, seed=geometry_case)
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    geometry = conv_transpose_geometry(x.shape, w.shape, None, pair(stride), pair(padding), pair(output_padding))
    grad = torch.randn((shape[0], wshape[0], geometry[5], geometry[6]), dtype=torch.float64)
    want_x, want_w, _ = torch.ops.aten.convolution_backward(grad, x, w, None, list(pair(stride)),
                                                            list(pair(padding)), [1, 1], True,
                                                            list(pair(output_padding)), 1, [True, True, False])
    for with_x in (True, False):
        gx, gw = torch.full_like(x, float("nan")), torch.full_like(w, float("nan"))
        with single_threaded_blas() as one_thread:
            _cpu.C.conv_transpose2d_backward(grad.numpy(), x.numpy(), w.numpy(), gx.numpy() if with_x else None,
                                             gw.numpy(), geometry, parallel_chunks and one_thread, chunk_elements)
        torch.testing.assert_close(gw, want_w, rtol=1e-11, atol=1e-11)
        if with_x:
            torch.testing.assert_close(gx, want_x, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("shape,c_out", [((1, 3, 12, 11), 4), ((5, 6, 16, 16), 3), ((2, 4, 13, 10), 2)])
def test_backward_of_wide_images_matches_torch_autograd(shape, c_out):
    # images of >= 128 pixels take fastgen._C's backward; batch 1, odd sizes, every activation
    for activation in ACTIVATIONS:
        for dtype, tol in ((torch.float64, dict(rtol=1e-10, atol=1e-10)), (torch.float32, dict(rtol=1e-4, atol=1e-5))):
            x, w, b = inputs(shape, (c_out, 4, 4), dtype, seed=shape[2], grad=True)
            out = conv_transpose2d(x, w, b, 2, 1, 0, activation, 0.2)
            expected = ACTIVATIONS[activation](F.conv_transpose2d(x, w, b, 2, 1))
            weights = torch.randn(out.shape, dtype=dtype, generator=torch.Generator().manual_seed(shape[3]))
            grads = torch.autograd.grad((out * weights).sum(), (x, w, b))
            want = torch.autograd.grad((expected * weights).sum(), (x, w, b))
            for got, ref in zip(grads, want):
                torch.testing.assert_close(got, ref, **tol)
    # only the weight asks for a gradient: no grad_x computed, the weight's still right
    x, w, b = inputs(shape, (c_out, 4, 4), torch.float64, seed=1)
    w.requires_grad_()
    (gw,) = torch.autograd.grad(conv_transpose2d(x, w, None, 2, 1, 0, "tanh").sum(), (w,))
    (want,) = torch.autograd.grad(torch.tanh(F.conv_transpose2d(x, w, None, 2, 1)).sum(), (w,))
    torch.testing.assert_close(gw, want, rtol=1e-10, atol=1e-10)


def test_backward_does_not_depend_on_the_thread_count(tmp_path):
    """grad_weight's sum over chunks runs in an order fixed by the shape: the same bits on 1 and 2
    OpenMP threads (37 wide images: 8 groups of chunks)."""
    import os
    import subprocess
    import sys

    script = (
        "import sys, numpy as np, torch\n"
        "from fastgen.torch.conv import conv_transpose2d\n"
        "g = torch.Generator().manual_seed(0)\n"
        "x = torch.randn(37, 8, 12, 12, generator=g).requires_grad_()\n"
        "w = (torch.randn(8, 5, 4, 4, generator=g) * 0.3).requires_grad_()\n"
        "out = conv_transpose2d(x, w, None, 2, 1, 0, 'tanh')\n"
        "gx, gw = torch.autograd.grad((out * torch.randn(out.shape, generator=g)).sum(), (x, w))\n"
        "np.save(sys.argv[1], np.concatenate([gx.numpy().ravel(), gw.numpy().ravel()]))\n"
    )
    results = []
    for threads in ("1", "2"):
        path = tmp_path / f"b{threads}.npy"
        subprocess.run([sys.executable, "-c", script, str(path)], check=True,
                       env=dict(os.environ, OMP_NUM_THREADS=threads), timeout=300)
        results.append(np.load(path))
    np.testing.assert_array_equal(results[0], results[1])


# ---- the CUDA kernels' registration and checks (their results: the gpu cases below) ----
def test_both_ops_have_cpu_and_cuda_kernels():
    for op in ("fastgen::conv_transpose2d", "fastgen::conv_transpose2d_backward"):
        for key in ("CPU", "CUDA", "Meta", "Autograd"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(op, key), (op, key)


def test_fake_kernels_take_any_device_and_refuse_a_mix():
    from fastgen.torch import conv

    x, w, b = (t.to("meta") for t in inputs((2, 3, 4, 4), (2, 4, 4), torch.float32))
    y = torch.ops.fastgen.conv_transpose2d(x, w, b, [2, 2], [1, 1], [0, 0], "relu", 0.0)
    assert y.shape == (2, 2, 8, 8) and y.device.type == "meta" and y.dtype == torch.float32
    for need_x, need_bias in ((True, True), (False, True), (True, False), (False, False)):
        gx, gw, gb = torch.ops.fastgen.conv_transpose2d_backward(y, y, x, w, [2, 2], [1, 1], [0, 0], "relu", 0.0,
                                                                 need_x, need_bias)
        assert gx.shape == (x.shape if need_x else (0,)) and gw.shape == w.shape
        assert gb.shape == ((2,) if need_bias else (0,)) and gx.device.type == "meta"
    cx, cw, cb = inputs((2, 3, 4, 4), (2, 4, 4), torch.float32)
    with pytest.raises(ValueError, match="weight is on meta but x is on cpu"):
        conv._check(cx, w, cb)
    with pytest.raises(ValueError, match="bias is on cpu but x is on meta"):
        conv._check(x, w, cb)
    with pytest.raises(ValueError, match="bias is on meta but x is on cpu"):  # through the dispatcher too
        torch.ops.fastgen.conv_transpose2d(cx, cw, b, [2, 2], [1, 1], [0, 0], "relu", 0.0)
    with pytest.raises(TypeError, match="weight must have x's dtype"):
        torch.ops.fastgen.conv_transpose2d(x, w.double(), None, [1, 1], [0, 0], [0, 0], "none", 0.0)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        conv._check(x.to(torch.int32), w.to(torch.int32), b)  # bfloat16 / float16 are taken (in float32)


def test_cuda_kernels_without_the_backend_raise_naming_the_tensor(monkeypatch):
    from fastgen._native import cuda as _cuda
    from fastgen.torch import conv

    monkeypatch.setattr(_cuda, "unavailable_reason", lambda: "CuPy is not importable (ImportError: test)")
    x, w, b = inputs((2, 3, 4, 4), (2, 4, 4), torch.float32)
    args = ([2, 2], [1, 1], [0, 0], "tanh", 0.0)
    backend = "lives on a CUDA device, but fastgen's CUDA backend is unavailable: CuPy is not importable"
    with pytest.raises(TypeError, match="^x " + backend):
        conv._conv_transpose2d_cuda(x, w, b, *args)
    y = torch.zeros(2, 2, 8, 8)
    for need_x, need_bias in ((True, True), (False, False)):
        with pytest.raises(TypeError, match="^grad_out " + backend):
            conv._conv_transpose2d_backward_cuda(y, y, x, w, *args, need_x, need_bias)
    # what is refused before the backend is asked: device mixes (both names), bad geometry, shapes
    with pytest.raises(ValueError, match="bias is on meta but x is on cpu"):
        conv._conv_transpose2d_cuda(x, w, b.to("meta"), *args)
    with pytest.raises(ValueError, match="weight must have C_in = 3"):
        conv._conv_transpose2d_cuda(x, w[:2], b, *args)
    with pytest.raises(ValueError, match="activation must be one of"):
        conv._conv_transpose2d_cuda(x, w, b, [2, 2], [1, 1], [0, 0], "gelu", 0.0)
    with pytest.raises(ValueError, match="grad_out is on meta but x is on cpu"):
        conv._conv_transpose2d_backward_cuda(y.to("meta"), y, x, w, *args)
    with pytest.raises(ValueError, match=r"grad_out must have the output's shape \(2, 2, 8, 8\)"):
        conv._conv_transpose2d_backward_cuda(y[:1], y, x, w, *args)
    with pytest.raises(ValueError, match=r"y must have the output's shape \(2, 2, 8, 8\) and x's dtype"):
        conv._conv_transpose2d_backward_cuda(y, y.double(), x, w, *args)
    with pytest.raises(TypeError, match="weight must have x's dtype"):
        conv._conv_transpose2d_backward_cuda(y, y, x, w.double(), *args)


# ==== on a GPU (CuPy arrays and torch CUDA tensors against the CPU) =============================


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [0, 1, 2, 3, 4])
def test_conv_transpose_pieces_match_the_cpu(cp, dtype, activation):
    v = cuda_module_or_skip("cuda_vae")
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


@pytest.mark.gpu
def test_conv_transpose_backward_matches_torch_autograd(cp):
    torch = torch_cuda_or_skip()
    v = cuda_module_or_skip("cuda_vae")
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


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
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
        np.testing.assert_allclose(got.get(), want, rtol=CONV_GPU_RTOL[dtype], atol=CONV_GPU_RTOL[dtype] * 10)


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


# ==== torch CUDA tensors against the CPU op (conv_transpose2d and its backward) =================
GPU_DTYPES = [torch.float32, torch.float64]
# cuBLAS and the CPU's BLAS / oneDNN sum the taps in other orders
GPU_TOL = {torch.float32: dict(rtol=5e-5, atol=5e-5), torch.float64: dict(rtol=1e-11, atol=1e-11)}


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
@pytest.mark.parametrize("dtype", GPU_DTYPES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("case", CONV_CASES)
def test_forward_and_backward_on_cuda_match_the_cpu_op(cuda, dtype, activation, case):
    xs, ws, stride, padding, output_padding = case
    for with_bias in (True, False):
        results = {}
        for device in ("cpu", "cuda"):
            x, w, b = conv_case_inputs(xs, ws, dtype, device, seed=3, grad=True)
            bias = b if with_bias else None
            y = tconv.conv_transpose2d(x, w, bias, stride, padding, output_padding, activation, 0.2)
            assert y.device.type == device and y.dtype == dtype and y.is_contiguous()
            g = torch.randn(y.shape, dtype=dtype, generator=torch.Generator().manual_seed(5)).to(device)
            y.backward(g)
            results[device] = [t.detach().cpu() for t in (y, x.grad, w.grad) + ((b.grad,) if with_bias else ())]
            if not with_bias:
                assert b.grad is None
        for got, want in zip(results["cuda"], results["cpu"]):
            torch.testing.assert_close(got, want, **GPU_TOL[dtype])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", GPU_DTYPES)
def test_backward_op_need_flags_on_cuda(cuda, dtype):
    x, w, b = conv_case_inputs((3, 4, 5, 5), (4, 3, 4, 4), dtype, "cuda")
    args = ([2, 2], [1, 1], [0, 0], "leaky_relu", 0.2)
    y = torch.ops.fastgen.conv_transpose2d(x, w, b, *args)
    g = torch.randn_like(y)
    full = torch.ops.fastgen.conv_transpose2d_backward(g, y, x, w, *args)
    cpu = torch.ops.fastgen.conv_transpose2d_backward(g.cpu(), y.cpu(), x.cpu(), w.cpu(), *args)
    for a, c in zip(full, cpu):
        torch.testing.assert_close(a.cpu(), c, **GPU_TOL[dtype])
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
    torch.testing.assert_close(xw.grad.cpu(), want_w.grad, **GPU_TOL[dtype])


@pytest.mark.gpu
def test_opcheck_gradcheck_and_compile_on_cuda(cuda):
    for dtype in GPU_DTYPES:
        for xs, ws, stride, padding, output_padding in CONV_CASES[:2]:
            x, w, b = conv_case_inputs(xs, ws, dtype, "cuda", grad=True)
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
        x, w, b = conv_case_inputs((2, 2, 3, 3), (2, 3, 3, 3), torch.float64, "cuda", seed=2, grad=True)
        assert torch.autograd.gradcheck(
            lambda a, c, d: tconv.conv_transpose2d(a, c, d, 2, 1, 1, activation, 0.2), (x, w, b))

    def generator_block(z, weight, bias):
        return torch.ops.fastgen.conv_transpose2d(z, weight, bias, [2, 2], [1, 1], [0, 0], "tanh", 0.0).square().sum()

    compiled = torch.compile(generator_block, fullgraph=True)
    x, w, b = conv_case_inputs((2, 3, 4, 4), (3, 2, 4, 4), torch.float32, "cuda", grad=True)
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
    x, w, b = conv_case_inputs((4, 6, 7, 7), (6, 3, 4, 4), torch.float64, "cuda")
    x_cl = x.to(memory_format=torch.channels_last).requires_grad_()
    w_t = w.transpose(2, 3).contiguous().transpose(2, 3).requires_grad_()  # same values, other strides
    y = tconv.conv_transpose2d(x_cl, w_t, b, 2, 1, 1, "relu")
    y.backward(torch.ones_like(y))
    x2, w2 = x.cpu().requires_grad_(), w.cpu().requires_grad_()
    want = tconv.conv_transpose2d(x2, w2, b.cpu(), 2, 1, 1, "relu")
    want.backward(torch.ones_like(want))
    torch.testing.assert_close(y.cpu(), want, **GPU_TOL[torch.float64])
    torch.testing.assert_close(x_cl.grad.cpu(), x2.grad, **GPU_TOL[torch.float64])
    torch.testing.assert_close(w_t.grad.cpu(), w2.grad, **GPU_TOL[torch.float64])
    for xs, ws in (((0, 3, 4, 4), (3, 2, 3, 3)), ((2, 0, 4, 4), (0, 2, 3, 3))):
        ex, ew, eb = conv_case_inputs(xs, ws, torch.float64, "cuda", grad=True)
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
    x, w, b = conv_case_inputs((2, 3, 4, 4), (3, 2, 3, 3), torch.float32, "cuda")
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
        torch.ops.fastgen.conv_transpose2d(x.to(torch.int32), w.to(torch.int32), None, *args)
    with pytest.raises(ValueError, match="grad_out must have the output's shape"):
        torch.ops.fastgen.conv_transpose2d_backward(y[:1], y, x, w, *args)


@pytest.mark.gpu
def test_runs_on_the_callers_stream(cuda):
    x, w, b = conv_case_inputs((64, 32, 16, 16), (32, 16, 4, 4), torch.float32, "cuda")
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
    torch.testing.assert_close(got, want, **GPU_TOL[torch.float32])
    for a, c in zip(got_grads, want_grads):
        torch.testing.assert_close(a, c, **GPU_TOL[torch.float32])


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
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                            env=dict(os.environ), timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr
