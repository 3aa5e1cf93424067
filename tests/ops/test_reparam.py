"""fastgen.ops.reparameterize (fused z = mu + exp(logvar/2) eps and KL) and its backward kernel,
against NumPy references on the same Philox normals.

On a GPU (``gpu`` marker): the op on CuPy arrays and torch CUDA tensors is the CPU's (z and the
backward bitwise, KL to a per-dtype tolerance), refuses what the CPU refuses, runs on CuPy's stream."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fastgen
import reference as ref
from cuda_helpers import KL_GPU_RTOL, cuda_module_or_skip, kl_scale
from fastgen._native import cpu as _cpu
from fastgen.ops import reparam as ops_reparam, reparameterize
from reference.reparam import reparameterize as reference_forward

DTYPES = [np.float32, np.float64]
# relative to the scale of each value (|mu| + sigma * radius for z, the sum of |terms| for kl)
RTOL = {np.float32: 3e-6, np.float64: 1e-13}
# (200, 33): blocks of 30 rows that start inside a Philox block; (9, 1021): one row per block
SHAPES = [(1, 1), (129, 7), (3, 4096 + 32), (5, 129), (200, 33), (9, 1021)]


def inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1.5, shape).astype(dtype), rng.normal(0, 1, shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_reference(shape, dtype):
    mu, logvar = inputs(shape, dtype, seed=shape[1])
    mu_copy, logvar_copy = mu.copy(), logvar.copy()
    gen = fastgen.Generator(17, 3)
    z, kl = reparameterize(mu, logvar, generator=gen)
    assert gen.offset == 4
    assert z.dtype == dtype and kl.dtype == dtype and z.shape == shape and kl.shape == (shape[0],)
    ez, ekl, _, zscale, klscale = reference_forward(mu, logvar, 17, 3)
    assert np.all(np.abs(z - ez) <= RTOL[dtype] * zscale * 4)
    assert np.all(np.abs(kl - ekl) <= RTOL[dtype] * klscale * shape[1] ** 0.5 * 4)
    np.testing.assert_array_equal(mu, mu_copy)
    np.testing.assert_array_equal(logvar, logvar_copy)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_kernel_matches_the_derivatives(shape, dtype):
    from fastgen.ops.reparam import reparameterize_backward_numpy

    mu, logvar = inputs(shape, dtype, seed=1)
    rng = np.random.default_rng(2)
    g_z = rng.normal(size=shape).astype(dtype)
    g_kl = rng.normal(size=shape[0]).astype(dtype)
    d_mu, d_lv = reparameterize_backward_numpy(g_z, g_kl, mu, logvar, 9, 4)
    eps = ref.normal(9, 4, shape, dtype).values
    sigma = np.exp(0.5 * logvar.astype(np.float64))
    np.testing.assert_allclose(d_mu, g_z + g_kl[:, None] * mu.astype(np.float64), rtol=RTOL[dtype] * 10,
                               atol=RTOL[dtype] * 10)
    expected = 0.5 * (g_z * eps * sigma + g_kl[:, None] * (sigma ** 2 - 1))
    scale = np.abs(g_z) * np.abs(eps) * sigma + np.abs(g_kl[:, None]) * (sigma ** 2 + 1) + 1e-30
    assert np.all(np.abs(d_lv - expected) <= RTOL[dtype] * 20 * scale)
    # only the KL term used: no eps needed, same formula with g_z = 0
    d_mu0, d_lv0 = reparameterize_backward_numpy(None, g_kl, mu, logvar, 9, 4)
    np.testing.assert_allclose(d_mu0, g_kl[:, None] * mu, rtol=RTOL[dtype] * 10)
    np.testing.assert_allclose(d_lv0, 0.5 * g_kl[:, None] * (sigma ** 2 - 1), rtol=RTOL[dtype] * 20,
                               atol=RTOL[dtype] * 20)


def test_zero_logvar_and_mean_give_the_stream_normals_and_zero_kl():
    mu, logvar = np.zeros((4, 6)), np.zeros((4, 6))
    z, kl = reparameterize(mu, logvar, generator=fastgen.Generator(5))
    out = np.empty(24)
    _cpu.C.fill_normal(out, 5, 0)
    np.testing.assert_array_equal(z.ravel(), out)
    np.testing.assert_array_equal(kl, np.zeros(4))


def test_statistics_of_z():
    mu = np.full((20000, 2), [1.0, -2.0])
    logvar = np.log(np.full((20000, 2), [0.25, 4.0]))
    z, _ = reparameterize(mu, logvar, generator=3)
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=5 * 2.0 / np.sqrt(20000))
    np.testing.assert_allclose(z.std(axis=0), [0.5, 2.0], rtol=0.03)


def test_empty_one_dimensional_and_non_contiguous_inputs():
    z, kl = reparameterize(np.zeros((0, 5)), np.zeros((0, 5)))
    assert z.shape == (0, 5) and kl.shape == (0,)
    mu, logvar = inputs((6, 10), np.float64)
    z1, kl1 = reparameterize(mu[0], logvar[0], generator=fastgen.Generator(1))
    z2, kl2 = reparameterize(mu[:1], logvar[:1], generator=fastgen.Generator(1))
    assert z1.shape == (10,) and kl1.shape == ()
    np.testing.assert_array_equal(z1, z2[0])
    assert kl1 == kl2[0]
    view_mu, view_lv = mu[:, ::2], logvar[:, ::2]
    zv, klv = reparameterize(view_mu, view_lv, generator=fastgen.Generator(2))
    zc, klc = reparameterize(np.ascontiguousarray(view_mu), np.ascontiguousarray(view_lv),
                             generator=fastgen.Generator(2))
    np.testing.assert_array_equal(zv, zc)
    np.testing.assert_array_equal(klv, klc)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", [1, 5, 64, 129])
def test_first_row_draws_the_rows_of_the_larger_batch(dtype, cols):
    # a data-parallel rank draws its share of a batch: rows a..b with first_row=a get the whole
    # batch's rows a..b, forward and backward, bitwise (splits that start mid Philox block included)
    rng = np.random.default_rng(cols)
    mu, lv = rng.standard_normal((11, cols)).astype(dtype), rng.standard_normal((11, cols)).astype(dtype)
    gz, gk = rng.standard_normal((11, cols)).astype(dtype), rng.standard_normal(11).astype(dtype)
    z, kl = ops_reparam.reparameterize_numpy(mu, lv, 5, 2)
    dmu, dlv = ops_reparam.reparameterize_backward_numpy(gz, gk, mu, lv, 5, 2)
    for a, b in ((0, 4), (4, 7), (7, 11), (3, 4)):
        part_z, part_kl = reparameterize(mu[a:b], lv[a:b], generator=fastgen.Generator(5, 2), first_row=a)
        np.testing.assert_array_equal(part_z, z[a:b])
        np.testing.assert_array_equal(part_kl, kl[a:b])
        part_mu, part_lv = ops_reparam.reparameterize_backward_numpy(gz[a:b].copy(), gk[a:b].copy(), mu[a:b].copy(),
                                                                     lv[a:b].copy(), 5, 2, a)
        np.testing.assert_array_equal(part_mu, dmu[a:b])
        np.testing.assert_array_equal(part_lv, dlv[a:b])
    other, _ = reparameterize(mu[4:7], lv[4:7], generator=fastgen.Generator(5, 2))  # first_row 0: other eps
    assert not np.array_equal(other, z[4:7])
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="first_row must be an integer >= 0"):
            reparameterize(mu, lv, generator=0, first_row=bad)


def test_result_does_not_depend_on_thread_count(tmp_path):
    script = (
        "import sys, numpy as np\n"
        "from fastgen.ops import reparameterize\n"
        "rng = np.random.default_rng(0)\n"
        "z, kl = reparameterize(rng.normal(size=(300, 256)).astype(np.float32),"
        " rng.normal(size=(300, 256)).astype(np.float32), generator=4)\n"
        "np.save(sys.argv[1], np.concatenate([z.ravel(), kl]))\n"
    )
    results = []
    for threads in ("1", "2"):
        path = tmp_path / f"r{threads}.npy"
        subprocess.run([sys.executable, "-c", script, str(path)], check=True,
                       env=dict(os.environ, OMP_NUM_THREADS=threads), timeout=300)
        results.append(np.load(path))
    np.testing.assert_array_equal(results[0], results[1])


def test_bad_input_is_refused_with_the_argument_named():
    good = np.zeros((2, 3))
    with pytest.raises(ValueError, match="same shape"):
        reparameterize(good, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="mu contains NaN"):
        reparameterize(np.full((2, 3), np.nan), good)
    with pytest.raises(ValueError, match="logvar contains NaN or infinity"):
        reparameterize(good, np.full((2, 3), np.inf))
    with pytest.raises(ValueError, match="mu must be 1-D or 2-D"):
        reparameterize(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)))
    with pytest.raises(TypeError, match="mu must be a real numeric array"):
        reparameterize(np.array([["a"]]), good)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 4096 + 31, 300_000 - 1])
def test_finite_check_finds_every_nan_and_infinity(bad, where, dtype):
    """The compiled check behind every op's NaN/inf error (fastgen.ops.validation.check_finite)."""
    from fastgen.ops.validation import check_finite

    a = np.ones(300_000, dtype)
    check_finite(a, "a")
    check_finite(a[:0], "a")
    a[where] = bad
    with pytest.raises(ValueError, match="a contains NaN or infinity"):
        check_finite(a, "a")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinity_found_by_the_kernel_in_any_row(bad, dtype):
    """The forward kernel reports NaN/inf from its own pass (a non-finite row KL sends it to search
    that row): every row of a many-block input, either argument, mu named first."""
    mu, logvar = inputs((300, 64), dtype)
    for row, col in ((0, 0), (151, 17), (299, 63)):
        for name in ("mu", "logvar"):
            m, lv = mu.copy(), logvar.copy()
            (m if name == "mu" else lv)[row, col] = bad
            with pytest.raises(ValueError, match=f"^{name} contains NaN or infinity"):
                reparameterize(m, lv, generator=1)
        m, lv = mu.copy(), logvar.copy()
        m[row, col] = lv[row, (col + 1) % 64] = bad
        with pytest.raises(ValueError, match="^mu contains NaN or infinity"):
            reparameterize(m, lv, generator=1)


