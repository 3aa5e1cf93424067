"""The random stream every fastgen kernel draws from.

All randomness is Philox4x32-10 (Salmon et al. 2011) keyed by a 64-bit seed. A
:class:`Generator` is that seed plus a counter of *offsets*: each kernel call takes the offsets it
needs (documented per op, usually one per sampled array) and element ``i`` of a call reads
counter ``(i // 4, offset)``. Consequences:

* the same (seed, offset, inputs) give bitwise-identical draws whatever the thread count;
* a checkpoint that stores ``generator.get_state()`` resumes the exact stream.

:meth:`Generator.take` is atomic: threads sharing a Generator get disjoint offsets, so they never
draw the same numbers (each thread's draws then depend on the order in which they asked).
"""
from __future__ import annotations

import numbers
import os
import sys
import threading

import numpy as np

_U64 = (1 << 64) - 1

# One lock for every Generator's counter: taking offsets is a few bytecodes, so contention is
# negligible, and a single lock is easy to make anew in a forked child (another thread may have
# held it at the fork).
_offset_lock = threading.Lock()


def _new_lock_in_child() -> None:
    global _offset_lock
    _offset_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def _tracing() -> bool:
    """Whether torch.compile is tracing the caller (torch is never imported for this)."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.compiler.is_compiling()


class Generator:
    """Seed and offset counter for the Philox4x32-10 stream.

    Parameters
    ----------
    seed : int or None
        A non-negative integer below 2**64. ``None`` draws one from the operating system.
    offset : int, default=0
        Where in the stream to start (for resuming a saved state).
    """

    __slots__ = ("_seed", "_offset")

    def __init__(self, seed: int | None = None, offset: int = 0):
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        self._seed = _check_u64(seed, "seed")
        self._offset = _check_u64(offset, "offset")

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def offset(self) -> int:
        """The next offset :meth:`take` will hand out."""
        return self._offset

    def take(self, n: int = 1) -> int:
        """Reserve ``n`` consecutive offsets and return the first."""
        if not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        n = int(n)
        if _tracing():  # torch.compile traces this as Python, where a lock is a graph break
            return self._advance(n)
        with _offset_lock:
            return self._advance(n)

    def _advance(self, n: int) -> int:
        start = self._offset
        if start + n > _U64:
            raise OverflowError("the Philox offset counter of this Generator is exhausted")
        self._offset = start + n
        return start

    def get_state(self) -> dict:
        with _offset_lock:
            return {"seed": self._seed, "offset": self._offset}

    def set_state(self, state: dict) -> None:
        # validate both before assigning: a refused state must leave the generator unchanged
        seed = _check_u64(state["seed"], "state['seed']")
        offset = _check_u64(state["offset"], "state['offset']")
        with _offset_lock:
            self._seed, self._offset = seed, offset

    def uniform(self, shape, dtype=np.float64) -> np.ndarray:
        """Uniforms on [0, 1) (float32: 24 random bits, float64: 32). Takes 1 offset."""
        from ._native import cpu as _cpu

        out = np.empty(shape, dtype=_float_dtype(dtype))
        _cpu.C.fill_uniform(out.reshape(-1), self._seed, self.take())
        return out

    def normal(self, shape, dtype=np.float64) -> np.ndarray:
        """Standard normals (Box-Muller on pairs of Philox words). Takes 1 offset."""
        from ._native import cpu as _cpu

        out = np.empty(shape, dtype=_float_dtype(dtype))
        _cpu.C.fill_normal(out.reshape(-1), self._seed, self.take())
        return out

    def bits(self, n: int) -> np.ndarray:
        """The raw 32-bit Philox words of ``n`` elements. Takes 1 offset."""
        from ._native import cpu as _cpu

        out = np.empty(int(n), dtype=np.uint32)
        _cpu.C.fill_bits(out, self._seed, self.take())
        return out

    def __repr__(self) -> str:
        return f"fastgen.Generator(seed={self._seed}, offset={self._offset})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Generator) and self.get_state() == other.get_state()

    def __getstate__(self):
        return self.get_state()

    def __setstate__(self, state):
        self.set_state(state)


def as_generator(generator) -> Generator:
    """``None`` -> a fresh OS-seeded Generator; int -> Generator(int); Generator -> itself;
    a NumPy RandomState or Generator, or a torch.Generator -> a Generator seeded from it
    (consumes one draw)."""
    if generator is None:
        return Generator()
    if isinstance(generator, Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return Generator(int(generator))
    if isinstance(generator, np.random.RandomState):
        return Generator(int(generator.randint(np.iinfo(np.int64).max, dtype=np.int64)))
    if isinstance(generator, np.random.Generator):
        return Generator(int(generator.integers(np.iinfo(np.int64).max, dtype=np.int64)))
    torch = sys.modules.get("torch")  # a torch.Generator exists only once torch is imported
    if torch is not None and isinstance(generator, torch.Generator) and generator.device.type == "cpu":
        return Generator(int(torch.randint(0, np.iinfo(np.int64).max, (), generator=generator, dtype=torch.int64)))
    kind = type(generator)
    raise TypeError(
        "generator must be None, an int seed, a fastgen.Generator, a NumPy random generator or a CPU "
        f"torch.Generator, got {kind.__module__}.{kind.__qualname__}"
    )


def _check_u64(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if not 0 <= value <= _U64:
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")
    return value


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype
