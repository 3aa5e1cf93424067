"""The CUDA kernels' per-thread code, run on the CPU (no GPU needed): tests/cuda/harness.cu
includes kernels/*.cu and calls the host+device functions each kernel thread calls, in plain
loops. Its results must equal fastgen._C's bitwise: same Philox words, uniforms, normals,
Bernoulli states and probabilities, Gaussian draws, and (for the fused Gibbs kernel) the same
chain as the CPU's rbm_gibbs when every dot product is exact. Also checks that the parameter
structs' byte layout matches the NumPy dtypes fastgen/_native/cuda.py packs them with.

What this does not cover (the ``gpu`` tests do): launch configuration, shared memory,
synchronisation, device intrinsics (the headers use __float_as_uint & co. there, memcpy here).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import fastgen
from fastgen import _build
from fastgen.ops import gibbs, sample_bernoulli, sample_gaussian

REPO = Path(__file__).resolve().parents[2]
NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH (needed to build the host harness)")


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    exe = tmp_path_factory.mktemp("harness") / "harness"
    # host code only runs; -ffp-contract=off as for csrc/ so the shared formulas round alike
    options = [o for o in _build.nvrtc_options() if not o.startswith("-I")]
    cmd = [NVCC, *options, "-I", str(REPO / "kernels" / "include"), "-O2", "-Xcompiler", "-ffp-contract=off",
           "-gencode", "arch=compute_80,code=sm_80", str(REPO / "tests" / "cuda" / "harness.cu"), "-o", str(exe)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return exe


def run(harness, tmp_path, op, dtype, rows, cols, seed, offset, inputs=(), extra=(), use_rng=False):
    dtype = np.dtype(dtype)
    src = tmp_path / "in.bin"
    dst = tmp_path / "out.bin"
    if inputs:
        np.concatenate([np.ascontiguousarray(a, dtype).ravel() for a in inputs]).tofile(src)
    args = [str(harness), op, dtype.name, str(rows), str(cols), str(seed), str(offset), str(int(use_rng)),
            str(src) if inputs else "-", str(dst), *map(str, extra)]
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return np.fromfile(dst, np.uint32 if op == "bits" else dtype)


def test_struct_layouts_match_the_python_dtypes(harness):
    from fastgen._native import cuda as _cuda

    lines = subprocess.run([str(harness), "layout"], capture_output=True, text=True, check=True).stdout.split("\n")
    cpp = dict(line.rsplit(" ", 1) for line in lines if line)
    stream = {f"stream_{k}": int(cpp[f"StreamParams.{k}"]) for k in ("rng", "seed", "offset")}
    assert int(cpp["StreamParams"]) == 24
    for struct, dtype in _cuda.DTYPES.items():
        assert dtype.itemsize == int(cpp[struct]), struct
        for field in dtype.names:
            if field.startswith("stream_"):
                want = int(cpp[f"{struct}.stream"]) + stream[field]
            else:
                want = int(cpp[f"{struct}.{field}"])
            assert dtype.fields[field][1] == want, (struct, field)


@pytest.mark.parametrize("use_rng", [False, True], ids=["absolute", "device-offset"])
@pytest.mark.parametrize("n,seed,offset", [(1, 0, 0), (10, 7, 3), (1027, 2**63 + 5, 2**40 + 1)])
def test_philox_words_uniforms_and_normals_are_the_cpus(harness, tmp_path, n, seed, offset, use_rng):
    gen = fastgen.Generator(seed, offset)
    np.testing.assert_array_equal(run(harness, tmp_path, "bits", "float32", 1, n, seed, offset, use_rng=use_rng),
                                  gen.bits(n))
    for dtype in (np.float32, np.float64):
        got = run(harness, tmp_path, "uniform", dtype, 1, n, seed, offset, use_rng=use_rng)
        np.testing.assert_array_equal(got, fastgen.Generator(seed, offset).uniform(n, dtype))
        got = run(harness, tmp_path, "normal", dtype, 1, n, seed, offset, use_rng=use_rng)
        np.testing.assert_array_equal(got, fastgen.Generator(seed, offset).normal(n, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (17, 33), (64, 129)])
def test_bernoulli_matches_the_cpu_bitwise(harness, tmp_path, dtype, shape):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    rows, cols = shape
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    bias = rng.standard_normal(cols).astype(dtype)
    for use_bias in (0, 1):
        out = run(harness, tmp_path, "bernoulli", dtype, rows, cols, 11, 5, [x, bias], extra=(1, use_bias, 1))
        probs, states = out[:rows * cols].reshape(shape), out[rows * cols:].reshape(shape)
        want_p, want_s = sample_bernoulli(x, bias if use_bias else None, output="both",
                                          generator=fastgen.Generator(11, 5))
        np.testing.assert_array_equal(probs, want_p)
        np.testing.assert_array_equal(states, want_s)
    p = rng.random(shape).astype(dtype)
    out = run(harness, tmp_path, "bernoulli", dtype, rows, cols, 3, 9, [p, bias], extra=(0, 0, 0))
    np.testing.assert_array_equal(out[rows * cols:].reshape(shape),
                                  sample_bernoulli(p, from_logits=False, generator=fastgen.Generator(3, 9)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_matches_the_cpu_bitwise(harness, tmp_path, dtype):
    rng = np.random.default_rng(5)
    rows, cols = 9, 13
    mean = rng.standard_normal((rows, cols)).astype(dtype)
    bias = rng.standard_normal(cols).astype(dtype)
    std = rng.random(cols).astype(dtype) * 2
    out = run(harness, tmp_path, "gaussian", dtype, rows, cols, 4, 2, [mean, bias, std], extra=(1, 1, 0))
    np.testing.assert_array_equal(out.reshape(rows, cols),
                                  sample_gaussian(mean, std, bias=bias, generator=fastgen.Generator(4, 2)))
    out = run(harness, tmp_path, "gaussian", dtype, rows, cols, 4, 2, [mean, bias, std], extra=(0, 0, 0.75))
    np.testing.assert_array_equal(out.reshape(rows, cols),
                                  sample_gaussian(mean, 0.75, generator=fastgen.Generator(4, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_gibbs_chain_equals_the_cpu_chain_when_dot_products_are_exact(harness, tmp_path, dtype):
    # Weights and biases are multiples of 1/8 with small numerators and the states are 0/1, so
    # every dot product is exact in any summation order: the fused kernel's sequential sums, the
    # CPU's BLAS and binary products all give the same logits, and the whole chain must agree
    # bitwise over many steps (a wrong counter or index flips states at once).
    rng = np.random.default_rng(8)
    rows, nv, nh, steps = 6, 21, 11, 12
    W = (rng.integers(-12, 13, (nh, nv)) / 8).astype(dtype)
    b_vis = (rng.integers(-8, 9, nv) / 8).astype(dtype)
    b_hid = (rng.integers(-8, 9, nh) / 8).astype(dtype)
    v0 = (rng.random((rows, nv)) < 0.5).astype(dtype)
    got = run(harness, tmp_path, "gibbs_fused", dtype, rows, nv, 21, 40, [W, b_vis, b_hid, v0], extra=(nh, steps))
    want = gibbs(v0, W, b_vis, b_hid, steps, generator=fastgen.Generator(21, 40))
    np.testing.assert_array_equal(got.reshape(rows, nv), want)
    assert 0.1 < want.mean() < 0.9  # the chain moved: not a trivial all-0 / all-1 agreement
