"""fastgen.ops.reparameterize (fused z = mu + exp(logvar/2) eps and KL) and its backward kernel,
against NumPy references on the same Philox normals."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fastgen
import reference as ref
from fastgen._native import cpu as _cpu
from fastgen.ops import reparameterize
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
