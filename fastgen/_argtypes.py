"""argparse ``type=`` functions for every ``fastgen`` command, one definition each, and the
action that keeps an option's old spelling working (:class:`DeprecatedAlias`).

Counts beyond :data:`MAX_COUNT` are input errors, not runs: no machine finishes 2**31 epochs, and
larger values overflow the C integers (and the random stream's offsets) they end up in.
"""
from __future__ import annotations

import argparse
import math
import sys

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


# ---- old spellings ----------------------------------------------------------------------------
def note_deprecated(args, old: str, replacement: str) -> None:
    """Record ``note: OLD is deprecated; REPLACEMENT`` in ``args.deprecation_notes``: the command
    prints each as one line on stderr when it succeeds (a failed command prints only its one
    ``fastgen: error:`` line), see :func:`print_deprecation_notes`."""
    notes = list(getattr(args, "deprecation_notes", None) or ())
    line = f"note: {old} is deprecated; {replacement}"
    if line not in notes:
        notes.append(line)
    args.deprecation_notes = notes


def print_deprecation_notes(args) -> None:
    for line in getattr(args, "deprecation_notes", None) or ():
        print(line, file=sys.stderr)


class DeprecatedAlias(argparse.Action):
    """An old spelling of an option: stores its value into ``dest`` like the new one, records a
    one-line note saying what replaced it (:func:`note_deprecated`), and records the spelling in
    the namespace's ``old_spellings`` (a set) for commands whose old spelling kept an old meaning.

    ``replacement`` is the rest of the note, e.g. ``"use --resume (same meaning)"``."""

    def __init__(self, option_strings, dest, replacement: str = "", **kwargs):
        self.replacement = replacement
        kwargs.setdefault("help", f"deprecated: {replacement}")
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        note_deprecated(namespace, option_string, self.replacement)
        setattr(namespace, self.dest, values)
        used = set(getattr(namespace, "old_spellings", None) or ())
        used.add(option_string)
        setattr(namespace, "old_spellings", used)


def used_old_spelling(args, option: str) -> bool:
    """Whether ``option`` (an old spelling added with :class:`DeprecatedAlias`) was given."""
    return option in (getattr(args, "old_spellings", None) or ())
