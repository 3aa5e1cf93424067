"""Kernel-level GPU smoke test of fastgen's CUDA backend: every kernel entry point of kernels/*.cu
launched at least once, on small odd sizes, through its launcher in fastgen/_native/cuda_*.py,
and compared with a NumPy reference written here. It needs NumPy and CuPy only: neither
fastgen._C nor SciPy (the groups ``interop`` and ``timing`` go through fastgen.ops, which needs
fastgen._C; they record SKIP without it). Run from the repository root:

    python bench/gpu_smoke.py --out DIR [--only GROUPS] [--list]

Each check is one result, PASS / FAIL (a wrong number) / ERROR (an exception) / SKIP / INFO,
appended to DIR/smoke.jsonl as it is produced (a kill leaves everything before it) and gathered in
DIR/smoke_summary.json at the end, with the device and versions in DIR/env.json. Exceptions are
caught per check, so nothing aborts the run, except a sticky CUDA error (illegal address, launch
failure), which poisons the CUDA context: the script then re-executes itself on the groups not yet
run, in a fresh context (``--append``), so one bad kernel costs only its own group.

References: a NumPy Philox4x32-10 with fastgen's stream layout (kernels/include/fastgen/philox.h:
element i is lane i % 4 of block i // 4, key = seed, counter = (block, offset)) and the uniform /
Box-Muller mappings of sampling.h, so the draws are compared word for word; deterministic kernels
(SGD and velocity updates, im2col, pooling, the conv output pass on exact sums) exactly;
transcendental formulas (sigmoid, softplus, normals, likelihood sums) to a tolerance per dtype.
Without a GPU every check is recorded as SKIP with the reason, and the exit status is 0.

Exit status: 0 when nothing failed (or no GPU), 1 when a check failed, 2 on a usage error.
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STICKY = ("illegal memory access", "IllegalAddress", "ILLEGAL_ADDRESS", "unspecified launch failure", "LAUNCH_FAILURE",
          "misaligned address", "MISALIGNED", "illegal instruction", "ILLEGAL_INSTRUCTION", "hardware stack error",
          "cudaErrorAssert", "device-side assert")


# ---- kernel entry points ------------------------------------------------------------------------
def kernel_entry_points(paths=None) -> set:
    """Every ``extern "C" __global__`` function of ``paths`` (default: kernels/*.cu), the
    macro-generated ``NAME_##SUFFIX`` ones expanded with the suffixes their macro is instantiated
    with in the same file."""
    names = set()
    for path in sorted(paths if paths is not None else (ROOT / "kernels").glob("*.cu")):
        path = Path(path)
        text = path.read_text()
        macros = {}  # macro name -> (param names, body)
        for m in re.finditer(r"#define\s+(\w+)\(([^)]*)\)((?:[^\n]*\\\n)*[^\n]*)", text):
            macros[m.group(1)] = ([a.strip() for a in m.group(2).split(",")], m.group(3))
        in_macro = set()
        for macro, (params, body) in macros.items():
            for e in re.finditer(r'extern\s+"C"\s+__global__\s+void\s+([\w#]+)\s*\(', body):
                in_macro.add(e.group(1))
                for inst in re.finditer(rf"^{macro}\(([^)]*)\)", text, re.M):
                    args = [a.strip() for a in inst.group(1).split(",")]
                    name = e.group(1)
                    for p, a in zip(params, args):
                        name = name.replace(f"##{p}", a).replace(f"{p}##", a)
                    names.add(name)
        for e in re.finditer(r'extern\s+"C"\s+__global__\s+void\s+([\w#]+)\s*\(', text):
            if "#" not in e.group(1) and e.group(1) not in in_macro:
                names.add(e.group(1))
    return names


# ---- the registry -------------------------------------------------------------------------------
@dataclass
class Check:
    group: str
    name: str
    fn: object
    kernels: tuple = ()
    needs_ops: bool = False  # goes through fastgen.ops (needs fastgen._C)
    extra: dict = field(default_factory=dict)


CHECKS: list = []
GROUPS_ORDER = ["compile", "rng", "sampling", "cd", "gibbs", "graph", "epoch", "elbo", "reparam", "pool", "conv",
                "categorical", "ftz", "coverage", "interop", "timing"]
OPS_GROUPS = ("interop", "timing")  # need fastgen._C (fastgen.ops); gpu_check.sh runs them after the build


def check(group, name, kernels=(), needs_ops=False):
    def wrap(fn):
        CHECKS.append(Check(group, name, fn, tuple(kernels), needs_ops))
        return fn
    return wrap


def both(prefix):
    return (f"{prefix}_f32", f"{prefix}_f64")


DTYPES = (np.float32, np.float64)
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def dname(dt):
    return np.dtype(dt).name


# ---- NumPy references ---------------------------------------------------------------------------
M32 = np.uint64(0xFFFFFFFF)


def philox_words(n, seed, offset, first=0):
    """Words of elements first .. first + n - 1 of (seed, offset): Philox4x32-10, key = seed,
    counter = (block_lo, block_hi, offset_lo, offset_hi), element i = lane i % 4 of block i // 4."""
    if n <= 0:
        return np.empty(0, np.uint32)
    b0, b1 = first // 4, (first + n - 1) // 4 + 1
    blocks = np.arange(b0, b1, dtype=np.uint64)
    c0, c1 = blocks & M32, blocks >> np.uint64(32)
    c2 = np.full_like(blocks, offset & 0xFFFFFFFF)
    c3 = np.full_like(blocks, (offset >> 32) & 0xFFFFFFFF)
    k0, k1 = seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF
    for rnd in range(10):
        if rnd:
            k0, k1 = (k0 + 0x9E3779B9) & 0xFFFFFFFF, (k1 + 0xBB67AE85) & 0xFFFFFFFF
        p0, p1 = np.uint64(0xD2511F53) * c0, np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & M32,
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & M32)
    words = np.stack([c0, c1, c2, c3], axis=1).reshape(-1).astype(np.uint32)
    return words[first - 4 * b0:first - 4 * b0 + n]


def uniforms(words, dtype):
    """sampling.h uniform01: float keeps the top 24 bits, double all 32 (both exact)."""
    if np.dtype(dtype) == np.float32:
        return (words >> np.uint32(8)).astype(np.float32) * np.float32(5.9604644775390625e-08)
    return words.astype(np.float64) * 2.3283064365386963e-10


def normals(n, seed, offset, dtype, first=0):
    """sampling.h normals_from_block in float64: lanes (0, 1) and (2, 3) of a block are one
    Box-Muller pair, r = sqrt(-2 log(1 - u1)), (r cos 2 pi u2, r sin 2 pi u2)."""
    start = (first // 4) * 4
    stop = -(-(first + n) // 4) * 4
    u = uniforms(philox_words(stop - start, seed, offset, start), dtype).astype(np.float64).reshape(-1, 2)
    r = np.sqrt(-2.0 * np.log(1.0 - u[:, 0]))
    z = np.stack([r * np.cos(2 * np.pi * u[:, 1]), r * np.sin(2 * np.pi * u[:, 1])], axis=1).reshape(-1)
    return z[first - start:first - start + n]


def sigmoid64(x):
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def softplus64(x):
    x = np.asarray(x, np.float64)
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _fma32(a, b, c):
    # a * b is exact in double for float32 operands; one more rounding to float32 after the add
    return np.float32(np.float64(a) * np.float64(b) + np.float64(c))


def fg_exp_f32(x):
    """kernels/include/fastgen/math.h fg_exp<float>, step by step in float32 (for the flush-to-zero
    probe: the clamped floor exp(-87) that sigmoid and softplus return far out on the left)."""
    x = np.float32(x)
    c = np.float32(min(max(x, np.float32(-87.0)), np.float32(88.0)))
    n = np.float32((c * np.float32(1.44269504088896341) + np.float32(12582912.0)) - np.float32(12582912.0))
    r = _fma32(n, -np.float32(0.693145751953125), c)
    r = _fma32(n, -np.float32(1.42860676533018690e-06), r)
    p = np.float32(1.0 / 5040.0)
    for coef in (1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0):
        p = _fma32(p, r, np.float32(coef))
    scale = np.frombuffer(np.uint32((int(n) + 127) << 23).tobytes(), np.float32)[0]
    return np.float32(p * scale)


def sigmoid_f32_left_tail(x):
    """fastgen's float32 sigmoid for x <= -88: e / (1 + e) with e = fg_exp(x) = fg_exp(-87)."""
    e = fg_exp_f32(x)
    return np.float32(e * (np.float32(1) / (np.float32(1) + e)))


def softplus_f32_left_tail(x):
    """fastgen's float32 softplus for x <= -88: log1p_unit(e) = 2 s (1 + ...) with s = e / (2 + e), a
    subnormal: flush-to-zero makes it 0."""
    e = fg_exp_f32(x)
    s = np.float32(e / (np.float32(2) + e))
    s2 = np.float32(s * s)
    p = np.float32(1.0 / 15.0)
    for coef in (1.0 / 13.0, 1.0 / 11.0, 1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0, 1.0):
        p = _fma32(p, s2, np.float32(coef))
    return np.float32(np.float32(np.float32(2.0) * s) * p)


def dyadic(shape, rng, lo=-12, hi=13, scale=8, dtype=np.float32):
    """Values k / scale: sums of their products are exact, so GEMM order does not matter."""
    return (rng.integers(lo, hi, shape) / scale).astype(dtype)


def close(got, want, tol, what=""):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"{what} shape {got.shape} != {want.shape}")
    err = np.abs(got - want) / (1 + np.abs(want))
    if not np.all(np.isfinite(got) == np.isfinite(want)) or (err.size and np.nanmax(err) > tol):
        i = int(np.nanargmax(err)) if err.size else 0
        raise AssertionError(f"{what} max rel err {np.nanmax(err):.3g} > {tol:g} at flat {i}: "
                             f"got {got.reshape(-1)[i]!r}, want {want.reshape(-1)[i]!r}")
    return float(np.nanmax(err)) if err.size else 0.0


def equal(got, want, what=""):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{what} shape {got.shape} != {want.shape}")
    bad = got != want
    if np.issubdtype(got.dtype, np.floating):
        bad &= ~(np.isnan(got) & np.isnan(want))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} differ; first at flat {i}: "
                             f"got {got.reshape(-1)[i]!r}, want {want.reshape(-1)[i]!r}")


def sync():
    import cupy as cp

    cp.cuda.Device().synchronize()


def native(name):
    import importlib

    return importlib.import_module(f"fastgen._native.{name}")


def cpa(a):
    import cupy as cp

    return cp.asarray(a)


# ---- compile ------------------------------------------------------------------------------------
@check("compile", "every_module_and_entry_point")
def _compile():
    rt = native("cuda_runtime")
    dev = rt.current_device()
    by_module = {}
    for path in sorted((ROOT / "kernels").glob("*.cu")):
        names = sorted(kernel_entry_points_of(path))
        if names:
            by_module[path.stem] = names
    regs, errors = {}, []
    for module, names in by_module.items():
        t = time.perf_counter()
        try:
            for n in names:
                f = rt.kernel_function(module, n, dev)
                regs[n] = getattr(f, "num_regs", "?")
        except Exception as exc:  # noqa: BLE001 - one module's failure is reported, the rest still compile
            errors.append(f"{module}: {type(exc).__name__}: {str(exc)[:600]}")
        regs[f"<{module} s>"] = round(time.perf_counter() - t, 2)
    if errors:
        raise AssertionError("; ".join(errors))
    return f"{sum(len(v) for v in by_module.values())} entry points in {len(by_module)} modules; registers/seconds {regs}"


def kernel_entry_points_of(path):
    return kernel_entry_points([path])


# ---- rng ----------------------------------------------------------------------------------------
@check("rng", "fill_bits_uniform_normal", kernels=("fg_fill_bits",) + both("fg_fill_uniform") + both("fg_fill_normal"))
def _rng():
    import cupy as cp

    S = native("cuda_sampling")
    notes = []
    for n, seed, offset in ((1, 0, 0), (4099, 7, 3), (20001, 2**63 + 5, 2**40 + 1)):
        bits = cp.empty(n, cp.uint32)
        S.fill_bits(bits, seed, offset)
        want = philox_words(n, seed, offset)
        equal(bits.get(), want, f"words n={n}")
        for dt in DTYPES:
            u = cp.empty(n, dt)
            S.fill_uniform(u, seed, offset)
            equal(u.get(), uniforms(want, dt), f"uniform {dname(dt)} n={n}")
            z = cp.empty(n, dt)
            S.fill_normal(z, seed, offset)
            notes.append(close(z.get(), normals(n, seed, offset, dt), 5 * TOL[dt], f"normal {dname(dt)} n={n}"))
    return f"words and uniforms bitwise; normals max rel err {max(notes):.2g}"


@check("rng", "set_stream_relative_offsets", kernels=("fg_set_stream", "fg_fill_uniform_f32"))
def _set_stream():
    import cupy as cp

    S = native("cuda_sampling")
    G = native("graphs")
    buf = cp.zeros(2, cp.uint64)
    G.set_stream(buf, 99, 1000)
    equal(buf.get(), np.array([99, 1000], np.uint64), "stream buffer")
    u = cp.empty(1001, cp.float32)
    S.fill_uniform(u, 0, 5, rng=buf)
    equal(u.get(), uniforms(philox_words(1001, 99, 1005), np.float32), "uniforms at buffer offset + 5")


# ---- sampling -----------------------------------------------------------------------------------
@check("sampling", "bernoulli_strided_bias_clamp", kernels=both("fg_bernoulli"))
def _bernoulli():
    import cupy as cp

    S = native("cuda_sampling")
    rng = np.random.default_rng(1)
    for dt in DTYPES:
        rows, cols = 257, 131
        big = (rng.standard_normal((rows, cols + 9)) * 4).astype(dt)
        xg = cpa(big)[:, :cols]  # strided rows
        b = rng.standard_normal(cols).astype(dt)
        clamp = (np.arange(cols) % 7 == 0).astype(np.uint8)
        probs, states = cp.empty((rows, cols), dt), cp.full((rows, cols), 7, dt)
        S.bernoulli(xg, cpa(b), probs, states, seed=3, offset=11, clamp=cpa(clamp))
        p = probs.get()
        close(p, sigmoid64(big[:, :cols].astype(np.float64) + b), 4 * TOL[dt], f"probs {dname(dt)}")
        u = uniforms(philox_words(rows * cols, 3, 11), dt).reshape(rows, cols)
        want = (u < p).astype(dt)  # the kernel's own probabilities: exact
        want[:, clamp.astype(bool)] = 7
        equal(states.get(), want, f"states {dname(dt)}")
        # probabilities in, states out (from_logits=False), states aliasing the input
        pr = cpa(rng.random((33, 65)).astype(dt))
        ref = pr.get()
        S.bernoulli(pr, None, None, pr, from_logits=False, seed=5, offset=2)
        equal(pr.get(), (uniforms(philox_words(33 * 65, 5, 2), dt).reshape(33, 65) < ref).astype(dt),
              f"from_logits=False {dname(dt)}")


@check("sampling", "gaussian_bias_std", kernels=both("fg_gaussian"))
def _gaussian():
    import cupy as cp

    S = native("cuda_sampling")
    rng = np.random.default_rng(2)
    for dt in DTYPES:
        big = rng.standard_normal((33, 70)).astype(dt)
        mean = cpa(big)[:, :65]
        bias, std = rng.standard_normal(65).astype(dt), rng.random(65).astype(dt) + 0.5
        out = cp.empty((33, 65), dt)
        S.gaussian(mean, out, bias=cpa(bias), std=cpa(std), seed=9, offset=2)
        z = normals(33 * 65, 9, 2, dt).reshape(33, 65)
        close(out.get(), big[:, :65].astype(np.float64) + bias + std * z, 10 * TOL[dt], f"per-column std {dname(dt)}")
        S.gaussian(mean, out, std_scalar=0.5, seed=9, offset=3)
        z = normals(33 * 65, 9, 3, dt).reshape(33, 65)
        close(out.get(), big[:, :65].astype(np.float64) + 0.5 * z, 10 * TOL[dt], f"scalar std {dname(dt)}")


# ---- cd updates ---------------------------------------------------------------------------------
@check("cd", "sgd_update_and_velocity_bitwise", kernels=both("fg_sgd_update") + both("fg_apply_velocity"))
def _sgd():
    import cupy as cp

    C = native("cuda_cd")
    rng = np.random.default_rng(3)
    for dt in DTYPES:
        t = np.dtype(dt).type
        n = 1001
        p0, g, v0 = (rng.standard_normal(n).astype(dt) for _ in range(3))
        lr, mom, wd = t(0.1), t(0.5), t(0.01)
        p = cpa(p0)
        C.sgd_update(p, cpa(g), lr=0.1, weight_decay=0.01)
        equal(p.get(), p0 + lr * (g - wd * p0), f"plain sgd {dname(dt)}")
        p, v = cpa(p0), cpa(v0)
        C.sgd_update(p, cpa(g), velocity=v, lr=0.1, momentum=0.5, weight_decay=0.01)
        vw = mom * v0 + lr * (g - wd * p0)
        equal(v.get(), vw, f"momentum velocity {dname(dt)}")
        equal(p.get(), p0 + vw, f"momentum param {dname(dt)}")
        p, v = cpa(p0), cpa(v0)
        C.apply_velocity(p, v, 0.001)
        vw = v0 - t(0.001) * p0
        equal(v.get(), vw, f"apply_velocity velocity {dname(dt)}")
        equal(p.get(), p0 + vw, f"apply_velocity param {dname(dt)}")
    return "bitwise NumPy's same-dtype arithmetic (no contraction)"


# ---- Gibbs --------------------------------------------------------------------------------------
def _rbm(rng, nv, nh, dt, rows, lo=-3, hi=4):
    W = dyadic((nh, nv), rng, lo, hi, 8, dt)
    bv, bh = dyadic(nv, rng, -8, 9, 8, dt), dyadic(nh, rng, -8, 9, 8, dt)
    v0 = (rng.random((rows, nv)) < 0.3).astype(dt)
    return W, bv, bh, v0


def _gibbs_numpy_one_step(v, W, bv, bh, seed, first, dt, clamp=None):
    """One block-Gibbs step in float64 (exact dot products of dyadic values); returns states and
    the elements whose uniform lies within 1e-5 of its probability (where the rounding of the
    kernel's sigmoid may decide)."""
    n = v.shape[0]
    ph = sigmoid64(v.astype(np.float64) @ W.T.astype(np.float64) + bh)
    uh = uniforms(philox_words(ph.size, seed, first), dt).reshape(ph.shape).astype(np.float64)
    h = (uh < ph).astype(np.float64)
    pv = sigmoid64(h @ W.astype(np.float64) + bv)
    uv = uniforms(philox_words(pv.size, seed, first + 1), dt).reshape(pv.shape).astype(np.float64)
    out = (uv < pv).astype(dt)
    if clamp is not None:
        out[:, clamp.astype(bool)] = v[:, clamp.astype(bool)]
    near = (np.abs(uh - ph) < 1e-5).any(axis=1) | (np.abs(uv - pv) < 1e-5).any(axis=1)
    return out, near[:n]


@check("gibbs", "fused_vs_eager_vs_numpy", kernels=both("fg_gibbs_fused") + both("fg_bernoulli"))
def _gibbs_fused():
    G = native("cuda_gibbs")
    rng = np.random.default_rng(4)
    notes = []
    for dt, nv, nh in ((np.float32, 37, 21), (np.float64, 29, 13)):
        W, bv, bh, v0 = _rbm(rng, nv, nh, dt, 67)
        clamp = (np.arange(nv) % 5 == 0).astype(np.uint8)
        args = (cpa(W), cpa(bv), cpa(bh))
        ref, fused = cpa(v0), cpa(v0)
        assert G.gibbs(ref, *args, 3, seed=1, first=10, clamp=cpa(clamp), method="eager") == "eager"
        assert G.gibbs(fused, *args, 3, seed=1, first=10, clamp=cpa(clamp), method="fused") == "fused"
        equal(fused.get(), ref.get(), f"fused vs eager {dname(dt)} (exact dyadic sums)")
        one = cpa(v0)
        G.gibbs(one, *args, 1, seed=1, first=10, clamp=cpa(clamp), method="eager")
        want, near = _gibbs_numpy_one_step(v0, W, bv, bh, 1, 10, dt, clamp)
        got = one.get()
        bad = (got != want).any(axis=1) & ~near
        if bad.any():
            raise AssertionError(f"one eager step {dname(dt)}: {int(bad.sum())} chains differ from NumPy "
                                 f"(away from sigmoid rounding)")
        notes.append(f"{dname(dt)}: {int(near.sum())} of {len(near)} chains near a rounding edge")
    return "; ".join(notes)


@check("gibbs", "fused_large_dynamic_shared_memory", kernels=both("fg_gibbs_fused"))
def _gibbs_large_smem():
    G = native("cuda_gibbs")
    rt = native("cuda_runtime")
    rng = np.random.default_rng(5)
    optin = rt.shared_memory_optin(rt.current_device())
    notes = []
    for dt, nv, nh in ((np.float32, 784, 32), (np.float64, 201, 40)):
        shared = G.fused_gibbs_shared_bytes(nv, nh, dt)
        assert shared > 48 * 1024, shared
        if shared > optin:
            return "SKIP", f"{shared} B > the device's opt-in {optin} B"
        W, bv, bh, v0 = _rbm(rng, nv, nh, dt, 45)
        args = (cpa(W), cpa(bv), cpa(bh))
        ref, out = cpa(v0), cpa(v0)
        G.gibbs(ref, *args, 2, seed=4, first=0, method="eager")
        assert G.gibbs(out, *args, 2, seed=4, first=0, method="fused") == "fused"
        equal(out.get(), ref.get(), f"fused ({shared} B of shared memory) vs eager {dname(dt)}")
        notes.append(f"{dname(dt)} {nh}x{nv}: {shared} B")
    return f"opt-in {optin} B; " + "; ".join(notes)


# ---- CUDA graphs --------------------------------------------------------------------------------
@check("graph", "run_recorded_gemm_then_kernel", kernels=("fg_set_stream", "fg_bernoulli_f32"))
def _graph_gemm():
    import cupy as cp

    G = native("graphs")
    rt = native("cuda_runtime")
    S = native("cuda_sampling")
    rng = np.random.default_rng(6)
    a, w = cpa(dyadic((19, 23), rng)), cpa(dyadic((17, 23), rng))
    bias = cpa(dyadic(17, rng))
    h = cp.empty((19, 17), cp.float32)
    states = cp.empty((19, 17), cp.float32)

    def body(rng_buf, base):
        rt.gemm("N", "T", a, w, h)
        S.bernoulli(h, bias, h, states, seed=21, offset=base + 3, rng=rng_buf)

    def eager(first):
        rt.gemm("N", "T", a, w, h)
        S.bernoulli(h, bias, h, states, seed=21, offset=first + 3)
        sync()
        return h.get(), states.get()

    key = ("smoke-graph", id(body))
    methods, results = [], []
    for first in (5, 5, 9):
        h.fill(-1)
        states.fill(-1)
        methods.append(G.run_recorded(key, body, 21, first, keep=(a, w, bias, h, states)))
        sync()
        results.append((h.get(), states.get()))
    for (hg, sg), first, m in zip(results, (5, 5, 9), methods):
        he, se = eager(first)
        equal(hg, he, f"probs of the {m} call (first={first})")
        equal(sg, se, f"states of the {m} call (first={first})")
    if methods != ["eager", "graph", "graph"]:
        failed = [getattr(r, "failed", None) for r in getattr(G, "_GRAPHS", {}).values()]
        raise AssertionError(f"methods {methods}, expected eager, graph, graph: capture failed "
                             f"({[f for f in failed if f][:1]}); results still equal eager")
    return f"methods {methods}, results equal eager"


@check("graph", "gibbs_graph_replays_equal_eager", kernels=("fg_set_stream", "fg_bernoulli_f32"))
def _graph_gibbs():
    G = native("cuda_gibbs")
    rng = np.random.default_rng(7)
    W, bv, bh, v0 = _rbm(rng, 30, 20, np.float32, 64)
    args = (cpa(W), cpa(bv), cpa(bh))
    ref = cpa(v0)
    G.gibbs(ref, *args, 5, seed=1, first=10, method="eager")
    used = []
    for _ in range(3):
        out = cpa(v0)
        used.append(G.gibbs(out, *args, 5, seed=1, first=10, method="graph"))
        equal(out.get(), ref.get(), f"call {len(used)} ({used[-1]}) vs eager")
    if used != ["eager", "graph", "graph"]:
        raise AssertionError(f"methods {used}: no graph was replayed (results equal eager)")
    return f"methods {used}"


# ---- the CD/PCD epoch ---------------------------------------------------------------------------
@check("epoch", "graph_key_changes_with_shape", kernels=both("fg_bernoulli")[:1] + ("fg_set_stream",))
def _epoch():
    C = native("cuda_cd")
    G = native("graphs")
    rng = np.random.default_rng(8)
    nv, nh = 40, 24
    W0 = (rng.standard_normal((nh, nv)) * 0.1).astype(np.float32)
    bv0, bh0 = np.zeros(nv, np.float32), np.zeros(nh, np.float32)
    ch0 = (rng.random((50, nh)) < 0.5).astype(np.float32)
    X = cpa((rng.random((2000, nv)) < 0.4).astype(np.float32))
    P = [cpa(a) for a in (W0, bv0, bh0, ch0)]

    def run(rows):
        for dst, src in zip(P, (W0, bv0, bh0, ch0)):
            dst[...] = cpa(src)
        used = C.train_epoch(P[0], P[1], P[2], X[:rows], batch_size=50, cd_k=1, lr=0.05, momentum=0.0,
                             weight_decay=0.001, chains=P[3], seed=3, first=100)
        sync()
        return used, [a.get() for a in P]

    methods, got = [], {}
    for rows in (1000, 1000, 2000, 2000):
        m, r = run(rows)
        methods.append(f"{rows}:{m}")
        got.setdefault(rows, []).append(r)
    old = os.environ.get("FASTGEN_NO_CUDA_GRAPHS")
    os.environ["FASTGEN_NO_CUDA_GRAPHS"] = "1"
    try:
        want = {rows: run(rows)[1] for rows in (1000, 2000)}
    finally:
        if old is None:
            del os.environ["FASTGEN_NO_CUDA_GRAPHS"]
        else:
            os.environ["FASTGEN_NO_CUDA_GRAPHS"] = old
    G.clear_graphs()
    for rows, runs in got.items():
        for i, r in enumerate(runs):
            err = max(float(np.max(np.abs(a - b))) for a, b in zip(r, want[rows]))
            if err > 0:
                raise AssertionError(f"X[:{rows}] run {i + 1} differs from the eager epoch by {err:.3g} "
                                     f"(methods {methods}): a graph of another shape replayed?")
    if "graph" not in " ".join(methods):
        return "FAIL", f"methods {methods}: results equal eager but no graph was replayed"
    return f"methods {methods}; every run bitwise the eager epoch"


# ---- ELBO terms ---------------------------------------------------------------------------------
@check("elbo", "likelihood_sums_and_backward",
       kernels=both("fg_bernoulli_ll") + both("fg_gaussian_ll") + both("fg_bernoulli_ll_backward")
       + both("fg_gaussian_ll_backward") + both("fg_gaussian_ll_backward_logvar"))
def _elbo():
    import cupy as cp

    E = native("cuda_elbo")
    rng = np.random.default_rng(9)
    for dt in DTYPES:
        tol = 20 * TOL[dt]
        for rows, cols in ((67, 21), (13, 785), (5, 3001)):  # 32, 128 and 256 threads per row
            x = (rng.random((rows, cols)) < 0.4).astype(dt)
            lg = rng.uniform(-6, 6, (rows, cols)).astype(dt)
            x64, l64 = x.astype(np.float64), lg.astype(np.float64)
            out = cp.empty(rows, dt)
            E.bernoulli_log_likelihood(cpa(x), cpa(lg), out)
            close(out.get(), (x64 * l64 - softplus64(l64)).sum(1), tol, f"bernoulli ll {dname(dt)} cols={cols}")
            for mode, lv in (("none", None), ("per-feature", rng.uniform(-1, 1, cols).astype(dt)),
                             ("full", rng.uniform(-1, 1, (rows, cols)).astype(dt))):
                v64 = np.zeros((rows, cols)) if lv is None else np.broadcast_to(lv.astype(np.float64), (rows, cols))
                E.gaussian_log_likelihood(cpa(x), cpa(lg), None if lv is None else cpa(lv), out)
                want = (-0.5 * (np.log(2 * np.pi) + v64 + (x64 - l64) ** 2 * np.exp(-v64))).sum(1)
                close(out.get(), want, tol, f"gaussian ll {dname(dt)} cols={cols} logvar {mode}")
        rows, cols = 37, 29
        x = rng.random((rows, cols)).astype(dt)
        lg = rng.uniform(-5, 5, (rows, cols)).astype(dt)
        g = rng.standard_normal(rows).astype(dt)
        x64, l64, g64 = x.astype(np.float64), lg.astype(np.float64), g.astype(np.float64)[:, None]
        gl, gx = cp.empty((rows, cols), dt), cp.empty((rows, cols), dt)
        E.bernoulli_log_likelihood_backward(cpa(g), cpa(x), cpa(lg), gl, gx)
        close(gl.get(), g64 * (x64 - sigmoid64(l64)), tol, f"bernoulli backward d/dlogits {dname(dt)}")
        close(gx.get(), g64 * l64, tol, f"bernoulli backward d/dx {dname(dt)}")
        lv = rng.uniform(-1, 1, cols).astype(dt)
        v64 = lv.astype(np.float64)
        gm, glv, gx = cp.empty((rows, cols), dt), cp.empty(cols, dt), cp.empty((rows, cols), dt)
        E.gaussian_log_likelihood_backward(cpa(g), cpa(x), cpa(lg), cpa(lv), gm, glv, gx)
        d = x64 - l64
        close(gm.get(), g64 * d * np.exp(-v64), tol, f"gaussian backward d/dmean {dname(dt)}")
        close(gx.get(), -g64 * d * np.exp(-v64), tol, f"gaussian backward d/dx {dname(dt)}")
        close(glv.get(), (g64 * 0.5 * (d * d * np.exp(-v64) - 1)).sum(0), tol, f"gaussian backward d/dlogvar {dname(dt)}")


# ---- reparameterisation -------------------------------------------------------------------------
@check("reparam", "forward_kl_backward", kernels=both("fg_reparam_forward") + both("fg_reparam_backward"))
def _reparam():
    import cupy as cp

    R = native("cuda_reparam")
    rng = np.random.default_rng(10)
    for dt in DTYPES:
        tol = 20 * TOL[dt]
        rows, cols, first_row = 129, 21, 3
        big_mu = rng.standard_normal((rows, cols + 4)).astype(dt)
        lv = rng.uniform(-2, 2, (rows, cols)).astype(dt)
        z, kl = cp.empty((rows, cols), dt), cp.empty(rows, dt)
        R.reparameterize(cpa(big_mu)[:, :cols], cpa(lv), z, kl, seed=5, offset=6, first_row=first_row)
        mu64, lv64 = big_mu[:, :cols].astype(np.float64), lv.astype(np.float64)
        eps = normals(rows * cols, 5, 6, dt, first=first_row * cols).reshape(rows, cols)
        sigma = np.exp(lv64 / 2)
        close(z.get(), mu64 + sigma * eps, tol, f"z {dname(dt)}")
        close(kl.get(), (0.5 * (mu64 ** 2 + sigma ** 2 - 1 - lv64)).sum(1), tol, f"kl {dname(dt)}")
        gz, gk = rng.standard_normal((rows, cols)).astype(dt), rng.standard_normal(rows).astype(dt)
        gmu, glv = cp.empty((rows, cols), dt), cp.empty((rows, cols), dt)
        mu = np.ascontiguousarray(big_mu[:, :cols])
        R.reparameterize_backward(cpa(gz), cpa(gk), cpa(mu), cpa(lv), gmu, glv, seed=5, offset=6, first_row=first_row)
        gk64 = gk.astype(np.float64)[:, None]
        close(gmu.get(), gz + gk64 * mu64, tol, f"d/dmu {dname(dt)}")
        close(glv.get(), 0.5 * (gz * eps * sigma + gk64 * (sigma ** 2 - 1)), tol, f"d/dlogvar {dname(dt)}")


# ---- pooling ------------------------------------------------------------------------------------
def _max_pool_numpy(x, k, s, p):
    n, c, h, w = x.shape
    oh, ow = (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1
    out = np.empty((n, c, oh, ow), x.dtype)
    idx = np.empty((n, c, oh, ow), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * s[0] - p[0], ox * s[1] - p[1]
            ys, xs = range(max(y0, 0), min(y0 + k[0], h)), range(max(x0, 0), min(x0 + k[1], w))
            flat = [(yy * w + xx) for yy in ys for xx in xs]
            vals = x.reshape(n, c, h * w)[:, :, flat]
            j = vals.argmax(-1)  # first maximum wins
            out[:, :, oy, ox] = np.take_along_axis(vals, j[..., None], -1)[..., 0]
            idx[:, :, oy, ox] = np.asarray(flat)[j]
    return out, idx


@check("pool", "max_pool_scatter_gather_avg_unpool",
       kernels=both("fg_max_pool2d") + both("fg_scatter_assign") + both("fg_scatter_add") + both("fg_gather_planes")
       + both("fg_avg_unpool2d") + both("fg_avg_unpool2d_backward"))
def _pool():
    import cupy as cp

    P = native("cuda_pool")
    rng = np.random.default_rng(11)
    for dt in DTYPES:
        n, c, h, w = 3, 5, 11, 9
        k, s, p = (3, 2), (2, 2), (1, 0)
        x = rng.integers(-3, 4, (n, c, h, w)).astype(dt)  # ties: the first maximum must win
        want, want_idx = _max_pool_numpy(x, k, s, p)
        out, idx = cp.empty(want.shape, dt), cp.empty(want.shape, cp.int64)
        P.max_pool2d(cpa(x), out, idx, k, s, p)
        equal(out.get(), want, f"max_pool2d {dname(dt)}")
        equal(idx.get(), want_idx, f"max_pool2d indices {dname(dt)}")
        g = rng.standard_normal(want.shape).astype(dt)
        dst = cp.empty((n, c, h, w), dt)
        P.scatter_planes(cpa(g), idx, dst, accumulate=True)
        ref = np.zeros((n * c, h * w), dt)
        for pl in range(n * c):
            for j, v in zip(want_idx.reshape(n * c, -1)[pl], g.reshape(n * c, -1)[pl]):
                ref[pl, j] += v  # the CPU's serial order
        equal(dst.get(), ref.reshape(n, c, h, w), f"scatter_add (max pool backward) {dname(dt)}")
        # scatter_assign: unique indices (a plain 2x2 pooling's argmax)
        x2 = rng.standard_normal((n, c, 10, 8)).astype(dt)
        m2, i2 = _max_pool_numpy(x2, (2, 2), (2, 2), (0, 0))
        dst = cp.empty((n, c, 10, 8), dt)
        P.scatter_planes(cpa(m2), cpa(i2), dst, accumulate=False)
        ref = np.zeros((n * c, 80), dt)
        np.put_along_axis(ref, i2.reshape(n * c, -1), m2.reshape(n * c, -1), -1)
        equal(dst.get(), ref.reshape(n, c, 10, 8), f"scatter_assign (max unpool) {dname(dt)}")
        gat = cp.empty(m2.shape, dt)
        P.gather_planes(cpa(x2), cpa(i2), gat)
        equal(gat.get(), m2, f"gather_planes {dname(dt)}")
        small = rng.standard_normal((n, c, 4, 3)).astype(dt)
        up = cp.empty((n, c, 8, 9), dt)
        P.avg_unpool2d(cpa(small), up, (2, 3))
        equal(up.get(), np.repeat(np.repeat(small, 2, 2), 3, 3), f"avg_unpool2d (each value fills its block) {dname(dt)}")
        back = cp.empty((n, c, 4, 3), dt)
        gu = rng.standard_normal((n, c, 8, 9)).astype(dt)
        P.avg_unpool2d(cpa(gu), back, (2, 3), backward=True)
        blocks = gu.reshape(n, c, 4, 2, 3, 3)
        sums = np.zeros((n, c, 4, 3), dt)
        for r in range(2):
            for q in range(3):
                sums = (sums + blocks[:, :, :, r, :, q]).astype(dt)  # the kernel's (row, column) order
        equal(back.get(), sums, f"avg_unpool2d backward (block sums) {dname(dt)}")


# ---- transposed convolution ---------------------------------------------------------------------
def _conv_t_numpy(x, wt, b, s, p):
    n, ci, h, w = x.shape
    co, k = wt.shape[1], wt.shape[2]
    full = np.zeros((n, co, (h - 1) * s + k, (w - 1) * s + k))
    for iy in range(h):
        for ix in range(w):
            full[:, :, iy * s:iy * s + k, ix * s:ix * s + k] += np.einsum("nc,cokl->nokl", x[:, :, iy, ix], wt)
    oh, ow = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
    return full[:, :, p:p + oh, p:p + ow] + (0 if b is None else b[None, :, None, None])


ACTS = {0: lambda y: y, 1: lambda y: np.maximum(y, 0), 2: lambda y: np.where(y > 0, y, 0.2 * y), 3: np.tanh,
        4: sigmoid64}
DACTS = {1: lambda y: (y > 0) * 1.0, 2: lambda y: np.where(y > 0, 1.0, 0.2), 3: lambda y: 1 - y * y,
         4: lambda y: y * (1 - y)}


@check("conv", "transpose2d_output_im2col_activation_backward",
       kernels=both("fg_conv_transpose2d_output") + both("fg_conv_transpose2d_im2col") + both("fg_activation_backward"))
def _conv():
    import cupy as cp

    V = native("cuda_conv")
    rng = np.random.default_rng(12)
    for dt in DTYPES:
        tol = 50 * TOL[dt]
        n, ci, h, w, co, k, s, p = 2, 3, 5, 4, 4, 3, 2, 1
        oh, ow = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
        geom = (n, ci, h, w, co, oh, ow, k, k, s, s, p, p)
        x, wt, b = (rng.standard_normal(sh).astype(dt) for sh in ((n, ci, h, w), (ci, co, k, k), (co,)))
        lin = _conv_t_numpy(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), s, p)
        for act, f in ACTS.items():
            got = V.conv_transpose2d(cpa(x), cpa(wt), cpa(b), geom, act, 0.2)
            close(got.get(), f(lin), tol, f"forward activation {act} {dname(dt)}")
        # exact output pass: dyadic cols, sums exact
        cols = dyadic((co * k * k, n * h * w), rng, dtype=dt)
        out = cp.empty((n, co, oh, ow), dt)
        V.conv_transpose2d_output(cpa(cols), None, out, geom, 0, 0.0)
        c6 = cols.astype(np.float64).reshape(co, k, k, n, h, w)
        want = np.zeros((n, co, (h - 1) * s + k, (w - 1) * s + k))
        for iy in range(h):
            for ix in range(w):
                want[:, :, iy * s:iy * s + k, ix * s:ix * s + k] += c6[:, :, :, :, iy, ix].transpose(3, 0, 1, 2)
        equal(out.get(), want[:, :, p:p + oh, p:p + ow].astype(dt), f"output pass (exact) {dname(dt)}")
        # im2col: the adjoint of the output pass (without bias / activation)
        g = rng.standard_normal((n, co, oh, ow)).astype(dt)
        cg = cp.empty((co * k * k, n * h * w), dt)
        V.conv_transpose2d_im2col(cpa(g), cg, geom)
        gp = np.zeros((n, co, (h - 1) * s + k, (w - 1) * s + k), dt)
        gp[:, :, p:p + oh, p:p + ow] = g
        ref = np.empty((co, k, k, n, h, w), dt)
        for iy in range(h):
            for ix in range(w):
                ref[:, :, :, :, iy, ix] = gp[:, :, iy * s:iy * s + k, ix * s:ix * s + k].transpose(1, 2, 3, 0)
        equal(cg.get(), ref.reshape(co * k * k, n * h * w), f"im2col {dname(dt)}")
        # activation backward from the output y
        for act, d in DACTS.items():
            y = ACTS[act](rng.standard_normal(301)).astype(dt)
            go = rng.standard_normal(301).astype(dt)
            gi = cp.empty(301, dt)
            V.activation_backward(cpa(go), cpa(y), gi, act, 0.2)
            close(gi.get(), go * d(y.astype(np.float64)), 4 * TOL[dt], f"activation {act} backward {dname(dt)}")
        # the whole backward (no activation): dot-product (adjoint) test
        gx, gw, gb = V.conv_transpose2d_backward(cpa(g), None, cpa(x), cpa(wt), geom, 0, 0.0)
        lin0 = lin - b[None, :, None, None]
        g64 = g.astype(np.float64)
        close(float(np.sum(x * gx.get(), dtype=np.float64)), float(np.sum(lin0 * g64)), tol, f"<x, grad_x> {dname(dt)}")
        close(float(np.sum(wt * gw.get(), dtype=np.float64)), float(np.sum(lin0 * g64)), tol, f"<w, grad_w> {dname(dt)}")
        close(gb.get(), g64.sum((0, 2, 3)), tol, f"grad_bias {dname(dt)}")


# ---- categorical --------------------------------------------------------------------------------
@check("categorical", "top1_topk_and_frequencies", kernels=both("fg_sample_categorical"))
def _categorical():
    import cupy as cp

    C = native("cuda_categorical")
    rng = np.random.default_rng(13)
    notes = []
    for dt in DTYPES:
        big = rng.standard_normal((1001, 41)).astype(dt)
        logits = cpa(big)[:, :37]  # strided rows
        out = cp.empty(1001, cp.int64)
        C.sample_categorical(logits, out, temperature=1.0, top_k=1, seed=1, offset=2)
        equal(out.get(), big[:, :37].argmax(1), f"top_k=1 is argmax {dname(dt)}")
        C.sample_categorical(logits, out, temperature=0.7, top_k=5, seed=1, offset=3)
        top5 = np.argsort(-big[:, :37], 1)[:, :5]
        inside = (top5 == out.get()[:, None]).any(1)
        if not inside.all():
            raise AssertionError(f"top_k=5 {dname(dt)}: {int((~inside).sum())} draws outside the top 5")
        rows, T = 20000, 1.5
        row = np.array([0.5, -1.0, 2.0, 0.0, 1.0, -0.5, 0.3], dt)
        same = cpa(np.tile(row, (rows, 1)))
        out = cp.empty(rows, cp.int64)
        C.sample_categorical(same, out, temperature=T, top_k=0, seed=7, offset=1)
        freq = np.bincount(out.get(), minlength=7) / rows
        pr = np.exp(row / T) / np.exp(row / T).sum()
        z = np.abs(freq - pr) / np.sqrt(pr * (1 - pr) / rows)
        if z.max() > 5:
            raise AssertionError(f"frequencies {dname(dt)} {np.round(freq, 4)} vs softmax {np.round(pr, 4)} (z {z.max():.1f})")
        notes.append(f"{dname(dt)} max z {z.max():.2f}")
    return "; ".join(notes)


# ---- flush to zero ------------------------------------------------------------------------------
@check("ftz", "float32_left_tail_not_flushed", kernels=("fg_bernoulli_f32", "fg_bernoulli_ll_f32"))
def _ftz_values():
    import cupy as cp

    S = native("cuda_sampling")
    E = native("cuda_elbo")
    x = np.linspace(-104, -88, 33).astype(np.float32)
    probs = cp.empty((1, 33), cp.float32)
    S.bernoulli(cpa(x[None, :]), None, probs, None)
    want = np.array([sigmoid_f32_left_tail(v) for v in x], np.float32)
    with np.errstate(over="ignore"):  # exp(104) overflows to inf in float32: that is the point of `naive`
        naive = (np.float32(1) / (np.float32(1) + np.exp(-x.astype(np.float32)))).astype(np.float32)
    equal(probs.get()[0], want, "sigmoid f32 of logits in [-104, -88] (fastgen's floor exp(-87))")
    assert (probs.get() > 0).all(), "a probability is 0"
    out = cp.empty(33, cp.float32)
    E.bernoulli_log_likelihood(cp.zeros((33, 1), cp.float32), cpa(x[:, None]), out)
    want_ll = np.array([-softplus_f32_left_tail(v) for v in x], np.float32)
    got = out.get()
    if (got == 0).any():
        raise AssertionError(f"-softplus f32 of logits in [-104, -88] is 0 on {int((got == 0).sum())} of 33: a "
                             "subnormal intermediate was flushed (compiled with -ftz=true?)")
    equal(got, want_ll, "-softplus f32 of logits in [-104, -88]")
    return (f"sigmoid {want[0]!r} (NumPy's own float32 1/(1+e^-x): {naive[0]!r} .. {naive[-1]!r}, subnormal or 0; "
            f"fastgen floors at exp(-87)); -softplus {got[0]!r}")


@check("ftz", "float32_sass_has_no_ftz")
def _ftz_sass():
    rt = native("cuda_runtime")
    tool = shutil.which("cuobjdump")
    if tool is None:
        return "SKIP", "cuobjdump is not on PATH"
    if not hasattr(rt, "nvrtc_compile") or not hasattr(rt, "kernel_source"):
        return "SKIP", "fastgen._native.cuda_runtime has no nvrtc_compile/kernel_source (compiled through CuPy)"
    import cupy as cp

    major, minor = cp.cuda.Device().compute_capability[0], cp.cuda.Device().compute_capability[1:]
    arch = f"sm_{major}{minor}"
    counts, bad = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted((ROOT / "kernels").glob("*.cu")):
            if not kernel_entry_points_of(path):
                continue
            cubin = rt.nvrtc_compile(rt.kernel_source(path.stem), path.name, arch)
            f = Path(tmp) / f"{path.stem}.cubin"
            f.write_bytes(cubin)
            listing = subprocess.run([tool, "-sass", str(f)], capture_output=True, text=True, timeout=60)
            if listing.returncode != 0:  # a cubin cuobjdump cannot read proves nothing about .FTZ
                raise AssertionError(f"cuobjdump failed on {path.stem}.cubin: {listing.stderr.strip()[:300]}")
            fn, functions = None, 0
            for line in listing.stdout.splitlines():
                m = re.search(r"Function : (\S+)", line)
                if m:
                    fn, functions = m.group(1), functions + 1
                elif fn and ".FTZ" in line:
                    counts[fn] = counts.get(fn, 0) + 1
            if functions == 0:
                raise AssertionError(f"cuobjdump listed no function in {path.stem}.cubin")
    bad = {k: v for k, v in counts.items() if k.endswith("_f32")}
    if bad:
        raise AssertionError(f"float32 kernels with .FTZ instructions (arch {arch}): {bad}")
    return f"no .FTZ instruction in any f32 kernel ({arch}); others: {counts or 'none'}"


# ---- coverage (every entry point launched) ------------------------------------------------------
LAUNCHED: set = set()


def _track_launches():
    """Record the name of every kernel launched, by wrapping ``launch`` in each launcher module."""
    import importlib

    mods = ["cuda_runtime", "graphs"] + sorted(p.stem for p in (ROOT / "fastgen" / "_native").glob("cuda_*.py"))
    for m in mods:
        try:
            mod = importlib.import_module(f"fastgen._native.{m}")
        except Exception:  # noqa: BLE001 - a module that does not import fails its own checks
            continue
        orig = getattr(mod, "launch", None)
        if orig is None or getattr(orig, "_smoke_wrapped", False):
            continue

        def wrapped(module, name, *a, _orig=orig, **k):
            LAUNCHED.add(name)
            return _orig(module, name, *a, **k)

        wrapped._smoke_wrapped = True
        mod.launch = wrapped


@check("coverage", "every_entry_point_launched")
def _coverage():
    entries = kernel_entry_points()
    missing = sorted(entries - LAUNCHED)
    if missing:
        return "FAIL", f"never launched in this process: {missing} (launched {len(LAUNCHED & entries)} of {len(entries)})"
    return f"all {len(entries)} entry points launched"


# ---- through fastgen.ops (needs fastgen._C) -----------------------------------------------------
@check("interop", "torch_tensor_on_torch_current_stream", needs_ops=True)
def _torch():
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        return "SKIP", f"torch does not import ({type(exc).__name__})"
    if not torch.cuda.is_available():
        return "SKIP", "torch has no CUDA device"
    import cupy as cp

    import fastgen
    from fastgen import ops

    rng = np.random.default_rng(14)
    W, bv, bh, v0 = _rbm(rng, 23, 11, np.float32, 31)
    side = torch.cuda.Stream()
    tv = torch.from_numpy(v0).cuda()
    tW, tbv, tbh = (torch.from_numpy(a).cuda() for a in (W, bv, bh))
    torch.cuda.synchronize()
    with torch.cuda.stream(side):
        out = ops.gibbs(tv, tW, tbv, tbh, 3, generator=fastgen.Generator(5), method="eager")
        # queued on `side` right after the op: a consumer ordered on torch's stream sees the result
        doubled = out * 2
    side.synchronize()
    assert isinstance(out, torch.Tensor) and out.is_cuda, f"returned {type(out)}"
    ref = ops.gibbs(cpa(v0), cpa(W), cpa(bv), cpa(bh), 3, generator=fastgen.Generator(5), method="eager")
    sync()
    equal(out.cpu().numpy(), cp.asnumpy(ref), "torch CUDA result vs CuPy result")
    equal(doubled.cpu().numpy(), 2 * cp.asnumpy(ref), "a consumer on torch's side stream")
    with torch.cuda.stream(side):
        p = ops.sample_bernoulli(torch.full((3, 5), -100.0, device="cuda"), output="probs")
    side.synchronize()
    assert (p.cpu().numpy() > 0).all(), "sample_bernoulli probs flushed to 0"
    return f"torch {torch.__version__}: gibbs and sample_bernoulli on a side stream equal the CuPy path"


@check("timing", "ops_gibbs_validation_overhead", needs_ops=True)
def _timing():
    import fastgen
    from fastgen import ops

    G = native("cuda_gibbs")
    rng = np.random.default_rng(15)
    W, bv, bh, v0 = _rbm(rng, 20, 8, np.float32, 16)
    v, Wc, bvc, bhc = cpa(v0), cpa(W), cpa(bv), cpa(bh)

    def median(fn, reps=50):
        for _ in range(3):
            fn()
        sync()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            sync()
            ts.append(time.perf_counter() - t)
        return float(np.median(ts))

    gen = fastgen.Generator(1)
    t_ops = median(lambda: ops.gibbs(v, Wc, bvc, bhc, 1, generator=gen, method="eager"))
    out = v.copy()
    t_raw = median(lambda: G.gibbs(out, Wc, bvc, bhc, 1, seed=1, first=0, method="eager"))
    return "INFO", (f"fastgen.ops.gibbs {t_ops * 1e6:.0f} us vs the launcher {t_raw * 1e6:.0f} us (median of 50, "
                    f"16x20 RBM, 1 step): validation and wrapping add {(t_ops - t_raw) * 1e6:.0f} us")


# ---- running ------------------------------------------------------------------------------------
class Recorder:
    def __init__(self, out: Path, append: bool):
        self.out = out
        self.jsonl = out / "smoke.jsonl"
        if not append and self.jsonl.exists():
            self.jsonl.unlink()
        self.rows = []

    def record(self, group, name, status, detail="", seconds=0.0):
        row = {"group": group, "check": name, "status": status, "detail": str(detail)[:3000],
               "seconds": round(seconds, 3)}
        self.rows.append(row)
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"[{status:5}] {group}/{name} ({seconds:.2f} s) {str(detail)[:400]}", flush=True)

    def summary(self, extra):
        rows = []
        if self.jsonl.exists():
            rows = [json.loads(line) for line in self.jsonl.read_text().splitlines() if line.strip()]
        counts = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        doc = {"counts": counts, "results": rows, **extra}
        (self.out / "smoke_summary.json").write_text(json.dumps(doc, indent=1))
        print(f"smoke: {counts}", flush=True)
        return counts


def gpu_reason():
    """None when CuPy sees a CUDA device, else why not."""
    if os.environ.get("DRY_RUN", "0") not in ("", "0"):
        return "DRY_RUN=1"
    try:
        import cupy
    except Exception as exc:  # noqa: BLE001
        return f"CuPy does not import ({type(exc).__name__}: {exc})"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001
        return f"no CUDA device ({type(exc).__name__}: {exc})"
    return None if n > 0 else "no CUDA device"


def environment(reason):
    info = {"python": sys.version.split()[0], "numpy": np.__version__, "gpu_reason": reason}
    for mod in ("cupy", "torch", "scipy", "numba"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", "?")
        except Exception as exc:  # noqa: BLE001
            info[mod] = f"missing ({type(exc).__name__})"
    try:
        import fastgen._C  # noqa: F401

        info["fastgen._C"] = "importable"
    except Exception as exc:  # noqa: BLE001
        info["fastgen._C"] = f"not importable ({type(exc).__name__})"
    if reason is None:
        import cupy as cp

        rt = cp.cuda.runtime
        info["driver"] = rt.driverGetVersion()
        info["runtime"] = rt.runtimeGetVersion()
        try:
            from cupy_backends.cuda.libs import nvrtc

            info["nvrtc"] = ".".join(map(str, nvrtc.getVersion()))
        except Exception as exc:  # noqa: BLE001
            info["nvrtc"] = f"unavailable ({exc})"
        props = rt.getDeviceProperties(cp.cuda.Device().id)
        for k in ("name", "major", "minor", "multiProcessorCount", "sharedMemPerBlockOptin", "l2CacheSize",
                  "totalGlobalMem", "clockRate", "memoryClockRate"):
            v = props.get(k)
            info[k] = v.decode() if isinstance(v, bytes) else v
        info["compute_capability"] = f"{info.get('major')}.{info.get('minor')}"
        try:
            import torch

            info["torch_cuda"] = torch.version.cuda
        except Exception:  # noqa: BLE001
            pass
        try:
            from fastgen._native import cuda_runtime

            info["fastgen_unavailable_reason"] = cuda_runtime.unavailable_reason()
        except Exception as exc:  # noqa: BLE001
            info["fastgen_unavailable_reason"] = f"{type(exc).__name__}: {exc}"
    return info


def selected(only):
    groups = [g for g in (only.split(",") if only else GROUPS_ORDER) if g]
    unknown = [g for g in groups if g not in GROUPS_ORDER]
    if unknown:
        raise SystemExit(f"unknown groups {unknown}; known: {','.join(GROUPS_ORDER)}")
    return [c for g in GROUPS_ORDER if g in groups for c in CHECKS if c.group == g]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="groups: " + ",".join(GROUPS_ORDER))
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/fastgen_gpu_smoke"))
    ap.add_argument("--only", default="", help="comma-separated groups (default: all)")
    ap.add_argument("--list", action="store_true", help="print the checks and the kernels each launches, then exit")
    ap.add_argument("--append", action="store_true", help="add to an existing smoke.jsonl (used after a sticky error)")
    ap.add_argument("--hang-timeout", type=float, default=0, help="dump every thread's stack and exit after S seconds")
    args = ap.parse_args(argv)
    checks = selected(args.only)
    if args.list:
        for c in checks:
            print(f"{c.group}/{c.name}: {', '.join(c.kernels) or '-'}")
        covered = {k for c in CHECKS for k in c.kernels}
        print(f"entry points covered: {len(covered & kernel_entry_points())} of {len(kernel_entry_points())}")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.hang_timeout > 0:
        faulthandler.dump_traceback_later(args.hang_timeout, exit=True)
    rec = Recorder(out, args.append)
    reason = gpu_reason()
    env = environment(reason)
    (out / "env.json").write_text(json.dumps(env, indent=1, default=str))
    if reason is None:
        print(f"device: {env.get('name')} (sm_{env.get('major')}{env.get('minor')}), driver {env.get('driver')}, "
              f"runtime {env.get('runtime')}, NVRTC {env.get('nvrtc')}, CuPy {env.get('cupy')}", flush=True)
    else:
        print(f"no GPU: {reason}", flush=True)
    has_ops = env.get("fastgen._C") == "importable"
    if reason is None:
        _track_launches()
    for i, c in enumerate(checks):
        if reason is not None:
            rec.record(c.group, c.name, "SKIP", f"skipped: {reason}")
            continue
        if c.needs_ops and not has_ops:
            rec.record(c.group, c.name, "SKIP", f"skipped: fastgen._C is {env.get('fastgen._C')} (build first)")
            continue
        if c.group == "coverage" and not {x.group for x in CHECKS if x.kernels} <= {x.group for x in checks}:
            rec.record(c.group, c.name, "SKIP", "skipped: not every kernel group ran in this process")
            continue
        t = time.perf_counter()
        try:
            detail = c.fn()
            sync()
            status = "PASS"
            if isinstance(detail, tuple):
                status, detail = detail
            rec.record(c.group, c.name, status, detail or "", time.perf_counter() - t)
        except Exception as exc:  # noqa: BLE001 - every failure is a result
            text = f"{type(exc).__name__}: {exc}"
            rec.record(c.group, c.name, "FAIL" if isinstance(exc, AssertionError) else "ERROR",
                       text + "\n" + traceback.format_exc(limit=-4), time.perf_counter() - t)
            if any(s in text for s in STICKY):
                rest = [g for g in dict.fromkeys(x.group for x in checks[i + 1:]) if g != c.group]
                rec.record("env", "sticky_error", "ERROR", f"sticky CUDA error in {c.group}/{c.name}; "
                           f"re-running the groups left ({rest}) in a fresh process")
                if rest:
                    sys.stdout.flush()
                    os.execv(sys.executable, [sys.executable, str(Path(__file__).resolve()), "--out", str(out),
                                              "--append", "--only", ",".join(rest)]
                             + (["--hang-timeout", str(args.hang_timeout)] if args.hang_timeout else []))
                break
    counts = rec.summary({"env": env})
    return 1 if counts.get("FAIL") or counts.get("ERROR") else 0


if __name__ == "__main__":
    sys.exit(main())
