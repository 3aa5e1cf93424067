"""GANTrainer: exact resume, non-finite losses, bad input, sample grids, interpolation, and the
`fastgen train gan` command."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastgen.cli import main  # noqa: E402
from fastgen.torch.gan import (DCGANDiscriminator, DCGANGenerator, GANConfig, GANTrainer,  # noqa: E402
                               MLPDiscriminator, MLPGenerator, NonFiniteLossError, interpolate_latents,
                               load_checkpoint, trainer_from_checkpoint)



def images(n=48, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g) * 2 - 1


def dcgan_trainer(data, labels=None, n_classes=0, norm="batch", **config):
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=8, image_size=data.shape[2], channels=1, width=4, n_classes=n_classes, norm=norm,
                       reference_size=8)
    d = DCGANDiscriminator(image_size=data.shape[2], channels=1, width=4, n_classes=n_classes, norm=norm,
                           reference_size=8)
    return GANTrainer(g, d, data, labels, GANConfig(**{"batch_size": 8, "n_samples": 8, **config}))


def params(trainer):
    return [p.detach().clone() for p in trainer.generator.parameters()] + \
           [p.detach().clone() for p in trainer.discriminator.parameters()] + \
           [b.detach().clone() for b in trainer.discriminator.buffers()]


@pytest.mark.parametrize("setting", [dict(), dict(d_steps=2, loss="lsgan", smoothing="one_sided"),
                                     dict(norm="virtual", n_classes=3)])
def test_resume_is_bitwise_identical(tmp_path, setting):
    data = images(48)
    labels = torch.arange(48) % 3
    n_classes = setting.pop("n_classes", 0)
    norm = setting.pop("norm", "batch")
    lab = labels if n_classes else None
    # 6 iterations straight through (crossing an epoch boundary: 48 / 8 / d_steps per epoch)
    straight = dcgan_trainer(data, lab, n_classes, norm, **setting)
    per_epoch = straight.iterations_per_epoch
    straight.train(2, progress=False, stop_after=per_epoch + 2)
    # the same run stopped after 3, saved, loaded into fresh objects, continued
    first = dcgan_trainer(data, lab, n_classes, norm, **setting)
    first.train(2, progress=False, stop_after=per_epoch - 1)
    path = first.save(tmp_path / "ckpt.pt")
    resumed = trainer_from_checkpoint(load_checkpoint(path), data, lab)
    assert (resumed.epoch, resumed.iteration) == (0, per_epoch - 1)
    resumed.train(2, progress=False, stop_after=3)
    assert (resumed.epoch, resumed.iteration) == (straight.epoch, straight.iteration) == (1, 2)
    for a, b in zip(params(straight), params(resumed)):
        assert torch.equal(a, b)
    assert torch.equal(straight.noise.get_state(), resumed.noise.get_state())
    # and training really moved the parameters
    fresh = dcgan_trainer(data, lab, n_classes, norm, **setting)
    assert not all(torch.equal(a, b) for a, b in zip(params(fresh), params(straight)))


def test_unrolled_trainer_runs_and_resumes(tmp_path):
    torch.manual_seed(0)
    data = torch.randn(64, 2)

    def make():
        torch.manual_seed(1)
        return GANTrainer(MLPGenerator(latent_dim=4, hidden=8), MLPDiscriminator(hidden=8), data,
                          config=GANConfig(batch_size=16, unrolled_steps=2, lr_g=1e-3, lr_d=1e-3))

    straight = make()
    straight.train(1, progress=False)
    first = make()
    first.train(1, progress=False, stop_after=2)
    resumed = trainer_from_checkpoint(load_checkpoint(first.save(tmp_path / "c.pt")), data)
    resumed.train(1, progress=False)
    for a, b in zip(params(straight), params(resumed)):
        assert torch.equal(a, b)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    data = images(48)
    trainer = dcgan_trainer(data)
    path = tmp_path / "ckpt.pt"
    trainer.train(1, checkpoint=path, checkpoint_every=2, progress=False, stop_after=2)
    good = path.read_bytes()
    saved = load_checkpoint(path)
    # Sabotage: a NaN in the discriminator's output layer makes the next losses NaN.
    with torch.no_grad():
        trainer.discriminator.output.bias.fill_(float("nan"))
    before_g = [p.detach().clone() for p in trainer.generator.parameters()]
    with pytest.raises(NonFiniteLossError, match=r"non-finite discriminator loss \(nan\) at epoch 1, iteration 3; "
                                                 r"training stopped.*last good checkpoint is .*ckpt.pt"):
        trainer.train(1, checkpoint=path, checkpoint_every=1, progress=False)
    assert path.read_bytes() == good                # nothing written after the failure
    assert load_checkpoint(path)["iteration"] == saved["iteration"] == 2
    assert all(torch.equal(a, b) for a, b in zip(before_g, trainer.generator.parameters()))
    assert isinstance(NonFiniteLossError("x"), FloatingPointError)


def test_non_finite_before_any_checkpoint_says_so():
    trainer = dcgan_trainer(images(48), lr_g=1e-3)
    with torch.no_grad():
        trainer.discriminator.output.weight.fill_(float("inf"))
    with pytest.raises(NonFiniteLossError, match="no checkpoint had been written yet"):
        trainer.train(1, progress=False)


def test_mismatched_data_and_labels_are_refused():
    with pytest.raises(ValueError, match=r"data must have shape \(N, 1, 28, 28\) to match the discriminator, "
                                         r"got \(48, 1, 32, 32\)"):
        GANTrainer(
            DCGANGenerator(8, 28, 1, 4), DCGANDiscriminator(28, 1, 4), images(48, 32))
    with pytest.raises(ValueError, match=r"labels must hold one class per sample of data, shape \(48,\), got \(40,\)"):
        dcgan_trainer(images(48), torch.arange(40) % 3, n_classes=3)
    with pytest.raises(ValueError, match="labels is required"):
        dcgan_trainer(images(48), None, n_classes=3)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        dcgan_trainer(images(48), torch.arange(48) % 5, n_classes=3)
    with pytest.raises(ValueError, match="conditional on 3 classes but the discriminator on 0"):
        GANTrainer(DCGANGenerator(8, 28, 1, 4, n_classes=3), DCGANDiscriminator(28, 1, 4), images(48),
                   torch.arange(48) % 3)
    with pytest.raises(ValueError, match="data holds NaN"):
        dcgan_trainer(torch.full((48, 1, 28, 28), float("nan")))
    with pytest.raises(ValueError, match="d_steps must be an integer >= 1"):
        dcgan_trainer(images(48), d_steps=0)
    with pytest.raises(ValueError, match="loss must be one of"):
        dcgan_trainer(images(48), loss="hinge")


def test_sample_grids_and_interpolation(tmp_path):
    from PIL import Image

    trainer = dcgan_trainer(images(16), n_samples=8)
    running = trainer.discriminator.norms[1].running_mean.clone()
    g_running = trainer.generator.norms[0].running_mean.clone()
    trainer.train(1, out_dir=tmp_path, progress=False)
    png = tmp_path / "samples_epoch001.png"
    assert png.is_file() and Image.open(png).size[0] > 28
    assert not torch.equal(running, trainer.discriminator.norms[1].running_mean)   # training updates them ...
    g_running = trainer.generator.norms[0].running_mean.clone()
    a = trainer.sample()
    assert torch.equal(a, trainer.sample())                                      # ... sampling does not
    assert torch.equal(g_running, trainer.generator.norms[0].running_mean)
    path = trainer.write_interpolation(tmp_path / "interp.png", rows=2, n_steps=5)
    w, h = Image.open(path).size
    assert w > h   # 5 images a row, 2 rows


def test_interpolate_latents():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(16, generator=g, dtype=torch.float64), torch.randn(16, generator=g, dtype=torch.float64)
    z1 = z1 * (z0.norm() / z1.norm())
    path = interpolate_latents(z0, z1, 7)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    # between vectors of equal norm slerp keeps the norm and moves at constant angular speed
    torch.testing.assert_close(path.norm(dim=1), z0.norm().expand(7))
    cos = torch.nn.functional.cosine_similarity(path[:-1], path[1:])
    torch.testing.assert_close(cos, cos[:1].expand_as(cos))
    assert float(path[3].norm()) > float(((z0 + z1) / 2).norm()) * 1.05   # the line's midpoint is shorter
    lin = interpolate_latents(z0, z1, 3, "linear")
    torch.testing.assert_close(lin[1], (z0 + z1) / 2)
    with pytest.raises(ValueError, match="method must be"):
        interpolate_latents(z0, z1, 3, "cubic")


# ---- the command -------------------------------------------------------------------------------
def test_cli_trains_on_digits_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "gan", "--epochs", "1", "--width", "4", "--latent-dim", "8", "--batch-size", "256",
            "--image-size", "28", "--out", str(out), "--no-progress", "--threads", "1"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "1797 images" in text and "28x28" in text
    for name in ("checkpoint.pt", "samples_epoch001.png", "samples.png", "interpolation.png"):
        assert (out / name).is_file(), name
    assert main(["train", "gan", "--resume", str(out / "checkpoint.pt"), "--epochs", "2", "--out", str(out),
                 "--no-progress", "--threads", "1"]) == 0
    assert "resumed" in capsys.readouterr().out
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 2


def test_cli_refuses_images_of_the_wrong_size(tmp_path, capsys):
    path = tmp_path / "imgs.npy"
    np.save(path, np.zeros((10, 20, 20), np.uint8))
    assert main(["train", "gan", str(path), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "images are 20x20; the DCGAN architectures take 28x28, 32x32 or 64x64" in err


def test_cli_conditional_label_count_mismatch(tmp_path, capsys):
    path = tmp_path / "imgs.npz"
    np.savez(path, data=np.zeros((10, 28, 28), np.uint8), labels=np.arange(7))
    assert main(["train", "gan", str(path), "--conditional", "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "7 labels for 10 images" in capsys.readouterr().err


def _mlp_unrolled_trainer():
    torch.manual_seed(1)
    return GANTrainer(MLPGenerator(latent_dim=4, hidden=8), MLPDiscriminator(hidden=8),
                      torch.randn(64, 2, generator=torch.Generator().manual_seed(0)),
                      config=GANConfig(batch_size=16, unrolled_steps=2, lr_g=1e-3, lr_d=1e-3))


@pytest.mark.parametrize("unrolled", [False, True])
def test_generator_step_gradients_for_the_generator_only(unrolled):
    # the G step's backward is restricted to G's parameters (D's weight gradients skipped): the
    # same training as a plain backward, and D's gradients are those of its own step
    data = images(48)
    trainers = [_mlp_unrolled_trainer() if unrolled else dcgan_trainer(data) for _ in range(2)]
    trainers[1]._g_params = None   # backward(inputs=None): the plain backward over every leaf
    for t in trainers:
        t.train(1, progress=False, stop_after=2)
    for a, b in zip(params(trainers[0]), params(trainers[1])):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    d_step_grads = [p.grad for p in trainers[0].discriminator.parameters()]
    assert all(g is not None for g in d_step_grads)
    assert trainers[0]._g_params == list(trainers[0].generator.parameters())
