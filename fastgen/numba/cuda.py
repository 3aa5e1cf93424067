"""The functions of :mod:`fastgen.numba` inside ``@numba.cuda.jit`` kernels.

Importing this module registers CUDA implementations of ``fastgen.numba.uniform``, ``normal``,
``bits``, ``sigmoid``, ``softplus``, ``log_sigmoid``, ``log_add_exp``, ``bernoulli``,
``bernoulli_logit``, ``gaussian`` and ``categorical``: a kernel calls them by the same names as
CPU code does and draws the same numbers. Their code is kernels/numba.cu (the shared headers of
the CPU and CUDA kernels), compiled once to PTX with fastgen's options (no FMA contraction, so the
draws round as on the CPU) and linked into the kernel::

    import fastgen.numba as fn
    from fastgen.numba.cuda import jit

    @jit                      # numba.cuda.jit with fastgen's PTX linked in
    def fill(out, seed, offset):
        i = cuda.grid(1)
        if i < out.size:
            out[i] = fn.uniform(seed, offset, i)

With ``numba.cuda.jit`` itself, pass ``link=[fastgen.numba.cuda.ptx_file()]``. The PTX is built
by ``nvcc`` when it is on PATH, else by CuPy's NVRTC, and cached under ``~/.cache/fastgen``
(``FASTGEN_CACHE_DIR``) by the digest of the sources and the architecture.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from numba import cuda as _cuda
from numba import types as _t
from numba.core.errors import TypingError
from numba.extending import overload

from .. import _build
from . import (SIGNATURES, _numba_dtype_name, _numba_float_name, _require_counters, bernoulli, bernoulli_logit, bits,
               categorical, data_pointer, gaussian, log_add_exp, log_sigmoid, normal, sigmoid, softplus, uniform)

# Device function -> numba signature: the CPU entry points' names with "cuda_" after the prefix.
DEVICE_SIGNATURES = {name.replace("fastgen_", "fastgen_cuda_", 1): sig for name, sig in SIGNATURES.items()}
_DEVICE = {name: _cuda.declare_device(name, sig) for name, sig in DEVICE_SIGNATURES.items()}

DEFAULT_ARCH = (8, 0)  # PTX for compute_80 runs on every later GPU (the driver compiles it)


def _kernels_dir() -> Path:
    packaged = Path(__file__).resolve().parent.parent / "kernels"  # a wheel's copy (setup.py)
    return packaged if (packaged / "numba.cu").is_file() else _build.ROOT / "kernels"


def _cache_dir() -> Path:
    root = os.environ.get("FASTGEN_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "fastgen")
    return Path(root) / "numba_cuda"


def ptx_file(arch: tuple[int, int] | None = None) -> str:
    """Path of kernels/numba.cu compiled to relocatable PTX for ``arch`` (compute capability;
    default: the current device's when one is usable, else 8.0), built on first use."""
    if arch is None:
        arch = _cuda.get_current_device().compute_capability if _cuda.is_available() else DEFAULT_ARCH
    major, minor = (int(v) for v in arch)
    kernels = _kernels_dir()
    source = kernels / "numba.cu"
    include = kernels / "include"
    digest = hashlib.sha256(source.read_bytes())
    for header in sorted(include.rglob("*.h")):
        digest.update(str(header.relative_to(include)).encode())
        digest.update(header.read_bytes())
    target = _cache_dir() / f"numba_{digest.hexdigest()[:16]}_compute_{major}{minor}.ptx"
    if target.is_file():
        return str(target)
    ptx = _compile(source, include, f"compute_{major}{minor}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=target.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(ptx)
    os.replace(tmp.name, target)  # atomic: concurrent builders never see half a file
    return str(target)


def _compile(source: Path, include: Path, arch: str) -> str:
    options = [o for o in _build.nvrtc_options() if not o.startswith("-I")] + [f"-I{include}"]
    nvcc = shutil.which("nvcc")
    if nvcc is not None:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "numba.ptx"
            result = subprocess.run([nvcc, *options, "-rdc=true", "-ptx", f"-arch={arch}", str(source), "-o", str(out)],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"nvcc could not compile {source}:\n{result.stderr}")
            return out.read_text()
    try:
        from cupy_backends.cuda.libs import nvrtc
    except ImportError:
        raise RuntimeError("fastgen.numba.cuda needs nvcc on PATH or CuPy (pip install 'fastgen[cuda]') to "
                           "compile kernels/numba.cu") from None
    program = nvrtc.createProgram(source.read_text(), source.name, [], [])
    try:
        nvrtc.compileProgram(program, [*options, "-rdc=true", f"--gpu-architecture={arch}"])
    except Exception as exc:
        raise RuntimeError(f"NVRTC could not compile {source}: {exc}\n{nvrtc.getProgramLog(program)}") from None
    ptx = nvrtc.getPTX(program)
    return ptx.decode() if isinstance(ptx, bytes) else ptx


def jit(func=None, **options):
    """``numba.cuda.jit`` with fastgen's PTX added to ``link``; takes the same options."""
    def decorate(f):
        link = list(options.pop("link", []) or []) + [ptx_file()]
        return _cuda.jit(link=link, **options)(f)

    return decorate if func is None else decorate(func)


# ---- the CUDA implementations of fastgen.numba's functions ------------------------------------


def _device(kind: str, name: str | None = None):
    return _DEVICE[f"fastgen_cuda_{kind}" + ("" if name is None else f"_{name}")]


@overload(bits, target="cuda")
def _bits_cuda(seed, offset, index):
    _require_counters(seed=seed, offset=offset, index=index)
    fn = _device("bits")
    return lambda seed, offset, index: fn(seed, offset, index)


def _stream_overload(python_fn, kind):
    @overload(python_fn, target="cuda")
    def _cuda_impl(seed, offset, index, dtype=np.float64):
        _require_counters(seed=seed, offset=offset, index=index)
        if not isinstance(dtype, (_t.NumberClass, _t.DType)):  # omitted: numba.cuda cannot compile defaults
            raise TypingError(f"fastgen.numba.{kind} in a CUDA kernel: pass the dtype, e.g. "
                              f"{kind}(seed, offset, index, np.float64)")
        fn = _device(kind, _numba_dtype_name(dtype))

        def impl(seed, offset, index, dtype=np.float64):
            return fn(seed, offset, index)
        return impl


_stream_overload(uniform, "uniform")
_stream_overload(normal, "normal")


def _unary_overload(python_fn, kind):
    @overload(python_fn, target="cuda")
    def _cuda_impl(x):
        fn = _device(kind, _numba_float_name(x, "x"))
        return lambda x: fn(x)


for _fn, _kind in ((sigmoid, "sigmoid"), (softplus, "softplus"), (log_sigmoid, "log_sigmoid")):
    _unary_overload(_fn, _kind)
del _fn, _kind


@overload(log_add_exp, target="cuda")
def _log_add_exp_cuda(a, b):
    narrow = _numba_float_name(a, "a") == _numba_float_name(b, "b") == "float32"
    fn = _device("log_add_exp", "float32" if narrow else "float64")
    return lambda a, b: fn(a, b)


def _sampler_overload(python_fn, kind):
    @overload(python_fn, target="cuda")
    def _cuda_impl(p, seed, offset, index):
        _require_counters(seed=seed, offset=offset, index=index)
        fn = _device(kind, _numba_float_name(p, "p"))
        return lambda p, seed, offset, index: fn(p, seed, offset, index)


_sampler_overload(bernoulli, "bernoulli")
_sampler_overload(bernoulli_logit, "bernoulli_logit")


@overload(gaussian, target="cuda")
def _gaussian_cuda(mean, std, seed, offset, index):
    _require_counters(seed=seed, offset=offset, index=index)
    fn = _device("gaussian", _numba_float_name(mean, "mean"))
    _numba_float_name(std, "std")
    return lambda mean, std, seed, offset, index: fn(mean, std, seed, offset, index)


@overload(categorical, target="cuda")
def _categorical_cuda(logits, temperature, seed, offset, row):
    _require_counters(seed=seed, offset=offset, row=row)
    if not (isinstance(logits, _t.Array) and logits.ndim == 1 and logits.layout == "C"
            and logits.dtype in (_t.float32, _t.float64)):
        raise TypingError(f"fastgen.numba.categorical: logits must be a C-contiguous 1-D float32 or float64 "
                          f"array in a CUDA kernel, got {logits}")
    fn = _device("categorical", logits.dtype.name)
    return lambda logits, temperature, seed, offset, row: fn(data_pointer(logits), logits.shape[0], temperature,
                                                            seed, offset, row)


__all__ = ["jit", "ptx_file", "DEVICE_SIGNATURES", "DEFAULT_ARCH"]
