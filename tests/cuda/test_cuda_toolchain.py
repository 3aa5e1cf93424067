"""The CUDA toolchain glue, checked without a GPU (issue 27, items 1, 2, 3 and 5):

- cuBLAS's C API through ctypes (fastgen/_native/cublas.py), against a host stand-in library
  with cuBLAS's symbols (tests/cuda/fake_cublas.c): row-major operands mapped to column-major
  calls for every transpose pair, strided rows, alpha/beta, the stream, and the workspace (the
  stream's eagerly, the graph's own during a capture);
- the kernels compiled without flush-to-zero: fastgen's NVRTC path, with NVRTC replaced by nvcc
  (same options), leaves no ``.ftz`` instruction in the PTX, where CuPy's ``-ftz=true`` does;
  cubins are cached on disk and loaded by path;
- the CUDA-graph keys of the epoch and the Gibbs chain change with the shapes, not only the
  pointers;
- unavailable_reason's probe names NVRTC or cuBLAS when one of them is missing.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
import types
from pathlib import Path

import numpy as np
import pytest

from fastgen._native import cublas, cuda_cd, cuda_gibbs, cuda_runtime, graphs
from fastgen._native.lru import LeastRecentlyUsed

REPO = Path(__file__).resolve().parents[2]
NVCC = shutil.which("nvcc")
GCC = shutil.which("gcc") or shutil.which("cc")


class _Pointer:
    def __init__(self, ptr: int):
        self.ptr = ptr


class HostArray:
    """A NumPy array dressed as a CuPy one (data.ptr is its host address): what the cuBLAS glue
    and the launchers read of an array."""

    def __init__(self, a: np.ndarray):
        self.a = a
        self.shape, self.strides, self.dtype = a.shape, a.strides, a.dtype
        self.itemsize, self.size, self.nbytes, self.ndim = a.itemsize, a.size, a.nbytes, a.ndim
        self.data = _Pointer(a.ctypes.data)

    def __getitem__(self, index):
        return HostArray(self.a[index])

    def reshape(self, *shape):
        return HostArray(self.a.reshape(*shape))


@pytest.fixture(scope="module")
def fake_cublas_path(tmp_path_factory):
    if GCC is None:
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp("cublas") / "libfake_cublas.so"
    subprocess.run([GCC, "-shared", "-fPIC", "-O1", str(REPO / "tests" / "cuda" / "fake_cublas.c"), "-o", str(out)],
                   check=True)
    return out


@pytest.fixture
def fake_cublas(fake_cublas_path, monkeypatch):
    """fastgen's cuBLAS glue bound to the host stand-in, with fresh handles and workspaces."""
    monkeypatch.setenv("FASTGEN_CUBLAS_LIBRARY", str(fake_cublas_path))
    monkeypatch.setattr(cublas, "_LIBRARY", None)
    monkeypatch.setattr(cublas, "_HANDLES", {})
    monkeypatch.setattr(cublas, "_EAGER", LeastRecentlyUsed(cublas.EAGER_WORKSPACES))
    monkeypatch.setattr(cublas, "_device", lambda: 0)
    monkeypatch.setattr(cublas, "WORKSPACE_BYTES", 256)
    monkeypatch.setattr(cublas, "new_workspace", lambda: HostArray(np.zeros(cublas.WORKSPACE_BYTES, np.uint8)))
    lib = ctypes.CDLL(str(fake_cublas_path))
    lib.fake_last_stream.restype = ctypes.c_void_p
    lib.fake_last_workspace.restype = ctypes.c_void_p
    lib.fake_last_workspace_bytes.restype = ctypes.c_size_t
    return lib


def _operand(rng, rows, cols, dtype, row_padding=0):
    """A [rows, cols] operand; with row_padding its rows sit in a wider array (a strided view)."""
    full = rng.standard_normal((rows, cols + row_padding)).astype(dtype)
    return full[:, :cols]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transa,transb", [("N", "N"), ("N", "T"), ("T", "N"), ("T", "T")])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (7, 129, 5), (3, 1, 129), (2, 4, 0)])
