import argparse
import sys

from . import rbm

SCENARIOS = {"rbm": rbm.main}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--json", action="store_true", help="write bench/results/cpu.json")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller data (smoke test)")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    return SCENARIOS[args.scenario](args)


if __name__ == "__main__":
    sys.exit(main())
