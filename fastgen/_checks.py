"""The one set of scalar checks (integers, reals, flags, sizes, generators), shared by every layer.

Each raises ValueError or TypeError naming the argument and what was expected; array checks
live with the ops (:mod:`fastgen.ops.validation`).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

# The CPU kernels keep column (and, in transposed index lists, row) numbers as int32 and hand
# matrix dimensions to the Fortran BLAS as 32-bit ints (csrc/index_lists.h, binary.cpp,
# sparse_linear.cpp, blas.cpp): every such extent must stay at or below this.
INT32_MAX = 2**31 - 1


def check_int32_extent(value: int, name: str, what: str) -> int:
    """ValueError naming ``name`` unless ``value`` (a size: ``what`` describes it) fits the
    kernels' 32-bit indices. Checked on shapes, before anything is copied or allocated."""
    # No int() first: under torch.compile a size is a SymInt, and int() would fix the compiled
    # graph to that size (a recompile for every batch size); the comparison guards a range.
    if value > INT32_MAX:
        raise ValueError(f"{name} has {int(value)} {what}; fastgen's CPU kernels index them with 32-bit "
                         f"integers, so at most 2**31 - 1 = {INT32_MAX} are supported")
    return value if type(value).__name__ == "SymInt" else int(value)


def check_output_size(shape, name: str, itemsize: int = 8) -> tuple:
    """ValueError naming ``name`` (the argument that sets the size) unless an array of ``shape``
    can exist at all (NumPy's "array is too big" / "Maximum allowed dimension exceeded" would
    name nothing); a size that merely exceeds the memory at hand still raises MemoryError.
    Symbolic sizes (torch.compile's SymInts in fake kernels) are left alone, not specialised."""
    if not all(isinstance(d, (int, np.integer)) for d in shape):
        return tuple(shape)
    shape = tuple(int(d) for d in shape)
    total = 1
    for d in shape:
        total *= d
    if any(d < 0 for d in shape) or total * itemsize > np.iinfo(np.intp).max:
        raise ValueError(f"{name} gives an output of shape {shape}, too large for any array")
    return shape


def positive_int(value, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer in {minimum}..{maximum}, got {value!r}")
    return int(value)


def flag(value, name: str) -> bool:
    """A bool (Python or NumPy); anything else (strings, None, numbers) is refused: a truthy
    string such as "no" must not silently mean True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def finite_in_dtype(value: float, name: str, dtype) -> float:
    """ValueError naming ``name`` if the finite ``value`` overflows the kernel's float type."""
    if abs(value) > float(np.finfo(dtype).max):
        raise ValueError(f"{name} must be finite in the arrays' dtype {np.dtype(dtype).name} "
                         f"(magnitude at most {float(np.finfo(dtype).max):g}), got {value!r}")
    return value


def is_finite_real(value) -> bool:
    """A real number (not a bool) that is finite as a float: np.isfinite raises TypeError on a
    Python int past 2**64 and float() OverflowError past 1e308, so neither is asked alone."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def real(value, name: str, *, low=None, high=None, low_open=False) -> float:
    if not is_finite_real(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def as_generator(generator):
    """:func:`fastgen.random.as_generator` for an op's ``generator`` argument: its refusals
    (a negative or too large int seed says "seed must be ...") re-raised naming ``generator``."""
    from .random import as_generator as _as_generator

    try:
        return _as_generator(generator)
    except (ValueError, TypeError) as exc:
        if str(exc).startswith("generator"):
            raise
        raise type(exc)(f"generator (a fastgen.Generator or an int seed): {exc}") from exc
