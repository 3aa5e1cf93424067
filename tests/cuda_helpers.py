"""Helpers of the ``gpu`` tests, shared by the op test files and tests/cuda/.

Importing this module needs neither CuPy nor torch: each helper imports what it needs and skips
the calling test when it is missing, so the op test files collect everywhere.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def torch_cuda_or_skip():
    """torch, skipping the test when torch has no CUDA device."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    return torch


def cuda_module_or_skip(name: str):
    """``fastgen._native.<name>`` (a CUDA launcher module), skipping the test when the CUDA
    backend cannot run here."""
    from fastgen._native import cuda as _cuda

    if not _cuda.available():
        pytest.skip(_cuda.unavailable_reason())
    return importlib.import_module(f"fastgen._native.{name}")


def dyadic_rbm(nv, nh, dtype, seed=0):
    """Weights (nh, nv) and biases (nv,), (nh,) in multiples of 1/8: with 0/1 states every dot
    product is exact in any order, so CPU BLAS, cuBLAS and the fused kernel give identical logits."""
    rng = np.random.default_rng(seed)
    W = (rng.integers(-12, 13, (nh, nv)) / 8).astype(dtype)
    return W, (rng.integers(-8, 9, nv) / 8).astype(dtype), (rng.integers(-8, 9, nh) / 8).astype(dtype)


def array_module(device: str):
    """NumPy for "cpu"; CuPy for "cuda" (skipping the test when fastgen's CUDA backend cannot run)."""
    if device == "cpu":
        return np
    cupy = pytest.importorskip("cupy")
    cuda_module_or_skip("cuda")
    return cupy


# KL row sums: the GPU adds the row's terms in a shuffle tree, the CPU in its SIMD order; the
# bound is relative to the sum of the terms' magnitudes (float32 keeps 24 bits).
KL_GPU_RTOL = {np.float32: 1e-5, np.float64: 1e-13}


def reparam_inputs(shape, dtype, seed=0):
    """(mu, logvar) of the given shape and dtype, drawn from a seeded NumPy generator."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1.5, shape).astype(dtype), rng.normal(0, 1, shape).astype(dtype)


def kl_scale(mu, logvar):
    """Per row, the sum of the KL terms' magnitudes (shape (rows,)): the scale of its rounding."""
    mu64, lv64 = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
    return (0.5 * np.abs(mu64 ** 2 + np.exp(lv64) - 1 - lv64)).sum(axis=-1) + 1e-30


NO_CUPY = "import sys; sys.modules['cupy'] = None\n"  # prefixed to code: `import cupy` then raises ImportError


def run_python(code: str, **env) -> str:
    """Run ``code`` in a fresh interpreter at the repository root (extra environment ``env``);
    assert it exits 0 and return its stdout."""
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                            env=dict(os.environ, **env), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


CONV_CASES = [  # x shape, weight shape, stride, padding, output_padding
    ((3, 4, 5, 5), (4, 3, 4, 4), [2, 2], [1, 1], [1, 1]),
    ((4, 8, 1, 1), (8, 5, 4, 4), [1, 1], [0, 0], [0, 0]),         # the DCGAN projection of z
    ((2, 6, 12, 11), (6, 2, 4, 4), [2, 2], [1, 1], [0, 0]),      # >= 128 pixels: the CPU's C++ backward
    ((2, 3, 3, 7), (3, 4, 2, 5), [3, 1], [0, 2], [2, 0]),
]


def conv_case_inputs(xs, ws, dtype, device="cpu", seed=0, grad=False):
    """Seeded torch tensors x (xs), weight (ws) and bias (ws[1],) of ``dtype`` on ``device``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(xs, generator=g, dtype=dtype)
    w = torch.randn(ws, generator=g, dtype=dtype) * 0.5
    b = torch.randn(ws[1], generator=g, dtype=dtype)
    return tuple(t.to(device).requires_grad_(grad) for t in (x, w, b))


def torch_on(device: str):
    """torch for a test on ``device``: "cpu" needs torch only, "cuda" also a torch CUDA device and
    fastgen's CUDA backend (the test is skipped otherwise)."""
    if device == "cpu":
        return pytest.importorskip("torch")
    cuda_module_or_skip("cuda")
    return torch_cuda_or_skip()