def test_gemm_maps_row_major_operands_to_cublas(fake_cublas, dtype, transa, transb, m, n, k):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    a = _operand(rng, *((m, k) if transa == "N" else (k, m)), dtype, row_padding=3)
    b = _operand(rng, *((k, n) if transb == "N" else (n, k)), dtype)
    out = rng.standard_normal((m, n)).astype(dtype)
    before = out.copy()
    alpha, beta = dtype(0.5), dtype(-1.25)
    cublas.gemm(transa, transb, HostArray(a), HostArray(b), HostArray(out), alpha, beta, stream=77)
    opa = a if transa == "N" else a.T
    opb = b if transb == "N" else b.T
    expected = alpha * (opa.astype(np.float64) @ opb.astype(np.float64)) + beta * before
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    assert fake_cublas.fake_last_stream() == 77


def test_gemm_on_one_row_views_and_workspace_slices(fake_cublas):
    # the epoch's bias updates: ones[:B].reshape(1, B) @ pos -> target.reshape(1, -1)
    rng = np.random.default_rng(3)
    ones = np.ones(10, np.float32)
    pos = rng.standard_normal((10, 6)).astype(np.float32)
    ws = HostArray(np.zeros((10, 6), np.float32))
    bias = np.zeros(6, np.float32)
    cublas.gemm("N", "N", HostArray(ones)[:7].reshape(1, 7), ws[:7], HostArray(bias).reshape(1, -1), 1.0, 0.0,
                stream=1)
    np.testing.assert_array_equal(bias, 0)
    ws.a[:7] = pos[:7]
    cublas.gemm("N", "N", HostArray(ones)[:7].reshape(1, 7), ws[:7], HostArray(bias).reshape(1, -1), 0.5, 1.0,
                stream=1)
    np.testing.assert_allclose(bias, 0.5 * pos[:7].sum(axis=0), rtol=1e-6)


def test_eager_gemms_use_one_workspace_per_stream_and_a_capture_uses_the_graphs(fake_cublas):
    a, b, out = (HostArray(np.ones((2, 2), np.float32)) for _ in range(3))
    cublas.gemm("N", "N", a, b, out, 1.0, 0.0, stream=5)
    first = fake_cublas.fake_last_workspace()
    assert first and fake_cublas.fake_last_workspace_bytes() == cublas.WORKSPACE_BYTES
    cublas.gemm("N", "N", a, b, out, 1.0, 0.0, stream=5)
    assert fake_cublas.fake_last_workspace() == first
    cublas.gemm("N", "N", a, b, out, 1.0, 0.0, stream=6)
    assert fake_cublas.fake_last_workspace() not in (None, first)
    own = HostArray(np.zeros(cublas.WORKSPACE_BYTES, np.uint8))
    with cublas.capture_workspace(own):
        cublas.gemm("N", "N", a, b, out, 1.0, 0.0, stream=9)
        assert fake_cublas.fake_last_workspace() == own.data.ptr
    cublas.gemm("N", "N", a, b, out, 1.0, 0.0, stream=5)
    assert fake_cublas.fake_last_workspace() == first
    assert fake_cublas.fake_handles_made() >= 1 and len(cublas._HANDLES) == 1


def test_gemm_errors_name_the_call_and_refuse_other_dtypes(fake_cublas):
    a = HostArray(np.ones((2, 3), np.float32))
    b = HostArray(np.ones((3, 4), np.float32))
    out = HostArray(np.zeros((2, 4), np.float32))
    fake_cublas.fake_fail_next_gemm(13)
    with pytest.raises(cublas.CublasError, match=r"cublasSgemm \(NN, m=2, n=4, k=3\) failed with cuBLAS status 13"):
        cublas.gemm("N", "N", a, b, out, 1.0, 0.0, stream=1)
    half = HostArray(np.zeros((2, 4), np.float16))
    with pytest.raises(TypeError, match="float32 or float64"):
        cublas.gemm("N", "N", a, b, half, 1.0, 0.0, stream=1)


def test_sizes_past_int32_are_refused_not_wrapped(fake_cublas):
    class Huge:
        shape, strides, itemsize = (2, 2**31), (2**33, 4), 4
        dtype = np.dtype(np.float32)
        data = _Pointer(0)

    small = HostArray(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"must be below 2\*\*31"):
        cublas.gemm("N", "N", small, Huge(), Huge(), 1.0, 0.0, stream=1)


