"""The CUDA backend: kernels/*.cu compiled at run time by NVRTC through CuPy, cuBLAS GEMMs, and
CUDA graphs for fixed-shape loops.

Nothing here is imported by ``import fastgen``; CuPy is imported on first use, from
:func:`unavailable_reason` (which every CUDA path asks first).

Compilation and caching: each kernels/NAME.cu becomes one ``cupy.RawModule`` per process and
device, built on first use with :func:`fastgen._build.nvrtc_options` (``-I kernels/include``,
``--fmad=false`` so that the shared formulas round as on the CPU). CuPy caches the compiled
binary on disk (``~/.cupy/kernel_cache``, or ``$CUPY_CACHE_DIR``) keyed by the source text and
options; because NVRTC resolves ``#include`` itself, the source is prefixed with a hash of every
header so that editing a header invalidates that cache too.

Streams: every launch and GEMM goes to CuPy's current stream, which the ops set to the caller's
(torch's current stream for torch tensors, see :meth:`fastgen._backend.Placement.activate`).

Loops without host overhead: a k-step Gibbs chain and a whole PCD/CD epoch are fixed sequences
of GEMMs and kernels. The first call with a given set of shapes, pointers and settings runs them
eagerly; a repeat of the same call replays a CUDA graph captured from them (captured once, on a
private stream, then launched on the caller's stream), with the Philox offset read from a small
device buffer written just before each replay, so one graph serves every offset. RBMs whose
weights fit in shared memory can also run all k Gibbs steps in one fused kernel (one thread block
per chain).
"""
from __future__ import annotations

import functools
import hashlib
import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .. import _build

_LOCK = threading.Lock()
_THREADS = 256


# ---- availability ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def unavailable_reason() -> str | None:
    """None when CuPy imports and sees a CUDA device, else why not (for error messages)."""
    if _build.flag("FASTGEN_NO_CUDA"):
        return "FASTGEN_NO_CUDA is set"
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install raising at import
        return f"CuPy is not importable ({exc.__class__.__name__}: {exc}); install it with pip install 'fastgen[cuda]'"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"CuPy found no usable CUDA device ({exc})"
    if count < 1:
        return "CuPy found no CUDA device"
    return None


def available() -> bool:
    return unavailable_reason() is None


def require(what: str = "this operation"):
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"{what} needs a CUDA device: {reason}")
    import cupy

    return cupy


# ---- sources and modules --------------------------------------------------------------------
def kernel_dir() -> Path:
    """kernels/ of a source checkout (editable install), or the copy a wheel carries inside the
    package (fastgen/kernels, see setup.py)."""
    packaged = Path(__file__).resolve().parent / "kernels"
    if (packaged / "include" / "fastgen").is_dir():
        return packaged
    return _build.ROOT / "kernels"


def kernel_sources() -> list[Path]:
    return sorted(kernel_dir().glob("*.cu"))


