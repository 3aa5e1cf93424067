"""CUDA-graph capture and replay of fixed launch sequences, and the device workspaces they write.

A k-step Gibbs chain and a whole PCD/CD epoch are fixed sequences of GEMMs and kernels. The first
call with a given set of shapes, pointers and settings runs them eagerly; a repeat of the same
call replays a CUDA graph captured from them (captured once, on a private stream, then launched
on the caller's stream), with the Philox offset read from a small device buffer written just
before each replay (kernels/sampling.cu ``fg_set_stream``), so one graph serves every offset.
``FASTGEN_NO_CUDA_GRAPHS=1`` runs every sequence eagerly.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import _build
from . import cublas
from .cuda_runtime import current_device, launch, struct_dtypes, pack_record
from .lru import LeastRecentlyUsed

# kernels/include/fastgen/params/stream.h
STRUCTS = {"SetStreamParams": (("rng", "p"), ("seed", "u"), ("offset", "u"))}
DTYPES = struct_dtypes(STRUCTS)

MAX_GRAPHS = 16  # graphs (and workspaces) kept per process, least recently used evicted first

_GRAPHS = LeastRecentlyUsed(MAX_GRAPHS)
_WARNED: set = set()
# How recorded sequences ran in this process, for benchmarks and the GPU check to report.
STATS = {"eager": 0, "captured": 0, "replayed": 0, "capture_failed": 0}


def set_stream(rng, seed: int, offset: int) -> None:
    """Write {seed, offset} into the device stream buffer ``rng`` (uint64 [2]), ordered on the
    current stream like the launches that read it."""
    params = pack_record(DTYPES["SetStreamParams"], rng=rng, seed=int(seed), offset=int(offset))
    launch("sampling", "fg_set_stream", 1, params, block=32, grid=1)


class _Recorded:
    """A fixed launch sequence ``body(rng)`` (``rng`` None: absolute offsets, eager; a device
    buffer: offsets relative to it) run eagerly the first time a key is seen and replayed from a
    CUDA graph after that."""

    def __init__(self):
        self.seen = False
        self.graph = None
        self.failed = None
        self.rng = None
        self.capture_stream = None
        self.keep = None  # the workspace the graph's kernels write: must live as long as the graph
        self.cublas_workspace = None  # cuBLAS's scratch memory inside the graph: its stream's, kept alive


def array_key(a):
    """What a graph captured over the array ``a`` depends on: its address, shape, strides and
    dtype (CuPy's pool hands a freed address to the next array of any shape)."""
    if a is None:
        return None
    return (int(a.data.ptr), tuple(a.shape), tuple(a.strides), a.dtype.str)


def graph_key(name: str, arrays, settings) -> tuple:
    """The key of a recorded sequence: ``name``, every array it reads or writes (including its
    workspace's) by :func:`array_key`, and every setting its launches bake in."""
    return (name, tuple(array_key(a) for a in arrays), tuple(settings))


def graphs_enabled() -> bool:
    return not _build.flag("FASTGEN_NO_CUDA_GRAPHS")


def run_recorded(key, body, seed: int, first: int, *, keep=None):
    """Run ``body`` for (seed, first): eagerly on the first sighting of ``key``, from a captured
    graph on later ones. ``body(rng, offset_base)`` must only launch kernels and cuBLAS calls on
    buffers that outlive the graph (no allocation, no host synchronisation); ``keep`` (the
    workspace holding such buffers) is referenced by the graph's entry so that evicting the
    workspace cache cannot free memory a graph still writes. Returns "eager" or "graph" (for
    tests and benchmarks)."""
    import cupy as cp

    if not graphs_enabled():
        body(None, first)
        STATS["eager"] += 1
        return "eager"
    current = cp.cuda.get_current_stream()
    full_key = (key, current_device(), int(current.ptr))
    rec = _GRAPHS.get_or_make(full_key, _Recorded)
    if not rec.seen or rec.failed is not None:
        rec.seen = True
        body(None, first)
        STATS["eager"] += 1
        return "eager"
    if rec.graph is None:
        rec.keep = keep
        rec.rng = cp.zeros(2, dtype=np.uint64)
        rec.cublas_workspace = cublas.stream_workspace(current_device(), int(current.ptr))
        rec.capture_stream = cp.cuda.Stream(non_blocking=True)
        # The capture stream must see everything the caller's stream did before (the buffers'
        # contents are read at replay, but CuPy's pool may hand out memory freed on `current`).
        rec.capture_stream.wait_event(current.record())
        try:
            with rec.capture_stream, cublas.capture_workspace(rec.cublas_workspace):
                rec.capture_stream.begin_capture()
                try:
                    body(rec.rng, 0)
                finally:
                    rec.graph = rec.capture_stream.end_capture()
        except Exception as exc:  # capture not supported here: stay eager for this key
            rec.graph = None
            rec.failed = f"{type(exc).__name__}: {exc}"
            STATS["capture_failed"] += 1
            STATS["last_failure"] = rec.failed
            if key[0] not in _WARNED:
                _WARNED.add(key[0])
                warnings.warn(f"fastgen: CUDA graph capture of {key[0]} failed ({rec.failed}); running eagerly",
                              RuntimeWarning, stacklevel=3)
            body(None, first)
            STATS["eager"] += 1
            return "eager"
        STATS["captured"] += 1
    set_stream(rec.rng, seed, first)
    rec.graph.launch(stream=current)
    STATS["replayed"] += 1
    return "graph"


def clear_graphs() -> None:
    _GRAPHS.clear()


class Workspaces:
    """Device buffers of one (shape, dtype) configuration, reused across calls so that a
    captured graph's pointers stay valid (at most :data:`MAX_GRAPHS`, least recently used
    evicted first)."""

    _cache = LeastRecentlyUsed(MAX_GRAPHS)

    @classmethod
    def get(cls, key, make):
        """The workspace of ``key``, made by ``make()`` on first use."""
        return cls._cache.get_or_make(key, make)