def test_an_overflowing_kl_of_finite_inputs_is_not_an_error():
    """mu^2 overflows float32 to inf: the row's KL is inf, but the inputs are finite, so no error."""
    mu = np.zeros((3, 5), np.float32)
    mu[1, 2] = 1e30
    z, kl = reparameterize(mu, np.zeros((3, 5), np.float32), generator=2)
    assert np.isinf(kl[1]) and np.isfinite(kl[[0, 2]]).all()
    assert z[1, 2] == np.float32(1e30)  # mu + eps, eps far below float32's spacing at 1e30
    assert np.isfinite(z).all()


# ---- dispatch: NumPy stays on the CPU kernel, CUDA input goes to CuPy (tests/cuda for the GPU) ----
class _FakeCudaArray:
    """Classified as CUDA through ``__cuda_array_interface__``; points nowhere."""

    def __init__(self, shape=(2, 3)):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": "<f8", "data": (0, False), "version": 3}


def test_numpy_and_cpu_tensor_input_run_the_cpu_kernel(monkeypatch):
    from fastgen.ops import reparam

    calls = []
    cpu_kernel = reparam.reparameterize_numpy

    def spy(*args):
        calls.append("cpu")
        return cpu_kernel(*args)

    def no_cuda(*args):
        raise AssertionError("the CUDA kernel was chosen for CPU input")

    monkeypatch.setattr(reparam, "reparameterize_numpy", spy)
    monkeypatch.setattr(reparam, "reparameterize_cupy", no_cuda)
    mu, logvar = inputs((5, 6), np.float64)
    z, kl = reparameterize(mu, logvar, generator=fastgen.Generator(3))
    assert isinstance(z, np.ndarray) and calls == ["cpu"]
    torch = pytest.importorskip("torch")
    zt, klt = reparameterize(torch.tensor(mu), torch.tensor(logvar), generator=fastgen.Generator(3))
    assert isinstance(zt, torch.Tensor) and calls == ["cpu", "cpu"]
    np.testing.assert_array_equal(zt.numpy(), z)


