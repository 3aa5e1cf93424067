"""Options several commands share: ``--threads`` (with the thread limit it sets) and old
spellings of renamed options."""
from __future__ import annotations

import argparse
import contextlib

from .. import _argtypes
from .common import load_kernels


def add_old_spelling(parser, option: str, dest: str, replacement: str, type=None, metavar=None) -> None:
    """``option``, an old spelling of the option stored in ``dest``: still accepted, with a
    one-line note on stderr saying what replaced it (see _argtypes.DeprecatedAlias)."""
    parser.add_argument(option, dest=dest, action=_argtypes.DeprecatedAlias, replacement=replacement, type=type,
                        metavar=metavar, default=argparse.SUPPRESS)


def add_threads_option(parser) -> None:
    """``--threads N`` of the commands that run fastgen's compiled (OpenMP) loops and BLAS."""
    parser.add_argument("--threads", type=_argtypes.threads, metavar="N",
                        help="limit fastgen's OpenMP threads and the BLAS threads to N (default: all cores)")
    parser.set_defaults(limit_threads=True)


@contextlib.contextmanager
def thread_limit(threads):
    """Run the body with at most ``threads`` OpenMP threads (fastgen's compiled loops) and BLAS
    threads (SciPy's and NumPy's OpenBLAS), through threadpoolctl; ``None``: no limit."""
    if threads is None:
        yield
        return
    # threadpoolctl limits the libraries loaded when the limit starts: load the kernels (and their
    # libgomp) and SciPy's BLAS first
    load_kernels()
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=threads):
        # what omp_get_max_threads now returns in the kernels' OpenMP runtime (a build without
        # OpenMP runs one thread)
        openmp = max((pool["num_threads"] for pool in threadpool_info() if pool["internal_api"] == "openmp"),
                     default=1)
        print(f"threads: {openmp} OpenMP (fastgen's compiled loops), BLAS limited to {threads}", flush=True)
        yield
