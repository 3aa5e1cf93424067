"""fastgen.ops.sampling: sample_bernoulli and sample_gaussian against the NumPy reference
built from the same Philox words.

On a GPU (``gpu`` marker): CuPy input gives the CPU's probabilities and states bitwise, and
states from logits computed differently differ only at near-ties."""
import numpy as np
import pytest

import fastgen
import reference as ref
from fastgen.ops import sample_bernoulli, sample_gaussian

DTYPES = [np.float32, np.float64]
# |kernel - reference| for probabilities sigmoid(x + b) (one float32 rounding of x + b is
# reproduced by the reference; what is left is the kernel's own sigmoid, a few ulp).
PROB_ATOL = {np.float32: 3e-7, np.float64: 1e-15}
PROB_RTOL = {np.float32: 1e-6, np.float64: 1e-14}
# States must equal the reference except where |p - u| is below this.
STATE_MARGIN = {np.float32: 1e-6, np.float64: 1e-12}
# Gaussian draws, relative to |mean| + |bias| + std * radius.
GAUSS_RTOL = {np.float32: 1e-6, np.float64: 1e-13}
SIZES = [1, 129, 4096 + 32]


def logits(shape, dtype, seed=0, scale=3.0):
    return np.random.default_rng(seed).normal(0, scale, shape).astype(dtype)


def assert_states_match(states, draw: ref.BernoulliDraw, dtype):
    decided = draw.margin >= STATE_MARGIN[dtype]
    assert decided.mean() > 0.99  # the comparison is not vacuous
    np.testing.assert_array_equal(states[decided], draw.states[decided].astype(dtype))
    assert set(np.unique(states)) <= {0.0, 1.0}


