"""The momentum / weight-decay gradient-ascent step of the RBM trainers, in place.

Per element, with ``g`` the ascent direction (a log-likelihood gradient estimate):
``velocity = momentum * velocity + learning_rate * (g - weight_decay * param)`` and
``param += velocity``; without a velocity, ``param += learning_rate * (g - weight_decay * param)``.
The same update :func:`fastgen.ops.cd_epoch` applies inside its compiled loop.
"""
from __future__ import annotations

import numpy as np

from .._backend import to_numpy
from .._checks import real
from .._native import cpu as _cpu
from .validation import float_array

__all__ = ["sgd_momentum_update"]


def sgd_momentum_update(param, grad, *, velocity=None, learning_rate: float, momentum: float = 0.0,
                        weight_decay: float = 0.0) -> None:
    """One step along ``grad``, updating ``param`` (and ``velocity``) in place.

    Parameters
    ----------
    param : NumPy array (or CPU tensor) of any shape, float32 or float64
        C-contiguous and writeable (it is updated in place, never converted).
    grad : array of param's shape
        The ascent direction; converted once to param's dtype.
    velocity : array of param's shape and dtype, optional
        The momentum buffer, updated in place; None for a plain step.
    learning_rate : float > 0
    momentum : float in [0, 1)
        Used only with ``velocity``.
    weight_decay : float >= 0
    """
    p = _in_place(param, "param")
    g = float_array(grad, "grad", dtype=p.dtype)
    if g.shape != p.shape:
        raise ValueError(f"grad must have param's shape {p.shape}, got {g.shape}")
    v = None
    if velocity is not None:
        v = _in_place(velocity, "velocity")
        if v.shape != p.shape or v.dtype != p.dtype:
            raise ValueError(f"velocity must be a {p.dtype} array of shape {p.shape}, got {v.dtype} {v.shape}")
    learning_rate = real(learning_rate, "learning_rate", low=0.0, low_open=True)
    momentum = real(momentum, "momentum", low=0.0, high=1.0)
    if momentum >= 1.0:
        raise ValueError(f"momentum must be < 1, got {momentum}")
    weight_decay = real(weight_decay, "weight_decay", low=0.0)
    sgd_momentum_update_numpy(p, g, velocity=v, learning_rate=learning_rate, momentum=momentum,
                              weight_decay=weight_decay)


def sgd_momentum_update_numpy(param: np.ndarray, grad: np.ndarray, *, velocity=None, learning_rate: float,
                              momentum: float, weight_decay: float) -> None:
    """The kernel of :func:`sgd_momentum_update` for a trainer's own arrays, validated by it:
    ``param``, ``grad`` and ``velocity`` C-contiguous NumPy arrays of one float dtype and size,
    ``param`` and ``velocity`` writeable. Nothing is checked here; _C is called positionally, as
    the samplers' trusted entry points (:mod:`fastgen.ops.sampling`) explain."""
    _cpu.C.sgd_momentum_update(param, velocity, grad, learning_rate, momentum, weight_decay)


def _in_place(a, name: str) -> np.ndarray:
    view = to_numpy(a, name)
    if view.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64 (updated in place, never converted), got {view.dtype}")
    if not view.flags.c_contiguous or not view.flags.writeable:
        raise ValueError(f"{name} must be a writeable C-contiguous array (it is updated in place)")
    return view
