"""fastgen's benchmark harness: ``python -m bench SUITE [--quick] [--json] [--repeats N] ...``.

Each suite is a module registering itself with :func:`bench.common.register`; it runs fastgen
and its anchors (reference implementations, the hardware floor) in one process and prints
median times and ratios, with its targets marked MET / MISSED. ``--json`` writes
``bench/results/<suite's file>``; ``python -m bench.readme_table --write`` then regenerates the
README's benchmark table from those files (tests/test_readme_table.py fails until it is run). To add a suite (GPU, VAE, ...): write ``bench/NAME.py`` with a
``@register("NAME", ...)`` function taking the parsed arguments, and list the module in
``SUITE_MODULES`` below.
"""
from __future__ import annotations

import importlib

from .common import SUITES, Suite, register

# Modules that register suites, imported on demand (importing bench stays cheap).
SUITE_MODULES = ("bench.rbm", "bench.binary", "bench.quality", "bench.vae", "bench.gan", "bench.smiles",
                 "bench.kernels_under_load", "bench.numba", "bench.distributed")


def load_suites() -> dict[str, Suite]:
    for module in SUITE_MODULES:
        importlib.import_module(module)
    return SUITES


__all__ = ["SUITES", "Suite", "register", "load_suites", "SUITE_MODULES"]
