"""The GPU benchmark's code paths that run without a GPU: the PyTorch-eager and learnergy anchors
on CPU tensors (so a GPU run is not the first time they execute), and the clear refusal of
``python -m bench rbm --device cuda`` without a CUDA device."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

torch = pytest.importorskip("torch")
rbm_cuda = pytest.importorskip("bench.rbm_cuda")


def binary(rows, cols, seed=0):
    return torch.from_numpy((np.random.default_rng(seed).random((rows, cols)) < 0.3).astype(np.float32))


def test_torch_eager_pcd_epoch_learns_and_keeps_its_chains():
    X = binary(200, 30)
    run = rbm_cuda.torch_pcd_epoch(X, 8, batch_size=50, lr=0.1)
    W0 = run().clone()
    W1 = run()
    assert W1.shape == (8, 30) and torch.isfinite(W1).all() and not torch.equal(W0, W1)


def test_torch_eager_gibbs_returns_binary_states():
    X = binary(16, 30)
    W = torch.randn(8, 30) * 0.1
    v = rbm_cuda.torch_gibbs(X, W, torch.zeros(30), torch.zeros(8), steps=3)()
    assert v.shape == X.shape and set(v.unique().tolist()) <= {0.0, 1.0}


def test_learnergy_anchor_runs_from_the_bundled_wheel():
    RBM, source = rbm_cuda.import_learnergy()
    if RBM is None:
        pytest.skip(source)
    X = binary(64, 20)
    mse, pl = rbm_cuda.learnergy_epoch(X, 6, batch_size=16)()
    assert np.isfinite(float(mse)) and np.isfinite(float(pl))
    out = rbm_cuda.learnergy_gibbs(X, 6, steps=2)()
    assert out[-1].shape == X.shape


def test_results_file_is_named_after_the_gpu():
    assert rbm_cuda.results_path("NVIDIA H100 80GB HBM3").name == "nvidia-h100-80gb-hbm3.json"


def test_bench_cuda_without_a_gpu_fails_cleanly():
    from fastgen._native import cuda as _cuda

    if _cuda.available():
        pytest.skip("a CUDA device is here: the suite would run")
    result = subprocess.run([sys.executable, "-m", "bench", "rbm", "--device", "cuda", "--quick"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "needs a CUDA device" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
