"""Reference for fastgen.ops.sgd: the momentum SGD step the trainers apply."""
from __future__ import annotations

from .rbm import as_float64


def sgd_step(param, velocity, grad, *, learning_rate, momentum=0.0, weight_decay=0.0):
    """v = m v + lr (g - wd * param); param += v. Returns (param, velocity), float64."""
    param, velocity, grad = as_float64(param, velocity, grad)
    velocity = momentum * velocity + learning_rate * (grad - weight_decay * param)
    return param + velocity, velocity
