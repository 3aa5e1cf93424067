"""``torch.ops.fastgen.sample_categorical``: one draw per row of a categorical distribution, over fastgen._C.

``torch.ops.fastgen.sample_categorical(logits, temperature, top_k, seed, offset) -> Tensor``

    logits      float32 or float64 tensor on the CPU or a CUDA device, (n, m) or (m,), finite,
                m >= 1
    temperature float > 0 (draws from softmax(logits / temperature))
    top_k       int in 1..m, or None for all m categories (ties at the k-th value: lower
                columns first)
    seed        the Philox key as an int64: seeds >= 2**63 are passed as seed - 2**64 (two's
                complement; :func:`sample_categorical` does this for a fastgen.Generator)
    offset      the call's Philox offset, int64 the same way; the op consumes this one offset
    returns     int64 tensor of shape logits.shape[:-1]: the drawn column of each row

Row r's draw is argmax_c logits[r, c] - T * log(-log(1 - u[r, c])) (Gumbel-max; formula in
kernels/include/fastgen/categorical.h), u[r, c] = Philox word r * m + c of (seed, offset) on
the open interval (0, 1) (uniform_open01 in sampling.h).
CUDA tensors run kernels/categorical.cu on torch's current stream (a CuPy view through DLPack,
see :mod:`fastgen.ops.categorical`) and give bitwise the CPU's draws for the same seed and
offset; without CuPy or a usable device they raise a TypeError naming ``logits``.
The op is pure (``mutates_args=()``); it has a fake (meta) kernel for ``torch.compile`` and no
autograd formula: its output is integer indices, which carry no gradient (calling it on
logits that require grad is fine, the result simply does not require grad).
"""
from __future__ import annotations

from typing import Optional

import torch

from ..._checks import as_generator
from ...ops.categorical import check_temperature, check_top_k, sample_categorical_cupy, sample_categorical_numpy
from ...ops.validation import check_finite, float_array_cuda
from ._library import custom_op, int64_from_uint64, uint64_from_int64
from ._validate import ANY_FLOATS, DTYPE_HINT, cuda_arrays, on_torch_stream, tensors

_FLOATS = ANY_FLOATS  # bfloat16 / float16 arrive as float32 in the kernels, as themselves in the fake one


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() not in (1, 2):
        raise ValueError(f"logits must be 1-D or 2-D (rows x categories), got shape {tuple(logits.shape)}")
    if logits.shape[-1] == 0:
        raise ValueError(f"logits must have at least one category (last axis), got shape {tuple(logits.shape)}")
    if logits.dtype not in _FLOATS:
        raise TypeError(f"logits must be {DTYPE_HINT}, got {logits.dtype}")


@custom_op("sample_categorical")
def _sample_categorical_op(logits: torch.Tensor, temperature: float, top_k: Optional[int], seed: int,
                           offset: int) -> torch.Tensor:
    _check_logits(logits)
    t = check_temperature(temperature, str(logits.dtype).removeprefix("torch."))
    k = check_top_k(top_k, logits.shape[-1])
    a = logits.detach().contiguous().numpy()
    check_finite(a, "logits")
    out = sample_categorical_numpy(a, t, k, uint64_from_int64(seed, "seed"), uint64_from_int64(offset, "offset"))
    return torch.from_numpy(out)


@_sample_categorical_op.register_kernel("cuda")
def _(logits, temperature, top_k, seed, offset):
    _check_logits(logits)
    t = check_temperature(temperature, str(logits.dtype).removeprefix("torch."))
    k = check_top_k(top_k, logits.shape[-1])
    seed, offset = uint64_from_int64(seed, "seed"), uint64_from_int64(offset, "offset")
    with on_torch_stream(logits, "logits"):
        (a,) = cuda_arrays(("logits", logits))
        a = float_array_cuda(a, "logits")  # contiguous float already: only the finiteness check
        return torch.from_dlpack(sample_categorical_cupy(a, t, k, seed, offset))


@_sample_categorical_op.register_fake
def _(logits, temperature, top_k, seed, offset):
    _check_logits(logits)
    return logits.new_empty(logits.shape[:-1], dtype=torch.int64)


def sample_categorical(logits: torch.Tensor, temperature: float = 1.0, top_k: Optional[int] = None,
                       generator=None) -> torch.Tensor:
    """One draw per row from ``softmax(logits / temperature)`` over the ``top_k`` largest logits
    (all when None), through ``torch.ops.fastgen.sample_categorical``. ``generator``: a
    fastgen.Generator, int seed or None; takes one offset. Returns int64 indices (no gradient)."""
    tensors(logits=logits)
    gen = as_generator(generator)
    seed, offset = gen.seed, gen.take()
    return torch.ops.fastgen.sample_categorical(logits, temperature, top_k, int64_from_uint64(seed),
                                                int64_from_uint64(offset))
