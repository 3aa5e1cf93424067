"""Loads the compiled CPU kernels (fastgen._C) and hands them SciPy's BLAS.

SciPy's wheels ship OpenBLAS and export its Fortran ?gemm entry points as PyCapsules in
scipy.linalg.cython_blas; giving those to _C lets whole training loops run in C++ with an
optimised BLAS, without fastgen linking a BLAS of its own at build time.
"""
from __future__ import annotations

try:
    from . import _C as C
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "fastgen's compiled module fastgen._C is missing: install the package with "
        "'pip install .' (or 'pip install -e .') so that csrc/ is built"
    ) from exc

from scipy.linalg import cython_blas as _cython_blas

if not C.blas_ready():
    C.set_blas(_cython_blas.__pyx_capi__["sgemm"], _cython_blas.__pyx_capi__["dgemm"])

__all__ = ["C"]
