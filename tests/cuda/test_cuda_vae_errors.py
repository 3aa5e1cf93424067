"""The VAE ops' CUDA dispatch where no GPU is needed: CUDA input without a usable backend gets the
documented TypeError naming the argument, mixed devices a ValueError naming both, and CPU input
never touches the CUDA modules."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastgen.ops import elbo, pool
from fake_cuda import FakeCudaArray as _FakeCudaArray, cuda_backend_unavailable as _backend_unavailable

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif("not _backend_unavailable()", reason="the CUDA backend is available here")
def test_cuda_arrays_get_the_documented_error_without_the_backend():
    reason = _backend_unavailable()
    with pytest.raises(TypeError, match="x lives on a CUDA device, but fastgen's CUDA backend is unavailable") as info:
        elbo.bernoulli_log_likelihood(_FakeCudaArray(), _FakeCudaArray())
    assert reason in str(info.value)
    with pytest.raises(TypeError, match="x lives on a CUDA device"):
        elbo.gaussian_log_likelihood(_FakeCudaArray(), _FakeCudaArray())
    img = (1, 1, 4, 4)
    with pytest.raises(TypeError, match="x lives on a CUDA device"):
        pool.max_pool2d(_FakeCudaArray(img), 2)
    with pytest.raises(TypeError, match="x lives on a CUDA device"):
        pool.avg_unpool2d(_FakeCudaArray(img), 2)
    with pytest.raises(TypeError, match="x lives on a CUDA device"):
        pool.max_unpool2d(_FakeCudaArray(img), _FakeCudaArray(img, "<i8"), (8, 8))


def test_mixed_devices_are_refused_naming_both_arguments():
    with pytest.raises(ValueError, match="logits is on the CPU but x is on cuda:0"):
        elbo.bernoulli_log_likelihood(_FakeCudaArray(), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="logvar is on cuda:0 but x is on the CPU"):
        elbo.gaussian_log_likelihood(np.zeros((2, 3)), np.zeros((2, 3)), _FakeCudaArray())
    with pytest.raises(ValueError, match="indices is on the CPU but x is on cuda:0"):
        pool.max_unpool2d(_FakeCudaArray((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.int64), (4, 4))


def test_torch_ops_refuse_mixed_devices_and_keep_their_cpu_messages():
    torch = pytest.importorskip("torch")
    from fastgen.torch import elbo as telbo
    from fastgen.torch import pool as tpool

    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="logits is on meta but x is on cpu"):
        telbo._check_pair(x, torch.zeros(2, 3, device="meta"), "logits")
    with pytest.raises(ValueError, match="indices is on meta but x is on cpu"):
        tpool._check_indices(torch.zeros(1, 1, 2, 2, dtype=torch.int64, device="meta"), torch.zeros(1, 1, 2, 2),
                             (4, 4))
    with pytest.raises(TypeError, match="logits must be float32 or float64"):
        telbo.bernoulli_log_likelihood(x, torch.zeros(2, 3, dtype=torch.int32))


def test_cpu_calls_do_not_import_the_cuda_modules():
    code = ("import sys, numpy as np\n"
            "from fastgen.ops import elbo, pool\n"
            "x = np.random.default_rng(0).random((4, 1, 4, 4))\n"
            "elbo.bernoulli_log_likelihood(x, x); elbo.gaussian_log_likelihood(x, x, x)\n"
            "out, idx = pool.max_pool2d(x, 2); pool.max_unpool2d(out, idx, (4, 4)); pool.avg_unpool2d(out, 2)\n"
            "bad = [m for m in ('cupy', 'fastgen._native.cuda', 'fastgen._native.cuda_vae') if m in sys.modules]\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
