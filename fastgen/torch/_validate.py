"""Checks shared by the torch custom ops: run once in the op, before any kernel."""
from __future__ import annotations

import numpy as np
import torch

from ..ops._validate import check_finite

FLOATS = (torch.float32, torch.float64)


def cpu_float_tensor(t, name: str, ndim: int | None = None, layout: str = "") -> None:
    """TypeError / ValueError naming ``name`` unless t is a float32/float64 CPU tensor with
    ``ndim`` dimensions (``layout`` describes them in the message, e.g. "(N, C, H, W)")."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D{' ' + layout if layout else ''}, got shape {tuple(t.shape)}")
    if t.dtype not in FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {t.dtype}")
    if t.device.type != "cpu":
        raise ValueError(f"{name} is on {t.device}; this build of fastgen's torch ops runs on the CPU only")


def finite_numpy(t: torch.Tensor, name: str = "x", finite: bool = True) -> np.ndarray:
    """A C-contiguous NumPy view (or copy) of t, checked for NaN/inf when ``finite``."""
    a = t.detach().contiguous().numpy()
    if finite:
        check_finite(a, name)
    return a
