"""docs/ops.md, the op -> files table (DESIGN.md: "Where each op lives"), stays true: every op
module in fastgen/ops has a row, every row is an op, and every path the table names exists."""
from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TABLE = REPO_ROOT / "docs" / "ops.md"
COLUMNS = ["op", "validation", "torch op", "CPU kernel", "CUDA kernel", "reference", "tests", "benchmark"]
NOT_OPS = {"__init__", "validation"}  # the package and the shared array checks


def table_rows() -> dict[str, dict[str, str]]:
    lines = [line for line in TABLE.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == COLUMNS
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == len(COLUMNS), line
        rows[cells[0]] = dict(zip(COLUMNS, cells))
    return rows


def op_modules() -> set[str]:
    return {p.stem for p in (REPO_ROOT / "fastgen" / "ops").glob("*.py")
            if p.stem not in NOT_OPS and not p.stem.startswith("_")}


def test_every_op_has_one_row_and_every_row_is_an_op():
    assert set(table_rows()) == op_modules()


def test_every_path_in_the_table_exists():
    missing = [(op, column, path) for op, row in table_rows().items() for column, cell in row.items()
               for path in re.findall(r"`([^`]+)`", cell) if not (REPO_ROOT / path).exists()]
    assert not missing, missing


def test_the_validation_and_reference_cells_follow_the_op_name():
    for op, row in table_rows().items():
        assert row["validation"] == f"`fastgen/ops/{op}.py`"
        reference = REPO_ROOT / "tests" / "reference" / f"{op}.py"
        assert (f"`tests/reference/{op}.py`" == row["reference"]) == reference.exists(), op
        if row["torch op"] != "none":
            assert row["torch op"] == f"`fastgen/torch/ops/{op}.py`"
