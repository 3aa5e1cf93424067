"""The optimiser every fastgen trainer builds by default.

torch's default Adam on CPU runs about a dozen elementwise passes per parameter tensor and step;
its fused kernel (``fused=True``) does the whole update in one pass (docs/performance.md).
"""
from __future__ import annotations

import torch


def adam(params, lr: float = 1e-3, **kwargs) -> torch.optim.Adam:
    """``torch.optim.Adam(params, lr, fused=True, **kwargs)``, or without ``fused`` where torch
    has no fused kernel for the parameters' device or dtype. Same state dict either way, so
    checkpoints move freely between the two."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)
    except RuntimeError:
        return torch.optim.Adam(params, lr=lr, **kwargs)


__all__ = ["adam"]
