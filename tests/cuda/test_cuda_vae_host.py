"""The VAE / pooling / transposed-convolution kernels' per-thread code run on the CPU (no GPU):
tests/cuda/harness_vae.cu includes kernels/reparam.cu, elbo.cu, pool.cu and conv.cu and calls the
host+device functions each kernel thread calls, emulating the kernels' shuffle trees where
threads reduce together. Compared with fastgen._C bitwise wherever the CPU result is
bitwise-defined: reparameterised z and its backward (same Philox counters), max pooling values
and indices, scatter / gather / average unpooling, the transposed convolution's output pass and
im2col for the same cols, the activation backward, the per-feature log-variance gradient; and
the row reductions (KL, likelihoods) bitwise where every partial sum is exact, to 1e-12
otherwise. Also checks the parameter structs' byte layout against fastgen/_native/cuda_vae.py.

Not covered (the gpu tests are): launches, shuffles, shared memory, cuBLAS.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fastgen import _build
from fastgen._native import cpu as _cpu

REPO = Path(__file__).resolve().parents[2]
NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH (needed to build the host harness)")
C = None


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    global C
    C = _cpu.C
    exe = tmp_path_factory.mktemp("harness_vae") / "harness_vae"
    # host code only runs; -ffp-contract=off as for csrc/ so the shared formulas round alike
    options = [o for o in _build.nvrtc_options() if not o.startswith("-I")]
    cmd = [NVCC, *options, "-I", str(REPO / "kernels" / "include"), "-O2", "-Xcompiler", "-ffp-contract=off",
           "-gencode", "arch=compute_80,code=sm_80", str(REPO / "tests" / "cuda" / "harness_vae.cu"), "-o", str(exe)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return exe


def run(harness, tmp_path, op, dtype, inputs, ints, outputs):
    """Run one op; ``outputs`` = [(dtype, count), ...] splits the output file."""
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    if inputs:
        with open(src, "wb") as f:
            for a in inputs:
                f.write(np.ascontiguousarray(a).tobytes())
    args = [str(harness), op, np.dtype(dtype).name, str(src) if inputs else "-", str(dst), *map(str, ints)]
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    raw = dst.read_bytes()
    parts, at = [], 0
    for dt, count in outputs:
        dt = np.dtype(dt)
        parts.append(np.frombuffer(raw, dt, count, at).copy())
        at += dt.itemsize * count
    assert at == len(raw), (at, len(raw))
    return parts


def test_struct_layouts_match_the_python_dtypes(harness):
    from fastgen._native import cuda_vae as _cuda_vae

    lines = subprocess.run([str(harness), "layout"], capture_output=True, text=True, check=True).stdout.split("\n")
    cpp = dict(line.rsplit(" ", 1) for line in lines if line)
    stream = {f"stream_{k}": int(cpp[f"StreamParams.{k}"]) for k in ("rng", "seed", "offset")}
    assert set(_cuda_vae.DTYPES) == {k for k in cpp if "." not in k} - {"StreamParams"}
    for struct, dtype in _cuda_vae.DTYPES.items():
        assert dtype.itemsize == int(cpp[struct]), struct
        for field in dtype.names:
            want = (int(cpp[f"{struct}.stream"]) + stream[field]) if field.startswith("stream_") \
                else int(cpp[f"{struct}.{field}"])
            assert dtype.fields[field][1] == want, (struct, field)


# ---- reparameterisation ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 20), (4, 130)])
@pytest.mark.parametrize("first_row", [0, 3])
def test_reparam_z_and_backward_are_the_cpus_bitwise(harness, tmp_path, dtype, shape, first_row):
    # cols not a multiple of 4: rows start mid Philox block (the boundary block is shared); a
    # first_row > 0 (a data-parallel rank's share) starts the array mid-block too
    rows, cols = shape
    rng = np.random.default_rng(rows * 1000 + cols)
    mu = rng.standard_normal(shape).astype(dtype)
    lv = (rng.standard_normal(shape) * 2).astype(dtype)
    seed, offset = 2**63 + 11, 2**33 + 5
    z, kl = run(harness, tmp_path, "reparam", dtype, [mu, lv], [rows, cols, seed, offset, first_row],
                [(dtype, rows * cols), (dtype, rows)])
    want_z, want_kl = np.empty_like(mu), np.empty(rows, dtype)
    C.reparameterize_forward(mu, lv, want_z, want_kl, seed, offset, first_row)
    np.testing.assert_array_equal(z.reshape(shape), want_z)
    # the KL terms are summed in another order than the CPU's vectorised loop
    np.testing.assert_allclose(kl, want_kl, rtol=1e-5 if dtype == np.float32 else 1e-12)
    gz = rng.standard_normal(shape).astype(dtype)
    gk = rng.standard_normal(rows).astype(dtype)
    for use_gz, use_gk in ((1, 1), (1, 0), (0, 1)):
        dmu, dlv = run(harness, tmp_path, "reparam_backward", dtype, [gz, gk, mu, lv],
                       [rows, cols, seed, offset, use_gz, use_gk, first_row], [(dtype, rows * cols)] * 2)
        want_mu, want_lv = np.empty_like(mu), np.empty_like(mu)
        C.reparameterize_backward(gz if use_gz else None, gk if use_gk else None, mu, lv, want_mu, want_lv, seed,
                                  offset, first_row)
        np.testing.assert_array_equal(dmu.reshape(shape), want_mu)
        np.testing.assert_array_equal(dlv.reshape(shape), want_lv)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reparam_kl_is_the_cpus_bitwise_when_the_sums_are_exact(harness, tmp_path, dtype):
    # logvar 0 (sigma = 1 exactly) and mu in multiples of 1/4: each term mu^2 / 2 is exact and so
    # is every partial sum, in any order; a wrong row split or a lost lane changes the sum.
    rows, cols = 9, 77
    rng = np.random.default_rng(3)
    mu = (rng.integers(-8, 9, (rows, cols)) / 4).astype(dtype)
    lv = np.zeros((rows, cols), dtype)
    _, kl = run(harness, tmp_path, "reparam", dtype, [mu, lv], [rows, cols, 1, 2, 0], [(dtype, rows * cols), (dtype, rows)])
    want_z, want_kl = np.empty_like(mu), np.empty(rows, dtype)
    C.reparameterize_forward(mu, lv, want_z, want_kl, 1, 2)
    np.testing.assert_array_equal(kl, want_kl)
    np.testing.assert_array_equal(kl, (mu.astype(np.float64) ** 2 / 2).sum(1))


# ---- likelihoods -------------------------------------------------------------------------------
def _threads(cols):
    from fastgen._native import cuda_vae as _cuda_vae

    return _cuda_vae.likelihood_threads(cols)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (5, 33), (6, 784), (2, 3000)])
def test_bernoulli_likelihood_forward_and_backward(harness, tmp_path, dtype, shape):
    rows, cols = shape
    rng = np.random.default_rng(cols)
    # binary x and logits in [-4, 4]: every float32 term lies in [0.018, 4.1] in magnitude, so
    # float32 terms summed in double are exact in any order (bitwise); float64 sums round
    x = (rng.random(shape) < 0.4).astype(dtype)
    logits = rng.uniform(-4, 4, shape).astype(dtype)
    g = rng.standard_normal(rows).astype(dtype)
    n = rows * cols
    ll, dl, dx = run(harness, tmp_path, "bernoulli_ll", dtype, [x, logits, g], [rows, cols, _threads(cols)],
                     [(dtype, rows), (dtype, n), (dtype, n)])
    want = np.empty(rows, dtype)
    C.bernoulli_log_likelihood(x, logits, want)
    if dtype == np.float32:
        np.testing.assert_array_equal(ll, want)
    else:
        np.testing.assert_allclose(ll, want, rtol=1e-13)
    want_dl, want_dx = np.empty_like(x), np.empty_like(x)
    C.bernoulli_log_likelihood_backward(x, logits, g, want_dl, want_dx)
    np.testing.assert_array_equal(dl.reshape(shape), want_dl)
    np.testing.assert_array_equal(dx.reshape(shape), want_dx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_gaussian_likelihood_forward_and_backward(harness, tmp_path, dtype, mode):
    rows, cols = 7, 300
    rng = np.random.default_rng(mode)
    x = rng.standard_normal((rows, cols)).astype(dtype)
    mean = rng.standard_normal((rows, cols)).astype(dtype)
    lv = {0: None, 1: rng.uniform(-1, 1, cols).astype(dtype), 2: rng.uniform(-1, 1, (rows, cols)).astype(dtype)}[mode]
    g = rng.standard_normal(rows).astype(dtype)
    n, nv = rows * cols, (0 if lv is None else lv.size)
    inputs = [x, mean] + ([] if lv is None else [lv]) + [g]
    ll, dm, dv, dx = run(harness, tmp_path, "gaussian_ll", dtype, inputs, [rows, cols, _threads(cols), mode],
                         [(dtype, rows), (dtype, n), (dtype, nv), (dtype, n)])
    want = np.empty(rows, dtype)
    C.gaussian_log_likelihood(x, mean, lv, want)
    np.testing.assert_allclose(ll, want, rtol=1e-6 if dtype == np.float32 else 1e-13)
    want_dm, want_dx = np.empty_like(x), np.empty_like(x)
    want_dv = None if lv is None else np.empty_like(lv)
    C.gaussian_log_likelihood_backward(x, mean, lv, g, want_dm, want_dv, want_dx)
    np.testing.assert_array_equal(dm.reshape(x.shape), want_dm)
    np.testing.assert_array_equal(dx.reshape(x.shape), want_dx)
    if lv is not None:  # per feature: the row sum runs serially per column, the CPU's order
        np.testing.assert_array_equal(dv.reshape(lv.shape), want_dv)


def test_gaussian_likelihood_float32_is_bitwise_when_terms_are_exact(harness, tmp_path):
    # unit variance, x - m in multiples of 1/2: float32 terms of similar size, exact double sums
    rows, cols = 4, 500
    rng = np.random.default_rng(9)
    x = (rng.integers(-6, 7, (rows, cols)) / 2).astype(np.float32)
    mean = np.zeros_like(x)
    ll, *_ = run(harness, tmp_path, "gaussian_ll", np.float32, [x, mean, np.ones(rows, np.float32)],
                 [rows, cols, _threads(cols), 0], [(np.float32, rows), (np.float32, rows * cols), (np.float32, 0),
                                                   (np.float32, rows * cols)])
    want = np.empty(rows, np.float32)
    C.gaussian_log_likelihood(x, mean, None, want)
    np.testing.assert_array_equal(ll, want)


# ---- pooling -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("window", [(2, 2, 2, 2, 0, 0), (3, 3, 2, 2, 1, 1), (3, 2, 1, 2, 1, 0)])
def test_max_pool_values_and_indices_are_the_cpus(harness, tmp_path, dtype, window):
    kh, kw, sh, sw, ph, pw = window
    planes, h, w = 6, 9, 8
    rng = np.random.default_rng(kh * 10 + sh)
    # small integers: many ties, so "the first maximum wins" is exercised
    x = rng.integers(-3, 4, (planes, h, w)).astype(dtype)
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    n = planes * oh * ow
    values, idx = run(harness, tmp_path, "max_pool", dtype, [x], [planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw],
                      [(dtype, n), (np.int64, n)])
    want_v, want_i = np.empty((planes, oh, ow), dtype), np.empty((planes, oh, ow), np.int64)
    C.max_pool2d(x, want_v, want_i, window)
    np.testing.assert_array_equal(values.reshape(want_v.shape), want_v)
    np.testing.assert_array_equal(idx.reshape(want_i.shape), want_i)
    # max pooling's backward: overlapping windows (stride < kernel) add into one input
    grad = rng.standard_normal((planes, oh, ow)).astype(dtype)
    (got,) = run(harness, tmp_path, "scatter", dtype, [grad, want_i], [planes, oh * ow, h * w, 1],
                 [(dtype, planes * h * w)])
    want = np.empty((planes, h, w), dtype)
    C.scatter_planes(grad.reshape(planes, -1), want_i.reshape(planes, -1), want.reshape(planes, -1), True)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unpooling_scatter_gather_and_average_are_the_cpus(harness, tmp_path, dtype):
    planes, h, w, H, W = 5, 3, 4, 7, 9
    rng = np.random.default_rng(4)
    src = rng.standard_normal((planes, h * w)).astype(dtype)
    # distinct positions per plane, as max pooling's own indices are (stride >= kernel)
    idx = np.stack([rng.permutation(H * W)[:h * w] for _ in range(planes)]).astype(np.int64)
    (got,) = run(harness, tmp_path, "scatter", dtype, [src, idx], [planes, h * w, H * W, 0], [(dtype, planes * H * W)])
    want = np.empty((planes, H * W), dtype)
    C.scatter_planes(src, idx, want, False)
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    big = rng.standard_normal((planes, H * W)).astype(dtype)
    (got,) = run(harness, tmp_path, "gather", dtype, [big, idx], [planes, H * W, h * w, 0], [(dtype, planes * h * w)])
    want = np.empty((planes, h * w), dtype)
    C.gather_planes(big, idx, want)
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    kh, kw = 2, 3
    small = rng.standard_normal((planes, h, w)).astype(dtype)
    (got,) = run(harness, tmp_path, "avg_unpool", dtype, [small], [planes, h, w, kh, kw],
                 [(dtype, planes * h * w * kh * kw)])
    want = np.empty((planes, h * kh, w * kw), dtype)
    C.avg_unpool2d(small, want, kh, kw, False)
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    g = rng.standard_normal((planes, h * kh, w * kw)).astype(dtype)
    (got,) = run(harness, tmp_path, "avg_unpool_backward", dtype, [g], [planes, h, w, kh, kw],
                 [(dtype, planes * h * w)])
    want = np.empty((planes, h, w), dtype)
    C.avg_unpool2d(g, want, kh, kw, True)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


# ---- transposed convolution --------------------------------------------------------------------
GEOMETRIES = [  # batch in_c in_h in_w out_c kh kw sh sw ph pw oph opw
    (2, 3, 4, 4, 5, 4, 4, 2, 2, 1, 1, 0, 0),   # DCGAN's doubling layer
    (3, 2, 5, 3, 4, 3, 2, 2, 3, 1, 0, 1, 2),   # odd sizes, output padding, unequal strides
    (1, 4, 1, 1, 3, 4, 4, 1, 1, 0, 0, 0, 0),   # DCGAN's first layer (1x1 input)
]


def _geometry(g):
    n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, oph, opw = g
    oh, ow = (h - 1) * sh - 2 * ph + kh + oph, (w - 1) * sw - 2 * pw + kw + opw
    return (n, cin, h, w, cout, oh, ow, kh, kw, sh, sw, ph, pw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("g", GEOMETRIES)
@pytest.mark.parametrize("activation,slope", [(0, 0.0), (1, 0.0), (2, 0.2), (3, 0.0), (4, 0.0)])
def test_conv_transpose_output_pass_and_im2col_are_the_cpus(harness, tmp_path, dtype, g, activation, slope):
    geom = _geometry(g)
    n, cin, h, w, cout, oh, ow, kh, kw = geom[:9]
    rng = np.random.default_rng(sum(g) + activation)
    cols = rng.standard_normal((cout * kh * kw, n * h * w)).astype(dtype)
    bias = rng.standard_normal(cout).astype(dtype)
    ints = list(geom) + [activation, int(round(slope * 1000))]
    for use_bias in (0, 1):
        (got,) = run(harness, tmp_path, "conv_output", dtype, [cols, bias], ints + [use_bias],
                     [(dtype, n * cout * oh * ow)])
        want = np.empty((n, cout, oh, ow), dtype)
        C.conv_transpose2d_output(cols, bias if use_bias else None, want, geom, activation, dtype(slope))
        np.testing.assert_array_equal(got.reshape(want.shape), want)
    grad = rng.standard_normal((n, cout, oh, ow)).astype(dtype)
    (got,) = run(harness, tmp_path, "conv_im2col", dtype, [grad], ints + [0], [(dtype, cols.size)])
    want = np.empty_like(cols)
    C.conv_transpose2d_im2col(grad, want, geom)
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    y = rng.standard_normal(grad.shape)  # the derivative is taken from the activation's output y
    if activation == 4:
        y = 1 / (1 + np.exp(-y))
    elif activation == 3:
        y = np.tanh(y)
    y = y.astype(dtype)
    (got,) = run(harness, tmp_path, "activation_backward", dtype, [grad, y], [grad.size, activation,
                                                                             int(round(slope * 1000))],
                 [(dtype, grad.size)])
    want = np.empty_like(grad)
    C.activation_backward(grad, y.reshape(grad.shape), want, activation, dtype(slope))
    np.testing.assert_array_equal(got.reshape(want.shape), want)
