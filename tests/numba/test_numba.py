"""fastgen.numba: the stream, formulas and samplers called from numba code draw bitwise what
fastgen.ops and fastgen.Generator draw for the same (seed, offset, index), inside njit and
prange loops, on any thread count, from a cached function in a new process, and from Python."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

numba = pytest.importorskip("numba")

import fastgen  # noqa: E402
import fastgen.numba as fn  # noqa: E402
from fastgen.ops import sample_bernoulli, sample_categorical, sample_gaussian  # noqa: E402
from numba.core.errors import TypingError  # noqa: E402

SEEDS = [0, 1, 2**63 + 5, 2**64 - 1]
OFFSETS = [0, 7, 2**40 + 3]
SIZES = [1, 129, 4096 + 32]
DTYPES = [np.float32, np.float64]
# Formulas against NumPy in long double-free references: relative error allowed per dtype.
RTOL = {np.float32: 2e-6, np.float64: 1e-14}


@numba.njit(parallel=True)
def stream_arrays(seed, offset, n):
    u64, u32 = np.empty(n), np.empty(n, np.float32)
    n64, n32 = np.empty(n), np.empty(n, np.float32)
    words = np.empty(n, np.uint32)
    for i in numba.prange(n):
        u64[i] = fn.uniform(seed, offset, i)
        u32[i] = fn.uniform(seed, offset, i, np.float32)
        n64[i] = fn.normal(seed, offset, i, np.float64)
        n32[i] = fn.normal(seed, offset, i, np.float32)
        words[i] = fn.bits(seed, offset, i)
    return u64, u32, n64, n32, words


@numba.njit
def sample_arrays(x, std, seed, offset):
    rows, cols = x.shape
    from_logits, from_probs, gauss = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            from_logits[r, c] = fn.bernoulli_logit(x[r, c], seed, offset, i)
            from_probs[r, c] = fn.bernoulli(fn.sigmoid(x[r, c]), seed, offset, i)
            gauss[r, c] = fn.gaussian(x[r, c], std[c], seed, offset, i)
    return from_logits, from_probs, gauss


@numba.njit(parallel=True)
def categorical_rows(logits, temperature, seed, offset):
    out = np.empty(logits.shape[0], np.int64)
    for r in numba.prange(logits.shape[0]):
        out[r] = fn.categorical(logits[r], temperature, seed, offset, r)
    return out


@numba.njit
def formulas(x, y):
    out = np.empty((4, x.size), x.dtype)
    for i in range(x.size):
        out[0, i] = fn.sigmoid(x[i])
        out[1, i] = fn.softplus(x[i])
        out[2, i] = fn.log_sigmoid(x[i])
        out[3, i] = fn.log_add_exp(x[i], y[i])
    return out


def seed_arg(seed: int):
    return np.uint64(seed)  # numba types a Python int as int64, which cannot hold 2**63 and above


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("seed", SEEDS)
def test_stream_equals_the_generators_arrays(seed, offset, size):
    u64, u32, n64, n32, words = stream_arrays(seed_arg(seed), np.uint64(offset), size)
    gen = lambda: fastgen.Generator(seed, offset)  # noqa: E731
    np.testing.assert_array_equal(u64, gen().uniform(size))
    np.testing.assert_array_equal(u32, gen().uniform(size, np.float32))
    np.testing.assert_array_equal(n64, gen().normal(size))
    np.testing.assert_array_equal(n32, gen().normal(size, np.float32))
    np.testing.assert_array_equal(words, gen().bits(size))
    assert u32.dtype == np.float32 and n32.dtype == np.float32 and words.dtype == np.uint32


def test_prange_draws_do_not_depend_on_the_thread_count():
    before = numba.get_num_threads()
    try:
        results = []
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            results.append(stream_arrays(3, 11, 5000) + (categorical_rows(np.ones((300, 7)), 1.0, 3, 11),))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_python_calls_equal_compiled_calls(dtype):
    size = 37
    u64, u32, n64, n32, words = stream_arrays(5, 2, size)
    u, n = (u32, n32) if dtype == np.float32 else (u64, n64)
    for i in (0, 1, 2, 3, 4, 36):
        got_u, got_n = fn.uniform(5, 2, i, dtype), fn.normal(5, 2, i, dtype=dtype)
        assert got_u == u[i] and got_n == n[i]
        assert type(got_u) is dtype and type(got_n) is dtype
        assert fn.bits(5, 2, i) == words[i]
    x = np.array([-3.5, 0.25], dtype=dtype)
    compiled = formulas(x, x[::-1].copy())
    for k, f in enumerate((fn.sigmoid, fn.softplus, fn.log_sigmoid)):
        assert f(x[0]) == compiled[k, 0] and type(f(x[0])) is dtype
    assert fn.log_add_exp(x[0], x[1]) == compiled[3, 0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_formulas_match_numpy(dtype):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 8, 500), [0.0, -0.0, 1e-30, -1e-30, 40.0, -40.0, 700.0, -700.0, 1e4, -1e4]])
    x = x.astype(dtype)
    y = rng.normal(0, 8, x.size).astype(dtype)
    got = formulas(x, y)
    xl, yl = x.astype(np.float64), y.astype(np.float64)
    with np.errstate(over="ignore"):
        sigmoid = np.where(xl >= 0, 1 / (1 + np.exp(-np.abs(xl))), np.exp(-np.abs(xl)) / (1 + np.exp(-np.abs(xl))))
        softplus = np.maximum(xl, 0) + np.log1p(np.exp(-np.abs(xl)))
    references = [sigmoid, softplus, -np.logaddexp(0, -xl), np.logaddexp(xl, yl)]
    for k, ref in enumerate(references):
        # fg_exp stops at its smallest normal result instead of underflowing (math.h): hence atol
        np.testing.assert_allclose(got[k], ref.astype(dtype), rtol=4 * RTOL[dtype], atol=2 * np.finfo(dtype).tiny,
                                   err_msg=f"formula {k}")
    # the limits (1 exactly; the lower one at fg_exp's clamp, not 0), NaN stays NaN
    big = formulas(np.array([1e4, -1e4, np.nan], dtype), np.array([0.0, 0.0, 1.0], dtype))
    assert big[0, 0] == 1 and 0 < big[0, 1] <= 2 * np.finfo(dtype).tiny and np.isnan(big[:, 2]).all()
    assert got.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 129), (2, 4096 + 32), (0, 5)])
def test_samplers_equal_the_array_ops(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    x = (rng.normal(size=shape) * 3).astype(dtype)
    std = rng.uniform(0.1, 2.0, shape[1]).astype(dtype)
    seed, offset = 2**64 - 3, 41
    from_logits, from_probs, gauss = sample_arrays(x, std, seed_arg(seed), offset)
    gen = lambda: fastgen.Generator(seed, offset)  # noqa: E731
    np.testing.assert_array_equal(from_logits, sample_bernoulli(x, generator=gen()))
    probs = sample_bernoulli(x, output="probs")
    np.testing.assert_array_equal(from_probs, sample_bernoulli(probs, from_logits=False, generator=gen()))
    np.testing.assert_array_equal(gauss, sample_gaussian(x, std, generator=gen()))
    assert from_logits.dtype == dtype and gauss.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (40, 129), (3, 4096 + 32)])
@pytest.mark.parametrize("temperature", [1.0, 0.3])
def test_categorical_equals_the_array_op(shape, dtype, temperature):
    rng = np.random.default_rng(shape[1])
    logits = (rng.normal(size=shape) * 2).astype(dtype)
    expected = sample_categorical(logits, temperature=temperature, generator=fastgen.Generator(9, 4))
    np.testing.assert_array_equal(categorical_rows(logits, dtype(temperature), 9, 4), expected)
    assert fn.categorical(logits[-1], temperature, 9, 4, shape[0] - 1) == expected[-1]


def test_categorical_takes_a_strided_row():
    rng = np.random.default_rng(1)
    wide = rng.normal(size=(6, 26))
    view = wide[:, ::2]  # rows are not contiguous: numba copies each before the call
    expected = sample_categorical(np.ascontiguousarray(view), generator=fastgen.Generator(2, 0))
    np.testing.assert_array_equal(categorical_rows(view, 1.0, 2, 0), expected)
    assert fn.categorical(view[3], 1.0, 2, 0, 3) == expected[3]
    assert fn.categorical(np.empty(0), 1.0, 2, 0, 0) == -1


def test_inputs_are_not_modified():
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    before = x.copy()
    sample_arrays(x, np.ones(4), 1, 2)
    categorical_rows(x, 0.5, 1, 2)
    np.testing.assert_array_equal(x, before)


def test_python_calls_refuse_bad_arguments():
    with pytest.raises(ValueError, match="seed must be in"):
        fn.uniform(-1, 0, 0)
    with pytest.raises(ValueError, match="index must be in"):
        fn.normal(0, 0, 2**64)
    with pytest.raises(TypeError, match="offset must be an integer"):
        fn.bits(0, 1.5, 0)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        fn.uniform(0, 0, 0, np.int32)
    with pytest.raises(TypeError, match="x must be a real number"):
        fn.sigmoid(np.zeros(3))
    with pytest.raises(TypeError, match="p must be a real number"):
        fn.bernoulli("0.5", 0, 0, 0)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        fn.bernoulli(2.0, 0, 0, 0)
    with pytest.raises(ValueError, match="std must be a finite number >= 0"):
        fn.gaussian(0.0, -1.0, 0, 0, 0)
    with pytest.raises(TypeError, match="not a string"):
        fn.uniform(0, 0, 0, "float32")
    with pytest.raises(TypeError, match="logits must be a 1-D"):
        fn.categorical(np.zeros((2, 2)), 1.0, 0, 0, 0)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        fn.categorical(np.zeros(3), 0.0, 0, 0, 0)


def test_compiled_calls_refuse_bad_types_when_compiled():
    @numba.njit
    def float_seed(x):
        return fn.uniform(x, 0, 0)

    with pytest.raises(TypingError, match="seed must be an integer"):
        float_seed(1.5)

    @numba.njit
    def int_dtype():
        return fn.normal(0, 0, 0, np.int32)

    with pytest.raises(TypingError, match="dtype must be np.float32 or np.float64"):
        int_dtype()

    @numba.njit
    def matrix_logits(x):
        return fn.categorical(x, 1.0, 0, 0, 0)

    with pytest.raises(TypingError, match="logits must be a 1-D float32 or float64 array"):
        matrix_logits(np.zeros((2, 2)))


def test_take_hands_numba_a_seed_of_any_size():
    gen = fastgen.Generator(2**64 - 1, 5)
    seed, offset = fn.take(gen, 2)
    assert (seed, offset) == (2**64 - 1, 5) and type(seed) is np.uint64 and type(offset) is np.uint64
    assert gen.offset == 7
    u64, *_ = stream_arrays(seed, offset, 9)  # a Python int of this size would not fit numba's int64
    np.testing.assert_array_equal(u64, fastgen.Generator(2**64 - 1, 5).uniform(9))
    assert fn.take(3) == (3, 0)
    with pytest.raises(ValueError, match="generator"):
        fn.take(-1)
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        fn.take(gen, -1)


def test_entry_points_and_signatures_name_the_same_functions():
    assert set(fn.ENTRY_POINTS) == set(fn.SIGNATURES)
    assert all(isinstance(a, int) and a > 0 for a in fn.ENTRY_POINTS.values())


def test_cached_function_runs_in_a_new_process(tmp_path):
    # cache=True stores machine code that calls the entry points by name; a new process resolves
    # the names again when it imports fastgen.numba, so the cached code gives the same draws.
    (tmp_path / "cached_draws.py").write_text(textwrap.dedent("""
        import numba, numpy as np
        import fastgen.numba as fn

        @numba.njit(cache=True)
        def draws(n):
            out = np.empty(n)
            for i in range(n):
                out[i] = fn.gaussian(1.0, 2.0, 7, 3, i) + fn.uniform(7, 3, i)
            return out
    """))
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import cached_draws as m; "
            "print(repr(m.draws(5).tolist())); print(len(m.draws.stats.cache_hits))")
    env_runs = []
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                                env={**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")},
                                timeout=300)
        assert result.returncode == 0, result.stderr
        env_runs.append(result.stdout.split("\n"))
    assert env_runs[0][0] == env_runs[1][0]
    assert env_runs[0][1] == "0" and env_runs[1][1] == "1"  # the second process loaded the cached code
    expected = fastgen.Generator(7, 3)
    values = eval(env_runs[0][0])
    np.testing.assert_array_equal(values, 1.0 + 2.0 * fastgen.Generator(7, 3).normal(5) + expected.uniform(5))
