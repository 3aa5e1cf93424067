"""CUDA launcher of the fused categorical sampler, kernels/categorical.cu (the CPU's
csrc/categorical.cpp on the device, bitwise the same draws for the same seed and offset).

Like the other launcher modules, this uses :mod:`fastgen._native.cuda_runtime`'s module cache,
launch and availability checks, is never imported by ``import fastgen``, takes CuPy arrays the
ops have validated, and launches on CuPy's current stream (the caller's: torch's current stream
for torch tensors).

Launch shape: one warp per row, four warps per block, grid-stride over the rows. Rows are
usually short (a token vocabulary of a few dozen) and many; a long row is still one warp,
whose lanes stride over its Philox blocks.
"""
from __future__ import annotations

from .cuda_runtime import (STREAM_FIELDS, current_device, launch, pack_record, row_stride, sm_count, stream_fields,
                           struct_dtypes, suffix)

# kernels/include/fastgen/params/categorical.h
STRUCTS = {
    "CategoricalGpuParams": (("logits", "p"), ("out", "p"), ("rows", "i"), ("cols", "i"), ("logits_stride", "i"),
                             ("temperature", "d"), ("top_k", "i")) + STREAM_FIELDS,
}
DTYPES = struct_dtypes(STRUCTS)

ROWS_PER_BLOCK = 4


def sample_categorical(logits, out, *, temperature: float, top_k: int, seed: int, offset: int) -> None:
    """out[r] (int64, [rows], contiguous) = the Gumbel-max draw of row r of ``logits`` (2-D
    float32/float64, contiguous columns, row stride allowed, finite, cols >= 1); ``top_k`` 0
    (all columns) or 1..cols. Nothing is launched for zero rows."""
    rows, cols = logits.shape
    if rows == 0:
        return
    params = pack_record(DTYPES["CategoricalGpuParams"], logits=logits, out=out, rows=rows, cols=cols,
                         logits_stride=row_stride(logits), temperature=float(temperature), top_k=int(top_k),
                         **stream_fields(seed, offset))
    grid = max(1, min(-(-rows // ROWS_PER_BLOCK), sm_count(current_device()) * 16))
    launch("categorical", f"fg_sample_categorical_{suffix(logits.dtype)}", rows, params,
           block=32 * ROWS_PER_BLOCK, grid=grid)
