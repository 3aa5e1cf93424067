"""Input checks shared by the GAN modules: errors name the argument and what was expected (the
integer checks are :func:`fastgen._checks.positive_int`)."""
from __future__ import annotations

import numbers

import torch


def positive_float(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def float_tensor(t, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")
    return t


def check_labels(labels, n: int, n_classes: int, name: str = "labels"):
    """``None`` for an unconditional model (labels must be None); else an integer tensor of
    shape (n,) with values in [0, n_classes)."""
    if n_classes == 0:
        if labels is not None:
            raise ValueError(f"{name} given to an unconditional model (n_classes=0); pass labels=None")
        return None
    if labels is None:
        raise ValueError(f"{name} is required: the model is conditional on {n_classes} classes")
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices, got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class indices, got {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), one label per sample, got {tuple(labels.shape)}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes}) (n_classes={n_classes}), got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    return labels


def one_hot(labels: torch.Tensor, n_classes: int, dtype) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels.long(), n_classes).to(dtype)