def test_cupys_runtime_major_comes_first_among_mapped_libraries(monkeypatch):
    monkeypatch.delenv("FASTGEN_CUBLAS_LIBRARY", raising=False)
    runtime = types.SimpleNamespace(runtimeGetVersion=lambda: 13010)
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime, Device=lambda: None))
    monkeypatch.setitem(__import__("sys").modules, "cupy", fake)
    monkeypatch.setitem(__import__("sys").modules, "cuda.pathfinder", None)  # not installed
    monkeypatch.setattr(cublas, "_loaded_paths",
                        lambda: ["/a/nvidia/cublas/lib/libcublas.so.12", "/b/nvidia/cu13/lib/libcublas.so.13"])
    names = cublas._candidates()
    assert names[:2] == ["/b/nvidia/cu13/lib/libcublas.so.13", "/a/nvidia/cublas/lib/libcublas.so.12"]
    assert names[2] == "libcublas.so.13"


def test_a_missing_cublas_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTGEN_CUBLAS_LIBRARY", str(tmp_path / "libcublas_absent.so"))
    monkeypatch.setattr(cublas, "_LIBRARY", None)
    with pytest.raises(cublas.CublasError, match="cuBLAS could not be loaded.*FASTGEN_CUBLAS_LIBRARY"):
        cublas.library()


# ---- compilation: NVRTC replaced by nvcc with the same options -----------------------------------
class NvccAsNvrtc:
    """CuPy's NVRTC binding API (createProgram, compileProgram, getPTX/getCUBIN, ...) run by nvcc:
    NVRTC's option spellings used here (-std, -I, --fmad, -ftz, --gpu-architecture) are nvcc's."""

    def __init__(self, workdir: Path, cubin: bool = True):
        self.workdir = workdir
        self.compiles = []
        self.programs = {}
        if cubin:
            self.getCUBIN = self._output

    def getVersion(self):
        return (13, 0)

    def createProgram(self, source, name, headers, include_names):
        handle = len(self.programs) + 1
        self.programs[handle] = {"source": source, "name": name, "log": "", "out": None}
        return handle

    def compileProgram(self, handle, options):
        program = self.programs[handle]
        self.compiles.append(list(options))
        src = self.workdir / f"p{handle}_{program['name']}"
        src.write_text(program["source"])
        arch = next(o.split("=", 1)[1] for o in options if o.startswith("--gpu-architecture="))
        kind = "-cubin" if arch.startswith("sm_") else "-ptx"
        out = src.with_suffix(".out")
        result = subprocess.run([NVCC, *options, kind, str(src), "-o", str(out)], capture_output=True, text=True)
        program["log"] = result.stderr
        if result.returncode != 0:
            raise RuntimeError("NVRTC_ERROR_COMPILATION (6)")
        program["out"] = out.read_bytes()

    def _output(self, handle):
        return self.programs[handle]["out"]

    def getPTX(self, handle):
        return self._output(handle)

    def getProgramLog(self, handle):
        return self.programs[handle]["log"]

    def destroyProgram(self, handle):
        self.programs.pop(handle)


needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH (CI installs the CUDA toolkit's compiler)")


@pytest.fixture
def nvrtc(monkeypatch, tmp_path):
    binding = NvccAsNvrtc(tmp_path)
    monkeypatch.setattr(cuda_runtime, "nvrtc_binding", lambda: binding)
    monkeypatch.setenv("FASTGEN_KERNEL_CACHE", str(tmp_path / "cache"))
    return binding


def test_compile_options_turn_flush_to_zero_off_last():
    options = cuda_runtime.compile_options("sm_90")
    assert options[-1] == "-ftz=false"
    assert not any(o.startswith("-ftz") or o.startswith("--ftz") for o in options[:-1])
    assert {"-std=c++17", "--fmad=false", "--gpu-architecture=sm_90"} <= set(options)
    assert any(o.startswith("-I") and o.endswith("include") for o in options)


F32_KERNELS = ["sampling", "gibbs", "cd", "reparam", "elbo", "pool", "conv", "categorical"]


@needs_nvcc
@pytest.mark.parametrize("name", F32_KERNELS)
def test_compiled_kernels_keep_float32_subnormals(nvrtc, name):
    ptx = cuda_runtime.compile_kernels(name, "compute_90").read_text()
    assert ".entry" in ptx and ".f32" in ptx
    flushing = [line.strip() for line in ptx.splitlines() if ".ftz" in line]
    assert not flushing, f"kernels/{name}.cu flushes subnormals: {flushing[:5]}"


@needs_nvcc
def test_cupys_flag_would_have_flushed(nvrtc, tmp_path):
    # The control: the same source with the flag CuPy appends (-ftz=true) has .ftz instructions,
    # so the check above can see a flush.
    src = tmp_path / "sampling.cu"
    src.write_text(cuda_runtime.kernel_source("sampling"))
    out = tmp_path / "sampling_ftz.ptx"
    options = [*cuda_runtime.compile_options("compute_90")[:-1], "-ftz=true"]
    subprocess.run([NVCC, *options, "-ptx", str(src), "-o", str(out)], check=True, capture_output=True)
    assert ".ftz" in out.read_text()


@needs_nvcc
def test_cubins_are_cached_by_source_options_and_nvrtc_version(nvrtc, monkeypatch):
    path = cuda_runtime.compile_kernels("cd", "sm_90")
    assert path.suffix == ".cubin" and path.read_bytes()[:4] == b"\x7fELF"
    assert nvrtc.compiles[0][-2:] == ["--gpu-architecture=sm_90", "-ftz=false"]
    assert cuda_runtime.compile_kernels("cd", "sm_90") == path and len(nvrtc.compiles) == 1
    monkeypatch.setattr(cuda_runtime, "headers_digest", lambda include: "edited-header")
    assert cuda_runtime.compile_kernels("cd", "sm_90") != path and len(nvrtc.compiles) == 2
    monkeypatch.setattr(nvrtc, "getVersion", lambda: (13, 1))
    cuda_runtime.compile_kernels("cd", "sm_90")
    assert len(nvrtc.compiles) == 3
    assert not list(path.parent.glob("*.tmp"))


@needs_nvcc
def test_without_getcubin_the_kernels_are_ptx_for_the_same_architecture(monkeypatch, tmp_path):
    binding = NvccAsNvrtc(tmp_path, cubin=False)
    monkeypatch.setattr(cuda_runtime, "nvrtc_binding", lambda: binding)
    monkeypatch.setenv("FASTGEN_KERNEL_CACHE", str(tmp_path / "cache"))
    path = cuda_runtime.compile_kernels("cd", "sm_90")
    assert path.suffix == ".ptx" and "compute_90" in path.name and ".target sm_90" in path.read_text()


@needs_nvcc
def test_a_cubin_cut_short_by_one_byte_is_made_whole(nvrtc):
    # CuPy 14's getCUBIN drops the last byte (it strips a NUL that cubins do not have).
    whole = cuda_runtime.nvrtc_compile(cuda_runtime.kernel_source("sampling"), "sampling.cu", "sm_90")
    assert cuda_runtime.whole_elf(whole) == whole
    assert cuda_runtime.whole_elf(whole[:-1]) == whole
    original = nvrtc.getCUBIN
    nvrtc.getCUBIN = lambda handle: original(handle)[:-1]
    assert cuda_runtime.nvrtc_compile(cuda_runtime.kernel_source("sampling"), "sampling.cu", "sm_90") == whole
    assert cuda_runtime.whole_elf(b"not an elf") == b"not an elf"


@needs_nvcc
def test_an_unwritable_cache_falls_back_to_a_temporary_folder(nvrtc, monkeypatch, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("FASTGEN_KERNEL_CACHE", str(blocker / "kernels"))
    path = cuda_runtime.compile_kernels("cd", "sm_90")
    assert path.is_file() and not str(path).startswith(str(blocker))


def test_a_compile_error_names_the_file_and_carries_nvrtcs_log(monkeypatch):
    class Failing(NvccAsNvrtc):
        def compileProgram(self, handle, options):
            self.programs[handle]["log"] = "kernels/cd.cu(3): error: identifier undefined"
            raise RuntimeError("NVRTC_ERROR_COMPILATION (6)")

    binding = Failing(Path("."))
    monkeypatch.setattr(cuda_runtime, "nvrtc_binding", lambda: binding)
    with pytest.raises(RuntimeError, match=r"(?s)NVRTC could not compile cd.cu for sm_90.*identifier undefined"):
        cuda_runtime.nvrtc_compile("bad", "cd.cu", "sm_90")
    assert binding.programs == {}  # destroyed on failure too


def test_modules_load_the_binary_by_path_not_through_cupys_compiler(monkeypatch, tmp_path):
    made = []

    class FakeCupy:
        class cuda:
            class Device:
                def __init__(self, device):
                    pass

                def __enter__(self):
                    return self

                def __exit__(self, *exc):
                    return False

        @staticmethod
        def RawModule(**kwargs):
            made.append(kwargs)
            return object()

    binary = tmp_path / "x.cubin"
    monkeypatch.setattr(cuda_runtime, "require", lambda what: FakeCupy)
    monkeypatch.setattr(cuda_runtime, "device_arch", lambda device: "sm_90")
    monkeypatch.setattr(cuda_runtime, "compile_kernels", lambda name, arch: binary)
    cuda_runtime.compiled_module.cache_clear()
    try:
        cuda_runtime.compiled_module("sampling", 0)
    finally:
        cuda_runtime.compiled_module.cache_clear()
    assert made == [{"path": str(binary)}]


# ---- unavailable_reason's toolchain probe -----------------------------------------------------------
def test_probe_names_a_missing_nvrtc(monkeypatch):
    def missing():
        raise OSError("libnvrtc.so.13: cannot open shared object file")

    monkeypatch.setattr(cuda_runtime, "nvrtc_binding", missing)
    reason = cuda_runtime.probe_toolchain(0)
    assert reason.startswith("NVRTC is not loadable") and "libnvrtc.so.13" in reason


@needs_nvcc
def test_probe_compiles_with_fastgens_headers_and_names_a_failure(nvrtc, monkeypatch, fake_cublas):
    monkeypatch.setattr(cuda_runtime, "device_arch", lambda device: "sm_90")
    assert cuda_runtime.probe_toolchain(0) is None
    assert any(o.startswith("-I") and o.endswith("include") for o in nvrtc.compiles[-1])
    monkeypatch.setattr(cuda_runtime, "nvrtc_options", lambda: ("-std=c++17", "-I/nonexistent", "--fmad=false"))
    reason = cuda_runtime.probe_toolchain(0)
    assert reason.startswith("NVRTC 13.0 cannot compile fastgen's kernels here") and "fastgen_probe.cu" in reason


@needs_nvcc
def test_probe_names_a_missing_cublas(nvrtc, monkeypatch, tmp_path):
    monkeypatch.setattr(cuda_runtime, "device_arch", lambda device: "sm_90")
    monkeypatch.setenv("FASTGEN_CUBLAS_LIBRARY", str(tmp_path / "libcublas_absent.so"))
    monkeypatch.setattr(cublas, "_LIBRARY", None)
    assert cuda_runtime.probe_toolchain(0).startswith("cuBLAS could not be loaded")


# ---- graph keys -----------------------------------------------------------------------------------
def test_graph_keys_hold_shapes_strides_and_dtypes_not_only_pointers():
    base = np.zeros((2000, 8), np.float32)
    first, second = HostArray(base[:1000]), HostArray(base[:2000])
    assert first.data.ptr == second.data.ptr
    assert graphs.graph_key("epoch", (first,), (10,)) != graphs.graph_key("epoch", (second,), (10,))
    assert graphs.graph_key("epoch", (first,), (10,)) == graphs.graph_key("epoch", (HostArray(base[:1000]),), (10,))
    as64 = HostArray(np.zeros((1000, 4), np.float64))
    as32 = HostArray(as64.a.view(np.float32))
    assert as64.data.ptr == as32.data.ptr
    assert graphs.graph_key("g", (as64,), ()) != graphs.graph_key("g", (as32,), ())
    strided = HostArray(base[::2])
    assert graphs.graph_key("g", (strided,), ()) != graphs.graph_key("g", (HostArray(base[:1000]),), ())


@pytest.fixture
def host_cupy(monkeypatch):
    """A stand-in 'cupy' module with what the epoch and Gibbs launchers use before their body."""
    fake = types.SimpleNamespace(
        empty=lambda shape, dtype: HostArray(np.empty(shape, dtype)),
        ones=lambda n, dtype: HostArray(np.ones(n, dtype)),
        uint8=np.uint8,
        cuda=types.SimpleNamespace(get_current_stream=lambda: types.SimpleNamespace(ptr=5)),
    )
    monkeypatch.setitem(__import__("sys").modules, "cupy", fake)
    monkeypatch.setattr(graphs.Workspaces, "_cache", LeastRecentlyUsed(graphs.MAX_GRAPHS))
    for module in (cuda_cd, cuda_gibbs):
        monkeypatch.setattr(module, "current_device", lambda: 0)
    return fake


def test_the_epoch_graph_key_changes_with_the_rows_trained_on(host_cupy, monkeypatch):
    keys = []
    monkeypatch.setattr(cuda_cd, "run_recorded",
                        lambda key, body, seed, first, keep=None: keys.append(key) or "eager")
    data = np.zeros((2000, 6), np.float32)
    W, bv, bh = (HostArray(np.zeros(shape, np.float32)) for shape in ((4, 6), 6, 4))
    settings = dict(batch_size=100, cd_k=1, lr=0.1, momentum=0.0, weight_decay=0.0, seed=0, first=0)
    cuda_cd.train_epoch(W, bv, bh, HostArray(data[:1000]), **settings)
    cuda_cd.train_epoch(W, bv, bh, HostArray(data[:2000]), **settings)
    cuda_cd.train_epoch(W, bv, bh, HostArray(data[:1000]), **settings)
    cuda_cd.train_epoch(W, bv, bh, HostArray(data[:1000]), **{**settings, "lr": 0.05})
    assert keys[0] != keys[1] and keys[0] == keys[2] and keys[0] != keys[3]


def test_the_gibbs_graph_key_changes_with_the_chain_count(host_cupy, monkeypatch):
    keys = []
    monkeypatch.setattr(cuda_gibbs, "run_recorded",
                        lambda key, body, seed, first, keep=None: keys.append(key) or "graph")
    W, bv, bh = (HostArray(np.zeros(shape, np.float32)) for shape in ((4, 6), 6, 4))

    class Chains(HostArray):
        def __setitem__(self, index, value):
            self.a[index] = value.a if isinstance(value, HostArray) else value

    host_cupy.empty = lambda shape, dtype: Chains(np.empty(shape, dtype))
    for rows in (3, 5, 3):
        cuda_gibbs.gibbs(Chains(np.zeros((rows, 6), np.float32)), W, bv, bh, 2, seed=0, first=0, method="graph")
    assert keys[0] != keys[1] and keys[0] == keys[2]


# ---- the real NVRTC, through CuPy's bindings, where they load (CuPy and its NVRTC are optional) ---
def _cupy_nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
        return nvrtc
    except Exception:
        return None


@pytest.mark.parametrize("name", F32_KERNELS)
def test_real_nvrtc_cubins_are_whole_and_ptx_does_not_flush(name, monkeypatch, tmp_path):
    if _cupy_nvrtc() is None:
        pytest.skip("CuPy's NVRTC bindings do not load here (CuPy and nvidia-cuda-nvrtc are optional)")
    monkeypatch.setenv("FASTGEN_KERNEL_CACHE", str(tmp_path))
    cubin = cuda_runtime.compile_kernels(name, "sm_90").read_bytes()
    assert cubin[:4] == b"\x7fELF" and cuda_runtime.whole_elf(cubin) == cubin
    phoff, phentsize, phnum = (int.from_bytes(cubin[32:40], "little"), int.from_bytes(cubin[54:56], "little"),
                               int.from_bytes(cubin[56:58], "little"))
    assert len(cubin) >= phoff + phentsize * phnum
    ptx = cuda_runtime.nvrtc_compile(cuda_runtime.kernel_source(name), f"{name}.cu", "compute_90").decode()
    assert ".entry" in ptx and not [line for line in ptx.splitlines() if ".ftz" in line]
