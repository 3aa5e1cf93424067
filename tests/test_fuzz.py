"""Seeded fuzzing of every public op in fastgen.ops (and fastgen.ops.conv / .pool) and of the
estimators' public methods with bad and edge inputs.

Each example takes a valid call (tiny random sizes, odd ones included) and mutates at most one
argument: wrong ndim or shape, empty or size-1 axes, NaN / inf / huge values, other dtypes (int,
bool, complex, float16, object, str), non-contiguous or read-only views, lists, torch tensors,
None, and out-of-range / non-integer / bool / NaN scalars. Every call must then either

* raise ValueError or TypeError whose message names one of the call's arguments and shows none
  of the internals (a pybind11 signature dump, NumPy's "array is too big", fastgen._C's own
  checks), or
* return the right kind, shape and dtype, finite for moderate finite input, equal to a plain
  NumPy / PyTorch reference where one is cheap (binary_matmul, sparse_input_linear, the ELBO
  terms, the KL, the sigmoid, the Philox-drawn Bernoulli states, avg/max unpooling, the
  transposed convolution, max pooling);

and never modify an input. Hypothesis runs derandomized (the same examples every run); the
numbers of examples tried are printed by the last test (run with ``-s`` to see them).
"""
from __future__ import annotations

import collections
import copy
import re
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fastgen  # noqa: E402
from fastgen import ops  # noqa: E402
from fastgen.ops import conv as conv_ops  # noqa: E402
from fastgen.ops import pool as pool_ops  # noqa: E402

import reference as ref  # noqa: E402

torch = pytest.importorskip("torch")