# ---- sample_bernoulli --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", SIZES)
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
def test_bernoulli_both_matches_reference(dtype, m, with_bias):
    x = logits((3, m), dtype)
    bias = logits(m, dtype, seed=1, scale=1.0) if with_bias else None
    gen = fastgen.Generator(9, 4)
    probs, states = sample_bernoulli(x, bias, output="both", generator=gen)
    assert gen.offset == 5
    assert probs.dtype == states.dtype == dtype and probs.shape == states.shape == x.shape
    draw = ref.sample_bernoulli(x, bias, generator=fastgen.Generator(9, 4))
    np.testing.assert_allclose(probs, draw.probs, rtol=PROB_RTOL[dtype], atol=PROB_ATOL[dtype])
    assert_states_match(states, draw, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
def test_bernoulli_states_only_equals_the_states_of_both(dtype, with_bias):
    x = logits((5, 300), dtype)
    bias = logits(300, dtype, seed=2) if with_bias else None
    states = sample_bernoulli(x, bias, generator=fastgen.Generator(3))
    _, both_states = sample_bernoulli(x, bias, output="both", generator=fastgen.Generator(3))
    np.testing.assert_array_equal(states, both_states)
    assert_states_match(states, ref.sample_bernoulli(x, bias, generator=3), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
def test_bernoulli_probs_only_draws_nothing(dtype, with_bias):
    x = logits((4, 129), dtype)
    bias = logits(129, dtype, seed=3) if with_bias else None
    gen = fastgen.Generator(1, 10)
    probs = sample_bernoulli(x, bias, output="probs", generator=gen)
    assert gen.offset == 10  # no offset taken
    expected = ref.sigmoid(x.astype(np.float64) if bias is None else (x + bias).astype(np.float64))
    np.testing.assert_allclose(probs, expected, rtol=PROB_RTOL[dtype], atol=PROB_ATOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
def test_bernoulli_states_near_the_boundary_follow_the_exact_sigmoid(dtype, with_bias):
    # The states-only kernel may decide u < sigmoid(x) from an estimate of the sigmoid, good to
    # about 1e-4, and must fall back to the exact one closer than its margin (2^-12). Logits
    # put every p within 2e-6 to 2e-4 of its uniform: an estimate trusted there gets about a
    # quarter of these states wrong.
    shape = (7, 333)
    u = ref.uniform(21, 3, shape, dtype).astype(np.float64)
    rng = np.random.default_rng(4)
    p = u + rng.choice([-1.0, 1.0], shape) * rng.uniform(2e-6, 2e-4, shape)
    p = np.where((p > 0) & (p < 1), p, 0.5)
    bias = logits(shape[1], dtype, seed=6, scale=1.0) if with_bias else None
    x = (np.log(p / (1 - p)) - (bias.astype(np.float64) if with_bias else 0.0)).astype(dtype)
    states = sample_bernoulli(x, bias, generator=fastgen.Generator(21, 3))
    draw = ref.sample_bernoulli(x, bias, generator=fastgen.Generator(21, 3))
    assert np.median(draw.margin) < 2e-4  # the logits did land near the boundary
    assert_states_match(states, draw, dtype)
    _, exact_states = sample_bernoulli(x, bias, output="both", generator=fastgen.Generator(21, 3))
    np.testing.assert_array_equal(states, exact_states)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_extreme_logits_saturate(dtype):
    x = np.array([[-1e30, -1000.0, -90.0, -20.0, 0.0, 20.0, 90.0, 1000.0, 1e30]], dtype)
    probs = sample_bernoulli(x, output="probs")
    assert np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all()
    assert np.all(np.diff(probs[0]) >= 0)
    assert probs[0, 4] == 0.5 and probs[0, -1] == 1.0 and probs[0, -2] == 1.0
    # exp is clamped to stay a normal number, so the lower limit is exp(-87) / exp(-708)
    tiny = {np.float32: 1e-37, np.float64: 1e-307}[dtype]
    np.testing.assert_allclose(probs, ref.sigmoid(x), rtol=PROB_RTOL[dtype], atol=tiny)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", SIZES)
def test_bernoulli_from_probabilities_is_u_less_than_p_exactly(dtype, m):
    p = np.random.default_rng(5).random((3, m)).astype(dtype)
    p[0, 0] = 0.0
    p[-1, -1] = 1.0
    states = sample_bernoulli(p, from_logits=False, generator=fastgen.Generator(12, 2))
    u = ref.uniform(12, 2, p.shape, dtype)
    # no rounding anywhere: p is the input and u is exact, so every state is determined
    np.testing.assert_array_equal(states, (u < p).astype(dtype))
    assert states[0, 0] == 0 and states[-1, -1] == 1


def test_bernoulli_frequencies():
    p = np.linspace(0, 1, 11)
    for dtype in DTYPES:
        s = sample_bernoulli(np.tile(p, (20000, 1)).astype(dtype), from_logits=False, generator=0)
        freq = s.mean(axis=0)
        assert freq[0] == 0 and freq[-1] == 1
        np.testing.assert_allclose(freq, p, rtol=0, atol=5 * np.sqrt(0.25 / 20000))
    # from logits: sigmoid(logit(p)) = p
    logit = np.log(p[1:-1] / (1 - p[1:-1]))
    freq = sample_bernoulli(np.tile(logit, (20000, 1)), generator=1).mean(axis=0)
    np.testing.assert_allclose(freq, p[1:-1], rtol=0, atol=5 * np.sqrt(0.25 / 20000))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_1d_input_is_one_row(dtype):
    x = logits(4096 + 32, dtype)
    bias = logits(4096 + 32, dtype, seed=4)
    probs, states = sample_bernoulli(x, bias, output="both", generator=fastgen.Generator(6))
    assert probs.shape == states.shape == x.shape
    probs2, states2 = sample_bernoulli(x[None, :], bias, output="both", generator=fastgen.Generator(6))
    np.testing.assert_array_equal(probs, probs2[0])
    np.testing.assert_array_equal(states, states2[0])
    assert_states_match(states, ref.sample_bernoulli(x, bias, generator=6), dtype)
    p = np.random.default_rng(0).random(1000).astype(dtype)
    np.testing.assert_array_equal(sample_bernoulli(p, from_logits=False, generator=2),
                                  (ref.uniform(2, 0, 1000, dtype) < p).astype(dtype))


@pytest.mark.parametrize("shape", [(0, 7), (0,), (4, 0)])
@pytest.mark.parametrize("output", ["states", "probs", "both"])
def test_bernoulli_empty_input(shape, output):
    x = np.empty(shape, np.float32)
    out = sample_bernoulli(x, np.zeros(shape[-1], np.float32), output=output, generator=0)
    for a in out if output == "both" else (out,):
        assert a.shape == shape and a.dtype == np.float32


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_non_contiguous_views(dtype):
    base = logits((64, 258), dtype)
    bias = logits(129, dtype, seed=8)
    for view in (base[:, ::2], base[::3, :129]):
        assert not view.flags.c_contiguous
        got = sample_bernoulli(view, bias, output="both", generator=fastgen.Generator(4))
        want = sample_bernoulli(np.ascontiguousarray(view), bias, output="both", generator=fastgen.Generator(4))
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert_states_match(got[1], ref.sample_bernoulli(view, bias, generator=4), dtype)
    t = base[:, :64].T  # Fortran-ordered view
    got = sample_bernoulli(t, output="both", generator=fastgen.Generator(4))
    assert got[0].shape == (64, 64)
    assert_states_match(got[1], ref.sample_bernoulli(t, generator=4), dtype)


@pytest.mark.parametrize("values", [np.arange(-6, 6).reshape(3, 4), np.arange(12).reshape(3, 4) % 2 == 0,
                                    np.arange(-6, 6, dtype=np.int8).reshape(3, 4)],
                         ids=["int64", "bool", "int8"])
def test_bernoulli_int_and_bool_inputs_are_converted_to_float64(values):
    probs, states = sample_bernoulli(values, output="both", generator=fastgen.Generator(2))
    assert probs.dtype == states.dtype == np.float64
    want = sample_bernoulli(values.astype(np.float64), output="both", generator=fastgen.Generator(2))
    np.testing.assert_array_equal(probs, want[0])
    np.testing.assert_array_equal(states, want[1])
    np.testing.assert_allclose(probs, ref.sigmoid(values.astype(float)), rtol=1e-14)
    p = sample_bernoulli(np.array([[0, 1, 1, 0]], bool), from_logits=False, generator=0)
    np.testing.assert_array_equal(p, [[0.0, 1.0, 1.0, 0.0]])


def test_bernoulli_float16_is_computed_in_float32():
    x = logits((2, 10), np.float16)
    probs = sample_bernoulli(x, output="probs")
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs, ref.sigmoid(x.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("output", ["states", "probs", "both"])
def test_bernoulli_never_modifies_inputs(output):
    x = logits((5, 33), np.float64)
    bias = logits(33, np.float64, seed=1)
    x_copy, bias_copy = x.copy(), bias.copy()
    sample_bernoulli(x, bias, output=output, generator=0)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(bias, bias_copy)
    p = np.random.default_rng(0).random((5, 33))
    p_copy = p.copy()
    sample_bernoulli(p, from_logits=False, generator=0)
    np.testing.assert_array_equal(p, p_copy)


def test_bernoulli_seed_generator_and_stream_advance():
    x = logits((4, 50), np.float64)
    a = sample_bernoulli(x, generator=7)
    np.testing.assert_array_equal(a, sample_bernoulli(x, generator=fastgen.Generator(7)))
    gen = fastgen.Generator(7)
    first, second = sample_bernoulli(x, generator=gen), sample_bernoulli(x, generator=gen)
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second) and gen.offset == 2


# ---- sample_gaussian ---------------------------------------------------------------------------
def assert_gaussian_matches(out, mean, std, bias, seed, offset, dtype):
    expected, scale = ref.sample_gaussian(mean, std, bias=bias, generator=fastgen.Generator(seed, offset), dtype=dtype)
    assert out.dtype == dtype and out.shape == np.shape(mean)
    err = np.abs(out.astype(np.float64) - expected)
    assert np.all(err <= GAUSS_RTOL[dtype] * scale), (err / scale).max()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", SIZES)
@pytest.mark.parametrize("std_kind", ["scalar", "column"])
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
def test_gaussian_matches_reference(dtype, m, std_kind, with_bias):
    rng = np.random.default_rng(m)
    mean = rng.normal(0, 2, (3, m)).astype(dtype)
    std = 0.7 if std_kind == "scalar" else rng.random(m).astype(dtype) * 2
    bias = rng.normal(0, 1, m).astype(dtype) if with_bias else None
    gen = fastgen.Generator(21, 5)
    out = sample_gaussian(mean, std, bias=bias, generator=gen)
    assert gen.offset == 6
    assert_gaussian_matches(out, mean, std, bias, 21, 5, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_std_zero_returns_mean_plus_bias(dtype):
    mean = logits((3, 17), dtype)
    bias = logits(17, dtype, seed=2)
    np.testing.assert_array_equal(sample_gaussian(mean, 0.0, bias=bias, generator=0), mean + bias)
    std = np.zeros(17, dtype)
    std[::2] = 1.0
    out = sample_gaussian(mean, std, generator=0)
    np.testing.assert_array_equal(out[:, 1::2], mean[:, 1::2])
    assert np.all(out[:, ::2] != mean[:, ::2])


def test_gaussian_statistics_per_column():
    n = 200_000
    std = np.array([0.5, 1.0, 3.0])
    mean = np.tile([1.0, -2.0, 0.0], (n, 1))
    out = sample_gaussian(mean, std, bias=np.array([0.0, 1.0, 0.0]), generator=17)
    np.testing.assert_allclose(out.mean(axis=0), [1.0, -1.0, 0.0], atol=5 * std.max() / np.sqrt(n))
    np.testing.assert_allclose(out.std(axis=0), std, rtol=5 * np.sqrt(0.5 / n))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_1d_and_odd_sizes(dtype):
    for m in (1, 3, 129):
        mean = logits(m, dtype)
        out = sample_gaussian(mean, 1.5, generator=fastgen.Generator(2))
        assert out.shape == (m,)
        assert_gaussian_matches(out, mean, 1.5, None, 2, 0, dtype)
        np.testing.assert_array_equal(out, sample_gaussian(mean[None], 1.5, generator=fastgen.Generator(2))[0])


def test_gaussian_unit_default_equals_generator_normal():
    mean = np.zeros((7, 13))
    np.testing.assert_array_equal(sample_gaussian(mean, generator=5),
                                  fastgen.Generator(5).normal(91).reshape(7, 13))


def test_gaussian_empty_noncontiguous_int_and_inputs_unchanged():
    assert sample_gaussian(np.empty((0, 4)), generator=0).shape == (0, 4)
    assert sample_gaussian(np.empty(0, np.float32), generator=0).dtype == np.float32
    base = logits((20, 40), np.float64)
    view = base[:, ::2]
    np.testing.assert_array_equal(sample_gaussian(view, 2.0, generator=1),
                                  sample_gaussian(np.ascontiguousarray(view), 2.0, generator=1))
    ints = np.arange(12).reshape(3, 4)
    out = sample_gaussian(ints, 0.5, generator=1)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, sample_gaussian(ints.astype(float), 0.5, generator=1))
    mean, std, bias = logits((3, 5), np.float64), np.ones(5), np.arange(5.0)
    copies = [a.copy() for a in (mean, std, bias)]
    sample_gaussian(mean, std, bias=bias, generator=0)
    for a, c in zip((mean, std, bias), copies):
        np.testing.assert_array_equal(a, c)


# ---- torch CPU tensors ---------------------------------------------------------------------------
def test_torch_cpu_tensors_in_and_out():
    torch = pytest.importorskip("torch")
    x = torch.randn(6, 33, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    probs, states = sample_bernoulli(x, output="both", generator=fastgen.Generator(3))
    assert isinstance(probs, torch.Tensor) and isinstance(states, torch.Tensor)
    assert probs.dtype == torch.float64 and tuple(states.shape) == (6, 33)
    want = sample_bernoulli(x.numpy(), output="both", generator=fastgen.Generator(3))
    np.testing.assert_array_equal(probs.numpy(), want[0])
    np.testing.assert_array_equal(states.numpy(), want[1])
    x_copy = x.clone()
    y = x.clone().requires_grad_(True)
    out = sample_gaussian(y[:, ::2], 1.0, generator=1)  # non-contiguous, requires_grad
    assert isinstance(out, torch.Tensor)
    np.testing.assert_array_equal(out.numpy(), sample_gaussian(x.numpy()[:, ::2], 1.0, generator=1))
    assert torch.equal(x, x_copy)
    f32 = sample_bernoulli(x.float(), output="probs")
    assert f32.dtype == torch.float32


class _DLPackOnly:
    """A producer that speaks only DLPack (no __array__), like a CPU array of another framework."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


class _FakeCudaArray:
    __cuda_array_interface__ = {"shape": (2, 3), "typestr": "<f4", "data": (0, False), "version": 3}


def test_dlpack_producers_are_accepted():
    x = logits((4, 9), np.float32)
    probs, states = sample_bernoulli(_DLPackOnly(x), output="both", generator=fastgen.Generator(1))
    want = sample_bernoulli(x, output="both", generator=fastgen.Generator(1))
    np.testing.assert_array_equal(probs, want[0])
    np.testing.assert_array_equal(states, want[1])
    np.testing.assert_array_equal(sample_gaussian(_DLPackOnly(x), generator=2), sample_gaussian(x, generator=2))


def test_cuda_arrays_are_refused_with_a_clear_message():
    with pytest.raises(TypeError, match="x lives on a CUDA device"):
        sample_bernoulli(_FakeCudaArray())
    with pytest.raises(TypeError, match="mean lives on a CUDA device"):
        sample_gaussian(_FakeCudaArray())


# ---- bad input -------------------------------------------------------------------------------------
X = np.zeros((2, 3))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: sample_bernoulli(np.array([[0.0, np.nan]])), ValueError, "x contains NaN"),
        (lambda: sample_bernoulli(np.array([[np.inf, 0.0]])), ValueError, "x contains NaN or infinity"),
        (lambda: sample_bernoulli(np.zeros((2, 2, 2))), ValueError, "x must be 1-D or 2-D"),
        (lambda: sample_bernoulli(np.float64(1.0)), ValueError, "x must be 1-D or 2-D"),
        (lambda: sample_bernoulli(X, np.zeros(2)), ValueError, r"bias must have shape \(3,\)"),
        (lambda: sample_bernoulli(X, np.zeros((1, 3))), ValueError, "bias must be 1-D"),
        (lambda: sample_bernoulli(X, np.array([0.0, np.nan, 0.0])), ValueError, "bias contains NaN"),
        (lambda: sample_bernoulli(np.array([["a", "b"]])), TypeError, "x must be a real numeric"),
        (lambda: sample_bernoulli(np.zeros((2, 2), complex)), TypeError, "x must be a real numeric"),
        (lambda: sample_bernoulli(X, np.array(["a", "b", "c"])), TypeError, "bias must be a real numeric"),
        (lambda: sample_bernoulli(X, output="nope"), ValueError, "output must be one of"),
        (lambda: sample_bernoulli(X, output="both", from_logits=False), ValueError, "output='states'"),
        (lambda: sample_bernoulli(X, np.zeros(3), from_logits=False), ValueError, "bias is only used"),
        (lambda: sample_bernoulli(np.full((1, 2), 1.5), from_logits=False), ValueError, "x must hold probabilities"),
        (lambda: sample_bernoulli(np.full((1, 2), -0.1), from_logits=False), ValueError, "x must hold probabilities"),
        (lambda: sample_bernoulli(X, generator="seed"), TypeError, "generator must be"),
        (lambda: sample_gaussian(X, -1.0), ValueError, "std must be"),
        (lambda: sample_gaussian(X, np.nan), ValueError, "std must be"),
        (lambda: sample_gaussian(X, np.inf), ValueError, "std must be"),
        (lambda: sample_gaussian(X, None), ValueError, "std must be"),
        (lambda: sample_gaussian(X, "1.0x"), ValueError, "std must be"),
        (lambda: sample_gaussian(X, True), ValueError, "std must be"),
        (lambda: sample_gaussian(X, np.array([1.0, -1.0, 1.0])), ValueError, "std must be >= 0"),
        (lambda: sample_gaussian(X, np.ones(2)), ValueError, r"std must have shape \(3,\)"),
        (lambda: sample_gaussian(X, np.array([1.0, np.nan, 1.0])), ValueError, "std contains NaN"),
        (lambda: sample_gaussian(X, bias=np.ones(4)), ValueError, r"bias must have shape \(3,\)"),
        (lambda: sample_gaussian(np.array([[np.nan]])), ValueError, "mean contains NaN"),
        (lambda: sample_gaussian(np.zeros((1, 1, 1))), ValueError, "mean must be 1-D or 2-D"),
        (lambda: sample_gaussian(np.array(["a"])), TypeError, "mean must be a real numeric"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ==== on a GPU (CuPy arrays: the CPU's results where the arithmetic is exact) =====================


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bernoulli_and_gaussian_on_gpu_equal_the_cpu(cp, dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((257, 131)) * 4).astype(dtype)
    bias = rng.standard_normal(131).astype(dtype)
    want_p, want_s = sample_bernoulli(x, bias, output="both", generator=fastgen.Generator(3, 7))
    got_p, got_s = sample_bernoulli(cp.asarray(x), cp.asarray(bias), output="both", generator=fastgen.Generator(3, 7))
    assert isinstance(got_p, cp.ndarray) and got_p.dtype == dtype
    # same formula (shared header, --fmad=false, IEEE division) and same uniforms: the
    # probabilities are bitwise equal, hence the states too
    np.testing.assert_array_equal(got_p.get(), want_p)
    np.testing.assert_array_equal(got_s.get(), want_s)
    p = rng.random((33, 65)).astype(dtype)
    np.testing.assert_array_equal(
        sample_bernoulli(cp.asarray(p), from_logits=False, generator=5).get(),
        sample_bernoulli(p, from_logits=False, generator=5))
    std = (rng.random(131) * 2).astype(dtype)
    np.testing.assert_array_equal(
        sample_gaussian(cp.asarray(x), cp.asarray(std), bias=cp.asarray(bias), generator=9).get(),
        sample_gaussian(x, std, bias=bias, generator=9))
    np.testing.assert_array_equal(sample_gaussian(cp.asarray(x), 0.5, generator=9).get(),
                                  sample_gaussian(x, 0.5, generator=9))


@pytest.mark.gpu
def test_samples_agree_except_near_ties_when_logits_are_computed_differently(cp):
    # Logits from a GEMM (cuBLAS vs OpenBLAS round differently): the states may differ only
    # where the probability lies within a few ulp of the element's uniform.
    rng = np.random.default_rng(2)
    v = (rng.random((512, 784)) < 0.3).astype(np.float32)
    W = (rng.standard_normal((500, 784)) * 0.05).astype(np.float32)
    cpu_logits = v @ W.T
    gpu_logits = cp.asarray(v) @ cp.asarray(W).T
    cpu_p, cpu_s = sample_bernoulli(cpu_logits, output="both", generator=11)
    gpu_p, gpu_s = sample_bernoulli(gpu_logits, output="both", generator=11)
    u = fastgen.Generator(11).uniform(cpu_logits.size, np.float32).reshape(cpu_logits.shape)
    differ = cpu_s != gpu_s.get()
    assert np.all(np.abs(cpu_p[differ] - u[differ]) <= 1e-5), "a state differs away from a near-tie"
    assert differ.mean() < 1e-3
