"""One thread pool for NumPy's BLAS, SciPy's BLAS and fastgen's kernels.

NumPy and SciPy each ship their own OpenBLAS, and each keeps worker threads that spin for about
0.1 s after every threaded call. fastgen's kernels run on an OpenMP team; called right after
NumPy's matmuls (or after scikit-learn, or inside a training loop that also uses NumPy), they
shared the cores with those spinning workers and ran at about half speed. OpenBLAS 0.3.27 and
later can hand their threaded work to the caller (``openblas_set_threads_callback_function``):
fastgen gives every pthreads OpenBLAS it finds loaded its own OpenMP runner
(``csrc/blas_threads.cpp``), so all of them run on one team whose threads sleep soon after use.

Results do not change (the same jobs run, each on a thread of its own). The number of threads
NumPy or SciPy use is still theirs to set (``threadpoolctl``, ``OPENBLAS_NUM_THREADS``). Set
``FASTGEN_SHARE_BLAS_THREADS=0`` before fastgen's first kernel call, or call
``fastgen.ops.share_blas_threads(False)``, to leave their own pools in place.
"""
from __future__ import annotations

import ctypes
import os

ENV_VARIABLE = "FASTGEN_SHARE_BLAS_THREADS"

# The setter's name in OpenBLAS and in the scipy-openblas builds NumPy (64-bit integers) and
# SciPy ship, which prefix and suffix their symbols.
SETTER_NAMES = ("openblas_set_threads_callback_function", "scipy_openblas_set_threads_callback_function64_",
                "scipy_openblas_set_threads_callback_function",
                "openblas_set_threads_callback_function64_")

_shared: dict[str, object] = {}   # library path -> its setter, for the libraries now sharing


def sharing_requested() -> bool:
    """Whether the environment leaves the sharing on (the default)."""
    return os.environ.get(ENV_VARIABLE, "").strip().lower() not in ("0", "false", "no", "off")


def _openblas_setters() -> dict[str, object]:
    """The loaded pthreads OpenBLAS libraries that have the hook, by path, with their setter."""
    from threadpoolctl import threadpool_info

    setters = {}
    for info in threadpool_info():
        if info.get("internal_api") != "openblas" or info.get("threading_layer") != "pthreads":
            continue
        try:
            library = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        for name in SETTER_NAMES:
            setter = getattr(library, name, None)
            if setter is not None:
                setter.argtypes, setter.restype = [ctypes.c_void_p], None
                setters[info["filepath"]] = setter
                break
    return setters


def install(callback_address: int | None) -> list[str]:
    """Hand every loaded pthreads OpenBLAS's threaded work to the function at
    ``callback_address`` (fastgen._C's runner, see fastgen._native.cpu.share_blas_threads), or
    with None give each library its own pool back. Returns the paths of the libraries now
    handing over their work.

    Call it while no other thread is inside a BLAS call: OpenBLAS reads the hook at each call.
    Libraries loaded later (a package imported after fastgen) are covered by the next call."""
    if callback_address is not None:
        for path, setter in _openblas_setters().items():
            setter(ctypes.c_void_p(callback_address))
            _shared[path] = setter
    else:
        for setter in _shared.values():
            setter(None)
        _shared.clear()
    return sorted(_shared)


def shared_libraries() -> list[str]:
    """Paths of the OpenBLAS libraries whose threaded work runs on fastgen's team."""
    return sorted(_shared)


__all__ = ["ENV_VARIABLE", "install", "shared_libraries", "sharing_requested"]
