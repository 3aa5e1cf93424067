"""bench/gpu_smoke.py run end to end without a GPU, so that its own Python (the arguments it passes
to the launchers, its shapes and dtypes, its NumPy references and comparisons, its runner) has run
before the one device call that matters.

``import cupy`` gives a NumPy-backed stand-in (arrays are an ndarray subclass with CuPy's
``.get()`` / ``.set()`` / ``.data.ptr``, refusing NumPy operands in arithmetic as CuPy does; a
device, streams, events and CUDA-graph capture that records launches and replays them). The
launchers of fastgen/_native/cuda_*.py run unchanged down to ``launch``, which is replaced by a
dispatcher that decodes the packed params struct, turns its pointers back into arrays (checked to
lie inside a live allocation) and runs the CPU kernel of fastgen._C for that entry point; cuBLAS's
``gemm`` is replaced by NumPy on the operands read through their pointers and leading dimensions.
So every check that launches kernels is expected to PASS: a FAIL is a wrong reference (or a
difference between the CPU kernels and the launchers' reading of them), an ERROR a bug in the
script or in the glue, not in the CUDA code, which none of this runs.

Not covered: the kernels themselves, NVRTC, cuBLAS, real capture rules (allocation inside a
capture, for one), the SASS probe (no cuobjdump: SKIP) and the torch interop check (torch has no
CUDA here: SKIP). ``np.asarray`` of a stand-in array silently works (CuPy refuses it): the
script's ``close`` / ``equal`` are wrapped to refuse device arrays instead.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import json
import sys
import types
import weakref
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
C = pytest.importorskip("fastgen._native.cpu").C

LAUNCHER_MODULES = ("cuda_runtime", "graphs", "cuda_sampling", "cuda_gibbs", "cuda_cd", "cuda_elbo", "cuda_reparam",
                    "cuda_pool", "cuda_conv", "cuda_categorical", "cuda_vae")


# ==== a NumPy stand-in for CuPy ====================================================================
class _State:
    def __init__(self):
        self.allocations = {}  # id -> (start, end)
        self.capture = None  # list of deferred launches while a stream captures
        self.stream_stack = []
        self.launched = []


STATE = _State()


class _Pointer:
    def __init__(self, ptr):
        self.ptr = ptr


def _register(arr):
    """Records the memory of the array that owns ``arr``'s (for pointer checks)."""
    owner = arr
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    key = id(owner)
    if key not in STATE.allocations:
        start = owner.__array_interface__["data"][0]
        STATE.allocations[key] = (start, start + max(owner.nbytes, 1))
        weakref.finalize(owner, STATE.allocations.pop, key, None)


class ndarray(np.ndarray):  # noqa: N801 - CuPy's name
    """A device array: NumPy memory, CuPy's surface."""

    def __array_finalize__(self, obj):
        _register(self)

    @property
    def data(self):
        return _Pointer(self.__array_interface__["data"][0])

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.data.ptr, False),
                "strides": self.strides, "version": 3}

    @property
    def device(self):
        return Device(0)

    def get(self, stream=None, order="C", out=None):
        _not_capturing("ndarray.get")
        return np.array(self.view(np.ndarray), copy=True)

    def set(self, arr, stream=None):
        if not isinstance(arr, np.ndarray) or isinstance(arr, ndarray):
            raise TypeError("set takes a numpy.ndarray")
        self.view(np.ndarray)[...] = arr

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        outs = kwargs.get("out", ())
        for x in inputs + tuple(outs):
            if type(x) is np.ndarray:  # CuPy refuses implicit host-device mixes
                raise TypeError(f"Unsupported type {type(x)} (a NumPy array in a CuPy {ufunc.__name__})")
        args = [x.view(np.ndarray) if isinstance(x, ndarray) else x for x in inputs]
        if outs:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, ndarray) else o for o in outs)
        result = getattr(ufunc, method)(*args, **kwargs)
        if outs:
            return outs[0] if len(outs) == 1 else outs
        if isinstance(result, tuple):
            return tuple(r.view(ndarray) if isinstance(r, np.ndarray) else r for r in result)
        return result.view(ndarray) if isinstance(result, np.ndarray) else result


ndarray.__module__ = "cupy"  # pack_record turns cupy arrays into pointers


