"""The README's benchmark table, rendered from the committed results (bench/results/*.json).

``python -m bench.readme_table`` prints the table; ``--write`` puts it into README.md between
the ``<!-- bench-table:begin -->`` and ``<!-- bench-table:end -->`` markers; ``--check`` exits
with status 1 when README.md's block differs from what the results give (tests/test_readme_table.py
runs the same comparison, so the README cannot drift from the results files).

One row per scenario that compares fastgen with an anchor: the time of fastgen's implementation,
the anchor's name and time, fastgen's speed-up over the anchor (or, for the likelihood
scenarios, its difference in nats), fastgen's time over its GEMM floor where the scenario has
one, the scenario's targets, and the run (date, commit when recorded, machine). Scenarios
without an anchor (the binary-product crossover sweep, GAN mode coverage, the MNIST GAN
samples) are left out: their numbers are in their JSON files and in docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
README = BENCH_DIR.parent / "README.md"
BEGIN = "<!-- bench-table:begin -->"
END = "<!-- bench-table:end -->"
HEADER = ("suite", "scenario", "fastgen", "anchor", "fastgen vs anchor", "x GEMM floor", "targets", "run")

# Scenario keys whose JSON carries no title: (pattern, label template over the pattern's groups).
LABELS = (
    (r"R_reparam_(\d+)x(\d+)_(\w+)", "R. reparameterize + KL, forward + backward, {0} x {1}, {2}"),
    (r"C_conv_transpose_dcgan_batch(\d+)_(\w+)",
     "C. conv_transpose2d + activation, the DCGAN generator's 4 up-sampling layers, batch {0}, {1}"),
    (r"E_vae_epoch_mnist_batch(\d+)_(\w+)", "E. one VAE epoch, MNIST 784-400-20, Adam, batch {0}, {1}"),
    (r"S1_dcgan(\d+)_step_batch(\d+)", "S1. one DCGAN training step, {0}x{0} RGB, width 64, batch {1}"),
    (r"S2_mnist_dcgan(\d+)_batch(\d+)", "S2. MNIST DCGAN, {0}x{0}, width 64, batch {1}, 10 iterations"),
    (r"S_sample_categorical_(\d+)x(\d+)_(\w+)", "S. next-token draw (sample_categorical), {0} x {1}, {2}"),
    (r"T_ais_time_(\d+)x(\d+)_(\w+)", "T. AIS, 100 chains x 14,500 temperatures, {0} x {1}, {2}"),
    (r"L_log_likelihood_bounds_mnist",
     "L. test log-likelihood [RAISE, AIS], binarized MNIST, 500 hidden: the PCD recipe against CD-k"),
    (r"C_time_to_likelihood",
     "C. time to scikit-learn's best held-out log-likelihood, binarized MNIST, 500 hidden"),
)


# ---- reading the results -----------------------------------------------------------------------
def load_results(results_dir: Path = RESULTS_DIR) -> list[dict]:
    """Every results document under ``results_dir``, in file-name order."""
    return [json.loads(path.read_text()) for path in sorted(Path(results_dir).glob("*.json"))]


def scenario_label(key: str, scenario: dict) -> str:
    """The scenario's title without its "(median of N)" tail, or a label made from its key."""
    title = scenario.get("title")
    if title:
        return re.sub(r"\s*\((median|mean) of \d+\)$", "", title)
    for pattern, template in LABELS:
        match = re.fullmatch(pattern, key)
        if match:
            return template.format(*match.groups())
    return key.replace("_", " ")


def _fastgen_name(rows: dict) -> str | None:
    """The first implementation named "fastgen ...": the shipped configuration (the suites list
    it before their "BLAS products (before)" comparison rows)."""
    return next((name for name in rows if name.startswith("fastgen")), None)