def test_cuda_input_without_the_backend_is_refused_naming_the_argument(monkeypatch):
    from fastgen._native import cuda as _cuda

    monkeypatch.setattr(_cuda, "unavailable_reason", lambda: "CuPy is not importable (ImportError: test)")
    gen = fastgen.Generator(1)
    with pytest.raises(TypeError, match="^mu lives on a CUDA device, but fastgen's CUDA backend is unavailable: "
                                        "CuPy is not importable"):
        reparameterize(_FakeCudaArray(), _FakeCudaArray(), generator=gen)
    assert gen.offset == 0  # refused before an offset was taken
    with pytest.raises(ValueError, match="logvar is on the CPU but mu is on cuda:0"):
        reparameterize(_FakeCudaArray(), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="logvar is on cuda:0 but mu is on the CPU"):
        reparameterize(np.zeros((2, 3)), _FakeCudaArray())


# ==== on a GPU (CuPy arrays and torch CUDA tensors against the CPU) =============================


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (129, 20), (64, 783), (3, 5000)])
def test_reparam_forward_and_backward_match_the_cpu(cp, dtype, shape):
    v = cuda_module_or_skip("cuda_vae")
    rows, cols = shape
    rng = np.random.default_rng(cols)
    mu = rng.standard_normal(shape).astype(dtype)
    lv = rng.standard_normal(shape).astype(dtype)
    seed, offset = 2**63 + 3, 2**35 + 7
    z, kl = cp.empty(shape, dtype), cp.empty(rows, dtype)
    v.reparameterize(cp.asarray(mu), cp.asarray(lv), z, kl, seed=seed, offset=offset)
    want_z, want_kl = np.empty_like(mu), np.empty(rows, dtype)
    _cpu.C.reparameterize_forward(mu, lv, want_z, want_kl, seed, offset)
    np.testing.assert_array_equal(z.get(), want_z)
    np.testing.assert_allclose(kl.get(), want_kl, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    gz, gk = rng.standard_normal(shape).astype(dtype), rng.standard_normal(rows).astype(dtype)
    for a, b in ((gz, gk), (gz, None), (None, gk)):
        dmu, dlv = cp.empty(shape, dtype), cp.empty(shape, dtype)
        v.reparameterize_backward(None if a is None else cp.asarray(a), None if b is None else cp.asarray(b),
                                  cp.asarray(mu), cp.asarray(lv), dmu, dlv, seed=seed, offset=offset)
        want_mu, want_lv = np.empty_like(mu), np.empty_like(mu)
        _cpu.C.reparameterize_backward(a, b, mu, lv, want_mu, want_lv, seed, offset)
        np.testing.assert_array_equal(dmu.get(), want_mu)
        np.testing.assert_array_equal(dlv.get(), want_lv)


@pytest.mark.gpu
def test_reparam_with_row_strides_and_repeatable_kl(cp):
    v = cuda_module_or_skip("cuda_vae")
    rng = np.random.default_rng(0)
    both = cp.asarray(rng.standard_normal((50, 40)))
    mu, lv = both[:, :20], both[:, 20:]  # the encoder's split output: strided rows
    z1, kl1, z2, kl2 = cp.empty((50, 20)), cp.empty(50), cp.empty((50, 20)), cp.empty(50)
    v.reparameterize(mu, lv, z1, kl1, seed=1, offset=2)
    v.reparameterize(mu, lv, z2, kl2, seed=1, offset=2)
    np.testing.assert_array_equal(kl1.get(), kl2.get())
    want_z, want_kl = np.empty((50, 20)), np.empty(50)
    _cpu.C.reparameterize_forward(np.ascontiguousarray(mu.get()), np.ascontiguousarray(lv.get()), want_z, want_kl, 1, 2)
    np.testing.assert_array_equal(z1.get(), want_z)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (129, 7), (200, 33), (64, 64), (9, 1021), (3, 4128)])
