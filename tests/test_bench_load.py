"""The "machine that is not quiet" situations of the benchmarks (bench/load.py, issue 26): the
background load process starts, is really busy, and always stops -- when the bench stops it, when
the timed code raises, at its own deadline, and when its parent is killed -- and the after-NumPy
work runs right before every timed call of every implementation, outside the timed interval.
No timing of fastgen is asserted; the whole file takes a few seconds."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if not (REPO_ROOT / "bench" / "load.py").is_file():  # pragma: no cover - installed without a checkout
    pytest.skip("the bench/ package lives in the source checkout only", allow_module_level=True)
if not Path("/proc/self/stat").is_file():  # pragma: no cover
    pytest.skip("the load process is measured through Linux's /proc", allow_module_level=True)
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import common, rbm  # noqa: E402
from bench.__main__ import main as bench_main  # noqa: E402
from bench.load import BackgroundLoad, NumpyBlasWork, process_cpu_seconds, process_running  # noqa: E402


def _wait_gone(pid, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not process_running(pid):
            return True
        time.sleep(0.05)
    return not process_running(pid)


# ---- the load process ----------------------------------------------------------------------------
def test_load_starts_is_busy_and_stops():
    with BackgroundLoad(deadline_s=30, verify_s=0.2) as load:
        pid = load.pid
        assert load.running() and process_running(pid)
        # really busy: it burns CPU time while we sleep (a whole core on a quiet machine; the
        # machine is shared, so only a clear share of one is asked for)
        assert load.verified_busy_fraction is not None and load.verified_busy_fraction > 0.1
        assert load.measure(0.3) > 0.1
        # a pure-Python loop: no BLAS pool of its own
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "openblas" not in maps.lower() and "numpy" not in maps.lower()
    assert not load.running() and _wait_gone(pid, 2.0)
    record = load.as_dict()
    assert record["alive_until_stopped"] is True and record["pid"] == pid
    assert record["busy_fraction_of_a_core_during_timing"] is not None and record["ran_s"] > 0
    assert f"pid {pid}" in load.describe()


def test_load_stops_when_the_timed_code_raises():
    with pytest.raises(ZeroDivisionError):
        with BackgroundLoad(deadline_s=30, verify_s=0.05) as load:
            pid = load.pid
            1 / 0
    assert _wait_gone(pid, 2.0)


def test_load_exits_by_itself_at_its_deadline():
    load = BackgroundLoad(deadline_s=0.8, verify_s=0.05, watch_parent=False).start()
    try:
        assert load.running()
        time.sleep(1.0)
        deadline = time.monotonic() + 3.0
        while load.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert load.proc.poll() == 0          # exited by itself, normally, not killed
    finally:
        load.stop()
    assert load.alive_at_stop is False and "WARNING" in load.describe()


def _orphan_load(deadline_s, watch_parent):
    """A parent process that starts a load, prints its pid and kills itself with SIGKILL (no
    clean-up runs): returns the orphaned load's pid once the parent is gone."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from bench.load import BackgroundLoad
        load = BackgroundLoad(deadline_s={deadline_s!r}, verify_s=0.05, watch_parent={watch_parent!r}).start()
        print(load.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    parent.wait(timeout=10)
    parent.stdout.close()
    assert parent.returncode == -signal.SIGKILL
    return pid


def test_load_outlives_no_killed_parent_past_its_deadline():
    # the parent watch off: only the deadline bounds it
    start = time.monotonic()
    pid = _orphan_load(1.5, False)
    try:
        if time.monotonic() - start < 1.0:
            assert process_running(pid)       # still spinning right after its parent died...
        assert _wait_gone(pid, 1.5 + 3.0)     # ...and gone after its deadline
    finally:
        if process_running(pid):              # pragma: no cover - only if the test fails
            os.kill(pid, signal.SIGKILL)


def test_load_exits_soon_after_its_parent_is_killed():
    pid = _orphan_load(60.0, True)
    try:
        assert _wait_gone(pid, 3.0)           # long before its 60 s deadline
    finally:
        if process_running(pid):              # pragma: no cover - only if the test fails
            os.kill(pid, signal.SIGKILL)


def test_process_helpers_on_a_finished_process():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not process_running(proc.pid) and process_cpu_seconds(proc.pid) is None
    assert process_cpu_seconds(os.getpid()) > 0


# ---- after NumPy -------------------------------------------------------------------------------
def test_before_each_runs_right_before_every_timed_call_and_is_not_timed():
    log = []

    def hook():
        log.append("numpy")
        time.sleep(0.03)

    fns = {"a": lambda: log.append("a"), "b": lambda: log.append("b")}
    times = common.time_interleaved(fns, 3, warmup=1, cooldown=0, before_each=hook)
    assert log == ["a", "b"] + ["numpy", "a", "numpy", "b"] * 3
    assert all(t < 0.03 for ts in times.values() for t in ts)


def test_numpy_work_does_its_products():
    work = NumpyBlasWork(size=64, products=3)
    work()
    work()
    assert work.calls == 2
    expected = work._a @ work._b
    np.testing.assert_allclose(work._out, expected)
    assert work.describe()["numpy_products"] == 3


# ---- the rbm suite's situations ----------------------------------------------------------------
def _binary(rows, cols, dtype=np.float32, seed=0):
    return (np.random.default_rng(seed).random((rows, cols)) < 0.3).astype(dtype)


def test_pcd_epoch_after_numpy_runs_the_work_before_every_timed_call(capsys):
    X = _binary(40, 12)
    result = rbm.pcd_epoch(X, 2, n_hidden=8, batch_size=10, data_note="tiny random", situation=rbm.AFTER_NUMPY)
    out = capsys.readouterr().out
    assert "float32, after NumPy (median of 2)" in out and "NumPy 384^3 float64 matmuls" in out
    assert set(result["implementations"]) == set(rbm.SITUATION_IMPLEMENTATIONS)
    assert result["situation"]["name"] == "after NumPy"
    assert result["situation"]["numpy_work_calls"] == 2 * len(rbm.SITUATION_IMPLEMENTATIONS)
    (t,) = result["targets"]
    assert t["threshold"] == rbm.A32_AFTER_NUMPY_MIN_SPEEDUP and t["status"] in ("MET", "MISSED")


def test_digits_under_load_records_the_load_and_stops_it(capsys):
    X = _binary(50, 10, np.float64, seed=1)
    result = rbm.digits_defaults(X, 1, params=dict(n_components=6, n_iter=2), data_note="tiny random",
                                 situation=rbm.UNDER_LOAD)
    out = capsys.readouterr().out
    assert "under load (one core busy)" in out and "load: pid" in out
    record = result["situation"]
    assert record["name"] == "under load" and record["alive_until_stopped"] is True
    assert record["verified_busy_fraction_of_a_core"] > 0
    assert not process_running(record["pid"])
    assert "foreign_cpu_fraction_with_load" in result["background_load"] or \
        result["background_load"]["foreign_cpu_fraction"] is None
    (t,) = result["targets"]
    assert t["threshold"] == rbm.B_UNDER_LOAD_MIN_SPEEDUP


def test_gibbs_under_load(capsys):
    X = (np.random.default_rng(3).random((30, 784)) < 0.2).astype(np.float32)
    result = rbm.gibbs_chains(X, 1, n_hidden=8, chains=5, steps=2, situation=rbm.UNDER_LOAD)
    assert set(result["implementations"]) == {rbm.GIBBS, rbm.GIBBS_FLOOR}
    assert not process_running(result["situation"]["pid"])
    assert result["targets"][0]["threshold"] == rbm.GIBBS_UNDER_LOAD_MAX_X_FLOOR


def test_parse_situations():
    import argparse

    assert rbm.parse_situations("under-load,plain") == (rbm.PLAIN, rbm.UNDER_LOAD)
    assert rbm.parse_situations("all") == rbm.SITUATIONS
    with pytest.raises(argparse.ArgumentTypeError):
        rbm.parse_situations("idle")


def test_cli_default_has_no_cooldown_and_writes_each_situation_it_is_asked_for(tmp_path, monkeypatch, capsys):
    images = (np.random.default_rng(2).random((60, 28, 28)) < 0.2).astype(np.uint8) * 255
    np.savez(tmp_path / rbm.MNIST_FILE, data=images)
    monkeypatch.setenv("FASTGEN_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(rbm, "MNIST_QUICK_ROWS", 60)
    out_file = tmp_path / "cpu.json"
    assert bench_main(["rbm", "--quick", "--json", "--out", str(out_file), "--repeats", "1", "--only", "A",
                       "--dtype", "float32", "--situations", "under-load,after_numpy"]) == 0
    out = capsys.readouterr().out
    assert "no cool-down (back to back)" in out
    doc = json.loads(out_file.read_text())
    assert doc["settings"]["cooldown_s"] == 0
    assert doc["settings"]["situations"] == [rbm.AFTER_NUMPY, rbm.UNDER_LOAD]
    assert set(doc["scenarios"]) == {"A_pcd1_mnist_float32_after_numpy", "A_pcd1_mnist_float32_under_load"}
    for key, scenario in doc["scenarios"].items():
        assert scenario["situation"]["cooldown_s"] == 0
        assert scenario["targets"] and all(t["status"] in ("MET", "MISSED") for t in scenario["targets"])
    assert [t["threshold"] for t in doc["scenarios"]["A_pcd1_mnist_float32_under_load"]["targets"]] == \
        [rbm.A32_UNDER_LOAD_MIN_SPEEDUP]
    assert not process_running(doc["scenarios"]["A_pcd1_mnist_float32_under_load"]["situation"]["pid"])


@pytest.mark.parametrize("kernel", ["gibbs", "ais", "sparse_linear"])
def test_kernels_under_load_time_each_kernel_beside_its_anchor_quiet_and_under_load(kernel, capsys):
    from bench import kernels_under_load as kul

    scenarios = kul.run_kernel(kernel, 1, quick=True, load_deadline_s=60)
    out = capsys.readouterr().out
    assert "no cool-down" in out and "under load (one core busy)" in out and "speed-up over its anchor" in out
    assert set(scenarios) == {kernel, f"{kernel}_under_load"}
    for key, scenario in scenarios.items():
        assert ("load" in scenario["situation"]["name"]) == (key != kernel)
        assert set(scenario["implementations"]) == {f"fastgen {kernel}", scenario["reference"]}
        assert scenario["implementations"][scenario["reference"]]["speedup_vs_reference"] == pytest.approx(1.0)
        assert [t["op"] for t in scenario["targets"]] == [">="]
