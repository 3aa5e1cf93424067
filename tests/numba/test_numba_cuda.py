"""fastgen.numba inside numba.cuda kernels. Without a GPU: kernels/numba.cu builds to PTX that
defines every device function, and a kernel calling fastgen.numba's functions types and compiles
to PTX that calls them. With a GPU: the kernel's draws equal the CPU's bitwise."""
from __future__ import annotations

import re
import shutil
import types

import numpy as np
import pytest

numba = pytest.importorskip("numba")
from numba import cuda  # noqa: E402

import fastgen  # noqa: E402
import fastgen.numba as fn  # noqa: E402
import fastgen.numba.cuda as fnc  # noqa: E402
from numba.core.errors import TypingError  # noqa: E402

NVCC = shutil.which("nvcc")


def every_function(u64, u32, n64, states, gauss, formulas, words, cats, logits, seed, offset):
    i = cuda.grid(1)
    if i < u64.size:
        u64[i] = fn.uniform(seed, offset, i, np.float64)
        u32[i] = fn.uniform(seed, offset, i, np.float32)
        n64[i] = fn.normal(seed, offset, i, np.float64)
        words[i] = fn.bits(seed, offset, i)
        x = u64[i] * 8.0 - 4.0
        states[i, 0] = fn.bernoulli_logit(x, seed, offset, i)
        states[i, 1] = fn.bernoulli(fn.sigmoid(x), seed, offset, i)
        gauss[i] = fn.gaussian(x, 0.5, seed, offset, i)
        formulas[i, 0] = fn.softplus(x)
        formulas[i, 1] = fn.log_sigmoid(x)
        formulas[i, 2] = fn.log_add_exp(x, 1.0)
    if i < cats.size:
        cats[i] = fn.categorical(logits[i], 0.7, seed, offset, i)


SIGNATURE = ("void(float64[::1], float32[::1], float64[::1], float64[:, ::1], float64[::1], float64[:, ::1], "
             "uint32[::1], int64[::1], float32[:, ::1], uint64, uint64)")


@pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH")
def test_ptx_defines_every_device_function(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTGEN_CACHE_DIR", str(tmp_path))
    path = fnc.ptx_file((8, 0))
    text = open(path).read()
    for name, sig in fnc.DEVICE_SIGNATURES.items():
        match = re.search(rf"\.visible \.func\s+\(\.param \.b32 func_retval0\) {name}\((.*?)\)", text, re.S)
        assert match, name
        # numba's convention: the result pointer, then the arguments
        assert match.group(1).count(".param") == 1 + len(sig.args), name
    assert fnc.ptx_file((8, 0)) == path  # cached: built once per source digest and architecture


def test_kernel_compiles_to_ptx_calling_the_device_functions(monkeypatch):
    # Device functions are compiled for the current device's architecture; without a GPU, name one.
    import numba.cuda.dispatcher as dispatcher

    monkeypatch.setattr(dispatcher, "get_current_device", lambda: types.SimpleNamespace(compute_capability=(9, 0)))
    ptx, _ = cuda.compile_ptx(every_function, SIGNATURE, cc=(9, 0))
    called = {m for m in re.findall(r"\.extern \.func\s+\(\.param \.b32 func_retval0\) (\w+)", ptx)}
    assert called == {"fastgen_cuda_uniform_float64", "fastgen_cuda_uniform_float32", "fastgen_cuda_normal_float64",
                      "fastgen_cuda_bits", "fastgen_cuda_bernoulli_logit_float64", "fastgen_cuda_bernoulli_float64",
                      "fastgen_cuda_sigmoid_float64", "fastgen_cuda_gaussian_float64",
                      "fastgen_cuda_softplus_float64", "fastgen_cuda_log_sigmoid_float64",
                      "fastgen_cuda_log_add_exp_float64", "fastgen_cuda_categorical_float32"}


def test_a_kernel_must_name_the_dtype(monkeypatch):
    import numba.cuda.dispatcher as dispatcher

    monkeypatch.setattr(dispatcher, "get_current_device", lambda: types.SimpleNamespace(compute_capability=(9, 0)))

    def omitted(out, seed):
        out[0] = fn.uniform(seed, 0, 0)

    with pytest.raises(TypingError, match="pass the dtype"):
        cuda.compile_ptx(omitted, "void(float64[::1], uint64)", cc=(9, 0))


@pytest.mark.gpu
@pytest.mark.skipif("not cuda.is_available()", reason="needs a CUDA device")
def test_kernel_draws_equal_the_cpu_draws():
    n, seed, offset = 4096 + 32, 2**64 - 5, 17
    u64, u32, n64, gauss = (np.zeros(n), np.zeros(n, np.float32), np.zeros(n), np.zeros(n))
    states, formulas = np.zeros((n, 2)), np.zeros((n, 3))
    words = np.zeros(n, np.uint32)
    logits = np.random.default_rng(0).normal(size=(129, 11)).astype(np.float32)
    cats = np.zeros(129, np.int64)
    kernel = fnc.jit(every_function)
    outs = [cuda.to_device(a) for a in (u64, u32, n64, states, gauss, formulas, words, cats)]
    kernel[(n + 127) // 128, 128](*outs[:7], outs[7], cuda.to_device(logits), np.uint64(seed), np.uint64(offset))
    u64, u32, n64, states, gauss, formulas, words, cats = (o.copy_to_host() for o in outs)
    gen = lambda: fastgen.Generator(seed, offset)  # noqa: E731
    np.testing.assert_array_equal(u64, gen().uniform(n))
    np.testing.assert_array_equal(u32, gen().uniform(n, np.float32))
    np.testing.assert_array_equal(n64, gen().normal(n))
    np.testing.assert_array_equal(words, gen().bits(n))
    x = u64 * 8.0 - 4.0
    np.testing.assert_array_equal(states[:, 0], fastgen.ops.sample_bernoulli(x, generator=gen()))
    np.testing.assert_array_equal(gauss, fastgen.ops.sample_gaussian(x, 0.5, generator=gen()))
    for i in (0, 1, 5, n - 1):
        assert states[i, 1] == fn.bernoulli(fn.sigmoid(x[i]), seed, offset, i)
        assert tuple(formulas[i]) == (fn.softplus(x[i]), fn.log_sigmoid(x[i]), fn.log_add_exp(x[i], 1.0))
    np.testing.assert_array_equal(cats, fastgen.ops.sample_categorical(logits, temperature=0.7, generator=gen()))
