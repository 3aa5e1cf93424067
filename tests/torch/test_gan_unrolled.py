"""The unrolled GAN with the DCGAN discriminator (batch norm in training mode, channels-last or
NCHW): the look-ahead runs under torch.func.grad without mutating anything (running statistics
included), matches a hand-written unroll through ordinary autograd, and trains in GANTrainer and
`fastgen train gan --unrolled-steps`."""
from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from torch.func import functional_call  # noqa: E402

from fastgen.cli import main  # noqa: E402
from fastgen.torch.gan import (DCGANDiscriminator, DCGANGenerator, GANConfig, GANTrainer,  # noqa: E402
                               discriminator_loss, generator_loss, load_checkpoint, trainer_from_checkpoint,
                               unrolled_generator_loss)
from fastgen.torch.gan.stabilizers import unrolled_discriminator  # noqa: E402


def _pair(size=28, channels_last=True, dtype=torch.float32, seed=0, n_classes=0):
    torch.manual_seed(seed)
    g = DCGANGenerator(latent_dim=8, image_size=size, channels=1, width=4, n_classes=n_classes).to(dtype)
    d = DCGANDiscriminator(image_size=size, channels=1, width=4, n_classes=n_classes).to(dtype)
    d.channels_last = channels_last
    real = torch.rand(8, 1, size, size, dtype=dtype) * 2 - 1
    z = torch.randn(8, 8, dtype=dtype)
    return g, d, real, z


def _warm_adam(g, d, real, z, steps=2):
    """D's Adam with some moment estimates (and D's running statistics moved by real steps)."""
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))
    for _ in range(steps):
        opt.zero_grad()
        with torch.no_grad():
            fake = g(z)
        discriminator_loss(d(real), d(fake)).backward()
        opt.step()
    return opt


def _snapshot(d, opt=None):
    state = [t.detach().clone() for t in d.parameters()] + [b.clone() for b in d.buffers()]
    if opt is not None:
        for p in d.parameters():
            st = opt.state[p]
            state += [st["exp_avg"].clone(), st["exp_avg_sq"].clone(), torch.as_tensor(st["step"]).clone()]
    return state


def _bitwise_equal(a, b):
    return len(a) == len(b) and all(x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("use_adam", [False, True])
def test_unrolled_loss_and_backward_with_batch_norm_leave_d_untouched(size, channels_last, use_adam):
    g, d, real, z = _pair(size, channels_last)
    opt = _warm_adam(g, d, real, z) if use_adam else None
    assert int(d.norms[1].num_batches_tracked) == (4 if use_adam else 0)
    before = _snapshot(d, opt)
    loss = unrolled_generator_loss(d, real, g(z), 3, 0.05, optimizer=opt)
    assert loss.shape == () and bool(torch.isfinite(loss))
    grads = torch.autograd.grad(loss, list(g.parameters()))
    assert all(bool(torch.isfinite(gr).all()) for gr in grads)
    assert any(float(gr.abs().max()) > 0 for gr in grads)
    # the look-ahead changed neither D's parameters nor its running statistics / batch counts
    # nor Adam's state, bit for bit; D is still in training mode
    assert _bitwise_equal(before, _snapshot(d, opt))
    assert d.training and all(m.training for m in d.modules())


@pytest.mark.parametrize("steps", [1, 2])
def test_unrolled_dcgan_matches_a_manual_unroll_with_batch_statistics(steps):
    # by hand, on a copy of D: SGD steps through ordinary autograd (create_graph), D in training
    # mode, so every step normalises with its batches' statistics as a real D step does
    g, d, real, z = _pair(28, True, torch.float64, seed=3)
    lr = 0.5
    got = torch.autograd.grad(unrolled_generator_loss(d, real, g(z), steps, lr), list(g.parameters()))
    fake = g(z)
    ref = copy.deepcopy(d)
    names = [n for n, _ in ref.named_parameters()]
    params = [p for _, p in ref.named_parameters()]
    for _ in range(steps):
        p = dict(zip(names, params))
        d_loss = discriminator_loss(functional_call(ref, p, (real,)), functional_call(ref, p, (fake,)))
        grads = torch.autograd.grad(d_loss, params, create_graph=True)
        params = [q - lr * gr for q, gr in zip(params, grads)]
    expected_loss = generator_loss(functional_call(ref, dict(zip(names, params)), (fake,)))
    expected = torch.autograd.grad(expected_loss, list(g.parameters()))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    # the look-ahead is not the plain generator gradient
    plain = torch.autograd.grad(generator_loss(copy.deepcopy(d)(g(z))), list(g.parameters()))
    assert max(float((a - b).abs().max()) for a, b in zip(got, plain)) > 1e-6


def test_unrolled_dcgan_channels_last_matches_nchw_and_zero_steps_is_the_plain_loss():
    losses = {}
    for last in (True, False):
        g, d, real, z = _pair(32, last, seed=1)
        opt = _warm_adam(g, d, real, z)
        losses[last] = unrolled_generator_loss(d, real, g(z), 2, 0.05, optimizer=opt)
        zero = unrolled_generator_loss(d, real, g(z), 0, 0.05, optimizer=opt)
        torch.testing.assert_close(zero, generator_loss(copy.deepcopy(d)(g(z))))
    torch.testing.assert_close(losses[True], losses[False], rtol=1e-5, atol=1e-6)


def test_unrolled_discriminator_returns_copies_of_the_buffers():
    g, d, real, z = _pair(28, True)
    _warm_adam(g, d, real, z)
    params, buffers = unrolled_discriminator(d, real, g(z).detach(), 2, 0.1)
    assert set(params) == {n for n, _ in d.named_parameters()}
    for name, b in d.named_buffers():
        assert torch.equal(buffers[name], b) and buffers[name] is not b
    # parameters moved; in eval mode the stepped D reads the (copied) running statistics
    assert any(not torch.equal(params[n], p) for n, p in d.named_parameters())
    d.eval()
    out = functional_call(d, (params, buffers), (real,))
    assert out.shape == (8,) and bool(torch.isfinite(out).all())


def test_unrolled_with_d_in_eval_mode_uses_the_running_statistics():
    # a D in eval mode only reads its running statistics: the look-ahead then uses them too
    g, d, real, z = _pair(28, True, torch.float64, seed=4)
    _warm_adam(g, d, real, z)
    d.eval()
    before = _snapshot(d)
    got = torch.autograd.grad(unrolled_generator_loss(d, real, g(z), 1, 0.5), list(g.parameters()))
    assert _bitwise_equal(before, _snapshot(d))
    fake = g(z)
    names, p0 = zip(*d.named_parameters())
    d_loss = discriminator_loss(d(real), d(fake))
    grads = torch.autograd.grad(d_loss, p0, create_graph=True)
    p1 = dict(zip(names, [p - 0.5 * gr for p, gr in zip(p0, grads)]))
    expected = torch.autograd.grad(generator_loss(functional_call(d, p1, (fake,))), list(g.parameters()))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_unrolled_conditional_dcgan():
    g, d, real, z = _pair(28, True, n_classes=3)
    labels = torch.arange(8) % 3
    before = _snapshot(d)
    loss = unrolled_generator_loss(d, real, g(z, labels), 2, 0.05, real_labels=labels, fake_labels=labels)
    loss.backward()
    assert bool(torch.isfinite(loss)) and _bitwise_equal(before, _snapshot(d))


# ---- training ----------------------------------------------------------------------------------
def _images(n=48, size=28, seed=0):
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _trainer(data, channels_last=True, **config):
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=8, image_size=data.shape[2], channels=1, width=4)
    d = DCGANDiscriminator(image_size=data.shape[2], channels=1, width=4)
    d.channels_last = channels_last
    return GANTrainer(g, d, data, None, GANConfig(**{"batch_size": 8, "n_samples": 8, "unrolled_steps": 2,
                                                      "lr_g": 1e-3, "lr_d": 1e-3, **config}))


