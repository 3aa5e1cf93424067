"""cuBLAS GEMMs through cuBLAS's C API (ctypes), so that a CUDA graph can capture them.

Why not ``cupy.cublas.gemm``: CuPy's cuBLAS bindings refuse to run while a stream is capturing
(``setStream`` raises NotImplementedError), although cuBLAS itself supports capture. Calling the
C API on a handle of our own, the way PyTorch does, lifts that:

- one handle per device, created on first use, guarded by a lock (a handle's stream and
  workspace are set and used in one critical section);
- a fixed workspace set before every call (:data:`WORKSPACE_BYTES`), so cuBLAS never allocates,
  which a capture would forbid: one per (device, stream), used by the eager calls on that stream
  and, inside a capture (:func:`capture_workspace`), by the graphs that will replay on it (a
  graph keeps the stream it was recorded for), so two streams never share scratch memory. Every
  call sees the same workspace size, so cuBLAS's heuristics choose the same algorithm eagerly
  and in a graph: the same bits;
- pointer mode host (the default): alpha and beta are read at call time, and a capture records
  their values.

The library is the one CuPy loaded (found in /proc/self/maps), else ``libcublas.so.<major>`` by
name; ``FASTGEN_CUBLAS_LIBRARY`` names a file instead (the tests load a host stand-in this way).
"""
from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import numpy as np

from .lru import LeastRecentlyUsed

WORKSPACE_BYTES = 32 * 1024 * 1024  # NVIDIA's recommendation for Hopper; enough for every GEMM here
EAGER_WORKSPACES = 8                 # (device, stream) workspaces kept, least recently used dropped

CUBLAS_OP = {"N": 0, "T": 1}
INT32_MAX = 2**31 - 1
_LOCK = threading.RLock()
_HANDLES: dict = {}
_EAGER = LeastRecentlyUsed(EAGER_WORKSPACES)
_CAPTURE = threading.local()


class CublasError(RuntimeError):
    pass


def _loaded_paths() -> list[str]:
    """libcublas files already mapped into this process (CuPy's, torch's), sorted."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    found = {line.split()[-1] for line in maps.splitlines()
             if "/libcublas.so" in line and "libcublasLt" not in line}
    return sorted(found)


def _candidates() -> list[str]:
    override = os.environ.get("FASTGEN_CUBLAS_LIBRARY", "").strip()
    if override:
        return [override]
    major = None
    try:  # make CuPy load its cuBLAS (a handle of its own forces a lazy loader), so that the same file is used
        import cupy

        major = int(cupy.cuda.runtime.runtimeGetVersion()) // 1000
        cupy.cuda.Device().cublas_handle
    except Exception:
        pass
    found = []
    try:  # where CUDA's Python wheels keep it: how CuPy >= 14 finds its libraries
        from cuda.pathfinder import load_nvidia_dynamic_lib

        path = load_nvidia_dynamic_lib("cublas").abs_path
        if path:
            found.append(path)
    except Exception:
        pass
    # With two CUDA majors in one process (torch for 12, CuPy for 13), CuPy's runtime's comes first.
    mapped = sorted(_loaded_paths(), key=lambda p: (major is None or f".so.{major}" not in p, p))
    names = [f"libcublas.so.{m}" for m in dict.fromkeys([major, 13, 12, 11]) if m is not None]
    return found + mapped + names + ["libcublas.so"]


_LIBRARY = None


def library():
    """The cuBLAS shared library with its functions' argument types declared."""
    global _LIBRARY
    with _LOCK:
        if _LIBRARY is not None:
            return _LIBRARY
        errors = []
        for name in _candidates():
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError as exc:
                errors.append(f"{name}: {exc}")
        else:
            raise CublasError("cuBLAS could not be loaded (" + "; ".join(errors) + "); install the CUDA toolkit's "
                              "cuBLAS or the nvidia-cublas wheel CuPy uses, or set FASTGEN_CUBLAS_LIBRARY")
        p, i, vp = ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p
        lib.cublasCreate_v2.argtypes = [ctypes.POINTER(p)]
        lib.cublasSetStream_v2.argtypes = [p, p]
        lib.cublasGetVersion_v2.argtypes = [p, ctypes.POINTER(i)]
        gemm_args = [p, i, i, i, i, i, vp, p, i, p, i, vp, p, i]
        lib.cublasSgemm_v2.argtypes = gemm_args
        lib.cublasDgemm_v2.argtypes = gemm_args
        for fn in ("cublasCreate_v2", "cublasSetStream_v2", "cublasGetVersion_v2", "cublasSgemm_v2",
                   "cublasDgemm_v2"):
            getattr(lib, fn).restype = i
        # cublasSetWorkspace_v2 exists since cuBLAS 11.4; without it cuBLAS manages its own.
        lib.has_workspace = hasattr(lib, "cublasSetWorkspace_v2")
        if lib.has_workspace:
            lib.cublasSetWorkspace_v2.argtypes = [p, p, ctypes.c_size_t]
            lib.cublasSetWorkspace_v2.restype = i
        _LIBRARY = lib
        return lib