def _headers_digest(include: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(include.rglob("*.h")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def nvrtc_options() -> tuple:
    """NVRTC options: _build's, with the include path of the kernels actually used."""
    include = kernel_dir() / "include"
    return tuple(f"-I{include}" if o.startswith("-I") else o for o in _build.nvrtc_options())


@functools.lru_cache(maxsize=None)
def _module(name: str, device: int):
    cp = require(f"kernels/{name}.cu")
    path = kernel_dir() / f"{name}.cu"
    source = f"// headers {_headers_digest(kernel_dir() / 'include')}\n" + path.read_text()
    with cp.cuda.Device(device):
        return cp.RawModule(code=source, options=nvrtc_options())


@functools.lru_cache(maxsize=None)
def _function(module: str, name: str, device: int):
    return _module(module, device).get_function(name)


@functools.lru_cache(maxsize=None)
def _sm_count(device: int) -> int:
    import cupy

    return int(cupy.cuda.Device(device).attributes["MultiProcessorCount"])


@functools.lru_cache(maxsize=None)
def _shared_optin(device: int) -> int:
    import cupy

    attrs = cupy.cuda.Device(device).attributes
    return int(attrs.get("MaxSharedMemoryPerBlockOptin", attrs.get("MaxSharedMemoryPerBlock", 48 * 1024)))


def _device() -> int:
    import cupy

    return int(cupy.cuda.Device().id)


def suffix(dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return "f32"
    if dtype == np.float64:
        return "f64"
    raise TypeError(f"CUDA kernels take float32 or float64, got {dtype}")


# ---- parameter structs (kernels/include/fastgen/gpu_params.h) -------------------------------
# Every field is 8 bytes: "p" pointer, "i" int64, "u" uint64, "d" double. Nested StreamParams
# are spelled out as their three fields. The offsets are checked against the C++ structs by
# tests/cuda/test_cuda_host.py.
_STREAM = (("stream_rng", "p"), ("stream_seed", "u"), ("stream_offset", "u"))
STRUCTS = {
    "FillParams": (("out", "p"), ("n", "i")) + _STREAM,
    "BernoulliGpuParams": (("input", "p"), ("bias", "p"), ("probs", "p"), ("states", "p"), ("clamp", "p"),
                           ("rows", "i"), ("cols", "i"), ("input_stride", "i"), ("probs_stride", "i"),
                           ("states_stride", "i"), ("clamp_stride", "i"), ("from_logits", "i")) + _STREAM,
    "GaussianGpuParams": (("mean", "p"), ("bias", "p"), ("stddev", "p"), ("stddev_scalar", "d"), ("out", "p"),
                          ("rows", "i"), ("cols", "i"), ("mean_stride", "i"), ("out_stride", "i")) + _STREAM,
    "VelocityParams": (("param", "p"), ("velocity", "p"), ("n", "i"), ("decay", "d")),
    "SgdParams": (("param", "p"), ("velocity", "p"), ("grad", "p"), ("n", "i"), ("lr", "d"), ("momentum", "d"),
                  ("weight_decay", "d")),
    "SetStreamParams": (("rng", "p"), ("seed", "u"), ("offset", "u")),
    "GibbsFusedParams": (("weights", "p"), ("visible_bias", "p"), ("hidden_bias", "p"), ("visible", "p"),
                         ("clamp", "p"), ("rows", "i"), ("n_visible", "i"), ("n_hidden", "i"),
                         ("visible_stride", "i"), ("clamp_stride", "i"), ("steps", "i")) + _STREAM,
}
_CODES = {"p": "<u8", "i": "<i8", "u": "<u8", "d": "<f8"}
DTYPES = {name: np.dtype([(f, _CODES[c]) for f, c in fields]) for name, fields in STRUCTS.items()}


def _ptr(a) -> int:
    return 0 if a is None else int(a.data.ptr)


def pack_record(dtype: np.dtype, **values) -> np.ndarray:
    """A one-element structured array of ``dtype`` holding a params struct's bytes: CuPy passes a
    size-one NumPy array to a kernel by value. Arrays are given as CuPy arrays (or None) and
    become pointers; fields left out are zero."""
    rec = np.zeros(1, dtype)
    for key, value in values.items():
        if key not in rec.dtype.names:
            raise KeyError(f"the params struct has no field {key}")
        if value is None:
            continue
        rec[key] = _ptr(value) if type(value).__module__.startswith("cupy") else value
    return rec


def pack(struct: str, **values) -> np.ndarray:
    """:func:`pack_record` for the structs of this module, by name."""
    return pack_record(DTYPES[struct], **values)


def stream_fields(seed: int, offset: int, rng=None) -> dict:
    """StreamParams fields: absolute (seed, offset), or ``offset`` relative to the device buffer
    ``rng`` = {seed, offset} (graph replays)."""
    if rng is None:
        return {"stream_seed": int(seed), "stream_offset": int(offset)}
    return {"stream_rng": rng, "stream_offset": int(offset)}


def _grid(work: int) -> int:
    # enough blocks to fill the device several times; the kernels loop over the rest
    return max(1, min(-(-work // _THREADS), _sm_count(_device()) * 16))


def launch(module: str, name: str, work: int, params: np.ndarray, *, block: int = _THREADS, shared: int = 0,
           grid: int | None = None) -> None:
    """Launch ``name`` from kernels/``module``.cu on the current stream over ``work`` items;
    nothing is launched when there is no work."""
    if work <= 0:
        return
    fn = _function(module, name, _device())
    if shared > 48 * 1024 and fn.max_dynamic_shared_size_bytes < shared:
        fn.max_dynamic_shared_size_bytes = shared
    fn((grid or _grid(work),), (block,), (params,), shared_mem=shared)


# ---- kernels as functions (CuPy arrays in, C-contiguous unless said otherwise) ----------------
def fill_bits(out, seed: int, offset: int, rng=None) -> None:
    """out (uint32, contiguous) = the Philox words of elements 0..n-1 of (seed, offset)."""
    params = pack("FillParams", out=out, n=out.size, **stream_fields(seed, offset, rng))
    launch("sampling", "fg_fill_bits", -(-out.size // 4), params)


def fill_uniform(out, seed: int, offset: int, rng=None) -> None:
    params = pack("FillParams", out=out, n=out.size, **stream_fields(seed, offset, rng))
    launch("sampling", f"fg_fill_uniform_{suffix(out.dtype)}", -(-out.size // 4), params)


def fill_normal(out, seed: int, offset: int, rng=None) -> None:
    params = pack("FillParams", out=out, n=out.size, **stream_fields(seed, offset, rng))
    launch("sampling", f"fg_fill_normal_{suffix(out.dtype)}", -(-out.size // 4), params)


def _row_stride(a) -> int:
    return int(a.strides[0] // a.itemsize) if a.ndim == 2 else int(a.shape[-1])


def bernoulli(x, bias=None, probs=None, states=None, *, from_logits: bool = True, seed: int = 0, offset: int = 0,
              rng=None, clamp=None) -> None:
    """The fused bias + sigmoid + draw of csrc/sampling.cpp on [rows, cols] arrays (rows may be
    strided, columns contiguous); probs and/or states may alias x. ``clamp`` (uint8, [cols] or
    [rows, cols]): nonzero entries of states are left untouched."""
    rows, cols = (x.shape if x.ndim == 2 else (1, x.shape[0]))
    params = pack(
        "BernoulliGpuParams", input=x, bias=bias, probs=probs, states=states, clamp=clamp,
        rows=rows, cols=cols, input_stride=_row_stride(x),
        probs_stride=_row_stride(probs) if probs is not None else 0,
        states_stride=_row_stride(states) if states is not None else 0,
        clamp_stride=(_row_stride(clamp) if clamp is not None and clamp.ndim == 2 else 0),
        from_logits=int(bool(from_logits)), **stream_fields(seed, offset, rng))
    launch("sampling", f"fg_bernoulli_{suffix(x.dtype)}", -(-(rows * cols) // 4), params)


def gaussian(mean, out, *, bias=None, std=None, std_scalar: float = 0.0, seed: int = 0, offset: int = 0) -> None:
    rows, cols = (mean.shape if mean.ndim == 2 else (1, mean.shape[0]))
    params = pack("GaussianGpuParams", mean=mean, bias=bias, stddev=std, stddev_scalar=float(std_scalar), out=out,
                  rows=rows, cols=cols, mean_stride=_row_stride(mean), out_stride=_row_stride(out),
                  **stream_fields(seed, offset))
    launch("sampling", f"fg_gaussian_{suffix(mean.dtype)}", -(-(rows * cols) // 4), params)


def apply_velocity(param, velocity, decay: float) -> None:
    params = pack("VelocityParams", param=param, velocity=velocity, n=param.size, decay=float(decay))
    launch("rbm", f"fg_apply_velocity_{suffix(param.dtype)}", param.size, params)


def sgd_update(param, grad, *, velocity=None, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
    """param += lr (grad - weight_decay param), through a momentum buffer when given (the CPU's
    sgd_momentum_update)."""
    params = pack("SgdParams", param=param, velocity=velocity, grad=grad, n=param.size, lr=float(lr),
                  momentum=float(momentum), weight_decay=float(weight_decay))
    launch("rbm", f"fg_sgd_update_{suffix(param.dtype)}", param.size, params)


def set_stream(rng, seed: int, offset: int) -> None:
    launch("rbm", "fg_set_stream", 1, pack("SetStreamParams", rng=rng, seed=int(seed), offset=int(offset)),
           block=32, grid=1)


def gemm(transa: str, transb: str, a, b, out, alpha: float = 1.0, beta: float = 0.0) -> None:
    """out = alpha op(a) @ op(b) + beta out on cuBLAS (C-contiguous operands, no copies, no
    allocation: safe inside a graph capture). alpha and beta are rounded to out's dtype, as the
    CPU loops compute them in T."""
    import cupy.cublas

    t = out.dtype.type
    cupy.cublas.gemm(transa, transb, a, b, out=out, alpha=t(alpha), beta=t(beta))


# ---- fused multi-step Gibbs -----------------------------------------------------------------
def fused_gibbs_shared_bytes(n_visible: int, n_hidden: int, dtype) -> int:
    ldw = n_visible | 1
    return (n_hidden * ldw + n_visible + n_hidden) * np.dtype(dtype).itemsize


def fused_gibbs_fits(n_visible: int, n_hidden: int, dtype) -> bool:
    return fused_gibbs_shared_bytes(n_visible, n_hidden, dtype) <= _shared_optin(_device())


def gibbs_fused(v, W, b_vis, b_hid, steps: int, *, seed: int, offset: int, clamp=None) -> None:
    """All ``steps`` block-Gibbs steps of every chain (rows of v, updated in place) in one kernel,
    W in shared memory."""
    rows, nv = v.shape
    nh = W.shape[0]
    params = pack("GibbsFusedParams", weights=W, visible_bias=b_vis, hidden_bias=b_hid, visible=v, clamp=clamp,
                  rows=rows, n_visible=nv, n_hidden=nh, visible_stride=_row_stride(v),
                  clamp_stride=(_row_stride(clamp) if clamp is not None and clamp.ndim == 2 else 0),
                  steps=int(steps), **stream_fields(seed, offset))
    shared = fused_gibbs_shared_bytes(nv, nh, v.dtype)
    launch("rbm", f"fg_gibbs_fused_{suffix(v.dtype)}", rows, params, block=_THREADS, shared=shared,
           grid=min(rows, _sm_count(_device()) * 8))


# ---- graphs ---------------------------------------------------------------------------------
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


_GRAPHS: OrderedDict = OrderedDict()
_MAX_GRAPHS = 16
_WARNED: set = set()


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
        return "eager"
    current = cp.cuda.get_current_stream()
    full_key = (key, _device(), int(current.ptr))
    with _LOCK:
        rec = _GRAPHS.get(full_key)
        if rec is None:
            rec = _Recorded()
            _GRAPHS[full_key] = rec
            while len(_GRAPHS) > _MAX_GRAPHS:
                _GRAPHS.popitem(last=False)
        else:
            _GRAPHS.move_to_end(full_key)
    if not rec.seen or rec.failed is not None:
        rec.seen = True
        body(None, first)
        return "eager"
    if rec.graph is None:
        rec.keep = keep
        rec.rng = cp.zeros(2, dtype=np.uint64)
        rec.capture_stream = cp.cuda.Stream(non_blocking=True)
        # The capture stream must see everything the caller's stream did before (the buffers'
        # contents are read at replay, but CuPy's pool may hand out memory freed on `current`).
        rec.capture_stream.wait_event(current.record())
        try:
            with rec.capture_stream:
                rec.capture_stream.begin_capture()
                try:
                    body(rec.rng, 0)
                finally:
                    rec.graph = rec.capture_stream.end_capture()
        except Exception as exc:  # capture not supported here: stay eager for this key
            rec.graph = None
            rec.failed = f"{type(exc).__name__}: {exc}"
            if key[0] not in _WARNED:
                _WARNED.add(key[0])
                warnings.warn(f"fastgen: CUDA graph capture of {key[0]} failed ({rec.failed}); running eagerly",
                              RuntimeWarning, stacklevel=3)
            body(None, first)
            return "eager"
    set_stream(rec.rng, seed, first)
    rec.graph.launch(stream=current)
    return "graph"


def clear_graphs() -> None:
    with _LOCK:
        _GRAPHS.clear()


# ---- RBM loops ------------------------------------------------------------------------------
class _Workspace:
    """Device buffers of one (shape, dtype) configuration, reused across calls so that a
    captured graph's pointers stay valid."""

    _cache: OrderedDict = OrderedDict()

    @classmethod
    def get(cls, key, make):
        with _LOCK:
            ws = cls._cache.get(key)
            if ws is None:
                ws = make()
                cls._cache[key] = ws
                while len(cls._cache) > _MAX_GRAPHS:
                    cls._cache.popitem(last=False)
            else:
                cls._cache.move_to_end(key)
            return ws


def gibbs_method(rows: int, n_visible: int, n_hidden: int, steps: int, dtype, method: str = "auto") -> str:
    """Which Gibbs implementation runs: "fused" (one kernel, W in shared memory), "graph" (the
    per-step GEMMs + sampling kernels, replayed from a CUDA graph on repeated calls) or "eager".

    ``auto``: fused when W fits in shared memory and there are at most 8 chains per
    multiprocessor (each chain is one thread block, and with many chains the GEMM path's tensor
    throughput wins); graph otherwise. These crossovers are first guesses, to be replaced by the
    measurements of ``python -m bench rbm --device cuda`` (see docs/GPU.md).
    ``FASTGEN_GIBBS_METHOD`` overrides ``auto``.
    """
    if method == "auto":
        method = os.environ.get("FASTGEN_GIBBS_METHOD", "auto").strip().lower() or "auto"
    if method == "auto":
        if fused_gibbs_fits(n_visible, n_hidden, dtype) and rows <= 8 * _sm_count(_device()):
            return "fused"
        return "graph"
    if method not in ("fused", "graph", "eager"):
        raise ValueError(f"method must be 'auto', 'fused', 'graph' or 'eager', got {method!r}")
    if method == "fused" and not fused_gibbs_fits(n_visible, n_hidden, dtype):
        raise ValueError(f"method='fused' needs W in shared memory: {n_hidden}x{n_visible} {np.dtype(dtype)} needs "
                         f"{fused_gibbs_shared_bytes(n_visible, n_hidden, dtype)} bytes, the device has "
                         f"{_shared_optin(_device())}")
    return method


def gibbs(v_out, W, b_vis, b_hid, steps: int, *, seed: int, first: int, clamp=None, method: str = "auto") -> str:
    """``steps`` block-Gibbs steps on v_out in place (CuPy, C-contiguous, W's dtype); the counters of
    csrc/rbm.cpp: step s samples h at offset first + 2 s, v at first + 2 s + 1. Returns the
    method used."""
    import cupy as cp

    n, nv = v_out.shape
    nh = W.shape[0]
    if n == 0 or steps == 0:
        return "eager"
    method = gibbs_method(n, nv, nh, steps, v_out.dtype, method)
    if method == "fused":
        gibbs_fused(v_out, W, b_vis, b_hid, steps, seed=seed, offset=first, clamp=clamp)
        return "fused"
    clamp_shape = None if clamp is None else tuple(clamp.shape)
    ws_key = ("gibbs", _device(), int(cp.cuda.get_current_stream().ptr), v_out.dtype.str, n, nv, nh, clamp_shape)

    def make():
        return {"v": cp.empty((n, nv), v_out.dtype), "v_pre": cp.empty((n, nv), v_out.dtype),
                "h": cp.empty((n, nh), v_out.dtype),
                "clamp": None if clamp is None else cp.empty(clamp.shape, cp.uint8)}

    ws = _Workspace.get(ws_key, make) if method == "graph" else make()
    v, v_pre, h = ws["v"], ws["v_pre"], ws["h"]
    mask = ws["clamp"]
    if mask is not None:
        mask[...] = clamp
    v[...] = v_out

    def body(rng, base):
        for s in range(steps):
            gemm("N", "T", v, W, h)                     # h = v @ W^T
            bernoulli(h, b_hid, None, h, seed=seed, offset=base + 2 * s, rng=rng)
            gemm("N", "N", h, W, v_pre)                 # v_pre = h @ W
            bernoulli(v_pre, b_vis, None, v, seed=seed, offset=base + 2 * s + 1, rng=rng, clamp=mask)

    if method == "eager":
        body(None, first)
        used = "eager"
    else:
        key = ("gibbs", v.data.ptr, W.data.ptr, b_vis.data.ptr, b_hid.data.ptr, steps,
               None if mask is None else mask.data.ptr)
        used = run_recorded(key, body, seed, first, keep=ws)
    v_out[...] = v
    return used


def hidden_probs(v, W, b_hid, out) -> None:
    """out = sigmoid(v @ W^T + b_hid)."""
    gemm("N", "T", v, W, out)
    bernoulli(out, b_hid, out, None)


def train_epoch(W, b_vis, b_hid, data, *, batch_size: int, cd_k: int, lr: float, momentum: float,
                weight_decay: float, chains=None, velocities=None, seed: int, first: int) -> str:
    """One CD-k / PCD-k pass over ``data`` (CuPy, C-contiguous, W's dtype) in mini-batches, updating
    W, b_vis, b_hid (and the persistent ``chains``, the momentum ``velocities``) in place: the
    algorithm and counters of csrc/rbm.cpp's rbm_train_batches, with the GEMMs on cuBLAS and the
    gradient scaling, weight decay and bias gradients folded into the GEMMs' alpha/beta (so no
    gradient array is ever written). Returns "eager" or "graph"."""
    import cupy as cp

    n, nv = data.shape
    nh = W.shape[0]
    if n == 0:
        return "eager"
    dtype = W.dtype
    t = dtype.type
    B_max = min(batch_size, n)
    persistent = chains is not None
    C_fixed = chains.shape[0] if persistent else None
    ws_key = ("epoch", _device(), int(cp.cuda.get_current_stream().ptr), dtype.str, n, nv, nh, batch_size,
              C_fixed)

    def make():
        C = C_fixed or B_max
        return {"h_pos": cp.empty((B_max, nh), dtype), "v_neg": cp.empty((C, nv), dtype),
                "h_neg": cp.empty((C, nh), dtype), "cd_chains": None if persistent else cp.empty((B_max, nh), dtype),
                "ones": cp.ones(max(B_max, C), dtype)}

    ws = _Workspace.get(ws_key, make)
    per_batch = 2 * cd_k + 1
    lr_t = t(lr)
    vW, vb, vh = velocities if velocities is not None else (None, None, None)

    def bias_update(bias, velocity, pos, B, neg, C):
        # grad = mean(pos rows) - mean(neg rows) as two GEMVs with a ones vector; plain SGD adds
        # lr * grad to the bias directly, momentum accumulates it into the velocity first.
        ones_b = ws["ones"][:B].reshape(1, B)
        ones_c = ws["ones"][:C].reshape(1, C)
        target = (bias if velocity is None else velocity).reshape(1, -1)
        gemm("N", "N", ones_b, pos, target, alpha=lr_t / t(B), beta=1.0 if velocity is None else t(momentum))
        gemm("N", "N", ones_c, neg, target, alpha=-lr_t / t(C), beta=1.0)
        if velocity is not None:
            apply_velocity(bias, velocity, 0.0)

    def body(rng, base):
        for b, start in enumerate(range(0, n, batch_size)):
            B = min(batch_size, n - start)
            v = data[start:start + B]
            s = base + b * per_batch
            h_pos = ws["h_pos"][:B]
            gemm("N", "T", v, W, h_pos)
            if persistent:
                chain, C = chains, C_fixed
                bernoulli(h_pos, b_hid, h_pos, None)
            else:
                chain, C = ws["cd_chains"][:B], B
                bernoulli(h_pos, b_hid, h_pos, chain, seed=seed, offset=s, rng=rng)
            v_neg, h_neg = ws["v_neg"][:C], ws["h_neg"][:C]
            for step in range(cd_k):
                gemm("N", "N", chain, W, v_neg)
                bernoulli(v_neg, b_vis, None, v_neg, seed=seed, offset=s + 1 + 2 * step, rng=rng)
                gemm("N", "T", v_neg, W, h_neg)
                if step + 1 == cd_k and not persistent:
                    bernoulli(h_neg, b_hid, h_neg, None)
                else:
                    bernoulli(h_neg, b_hid, h_neg, chain, seed=seed, offset=s + 2 + 2 * step, rng=rng)
            bias_update(b_vis, vb, v, B, v_neg, C)
            bias_update(b_hid, vh, h_pos, B, h_neg, C)
            if vW is None:
                gemm("T", "N", h_pos, v, W, alpha=lr_t / t(B), beta=t(1) - lr_t * t(weight_decay))
                gemm("T", "N", h_neg, v_neg, W, alpha=-lr_t / t(C), beta=1.0)
            else:
                gemm("T", "N", h_pos, v, vW, alpha=lr_t / t(B), beta=t(momentum))
                gemm("T", "N", h_neg, v_neg, vW, alpha=-lr_t / t(C), beta=1.0)
                apply_velocity(W, vW, lr_t * t(weight_decay))

    key = ("epoch", data.data.ptr, W.data.ptr, b_vis.data.ptr, b_hid.data.ptr,
           None if chains is None else chains.data.ptr,
           None if vW is None else (vW.data.ptr, vb.data.ptr, vh.data.ptr), batch_size, cd_k,
           float(lr), float(momentum), float(weight_decay))
    return run_recorded(key, body, seed, first, keep=ws)
