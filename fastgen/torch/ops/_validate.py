"""Checks shared by the torch custom ops: run once in the op, before any kernel."""
from __future__ import annotations

import numpy as np
import torch

from ...ops.validation import check_finite

FLOATS = (torch.float32, torch.float64)
# bfloat16 / float16 reach the kernels as float32 (_library.in_float32); the fake kernels see them
ANY_FLOATS = FLOATS + (torch.bfloat16, torch.float16)
DTYPE_HINT = "float32 or float64 (bfloat16 and float16 run in float32 when all of a call's floats have that dtype)"


def cpu_float_tensor(t, name: str, ndim: int | None = None, layout: str = "") -> None:
    """TypeError / ValueError naming ``name`` unless t is a float32/float64 CPU tensor with
    ``ndim`` dimensions (``layout`` describes them in the message, e.g. "(N, C, H, W)")."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D{' ' + layout if layout else ''}, got shape {tuple(t.shape)}")
    if t.dtype not in FLOATS:
        raise TypeError(f"{name} must be {DTYPE_HINT}, got {t.dtype}")
    if t.device.type != "cpu":
        raise ValueError(f"{name} is on {t.device}; this build of fastgen's torch ops runs on the CPU only")


def tensors(**named) -> None:
    """TypeError naming the argument unless each is a torch.Tensor (None allowed for the optional
    ones the caller passes as None): the public wrappers check this before the dispatcher, whose
    own refusal names no argument and prints the whole array."""
    for name, t in named.items():
        if t is not None and not isinstance(t, torch.Tensor):
            kind = type(t)
            raise TypeError(f"{name} must be a torch.Tensor, got {kind.__module__}.{kind.__qualname__}"
                            + (" (fastgen.ops takes NumPy arrays)" if kind.__module__ == "numpy" else ""))


def finite_numpy(t: torch.Tensor, name: str = "x", finite: bool = True) -> np.ndarray:
    """A C-contiguous NumPy view (or copy) of t, checked for NaN/inf when ``finite``."""
    a = t.detach().contiguous().numpy()
    if finite:
        check_finite(a, name)
    return a


def float_tensor(t, name: str, ndim: int | None = None, layout: str = "") -> None:
    """:func:`cpu_float_tensor` for ops that also run on CUDA tensors: the same checks and messages,
    any device (ops with a CUDA kernel; the device mix is checked by :func:`same_device`)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D{' ' + layout if layout else ''}, got shape {tuple(t.shape)}")
    if t.dtype not in ANY_FLOATS:
        raise TypeError(f"{name} must be {DTYPE_HINT}, got {t.dtype}")
    if t.device.type not in ("cpu", "cuda", "meta"):
        raise ValueError(f"{name} is on {t.device}; fastgen's torch ops run on the CPU and on CUDA devices")


def same_device(first: str, t0: torch.Tensor, **others) -> None:
    """ValueError naming both arguments unless every tensor of ``others`` (None skipped) is on t0's device."""
    for name, t in others.items():
        if t is not None and t.device != t0.device:
            raise ValueError(f"{name} is on {t.device} but {first} is on {t0.device}: pass every tensor of one call "
                             "on the same device")


def cuda_arrays(*named):
    """CuPy views (zero-copy after torch's .contiguous()) of CUDA tensors given as (name, tensor)
    pairs; None stays None. A TypeError names the tensor when the CUDA backend is unavailable."""
    from ..._backend import to_cupy

    return tuple(None if t is None else to_cupy(t.detach().contiguous(), name) for name, t in named)


def on_torch_stream(t: torch.Tensor, name: str = "x"):
    """A context that makes t's device and torch's current stream CuPy's (kernels and cuBLAS run
    there, ordered with the caller's torch work)."""
    from ..._backend import Placement

    return Placement(t.device.index or 0, t, name).activate()


def tensor_like(t, name: str, shape, dtype, what: str = "") -> None:
    """TypeError / ValueError naming ``name`` unless t is a tensor of exactly ``shape`` and
    ``dtype``: the internal backward ops index their arguments by each other's shapes, so an
    inconsistent call (possible through torch.ops.fastgen.*) is refused before any kernel runs.
    ``what`` says where the expected shape comes from."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {t.dtype}")
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}{' ' + what if what else ''}, got {tuple(t.shape)}")


def index_range(indices: torch.Tensor, name: str, limit: int, where: str) -> None:
    """ValueError naming ``name`` unless every index lies in [0, limit) (one reduction each way;
    skipped for fake / meta tensors, whose values are unknown)."""
    if indices.numel() and indices.device.type != "meta" and not isinstance(indices, torch._subclasses.FakeTensor):
        lo, hi = (int(v) for v in torch.stack(torch.aminmax(indices)).tolist())  # one synchronisation
        if lo < 0 or hi >= limit:
            raise ValueError(f"{name} must lie in [0, {limit}) ({where}), got values in [{lo}, {hi}]")