def _check(status: int, what: str) -> None:
    if status != 0:
        raise CublasError(f"{what} failed with cuBLAS status {status}")


def version() -> int:
    """cuBLAS's version number (e.g. 130100): loads the library and makes the current device's handle."""
    value = ctypes.c_int()
    _check(library().cublasGetVersion_v2(handle(), ctypes.byref(value)), "cublasGetVersion")
    return value.value


def _device() -> int:
    import cupy

    return int(cupy.cuda.Device().id)


def handle():
    """The current device's handle (made on first use)."""
    device = _device()
    with _LOCK:
        h = _HANDLES.get(device)
        if h is None:
            h = ctypes.c_void_p()
            _check(library().cublasCreate_v2(ctypes.byref(h)), "cublasCreate")
            _HANDLES[device] = h
        return h


def new_workspace():
    """A device buffer of :data:`WORKSPACE_BYTES` for cuBLAS (a CuPy array, on the current device)."""
    import cupy

    return cupy.empty(WORKSPACE_BYTES, dtype=cupy.uint8)


class capture_workspace:
    """``with capture_workspace(ws):`` GEMMs issued in this thread use ``ws`` (a recorded graph's
    own scratch memory) instead of the stream's."""

    def __init__(self, workspace):
        self.workspace = workspace

    def __enter__(self):
        self.previous = getattr(_CAPTURE, "workspace", None)
        _CAPTURE.workspace = self.workspace
        return self.workspace

    def __exit__(self, *exc):
        _CAPTURE.workspace = self.previous
        return False


def stream_workspace(device: int, stream: int):
    """The workspace of GEMMs on ``stream``: work on one stream runs in order, so its eager GEMMs
    and the graphs replayed on it can share one. CuPy's pool frees a dropped workspace in stream
    order, and a graph keeps a reference to its own, so dropping one never frees memory in use."""
    return _EAGER.get_or_make((device, stream), new_workspace)


def leading_dimension(a) -> int:
    """The row stride of a 2-D row-major operand in elements (cuBLAS wants at least 1)."""
    return max(1, int(a.strides[0] // a.itemsize) if a.shape[0] > 1 else int(a.shape[1]))


def gemm(transa: str, transb: str, a, b, out, alpha, beta, *, stream: int) -> None:
    """out = alpha op(a) @ op(b) + beta out for row-major 2-D arrays with unit column stride, on
    ``stream``: cuBLAS is column-major, so it computes out^T = op(b)^T op(a)^T with the operands'
    own transpose flags. alpha and beta are rounded to out's dtype."""
    m, n = out.shape
    k = a.shape[1] if transa == "N" else a.shape[0]
    if m == 0 or n == 0:
        return
    sizes = (m, n, k, leading_dimension(a), leading_dimension(b), leading_dimension(out))
    if max(sizes) > INT32_MAX:  # cuBLAS takes int; ctypes would wrap a larger one silently
        raise ValueError(f"cuBLAS GEMM sizes (m, n, k and leading dimensions) must be below 2**31, got {sizes}")
    lib = library()
    if out.dtype == np.float32:
        fn, scalar = lib.cublasSgemm_v2, ctypes.c_float
    elif out.dtype == np.float64:
        fn, scalar = lib.cublasDgemm_v2, ctypes.c_double
    else:
        raise TypeError(f"cuBLAS GEMMs take float32 or float64, got {out.dtype}")
    alpha_c, beta_c = scalar(alpha), scalar(beta)
    device = _device()
    with _LOCK:
        h = handle()
        _check(lib.cublasSetStream_v2(h, ctypes.c_void_p(stream)), "cublasSetStream")
        if lib.has_workspace:
            ws = getattr(_CAPTURE, "workspace", None)
            if ws is None:
                ws = stream_workspace(device, stream)
            _check(lib.cublasSetWorkspace_v2(h, ctypes.c_void_p(int(ws.data.ptr)), int(ws.nbytes)),
                   "cublasSetWorkspace")
        status = fn(h, CUBLAS_OP[transb], CUBLAS_OP[transa], n, m, k, ctypes.byref(alpha_c),
                    ctypes.c_void_p(int(b.data.ptr)), leading_dimension(b),
                    ctypes.c_void_p(int(a.data.ptr)), leading_dimension(a), ctypes.byref(beta_c),
                    ctypes.c_void_p(int(out.data.ptr)), leading_dimension(out))
    _check(status, f"cublas{'S' if out.dtype == np.float32 else 'D'}gemm ({transa}{transb}, m={m}, n={n}, k={k})")
