"""``python -m bench SUITE [options]`` -- run from the repository root (see bench/__init__.py)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script path: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "bench"

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
                            "previous implementation stop first (default: 0.2)")
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
