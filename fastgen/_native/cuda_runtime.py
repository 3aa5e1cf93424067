"""The CUDA runtime every launcher module shares: availability, NVRTC compilation and its cache,
device attributes, params packing, launch and cuBLAS GEMMs.

Nothing here is imported by ``import fastgen``; CuPy is imported on first use, from
:func:`unavailable_reason` (which every CUDA path asks first).

Compilation and caching: each kernels/NAME.cu is compiled by NVRTC (CuPy's bindings, called
directly) to a cubin for the device's architecture with :func:`compile_options`
(``-I kernels/include``, ``--fmad=false`` so that the shared formulas round as on the CPU,
``-ftz=false`` so that float32 subnormals survive as on the CPU), cached on disk
(:func:`kernel_cache_dir`) keyed by the source, the options and NVRTC's version, and loaded as a
``cupy.RawModule`` by path, once per process and device. CuPy's own compiler is not used: it
appends ``-ftz=true`` after the caller's options. Because NVRTC resolves ``#include`` itself,
the source is prefixed with a hash of every header so that editing a header changes the key.

Params: each kernel takes one struct by value, declared once in
kernels/include/fastgen/params/<op>.h; the launcher module of that op holds the struct's field
table (its one Python mirror), from which :func:`struct_dtypes` builds the NumPy dtype that
:func:`pack_record` fills. tests/cuda/*_host.py check those dtypes against the C++ offsets.

Streams: every launch and GEMM goes to CuPy's current stream, which the ops set to the caller's
(torch's current stream for torch tensors, see :meth:`fastgen._backend.Placement.activate`).
"""
from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from .. import _build
from . import cublas

THREADS_PER_BLOCK = 256


# ---- availability ---------------------------------------------------------------------------
PROBE_SOURCE = """#include "fastgen/params/stream.h"
extern "C" __global__ void fg_probe(float* out) { out[threadIdx.x] = 1.0f; }
"""


@functools.lru_cache(maxsize=None)
def unavailable_reason() -> str | None:
    """None when the whole toolchain works, else one sentence saying what is missing: CuPy, a
    CUDA device, NVRTC (probed by compiling a tiny kernel that includes fastgen's headers, for
    the current device), or cuBLAS. Asked once per process, so a broken install fails every
    CUDA test with the same clear reason instead of a compile error per kernel."""
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
    return probe_toolchain(current_device())


def probe_toolchain(device: int) -> str | None:
    """None when NVRTC compiles a kernel with fastgen's headers and options for ``device`` and
    cuBLAS loads, else why not."""
    try:
        version = ".".join(str(v) for v in nvrtc_binding().getVersion())
    except Exception as exc:
        return (f"NVRTC is not loadable ({exc.__class__.__name__}: {exc}); CuPy needs the CUDA toolkit's "
                "libnvrtc or the nvidia-cuda-nvrtc wheel")
    try:
        arch = target_arch(device_arch(device))
        nvrtc_compile(PROBE_SOURCE, "fastgen_probe.cu", arch)
    except Exception as exc:
        return f"NVRTC {version} cannot compile fastgen's kernels here ({exc.__class__.__name__}: {exc})"
    try:
        cublas.library()
    except Exception as exc:
        return f"{exc}"
    return None


def available() -> bool:
    return unavailable_reason() is None


def require(what: str = "this operation"):
    """CuPy, or a RuntimeError naming ``what`` and why the backend is unavailable."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"{what} needs a CUDA device: {reason}")
    import cupy

    return cupy


# ---- sources and modules --------------------------------------------------------------------
def kernel_dir() -> Path:
    """kernels/ of a source checkout (editable install), or the copy a wheel carries inside the
    package (fastgen/kernels, see setup.py)."""
    packaged = Path(__file__).resolve().parent.parent / "kernels"
    if (packaged / "include" / "fastgen").is_dir():
        return packaged
    return _build.ROOT / "kernels"


def kernel_sources() -> list[Path]:
    return sorted(kernel_dir().glob("*.cu"))


def headers_digest(include: Path) -> str:
    """A hash of every header under ``include`` (names and contents), recursively."""
    h = hashlib.sha256()
    for path in sorted(include.rglob("*.h")):
        h.update(str(path.relative_to(include)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def nvrtc_options() -> tuple:
    """NVRTC options: _build's, with the include path of the kernels actually used."""
    include = kernel_dir() / "include"
    return tuple(f"-I{include}" if o.startswith("-I") else o for o in _build.nvrtc_options())


