"""``torch.ops.fastgen.stream_snapshot(stream) -> Tensor``: a copy of a Philox stream tensor
(int64 [2]: seed, offset) taken before its owner advances it.

A plain ``stream.clone()`` is not enough under ``torch.compile``: the partitioner recomputes a
clone in the backward from the saved buffer, which the forward has advanced by then, so the
backward would draw eps at the next offset. A custom op is never recomputed: its output is saved.
"""
from __future__ import annotations

import torch

from ._library import custom_op, int64_from_uint64, uint64_from_int64


def stream_tensor(seed: int, offset: int) -> torch.Tensor:
    """The (seed, offset) pair (each in [0, 2**64)) as the int64 [2] tensor the stream-taking ops read."""
    return torch.tensor([int64_from_uint64(seed), int64_from_uint64(offset)], dtype=torch.int64)


def stream_values(stream: torch.Tensor) -> tuple[int, int]:
    """(seed, offset) of a stream tensor as ints in [0, 2**64) (a CUDA tensor costs a synchronisation)."""
    seed, offset = stream.tolist()
    return uint64_from_int64(seed, "seed"), uint64_from_int64(offset, "offset")


def check_stream(stream) -> None:
    if not isinstance(stream, torch.Tensor) or stream.dtype != torch.int64 or tuple(stream.shape) != (2,):
        got = (f"{stream.dtype} tensor of shape {tuple(stream.shape)}" if isinstance(stream, torch.Tensor)
               else type(stream).__name__)
        raise TypeError(f"stream must be an int64 tensor of shape (2,) holding (seed, offset), got {got}")


@custom_op("stream_snapshot")
def _stream_snapshot_cpu(stream: torch.Tensor) -> torch.Tensor:
    check_stream(stream)
    return stream.clone()


@_stream_snapshot_cpu.register_kernel("cuda")
def _stream_snapshot_cuda(stream):
    check_stream(stream)
    return stream.clone()


@_stream_snapshot_cpu.register_fake
def _(stream):
    check_stream(stream)
    return torch.empty_like(stream)


def stream_snapshot(stream: torch.Tensor) -> torch.Tensor:
    """This call's (seed, offset), unchanged by later advances of ``stream``."""
    return torch.ops.fastgen.stream_snapshot(stream)
