"""What the command modules share: the one-line user error, the output folder, fit timing, the
kernels loaded before anything is timed, and PyTorch for the torch commands."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


class CommandError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def fit_timed(estimator, X) -> float:
    """Seconds ``estimator.fit(X)`` takes."""
    start = time.perf_counter()
    estimator.fit(X)
    return time.perf_counter() - start


def out_dir(path) -> Path:
    """The output folder ``path`` (--out), refused when it names something else."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CommandError(f"{out}: exists and is not a directory (--out)")
    return out


def load_kernels() -> None:
    """Load the compiled module, its OpenMP runtime and SciPy's BLAS before anything is timed
    (or thread-limited), by running one tiny kernel: a sigmoid, which draws no random numbers."""
    from ..ops import sample_bernoulli

    sample_bernoulli(np.zeros((1, 1)), output="probs")


def import_torch(command: str):
    """The torch module, or a CommandError saying that ``fastgen COMMAND`` needs it."""
    try:
        import torch
    except ImportError:
        raise CommandError(f"'fastgen {command}' needs PyTorch: pip install 'fastgen[torch]'") from None
    return torch


def set_torch_threads(torch, threads) -> None:
    """``--threads`` of the torch commands: torch's CPU threads (None: torch's default)."""
    if threads is not None:
        torch.set_num_threads(threads)
