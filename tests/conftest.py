"""Shared pytest configuration: the ``gpu`` marker skips without CUDA, and the shared data
folder (``../shared/data`` beside the checkout) is handed out by a fixture that skips when the
folder is absent. Nothing heavy is imported here."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# the tests/reference/ package is imported as ``reference`` from every sub-folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))


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
        skip = pytest.mark.skip(reason="needs a CUDA device (none found: no CuPy/torch GPU)")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """``../shared/data`` relative to the repository root (see its README)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (tests and benchmarks read it from beside the checkout)")
    return SHARED_DATA
