"""fastgen.torch.training: exact resume from checkpoints, the non-finite-loss stop, the PCA
baseline, and the ``fastgen train vae|ae`` commands."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastgen.cli import main  # noqa: E402
from fastgen.torch.autoencoders import DenoisingAutoencoder  # noqa: E402
from fastgen.torch.training import (NonFiniteLoss, fit, load_checkpoint, pca_reconstruction_mse,  # noqa: E402
                                    save_checkpoint)
from fastgen.torch.vae import VAE  # noqa: E402


def data(n=120, d=10, seed=0):
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("make", [lambda: VAE(10, (8,), 3, seed=4),
                                  lambda: DenoisingAutoencoder(10, (8,), 3, noise_level=0.3)],
                         ids=["vae", "denoising"])
def test_resumed_training_is_bitwise_the_uninterrupted_run(tmp_path, make):
    X = data()
    torch.manual_seed(1)
    straight = make()
    torch.manual_seed(1)
    resumed = make()
    opt = torch.optim.Adam(straight.parameters(), lr=1e-2)
    torch.manual_seed(2)
    fit(straight, X, epochs=3, batch_size=32, optimizer=opt, seed=5)

    opt2 = torch.optim.Adam(resumed.parameters(), lr=1e-2)
    torch.manual_seed(2)
    fit(resumed, X, epochs=2, batch_size=32, optimizer=opt2, seed=5)
    save_checkpoint(tmp_path / "ck.pt", resumed, opt2, epoch=2)
    torch.manual_seed(12345)  # whatever happens in between must not matter
    loaded, opt3, epoch, _ = load_checkpoint(tmp_path / "ck.pt", lr=1e-2)
    assert epoch == 2 and type(loaded) is type(straight)
    fit(loaded, X, epochs=1, batch_size=32, optimizer=opt3, seed=5, start_epoch=epoch)
    for (name, a), b in zip(straight.named_parameters(), loaded.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_a_non_finite_loss_stops_training_before_the_update():
    model = VAE(10, (8,), 3, seed=0)
    X = data()
    calls = {"n": 0}
    real_loss = model.loss

    def loss(batch):
        calls["n"] += 1
        value = real_loss(batch)
        return value * float("nan") if calls["n"] == 3 else value

    model.loss = loss
    snapshots = []
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    original_step = opt.step

    def step(*args, **kwargs):
        original_step(*args, **kwargs)
        snapshots.append([p.detach().clone() for p in model.parameters()])

    opt.step = step
    with pytest.raises(NonFiniteLoss, match="the loss became nan at epoch 1, batch 3: lower the learning rate"):
        fit(model, X, epochs=2, batch_size=32, optimizer=opt)
    assert len(snapshots) == 2
    for p, kept in zip(model.parameters(), snapshots[-1]):
        torch.testing.assert_close(p.detach(), kept, rtol=0, atol=0)


def test_pca_baseline_equals_a_truncated_svd():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(50, 8)) @ rng.normal(size=(8, 8))
    test = rng.normal(size=(20, 8)) @ rng.normal(size=(8, 8))
    mean = train.mean(0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    basis = vt[:3]
    recon = (test - mean) @ basis.T @ basis + mean
    assert pca_reconstruction_mse(train, test, 3) == pytest.approx(((recon - test) ** 2).mean(), rel=1e-9)
    assert pca_reconstruction_mse(train, test, 8) == pytest.approx(0.0, abs=1e-20)
    with pytest.raises(ValueError, match="n_components must be at most"):
        pca_reconstruction_mse(train, test, 9)


def test_checkpoint_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a fastgen autoencoder/VAE checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        fit(VAE(10, (4,), 2), data(), epochs=1, batch_size=0)


def test_fit_refuses_data_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 10\)"):
        fit(VAE(10, (4,), 2), data(d=11), epochs=1)
    with pytest.raises(ValueError, match="X must be a non-empty tensor"):
        fit(VAE(10, (4,), 2), torch.empty(0, 10), epochs=1)
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        fit(VAE(10, (4,), 2), torch.full((3, 10), float("nan")), epochs=1)


def test_train_vae_command_writes_pngs_and_resumes(tmp_path, capsys):
    out, ckpt = tmp_path / "out", tmp_path / "vae.pt"
    code = main(["train", "vae", "--epochs", "1", "--hidden", "32", "--latent", "4", "--save", str(ckpt),
                 "--out", str(out), "--threads", "1"])
    assert code == 0
    text = capsys.readouterr().out
    assert "epoch 1: train loss" in text and "PCA with 4 components" in text
    assert {p.name for p in out.iterdir()} == {"samples.png", "reconstructions.png", "interpolation.png"}
    model, _, epoch, _ = load_checkpoint(ckpt)
    assert isinstance(model, VAE) and epoch == 1
    assert main(["train", "vae", "--epochs", "1", "--load", str(ckpt), "--save", str(ckpt), "--out", str(out),
                 "--threads", "1"]) == 0
    assert "epoch 2: train loss" in capsys.readouterr().out
    assert load_checkpoint(ckpt)[2] == 2


@pytest.mark.parametrize("kind", ["dae", "cae", "stacked", "conv", "conv-pool"])
def test_train_ae_command_runs_each_kind(tmp_path, capsys, kind):
    out = tmp_path / kind
    args = ["train", "ae", "--kind", kind, "--epochs", "1", "--latent", "8", "--hidden", "16", "--channels", "4", "8",
            "--pretrain-epochs", "1", "--out", str(out), "--threads", "1"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "test reconstruction MSE per feature" in text
    assert (out / "reconstructions.png").is_file()


def test_train_commands_refuse_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((10, 16), 3.0))
    assert main(["train", "vae", str(bad), "--epochs", "1"]) == 2
    assert "values outside [0, 1]" in capsys.readouterr().err
    odd = tmp_path / "odd.npy"
    np.save(odd, np.random.default_rng(0).random((10, 15)))
    assert main(["train", "ae", str(odd), "--kind", "conv", "--epochs", "1"]) == 2
    assert "needs square images" in capsys.readouterr().err
    assert main(["train", "vae", "--load", str(tmp_path / "nope.pt")]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err


def test_train_command_stops_cleanly_on_a_non_finite_loss(tmp_path, capsys):
    ckpt = tmp_path / "vae.pt"
    assert main(["train", "vae", "--epochs", "1", "--hidden", "16", "--latent", "2", "--save", str(ckpt),
                 "--out", str(tmp_path), "--threads", "1"]) == 0
    capsys.readouterr()
    before = load_checkpoint(ckpt)[0].state_dict()
    # a learning rate of 1e30 blows the weights up within a few steps
    assert main(["train", "vae", "--epochs", "3", "--lr", "1e30", "--load", str(ckpt), "--save", str(ckpt),
                 "--out", str(tmp_path), "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "the loss became" in err and f"the last good checkpoint is {ckpt}" in err
    after = load_checkpoint(ckpt)[0].state_dict()
    assert all(torch.isfinite(v).all() for v in after.values())
    assert set(before) == set(after)
