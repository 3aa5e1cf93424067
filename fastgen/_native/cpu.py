"""Loads the compiled CPU kernels (fastgen._C) and hands them SciPy's BLAS.

SciPy's wheels ship OpenBLAS and export its Fortran ?gemm entry points as PyCapsules in
scipy.linalg.cython_blas; giving those to _C lets whole training loops run in C++ with an
optimised BLAS, without fastgen linking a BLAS of its own at build time.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

# How long libgomp's threads spin after a parallel region before they sleep. Its default (about
# 300,000 spins) steals the cores from OpenBLAS's threads in the GEMM that follows: on 2 cores a
# PCD epoch on MNIST ran 8x slower. Sleeping at once (OMP_WAIT_POLICY=PASSIVE) makes each of
# the binary-product loop's back-to-back regions wait for the kernel to wake the team: the same
# epoch ran 1.5x slower than with a short spin (`python -m bench rbm --only A`: 0.72-0.74x the
# GEMM floor with 5,000 spins against 1.15-1.19x passive, two interleaved runs each), and the
# BLAS-products loop was no slower (with 20,000 spins it was). libgomp reads this when _C loads
# it; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
OPENMP_SPIN_COUNT = "5000"
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = OPENMP_SPIN_COUNT

try:
    from .. import _C as C
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "fastgen's compiled module fastgen._C is missing: install the package with "
        "'pip install .' (or 'pip install -e .') so that csrc/ is built"
    ) from exc

from scipy.linalg import cython_blas as _cython_blas

if not C.blas_ready():
    C.set_blas(_cython_blas.__pyx_capi__["sgemm"], _cython_blas.__pyx_capi__["dgemm"])

# Products with a 0/1 operand (data, sampled states) run as binary_matmul where the measured
# crossover says it beats BLAS. FASTGEN_DENSE_PRODUCTS=1, or the context manager below, sends
# them all to BLAS instead (the benchmarks' "before" rows; the tests' dense reference).
_binary_products = os.environ.get("FASTGEN_DENSE_PRODUCTS", "").strip().lower() in ("", "0", "false", "no", "off")


def _density_from_env() -> None:
    value = os.environ.get("FASTGEN_BINARY_MAX_DENSITY", "").strip()
    if not value:
        return
    try:
        density = float(value)
    except ValueError:
        raise ValueError(f"FASTGEN_BINARY_MAX_DENSITY must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"FASTGEN_BINARY_MAX_DENSITY must be a number in [0, 1], got {value!r}")
    C.set_binary_max_density(density)


_density_from_env()


def binary_products_enabled() -> bool:
    return _binary_products


@contextmanager
def binary_products(enabled: bool):
    """Within the block, RBM loops use binary-operand products (True) or only dense BLAS (False)."""
    global _binary_products
    previous, _binary_products = _binary_products, bool(enabled)
    try:
        yield
    finally:
        _binary_products = previous


# With binary products, small training batches (data and chains together at most
# C.sliced_max_rows rows) run as one parallel region per pass with the hidden units split among
# the threads (csrc/rbm_sliced.cpp). The context manager below turns that off, so that tests can
# compare it with the per-product loop it replaces.
_hidden_slices = True


def hidden_slices_enabled() -> bool:
    return _hidden_slices


@contextmanager
def hidden_slices(enabled: bool):
    """Within the block, small training batches may (True) or may not (False) take the loop over
    slices of hidden units."""
    global _hidden_slices
    previous, _hidden_slices = _hidden_slices, bool(enabled)
    try:
        yield
    finally:
        _hidden_slices = previous


def empty_cache() -> int:
    """Free the large working buffers the CPU kernels keep for their next call (up to 256 MiB;
    see csrc/aligned.h) and return the number of bytes freed."""
    return C.release_cached_buffers()


def cached_bytes() -> int:
    """Bytes held in freed working buffers kept for reuse."""
    return C.cached_buffer_bytes()


__all__ = ["C", "binary_products", "cached_bytes", "empty_cache", "binary_products_enabled", "hidden_slices", "hidden_slices_enabled"]