COUNTS: collections.Counter = collections.Counter()
FUZZ = settings(derandomize=True, max_examples=450, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
INTERNALS = ("incompatible function arguments", "array is too big", "Maximum allowed dimension", "fastgen._C",
             "setting an array element", "unhashable", "object of type", "not subscriptable", "could not convert")


# ---- mutations ------------------------------------------------------------------------------
ARRAY_MUTATIONS = ("none", "ndim+", "ndim-", "shape", "empty", "size1", "nan", "inf", "huge", "int64", "uint8", "bool",
                   "complex", "float16", "float32", "float64", "object", "str", "noncontig", "fortran", "readonly",
                   "list", "None", "scalar", "torch")
SCALARS = (-1, 0, 1, 2, 3, 2**31, 2**63, 2**70, 1.5, True, False, None, "2", np.int64(2), np.float64(2.0), np.nan,
           np.inf, -np.inf, 1e300, 1e-300, -1e300)
# mutations that change no value: a successful call must then also match the reference
VALUE_PRESERVING = {"none", "float32", "float64", "noncontig", "fortran", "readonly", "list", "torch", "size1"}


def mutate_array(a: np.ndarray, kind: str, rng: np.random.Generator):
    if kind == "ndim+":
        return a[None]
    if kind == "ndim-":
        return a.reshape(-1)[:max(1, a.size // 2)] if a.ndim > 1 else np.asarray(a.reshape(-1)[0] if a.size else 0.0)
    if kind in ("shape", "empty", "size1"):
        if a.ndim == 0:
            return np.zeros(3)
        axis = int(rng.integers(a.ndim))
        shape = list(a.shape)
        shape[axis] = {"shape": shape[axis] + 1 + int(rng.integers(3)), "empty": 0, "size1": 1}[kind]
        return np.resize(a, shape).astype(a.dtype)
    if kind in ("nan", "inf", "huge"):
        b = a.astype(np.float64).copy()
        if b.size:
            b.flat[int(rng.integers(b.size))] = {"nan": np.nan, "inf": -np.inf if rng.random() < .5 else np.inf,
                                                 "huge": 1e300}[kind]
        return b
    if kind in ("int64", "uint8", "bool", "complex", "float16", "float32", "float64", "object"):
        return a.astype({"complex": np.complex128, "object": object}.get(kind, kind))
    if kind == "str":
        return a.astype(str)
    if kind == "noncontig":
        big = np.zeros(tuple(2 * d for d in a.shape), a.dtype)
        view = big[tuple(slice(None, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    if kind == "list":
        return a.tolist()
    if kind == "None":
        return None
    if kind == "scalar":
        return 1.5
    if kind == "torch":
        return torch.from_numpy(a.copy())
    return a


def snapshot(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, torch.Tensor):
        return value.clone()
    return copy.deepcopy(value)


def same(before, after) -> bool:
    if isinstance(before, np.ndarray):
        if before.dtype.kind in "fc":
            return before.shape == after.shape and np.array_equal(before, after, equal_nan=True)
        return before.shape == after.shape and (before == after).all()
    if isinstance(before, torch.Tensor):
        return torch.equal(before, after) or bool(torch.isnan(before).any())
    if isinstance(before, (float, np.floating)) and np.isnan(before):
        return isinstance(after, (float, np.floating)) and np.isnan(after)
    if isinstance(before, list):
        return repr(before) == repr(after)
    try:
        return bool(before == after)
    except Exception:
        return True


def moderate(value) -> bool:
    """Finite real input of modest size (a result is then expected to be finite)."""
    if value is None or isinstance(value, (str, bool)):
        return True
    if isinstance(value, torch.Tensor):
        value = value.numpy()
    try:
        a = np.asarray(value)
    except Exception:
        return False
    if a.dtype.kind not in "biuf":
        return a.dtype.kind not in "cO"
    return bool(np.isfinite(a).all() and (np.abs(a) < 1e4).all()) if a.size else True


def as_f64(value):
    if isinstance(value, torch.Tensor):
        return value.numpy().astype(np.float64)
    return np.asarray(value, dtype=np.float64)


def names_an_argument(message: str, names) -> bool:
    return any(re.search(rf"(^|[^A-Za-z_]){re.escape(n)}($|[^A-Za-z_])", message) for n in names)


# ---- the call harness ------------------------------------------------------------------------
def run_case(op: str, call, args: dict, mutated: str, kind: str, check, arg_names=None):
    """Call ``call(**args)`` and judge it. ``check(args, result)`` verifies a success."""
    COUNTS[op] += 1
    before = {k: snapshot(v) for k, v in args.items()}
    TORCH_IN[0] = any(isinstance(v, torch.Tensor) for v in args.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = call(**args)
        except (ValueError, TypeError) as exc:
            message = str(exc)
            COUNTS[op + ": refused"] += 1
            assert not any(s in message for s in INTERNALS), f"{op}: internals leak for {mutated}={kind}: {message}"
            assert names_an_argument(message, arg_names or args), \
                f"{op}: message names no argument for {mutated}={kind}: {message}"
            assert kind != "none", f"{op}: a valid call was refused: {message}"
            result = None
        except MemoryError:  # a size that exists but does not fit this machine: honest, but count it
            COUNTS[op + ": MemoryError"] += 1
            result = None
    for k, v in before.items():
        assert same(v, args[k]), f"{op}: input {k} was modified (mutation {mutated}={kind})"
    if result is not None:
        COUNTS[op + ": accepted"] += 1
        check(args, result, kind in VALUE_PRESERVING and all(moderate(v) for v in args.values()))
    return result


def like(result, arg):
    """The result in NumPy (checked to be a NumPy array or a torch tensor; torch only when a torch
    tensor went in: the mutated argument is the only one that can be one)."""
    if isinstance(result, torch.Tensor):
        assert TORCH_IN[0], "a torch tensor came out of NumPy input"
        return result.numpy()
    assert isinstance(result, np.ndarray), type(result)
    if isinstance(arg, torch.Tensor):
        assert TORCH_IN[0]
    return result


TORCH_IN = [False]


def float_result(r, shape, finite: bool):
    assert r.dtype in (np.float32, np.float64), r.dtype
    assert r.shape == tuple(shape), (r.shape, shape)
    if finite:
        assert np.isfinite(r).all()


def tol(r) -> float:
    return 2e-4 if r.dtype == np.float32 else 1e-9


def close(actual, expected, r):
    np.testing.assert_allclose(actual, expected, rtol=tol(r), atol=tol(r) * (1 + np.abs(expected).max(initial=0)))


def per_sample(terms):
    """Sum over every axis but the first (a 1-D input is one sample)."""
    if terms.ndim == 1:
        return terms.sum()
    return terms.reshape(terms.shape[0], int(np.prod(terms.shape[1:]))).sum(1)


def fuzz_args(data, op, valid: dict, scalars=()):
    """Pick one argument (array or scalar) to mutate, or none."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="rng"))
    target = data.draw(st.sampled_from(["-"] + list(valid)), label="target")
    args = dict(valid)
    kind = "none"
    if target in scalars:
        kind = repr(data.draw(st.sampled_from(SCALARS), label="scalar"))
        args[target] = eval(kind, {"np": np, "nan": np.nan, "inf": np.inf})
    elif target != "-" and isinstance(valid[target], np.ndarray):
        kind = data.draw(st.sampled_from(ARRAY_MUTATIONS), label="mutation")
        args[target] = mutate_array(valid[target], kind, rng)
    elif target != "-":
        kind = repr(data.draw(st.sampled_from(SCALARS), label="scalar"))
        args[target] = eval(kind, {"np": np, "nan": np.nan, "inf": np.inf})
    return args, target, kind


def sizes(data, low=0, high=5):
    return data.draw(st.integers(low, high), label="size")


def vals(rng, shape, scale=2.0, dtype=np.float64):
    return (rng.normal(size=shape) * scale).astype(dtype)


def dtype_of(data):
    return data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")


# ---- sampling -------------------------------------------------------------------------------
@FUZZ
@given(st.data())
def test_fuzz_sample_bernoulli(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    n, m, dt = sizes(data), sizes(data, 1), dtype_of(data)
    from_logits = data.draw(st.booleans())
    output = data.draw(st.sampled_from(["states", "probs", "both"])) if from_logits else "states"
    valid = dict(x=vals(rng, (n, m), dtype=dt) if from_logits else rng.random((n, m)).astype(dt),
                 bias=vals(rng, (m,), dtype=dt) if from_logits else None, output=output, from_logits=from_logits,
                 generator=data.draw(st.integers(0, 2**64 - 1)))
    args, target, kind = fuzz_args(data, "sample_bernoulli", valid, scalars=("generator",))

    def check(a, result, exact):
        probs, states = (result if a["output"] == "both" else
                         (result, None) if a["output"] == "probs" else (None, result))
        for r in (probs, states):
            if r is not None:
                r = like(r, a["x"])
                float_result(r, np.shape(as_f64(a["x"])), True)
        if states is not None:
            s = like(states, a["x"])
            assert set(np.unique(s)) <= {0.0, 1.0}
        if exact:
            x = as_f64(a["x"])
            draw = ref.sample_bernoulli(x, None if a["bias"] is None else as_f64(a["bias"]), from_logits=a["from_logits"],
                                        generator=a["generator"], dtype=like(states if states is not None else probs,
                                                                             a["x"]).dtype)
            if probs is not None:
                close(like(probs, a["x"]), draw.probs, like(probs, a["x"]))
            if states is not None:
                s = like(states, a["x"])
                sure = draw.margin > ref.ambiguous_tol(s.dtype)
                assert (s[sure] == draw.states[sure]).all()

    run_case("sample_bernoulli", lambda **a: ops.sample_bernoulli(**a), args, target, kind, check)


@FUZZ
@given(st.data())
def test_fuzz_sample_gaussian(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    n, m, dt = sizes(data), sizes(data, 1), dtype_of(data)
    std = float(rng.random() * 2) if data.draw(st.booleans()) else rng.random(m).astype(dt)
    valid = dict(mean=vals(rng, (n, m), dtype=dt), std=std, bias=vals(rng, (m,), dtype=dt), generator=int(rng.integers(9)))
    args, target, kind = fuzz_args(data, "sample_gaussian", valid, scalars=("generator",))
    if target == "std" and not isinstance(valid["std"], np.ndarray):
        args["std"] = data.draw(st.sampled_from(SCALARS))
        kind = repr(args["std"])

    def check(a, result, exact):
        r = like(result, a["mean"])
        float_result(r, np.shape(as_f64(a["mean"])), exact)
        if exact:
            values, scale = ref.sample_gaussian(as_f64(a["mean"]).astype(r.dtype), as_f64(a["std"]),
                                                bias=as_f64(a["bias"]), generator=a["generator"], dtype=r.dtype)
            assert (np.abs(r - values) <= 1e-4 * scale + tol(r)).all()

    run_case("sample_gaussian", lambda **a: ops.sample_gaussian(**a), args, target, kind, check)


# ---- RBM ops --------------------------------------------------------------------------------
@FUZZ
@given(st.data())
def test_fuzz_gibbs(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    n, nv, nh, dt = sizes(data), sizes(data, 1), sizes(data, 1), dtype_of(data)
    valid = dict(v=(rng.random((n, nv)) < .5).astype(dt), W=vals(rng, (nh, nv), dtype=dt), b_vis=vals(rng, (nv,), dtype=dt),
                 b_hid=vals(rng, (nh,), dtype=dt), steps=data.draw(st.integers(0, 3)),
                 clamp=(rng.random(nv) < .5) if data.draw(st.booleans()) else None,
                 return_hidden=data.draw(st.booleans()), generator=int(rng.integers(9)))
    args, target, kind = fuzz_args(data, "gibbs", valid, scalars=("steps", "generator", "return_hidden"))
    if target == "clamp" and valid["clamp"] is None:
        args["clamp"] = mutate_array(rng.random(nv) < .5, data.draw(st.sampled_from(ARRAY_MUTATIONS)), rng)

    def check(a, result, exact):
        vk, hidden = result if a["return_hidden"] else (result, None)
        vk = like(vk, a["v"])
        v0 = as_f64(a["v"])
        float_result(vk, v0.shape, True)
        if a["steps"] and moderate(a["W"]):
            assert set(np.unique(vk)) <= {0.0, 1.0} or a["clamp"] is not None
        if a["clamp"] is not None:
            mask = np.broadcast_to(np.asarray(a["clamp"] if not isinstance(a["clamp"], torch.Tensor)
                                              else a["clamp"].numpy(), bool), v0.shape)
            assert (vk[mask] == v0[mask].astype(vk.dtype)).all()
        if hidden is not None:
            h = like(hidden, a["v"])
            assert h.shape == (v0.shape[0], np.shape(as_f64(a["W"]))[0]) and ((h >= 0) & (h <= 1)).all()

    run_case("gibbs", lambda **a: ops.gibbs(**a), args, target, kind, check)


@FUZZ
@given(st.data())
def test_fuzz_cd_gradients(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    n, nv, nh, dt = sizes(data, 1), sizes(data, 1), sizes(data, 1), dtype_of(data)
    chains = (rng.random((sizes(data, 1), nh)) < .5).astype(dt) if data.draw(st.booleans()) else None
    valid = dict(v=(rng.random((n, nv)) < .5).astype(dt), W=vals(rng, (nh, nv), dtype=dt), b_vis=vals(rng, (nv,), dtype=dt),
                 b_hid=vals(rng, (nh,), dtype=dt), k=data.draw(st.integers(1, 2)), persistent_chains=chains,
                 generator=int(rng.integers(9)))
    args, target, kind = fuzz_args(data, "cd_gradients", valid, scalars=("k", "generator"))

    def check(a, result, exact):
        nh_, nv_ = np.shape(as_f64(a["W"]))
        assert result.weights.shape == (nh_, nv_) and result.visible_bias.shape == (nv_,)
        assert result.hidden_bias.shape == (nh_,) and result.chains.shape[1] == nh_
        assert set(np.unique(result.chains)) <= {0.0, 1.0}
        if exact:
            for g in result[:3]:
                assert np.isfinite(g).all()

    run_case("cd_gradients", lambda **a: ops.cd_gradients(**a), args, target, kind, check)


@FUZZ
@given(st.data())
def test_fuzz_binary_matmul(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    m, k, n, dt = sizes(data), sizes(data), sizes(data), dtype_of(data)
    transpose_a = data.draw(st.booleans())
    a = (rng.random((k, m) if transpose_a else (m, k)) < .5).astype(data.draw(st.sampled_from([dt, np.bool_, np.uint8])))
    valid = dict(a=a, b=vals(rng, (k, n), dtype=dt), transpose_a=transpose_a)
    args, target, kind = fuzz_args(data, "binary_matmul", valid, scalars=("transpose_a",))

    def check(a_, result, exact):
        r = like(result, a_["b"])
        A, B = as_f64(a_["a"]), as_f64(a_["b"])
        expected = (A.T if a_["transpose_a"] else A) @ B
        float_result(r, expected.shape, exact)
        if exact:
            close(r, expected, r)

    run_case("binary_matmul", lambda **a_: ops.binary_matmul(**a_), args, target, kind, check)


# ---- categorical / VAE ops ------------------------------------------------------------------
@FUZZ
@given(st.data())
def test_fuzz_sample_categorical(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    n, m, dt = sizes(data), sizes(data, 1), dtype_of(data)
    shape = (n, m) if data.draw(st.booleans()) else (m,)
    valid = dict(logits=vals(rng, shape, 3, dt), temperature=float(rng.random() + .1),
                 top_k=data.draw(st.sampled_from([None] + list(range(1, m + 1)))), generator=int(rng.integers(9)))
    args, target, kind = fuzz_args(data, "sample_categorical", valid, scalars=("temperature", "top_k", "generator"))

    def check(a, result, exact):
        r = like(result, a["logits"])
        logits = as_f64(a["logits"])
        assert r.dtype == np.int64 and r.shape == logits.shape[:-1]
        assert ((r >= 0) & (r < logits.shape[-1])).all()
        if a["top_k"] is not None and exact and logits.size:
            rows = logits.reshape(-1, logits.shape[-1])
            kth = np.sort(rows, axis=1)[:, -int(a["top_k"])]
            assert (rows[np.arange(rows.shape[0]), r.reshape(-1)] >= kth).all()

    run_case("sample_categorical", lambda **a: ops.sample_categorical(**a), args, target, kind, check)


@FUZZ
@given(st.data())
def test_fuzz_reparameterize(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    n, d, dt = sizes(data), sizes(data), dtype_of(data)
    shape = (n, d) if data.draw(st.booleans()) else (d,)
    valid = dict(mu=vals(rng, shape, 1, dt), logvar=vals(rng, shape, 1, dt), generator=int(rng.integers(9)))
    args, target, kind = fuzz_args(data, "reparameterize", valid, scalars=("generator",))

    def check(a, result, exact):
        z, kl = (like(t, a["mu"]) for t in result)
        mu, lv = as_f64(a["mu"]), as_f64(a["logvar"])
        float_result(z, mu.shape, exact)
        assert kl.shape == mu.shape[:-1]
        if exact:
            close(kl, 0.5 * (mu**2 + np.exp(lv) - 1 - lv).sum(-1), kl)

    run_case("reparameterize", lambda **a: ops.reparameterize(**a), args, target, kind, check)


@FUZZ
@given(st.data())
def test_fuzz_elbo_terms(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    n, dt = sizes(data), dtype_of(data)
    feat = tuple(sizes(data, 1, 4) for _ in range(data.draw(st.integers(0, 2))))
    shape = (n,) + feat
    if data.draw(st.booleans()):
        valid = dict(x=rng.random(shape).astype(dt), logits=vals(rng, shape, 3, dt))
        args, target, kind = fuzz_args(data, "bernoulli_log_likelihood", valid)

        def check(a, result, exact):
            r = like(result, a["x"])
            x, l_ = as_f64(a["x"]), as_f64(a["logits"])
            terms = x * l_ - ref.softplus(l_)
            expected = per_sample(terms)
            float_result(r, np.shape(expected), exact)
            if exact:
                close(r, expected, r)

        run_case("bernoulli_log_likelihood", lambda **a: ops.bernoulli_log_likelihood(**a), args, target, kind, check)
    else:
        layout = data.draw(st.sampled_from(["element", "feature", "none"]))
        logvar = vals(rng, shape, 1, dt) if layout == "element" else vals(rng, feat, 1, dt) if layout == "feature" \
            and feat else None
        valid = dict(x=vals(rng, shape, 1, dt), mean=vals(rng, shape, 1, dt), logvar=logvar)
        args, target, kind = fuzz_args(data, "gaussian_log_likelihood", valid)

        def check(a, result, exact):
            r = like(result, a["x"])
            x, m = as_f64(a["x"]), as_f64(a["mean"])
            v = 0.0 if a["logvar"] is None else as_f64(a["logvar"])
            terms = -(np.log(2 * np.pi) + v + (x - m) ** 2 * np.exp(-v)) / 2
            expected = per_sample(terms)
            float_result(r, np.shape(expected), exact)
            if exact:
                close(r, expected, r)

        run_case("gaussian_log_likelihood", lambda **a: ops.gaussian_log_likelihood(**a), args, target, kind, check)


@FUZZ
@given(st.data())
def test_fuzz_sparse_input_linear(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    n, fin, fout, dt = sizes(data), sizes(data), sizes(data), dtype_of(data)
    x = vals(rng, (n, fin), 1, dt) * (rng.random((n, fin)) < data.draw(st.sampled_from([0.0, 0.2, 0.9])))
    valid = dict(x=x, weight_t=vals(rng, (fin, fout), 1, dt), bias=vals(rng, (fout,), 1, dt) if data.draw(st.booleans())
                 else None)
    args, target, kind = fuzz_args(data, "sparse_input_linear", valid)

    def check(a, result, exact):
        r = like(result, a["x"])
        expected = as_f64(a["x"]) @ as_f64(a["weight_t"]) + (0 if a["bias"] is None else as_f64(a["bias"]))
        float_result(r, expected.shape, exact)
        if exact:
            close(r, expected, r)

    run_case("sparse_input_linear", lambda **a: ops.sparse_input_linear(**a), args, target, kind, check)


# ---- conv / pool ----------------------------------------------------------------------------
@FUZZ
@given(st.data())
def test_fuzz_conv_transpose2d(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    n, cin, cout, h, w = sizes(data, 0, 2), sizes(data, 0, 3), sizes(data, 1, 3), sizes(data, 1, 4), sizes(data, 1, 4)
    kh, kw, dt = sizes(data, 1, 3), sizes(data, 1, 3), dtype_of(data)
    stride = data.draw(st.integers(1, 3))
    padding = data.draw(st.integers(0, 1))
    if min((h - 1) * stride + kh, (w - 1) * stride + kw) - 2 * padding < 1:
        padding = 0  # the valid call must have an output
    valid = dict(x=vals(rng, (n, cin, h, w), 1, dt), weight=vals(rng, (cin, cout, kh, kw), 1, dt),
                 bias=vals(rng, (cout,), 1, dt) if data.draw(st.booleans()) else None, stride=stride, padding=padding,
                 output_padding=data.draw(st.integers(0, stride - 1)),
                 activation=data.draw(st.sampled_from([None, "none", "relu", "leaky_relu", "tanh", "sigmoid"])),
                 negative_slope=0.2)
    args, target, kind = fuzz_args(data, "conv_transpose2d", valid,
                                   scalars=("stride", "padding", "output_padding", "activation", "negative_slope"))

    def check(a, result, exact):
        r = like(result, a["x"])
        x, wt = torch.from_numpy(as_f64(a["x"])), torch.from_numpy(as_f64(a["weight"]))
        b = None if a["bias"] is None else torch.from_numpy(as_f64(a["bias"]))
        if x.shape[0] and x.shape[1]:
            y = torch.nn.functional.conv_transpose2d(x, wt, b, a["stride"], a["padding"], a["output_padding"])
        else:  # torch refuses empty batches / channels: the output is the bias alone
            size = [(x.shape[i] - 1) * a["stride"] - 2 * a["padding"] + wt.shape[i] + a["output_padding"]
                    for i in (2, 3)]
            y = torch.zeros(x.shape[0], wt.shape[1], *size, dtype=torch.float64)
            if b is not None:
                y += b[:, None, None]
        act = {None: lambda t: t, "none": lambda t: t, "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
               "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, a["negative_slope"])}[a["activation"]]
        expected = act(y).numpy()
        float_result(r, expected.shape, exact)
        if exact:
            close(r, expected, r)

    run_case("conv_transpose2d", lambda **a: conv_ops.conv_transpose2d(**a), args, target, kind, check)


@FUZZ
@given(st.data())
def test_fuzz_pooling(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    n, c, h, w, dt = sizes(data, 0, 2), sizes(data, 0, 2), sizes(data, 1, 6), sizes(data, 1, 6), dtype_of(data)
    which = data.draw(st.sampled_from(["max_pool2d", "max_unpool2d", "avg_unpool2d"]))
    x = vals(rng, (n, c, h, w), 1, dt)
    if which == "max_pool2d":
        k = data.draw(st.integers(1, min(3, h, w)))
        valid = dict(x=x, kernel_size=k, stride=data.draw(st.sampled_from([None, 1, 2, 3])),
                     padding=data.draw(st.integers(0, k // 2)))
        args, target, kind = fuzz_args(data, which, valid, scalars=("kernel_size", "stride", "padding"))

        def check(a, result, exact):
            out, idx = (like(t, a["x"]) for t in result)
            xx = torch.from_numpy(as_f64(a["x"]))
            if xx.numel() == 0:  # torch refuses empty planes: only the shape can be checked
                assert out.size == 0 and out.shape[:2] == tuple(xx.shape[:2]) and idx.shape == out.shape
                return
            expected = torch.nn.functional.max_pool2d(xx, a["kernel_size"], a["stride"], a["padding"]).numpy()
            float_result(out, expected.shape, exact)
            assert idx.dtype == np.int64 and idx.shape == out.shape
            if exact:
                close(out, expected, out)
                planes = as_f64(a["x"]).reshape(xx.shape[0] * xx.shape[1], -1)
                taken = np.take_along_axis(planes, idx.reshape(planes.shape[0], -1), 1)
                close(taken.reshape(out.shape), expected, out)

        run_case(which, lambda **a: pool_ops.max_pool2d(**a), args, target, kind, check)
    elif which == "max_unpool2d":
        k = data.draw(st.integers(1, 3))
        out, idx = pool_ops.max_pool2d(x, k) if min(h, w) >= k else pool_ops.max_pool2d(x, 1)
        valid = dict(x=out, indices=idx, output_size=(h, w))
        args, target, kind = fuzz_args(data, which, valid, scalars=("output_size",))

        def check(a, result, exact):
            r = like(result, a["x"])
            hw = a["output_size"] if isinstance(a["output_size"], tuple) else (a["output_size"],) * 2
            src = as_f64(a["x"])
            float_result(r, src.shape[:2] + tuple(hw), exact)
            if exact and r.size:
                expected = np.zeros(r.shape).reshape(src.shape[0] * src.shape[1], -1)
                np.put_along_axis(expected, np.asarray(a["indices"]).reshape(expected.shape[0], -1),
                                  src.reshape(expected.shape[0], -1), 1)
                close(r, expected.reshape(r.shape), r)

        run_case(which, lambda **a: pool_ops.max_unpool2d(**a), args, target, kind, check)
    else:
        valid = dict(x=x, kernel_size=data.draw(st.sampled_from([1, 2, 3, (1, 2), (3, 1)])))
        args, target, kind = fuzz_args(data, which, valid, scalars=("kernel_size",))

        def check(a, result, exact):
            r = like(result, a["x"])
            kh, kw = (a["kernel_size"],) * 2 if np.ndim(a["kernel_size"]) == 0 else a["kernel_size"]
            expected = np.repeat(np.repeat(as_f64(a["x"]), kh, axis=2), kw, axis=3)
            float_result(r, expected.shape, exact)
            if exact:
                close(r, expected, r)

        run_case(which, lambda **a: pool_ops.avg_unpool2d(**a), args, target, kind, check)


# ---- estimators -----------------------------------------------------------------------------
# scikit-learn's check_array messages (the estimators follow its conventions) or an X / parameter name
X_PHRASES = ("X", "Expected 2D array", "Found array with", "features", "Complex data", "dtype")


@settings(derandomize=True, max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_fuzz_estimators(data):
    """fit / partial_fit / transform / score_samples / gibbs / log_likelihood of the three
    estimators on tiny data with one argument mutated (sklearn-style messages accepted)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    name = data.draw(st.sampled_from(["BernoulliRBM", "GaussianBernoulliRBM", "DBN"]))
    n, d = sizes(data, 1, 6), sizes(data, 1, 5)
    X = (rng.random((n, d)) < .5).astype(data.draw(st.sampled_from([np.float32, np.float64])))
    if name == "GaussianBernoulliRBM":
        X = rng.normal(size=(n, d)).astype(X.dtype)
    params = dict(hidden_layer_sizes=(3, 2)) if name == "DBN" else dict(n_components=3)
    params.update(n_iter=1, batch_size=data.draw(st.integers(1, 4)), random_state=0)
    if name == "DBN":
        params.pop("n_iter")
    cls = getattr(fastgen, name)
    method = data.draw(st.sampled_from(["fit", "transform"] if name == "DBN" else
                                       ["fit", "partial_fit", "transform", "score_samples", "gibbs", "log_likelihood"]))
    target = data.draw(st.sampled_from(["-", "X", "param"]))
    kind = "none"
    if target == "X":
        kind = data.draw(st.sampled_from(ARRAY_MUTATIONS))
        Xm = mutate_array(X, kind, rng)
    else:
        Xm = X
    if target == "param":
        p = data.draw(st.sampled_from(sorted(k for k in params if k != "random_state")))
        value = data.draw(st.sampled_from([v for v in SCALARS if not (isinstance(v, int) and v >= 2**31)]))
        kind = f"{p}={value!r}"
        params = {**params, p: (value,) if p == "hidden_layer_sizes" else value}

    COUNTS["estimators"] += 1
    COUNTS[f"{name}.{method}"] += 1
    before = snapshot(Xm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = cls(**params)
            if method not in ("fit", "partial_fit"):
                model.fit(X)
            out = getattr(model, method)(Xm)
        except (ValueError, TypeError) as exc:
            message = str(exc)
            assert kind != "none", f"{name}.{method}: a valid call was refused: {message}"
            assert not any(s in message for s in INTERNALS[:5]), f"{name}.{method} {kind}: {message}"
            assert any(s in message for s in X_PHRASES + tuple(params)), f"{name}.{method} {kind}: {message}"
            COUNTS["estimators: refused"] += 1
            return
        except FloatingPointError as exc:  # the trainers' divergence stop (huge inputs)
            assert "diverged" in str(exc)
            COUNTS["estimators: diverged"] += 1
            return
    assert same(before, Xm), f"{name}.{method}: X was modified ({kind})"
    COUNTS["estimators: accepted"] += 1
    if method in ("fit", "partial_fit"):
        assert out is model
        return
    out = np.asarray(out)
    rows = np.shape(as_f64(Xm))[0]
    assert out.shape[0] == rows
    if method == "gibbs":
        assert out.shape == np.shape(as_f64(Xm))
    if kind in VALUE_PRESERVING:
        assert np.isfinite(out).all() or method == "log_likelihood"


def test_zz_fuzz_counts():
    """Runs last: every op was driven, and prints how many cases each got."""
    ran = [k for k in COUNTS if ":" not in k and "." not in k]
    if not ran:
        pytest.skip("run with the fuzz tests above")
    print("\nfuzz cases tried:", sum(COUNTS[k] for k in ran if k != "estimators") + COUNTS["estimators"])
    for key in sorted(COUNTS):
        print(f"  {key}: {COUNTS[key]}")
    for op in ("sample_bernoulli", "sample_gaussian", "gibbs", "cd_gradients", "binary_matmul", "sample_categorical",
               "reparameterize", "sparse_input_linear", "conv_transpose2d", "max_pool2d", "estimators"):
        assert COUNTS[op] > 0 and COUNTS[op + ": accepted"] > 0 and COUNTS[op + ": refused"] > 0, op
