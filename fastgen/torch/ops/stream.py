"""``torch.ops.fastgen.stream_snapshot(stream) -> Tensor``: a copy of a Philox stream tensor
(int64 [2]: seed, offset) taken before its owner advances it.

A plain ``stream.clone()`` is not enough under ``torch.compile``: the partitioner recomputes a
clone in the backward from the saved buffer, which the forward has advanced by then, so the
backward would draw eps at the next offset. A custom op is never recomputed: its output is saved.
"""
from __future__ import annotations

import torch

from ._library import custom_op


def _check(stream) -> None:
    if not isinstance(stream, torch.Tensor) or stream.dtype != torch.int64 or tuple(stream.shape) != (2,):
        got = (f"{stream.dtype} tensor of shape {tuple(stream.shape)}" if isinstance(stream, torch.Tensor)
               else type(stream).__name__)
        raise TypeError(f"stream must be an int64 tensor of shape (2,) holding (seed, offset), got {got}")


@custom_op("stream_snapshot")
def _stream_snapshot_cpu(stream: torch.Tensor) -> torch.Tensor:
    _check(stream)
    return stream.clone()


@_stream_snapshot_cpu.register_kernel("cuda")
def _stream_snapshot_cuda(stream):
    _check(stream)
    return stream.clone()


@_stream_snapshot_cpu.register_fake
def _(stream):
    _check(stream)
    return torch.empty_like(stream)


def stream_snapshot(stream: torch.Tensor) -> torch.Tensor:
    """This call's (seed, offset), unchanged by later advances of ``stream``."""
    return torch.ops.fastgen.stream_snapshot(stream)
