"""fastgen.ops.sample_categorical and torch.ops.fastgen.sample_categorical: the Gumbel-max
draw against a NumPy reference on the same Philox uniforms, its distribution, top-k,
temperature, thread-count independence, input errors, opcheck and torch.compile.

On a GPU (``gpu`` marker: skipped without CuPy and a CUDA device), the draws for CuPy arrays and
torch CUDA tensors are bitwise the CPU's for the same (seed, offset): float32 and float64, with
and without top_k, short rows (the SMILES case: many rows of a few dozen columns, more rows than
the grid has warps), odd widths, long rows, ties at the k-th value, strided rows; the result is an
int64 array of the caller's framework on its device; one offset per call; the torch op passes
opcheck, compiles with fullgraph and runs on the caller's stream; bad input on GPU arrays gets the
CPU's errors."""
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import fastgen
from reference.categorical import sample_categorical as reference_categorical
from cuda_helpers import array_module, cuda_module_or_skip, torch_cuda_or_skip, torch_on
from fastgen._native import cpu as _cpu
from fastgen.ops import sample_categorical

DTYPES = [np.float32, np.float64]
# Rows whose two best reference keys are closer than this (relative to the keys' size) may
# legitimately differ between the kernel (float32 / its own log) and the float64 reference.
KEY_MARGIN = {np.float32: 1e-4, np.float64: 1e-10}


def random_logits(shape, dtype, seed=0, scale=2.0):
    return np.random.default_rng(seed).normal(0, scale, shape).astype(dtype)


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


# ---- against the reference ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(37, 50), (3, 1), (2, 3000), (64,)])
@pytest.mark.parametrize("top_k", [None, 1, 7])
@pytest.mark.parametrize("temperature", [1.0, 0.35])
def test_matches_reference(dtype, shape, top_k, temperature):
    x = random_logits(shape, dtype)
    k = None if top_k is None else min(top_k, shape[-1])
    gen = fastgen.Generator(11, 5)
    got = sample_categorical(x, temperature=temperature, top_k=k, generator=gen)
    assert gen.offset == 6  # one offset per call
    assert got.dtype == np.int64 and got.shape == shape[:-1]
    want, margin = reference_categorical(x, temperature, k, 11, 5)
    decided = margin >= KEY_MARGIN[dtype]
    assert decided.mean() > 0.9
    np.testing.assert_array_equal(got[decided], want[decided])


def test_ties_at_the_kth_value_go_to_lower_columns():
    x = np.array([[1.0, 3.0, 3.0, 3.0, 0.0]] * 2000)
    got = sample_categorical(x, top_k=2, generator=3)
    assert set(np.unique(got)) == {1, 2}
    want, _ = reference_categorical(x, 1.0, 2, 3, 0)
    np.testing.assert_array_equal(got, want)


def test_top_k_equal_to_vocabulary_is_no_truncation():
    x = random_logits((100, 20), np.float64)
    a = sample_categorical(x, top_k=20, generator=fastgen.Generator(4))
    b = sample_categorical(x, generator=fastgen.Generator(4))
    np.testing.assert_array_equal(a, b)


def test_same_state_same_draws_and_offsets_differ():
    x = random_logits((500, 30), np.float32)
    a = sample_categorical(x, generator=fastgen.Generator(1, 9))
    b = sample_categorical(x, generator=fastgen.Generator(1, 9))
    c = sample_categorical(x, generator=fastgen.Generator(1, 10))
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.5


# ---- distribution ----------------------------------------------------------------------------
# The streams are seeded, so each statistic below is a fixed number: the bounds (chi-square
# quantile 1 - 1e-6) cannot flake, and the same counts are shown to reject a wrong formula.
N_DRAWS = 200_000
CHI2_Q = 1 - 1e-6


def chi2_stat(counts, probs):
    expected = counts.sum() * probs
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [1.0, 0.6, 2.5])
def test_frequencies_follow_softmax(dtype, temperature):
    logits = np.array([0.3, -1.2, 2.0, 0.0, 1.1, -0.4, 0.8, -2.5], dtype=dtype)
    draws = sample_categorical(np.tile(logits, (N_DRAWS, 1)), temperature=temperature, generator=fastgen.Generator(7))
    counts = np.bincount(draws, minlength=logits.size).astype(np.float64)
    p = softmax(logits.astype(np.float64) / temperature)
    assert chi2_stat(counts, p) < stats.chi2.ppf(CHI2_Q, df=logits.size - 1)
    wrong = softmax(logits.astype(np.float64) / (temperature * 1.15))  # a slightly wrong temperature
    assert chi2_stat(counts, wrong) > stats.chi2.ppf(CHI2_Q, df=logits.size - 1)