def _timed_row(key: str, scenario: dict) -> dict | None:
    """fastgen, its anchor and its floor ratio from a timed scenario, or None without an anchor."""
    if "implementations" in scenario:            # the rbm suite: the anchor and floor are named
        rows = scenario["implementations"]
        anchor = scenario.get("reference") or scenario.get("floor")
    elif "summary" in scenario:                  # the other suites: the anchor is the ratios' base
        rows = scenario["summary"]
        anchor = next((name for name, row in rows.items() if row.get("speedup_vs_reference") == 1.0), None)
        if anchor is None:
            anchor = next((name for name, row in rows.items() if row.get("x_floor") == 1.0), None)
    else:
        return None
    ours = _fastgen_name(rows)
    if ours is None or anchor not in rows:
        return None
    ours_s, anchor_s = rows[ours]["median_s"], rows[anchor]["median_s"]
    return {"scenario": scenario_label(key, scenario), "fastgen": f"{format_seconds(ours_s)} ({ours})",
            "anchor": f"{anchor}: {format_seconds(anchor_s)}", "ratio": f"{anchor_s / ours_s:.2f}x",
            "x_floor": f"{rows[ours]['x_floor']:.2f}" if "x_floor" in rows[ours] else "",
            "targets": format_targets(scenario.get("targets", []))}


def _bounds_row(key: str, scenario: dict) -> dict | None:
    """quality L: the recipe's [RAISE, AIS] beside the best CD model's and scikit-learn's, means over
    the seeds; the difference is between lower bounds."""
    summary = scenario["summary"]
    ours = next((name for name in summary if "recipe" in name and name.startswith("fastgen PCD")), None)
    cds = [name for name in summary if name.startswith("fastgen CD")]
    if ours is None or not cds:
        return None
    best_cd = max(cds, key=lambda name: summary[name]["raise"])
    others = [best_cd] + [name for name in summary if name.startswith("scikit-learn")]

    def bounds(name):
        return f"[{summary[name]['raise']:.2f}, {summary[name]['ais']:.2f}]"

    seeds = len(scenario.get("settings", {}).get("seeds", [])) or 1
    return {"scenario": scenario_label(key, scenario), "fastgen": f"{bounds(ours)} ({ours}, mean of {seeds} seeds)",
            "anchor": "; ".join(f"{name}: {bounds(name)}" for name in others),
            "ratio": f"{summary[ours]['raise'] - summary[best_cd]['raise']:+.2f} nats (RAISE, vs {best_cd})",
            "x_floor": "", "targets": format_targets(scenario.get("targets", []))}


def _time_to_likelihood_row(key: str, scenario: dict) -> dict | None:
    """quality C: seconds to reach scikit-learn's best held-out estimate, fastgen's by its RAISE bound."""
    goal, reached = scenario["goal"], scenario["reached"]
    ours = next((name for name in reached if name.startswith("fastgen")), None)
    if ours is None:
        return None
    ours_s = reached[ours]["raise"]
    return {"scenario": scenario_label(key, scenario),
            "fastgen": f"{format_seconds(ours_s)} ({ours}, RAISE bound)" if ours_s else f"not reached ({ours})",
            "anchor": f"scikit-learn: {format_seconds(goal['fit_s'])} to its best, {goal['ais']:.2f} nats (AIS)",
            "ratio": f"{goal['fit_s'] / ours_s:.2f}x" if ours_s else "-",
            "x_floor": "", "targets": format_targets(scenario.get("targets", []))}


def _likelihood_row(key: str, scenario: dict) -> dict | None:
    """The quality scenarios: fastgen's (pseudo-)likelihood against scikit-learn's."""
    if "runs" in scenario and "summary" in scenario:
        return _bounds_row(key, scenario)
    if "goal" in scenario and "reached" in scenario:
        return _time_to_likelihood_row(key, scenario)
    if "pseudo_likelihood" in scenario:          # rbm C: held-out pseudo-likelihood on digits
        values, ours, anchor, what = scenario["pseudo_likelihood"], "fastgen", "scikit-learn", "pseudo-LL"
    else:
        return None
    if ours not in values or anchor not in values:
        return None
    difference = values[ours] - values[anchor]
    return {"scenario": scenario_label(key, scenario), "fastgen": f"{what} {values[ours]:.2f} ({ours})",
            "anchor": f"{anchor}: {values[anchor]:.2f}", "ratio": f"{difference:+.2f} nats",
            "x_floor": "", "targets": format_targets(scenario.get("targets", []))}


