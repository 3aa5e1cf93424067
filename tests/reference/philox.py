"""The one random stream, from first principles: pure-Python and vectorised Philox4x32-10, and
the documented mapping of its words to uniforms and normals.

Conventions (the stream layout of kernels/include/fastgen/philox.h and sampling.h):

* key = (seed_lo, seed_hi); element ``i`` of a call with offset ``o`` is lane ``i % 4`` of
  Philox4x32-10(counter = (block_lo, block_hi, o_lo, o_hi)) with ``block = i // 4``;
* uniform float32 = (w >> 8) * 2**-24, uniform float64 = w * 2**-32;
* normals: elements (2p, 2p + 1) are Box-Muller of words (w[2p], w[2p + 1]):
  r = sqrt(-2 log(1 - u1)), element 2p = r cos(2 pi u2), element 2p + 1 = r sin(2 pi u2).

The raw words of a call (:func:`words`) are the one thing read through fastgen; test_random pins
them to the pure-Python Philox below and to the published Random123 vectors.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

import fastgen

MASK32 = 0xFFFFFFFF
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85


# ---- Philox4x32-10 --------------------------------------------------------------------------------
def _mulhilo(a: int, b: int):
    p = a * b
    return p >> 32, p & MASK32


def philox4x32_10(ctr, key):
    """Pure-Python Philox4x32-10 (Salmon et al. 2011): 4 counter words, 2 key words."""
    c0, c1, c2, c3 = (int(x) & MASK32 for x in ctr)
    k0, k1 = (int(x) & MASK32 for x in key)
    for rnd in range(10):
        if rnd:
            k0 = (k0 + PHILOX_W0) & MASK32
            k1 = (k1 + PHILOX_W1) & MASK32
        hi0, lo0 = _mulhilo(PHILOX_M0, c0)
        hi1, lo1 = _mulhilo(PHILOX_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return [c0, c1, c2, c3]


def stream_counter(offset: int, block: int):
    return [block & MASK32, block >> 32, offset & MASK32, offset >> 32]


def stream_key(seed: int):
    return [seed & MASK32, seed >> 32]


def stream_word_py(seed: int, offset: int, index: int) -> int:
    """Word of element ``index`` of the call (seed, offset), pure Python."""
    return philox4x32_10(stream_counter(offset, index // 4), stream_key(seed))[index % 4]


def philox_words_numpy(seed: int, offset: int, n: int, first: int = 0) -> np.ndarray:
    """Words of elements first .. first + n - 1, vectorised Philox in uint64 arithmetic."""
    if n == 0:
        return np.empty(0, np.uint32)
    b0, b1 = first // 4, (first + n - 1) // 4 + 1
    blocks = np.arange(b0, b1, dtype=np.uint64)
    m32 = np.uint64(MASK32)
    x0 = blocks & m32
    x1 = blocks >> np.uint64(32)
    x2 = np.full_like(x0, offset & MASK32)
    x3 = np.full_like(x0, offset >> 32)
    k0, k1 = seed & MASK32, seed >> 32
    for rnd in range(10):
        if rnd:
            k0 = (k0 + PHILOX_W0) & MASK32
            k1 = (k1 + PHILOX_W1) & MASK32
        p0 = np.uint64(PHILOX_M0) * x0
        p1 = np.uint64(PHILOX_M1) * x2
        x0, x1, x2, x3 = ((p1 >> np.uint64(32)) ^ x1 ^ np.uint64(k0), p1 & m32,
                          (p0 >> np.uint64(32)) ^ x3 ^ np.uint64(k1), p0 & m32)
    w = np.stack([x0, x1, x2, x3], axis=1).reshape(-1).astype(np.uint32)
    return w[first - 4 * b0: first - 4 * b0 + n]


def words(seed: int, offset: int, n: int) -> np.ndarray:
    """The raw words of a call, read through fastgen (pinned to the above by test_random)."""
    out = np.empty(int(n), np.uint32)
    if n:
        from fastgen._native import cpu as _cpu

        _cpu.C.fill_bits(out, int(seed), int(offset))
    return out


def seed_and_offset(generator, n=1):
    """(seed, first offset) from a seed or a fastgen.Generator (advanced like the ops do)."""
    gen = generator if isinstance(generator, fastgen.Generator) else fastgen.Generator(generator)
    return gen.seed, gen.take(n)


# ---- uniforms and normals -------------------------------------------------------------------------
def uniform_from_words(w, dtype) -> np.ndarray:
    """The documented mapping; float32 values are exact (24 bits), returned in ``dtype``."""
    w = np.asarray(w, dtype=np.uint32)
    if np.dtype(dtype) == np.float32:
        return ((w >> np.uint32(8)).astype(np.float64) * 2.0**-24).astype(np.float32)
    return w.astype(np.float64) * 2.0**-32


def uniform_open_from_words(w, dtype) -> np.ndarray:
    """The documented open-interval mapping (0, 1): float32 (2k + 1) 2^-24 from the top 23 bits,
    float64 (w + 1/2) 2^-32; returned in ``dtype``."""
    w = np.asarray(w, dtype=np.uint32)
    if np.dtype(dtype) == np.float32:
        return (((w >> np.uint32(9)).astype(np.float64) * 2 + 1) * 2.0**-24).astype(np.float32)
    return (w.astype(np.float64) + 0.5) * 2.0**-32


def uniform_open(seed, offset, shape, dtype=np.float64) -> np.ndarray:
    n = int(np.prod(shape))
    return uniform_open_from_words(words(seed, offset, n), dtype).reshape(shape)


class Normals(NamedTuple):
    values: np.ndarray   # float64
    radius: np.ndarray   # the Box-Muller radius of each element's pair (error scale)


def normals_from_words(w, dtype) -> Normals:
    """Box-Muller in float64 from the uniforms of ``dtype`` (an odd last word pairs with 0:
    pass the even-length prefix of the stream to get the kernel's last element)."""
    w = np.asarray(w, dtype=np.uint32)
    n = w.size
    padded = np.zeros(n + (n & 1), np.uint32)
    padded[:n] = w
    u = uniform_from_words(padded, dtype).astype(np.float64)
    u1, u2 = u[0::2], u[1::2]
    r = np.sqrt(-2.0 * np.log(1.0 - u1))
    z = np.empty(padded.size)
    z[0::2] = r * np.cos(2.0 * np.pi * u2)
    z[1::2] = r * np.sin(2.0 * np.pi * u2)
    return Normals(z[:n], np.repeat(r, 2)[:n])


def uniform(seed, offset, shape, dtype=np.float64) -> np.ndarray:
    n = int(np.prod(shape))
    return uniform_from_words(words(seed, offset, n), dtype).reshape(shape)


def normal(seed, offset, shape, dtype=np.float64) -> Normals:
    n = int(np.prod(shape))
    # an odd last element still pairs with the next word of its Philox block
    z = normals_from_words(words(seed, offset, n + (n & 1)), dtype)
    return Normals(z.values[:n].reshape(shape), z.radius[:n].reshape(shape))
