"""Stand-ins for the CUDA dispatch tests that run without a GPU (tests/cuda)."""
from __future__ import annotations


class FakeCudaArray:
    """A ``__cuda_array_interface__`` producer pointing nowhere: enough to be classified as CUDA."""

    def __init__(self, shape=(2, 3), typestr="<f4"):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "data": (0, False), "version": 3}


def cuda_backend_unavailable():
    """Why fastgen's CUDA backend cannot run here, or None when it can."""
    from fastgen._native import cuda as _cuda

    return _cuda.unavailable_reason()