@pytest.mark.parametrize("top_k", [1, 3, 5])
def test_top_k_frequencies_and_support(top_k):
    logits = np.array([0.3, -1.2, 2.0, 0.0, 1.1, -0.4, 0.8, -2.5])
    draws = sample_categorical(np.tile(logits, (N_DRAWS, 1)), temperature=0.8, top_k=top_k,
                               generator=fastgen.Generator(8))
    top = np.argsort(-logits)[:top_k]
    assert set(np.unique(draws)) <= set(top.tolist())  # never outside the top k
    counts = np.bincount(draws, minlength=logits.size)[top].astype(np.float64)
    if top_k > 1:
        p = softmax(logits[top] / 0.8)
        assert chi2_stat(counts, p) < stats.chi2.ppf(CHI2_Q, df=top_k - 1)


def test_top_k_never_outside_on_random_rows():
    x = random_logits((3000, 40), np.float32, seed=2)
    draws = sample_categorical(x, top_k=4, generator=5)
    ranks = (x > x[np.arange(len(x)), draws][:, None]).sum(axis=1)
    assert ranks.max() < 4


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_temperature_is_argmax(dtype):
    x = random_logits((2000, 25), dtype, seed=3)
    top2 = np.sort(x.astype(np.float64), axis=1)[:, -2:]
    for t in (1e-3, 1e-6, 1e-30):
        # |T log E| <= 23 T for every Philox uniform, so rows whose best logit leads by more
        # than 50 T must return their argmax; with t = 1e-30 that is every row
        clear = top2[:, 1] - top2[:, 0] > 50 * t
        assert clear.mean() > 0.9
        got = sample_categorical(x, temperature=t, generator=1)
        np.testing.assert_array_equal(got[clear], x.argmax(axis=1)[clear])


# ---- threads ---------------------------------------------------------------------------------
_THREAD_SCRIPT = """
import sys, numpy as np, fastgen
from fastgen.ops import sample_categorical
x = np.random.default_rng(0).normal(0, 2, (3000, 97))
out = [sample_categorical(x.astype(dt), temperature=0.9, top_k=k, generator=fastgen.Generator(5, 2))
       for dt in (np.float32, np.float64) for k in (None, 10)]
np.save(sys.argv[1], np.stack(out))
"""


def test_independent_of_thread_count(tmp_path):
    results = []
    for threads in ("1", "2"):
        path = tmp_path / f"t{threads}.npy"
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        subprocess.run([sys.executable, "-c", _THREAD_SCRIPT, str(path)], check=True, env=env, timeout=120)
        results.append(np.load(path))
    np.testing.assert_array_equal(results[0], results[1])


# ---- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=0.0), "temperature"),
    (dict(temperature=-1.0), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(top_k=0), "top_k"),
    (dict(top_k=6), "top_k"),
    (dict(top_k=2.5), "top_k"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_categorical(np.zeros((3, 5)), **kwargs)


def test_temperature_that_overflows_float32_is_refused_for_float32_logits():
    x = random_logits((4, 6), np.float32)
    with pytest.raises(ValueError, match="temperature must be finite in the logits' dtype float32"):
        sample_categorical(x, temperature=1e300)
    # the same temperature is finite in float64: allowed there (every key is then about -T log E)
    assert sample_categorical(x.astype(np.float64), temperature=1e300, generator=1).shape == (4,)
    torch = pytest.importorskip("torch")
    import fastgen.torch  # noqa: F401

    with pytest.raises(ValueError, match="float32"):
        torch.ops.fastgen.sample_categorical(torch.from_numpy(x), 1e300, None, 0, 0)


@pytest.mark.parametrize("bad", [np.zeros((2, 3, 4)), np.float64(1.0), np.zeros((3, 0))])
def test_bad_shapes(bad):
    with pytest.raises(ValueError, match="logits"):
        sample_categorical(bad)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_logits(value):
    x = np.zeros((3, 5))
    x[1, 2] = value
    with pytest.raises(ValueError, match="logits"):
        sample_categorical(x)


# ---- torch ------------------------------------------------------------------------------------
def test_torch_op_matches_numpy_and_checks():
    torch = pytest.importorskip("torch")
    import fastgen.torch as ft

    x = random_logits((40, 12), np.float32)
    got = ft.sample_categorical(torch.from_numpy(x), 0.7, 5, generator=fastgen.Generator(2, 3))
    want = sample_categorical(x, temperature=0.7, top_k=5, generator=fastgen.Generator(2, 3))
    assert got.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), want)
    # seeds >= 2**63 travel as negative int64
    big = 2**64 - 5
    got = ft.sample_categorical(torch.from_numpy(x), generator=fastgen.Generator(big))
    np.testing.assert_array_equal(got.numpy(), sample_categorical(x, generator=fastgen.Generator(big)))
    # logits that require grad: fine, the indices carry no gradient
    t = torch.from_numpy(x).requires_grad_()
    assert not torch.ops.fastgen.sample_categorical(t, 1.0, None, 0, 0).requires_grad
    for args, match in [((1.0, 0), "top_k"), ((1.0, 13), "top_k"), ((0.0, None), "temperature")]:
        with pytest.raises(ValueError, match=match):
            torch.ops.fastgen.sample_categorical(torch.from_numpy(x), *args, 0, 0)
    with pytest.raises(ValueError, match="logits"):
        torch.ops.fastgen.sample_categorical(torch.zeros(2, 3, 4), 1.0, None, 0, 0)
    with pytest.raises(ValueError, match="logits"):
        torch.ops.fastgen.sample_categorical(torch.tensor([[0.0, float("nan")]]), 1.0, None, 0, 0)


