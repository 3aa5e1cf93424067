"""Build parameters, one definition shared by setup.py (the CPU extension) and the run-time
CUDA compilation (NVRTC through CuPy).

Environment flags:
  FASTGEN_DEBUG=1     -O0 -g with address/undefined-behaviour sanitizers (run Python with
                      LD_PRELOAD=$(gcc -print-file-name=libasan.so) to load the extension)
  FASTGEN_NO_CUDA=1   never compile or load CUDA kernels
  FASTGEN_PORTABLE=1  no -march=native (for wheels that travel to other CPUs)

This file is imported by setup.py by path, so it must not import fastgen or anything heavy.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INCLUDE_DIR = ROOT / "kernels" / "include"
CSRC_DIR = ROOT / "csrc"


def flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def cpu_sources() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in CSRC_DIR.glob("*.cpp"))


def cpu_include_dirs() -> list[str]:
    return [str(INCLUDE_DIR.relative_to(ROOT)), str(CSRC_DIR.relative_to(ROOT))]


def cpu_compile_args() -> list[str]:
    # -ffp-contract=off: the shared formulas must round the same way on every backend, so the
    # compiler may not fuse a*b+c on its own (the headers call fma() where they want one).
    args = ["-std=c++17", "-fopenmp", "-ffp-contract=off", "-fno-math-errno", "-Wall", "-Wno-unknown-pragmas"]
    if flag("FASTGEN_DEBUG"):
        args += ["-O0", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    else:
        args += ["-O3"]
    # The same instruction set in a debug build: the sanitizers then check the SIMD paths
    # (AVX-512 samplers, Philox, tables) that a release build on this machine runs.
    if not flag("FASTGEN_PORTABLE"):
        args += ["-march=native"]
    else:
        args += ["-mavx2", "-mfma"]
    return args


def cpu_link_args() -> list[str]:
    args = ["-fopenmp"]
    if flag("FASTGEN_DEBUG"):
        args += ["-fsanitize=address,undefined"]
    return args


def nvrtc_options(arch: str | None = None) -> list[str]:
    """Options for CuPy RawModule / nvcc on kernels/*.cu (same contraction rule as the CPU)."""
    opts = ["-std=c++17", f"-I{INCLUDE_DIR}", "--fmad=false"]
    if arch:
        opts.append(f"--gpu-architecture={arch}")
    if flag("FASTGEN_DEBUG"):
        opts += ["-G", "-lineinfo"]
    return opts
