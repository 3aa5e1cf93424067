"""argparse ``type=`` functions for every ``fastgen`` command, one definition each.

Counts beyond :data:`MAX_COUNT` are input errors, not runs: no machine finishes 2**31 epochs, and
larger values overflow the C integers (and the random stream's offsets) they end up in.
"""
from __future__ import annotations

import argparse
import math

MAX_COUNT = 2 ** 31 - 1
MAX_SEED = 2 ** 32 - 1     # scikit-learn's random_state and NumPy's legacy seeds
MAX_THREADS = 1024


def bounded_int(text, minimum: int, maximum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    if value > maximum:
        raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
    return value


def nonnegative_int(text) -> int:
    return bounded_int(text, 0, MAX_COUNT)


def positive_int(text) -> int:
    return bounded_int(text, 1, MAX_COUNT)


def seed(text) -> int:
    return bounded_int(text, 0, MAX_SEED)


def threads(text) -> int:
    return bounded_int(text, 1, MAX_THREADS)


def finite_float(text) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value