def test_torch_opcheck():
    torch = pytest.importorskip("torch")
    import fastgen.torch  # noqa: F401

    for x, k in [(torch.randn(8, 13), 4), (torch.randn(5, dtype=torch.float64), None), (torch.randn(3, 1), 1)]:
        torch.library.opcheck(torch.ops.fastgen.sample_categorical.default, (x, 0.9, k, 123, 4))


@pytest.mark.slow
def test_torch_compile_fullgraph():
    torch = pytest.importorskip("torch")
    import fastgen.torch  # noqa: F401

    def step(h, w, seed, offset):
        logits = torch.tanh(h @ w)
        return torch.ops.fastgen.sample_categorical(logits, 0.8, 3, seed, offset) + 1

    h, w = torch.randn(6, 5), torch.randn(5, 9)
    compiled = torch.compile(step, fullgraph=True, backend="inductor")
    np.testing.assert_array_equal(compiled(h, w, 7, 1).numpy(), step(h, w, 7, 1).numpy())


# ==== on a GPU (CuPy arrays and torch CUDA tensors: bitwise the CPU's draws) =====================
def gpu_and_cpu_draws(cp, x, **kwargs):
    """(GPU draws as NumPy, CPU draws) for the same generator state."""
    seed, offset = 2**63 + 21, 2**34 + 3
    got = sample_categorical(cp.asarray(x), generator=fastgen.Generator(seed, offset), **kwargs)
    assert isinstance(got, cp.ndarray) and got.dtype == np.int64 and got.shape == x.shape[:-1]
    want = sample_categorical(x, generator=fastgen.Generator(seed, offset), **kwargs)
    return got.get(), want


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(10_000, 30), (50, 1), (300, 27), (40, 129), (3, 4096 + 32), (1, 50_000),
                                   (27,), (0, 7)], ids=str)
