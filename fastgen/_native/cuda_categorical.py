"""CUDA launch wrapper of the fused categorical sampler, kernels/categorical.cu (the CPU's
csrc/categorical.cpp on the device, bitwise the same draws for the same seed and offset).

Like :mod:`fastgen._cuda_vae`, this reuses :mod:`fastgen._cuda`'s module cache, launch and
availability checks, is never imported by ``import fastgen``, takes CuPy arrays the ops have
validated, and launches on CuPy's current stream (the caller's: torch's current stream for
torch tensors).

Launch shape: one warp per row, four warps per block, grid-stride over the rows. Rows are
usually short (a token vocabulary of a few dozen) and many; a long row is still one warp,
whose lanes stride over its Philox blocks.
"""
from __future__ import annotations

import numpy as np

from . import cuda as _cuda
from .cuda import launch, suffix

# ---- parameter struct (kernels/include/fastgen/gpu_params_categorical.h) ----------------------
# "p" pointer, "i" int64, "d" double; StreamParams spelled out as its three fields.
STRUCTS = {
    "CategoricalGpuParams": (("logits", "p"), ("out", "p"), ("rows", "i"), ("cols", "i"), ("logits_stride", "i"),
                             ("temperature", "d"), ("top_k", "i")) + _cuda._STREAM,
}
DTYPES = {name: np.dtype([(f, _cuda._CODES[c]) for f, c in fields]) for name, fields in STRUCTS.items()}

_ROWS_PER_BLOCK = 4


def _pack(**values) -> np.ndarray:
    return _cuda.pack_record(DTYPES["CategoricalGpuParams"], **values)


def sample_categorical(logits, out, *, temperature: float, top_k: int, seed: int, offset: int) -> None:
    """out[r] (int64, [rows], contiguous) = the Gumbel-max draw of row r of ``logits`` (2-D
    float32/float64, contiguous columns, row stride allowed, finite, cols >= 1); ``top_k`` 0
    (all columns) or 1..cols. Nothing is launched for zero rows."""
    rows, cols = logits.shape
    if rows == 0:
        return
    params = _pack(logits=logits, out=out, rows=rows, cols=cols,
                   logits_stride=int(logits.strides[0] // logits.itemsize), temperature=float(temperature),
                   top_k=int(top_k), **_cuda.stream_fields(seed, offset))
    grid = max(1, min(-(-rows // _ROWS_PER_BLOCK), _cuda._sm_count(_cuda._device()) * 16))
    launch("categorical", f"fg_sample_categorical_{suffix(logits.dtype)}", rows, params,
           block=32 * _ROWS_PER_BLOCK, grid=grid)
