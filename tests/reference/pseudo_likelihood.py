"""Reference for fastgen.ops.pseudo_likelihood: flip each unit in turn and compare free energies."""
from __future__ import annotations

import numpy as np

from .activations import log_sigmoid
from .rbm import as_float64, free_energy


def pseudo_likelihood(v, W, b_vis, b_hid):
    """sum_i log P(v_i | v_-i) = sum_i log sigmoid(F(v with v_i -> 1 - v_i) - F(v)), by
    flipping every unit in turn (a loop over units, free energies of whole batches)."""
    v, W, b_vis, b_hid = as_float64(v, W, b_vis, b_hid)
    fe = free_energy(v, W, b_vis, b_hid)
    total = np.zeros(v.shape[0])
    for i in range(v.shape[1]):
        flipped = v.copy()
        flipped[:, i] = 1.0 - flipped[:, i]
        total += log_sigmoid(free_energy(flipped, W, b_vis, b_hid) - fe)
    return total
