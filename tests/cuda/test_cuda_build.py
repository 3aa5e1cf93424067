"""CUDA checks that need no GPU (they run in CI): every kernels/*.cu compiles with nvcc for sm_80
and sm_90 and with NVRTC (the compiler the run-time path uses, which lacks the C++ standard
headers nvcc has), importing fastgen never imports CuPy, and CUDA arrays get clear errors when
the CUDA backend is unavailable."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastgen
from fastgen import _build
from fastgen.ops import cd_gradients, gibbs, sample_bernoulli, sample_gaussian
from fake_cuda import FakeCudaArray as _FakeCudaArray, cuda_backend_unavailable as _backend_unavailable

REPO = Path(__file__).resolve().parents[2]
KERNELS = sorted((REPO / "kernels").glob("*.cu"))
NVCC = shutil.which("nvcc")
# cuobjdump lists the architectures inside the object; PATH may hold only an nvcc wrapper
CUOBJDUMP = shutil.which("cuobjdump") or next(
    (str(p) for p in sorted(Path("/usr/local").glob("cuda*/bin/cuobjdump")) if p.is_file()), None)


def test_there_are_kernels_to_check():
    assert {p.name for p in KERNELS} >= {"sampling.cu", "gibbs.cu", "cd.cu", "reparam.cu", "elbo.cu", "pool.cu",
                                         "conv.cu", "categorical.cu"}


@pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH (CI installs the CUDA toolkit's compiler)")
@pytest.mark.parametrize("source", KERNELS, ids=lambda p: p.name)
def test_kernel_compiles_with_nvcc_for_sm80_and_sm90(source, tmp_path):
    # One nvcc call per file builds both architectures; the options are the run-time ones
    # (_build.nvrtc_options: -std=c++17, -I kernels/include, --fmad=false).
    options = [o for o in _build.nvrtc_options() if not o.startswith("-I")]
    cmd = [NVCC, *options, "-I", str(REPO / "kernels" / "include"), "-c",
           "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
           "-Werror", "all-warnings", str(source), "-o", str(tmp_path / (source.stem + ".o"))]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout}\n{result.stderr}"
    # both architectures' machine code is in the object
    if CUOBJDUMP is not None:
        listing = subprocess.run([CUOBJDUMP, "--list-elf", str(tmp_path / (source.stem + ".o"))],
                                 capture_output=True, text=True)
        assert listing.returncode == 0, listing.stderr
        assert "sm_80" in listing.stdout and "sm_90" in listing.stdout, listing.stdout


def _nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
        return nvrtc
    except Exception:
        return None


@pytest.mark.parametrize("source", KERNELS, ids=lambda p: p.name)
def test_kernel_compiles_with_nvrtc(source):
    nvrtc = _nvrtc()
    if nvrtc is None:
        pytest.skip("NVRTC not loadable (CuPy and its nvidia-cuda-nvrtc library are optional)")
    from fastgen._native import cuda as _cuda

    program = nvrtc.createProgram(source.read_text(), source.name, [], [])
    options = [*(_cuda.nvrtc_options()), "--gpu-architecture=compute_80"]
    if source.name == "numba.cu":  # device functions only: kept when compiled relocatable, as fastgen.numba does
        options.append("-rdc=true")
    try:
        nvrtc.compileProgram(program, options)
    except Exception as exc:
        pytest.fail(f"NVRTC rejected {source.name}: {exc}\n{nvrtc.getProgramLog(program)}")
    ptx = nvrtc.getPTX(program)
    names = {"sampling.cu": ["fg_set_stream", "fg_bernoulli_f32", "fg_bernoulli_f64", "fg_gaussian_f32",
                             "fg_fill_bits", "fg_fill_uniform_f64", "fg_fill_normal_f32"],
             "gibbs.cu": ["fg_gibbs_fused_f32", "fg_gibbs_fused_f64"],
             "cd.cu": ["fg_apply_velocity_f32", "fg_sgd_update_f64"],
             "reparam.cu": [f"fg_{k}_{s}" for k in ("reparam_forward", "reparam_backward") for s in ("f32", "f64")],
             "elbo.cu": [f"fg_{k}_{s}" for k in ("bernoulli_ll", "gaussian_ll", "bernoulli_ll_backward",
                                                 "gaussian_ll_backward", "gaussian_ll_backward_logvar")
                         for s in ("f32", "f64")],
             "pool.cu": [f"fg_{k}_{s}" for k in ("max_pool2d", "scatter_assign", "scatter_add", "gather_planes",
                                                 "avg_unpool2d", "avg_unpool2d_backward") for s in ("f32", "f64")],
             "conv.cu": [f"fg_{k}_{s}" for k in ("conv_transpose2d_output", "conv_transpose2d_im2col",
                                                 "activation_backward") for s in ("f32", "f64")],
             "categorical.cu": ["fg_sample_categorical_f32", "fg_sample_categorical_f64"],
             "numba.cu": []}[source.name]
    text = ptx.decode() if isinstance(ptx, bytes) else ptx
    for name in names:  # extern "C": the entry points keep their names, as _cuda.launch expects
        assert f".entry {name}(" in text, name
    if source.name == "numba.cu":  # device functions for numba.cuda, not kernels (fastgen.numba.cuda)
        pytest.importorskip("numba")
        from fastgen.numba.cuda import DEVICE_SIGNATURES

        for name in DEVICE_SIGNATURES:
            assert f".func  (.param .b32 func_retval0) {name}(" in text, name


def test_kernel_dir_is_found_and_has_headers():
    from fastgen._native import cuda as _cuda

    assert (_cuda.kernel_dir() / "include" / "fastgen" / "philox.h").is_file()
    assert {p.name for p in _cuda.kernel_sources()} >= {"sampling.cu", "gibbs.cu"}
    assert any(o.startswith("-I") and o.endswith("include") for o in _cuda.nvrtc_options())


def test_importing_fastgen_imports_neither_cupy_nor_the_cuda_backend():
    code = ("import sys, fastgen, fastgen.ops, fastgen.sklearn, fastgen.models.rbm\n"
            "import numpy as np\n"
            "fastgen.ops.sample_bernoulli(np.zeros((2, 3)), generator=0)\n"
            "fastgen.BernoulliRBM(n_components=2, n_iter=1, random_state=0).fit(np.zeros((4, 3)))\n"
            "bad = [m for m in ('cupy', 'fastgen._native.cuda', 'torch') if m in sys.modules]\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif("not _backend_unavailable()", reason="the CUDA backend is available here")
def test_cuda_arrays_get_a_clear_error_without_the_cuda_backend():
    reason = _backend_unavailable()
    with pytest.raises(TypeError, match="x lives on a CUDA device, but fastgen's CUDA backend is unavailable") as info:
        sample_bernoulli(_FakeCudaArray())
    assert reason in str(info.value)
    with pytest.raises(TypeError, match="mean lives on a CUDA device"):
        sample_gaussian(_FakeCudaArray())
    W = _FakeCudaArray((2, 3))  # biases as lists: they follow the arrays' device
    with pytest.raises(TypeError, match="v lives on a CUDA device"):
        gibbs(_FakeCudaArray(), W, [0.0] * 3, [0.0] * 2)
    with pytest.raises(TypeError, match="v lives on a CUDA device"):
        cd_gradients(_FakeCudaArray(), W, [0.0] * 3, [0.0] * 2)


def test_cuda_backend_reports_why_it_is_unavailable_without_cupy():
    # A subprocess where 'import cupy' fails: the reason names CuPy and the install command.
    code = ("import sys; sys.modules['cupy'] = None\n"
            "from fastgen._native import cuda as _cuda\n"
            "r = _cuda.unavailable_reason()\n"
            "assert r is not None and 'CuPy' in r and 'fastgen[cuda]' in r, r\n"
            "import numpy as np, fastgen\n"
            "class F:\n"
            "    __cuda_array_interface__ = {'shape': (2, 3), 'typestr': '<f4', 'data': (0, False), 'version': 3}\n"
            "try:\n"
            "    fastgen.ops.sample_bernoulli(F())\n"
            "except TypeError as e:\n"
            "    assert 'x lives on a CUDA device' in str(e) and 'CuPy' in str(e), e\n"
            "else:\n"
            "    raise SystemExit('no error')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr


def test_no_cuda_flag_disables_the_backend():
    code = ("from fastgen._native import cuda as _cuda\n"
            "assert _cuda.unavailable_reason() == 'FASTGEN_NO_CUDA is set', _cuda.unavailable_reason()\n")
    env = dict(os.environ, FASTGEN_NO_CUDA="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr


def test_mixed_devices_are_refused_naming_both_arguments():
    # classified before anything is converted, so this runs without CuPy or a GPU
    with pytest.raises(ValueError, match="bias is on the CPU but x is on cuda:0"):
        sample_bernoulli(_FakeCudaArray(), np.zeros(3))
    with pytest.raises(ValueError, match="W is on the CPU but v is on cuda:0"):
        gibbs(_FakeCudaArray(), np.zeros((2, 3)), np.zeros(3), np.zeros(2))


def test_kernels_do_not_run_for_cpu_arrays():
    x = np.linspace(-3, 3, 12).reshape(3, 4)
    probs = sample_bernoulli(x, output="probs")
    assert isinstance(probs, np.ndarray)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-x)), rtol=1e-6)
    assert fastgen.Generator(0).seed == 0


@pytest.mark.skipif("not _backend_unavailable()", reason="the CUDA backend is available here")
def test_bernoulli_rbm_device_cuda_without_a_gpu_names_device_and_reason():
    with pytest.raises(ValueError, match="device='cuda' needs a CUDA device"):
        fastgen.BernoulliRBM(device="cuda", n_iter=1).fit(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        fastgen.BernoulliRBM(device="gpu0", n_iter=1).fit(np.zeros((4, 3)))
    # "auto" with host data trains on the CPU, exactly as device="cpu"
    X = (np.random.default_rng(0).random((20, 6)) < 0.5).astype(np.float64)
    a = fastgen.BernoulliRBM(n_components=3, n_iter=2, random_state=0).fit(X)
    b = fastgen.BernoulliRBM(n_components=3, n_iter=2, random_state=0, device="cpu").fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)
