"""GAN losses against hand-written BCE / MSE formulas, label smoothing targets, the optimal
discriminator with soft targets (found by minimising the loss), and the bias of two-sided
smoothing."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from fastgen.torch.gan.losses import (discriminator_loss, generator_loss, label_targets,  # noqa: E402
                                      optimal_discriminator)



def logits(n, seed, scale=3.0):
    return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def bce_reference(x, target):
    """-[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], written out with sigmoid and log."""
    p = torch.sigmoid(x)
    return -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()


@pytest.mark.parametrize("smoothing", ["none", "one_sided", "two_sided"])
def test_bce_discriminator_loss_matches_reference(smoothing):
    real, fake = logits(50, 0), logits(40, 1)
    a, b = label_targets(smoothing)
    expected = bce_reference(real, a) + bce_reference(fake, b)
    for kind in ("minimax", "nonsaturating"):
        torch.testing.assert_close(discriminator_loss(real, fake, kind, a, b), expected, rtol=1e-12, atol=1e-12)
    # and torch's own BCE-with-logits
    F = torch.nn.functional
    torch.testing.assert_close(discriminator_loss(real, fake, "nonsaturating", a, b),
                               F.binary_cross_entropy_with_logits(real, torch.full_like(real, a))
                               + F.binary_cross_entropy_with_logits(fake, torch.full_like(fake, b)))


def test_generator_losses_match_reference():
    fake = logits(64, 2)
    p = torch.sigmoid(fake)
    torch.testing.assert_close(generator_loss(fake, "minimax"), torch.log(1 - p).mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(generator_loss(fake, "nonsaturating"), -torch.log(p).mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(generator_loss(fake, "lsgan"), 0.5 * ((fake - 1) ** 2).mean())


def test_lsgan_discriminator_loss_matches_mse():
    real, fake = logits(30, 3), logits(20, 4)
    F = torch.nn.functional
    expected = 0.5 * F.mse_loss(real, torch.ones_like(real)) + 0.5 * F.mse_loss(fake, torch.zeros_like(fake))
    torch.testing.assert_close(discriminator_loss(real, fake, "lsgan"), expected)


def test_minimax_saturates_where_nonsaturating_does_not():
    # D confidently rejects the samples (logit -10): the minimax generator gradient vanishes.
    fake = torch.full((8,), -10.0, dtype=torch.float64, requires_grad=True)
    (g_mm,) = torch.autograd.grad(generator_loss(fake, "minimax"), fake)
    (g_ns,) = torch.autograd.grad(generator_loss(fake, "nonsaturating"), fake)
    assert g_mm.abs().max() < 1e-5 and g_ns.abs().min() > 0.1


def test_stable_for_extreme_logits():
    big = torch.tensor([-200.0, 200.0], dtype=torch.float64)
    for kind in ("minimax", "nonsaturating", "lsgan"):
        assert torch.isfinite(discriminator_loss(big, big, kind))
        assert torch.isfinite(generator_loss(big, kind))


def test_label_targets():
    assert label_targets("none") == (1.0, 0.0)
    assert label_targets("one_sided") == (0.9, 0.0)
    assert label_targets("two_sided") == (0.9, pytest.approx(0.1))


def test_optimal_discriminator_minimises_the_soft_target_loss():
    # Per point x with densities p_data(x), p_model(x), the expected loss is
    # p_data BCE(D, a) + p_model BCE(D, b); minimise it over free logits. discriminator_loss adds
    # the two halves with equal weight, so each half is taken with a saturated constant partner
    # (BCE(-50, 0) and BCE(50, 1) are ~e^-50).
    p_data = torch.tensor([0.7, 0.2, 0.05, 0.0], dtype=torch.float64)
    p_model = torch.tensor([0.1, 0.2, 0.6, 0.5], dtype=torch.float64)
    for smoothing in ("none", "one_sided", "two_sided"):
        a, b = label_targets(smoothing)
        logit = torch.zeros(4, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([logit], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14)

        def closure():
            opt.zero_grad()
            loss = sum(p_data[i] * discriminator_loss(logit[i:i + 1], torch.tensor([-50.0], dtype=torch.float64),
                                                        "nonsaturating", a, 0.0)
                       + p_model[i] * discriminator_loss(torch.tensor([50.0], dtype=torch.float64), logit[i:i + 1],
                                                         "nonsaturating", 1.0, b)
                       for i in range(4))
            loss.backward()
            return loss

        opt.step(closure)
        expected = optimal_discriminator(p_data, p_model, a, b)
        if b == 0.0:   # D* = 0 at the last point: only approached, as the logit runs to -inf
            torch.testing.assert_close(torch.sigmoid(logit)[:3], expected[:3], rtol=0, atol=1e-4)
            assert torch.sigmoid(logit)[3] < 1e-3
        else:
            torch.testing.assert_close(torch.sigmoid(logit), expected, rtol=0, atol=1e-4)


def test_two_sided_smoothing_weakens_the_pull_towards_the_data():
    # 1-D: data N(0, 1), model N(3, 1). A fake sample at x = 4 (far side of the model) is moved by
    # the gradient of the non-saturating loss -log D*(x). With one-sided smoothing the pull
    # towards the data stays strong; with two-sided smoothing D* is floored at b = 0.1 where the
    # data density vanishes, so the pull nearly disappears -- Salimans et al.'s reason for
    # smoothing the positive targets only.
    def pull(a, b):
        x = torch.tensor(4.0, dtype=torch.float64, requires_grad=True)
        p_data = torch.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi)
        p_model = torch.exp(-(x - 3) ** 2 / 2) / math.sqrt(2 * math.pi)
        (g,) = torch.autograd.grad(-torch.log(optimal_discriminator(p_data, p_model, a, b)), x)
        return float(g)   # descent moves x by -g: g > 0 pulls it towards the data (smaller x)

    one, two = pull(*label_targets("one_sided")), pull(*label_targets("two_sided"))
    assert one > 1.0          # -d/dx log(p_d / (p_d + p_g)) ~ 3 here
    assert 0 < two < 0.01 * one


@pytest.mark.parametrize("bad,error,match", [
    (dict(loss="wasserstein"), ValueError, "loss must be one of"),
    (dict(real_logits=torch.zeros(3, 2)), ValueError, "real_logits must have shape"),
    (dict(fake_logits=[0.0, 1.0]), TypeError, "fake_logits must be a torch.Tensor"),
    (dict(real_logits=torch.zeros(3, dtype=torch.long)), TypeError, "real_logits must be a floating-point"),
])
def test_bad_input_names_the_argument(bad, error, match):
    kwargs = dict(real_logits=torch.zeros(3), fake_logits=torch.zeros(3), loss="nonsaturating")
    kwargs.update(bad)
    with pytest.raises(error, match=match):
        discriminator_loss(**kwargs)


def test_bad_smoothing():
    with pytest.raises(ValueError, match="smoothing must be one of"):
        label_targets("both")
    with pytest.raises(ValueError, match="amount must be"):
        label_targets("one_sided", 0.7)