def _state(trainer):
    return [t.detach().clone() for m in (trainer.generator, trainer.discriminator)
            for t in list(m.parameters()) + list(m.buffers())]


@pytest.mark.parametrize("channels_last", [True, False])
def test_trainer_with_dcgan_unrolls(channels_last):
    data = _images(48)
    t = _trainer(data, channels_last)
    fresh = _state(t)
    t.train(1, progress=False, stop_after=3)
    assert t.iteration == 3
    assert not _bitwise_equal(fresh, _state(t))
    # D's running statistics moved only with its own steps: 3 iterations x (real + fake batch)
    assert int(t.discriminator.norms[1].num_batches_tracked) == 6
    # the G step alone leaves D (parameters, running statistics, Adam state) as the D step left it
    order = t._order(t.epoch)
    d_state = {}
    step_g = t.opt_g.step

    def spy():
        d_state["at_g_step"] = _snapshot(t.discriminator, t.opt_d)
        step_g()
    t.opt_g.step = spy
    real_step_d = t.opt_d.step

    def spy_d(*args, **kwargs):
        out = real_step_d(*args, **kwargs)
        d_state["after_d_step"] = _snapshot(t.discriminator, t.opt_d)
        return out
    t.opt_d.step = spy_d
    d_loss, g_loss = t.train_iteration(order)
    assert _bitwise_equal(d_state["after_d_step"], d_state["at_g_step"])
    assert all(torch.isfinite(torch.tensor([d_loss, g_loss])))


def test_trainer_with_dcgan_unrolled_resumes_bitwise(tmp_path):
    data = _images(48)
    straight = _trainer(data)
    straight.train(1, progress=False, stop_after=4)
    first = _trainer(data)
    first.train(1, progress=False, stop_after=2)
    resumed = trainer_from_checkpoint(load_checkpoint(first.save(tmp_path / "c.pt")), data)
    assert resumed.config.unrolled_steps == 2
    resumed.train(1, progress=False, stop_after=2)
    assert _bitwise_equal(_state(straight), _state(resumed))


def test_cli_unrolled_on_digits(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "gan", "--epochs", "1", "--width", "4", "--latent-dim", "8", "--batch-size", "256",
            "--image-size", "28", "--unrolled-steps", "2", "--out", str(out), "--no-progress", "--threads", "1"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "unrolled 2" in text and "epoch 1: D loss" in text
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
