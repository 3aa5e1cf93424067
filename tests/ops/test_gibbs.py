"""fastgen.ops.gibbs: block Gibbs sampling against the NumPy reference built from the same
counters (step s: h with offset first + 2 s, v with first + 2 s + 1).

On a GPU (``gpu`` marker): every method's chain equals the CPU's when the products are exact,
and the graph method replays after its first call."""
import numpy as np
import pytest

import fastgen
import reference as ref
from fastgen.ops import gibbs
from cuda_helpers import dyadic_rbm

DTYPES = [np.float32, np.float64]


def rbm_params(n_visible, n_hidden, dtype=np.float64, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, scale, (n_hidden, n_visible)).astype(dtype),
            rng.normal(0, 0.5, n_visible).astype(dtype), rng.normal(0, 0.5, n_hidden).astype(dtype))


def binary(shape, seed=1, p=0.5, dtype=np.float64):
    return (np.random.default_rng(seed).random(shape) < p).astype(dtype)


def assert_matches_reference(out, expected: ref.GibbsRef, min_certain=0.9):
    certain = expected.certain_rows
    assert certain.mean() >= min_certain, certain.mean()
    np.testing.assert_array_equal(out[certain], expected.visible[certain].astype(out.dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [1, 3])
def test_gibbs_matches_reference(dtype, steps):
    W, b, c = rbm_params(129, 33, dtype)
    v0 = binary((17, 129), dtype=dtype)
    gen = fastgen.Generator(8, 10)
    out = gibbs(v0, W, b, c, steps, generator=gen)
    assert gen.offset == 10 + 2 * steps
    assert out.dtype == dtype and out.shape == v0.shape
    assert set(np.unique(out)) <= {0.0, 1.0}
    expected = ref.gibbs(v0, W, b, c, steps, generator=fastgen.Generator(8, 10))
    assert_matches_reference(out, expected)
    assert not np.array_equal(out, v0)


def test_gibbs_counter_layout_h_then_v():
    W, b, c = rbm_params(40, 24, seed=3, scale=1.0)
    v0 = binary((30, 40))
    out = gibbs(v0, W, b, c, 1, generator=fastgen.Generator(5, 100))
    # by hand: h from offset 100, v from offset 101
    ph = ref.sigmoid(v0 @ W.T + c)
    h = ref.bernoulli(ph, ref.uniform(5, 100, ph.shape))
    pv = ref.sigmoid(h @ W + b)
    v = ref.bernoulli(pv, ref.uniform(5, 101, pv.shape))
    np.testing.assert_array_equal(out, v)
    # the other order is really different
    h_swapped = ref.bernoulli(ph, ref.uniform(5, 101, ph.shape))
    v_swapped = ref.bernoulli(ref.sigmoid(h_swapped @ W + b), ref.uniform(5, 100, pv.shape))
    assert not np.array_equal(out, v_swapped)


@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_step_equals_chained_single_steps(dtype):
    W, b, c = rbm_params(65, 31, dtype, seed=2)
    v0 = binary((23, 65), dtype=dtype)
    multi = gibbs(v0, W, b, c, 4, generator=fastgen.Generator(1, 7))
    v = v0
    for s in range(4):
        v = gibbs(v, W, b, c, 1, generator=fastgen.Generator(1, 7 + 2 * s))
    # The 4-step call may update v @ W^T by the changed units where single steps sum it afresh:
    # the same draws, and the same states wherever no draw came within rounding of its threshold.
    certain = ref.gibbs(v0, W, b, c, 4, generator=fastgen.Generator(1, 7)).certain_rows
    assert certain.mean() >= 0.9
    assert multi[certain].tobytes() == v[certain].tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_runs_with_few_state_changes_match_reference(dtype):
    # Strong weights: from step to step ~13 % as many visible units change as are on, so the
    # loop updates v @ W^T by the changed units instead of summing it afresh, and 20 steps pass
    # through two fresh sums (one after every 8 updates).
    W, b, c = rbm_params(129, 65, dtype, seed=5, scale=1.0)
    v0 = binary((200, 129), seed=6, dtype=dtype)
    out = gibbs(v0, W, b, c, 20, generator=fastgen.Generator(3, 0))
    expected = ref.gibbs(v0, W, b, c, 20, generator=fastgen.Generator(3, 0))
    assert_matches_reference(out, expected)
    # Chained single steps sum afresh every step: the same states wherever no draw was close.
    v = v0
    for s in range(20):
        v = gibbs(v, W, b, c, 1, generator=fastgen.Generator(3, 2 * s))
    certain = expected.certain_rows
    np.testing.assert_array_equal(out[certain], v[certain])


def test_gibbs_chains_reach_the_exact_distribution():
    # 5 visible, 3 hidden units: P(v) is enumerable; 20000 chains after 30 steps
    W, b, c = rbm_params(5, 3, seed=4, scale=1.0)
    log_p = -ref.free_energy(ref.all_states(5), W, b, c)
    p = np.exp(log_p - np.logaddexp.reduce(log_p))
    out = gibbs(np.zeros((20000, 5)), W, b, c, 30, generator=11)
    index = (out * (1 << np.arange(5))).sum(axis=1).astype(int)
    counts = np.bincount(index, minlength=32)
    from scipy import stats

    assert stats.chisquare(counts, p * counts.sum()).pvalue > 1e-4
    # a sampler that skips the bias (a plausible bug) is far off
    wrong = np.exp(-ref.free_energy(ref.all_states(5), W, 0 * b, c))
    wrong /= wrong.sum()
    assert stats.chisquare(counts, wrong * counts.sum()).pvalue < 1e-10


# ---- clamping ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_clamp_1d_mask_keeps_units_through_10_steps(dtype):
    W, b, c = rbm_params(30, 12, dtype, seed=5, scale=1.5)
    v0 = binary((50, 30), dtype=dtype)
    clamp = np.zeros(30, bool)
    clamp[[0, 3, 4, 9, 17, 29]] = True
    clamp_copy, v0_copy = clamp.copy(), v0.copy()
    out = gibbs(v0, W, b, c, 10, generator=fastgen.Generator(3), clamp=clamp)
    np.testing.assert_array_equal(out[:, clamp], v0[:, clamp])
    assert (out[:, ~clamp] != v0[:, ~clamp]).mean() > 0.2  # the others are resampled
    np.testing.assert_array_equal(clamp, clamp_copy)
    np.testing.assert_array_equal(v0, v0_copy)
    expected = ref.gibbs(v0, W, b, c, 10, generator=fastgen.Generator(3), clamp=clamp)
    assert_matches_reference(out, expected, min_certain=0.8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clamp_2d_mask_per_row(dtype):
    W, b, c = rbm_params(30, 12, dtype, seed=6, scale=1.5)
    v0 = binary((40, 30), seed=2, dtype=dtype)
    clamp = np.random.default_rng(3).random((40, 30)) < 0.3
    clamp[0] = True    # a fully clamped row stays as it is
    clamp[1] = False   # a free row is sampled as without a mask
    out = gibbs(v0, W, b, c, 10, generator=fastgen.Generator(4), clamp=clamp)
    np.testing.assert_array_equal(out[clamp], v0[clamp])
    assert (out[~clamp] != v0[~clamp]).mean() > 0.2
    free = gibbs(v0, W, b, c, 10, generator=fastgen.Generator(4))
    np.testing.assert_array_equal(out[1], free[1])
    expected = ref.gibbs(v0, W, b, c, 10, generator=fastgen.Generator(4), clamp=clamp)
    assert_matches_reference(out, expected, min_certain=0.8)


def test_clamp_all_and_none():
    W, b, c = rbm_params(20, 10, seed=7)
    v0 = np.random.default_rng(0).random((8, 20))  # clamped values need not be binary
    np.testing.assert_array_equal(gibbs(v0, W, b, c, 5, generator=1, clamp=np.ones(20, bool)), v0)
    np.testing.assert_array_equal(gibbs(v0, W, b, c, 5, generator=1, clamp=np.zeros((8, 20), bool)),
                                  gibbs(v0, W, b, c, 5, generator=1))


# ---- steps = 0, return_hidden, conversions ------------------------------------------------------
def test_steps_zero_returns_the_input():
    W, b, c = rbm_params(20, 10, seed=8)
    v0 = np.random.default_rng(0).random((6, 20))
    gen = fastgen.Generator(2)
    out = gibbs(v0, W, b, c, 0, generator=gen)
    np.testing.assert_array_equal(out, v0)
    assert out is not v0 and gen.offset == 0
    out, hidden = gibbs(v0, W, b, c, 0, generator=gen, return_hidden=True)
    np.testing.assert_allclose(hidden, ref.hidden_probs(v0, W, b, c), rtol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_return_hidden_is_p_h_given_the_final_v(dtype):
    W, b, c = rbm_params(50, 20, dtype, seed=9)
    v0 = binary((11, 50), dtype=dtype)
    out, hidden = gibbs(v0, W, b, c, 3, generator=fastgen.Generator(6), return_hidden=True)
    assert hidden.shape == (11, 20) and hidden.dtype == dtype
    np.testing.assert_array_equal(out, gibbs(v0, W, b, c, 3, generator=fastgen.Generator(6)))
    np.testing.assert_allclose(hidden, ref.hidden_probs(out, W, b, c), rtol={np.float32: 1e-5, np.float64: 1e-12}[dtype])


def test_conversions_and_non_contiguous_input():
    W, b, c = rbm_params(20, 10, np.float32, seed=10)
    v_bool = np.random.default_rng(0).random((9, 20)) < 0.5
    out = gibbs(v_bool, W, b, c, 2, generator=3)
    assert out.dtype == np.float32  # the dtype of W
    np.testing.assert_array_equal(out, gibbs(v_bool.astype(np.float32), W, b, c, 2, generator=3))
    np.testing.assert_array_equal(gibbs(v_bool.astype(np.int64), W, b, c, 2, generator=3), out)
    wide = np.repeat(v_bool.astype(np.float64), 2, axis=1)[:, ::2]  # non-contiguous float64 view
    assert not wide.flags.c_contiguous
    np.testing.assert_array_equal(gibbs(wide, W, b, c, 2, generator=3), out)
    W64, b64, c64 = (a.astype(np.float64) for a in (W, b, c))
    Wf = np.asfortranarray(W64)
    np.testing.assert_array_equal(gibbs(v_bool, Wf, b64, c64, 2, generator=3), gibbs(v_bool, W64, b64, c64, 2, generator=3))


def test_inputs_are_not_modified_and_empty_batch():
    W, b, c = rbm_params(20, 10, seed=11)
    v0 = binary((5, 20))
    copies = [a.copy() for a in (W, b, c, v0)]
    gibbs(v0, W, b, c, 3, generator=0, return_hidden=True)
    for a, copy in zip((W, b, c, v0), copies):
        np.testing.assert_array_equal(a, copy)
    out, hidden = gibbs(np.empty((0, 20)), W, b, c, 3, generator=0, return_hidden=True)
    assert out.shape == (0, 20) and hidden.shape == (0, 10)


def test_torch_tensors_in_and_out():
    torch = pytest.importorskip("torch")
    W, b, c = rbm_params(20, 10, seed=12)
    v0 = binary((5, 20))
    out = gibbs(torch.from_numpy(v0), W, b, c, 2, generator=4)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_array_equal(out.numpy(), gibbs(v0, W, b, c, 2, generator=4))


# ---- bad input ---------------------------------------------------------------------------------------
W0, B0, C0 = np.zeros((3, 5)), np.zeros(5), np.zeros(3)
V0 = np.zeros((2, 5))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(v=np.zeros((2, 4))), ValueError, "v must have 5 columns"),
        (dict(v=np.zeros(5)), ValueError, "v must be 2-D"),
        (dict(v=np.array([[np.nan] * 5])), ValueError, "v contains NaN"),
        (dict(v=np.array([["a"] * 5])), TypeError, "v must be a real numeric"),
        (dict(W=np.zeros(5)), ValueError, "W must be 2-D"),
        (dict(W=np.full((3, 5), np.inf)), ValueError, "W contains NaN or infinity"),
        (dict(b_vis=np.zeros(4)), ValueError, r"b_vis must have shape \(5,\)"),
        (dict(b_hid=np.zeros(5)), ValueError, r"b_hid must have shape \(3,\)"),
        (dict(b_hid=np.array([0, np.nan, 0])), ValueError, "b_hid contains NaN"),
        (dict(steps=-1), ValueError, "steps must be an integer >= 0"),
        (dict(steps=1.5), ValueError, "steps must be an integer"),
        (dict(steps=True), ValueError, "steps must be an integer"),
        (dict(clamp=np.ones(5)), TypeError, "clamp must be a boolean mask"),
        (dict(clamp=np.ones(4, bool)), ValueError, "clamp must have shape"),
        (dict(clamp=np.ones((3, 5), bool)), ValueError, "clamp must have shape"),
        (dict(generator=1.5), TypeError, "generator must be"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs, error, match):
    args = dict(v=V0, W=W0, b_vis=B0, b_hid=C0)
    args.update(kwargs)
    rest = {k: args.pop(k) for k in list(args) if k not in ("v", "W", "b_vis", "b_hid")}
    with pytest.raises(error, match=match):
        gibbs(args["v"], args["W"], args["b_vis"], args["b_hid"], **rest)


# ==== on a GPU (CuPy arrays: the CPU's results where the arithmetic is exact) =====================


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["fused", "graph", "eager"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gibbs_on_gpu_equals_the_cpu_chain_when_products_are_exact(cp, method, dtype):
    W, b_vis, b_hid = dyadic_rbm(40, 24, dtype)
    v0 = (np.random.default_rng(3).random((50, 40)) < 0.5).astype(dtype)
    mask = np.zeros(40, bool)
    mask[::5] = True
    dev = [cp.asarray(a) for a in (W, b_vis, b_hid)]
    for call in range(3):  # graph: eager, then capture + replay, then replay with a new offset
        gen_cpu, gen_gpu = fastgen.Generator(21, 100 * call), fastgen.Generator(21, 100 * call)
        want, want_h = gibbs(v0, W, b_vis, b_hid, 15, generator=gen_cpu, clamp=mask, return_hidden=True)
        got, got_h = gibbs(cp.asarray(v0), *dev, 15, generator=gen_gpu, clamp=cp.asarray(mask), return_hidden=True,
                           method=method)
        np.testing.assert_array_equal(got.get(), want)
        np.testing.assert_allclose(got_h.get(), want_h, rtol=1e-6 if dtype == np.float32 else 1e-12)
        assert gen_cpu.offset == gen_gpu.offset
    assert np.array_equal(want[:, mask], v0[:, mask]) and 0.1 < want.mean() < 0.9


@pytest.mark.gpu
def test_gibbs_graph_replays_after_the_first_call(cp):
    from fastgen._native import cuda as _cuda

    W, b_vis, b_hid = (cp.asarray(a) for a in dyadic_rbm(30, 20, np.float32))
    v = cp.asarray((np.random.default_rng(4).random((64, 30)) < 0.5).astype(np.float32))
    used = [_cuda.gibbs(v.copy(), W, b_vis, b_hid, 5, seed=1, first=2 * i, method="graph") for i in range(3)]
    assert used == ["eager", "graph", "graph"]
