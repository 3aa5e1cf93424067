"""The README's benchmark table is generated from bench/results/*.json (bench/readme_table.py):
these tests fail when the README's marked block differs from what the committed results give,
and check what the generator puts in the table (anchors, floor ratios, missed targets)."""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if not (REPO_ROOT / "bench" / "readme_table.py").is_file():  # pragma: no cover - installed without a checkout
    pytest.skip("the bench/ package lives in the source checkout only", allow_module_level=True)
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import readme_table  # noqa: E402


@pytest.fixture(scope="module")
def documents():
    return readme_table.load_results(readme_table.RESULTS_DIR)


def test_readme_block_is_the_generated_table(documents):
    readme = (REPO_ROOT / "README.md").read_text()
    assert readme_table.readme_block(readme) == readme_table.render_block(documents), \
        "README.md's benchmark table differs from bench/results/*.json: run python -m bench.readme_table --write"
    assert readme.count(readme_table.BEGIN) == 1 and readme.count(readme_table.END) == 1


def test_every_scenario_with_targets_has_a_row(documents):
    # a target set by a suite cannot drop out of the README: its scenario must give a row
    with_targets = [(d["suite"], key) for d in documents for key, scenario in d["scenarios"].items()
                    if isinstance(scenario, dict) and scenario.get("targets")]
    rows = [row for d in documents for row in readme_table.table_rows(d)]
    assert with_targets and len(rows) == len(with_targets)
    table = readme_table.render_table(documents)
    for label in ("A. PCD-1 epoch", "B. scikit-learn defaults", "D. Gibbs sampling", "T. AIS", "S1. one DCGAN",
                  "S2. MNIST DCGAN", "S. next-token draw", "R. reparameterize + KL", "C. conv_transpose2d",
                  "E. one VAE epoch", "L. test log-likelihood [RAISE, AIS]", "C. held-out exact pseudo-likelihood",
                  "C. time to scikit-learn's best held-out"):
        assert label in table
    assert all(line.count(" | ") == len(readme_table.HEADER) - 1 for line in table.splitlines()[2:])


def _rbm_document():
    row = {"median_s": 0.1, "min_s": 0.09, "max_s": 0.12, "repeats_s": [0.1]}
    return {"suite": "rbm", "settings": {"quick": False},
            "environment": {"date": "2026-01-02T03:04:05+00:00", "device": "CPU: Test CPU", "cores": 4,
                            "cores_usable": 2, "commit": "0123456789ab"},
            "scenarios": {"A_x": {"title": "A. an epoch (median of 3)", "reference": "scikit-learn fit",
                                  "floor": "floor: 5 GEMMs/batch",
                                  "implementations": {
                                      "fastgen fit": {**row, "x_floor": 0.5},
                                      "scikit-learn fit": {**row, "median_s": 0.4, "x_floor": 2.0},
                                      "floor: 5 GEMMs/batch": {**row, "median_s": 0.2, "x_floor": 1.0}},
                                  "targets": [{"target": "fastgen >= 8x faster", "measured": 4.0, "op": ">=",
                                               "threshold": 8.0, "unit": "x", "status": "MISSED", "met": False},
                                              {"target": "fastgen <= 1x floor", "measured": 0.5, "op": "<=",
                                               "threshold": 1.0, "unit": "x", "status": "MET", "met": True}]},
                          "M_no_anchor": {"results": {}, "targets": []}}}


def test_row_names_anchor_floor_ratio_missed_target_and_run():
    (row,) = readme_table.table_rows(_rbm_document())
    assert row["scenario"] == "A. an epoch"
    assert row["fastgen"] == "100 ms (fastgen fit)" and row["anchor"] == "scikit-learn fit: 400 ms"
    assert row["ratio"] == "4.00x" and row["x_floor"] == "0.50"
    assert row["targets"] == "**MISSED** fastgen >= 8x faster: 4.00x, needs >= 8x; 1 of 2 met"
    assert row["run"] == "2026-01-02, 0123456789ab, Test CPU, 2 cores"


def test_summary_scenario_takes_the_ratios_base_as_anchor_and_flags_quick_runs():
    doc = {"suite": "vae", "settings": {"quick": True}, "environment": {"date": "2026-01-02", "device": "GPU: X"},
           "scenarios": {"R_reparam_16x8_float32": {"summary": {
               "torch eager": {"median_s": 2e-3, "speedup_vs_reference": 1.0},
               "fastgen fused op": {"median_s": 5e-4, "speedup_vs_reference": 4.0}}, "targets": []}}}
    (row,) = readme_table.table_rows(doc)
    assert row["scenario"] == "R. reparameterize + KL, forward + backward, 16 x 8, float32"
    assert row["anchor"] == "torch eager: 2.00 ms" and row["fastgen"] == "500 us (fastgen fused op)"
    assert row["ratio"] == "4.00x" and row["x_floor"] == "" and row["targets"] == "none set"
    assert row["run"] == "2026-01-02, GPU: X, QUICK (smoke test, not a measurement)"


def test_write_updates_only_the_block_and_check_detects_drift(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "cpu.json").write_text(json.dumps(_rbm_document()))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{readme_table.BEGIN}\nstale\n{readme_table.END}\n\noutro\n")
    args = ["--results", str(results), "--readme", str(readme)]
    assert readme_table.main(["--check", *args]) == 1
    assert "differs" in capsys.readouterr().err
    assert readme_table.main(["--write", *args]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n\n" + readme_table.BEGIN) and text.endswith(readme_table.END + "\n\noutro\n")
    assert "stale" not in text and "| rbm | A. an epoch |" in text
    assert readme_table.main(["--check", *args]) == 0

    changed = copy.deepcopy(_rbm_document())
    changed["scenarios"]["A_x"]["implementations"]["fastgen fit"]["median_s"] = 0.2
    (results / "cpu.json").write_text(json.dumps(changed))
    assert readme_table.main(["--check", *args]) == 1


def test_readme_without_markers_is_refused():
    with pytest.raises(ValueError, match="bench-table"):
        readme_table.readme_block("no table here")
