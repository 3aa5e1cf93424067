"""GAN objectives: the minimax pair (Goodfellow et al. 2014), the non-saturating generator loss,
least-squares GAN (Mao et al. 2017), and label smoothing (Salimans et al. 2016).

Every function takes the discriminator's raw outputs (logits; for LSGAN its unbounded scores),
shape ``(N,)`` or ``(N, 1)``, and returns a scalar: the mean over the batch. The sigmoid is
never applied separately (``softplus`` forms are used), so a confident discriminator does not
turn the loss into ``log(0)``.
"""
from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

LOSSES = ("minimax", "nonsaturating", "lsgan")
SMOOTHINGS = ("none", "one_sided", "two_sided")
SMOOTHING_AMOUNT = 0.1   # positives 1 -> 0.9 (and, two-sided, negatives 0 -> 0.1)


def check_loss(loss) -> str:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    return loss


def label_targets(smoothing: str = "none", amount: float = SMOOTHING_AMOUNT) -> tuple[float, float]:
    """The (real, fake) targets of the discriminator for a smoothing scheme.

    ``"none"``: (1, 0). ``"one_sided"``: (1 - amount, 0) -- Salimans et al. 2016 smooth only the
    positive targets. ``"two_sided"``: (1 - amount, amount); offered to show why it is avoided:
    the optimal discriminator becomes ``(a p_data + b p_model) / (p_data + p_model)`` (see
    :func:`optimal_discriminator`), so fake samples far from the data see D close to ``b``
    whatever they do and get almost no push back towards the data.
    """
    if smoothing not in SMOOTHINGS:
        raise ValueError(f"smoothing must be one of {', '.join(SMOOTHINGS)}, got {smoothing!r}")
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real) or not 0.0 <= amount < 0.5:
        raise ValueError(f"amount must be a number in [0, 0.5), got {amount!r}")
    if smoothing == "none":
        return 1.0, 0.0
    if smoothing == "one_sided":
        return 1.0 - float(amount), 0.0
    return 1.0 - float(amount), float(amount)


def _logits(t, name) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() == 2 and t.shape[1] == 1:
        t = t.reshape(-1)
    if t.dim() != 1 or t.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N,) or (N, 1) with N >= 1, got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")
    return t


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean of ``-[t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))]``: ``t softplus(-l) +
    (1 - t) softplus(l)``, exact for any target in [0, 1]."""
    if target == 1.0:
        return F.softplus(-logits).mean()
    if target == 0.0:
        return F.softplus(logits).mean()
    return (target * F.softplus(-logits) + (1.0 - target) * F.softplus(logits)).mean()


def discriminator_loss(real_logits, fake_logits, loss: str = "nonsaturating", real_target: float = 1.0,
                       fake_target: float = 0.0) -> torch.Tensor:
    """The discriminator's loss on one real and one fake batch.

    Parameters
    ----------
    real_logits : Tensor of shape (N,) or (N, 1)
        D's outputs on data.
    fake_logits : Tensor of shape (M,) or (M, 1)
        D's outputs on generated samples.
    loss : {"minimax", "nonsaturating", "lsgan"}
        Minimax and non-saturating GANs share the discriminator's loss, the binary cross-entropy
        ``BCE(real, real_target) + BCE(fake, fake_target)`` (each a batch mean). LSGAN:
        ``0.5 mean((real - real_target)^2) + 0.5 mean((fake - fake_target)^2)``.
    real_target, fake_target : float
        The labels; see :func:`label_targets` for smoothing.

    Returns
    -------
    Tensor of shape ()
    """
    check_loss(loss)
    real_logits, fake_logits = _logits(real_logits, "real_logits"), _logits(fake_logits, "fake_logits")
    if loss == "lsgan":
        return 0.5 * ((real_logits - real_target) ** 2).mean() + 0.5 * ((fake_logits - fake_target) ** 2).mean()
    return _bce(real_logits, real_target) + _bce(fake_logits, fake_target)


def generator_loss(fake_logits, loss: str = "nonsaturating") -> torch.Tensor:
    """The generator's loss on D's outputs for its samples, shape (N,) or (N, 1) -> ().

    ``"minimax"``: ``mean(log(1 - D(G(z))))`` = ``-mean(softplus(l))``, the original game's
    term, which saturates (vanishing gradient) while D rejects the samples confidently.
    ``"nonsaturating"`` (the default): ``-mean(log D(G(z)))`` = ``mean(softplus(-l))``.
    ``"lsgan"``: ``0.5 mean((l - 1)^2)``.
    """
    check_loss(loss)
    fake_logits = _logits(fake_logits, "fake_logits")
    if loss == "minimax":
        return -F.softplus(fake_logits).mean()
    if loss == "nonsaturating":
        return F.softplus(-fake_logits).mean()
    return 0.5 * ((fake_logits - 1.0) ** 2).mean()


def optimal_discriminator(p_data, p_model, real_target: float = 1.0, fake_target: float = 0.0):
    """The discriminator that minimises the cross-entropy loss with soft targets, pointwise:
    ``D*(x) = (a p_data(x) + b p_model(x)) / (p_data(x) + p_model(x))`` (a = real_target,
    b = fake_target). Works on tensors or floats; where both densities are 0 the result is NaN."""
    return (real_target * p_data + fake_target * p_model) / (p_data + p_model)


__all__ = ["LOSSES", "SMOOTHINGS", "label_targets", "discriminator_loss", "generator_loss",
           "optimal_discriminator", "check_loss"]