def nvrtc_binding():
    """CuPy's NVRTC bindings (cupy_backends.cuda.libs.nvrtc): createProgram, compileProgram,
    getCUBIN / getPTX, getProgramLog, destroyProgram, getVersion."""
    from cupy_backends.cuda.libs import nvrtc

    return nvrtc


def compile_options(arch: str) -> tuple:
    """The options every kernel is compiled with for ``arch`` ("sm_90": a cubin; "compute_90":
    PTX). ``-ftz=false`` comes last and is the only flush-to-zero flag: CuPy's own compile path
    appends ``-ftz=true`` to any options it is given, which is why fastgen does not use it."""
    return (*nvrtc_options(), f"--gpu-architecture={arch}", "-ftz=false")


def kernel_cache_dir() -> Path:
    """Where compiled kernels are kept: ``$FASTGEN_KERNEL_CACHE``, else ~/.cache/fastgen/kernels."""
    custom = os.environ.get("FASTGEN_KERNEL_CACHE", "").strip()
    if custom:
        return Path(custom)
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "fastgen" / "kernels"


def kernel_source(name: str) -> str:
    """kernels/``name``.cu, prefixed with a hash of every header (NVRTC resolves the includes
    itself, so an edited header must change the source text the cache is keyed on)."""
    return f"// headers {headers_digest(kernel_dir() / 'include')}\n" + (kernel_dir() / f"{name}.cu").read_text()


def target_arch(arch: str) -> str:
    """``arch`` as this NVRTC builds it: a cubin for ``sm_XY`` needs getCUBIN (CuPy >= 12), else
    PTX for ``compute_XY`` (the driver compiles it at load)."""
    if arch.startswith("sm_") and not hasattr(nvrtc_binding(), "getCUBIN"):
        return "compute_" + arch[3:]
    return arch


def nvrtc_compile(source: str, filename: str, arch: str) -> bytes:
    """``source`` compiled by NVRTC with :func:`compile_options` for ``arch`` (see
    :func:`target_arch`): a cubin for ``sm_XY``, PTX for ``compute_XY``."""
    nvrtc = nvrtc_binding()
    program = nvrtc.createProgram(source, filename, [], [])
    try:
        try:
            nvrtc.compileProgram(program, list(compile_options(arch)))
        except Exception as exc:
            raise RuntimeError(f"NVRTC could not compile {filename} for {arch}: {exc}\n"
                               f"{nvrtc.getProgramLog(program)}") from None
        if arch.startswith("sm_"):
            return whole_elf(bytes(nvrtc.getCUBIN(program)))
        ptx = nvrtc.getPTX(program)
    finally:
        nvrtc.destroyProgram(program)
    return ptx.encode() if isinstance(ptx, str) else bytes(ptx)


def whole_elf(binary: bytes) -> bytes:
    """A cubin as long as its ELF header says: CuPy's getCUBIN (v14) drops the last byte, taking
    it for a string's terminating NUL; the file would end inside the last header table. The
    tables end in 8-byte little-endian fields whose high byte is 0 here, so zeros restore it."""
    if len(binary) < 64 or binary[:5] != b"\x7fELF\x02":  # not a 64-bit ELF: leave it to the loader
        return binary
    phoff, shoff = int.from_bytes(binary[32:40], "little"), int.from_bytes(binary[40:48], "little")
    phentsize, phnum, shentsize, shnum = (int.from_bytes(binary[i:i + 2], "little") for i in (54, 56, 58, 60))
    end = max(phoff + phnum * phentsize, shoff + shnum * shentsize)
    return binary + bytes(end - len(binary)) if end > len(binary) else binary


def compile_kernels(name: str, arch: str) -> Path:
    """kernels/``name``.cu compiled for ``arch`` (:func:`nvrtc_compile`), cached on disk by source,
    options and NVRTC version; returns the file's path."""
    arch = target_arch(arch)
    source = kernel_source(name)
    version = repr(tuple(nvrtc_binding().getVersion()))
    key = hashlib.sha256("\0".join([source, *compile_options(arch), version]).encode()).hexdigest()[:24]
    path = kernel_cache_dir() / f"{name}_{arch}_{key}.{'cubin' if arch.startswith('sm_') else 'ptx'}"
    if path.is_file():
        return path
    binary = nvrtc_compile(source, f"{name}.cu", arch)
    try:
        _write_atomically(path, binary)
    except OSError:  # a cache that cannot be written: this process keeps its kernels in a temporary folder
        path = Path(tempfile.mkdtemp(prefix="fastgen-kernels-")) / path.name
        _write_atomically(path, binary)
    return path


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)  # atomic: a concurrent process never loads half a file


