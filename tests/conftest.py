"""Shared pytest configuration: the ``gpu`` marker skips without CUDA; the ``device`` fixture
runs a case on "cpu" and on "cuda" (the latter ``gpu``-marked); ``cp`` and ``torch_cuda`` hand the
GPU tests CuPy and torch with CUDA (skipping without them); the shared data folder
(``../shared/data`` beside the checkout) is handed out by a fixture that skips when the folder is
absent. Nothing heavy is imported at import time."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# the tests/reference/ package is imported as ``reference`` from every sub-folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))


NO_CUDA_REASON = "needs a CUDA device (none found: no CuPy/torch GPU)"


def _cuda_available() -> bool:
    try:
        import cupy  # noqa: F401

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        pass
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not _cuda_available():
        skip = pytest.mark.skip(reason=NO_CUDA_REASON)
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """``../shared/data`` relative to the repository root (see its README)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (tests and benchmarks read it from beside the checkout)")
    return SHARED_DATA


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request) -> str:
    """"cpu", then "cuda" (``gpu``-marked: skipped without a CUDA device, selected by ``-m gpu``)."""
    return request.param


@pytest.fixture
def cp():
    """CuPy, when fastgen's CUDA backend runs here (the test is skipped otherwise)."""
    cupy = pytest.importorskip("cupy")
    from fastgen._native import cuda as _cuda

    if not _cuda.available():
        pytest.skip(_cuda.unavailable_reason())
    return cupy


@pytest.fixture
def torch_cuda(cp):
    """torch with a CUDA device (and CuPy: fastgen's CUDA kernels run through it)."""
    from cuda_helpers import torch_cuda_or_skip

    return torch_cuda_or_skip()