def test_cupy_draws_are_the_cpus(cp, dtype, shape):
    cuda_module_or_skip("cuda_categorical")
    x = np.random.default_rng(shape[-1]).normal(0, 2, shape).astype(dtype)
    m = shape[-1]
    for top_k in sorted({None, 1, min(5, m), max(1, m - 1), m}, key=lambda k: -1 if k is None else k):
        for temperature in (1.0, 0.6):
            got, want = gpu_and_cpu_draws(cp, x, temperature=temperature, top_k=top_k)
            np.testing.assert_array_equal(got, want)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_and_signed_zeros_are_the_cpus(cp, dtype):
    cuda_module_or_skip("cuda_categorical")
    rng = np.random.default_rng(1)
    for rows, cols in ((2000, 27), (100, 129), (4, 4128)):
        x = rng.integers(-2, 3, (rows, cols)).astype(dtype)
        for k in sorted({1, 2, 7, cols // 3, cols - 1}):
            np.testing.assert_array_equal(*gpu_and_cpu_draws(cp, x, top_k=k))
    x = rng.choice(np.array([-0.0, 0.0, 1.0], dtype), size=(500, 27))
    for k in (1, 4, 13):
        np.testing.assert_array_equal(*gpu_and_cpu_draws(cp, x, top_k=k))
    x = np.tile(np.array([1.0, 3.0, 3.0, 3.0, 0.0], dtype), (3000, 1))
    got, want = gpu_and_cpu_draws(cp, x, top_k=2)
    np.testing.assert_array_equal(got, want)
    assert set(np.unique(got)) == {1, 2}


@pytest.mark.gpu
def test_strided_rows_through_the_launcher(cp):
    v = cuda_module_or_skip("cuda_categorical")
    rng = np.random.default_rng(2)
    padded = cp.asarray(rng.normal(0, 2, (500, 48)))
    view = padded[:, :29]  # row stride 48: the kernel reads it in place
    for k in (0, 5):
        out = cp.empty(500, cp.int64)
        v.sample_categorical(view, out, temperature=0.9, top_k=k, seed=4, offset=6)
        want = np.empty(500, np.int64)
        _cpu.C.sample_categorical(np.ascontiguousarray(view.get()), want, 0.9, k, 4, 6)
        np.testing.assert_array_equal(out.get(), want)


@pytest.mark.gpu
def test_non_contiguous_and_integer_cupy_input_is_converted_like_on_the_cpu(cp):
    cuda_module_or_skip("cuda_categorical")
    x = np.random.default_rng(3).normal(0, 2, (30, 200))
    np.testing.assert_array_equal(*gpu_and_cpu_draws(cp, x[:, ::3]))  # copied to C order
    ints = np.random.default_rng(3).integers(-3, 4, (100, 17))
    np.testing.assert_array_equal(*gpu_and_cpu_draws(cp, ints, top_k=3))  # converted to float64


def test_one_offset_per_call_and_repeatable(device):
    xp = array_module(device)
    x = xp.asarray(np.random.default_rng(4).normal(0, 1, (1000, 30)).astype(np.float32))
    gen = fastgen.Generator(9, 1)
    a = sample_categorical(x, generator=gen)
    assert gen.offset == 2
    b = sample_categorical(x, generator=fastgen.Generator(9, 1))
    c = sample_categorical(x, generator=fastgen.Generator(9, 2))
    assert bool((a == b).all()) and float((a != c).mean()) > 0.5


def test_bad_input_gets_the_same_errors_on_each_device(device):
    xp = array_module(device)
    x = xp.zeros((3, 5))
    with pytest.raises(ValueError, match="logits contains NaN or infinity"):
        sample_categorical(xp.asarray([[0.0, xp.nan, 1.0]]))
    with pytest.raises(ValueError, match="logits contains NaN or infinity"):
        sample_categorical(xp.asarray([[0.0, -xp.inf, 1.0]]))
    for kwargs, match in [(dict(temperature=0.0), "temperature"), (dict(temperature=float("inf")), "temperature"),
                          (dict(top_k=0), "top_k"), (dict(top_k=6), "top_k"), (dict(top_k=2.5), "top_k")]:
        with pytest.raises(ValueError, match=match):
            sample_categorical(x, **kwargs)
    for bad in (xp.zeros((2, 3, 4)), xp.zeros((3, 0))):
        with pytest.raises(ValueError, match="logits"):
            sample_categorical(bad)
    with pytest.raises(TypeError, match="logits must be a real numeric array"):
        sample_categorical(xp.zeros((2, 3), xp.complex64))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_cuda_tensors_draw_the_cpus_values(dtype):
    torch = torch_cuda_or_skip()
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


@pytest.mark.gpu
def test_torch_cuda_opcheck_and_compile():
    torch = torch_cuda_or_skip()
    import fastgen.torch  # noqa: F401

    for x, k in [(torch.randn(8, 13, device="cuda"), 4), (torch.randn(5, dtype=torch.float64, device="cuda"), None),
                 (torch.randn(3, 1, device="cuda"), 1)]:
        torch.library.opcheck(torch.ops.fastgen.sample_categorical.default, (x, 0.9, k, 123, 4))

    def step(h, w, seed, offset):
        return torch.ops.fastgen.sample_categorical(torch.tanh(h @ w), 0.8, 3, seed, offset) + 1

    h, w = torch.randn(6, 5, device="cuda"), torch.randn(5, 9, device="cuda")
    compiled = torch.compile(step, fullgraph=True)
    assert torch.equal(compiled(h, w, 7, 1), step(h, w, 7, 1))


@pytest.mark.gpu
def test_torch_cuda_op_runs_on_the_callers_stream():
    torch = torch_cuda_or_skip()
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


def test_torch_bad_input_on_each_device(device):
    torch = torch_on(device)
    import fastgen.torch  # noqa: F401  (registers torch.ops.fastgen)

    op = torch.ops.fastgen.sample_categorical
    x = torch.zeros(3, 5, device=device)
    with pytest.raises(ValueError, match="logits contains NaN or infinity"):
        op(torch.tensor([[0.0, float("nan")]], device=device), 1.0, None, 0, 0)
    for args, match in [((1.0, 0), "top_k"), ((1.0, 6), "top_k"), ((0.0, None), "temperature")]:
        with pytest.raises(ValueError, match=match):
            op(x, *args, 0, 0)
    with pytest.raises(ValueError, match="logits"):
        op(torch.zeros(2, 3, 4, device=device), 1.0, None, 0, 0)
    with pytest.raises(TypeError, match="logits must be float32 or float64"):
        op(torch.zeros(2, 3, dtype=torch.int32, device=device), 1.0, None, 0, 0)