def test_reparameterize_on_cupy_is_the_cpu_op(cp, dtype, shape):
    mu, lv = inputs(shape, dtype, seed=shape[1])
    mu_d, lv_d = cp.asarray(mu), cp.asarray(lv)
    gen = fastgen.Generator(2**63 + 9, 2**34 + 1)
    z, kl = ops_reparam.reparameterize(mu_d, lv_d, generator=gen)
    assert gen.offset == 2**34 + 2
    assert isinstance(z, cp.ndarray) and isinstance(kl, cp.ndarray)
    assert z.dtype == dtype and kl.dtype == dtype and z.shape == shape and kl.shape == (shape[0],)
    want_z, want_kl = ops_reparam.reparameterize(mu, lv, generator=fastgen.Generator(2**63 + 9, 2**34 + 1))
    np.testing.assert_array_equal(z.get(), want_z)
    assert np.all(np.abs(kl.get() - want_kl) <= KL_GPU_RTOL[dtype] * kl_scale(mu, lv))
    np.testing.assert_array_equal(mu_d.get(), mu)  # inputs untouched
    np.testing.assert_array_equal(lv_d.get(), lv)
    # the backward (the torch op's CUDA kernel runs it): bitwise, with either gradient alone
    rng = np.random.default_rng(7)
    gz, gk = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape[0]).astype(dtype)
    for a, b in ((gz, gk), (gz, None), (None, gk)):
        got = ops_reparam.reparameterize_backward_cupy(None if a is None else cp.asarray(a),
                                                       None if b is None else cp.asarray(b), mu_d, lv_d,
                                                       2**63 + 9, 2**34 + 1)
        want = ops_reparam.reparameterize_backward_numpy(a, b, mu, lv, 2**63 + 9, 2**34 + 1)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.get(), w)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_reparameterize_on_cupy_kl_is_exact_when_the_sums_are(cp, dtype):
    # logvar 0 (sigma exactly 1) and mu in quarters: every term and partial sum is exact, so any
    # summation order gives the same bits; a lost lane or a wrong row split would not.
    rng = np.random.default_rng(4)
    mu = (rng.integers(-8, 9, (70, 77)) / 4).astype(dtype)
    lv = np.zeros_like(mu)
    _, kl = ops_reparam.reparameterize(cp.asarray(mu), cp.asarray(lv), generator=5)
    np.testing.assert_array_equal(kl.get(), (mu.astype(np.float64) ** 2 / 2).sum(axis=1).astype(dtype))
    _, want = ops_reparam.reparameterize(mu, lv, generator=5)
    np.testing.assert_array_equal(kl.get(), want)