def _not_capturing(what):
    if STATE.capture is not None:
        raise RuntimeError(f"cudaErrorStreamCaptureUnsupported: {what} while a stream is capturing")


def _make(fn):
    def made(*args, **kwargs):
        return fn(*args, **kwargs).view(ndarray)
    made.__name__ = fn.__name__
    return made


def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray) and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    return np.array(a.view(np.ndarray) if isinstance(a, ndarray) else a, dtype=dtype, order=order or "K").view(ndarray)


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError("cupy.ascontiguousarray takes a cupy array")
    return np.ascontiguousarray(a, dtype=dtype).view(ndarray)


def asnumpy(a, stream=None):
    _not_capturing("asnumpy")
    return np.array(a.view(np.ndarray) if isinstance(a, ndarray) else a, copy=True)


class Event:
    def synchronize(self):
        _not_capturing("Event.synchronize")


class Graph:
    def __init__(self, ops):
        self.ops = ops

    def launch(self, stream=None):
        _not_capturing("Graph.launch")
        for op in self.ops:
            op()


class Stream:
    _next = 0x5000

    def __init__(self, null=False, non_blocking=False, ptds=False):
        Stream._next += 0x100
        self.ptr = 0 if null else Stream._next

    def __enter__(self):
        STATE.stream_stack.append(self)
        return self

    def __exit__(self, *exc):
        STATE.stream_stack.pop()
        return False

    def record(self, event=None):
        return event or Event()

    def wait_event(self, event):
        pass

    def synchronize(self):
        _not_capturing("Stream.synchronize")

    def begin_capture(self, mode=None):
        if STATE.capture is not None:
            raise RuntimeError("a capture is already under way")
        STATE.capture = []

    def end_capture(self):
        ops, STATE.capture = STATE.capture, None
        return Graph(ops)

    def is_capturing(self):
        return STATE.capture is not None


NULL_STREAM = Stream(null=True)


def get_current_stream():
    return STATE.stream_stack[-1] if STATE.stream_stack else NULL_STREAM


