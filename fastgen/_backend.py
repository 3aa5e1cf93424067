"""Which framework and device an array lives on, and the way back.

This first version serves CPU arrays: NumPy arrays, and CPU torch tensors / anything speaking
DLPack or the NumPy array protocol, viewed as NumPy without a copy where the layout allows. A
result goes back to the caller's kind with :func:`wrap_like`. CUDA arrays are recognised and
refused with a clear message until the CUDA backend exists.
"""
from __future__ import annotations

import numpy as np


def is_cuda_array(x) -> bool:
    if hasattr(x, "__cuda_array_interface__"):
        return True
    device = getattr(x, "device", None)
    return getattr(device, "type", None) == "cuda"


def is_torch_tensor(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def to_numpy(x, name: str):
    """View ``x`` as a NumPy array (zero-copy for NumPy, CPU torch and DLPack producers)."""
    if isinstance(x, np.ndarray):
        return x
    if is_cuda_array(x):
        raise TypeError(
            f"{name} lives on a CUDA device; this build of fastgen runs on the CPU only "
            "(move it to the CPU, e.g. tensor.cpu() or cupy.asnumpy(array))"
        )
    if is_torch_tensor(x):
        if x.requires_grad:
            x = x.detach()
        return np.from_dlpack(x)
    if hasattr(x, "__dlpack__") and not hasattr(x, "__array__"):
        return np.from_dlpack(x)
    return np.asarray(x)


def wrap_like(result: np.ndarray, like):
    """Return ``result`` in the framework of ``like`` (zero-copy)."""
    if is_torch_tensor(like):
        import torch

        return torch.from_numpy(result)
    return result
