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


GAN_SCRIPT = """
import sys, torch
from fastgen.torch.gan import DCGANDiscriminator, DCGANGenerator, GANConfig, GANTrainer
from fastgen.torch.train.distributed import close, from_environment

job = from_environment()
torch.manual_seed(2)
data = torch.rand(256, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
g, d = DCGANGenerator(8, 28, 1, 8, norm="none"), DCGANDiscriminator(28, 1, 8, norm="none")
trainer = GANTrainer(g, d, data, config=GANConfig(batch_size=int(sys.argv[1]), seed=2), job=job)
trainer.train(1, progress=False, stop_after=3)
if job is None or job.is_main:
    torch.save({"model": {**{"g." + k: v for k, v in g.state_dict().items()},
                          **{"d." + k: v for k, v in d.state_dict().items()}}}, sys.argv[2])
close(job)
"""


@pytest.mark.slow
def test_gan_steps_of_two_ranks_equal_one_process_with_twice_the_batch(tmp_path):
    # per step the update is the same to rounding (Adam with beta1 0.5 then magnifies rounding
    # in near-zero gradients: a long run drifts apart at the learning rate's scale)
    (tmp_path / "gan_steps.py").write_text(GAN_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FASTGEN_DIST_TIMEOUT": "120"}
    for ranks, batch, out in ((1, 32, "one.pt"), (2, 16, "two.pt")):
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"] \
            if ranks > 1 else [sys.executable]
        result = subprocess.run([*launcher, "gan_steps.py", str(batch), out], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=TIMEOUT_S)
        assert result.returncode == 0, result.stderr[-3000:]
    assert_same_training(weights(tmp_path / "one.pt"), weights(tmp_path / "two.pt"), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_gan_command_runs_under_torchrun_and_rank_0_writes(tmp_path):
    common = ["train", "gan", "--epochs", "1", "--norm", "none", "--width", "8", "--seed", "2", "--no-progress"]
    single = run_fastgen([*common, "--batch-size", "32", "--save", "one.pt", "--out", "one"], tmp_path)
    double = run_fastgen([*common, "--batch-size", "16", "--save", "two.pt", "--out", "two"], tmp_path, ranks=2)
    assert "data parallel: 2 processes x batch 16" in double and double.count("trained epochs 1 to 1") == 1
    assert (tmp_path / "two" / "samples.png").is_file() and (tmp_path / "two.pt").is_file()

    def losses(out):
        line = next(line for line in out.splitlines() if line.startswith("epoch 1: D loss"))
        return [float(line.split("D loss ")[1].split(",")[0]), float(line.split("G loss ")[1].split(",")[0])]
    assert losses(double) == pytest.approx(losses(single), rel=2e-2)  # 56 Adam steps: see the test above


@pytest.mark.slow
def test_smiles_command_two_ranks_train_like_one_process_with_twice_the_batch(tmp_path):
    import gzip

    shared = REPO.parent / "shared" / "data" / "moses_train_20k.csv.gz"
    if not shared.is_file():
        pytest.skip(f"{shared} is absent (the shared data folder)")
    lines = gzip.open(shared, "rt").read().splitlines()[:601]
    (tmp_path / "small.csv").write_text("\n".join(lines) + "\n")
    common = ["train", "smiles", "small.csv", "--epochs", "1", "--hidden", "32", "--layers", "1", "--seed", "1"]
    single = run_fastgen([*common, "--batch-size", "64", "--save", "one.pt"], tmp_path)
    double = run_fastgen([*common, "--batch-size", "32", "--save", "two.pt"], tmp_path, ranks=2)
    assert "data parallel: 2 processes x batch 32" in double and double.count("saved two.pt") == 1
    assert_same_training(weights(tmp_path / "one.pt"), weights(tmp_path / "two.pt"), rtol=1e-5, atol=1e-6)
    assert epoch_losses(double) == pytest.approx(epoch_losses(single), rel=1e-4)


@pytest.mark.slow
def test_a_resumed_two_rank_run_is_bitwise_the_straight_one(tmp_path):
    common = ["train", "vae", "--batch-size", "32", "--seed", "4"]
    run_fastgen([*common, "--epochs", "2", "--save", "straight.pt", "--out", "s"], tmp_path, ranks=2)
    run_fastgen([*common, "--epochs", "1", "--save", "part.pt", "--out", "p"], tmp_path, ranks=2)
    out = run_fastgen([*common, "--resume", "part.pt", "--epochs", "2", "--save", "part.pt", "--out", "p"], tmp_path,
                      ranks=2)
    assert "continuing to epoch 2" in out
    assert_same_training(weights(tmp_path / "straight.pt"), weights(tmp_path / "part.pt"), rtol=0, atol=0)
