"""The categorical sampler's CUDA kernel on a GPU (``gpu`` marker: skipped without CuPy and a
CUDA device). Run with ``python -m pytest -m gpu tests/cuda`` (docs/GPU.md).

The draws for CuPy arrays and torch CUDA tensors must be bitwise the CPU's for the same
(seed, offset): float32 and float64, with and without top_k, short rows (the SMILES case: many
rows of a few dozen columns, more rows than the grid has warps), odd widths, long rows, ties at
the k-th value, strided rows; the result is an int64 array of the caller's framework on its
device; one offset per call; the torch op passes opcheck, compiles with fullgraph and runs on
the caller's stream; bad input on GPU arrays gets the CPU's errors.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastgen
from fastgen._native import cpu as _cpu
from fastgen.ops import sample_categorical

pytestmark = pytest.mark.gpu
cp = pytest.importorskip("cupy")

DTYPES = [np.float32, np.float64]


def torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    return torch


def _backend():
    from fastgen._native import cuda as _cuda, cuda_categorical as _cuda_categorical

    if not _cuda.available():
        pytest.skip(_cuda.unavailable_reason())
    return _cuda_categorical


def both(x, **kwargs):
    """(GPU draws as NumPy, CPU draws) for the same generator state."""
    seed, offset = 2**63 + 21, 2**34 + 3
    got = sample_categorical(cp.asarray(x), generator=fastgen.Generator(seed, offset), **kwargs)
    assert isinstance(got, cp.ndarray) and got.dtype == np.int64 and got.shape == x.shape[:-1]
    want = sample_categorical(x, generator=fastgen.Generator(seed, offset), **kwargs)
    return got.get(), want


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(10_000, 30), (50, 1), (300, 27), (40, 129), (3, 4096 + 32), (1, 50_000),
                                   (27,), (0, 7)], ids=str)
def test_cupy_draws_are_the_cpus(dtype, shape):
    _backend()
    x = np.random.default_rng(shape[-1]).normal(0, 2, shape).astype(dtype)
    m = shape[-1]
    for top_k in sorted({None, 1, min(5, m), max(1, m - 1), m}, key=lambda k: -1 if k is None else k):
        for temperature in (1.0, 0.6):
            got, want = both(x, temperature=temperature, top_k=top_k)
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_and_signed_zeros_are_the_cpus(dtype):
    _backend()
    rng = np.random.default_rng(1)
    for rows, cols in ((2000, 27), (100, 129), (4, 4128)):
        x = rng.integers(-2, 3, (rows, cols)).astype(dtype)
        for k in sorted({1, 2, 7, cols // 3, cols - 1}):
            np.testing.assert_array_equal(*both(x, top_k=k))
    x = rng.choice(np.array([-0.0, 0.0, 1.0], dtype), size=(500, 27))
    for k in (1, 4, 13):
        np.testing.assert_array_equal(*both(x, top_k=k))
    x = np.tile(np.array([1.0, 3.0, 3.0, 3.0, 0.0], dtype), (3000, 1))
    got, want = both(x, top_k=2)
    np.testing.assert_array_equal(got, want)
    assert set(np.unique(got)) == {1, 2}


def test_strided_rows_through_the_launcher():
    v = _backend()
    rng = np.random.default_rng(2)
    padded = cp.asarray(rng.normal(0, 2, (500, 48)))
    view = padded[:, :29]  # row stride 48: the kernel reads it in place
    for k in (0, 5):
        out = cp.empty(500, cp.int64)
        v.sample_categorical(view, out, temperature=0.9, top_k=k, seed=4, offset=6)
        want = np.empty(500, np.int64)
        _cpu.C.sample_categorical(np.ascontiguousarray(view.get()), want, 0.9, k, 4, 6)
        np.testing.assert_array_equal(out.get(), want)


def test_non_contiguous_and_integer_cupy_input_is_converted_like_on_the_cpu():
    _backend()
    x = np.random.default_rng(3).normal(0, 2, (30, 200))
    np.testing.assert_array_equal(*both(x[:, ::3]))  # copied to C order
    ints = np.random.default_rng(3).integers(-3, 4, (100, 17))
    np.testing.assert_array_equal(*both(ints, top_k=3))  # converted to float64


def test_one_offset_per_call_and_repeatable():
    _backend()
    x = cp.asarray(np.random.default_rng(4).normal(0, 1, (1000, 30)).astype(np.float32))
    gen = fastgen.Generator(9, 1)
    a = sample_categorical(x, generator=gen)
    assert gen.offset == 2
    b = sample_categorical(x, generator=fastgen.Generator(9, 1))
    c = sample_categorical(x, generator=fastgen.Generator(9, 2))
    assert bool((a == b).all()) and float((a != c).mean()) > 0.5


def test_bad_input_on_gpu_arrays_gets_the_cpus_errors():
    _backend()
    x = cp.zeros((3, 5))
    with pytest.raises(ValueError, match="logits contains NaN or infinity"):
        sample_categorical(cp.asarray([[0.0, cp.nan, 1.0]]))
    with pytest.raises(ValueError, match="logits contains NaN or infinity"):
        sample_categorical(cp.asarray([[0.0, -cp.inf, 1.0]]))
    for kwargs, match in [(dict(temperature=0.0), "temperature"), (dict(temperature=float("inf")), "temperature"),
                          (dict(top_k=0), "top_k"), (dict(top_k=6), "top_k"), (dict(top_k=2.5), "top_k")]:
        with pytest.raises(ValueError, match=match):
            sample_categorical(x, **kwargs)
    for bad in (cp.zeros((2, 3, 4)), cp.zeros((3, 0))):
        with pytest.raises(ValueError, match="logits"):
            sample_categorical(bad)
    with pytest.raises(TypeError, match="logits must be a real numeric array"):
        sample_categorical(cp.zeros((2, 3), cp.complex64))


# ---- torch -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_cuda_tensors_draw_the_cpus_values(dtype):
    torch = torch_cuda()
    import fastgen.torch as ft

    x = torch.randn(2000, 30, dtype=getattr(torch, dtype), generator=torch.Generator().manual_seed(0)) * 2
    for k in (None, 1, 5):
        got = ft.sample_categorical(x.cuda(), 0.8, k, generator=fastgen.Generator(2**64 - 5, 3))
        want = ft.sample_categorical(x, 0.8, k, generator=fastgen.Generator(2**64 - 5, 3))
        assert got.device.type == "cuda" and got.dtype == torch.int64 and got.shape == (2000,)
        assert torch.equal(got.cpu(), want)
    one = ft.sample_categorical(x[0].cuda(), generator=1)  # 1-D logits: a 0-d result
    assert one.shape == () and one.device.type == "cuda"
    assert one.item() == ft.sample_categorical(x[0], generator=1).item()
    t = x.cuda().requires_grad_()
    assert not torch.ops.fastgen.sample_categorical(t, 1.0, None, 0, 0).requires_grad
    # the framework-agnostic op takes torch CUDA tensors too, and answers in torch on the device
    got = sample_categorical(x.cuda(), top_k=5, generator=fastgen.Generator(6))
    assert isinstance(got, torch.Tensor) and got.device.type == "cuda"
    assert torch.equal(got.cpu(), sample_categorical(x, top_k=5, generator=fastgen.Generator(6)))


def test_torch_cuda_opcheck_and_compile():
    torch = torch_cuda()
    import fastgen.torch  # noqa: F401

    for x, k in [(torch.randn(8, 13, device="cuda"), 4), (torch.randn(5, dtype=torch.float64, device="cuda"), None),
                 (torch.randn(3, 1, device="cuda"), 1)]:
        torch.library.opcheck(torch.ops.fastgen.sample_categorical.default, (x, 0.9, k, 123, 4))

    def step(h, w, seed, offset):
        return torch.ops.fastgen.sample_categorical(torch.tanh(h @ w), 0.8, 3, seed, offset) + 1

    h, w = torch.randn(6, 5, device="cuda"), torch.randn(5, 9, device="cuda")
    compiled = torch.compile(step, fullgraph=True)
    assert torch.equal(compiled(h, w, 7, 1), step(h, w, 7, 1))


def test_torch_cuda_op_runs_on_the_callers_stream():
    torch = torch_cuda()
    import fastgen.torch as ft

    x = torch.randn(4096, 30, device="cuda")
    want = ft.sample_categorical(x, generator=fastgen.Generator(5))
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        x2 = x * 1  # written on the side stream: the op must see it there
        got = ft.sample_categorical(x2, generator=fastgen.Generator(5))
    torch.cuda.current_stream().wait_stream(side)
    assert torch.equal(got, want)


def test_torch_cuda_bad_input():
    torch = torch_cuda()

    op = torch.ops.fastgen.sample_categorical
    x = torch.zeros(3, 5, device="cuda")
    with pytest.raises(ValueError, match="logits contains NaN or infinity"):
        op(torch.tensor([[0.0, float("nan")]], device="cuda"), 1.0, None, 0, 0)
    for args, match in [((1.0, 0), "top_k"), ((1.0, 6), "top_k"), ((0.0, None), "temperature")]:
        with pytest.raises(ValueError, match=match):
            op(x, *args, 0, 0)
    with pytest.raises(ValueError, match="logits"):
        op(torch.zeros(2, 3, 4, device="cuda"), 1.0, None, 0, 0)
    with pytest.raises(TypeError, match="logits must be float32 or float64"):
        op(torch.zeros(2, 3, dtype=torch.int32, device="cuda"), 1.0, None, 0, 0)
