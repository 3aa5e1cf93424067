"""``torchrun --nproc-per-node 2 -m fastgen train ...`` on the CPU (gloo): 2 ranks with batch B
train as 1 process with batch 2B, to rounding, and only rank 0 writes. Each job is bounded in
time (a lost rank would fail it, not hang it)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300


def run_fastgen(args, tmp_path, ranks: int = 1) -> str:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", "-m"] \
        if ranks > 1 else [sys.executable, "-m"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FASTGEN_DIST_TIMEOUT": "120"}
    result = subprocess.run([*launcher, "fastgen", *args], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def weights(path):
    return torch.load(path, weights_only=True)["model"]


def assert_same_training(one, two, rtol=1e-4, atol=1e-5):
    assert one.keys() == two.keys()
    for key in one:
        if one[key].is_floating_point():
            torch.testing.assert_close(two[key], one[key], rtol=rtol, atol=atol, msg=key)
        else:
            assert torch.equal(two[key], one[key]), key  # the VAE's stream (seed, offset)


def epoch_losses(out: str) -> list[float]:
    return [float(line.split("train loss ")[1].split(",")[0]) for line in out.splitlines()
            if line.startswith("epoch ") and "train loss" in line]


@pytest.mark.slow
@pytest.mark.parametrize("family, extra", [("vae", []), ("ae", ["--kind", "ae"]), ("vae", ["--conv"])],
                         ids=["vae", "ae", "conv-vae"])
def test_two_ranks_train_like_one_process_with_twice_the_batch(family, extra, tmp_path):
    # one epoch (26 steps): after many more, Adam turns rounding differences in near-zero gradients
    # into learning-rate-size ones (see fastgen.torch.train.distributed)
    common = ["train", family, *extra, "--epochs", "1", "--seed", "5"]
    single = run_fastgen([*common, "--batch-size", "64", "--save", "one.pt", "--out", "one"], tmp_path)
    double = run_fastgen([*common, "--batch-size", "32", "--save", "two.pt", "--out", "two"], tmp_path, ranks=2)
    assert "data parallel: 2 processes x batch 32" in double
    assert_same_training(weights(tmp_path / "one.pt"), weights(tmp_path / "two.pt"))
    assert epoch_losses(double) == pytest.approx(epoch_losses(single), rel=1e-4)
    assert double.count("checkpoint: ") == 1  # rank 0 alone prints and writes
    assert (tmp_path / "two" / "reconstructions.png").is_file()