def table_rows(document: dict) -> list[dict]:
    """The table's rows from one results document, each with the run's description."""
    env = document.get("environment", {})
    run = format_run(env, quick=bool(document.get("settings", {}).get("quick")))
    rows = []
    for key, scenario in document.get("scenarios", {}).items():
        if not isinstance(scenario, dict):
            continue
        row = _likelihood_row(key, scenario) or _timed_row(key, scenario)
        if row is not None:
            rows.append({**row, "run": run, "suite": document.get("suite", "?")})
    return rows


# ---- formatting --------------------------------------------------------------------------------
def format_seconds(seconds: float) -> str:
    """3 significant digits in s, ms or us."""
    unit, scale = next(((u, k) for u, k in (("s", 1.0), ("ms", 1e-3)) if seconds >= k), ("us", 1e-6))
    return f"{seconds / scale:#.3g}".rstrip(".") + f" {unit}"


def format_targets(targets: list[dict]) -> str:
    """"all N met", or each missed target in full: what a reader must not miss."""
    if not targets:
        return "none set"
    missed = [t for t in targets if not t.get("met")]
    if not missed:
        return "met" if len(targets) == 1 else f"all {len(targets)} met"
    lines = [f"**MISSED** {t['target']}: {t['measured']:.2f}{t.get('unit', '')}, needs {t['op']} "
             f"{t['threshold']:g}{t.get('unit', '')}" for t in missed]
    return "; ".join(lines) + f"; {len(targets) - len(missed)} of {len(targets)} met"


def format_run(env: dict, *, quick: bool = False) -> str:
    """Date, commit (when recorded), machine and core count; QUICK runs say so."""
    parts = [env.get("date", "undated")[:10]]
    if env.get("commit"):
        parts.append(env["commit"])
    device = env.get("device", "unknown device")
    device = device[len("CPU: "):] if device.startswith("CPU: ") else device
    cores = env.get("cores_usable") or env.get("cores")
    parts.append(f"{device}, {cores} cores" if cores else device)
    if quick:
        parts.append("QUICK (smoke test, not a measurement)")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(documents: list[dict]) -> str:
    """The markdown table: one row per comparable scenario, suites in file order."""
    rows = [row for document in documents for row in table_rows(document)]
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        cells = (row["suite"], row["scenario"], row["fastgen"], row["anchor"], row["ratio"], row["x_floor"] or "-",
                 row["targets"], row["run"])
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def render_block(documents: list[dict]) -> str:
    """The README's marked block: the markers, a do-not-edit note and the table."""
    return "\n".join([BEGIN, "<!-- generated by `python -m bench.readme_table --write` from bench/results/*.json;"
                      " do not edit by hand -->", render_table(documents), END])


# ---- the README --------------------------------------------------------------------------------
def readme_block(text: str) -> str:
    """The block between (and including) the markers in ``text``."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README has no {BEGIN} ... {END} block")
    return text[start:end + len(END)]


def replace_block(text: str, block: str) -> str:
    """``text`` with its marked block replaced by ``block``."""
    old = readme_block(text)
    return text.replace(old, block, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.readme_table", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="update README.md's marked block in place")
    mode.add_argument("--check", action="store_true",
                        help="exit 1 if README.md's marked block differs from the results")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="folder of results files")
    parser.add_argument("--readme", type=Path, default=README, help="the README to check or write")
    args = parser.parse_args(argv)
    block = render_block(load_results(args.results))
    if not (args.write or args.check):
        print(block)
        return 0
    text = args.readme.read_text()
    if args.check:
        if readme_block(text) != block:
            print(f"{args.readme}: the benchmark table differs from {args.results}/*.json; "
                  "run python -m bench.readme_table --write", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(replace_block(text, block))
    print(f"wrote the benchmark table into {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