def device_arch(device: int) -> str:
    """``sm_<major><minor>`` of ``device``."""
    import cupy

    return f"sm_{cupy.cuda.Device(device).compute_capability}"


@functools.lru_cache(maxsize=None)
def compiled_module(name: str, device: int):
    """kernels/``name``.cu as a ``cupy.RawModule`` on ``device``, compiled once per process and
    loaded from the binary :func:`compile_kernels` wrote (never through CuPy's compiler)."""
    cp = require(f"kernels/{name}.cu")
    with cp.cuda.Device(device):
        return cp.RawModule(path=str(compile_kernels(name, device_arch(device))))


@functools.lru_cache(maxsize=None)
def kernel_function(module: str, name: str, device: int):
    return compiled_module(module, device).get_function(name)


# ---- devices --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def sm_count(device: int) -> int:
    """The number of streaming multiprocessors of ``device``."""
    import cupy

    return int(cupy.cuda.Device(device).attributes["MultiProcessorCount"])


@functools.lru_cache(maxsize=None)
def shared_memory_optin(device: int) -> int:
    """The most dynamic shared memory one thread block of ``device`` may ask for, in bytes."""
    import cupy

    attrs = cupy.cuda.Device(device).attributes
    return int(attrs.get("MaxSharedMemoryPerBlockOptin", attrs.get("MaxSharedMemoryPerBlock", 48 * 1024)))


def current_device() -> int:
    import cupy

    return int(cupy.cuda.Device().id)


def suffix(dtype) -> str:
    """The kernel-name suffix of a float dtype: "f32" or "f64"."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return "f32"
    if dtype == np.float64:
        return "f64"
    raise TypeError(f"CUDA kernels take float32 or float64, got {dtype}")


def row_stride(a) -> int:
    """The row stride of a [rows, cols] array in elements (a 1-D array is one row)."""
    return int(a.strides[0] // a.itemsize) if a.ndim == 2 else int(a.shape[-1])


# ---- parameter structs ----------------------------------------------------------------------
# Every field is 8 bytes: "p" pointer, "i" int64, "u" uint64, "d" double. A nested StreamParams
# (params/stream.h) is spelled out as its three fields, STREAM_FIELDS.
FIELD_CODES = {"p": "<u8", "i": "<i8", "u": "<u8", "d": "<f8"}
STREAM_FIELDS = (("stream_rng", "p"), ("stream_seed", "u"), ("stream_offset", "u"))


def struct_dtypes(structs: dict) -> dict:
    """{struct name: NumPy structured dtype} from {struct name: ((field, code), ...)}."""
    return {name: np.dtype([(f, FIELD_CODES[c]) for f, c in fields]) for name, fields in structs.items()}


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
        rec[key] = int(value.data.ptr) if type(value).__module__.startswith("cupy") else value
    return rec


def stream_fields(seed: int, offset: int, rng=None) -> dict:
    """StreamParams fields: absolute (seed, offset), or ``offset`` relative to the device buffer
    ``rng`` = {seed, offset} (graph replays)."""
    if rng is None:
        return {"stream_seed": int(seed), "stream_offset": int(offset)}
    return {"stream_rng": rng, "stream_offset": int(offset)}


# ---- launch ---------------------------------------------------------------------------------
def default_grid(work: int) -> int:
    """Enough blocks to fill the device several times; the kernels grid-stride over the rest."""
    return max(1, min(-(-work // THREADS_PER_BLOCK), sm_count(current_device()) * 16))


def launch(module: str, name: str, work: int, params: np.ndarray, *, block: int = THREADS_PER_BLOCK,
           shared: int = 0, grid: int | None = None) -> None:
    """Launch ``name`` from kernels/``module``.cu on the current stream over ``work`` items;
    nothing is launched when there is no work."""
    if work <= 0:
        return
    fn = kernel_function(module, name, current_device())
    if shared > 48 * 1024 and fn.max_dynamic_shared_size_bytes < shared:
        fn.max_dynamic_shared_size_bytes = shared
    fn((grid or default_grid(work),), (block,), (params,), shared_mem=shared)


def gemm(transa: str, transb: str, a, b, out, alpha: float = 1.0, beta: float = 0.0) -> None:
    """out = alpha op(a) @ op(b) + beta out on cuBLAS, on the current stream (C-contiguous rows,
    no copies, no allocation: capturable in a CUDA graph, see :mod:`fastgen._native.cublas`).
    alpha and beta are rounded to out's dtype, as the CPU loops compute them in T."""
    import cupy

    t = out.dtype.type
    cublas.gemm(transa, transb, a, b, out, t(alpha), t(beta), stream=int(cupy.cuda.get_current_stream().ptr))