class Device:
    attributes = {"MultiProcessorCount": 132, "MaxSharedMemoryPerBlockOptin": 227 * 1024,
                  "MaxSharedMemoryPerBlock": 48 * 1024}
    compute_capability = "90"

    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)
        if self.id != 0:
            raise RuntimeError(f"cudaErrorInvalidDevice: device {self.id}")

    def synchronize(self):
        _not_capturing("Device.synchronize")

    def use(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _runtime():
    rt = types.SimpleNamespace()
    rt.getDeviceCount = lambda: 1
    rt.driverGetVersion = lambda: 12080
    rt.runtimeGetVersion = lambda: 12080
    rt.getDeviceProperties = lambda device: {
        "name": b"Stand-in H100", "major": 9, "minor": 0, "multiProcessorCount": 132,
        "sharedMemPerBlockOptin": 227 * 1024, "l2CacheSize": 50 * 2**20, "totalGlobalMem": 80 * 2**30,
        "clockRate": 1980000, "memoryClockRate": 2619000}
    return rt


def make_cupy():
    cp = types.ModuleType("cupy")
    cp.__version__ = "14.2.0-numpy-stand-in"
    cp.ndarray = ndarray
    for name in ("float32", "float64", "uint8", "uint32", "uint64", "int32", "int64", "bool_", "dtype"):
        setattr(cp, name, getattr(np, name))
    for name in ("empty", "zeros", "ones", "full", "empty_like", "zeros_like", "ones_like", "full_like", "arange",
                 "tile", "stack", "concatenate"):
        setattr(cp, name, _make(getattr(np, name)))
    cp.asarray, cp.array, cp.ascontiguousarray, cp.asnumpy = asarray, asarray, ascontiguousarray, asnumpy
    cp.isfinite = np.isfinite
    cp.cuda = types.SimpleNamespace(Device=Device, Stream=Stream, Event=Event, get_current_stream=get_current_stream,
                                    runtime=_runtime(), graph=types.SimpleNamespace(Graph=Graph))
    return cp


# ==== pointers back to arrays ======================================================================
def _view(ptr, shape, dtype, row_stride=None):
    """The array at device address ``ptr`` (None for a null pointer), rows ``row_stride`` elements
    apart, after checking that every byte lies inside one live allocation."""
    ptr = int(ptr)
    if ptr == 0:
        return None
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    strides = None
    size = int(np.prod(shape))
    nbytes = size * dtype.itemsize
    if row_stride is not None and len(shape) == 2 and shape[0] > 0:
        strides = (int(row_stride) * dtype.itemsize, dtype.itemsize)
        nbytes = ((shape[0] - 1) * int(row_stride) + shape[1]) * dtype.itemsize if size else 0
    end = ptr + nbytes
    if not any(lo <= ptr and end <= hi for lo, hi in list(STATE.allocations.values())):
        raise RuntimeError(f"an illegal memory access: {nbytes} bytes at {ptr:#x} lie in no live allocation "
                           f"(shape {shape}, {dtype}, row stride {row_stride})")
    if nbytes == 0:
        return np.empty(shape, dtype)
    buf = (ctypes.c_char * nbytes).from_address(ptr)
    return np.ndarray(shape, dtype, buffer=buf, strides=strides)


def _stream(r):
    rng = int(r["stream_rng"])
    if rng:
        buf = _view(rng, (2,), np.uint64)
        return int(buf[0]), (int(buf[1]) + int(r["stream_offset"])) % 2**64
    return int(r["stream_seed"]), int(r["stream_offset"])


def _c(a):
    return None if a is None else np.ascontiguousarray(a)


# ==== the CPU kernels behind each entry point ======================================================
def k_fill(r, dt, kind):
    n = int(r["n"])
    seed, offset = _stream(r)
    out = _view(r["out"], (n,), np.uint32 if kind == "bits" else dt)
    {"bits": C.fill_bits, "uniform": C.fill_uniform, "normal": C.fill_normal}[kind](out, seed, offset)


def k_set_stream(r, dt):
    rng = _view(r["rng"], (2,), np.uint64)
    rng[0], rng[1] = np.uint64(int(r["seed"])), np.uint64(int(r["offset"]))


def k_bernoulli(r, dt):
    rows, cols = int(r["rows"]), int(r["cols"])
    x = _view(r["input"], (rows, cols), dt, r["input_stride"])
    bias = _view(r["bias"], (cols,), dt)
    probs = _view(r["probs"], (rows, cols), dt, r["probs_stride"])
    states = _view(r["states"], (rows, cols), dt, r["states_stride"])
    clamp = None
    if int(r["clamp"]):
        clamp = (_view(r["clamp"], (cols,), np.uint8) if int(r["clamp_stride"]) == 0
                 else _view(r["clamp"], (rows, cols), np.uint8, r["clamp_stride"]))
    seed, offset = _stream(r)
    xin = np.array(x)  # probs and states may alias x
    s = np.empty_like(xin) if states is not None else None
    if int(r["from_logits"]):
        p = np.empty_like(xin)
        C.sample_bernoulli(xin, _c(bias), p, s, True, seed, offset)
        if probs is not None:
            probs[...] = p
    else:
        assert bias is None and probs is None, "from_logits=False takes no bias and writes no probs"
        C.sample_bernoulli(xin, None, None, s, False, seed, offset)
    if states is not None:
        if clamp is not None:
            s = np.where(np.broadcast_to(clamp != 0, s.shape), states, s)
        states[...] = s


def k_gaussian(r, dt):
    rows, cols = int(r["rows"]), int(r["cols"])
    mean = _view(r["mean"], (rows, cols), dt, r["mean_stride"])
    out = _view(r["out"], (rows, cols), dt, r["out_stride"])
    bias, std = _view(r["bias"], (cols,), dt), _view(r["stddev"], (cols,), dt)
    seed, offset = _stream(r)
    tmp = np.empty((rows, cols), dt)
    C.sample_gaussian(np.array(mean), _c(bias), _c(std), float(r["stddev_scalar"]), tmp, seed, offset)
    out[...] = tmp


def k_sgd(r, dt):
    n = int(r["n"])
    C.sgd_momentum_update(_view(r["param"], (n,), dt), _view(r["velocity"], (n,), dt), _view(r["grad"], (n,), dt),
                          float(r["lr"]), float(r["momentum"]), float(r["weight_decay"]))


def k_velocity(r, dt):  # no CPU binding of its own: the CPU's apply_velocity in NumPy
    n = int(r["n"])
    p, v = _view(r["param"], (n,), dt), _view(r["velocity"], (n,), dt)
    v -= dt.type(float(r["decay"])) * p
    p += v


def k_gibbs_fused(r, dt):
    rows, nv, nh = int(r["rows"]), int(r["n_visible"]), int(r["n_hidden"])
    W = _view(r["weights"], (nh, nv), dt)
    vb, hb = _view(r["visible_bias"], (nv,), dt), _view(r["hidden_bias"], (nh,), dt)
    v = _view(r["visible"], (rows, nv), dt, r["visible_stride"])
    clamp = None
    if int(r["clamp"]):
        clamp = (_view(r["clamp"], (nv,), np.uint8) if int(r["clamp_stride"]) == 0
                 else np.array(_view(r["clamp"], (rows, nv), np.uint8, r["clamp_stride"])))
    seed, offset = _stream(r)
    out = np.empty((rows, nv), dt)
    C.rbm_gibbs(W, vb, hb, np.array(v), out, None, clamp, int(r["steps"]), seed, offset)
    v[...] = out


def _logvar(r, dt, rows, cols):
    mode = int(r["logvar_mode"])
    return None if mode == 0 else _view(r["logvar"], (cols,) if mode == 1 else (rows, cols), dt)


def k_elbo(r, dt, kind):
    rows, cols = int(r["rows"]), int(r["cols"])
    x = _view(r["x"], (rows, cols), dt)
    if kind == "bernoulli_ll":
        C.bernoulli_log_likelihood(x, _view(r["logits"], (rows, cols), dt), _view(r["out"], (rows,), dt))
    elif kind == "bernoulli_ll_backward":
        C.bernoulli_log_likelihood_backward(x, _view(r["logits"], (rows, cols), dt), _view(r["grad"], (rows,), dt),
                                            _view(r["out"], (rows, cols), dt),
                                            _view(r["grad_x"], (rows, cols), dt))
    elif kind == "gaussian_ll":
        C.gaussian_log_likelihood(x, _view(r["mean"], (rows, cols), dt), _logvar(r, dt, rows, cols),
                                  _view(r["out"], (rows,), dt))
    else:
        mean, grad, lv = _view(r["mean"], (rows, cols), dt), _view(r["grad"], (rows,), dt), _logvar(r, dt, rows, cols)
        mode = int(r["logvar_mode"])
        if kind == "gaussian_ll_backward":
            C.gaussian_log_likelihood_backward(x, mean, lv, grad, _view(r["out"], (rows, cols), dt),
                                               _view(r["grad_logvar"], (rows, cols), dt) if mode == 2 else None,
                                               _view(r["grad_x"], (rows, cols), dt))
        else:  # the per-feature logvar's column sums, a launch of their own
            assert mode == 1, mode
            C.gaussian_log_likelihood_backward(x, mean, lv, grad, np.empty((rows, cols), dt),
                                               _view(r["grad_logvar"], (cols,), dt), None)


def k_reparam(r, dt, kind):
    rows, cols, first_row = int(r["rows"]), int(r["cols"]), int(r["first_row"])
    seed, offset = _stream(r)
    if kind == "forward":
        C.reparameterize_forward(np.array(_view(r["mu"], (rows, cols), dt, r["mu_stride"])),
                                 np.array(_view(r["logvar"], (rows, cols), dt, r["logvar_stride"])),
                                 _view(r["z"], (rows, cols), dt), _view(r["kl"], (rows,), dt), seed, offset, first_row)
    else:
        C.reparameterize_backward(_view(r["grad_z"], (rows, cols), dt), _view(r["grad_kl"], (rows,), dt),
                                  _view(r["mu"], (rows, cols), dt), _view(r["logvar"], (rows, cols), dt),
                                  _view(r["grad_mu"], (rows, cols), dt), _view(r["grad_logvar"], (rows, cols), dt),
                                  seed, offset, first_row)


def k_max_pool(r, dt):
    g = {k: int(r[k]) for k in ("planes", "in_h", "in_w", "out_h", "out_w", "kernel_h", "kernel_w", "stride_h",
                                 "stride_w", "pad_h", "pad_w")}
    C.max_pool2d(_view(r["in"], (g["planes"], g["in_h"], g["in_w"]), dt),
                 _view(r["out"], (g["planes"], g["out_h"], g["out_w"]), dt),
                 _view(r["indices"], (g["planes"], g["out_h"], g["out_w"]), np.int64),
                 (g["kernel_h"], g["kernel_w"], g["stride_h"], g["stride_w"], g["pad_h"], g["pad_w"]))


def k_planes(r, dt, kind):
    planes, sp, dp = int(r["planes"]), int(r["src_plane"]), int(r["dst_plane"])
    src, dst = _view(r["src"], (planes, sp), dt), _view(r["dst"], (planes, dp), dt)
    if kind == "gather_planes":
        C.gather_planes(src, _view(r["indices"], (planes, dp), np.int64), dst)
    else:
        C.scatter_planes(src, _view(r["indices"], (planes, sp), np.int64), dst, kind == "scatter_add")


def k_avg_unpool(r, dt, backward):
    planes, h, w, kh, kw = (int(r[k]) for k in ("planes", "h", "w", "kernel_h", "kernel_w"))
    small, big = (planes, h, w), (planes, h * kh, w * kw)
    C.avg_unpool2d(_view(r["in"], big if backward else small, dt), _view(r["out"], small if backward else big, dt),
                   kh, kw, backward)


GEOMETRY = ("batch", "in_c", "in_h", "in_w", "out_c", "out_h", "out_w", "kernel_h", "kernel_w", "stride_h",
            "stride_w", "pad_h", "pad_w")


def k_conv(r, dt, kind):
    geom = tuple(int(r[k]) for k in GEOMETRY)
    n, ci, h, w, co, oh, ow, kh, kw = geom[:9]
    cols = _view(r["cols"], (co * kh * kw, n * h * w), dt)
    out = _view(r["out"], (n, co, oh, ow), dt)
    if kind == "output":
        C.conv_transpose2d_output(cols, _view(r["bias"], (co,), dt), out, geom, int(r["activation"]),
                                  float(r["slope"]))
    else:
        C.conv_transpose2d_im2col(out, cols, geom)


def k_activation_backward(r, dt):
    n = int(r["n"])
    C.activation_backward(_view(r["grad_out"], (n,), dt), _view(r["y"], (n,), dt), _view(r["grad_in"], (n,), dt),
                          int(r["activation"]), float(r["slope"]))


def k_categorical(r, dt):
    rows, cols = int(r["rows"]), int(r["cols"])
    seed, offset = _stream(r)
    C.sample_categorical(np.array(_view(r["logits"], (rows, cols), dt, r["logits_stride"])),
                         _view(r["out"], (rows,), np.int64), float(r["temperature"]), int(r["top_k"]), seed, offset)


KERNELS = {
    "fg_fill_bits": lambda r, dt: k_fill(r, dt, "bits"),
    "fg_fill_uniform": lambda r, dt: k_fill(r, dt, "uniform"),
    "fg_fill_normal": lambda r, dt: k_fill(r, dt, "normal"),
    "fg_set_stream": k_set_stream,
    "fg_bernoulli": k_bernoulli,
    "fg_gaussian": k_gaussian,
    "fg_sgd_update": k_sgd,
    "fg_apply_velocity": k_velocity,
    "fg_gibbs_fused": k_gibbs_fused,
    "fg_bernoulli_ll": lambda r, dt: k_elbo(r, dt, "bernoulli_ll"),
    "fg_bernoulli_ll_backward": lambda r, dt: k_elbo(r, dt, "bernoulli_ll_backward"),
    "fg_gaussian_ll": lambda r, dt: k_elbo(r, dt, "gaussian_ll"),
    "fg_gaussian_ll_backward": lambda r, dt: k_elbo(r, dt, "gaussian_ll_backward"),
    "fg_gaussian_ll_backward_logvar": lambda r, dt: k_elbo(r, dt, "gaussian_ll_backward_logvar"),
    "fg_reparam_forward": lambda r, dt: k_reparam(r, dt, "forward"),
    "fg_reparam_backward": lambda r, dt: k_reparam(r, dt, "backward"),
    "fg_max_pool2d": k_max_pool,
    "fg_scatter_add": lambda r, dt: k_planes(r, dt, "scatter_add"),
    "fg_scatter_assign": lambda r, dt: k_planes(r, dt, "scatter_assign"),
    "fg_gather_planes": lambda r, dt: k_planes(r, dt, "gather_planes"),
    "fg_avg_unpool2d": lambda r, dt: k_avg_unpool(r, dt, False),
    "fg_avg_unpool2d_backward": lambda r, dt: k_avg_unpool(r, dt, True),
    "fg_conv_transpose2d_output": lambda r, dt: k_conv(r, dt, "output"),
    "fg_conv_transpose2d_im2col": lambda r, dt: k_conv(r, dt, "im2col"),
    "fg_activation_backward": k_activation_backward,
    "fg_sample_categorical": k_categorical,
}


def _entry_points(module, cache={}):  # noqa: B006 - a per-process cache of kernels/<module>.cu's names
    if module not in cache:
        cache[module] = _smoke_module().kernel_entry_points([ROOT / "kernels" / f"{module}.cu"])
    return cache[module]


def cpu_launch(module, name, work, params, *, block=256, shared=0, grid=None):
    """cuda_runtime.launch's signature; runs the CPU kernel of ``name`` on the params' arrays
    (deferred to the replay while a stream captures)."""
    assert name in _entry_points(module), f"kernels/{module}.cu has no entry point {name}"
    assert isinstance(params, np.ndarray) and params.shape == (1,) and params.dtype.names, "one params record"
    if shared > 48 * 1024:
        assert shared <= Device.attributes["MaxSharedMemoryPerBlockOptin"], f"{name}: {shared} B of shared memory"
    if work <= 0:
        return
    base, _, sfx = name.rpartition("_")
    if sfx in ("f32", "f64"):
        dt = np.dtype(np.float32 if sfx == "f32" else np.float64)
    else:
        base, dt = name, None
    rec = params[0].copy()  # the struct is passed by value
    run = KERNELS[base]
    STATE.launched.append(name)
    if STATE.capture is not None:
        STATE.capture.append(lambda: run(rec, dt))
    else:
        run(rec, dt)


def numpy_gemm(transa, transb, a, b, out, alpha, beta, *, stream):
    """cublas.gemm's signature: the operands read through their pointers and leading dimensions as
    cuBLAS reads them (row-major, unit column stride)."""
    from fastgen._native import cublas

    for arr in (a, b, out):
        assert isinstance(arr, ndarray) and arr.ndim == 2, "cuBLAS operands are 2-D device arrays"
        assert arr.dtype == out.dtype, f"mixed GEMM dtypes {a.dtype}, {b.dtype}, {out.dtype}"
        assert arr.shape[1] <= 1 or arr.strides[1] == arr.itemsize, "cuBLAS needs unit column stride"
    m, n = out.shape
    k = a.shape[1] if transa == "N" else a.shape[0]
    assert (a.shape[0] if transa == "N" else a.shape[1]) == m and (b.shape[1] if transb == "N" else b.shape[0]) == n
    assert (b.shape[0] if transb == "N" else b.shape[1]) == k, "inner dimensions differ"
    if m == 0 or n == 0:
        return
    t = out.dtype.type
    geo = [(x.data.ptr, x.shape, cublas.leading_dimension(x)) for x in (a, b, out)]

    def run():
        A, B, O = (_view(p, s, out.dtype, ld) for p, s, ld in geo)
        prod = (A.T if transa == "T" else A) @ (B.T if transb == "T" else B)
        O[...] = t(alpha) * prod if t(beta) == 0 else t(alpha) * prod + t(beta) * O

    if STATE.capture is not None:
        STATE.capture.append(run)
    else:
        run()


# ==== the smoke script in that environment =========================================================
def _smoke_module():
    mod = sys.modules.get("gpu_smoke")
    if mod is None:
        spec = importlib.util.spec_from_file_location("gpu_smoke", ROOT / "bench" / "gpu_smoke.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["gpu_smoke"] = mod  # dataclasses look their module up there (test_gpu_check does the same)
        spec.loader.exec_module(mod)
    return mod


def _refuse_device_arrays(fn):
    def wrapped(*args, **kwargs):
        for a in args[:2]:
            if isinstance(a, ndarray):
                raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
                                "construct a NumPy array explicitly.")
        return fn(*args, **kwargs)
    return wrapped


@contextlib.contextmanager
def stand_in(monkeypatch):
    # fastgen._native modules first imported here are gone again after the test, as other tests
    # expect (cuda_vae binds cuda_conv's launchers at import, and tests/cuda/test_conv_torch_host.py
    # relies on importing it after patching those)
    before = {m for m in sys.modules if m.startswith("fastgen._native.")}
    from fastgen._native import cublas, cuda_runtime, graphs

    monkeypatch.setitem(sys.modules, "cupy", make_cupy())
    monkeypatch.delenv("FASTGEN_NO_CUDA_GRAPHS", raising=False)
    monkeypatch.delenv("FASTGEN_GIBBS_METHOD", raising=False)
    monkeypatch.delenv("DRY_RUN", raising=False)
    mods = [importlib.import_module(f"fastgen._native.{m}") for m in LAUNCHER_MODULES]
    for mod in mods:
        if hasattr(mod, "launch"):
            monkeypatch.setattr(mod, "launch", cpu_launch)
    monkeypatch.setattr(cublas, "gemm", numpy_gemm)
    monkeypatch.setattr(cublas, "new_workspace", lambda: sys.modules["cupy"].empty(64, np.uint8))
    def kernel_function(module, name, device):
        if name not in _entry_points(module):
            raise RuntimeError(f"CUDA_ERROR_NOT_FOUND: no {name} in kernels/{module}.cu")
        return types.SimpleNamespace(num_regs=32, max_dynamic_shared_size_bytes=0)

    monkeypatch.setattr(cuda_runtime, "kernel_function", kernel_function)
    # fastgen.ops sees the stand-in's arrays as CuPy's (they are NumPy subclasses) and the backend
    # as available, so the ops-level checks go through the CUDA glue too
    from fastgen import _backend
    from fastgen._native import cuda as _cuda

    kind_of = _backend.kind_of
    monkeypatch.setattr(_backend, "kind_of", lambda x: "cupy" if isinstance(x, ndarray) else kind_of(x))
    monkeypatch.setattr(_backend, "is_cupy_array", lambda x: isinstance(x, ndarray))
    monkeypatch.setattr(_cuda, "unavailable_reason", lambda: None)
    # the SASS probe: NVRTC gives a stand-in cubin naming its module, "cuobjdump" lists its entry
    # points (f64 ones with .FTZ instructions, which the probe tolerates)
    monkeypatch.setattr(cuda_runtime, "nvrtc_compile",
                        lambda source, filename, arch: f"{filename}:{arch}".encode())

    def cuobjdump(cmd, capture_output=True, text=True, timeout=None):
        assert cmd[:2] == ["/stand-in/cuobjdump", "-sass"], cmd
        filename, arch = Path(cmd[2]).read_text().split(":")
        assert arch == "sm_90", arch
        lines = [f"\t\tFunction : {name}\n        /*0000*/  FADD{'.FTZ' if name.endswith('_f64') else ''} R0, R1, R2 ;"
                 for name in sorted(_entry_points(Path(filename).stem))]
        return types.SimpleNamespace(returncode=0, stdout="\n".join(lines), stderr="")

    caches = [cuda_runtime.sm_count, cuda_runtime.shared_memory_optin, cuda_runtime.unavailable_reason]

    def clear():
        for f in caches:
            f.cache_clear()
        graphs.clear_graphs()
        graphs.Workspaces._cache.clear()
        cublas._EAGER.clear()
        STATE.capture = None
        STATE.stream_stack.clear()

    clear()
    gs = _smoke_module()
    monkeypatch.setattr(gs, "LAUNCHED", set())
    monkeypatch.setattr(gs, "shutil", types.SimpleNamespace(
        which=lambda name: "/stand-in/cuobjdump" if name == "cuobjdump" else None))
    monkeypatch.setattr(gs, "subprocess", types.SimpleNamespace(run=cuobjdump))
    monkeypatch.setattr(gs, "close", _refuse_device_arrays(gs.close))
    monkeypatch.setattr(gs, "equal", _refuse_device_arrays(gs.equal))
    try:
        yield gs
    finally:
        clear()
        import fastgen._native as native_pkg

        for name in [m for m in sys.modules if m.startswith("fastgen._native.") and m not in before]:
            del sys.modules[name]
            if getattr(native_pkg, name.rsplit(".", 1)[1], None) is not None:
                delattr(native_pkg, name.rsplit(".", 1)[1])


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """gpu_smoke.main over every group, once, on the stand-in: {(group, check): row}."""
    out = tmp_path_factory.mktemp("smoke")
    with pytest.MonkeyPatch.context() as mp, stand_in(mp) as gs:
        code = gs.main(["--out", str(out)])
        rows = [json.loads(line) for line in (out / "smoke.jsonl").read_text().splitlines() if line.strip()]
        env = json.loads((out / "env.json").read_text())
        names = [(c.group, c.name) for c in gs.selected("")]
        launched = set(STATE.launched)
    return {"code": code, "rows": {(r["group"], r["check"]): r for r in rows}, "env": env, "names": names,
            "launched": launched}


def _all_checks():
    return [(c.group, c.name) for c in _smoke_module().selected("")]


# The checks that cannot PASS here, and why: everything else launches kernels the stand-in runs.
EXPECTED_SKIP = {("interop", "torch_tensor_on_torch_current_stream")}  # torch has no CUDA here
EXPECTED_INFO = {("timing", "ops_gibbs_validation_overhead")}


@pytest.mark.parametrize("key", _all_checks(), ids=lambda k: "/".join(k))
def test_each_check_runs_on_the_stand_in(smoke_run, key):
    row = smoke_run["rows"].get(key)
    assert row is not None, f"{key} recorded nothing"
    if key in EXPECTED_SKIP:
        assert row["status"] in ("SKIP", "PASS"), row["detail"]
    elif key in EXPECTED_INFO:  # fastgen.ops through the CUDA glue on the stand-in
        assert row["status"] in ("INFO", "SKIP"), row["detail"]
    else:
        assert row["status"] == "PASS", f"{row['status']}: {row['detail']}"


def test_the_run_reports_a_device_and_exits_clean(smoke_run):
    env = smoke_run["env"]
    assert env["gpu_reason"] is None and env["name"] == "Stand-in H100" and env["compute_capability"] == "9.0"
    assert smoke_run["code"] == 0, {k: r["status"] for k, r in smoke_run["rows"].items() if r["status"] != "PASS"}
    # every entry point of kernels/*.cu (but numba.cu's device functions) ran on the CPU kernels
    missing = _smoke_module().kernel_entry_points() - smoke_run["launched"]
    assert not missing, sorted(missing)


def test_the_stand_in_refuses_what_cupy_refuses(monkeypatch):
    with stand_in(monkeypatch):
        cp = sys.modules["cupy"]
        a = cp.zeros((2, 3), np.float32)
        with pytest.raises(TypeError):
            a + np.ones((2, 3), np.float32)
        with pytest.raises(RuntimeError, match="illegal memory access"):
            _view(a.data.ptr + 4, (2, 3), np.float32)
        s = cp.cuda.Stream()
        s.begin_capture()
        with pytest.raises(RuntimeError, match="Capture"):
            a.get()
        s.end_capture()


def test_a_sticky_error_reruns_the_groups_left_in_a_fresh_process(monkeypatch, tmp_path):
    with stand_in(monkeypatch) as gs:
        def sticky():
            raise RuntimeError("CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access was encountered")

        checks = [gs.Check("rng", "fine", lambda: "ok"), gs.Check("sampling", "bad", sticky),
                  gs.Check("sampling", "after", lambda: "ok"), gs.Check("cd", "later", lambda: "ok")]
        monkeypatch.setattr(gs, "CHECKS", checks)
        execs = []
        monkeypatch.setattr(gs.os, "execv", lambda path, argv: execs.append(argv))
        assert gs.main(["--out", str(tmp_path), "--hang-timeout", "0"]) == 1
    rows = [json.loads(line) for line in (tmp_path / "smoke.jsonl").read_text().splitlines()]
    assert [(r["check"], r["status"]) for r in rows] == [("fine", "PASS"), ("bad", "ERROR"), ("sticky_error", "ERROR")]
    (argv,) = execs
    assert argv[argv.index("--only") + 1] == "cd" and "--append" in argv and argv[1].endswith("gpu_smoke.py")
