"""``fastgen bench ARGS``: the repository's benchmark harness, the same as ``python -m bench ARGS``.

bench/ is not part of the installed package: it is found in the checkout fastgen was imported
from (editable installs) or in the current directory (a plain ``pip install .``, run from the
repository root), and only that package is imported from there, by its location: sys.path is left
alone, so nothing else in the checkout (its source fastgen/ above all) can shadow an installed
module.
"""
from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path

from .common import CommandError


def repo_root() -> Path:
    """The folder holding the fastgen package that runs: the checkout, for an editable install."""
    return Path(__file__).resolve().parents[2]


def bench_checkouts() -> list[Path]:
    """Where to look for the repository's bench/: the checkout fastgen was imported from
    (editable installs), then the current directory (a plain ``pip install .`` puts fastgen in
    site-packages, without bench/, and the command is run from the repository root)."""
    return [repo_root(), Path.cwd()]


def _import_package(name: str, folder: Path) -> None:
    """Import the package in ``folder`` as ``name`` (its submodules then import from there too)."""
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def find_bench():
    """The spec of the ``bench`` package: an imported one, else that of the first of
    :func:`bench_checkouts` that is a fastgen checkout, else whatever ``import bench`` finds;
    a CommandError when there is none."""
    if "bench" not in sys.modules:
        for root in bench_checkouts():
            if (root / "bench" / "__main__.py").is_file() and (root / "fastgen").is_dir():
                _import_package("bench", root / "bench")
                break
    try:
        spec = importlib.util.find_spec("bench")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise CommandError(
            "the benchmark harness is not importable: 'fastgen bench' runs the bench/ package of "
            "fastgen's source repository; run it from the repository root (after 'pip install .' or "
            "'pip install -e .')"
        )
    return spec


def run(rest: list[str]) -> int:
    """``python -m bench REST`` in this process (the harness found by :func:`find_bench`);
    returns its exit code. sys.argv is restored afterwards."""
    saved_argv = sys.argv
    sys.argv = ["python -m bench", *rest]
    try:
        runpy.run_module("bench", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    finally:
        sys.argv = saved_argv
    return 0
