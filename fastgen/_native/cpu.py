"""Loads the compiled CPU kernels (fastgen._C) and hands them SciPy's BLAS.

SciPy's wheels ship OpenBLAS and export its Fortran ?gemm entry points as PyCapsules in
scipy.linalg.cython_blas; giving those to _C lets whole training loops run in C++ with an
optimised BLAS, without fastgen linking a BLAS of its own at build time.
"""
from __future__ import annotations

import os

# libgomp's threads spin this long after a parallel region before sleeping: its default spin
# steals the cores from the BLAS threads of the GEMM that follows, and sleeping at once makes the
# binary-product loop's back-to-back regions wait to wake the team (docs/performance.md). libgomp
# reads this when _C loads it; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
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

from . import blas_threads as _blas_threads  # noqa: E402


def share_blas_threads(enabled: bool = True) -> list[str]:
    """NumPy's and SciPy's OpenBLAS run their threaded work on fastgen's OpenMP team (True) or on
    their own pools (False); returns the libraries now sharing (see blas_threads.py)."""
    return _blas_threads.install(C.blas_jobs_callback_address() if enabled else None)


def blas_threads_stats() -> dict:
    """Threaded BLAS calls run on fastgen's team, and how many of them on threads started for the
    call (inside an OpenMP region, in a forked child, or where OpenMP would give fewer)."""
    return C.blas_jobs_stats()


if _blas_threads.sharing_requested():
    share_blas_threads(True)


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


def binary_products_default() -> bool:
    """Whether the RBM loops run products with a 0/1 operand (data, sampled states) as
    binary_matmul where the crossover in csrc/binary.cpp says it beats BLAS: yes, unless the
    environment sets FASTGEN_DENSE_PRODUCTS (to anything but 0, false, no, off), which sends them all to BLAS
    (the benchmarks' "before" rows). Read at each call, so a benchmark can set it around a run;
    the ops take an explicit ``binary_products`` argument that overrides it."""
    return os.environ.get("FASTGEN_DENSE_PRODUCTS", "").strip().lower() in ("", "0", "false", "no", "off")


def empty_cache() -> int:
    """Free the large working buffers the CPU kernels keep for their next call (up to 256 MiB;
    see csrc/aligned.h) and return the number of bytes freed."""
    return C.release_cached_buffers()


def cached_bytes() -> int:
    """Bytes held in freed working buffers kept for reuse."""
    return C.cached_buffer_bytes()


__all__ = ["C", "binary_products_default", "blas_threads_stats", "cached_bytes", "empty_cache", "share_blas_threads"]
