"""How fastgen's Philox stream meets torch's conventions.

* A model's stream lives in a buffer, ``stream`` (int64 [2]: seed, offset, two's complement above
  2**63), so ``state_dict()`` carries it, ``load_state_dict`` restores it, and a compiled forward
  reads it as a tensor and advances it in the graph: ``torch.compile`` compiles once instead of
  guarding on the offset's value.
* Without an explicit seed the stream's seed is drawn from torch's default generator, so
  ``torch.manual_seed(s)`` before building the model makes its draws reproducible, like torch's
  own layers' initialisation.
* ``model.generator`` is a :class:`fastgen.Generator` whose state is that buffer: ``take()``,
  ``get_state()`` and ``set_state()`` read and write the model's stream.
"""
from __future__ import annotations

import torch

from ..random import Generator
from .ops.stream import stream_tensor, stream_values

_U64 = 1 << 64


def initial_seed(seed) -> int:
    """The seed of a new model's stream: ``seed`` (an int, or a fastgen.Generator whose seed
    and position are taken), else one drawn from torch's default generator (as any
    torch.Generator seeds a fastgen.Generator: one draw)."""
    from .._checks import as_generator

    return as_generator(torch.default_generator if seed is None else seed).seed


class BufferGenerator(Generator):
    """A :class:`fastgen.Generator` whose seed and offset are ``module``'s int64 [2] buffer
    ``name`` (looked up on each use, so ``module.to()`` and ``load_state_dict`` are followed)."""

    __slots__ = ("_module", "_name")

    def __init__(self, module: torch.nn.Module, name: str = "stream"):  # no super().__init__: no state of its own
        self._module, self._name = module, name

    @property
    def _buffer(self) -> torch.Tensor:
        return self._module._buffers[self._name]

    def _read(self) -> tuple[int, int]:
        return stream_values(self._buffer)

    @property
    def seed(self) -> int:
        return self._read()[0]

    @property
    def offset(self) -> int:
        return self._read()[1]

    def _advance(self, n: int) -> int:
        seed, start = self._read()
        if start + n >= _U64:
            raise OverflowError("the Philox offset counter of this Generator is exhausted")
        self._buffer.copy_(stream_tensor(seed, start + n))
        return start

    def get_state(self) -> dict:
        seed, offset = self._read()
        return {"seed": seed, "offset": offset}

    def set_state(self, state: dict) -> None:
        checked = Generator(state["seed"], state["offset"])  # the same checks as any Generator
        self._buffer.copy_(stream_tensor(checked.seed, checked.offset))

    def __repr__(self) -> str:
        seed, offset = self._read()
        return f"fastgen.Generator(seed={seed}, offset={offset}) (the stream buffer of {type(self._module).__name__})"

    def __reduce__(self):  # pickles as a plain Generator at its current state
        return (Generator, self._read())


__all__ = ["BufferGenerator", "stream_tensor", "initial_seed"]