@pytest.mark.gpu
def test_reparameterize_on_cupy_one_row_views_conversions_and_empties(cp):
    mu, lv = inputs((6, 10), np.float64)
    z1, kl1 = ops_reparam.reparameterize(cp.asarray(mu[0]), cp.asarray(lv[0]), generator=fastgen.Generator(1))
    assert z1.shape == (10,) and kl1.shape == ()
    want_z, want_kl = ops_reparam.reparameterize(mu[0], lv[0], generator=fastgen.Generator(1))
    np.testing.assert_array_equal(z1.get(), want_z)
    # the encoder's split output: strided rows, copied once to C order as on the CPU
    both = cp.asarray(np.concatenate([mu, lv], axis=1))
    zv, klv = ops_reparam.reparameterize(both[:, :10], both[:, 10:], generator=fastgen.Generator(2))
    want_z, want_kl = ops_reparam.reparameterize(mu, lv, generator=fastgen.Generator(2))
    np.testing.assert_array_equal(zv.get(), want_z)
    np.testing.assert_allclose(klv.get(), want_kl, rtol=1e-13)
    # float16 -> float32, integers -> float64, as on the CPU; logvar takes mu's dtype
    z16, _ = ops_reparam.reparameterize(cp.asarray(mu, cp.float16), cp.asarray(lv), generator=3)
    assert z16.dtype == np.float32
    zi, _ = ops_reparam.reparameterize(cp.zeros((2, 3), cp.int32), cp.zeros((2, 3), cp.int32), generator=3)
    assert zi.dtype == np.float64
    for shape in ((0, 5), (4, 0)):
        z, kl = ops_reparam.reparameterize(cp.zeros(shape), cp.zeros(shape), generator=1)
        assert z.shape == shape and kl.shape == (shape[0],) and not kl.get().any()


@pytest.mark.gpu
def test_reparameterize_on_cupy_refuses_what_the_cpu_refuses(cp):
    mu, lv = inputs((300, 64), np.float32)
    for row, col in ((0, 0), (151, 17), (299, 63)):
        for bad in (np.nan, np.inf, -np.inf):
            for name in ("mu", "logvar"):
                m, v = mu.copy(), lv.copy()
                (m if name == "mu" else v)[row, col] = bad
                with pytest.raises(ValueError, match=f"^{name} contains NaN or infinity$"):
                    ops_reparam.reparameterize(cp.asarray(m), cp.asarray(v), generator=1)
        m, v = mu.copy(), lv.copy()
        m[row, col] = v[row, (col + 1) % 64] = np.nan
        with pytest.raises(ValueError, match="^mu contains NaN or infinity$"):
            ops_reparam.reparameterize(cp.asarray(m), cp.asarray(v), generator=1)
    m = np.zeros((3, 5), np.float32)
    m[1, 2] = 1e30  # mu^2 overflows: an infinite KL of finite input is no error, as on the CPU
    z, kl = ops_reparam.reparameterize(cp.asarray(m), cp.zeros((3, 5), cp.float32), generator=2)
    assert np.isinf(kl.get()[1]) and np.isfinite(z.get()).all()
    good = cp.zeros((2, 3))
    with pytest.raises(ValueError, match="mu and logvar must have the same shape"):
        ops_reparam.reparameterize(good, cp.zeros((2, 4)))
    with pytest.raises(ValueError, match="mu must be 1-D or 2-D"):
        ops_reparam.reparameterize(cp.zeros((2, 3, 4)), cp.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="logvar is on the CPU but mu is on cuda:0"):
        ops_reparam.reparameterize(good, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="grad_z must have 6 elements"):
        ops_reparam.reparameterize_backward_cupy(cp.zeros(5), None, good, good, 0, 0)


@pytest.mark.gpu
def test_reparameterize_on_cupy_runs_on_cupys_current_stream(cp):
    mu, lv = inputs((512, 64), np.float32)
    want_z, _ = ops_reparam.reparameterize(mu, lv, generator=1)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        # a long write queued first on this stream: a launch elsewhere would race with it
        m = cp.asarray(mu)
        for _ in range(50):
            m = m * 1
        z, _ = ops_reparam.reparameterize(m, cp.asarray(lv), generator=1)
    stream.synchronize()
    np.testing.assert_array_equal(z.get(), want_z)


@pytest.mark.gpu
def test_ops_reparameterize_takes_torch_cuda_tensors_and_gives_them_back(torch_cuda):
    torch = torch_cuda
    mu, lv = (torch.randn(8, 5, device="cuda", dtype=torch.float64) for _ in range(2))
    z, kl = ops_reparam.reparameterize(mu, lv, generator=4)
    assert isinstance(z, torch.Tensor) and z.device.type == "cuda" and kl.device.type == "cuda"
    want_z, _ = ops_reparam.reparameterize(mu.cpu().numpy(), lv.cpu().numpy(), generator=4)
    np.testing.assert_array_equal(z.cpu().numpy(), want_z)
