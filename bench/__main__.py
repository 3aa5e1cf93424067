"""``python -m bench SUITE [options]`` -- run from the repository root (see bench/__init__.py)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

if __package__ in (None, ""):  # run as a script path: make the repository root importable
    sys.path.insert(0, str(REPO_ROOT))
    __package__ = "bench"


def source_tree_is_compiled(root: Path = REPO_ROOT) -> bool:
    """Whether the checkout's fastgen/ holds the compiled module (an editable install or an
    in-place build); False after a plain ``pip install .``, which builds _C into site-packages."""
    package = root / "fastgen"
    return not package.is_dir() or any(package.glob("_C.*.so")) or any(package.glob("_C*.pyd")) \
        or (package / "_C.so").is_file()


def use_installed_fastgen(root: Path = REPO_ROOT) -> str | None:
    """Import the installed fastgen instead of the checkout's uncompiled source tree.

    ``python -m bench`` puts the current directory first on sys.path, so from the repository
    root ``import fastgen`` finds ./fastgen, which has no compiled module after a plain (not
    editable) ``pip install .``. Then fastgen is imported with the checkout left out of sys.path,
    so the installed package (and its _C) is the one every suite uses. Returns the installed
    package's path, or None when nothing changed: fastgen already imported, the checkout
    compiled, or no other fastgen installed (its import error then says how to build it)."""
    if "fastgen" in sys.modules or source_tree_is_compiled(root):
        return None
    import importlib
    import importlib.util
    import os

    top = root.resolve()

    def in_checkout(entry) -> bool:
        try:
            return Path(entry or os.getcwd()).resolve() == top
        except (OSError, RuntimeError):
            return False

    saved = list(sys.path)
    sys.path[:] = [entry for entry in sys.path if not in_checkout(entry)]
    try:
        importlib.invalidate_caches()
        spec = importlib.util.find_spec("fastgen")
        if spec is None or spec.origin is None or Path(spec.origin).resolve().is_relative_to(top / "fastgen"):
            return None
        import fastgen
    finally:
        sys.path[:] = saved
    print(f"bench: {top / 'fastgen'} has no compiled module (a plain 'pip install .' builds it into the "
          f"installed package); using the installed fastgen at {Path(fastgen.__file__).parent}", file=sys.stderr)
    return str(Path(fastgen.__file__).parent)


use_installed_fastgen()

from bench import load_suites  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    suites = load_suites()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="fastgen benchmarks: each suite times fastgen beside its anchors in one process and "
                    "prints medians, ratios and MET/MISSED targets.")
    sub = parser.add_subparsers(dest="suite", required=True, metavar="{" + ",".join(sorted(suites)) + "}")
    for name in sorted(suites):
        suite = suites[name]
        p = sub.add_parser(name, help=suite.help, description=suite.help)
        p.add_argument("--quick", action="store_true",
                       help="fewer repeats and smaller data: a smoke test, not a measurement")
        p.add_argument("--json", action="store_true",
                       help=f"write the results to bench/results/{suite.results_file} (or --out)")
        p.add_argument("--out", default=None, metavar="PATH",
                       help=f"where --json writes (default: bench/results/{suite.results_file})")
        p.add_argument("--repeats", type=_positive_int, default=None, metavar="N",
                       help="timed repeats per implementation (default: the suite's; fewer with --quick)")
        p.add_argument("--cooldown", type=_nonnegative_float, default=None, metavar="S",
                       help="seconds of idle before each timed call, so BLAS threads left spinning by the "
                            "previous implementation stop first: a quiet-machine figure (default: 0 for rbm, which "
                            "measures what users get; 0.2 for the other suites)")
        if suite.add_arguments is not None:
            suite.add_arguments(p)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {value}")
    return value


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return load_suites()[args.suite].run(args)


if __name__ == "__main__":
    sys.exit(main())
