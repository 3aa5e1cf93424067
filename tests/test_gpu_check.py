"""bench/gpu_check.sh and bench/gpu_smoke.py without a GPU: the dry run completes, records every
GPU phase as skipped with its reason, writes its summary, respects its budget and leaves at most
the 8 files a device call brings back; the smoke test's registry launches every kernel entry point
of kernels/*.cu, and its NumPy references agree with the CPU backend."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.sh"
GPU_PHASES = ("smoke", "smoke-ops", "tests", "bench", "memcheck")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and coreutils timeout")


def _smoke():
    spec = importlib.util.spec_from_file_location("gpu_smoke", ROOT / "bench" / "gpu_smoke.py")
    mod = sys.modules.get("gpu_smoke")
    if mod is None:
        mod = importlib.util.module_from_spec(spec)
        sys.modules["gpu_smoke"] = mod  # dataclasses look their module up there
        spec.loader.exec_module(mod)
    return mod


def _run(tmp_path, **env):
    full = dict(os.environ, OUT=str(tmp_path), **env)
    full.pop("FASTGEN_DATA_DIR", None)
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=full, capture_output=True, text=True, timeout=120)
    phases = {}
    for line in (tmp_path / "phases.tsv").read_text().splitlines()[1:]:
        name, status, seconds, limit, note = (line.split("\t") + [""] * 5)[:5]
        phases[name] = (status, int(seconds), int(limit), note)
    return proc, phases


def _gpu_here() -> bool:
    return shutil.which("nvidia-smi") is not None and importlib.util.find_spec("cupy") is not None


@pytest.mark.parametrize("dry", ["1", None])
def test_dry_run_skips_every_gpu_phase_and_writes_its_summary(tmp_path, dry):
    if dry is None and _gpu_here():
        pytest.skip("a GPU is here: only DRY_RUN=1 is a dry run")
    env = {"BUDGET": "120"} if dry is None else {"BUDGET": "120", "DRY_RUN": dry}
    proc, phases = _run(tmp_path, **env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name in ("SUMMARY.md", "phases.tsv", "env.json", "smoke_summary.json", "logs.tar.gz", "gpu_check.log"):
        assert (tmp_path / name).is_file(), name
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) <= 8  # what a device call brings back
    for name in GPU_PHASES + ("build",):
        status, _, _, note = phases[name]
        assert status == "skipped" and note, (name, phases[name])
    reason = phases["smoke"][3]
    assert reason == "DRY_RUN=1" if dry else reason
    summary = (tmp_path / "SUMMARY.md").read_text()
    assert "every GPU phase skipped" in summary and "- bench: skipped" in summary
    assert proc.stdout.rstrip().endswith(summary.rstrip().splitlines()[-1])  # the summary is printed last
    env_json = json.loads((tmp_path / "env.json").read_text())
    assert env_json["versions"]["numpy"] == np.__version__
    smoke = json.loads((tmp_path / "smoke_summary.json").read_text())
    assert smoke["counts"] == {"SKIP": len(_smoke().CHECKS)}
    assert phases["env"][0] == "ok" and phases["deps"][0] == "ok"
    tests_note = phases["tests"][3]
    assert "tests/cuda/test_cuda_gpu.py" in tests_note and "tests/ops/test_gibbs.py" in tests_note


def test_budget_clamps_phases_instead_of_running_them(tmp_path):
    proc, phases = _run(tmp_path, BUDGET="25", DRY_RUN="1")  # 25 s minus the 20 s summary reserve
    assert proc.returncode == 0, proc.stdout[-2000:]
    for name in ("env", "deps"):
        status, seconds, limit, note = phases[name]
        assert status == "skipped" and note.startswith("no time left"), phases[name]
    assert (tmp_path / "SUMMARY.md").is_file()


def test_phase_limits_fit_the_budget(tmp_path):
    proc, phases = _run(tmp_path, BUDGET="40", DRY_RUN="1")
    assert proc.returncode == 0
    status, seconds, limit, _ = phases["env"]
    assert status == "ok" and 0 < limit <= 40 - 20  # clamped to what is left minus the reserve


def test_script_syntax():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    assert subprocess.run(["bash", "-n", str(ROOT / "bench" / "gpu_wheels.sh")]).returncode == 0


# ---- the smoke test's registry --------------------------------------------------------------------
def _entry_points_independently() -> set:
    """extern "C" __global__ functions of kernels/*.cu, macro suffixes expanded (a second parser,
    so that a mistake in gpu_smoke's cannot hide a kernel)."""
    names = set()
    for path in (ROOT / "kernels").glob("*.cu"):
        text = path.read_text()
        suffixes = set(re.findall(r"^FG_\w+\(\s*\w+\s*,\s*(\w+)\s*\)", text, re.M))
        for name in re.findall(r'extern\s+"C"\s+__global__\s+void\s+([\w#]+)', text):
            if name.endswith("##SUFFIX"):
                names |= {name.replace("##SUFFIX", s) for s in suffixes}
            else:
                names.add(name)
    return names


def test_every_kernel_entry_point_has_a_smoke_check():
    smoke = _smoke()
    entries = _entry_points_independently()
    assert entries and entries == smoke.kernel_entry_points()
    covered = {k for c in smoke.CHECKS for k in c.kernels}
    assert entries - covered == set(), f"kernels without a smoke check in bench/gpu_smoke.py: {sorted(entries - covered)}"
    assert covered - entries == set(), f"smoke checks name kernels that do not exist: {sorted(covered - entries)}"
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_smoke.py"), "--list"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and f"entry points covered: {len(entries)} of {len(entries)}" in out.stdout


def test_smoke_philox_reference_matches_the_project_reference():
    from reference import philox

    smoke = _smoke()
    for seed, offset, n, first in ((0, 0, 1, 0), (7, 3, 4099, 0), (2**63 + 5, 2**40 + 1, 37, 5)):
        assert np.array_equal(smoke.philox_words(n, seed, offset, first), philox.philox_words_numpy(seed, offset, n, first))


def test_smoke_references_match_the_cpu_backend():
    pytest.importorskip("fastgen._C")
    from fastgen import ops

    smoke = _smoke()
    x = np.linspace(-104, -88, 33).astype(np.float32)
    probs = ops.sample_bernoulli(x[None, :], output="probs")[0]
    assert np.array_equal(probs, [smoke.sigmoid_f32_left_tail(v) for v in x])
    assert (probs > 0).all()
    from fastgen.ops.elbo import bernoulli_log_likelihood

    ll = bernoulli_log_likelihood(np.zeros((33, 1), np.float32), x[:, None])
    assert np.array_equal(np.asarray(ll).reshape(-1), [-smoke.softplus_f32_left_tail(v) for v in x])
