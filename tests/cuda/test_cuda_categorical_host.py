"""The categorical sampler's CUDA kernel (kernels/categorical.cu) checked without a GPU.

tests/cuda/harness_categorical.cu includes the kernel file and replays each row's warp lane by
lane on the CPU: the top-k radix select, the per-round prefix of tied columns, every lane's
Philox blocks and keys (the shared gumbel_key) and the choice among the lanes' candidates. Its
draws must be bitwise fastgen._C.sample_categorical's for float32 and float64, with and without
top_k, on rows of 1, 27, 129 and 4128 columns (one Philox block shared by two rows, several
rounds of 32 blocks per row), on ties at the k-th value (within a block, across blocks and
across rounds), on -0.0 beside +0.0, on keys that overflow to -infinity / +infinity, and on
strided rows. Also: the struct's byte layout equals fastgen/_native/cuda_categorical.py's dtype, the
op refuses CUDA input clearly when the backend is unavailable, CPU calls never import the CUDA
modules, and the torch op has a CUDA kernel registered.

Not covered (the gpu cases of tests/ops/test_categorical.py are): the shuffles, the launch, the op's
CuPy / torch plumbing on a device.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastgen import _build
from fastgen._native import cpu as _cpu
from fake_cuda import FakeCudaArray as _FakeCudaArray, cuda_backend_unavailable as _backend_unavailable

REPO = Path(__file__).resolve().parents[2]
NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH (needed to build the host harness)")
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    exe = tmp_path_factory.mktemp("harness_categorical") / "harness_categorical"
    # host code only runs; -ffp-contract=off as for csrc/ so the shared formulas round alike
    options = [o for o in _build.nvrtc_options() if not o.startswith("-I")]
    cmd = [NVCC, *options, "-I", str(REPO / "kernels" / "include"), "-O2", "-Xcompiler", "-ffp-contract=off",
           "-gencode", "arch=compute_80,code=sm_80", str(REPO / "tests" / "cuda" / "harness_categorical.cu"),
           "-o", str(exe)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return exe


def replay(harness, tmp_path, logits, temperature, top_k, seed, offset, cols=None):
    """The kernel's draws for ``logits`` [rows, stride] whose first ``cols`` columns are the row
    (all of them unless given)."""
    rows, stride = logits.shape
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    np.ascontiguousarray(logits).tofile(src)
    args = [str(harness), logits.dtype.name, str(src), str(dst), str(rows), str(cols or stride), str(stride),
            repr(float(temperature)), str(top_k), str(seed), str(offset)]
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return np.fromfile(dst, np.int64)


def cpu(logits, temperature, top_k, seed, offset):
    out = np.empty(logits.shape[0], np.int64)
    _cpu.C.sample_categorical(np.ascontiguousarray(logits), out, temperature, top_k, seed, offset)
    return out


def check(harness, tmp_path, logits, temperature, top_k, seed=2**63 + 11, offset=2**33 + 5):
    got = replay(harness, tmp_path, logits, temperature, top_k, seed, offset)
    want = cpu(logits, temperature, top_k, seed, offset)
    np.testing.assert_array_equal(got, want)
    return got


@needs_nvcc
def test_struct_layout_matches_the_python_dtype(harness):
    from fastgen._native import cuda_categorical as _cuda_categorical

    lines = subprocess.run([str(harness), "layout"], capture_output=True, text=True, check=True).stdout.split("\n")
    cpp = dict(line.rsplit(" ", 1) for line in lines if line)
    stream = {f"stream_{k}": int(cpp[f"StreamParams.{k}"]) for k in ("rng", "seed", "offset")}
    assert set(_cuda_categorical.DTYPES) == {k for k in cpp if "." not in k} - {"StreamParams"}
    for struct, dtype in _cuda_categorical.DTYPES.items():
        assert dtype.itemsize == int(cpp[struct]), struct
        for field in dtype.names:
            want = (int(cpp[f"{struct}.stream"]) + stream[field]) if field.startswith("stream_") \
                else int(cpp[f"{struct}.{field}"])
            assert dtype.fields[field][1] == want, (struct, field)


# ---- draws, bitwise the CPU's ------------------------------------------------------------------
SHAPES = [(50, 1), (300, 27), (40, 129), (5, 4096 + 32)]


@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_draws_are_the_cpus_with_and_without_top_k(harness, tmp_path, dtype, shape):
    rows, cols = shape
    x = np.random.default_rng(cols).normal(0, 2, shape).astype(dtype)
    ks = sorted({0, 1, min(5, cols), max(1, cols // 2), max(1, cols - 1), cols})
    for temperature in (1.0, 0.35):
        draws = [check(harness, tmp_path, x, temperature, k) for k in ks]
    if cols > 1:  # the rows are really drawn, not all taken from one column
        assert len(np.unique(draws[0])) > 1
    if cols > 5:
        top5 = np.argsort(-x.astype(np.float64), axis=1, kind="stable")[:, :5]
        assert all(d in t for d, t in zip(draws[ks.index(5)], top5))


@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_at_the_kth_value_within_and_across_blocks_and_rounds(harness, tmp_path, dtype):
    rng = np.random.default_rng(5)
    # few distinct values: the k-th value is tied many times, in one Philox block, in many
    # blocks, and (4128 columns = 9 rounds of 32 blocks) across the warp's rounds
    for rows, cols in ((400, 27), (60, 129), (6, 4128)):
        x = rng.integers(-2, 3, (rows, cols)).astype(dtype)
        for k in sorted({1, 2, 3, 7, cols // 3, cols // 2, cols - 1}):
            check(harness, tmp_path, x, 0.8, k)
    # every column equal: the first k columns compete
    x = np.zeros((200, 27), dtype)
    draws = check(harness, tmp_path, x, 1.0, 4)
    assert set(np.unique(draws)) == {0, 1, 2, 3}
    # the documented example: 3.0 three times, k = 2 admits columns 1 and 2
    x = np.tile(np.array([1.0, 3.0, 3.0, 3.0, 0.0], dtype), (500, 1))
    assert set(np.unique(check(harness, tmp_path, x, 1.0, 2))) == {1, 2}


@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
def test_negative_and_positive_zero_are_one_value(harness, tmp_path, dtype):
    # -0.0 and +0.0 compare equal: the k-th value's ties run over both, in column order
    rng = np.random.default_rng(6)
    x = rng.choice(np.array([-0.0, 0.0, 1.0, -1.0], dtype), size=(300, 27))
    for k in (1, 3, 6, 13, 26):
        check(harness, tmp_path, x, 1.0, k)


@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_logits_and_temperatures(harness, tmp_path, dtype):
    big = float(np.finfo(dtype).max)
    rng = np.random.default_rng(7)
    # huge logits with a huge temperature: keys overflow to -inf / +inf; a row whose keys are
    # all -inf goes, as on the CPU, to its lowest column
    x = rng.choice(np.array([-big, big, -big / 2, 0.0], dtype), size=(200, 27))
    for k in (0, 1, 5):
        check(harness, tmp_path, x, big / 4, k)
    x = np.full((50, 27), -big, dtype)
    check(harness, tmp_path, x, big / 4, 0)
    # a tiny temperature is the argmax; a large one nearly uniform
    x = rng.normal(0, 2, (300, 27)).astype(dtype)
    for t in (1e-30, 1e-3, 1e3):
        check(harness, tmp_path, x, t, 0)
        check(harness, tmp_path, x, t, 4)


@needs_nvcc
@pytest.mark.parametrize("seed,offset", [(0, 0), (1, 2**32 - 1), (2**64 - 1, 2**63 + 3)])
def test_seed_and_offset_words_are_the_cpus(harness, tmp_path, seed, offset):
    x = np.random.default_rng(8).normal(0, 1, (100, 27)).astype(np.float32)
    check(harness, tmp_path, x, 1.0, 0, seed, offset)
    check(harness, tmp_path, x, 1.0, 3, seed, offset)


@needs_nvcc
@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_rows_read_only_their_columns(harness, tmp_path, dtype):
    # the kernel takes a row stride: padding columns (here huge) must never be drawn
    rng = np.random.default_rng(9)
    x = rng.normal(0, 2, (80, 27)).astype(dtype)
    padded = np.full((80, 40), 1e30, dtype)
    padded[:, :27] = x
    for k in (0, 4):
        got = replay(harness, tmp_path, padded, 0.9, k, 3, 4, cols=27)
        np.testing.assert_array_equal(got, cpu(x, 0.9, k, 3, 4))


@needs_nvcc
def test_zero_rows_draw_nothing(harness, tmp_path):
    assert replay(harness, tmp_path, np.zeros((0, 27), np.float32), 1.0, 0, 1, 2).size == 0


# ---- dispatch without a GPU ---------------------------------------------------------------------
@pytest.mark.skipif("not _backend_unavailable()", reason="the CUDA backend is available here")
def test_cuda_logits_get_the_documented_error_without_the_backend():
    from fastgen.ops import sample_categorical

    with pytest.raises(TypeError, match="logits lives on a CUDA device, but fastgen's CUDA backend is unavailable") \
            as info:
        sample_categorical(_FakeCudaArray())
    assert _backend_unavailable() in str(info.value)


def test_cpu_calls_do_not_import_the_cuda_modules():
    code = ("import sys, numpy as np\n"
            "from fastgen.ops import sample_categorical\n"
            "sample_categorical(np.zeros((4, 5)), top_k=2, generator=0)\n"
            "bad = [m for m in ('cupy', 'fastgen._native.cuda', 'fastgen._native.cuda_categorical') if m in sys.modules]\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr


def test_torch_op_has_a_cuda_kernel():
    torch = pytest.importorskip("torch")
    import fastgen.torch  # noqa: F401

    assert torch._C._dispatch_has_kernel_for_dispatch_key("fastgen::sample_categorical", "CUDA")
    assert torch._C._dispatch_has_kernel_for_dispatch_key("fastgen::sample_categorical", "CPU")
