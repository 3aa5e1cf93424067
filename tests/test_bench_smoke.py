"""Smoke test of the benchmark harness (bench/): its functions and ``python -m bench rbm --quick``
produce the tables and the JSON document, on tiny random binary data (never MNIST). No timing is
asserted; every run uses one repeat and no cool-down, so the whole file takes a few seconds."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if not (REPO_ROOT / "bench" / "__init__.py").is_file():  # pragma: no cover - installed without a checkout
    pytest.skip("the bench/ package lives in the source checkout only", allow_module_level=True)
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import bench  # noqa: E402
from bench import common, rbm  # noqa: E402
from bench.__main__ import main as bench_main  # noqa: E402

IMPLEMENTATIONS = {rbm.FASTGEN, rbm.TRAINER, rbm.SKLEARN, rbm.FLOOR, rbm.DENSE_LOOP}
ROW_KEYS = {"median_s", "repeats_s", "min_s", "max_s", "x_floor", "speedup_vs_reference"}


def _binary(rows, cols, dtype=np.float32, seed=0):
    return (np.random.default_rng(seed).random((rows, cols)) < 0.3).astype(dtype)


def _check_timed(result, repeats, dtype):
    assert result["dtype"] == dtype
    sliced = rbm.uses_sliced_loop(result["params"])
    assert set(result["implementations"]) == IMPLEMENTATIONS | ({rbm.FIXED_TEAM} if sliced else set())
    for row in result["implementations"].values():
        assert ROW_KEYS <= set(row)
        assert len(row["repeats_s"]) == repeats
        assert all(t > 0 for t in row["repeats_s"])
        assert row["min_s"] <= row["median_s"] <= row["max_s"]
    assert result["implementations"][rbm.FLOOR]["x_floor"] == pytest.approx(1.0)
    assert result["implementations"][rbm.SKLEARN]["speedup_vs_reference"] == pytest.approx(1.0)
    assert result["floor_gflop"] > 0 and "background_load" in result
    _check_targets(result["targets"])


def _check_targets(targets):
    assert targets
    for t in targets:
        assert t["status"] in ("MET", "MISSED") and t["met"] == (t["status"] == "MET")
        assert {"target", "measured", "op", "threshold"} <= set(t)


def test_registry_lists_rbm_suite():
    suites = bench.load_suites()
    assert "rbm" in suites and suites["rbm"].results_file == "cpu.json"
    assert callable(suites["rbm"].run)


def test_gemm_floor_does_the_five_products():
    X = _binary(25, 6, np.float64)
    run = rbm.gemm_floor(X, n_hidden=4, batch_size=10)
    run()  # 3 batches, the last of 5 rows
    assert rbm.floor_flops(25, 6, 4, 10) == 25 * 2 * 2 * 6 * 4 + 3 * 3 * 2 * 10 * 6 * 4


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pcd_epoch_table_and_result(dtype, capsys):
    X = _binary(40, 12, dtype)
    result = rbm.pcd_epoch(X, 1, n_hidden=8, batch_size=10, data_note="tiny random", cooldown=0)
    out = capsys.readouterr().out
    assert "A. PCD-1 epoch, tiny random 40x12 -> 8 hidden" in out
    assert "x floor" in out and "speed-up vs scikit-learn" in out
    for name in IMPLEMENTATIONS:
        assert name in out
    assert ("MET" in out) or ("MISSED" in out)
    _check_timed(result, 1, dtype)
    assert len(result["targets"]) == (2 if dtype == "float32" else 1)   # float32: issue 26's floor and speed-up


def test_digits_defaults_and_quality_on_tiny_data(capsys):
    X = _binary(50, 10, np.float64, seed=1)
    timed = rbm.digits_defaults(X, 1, params=dict(n_components=6, n_iter=2), data_note="tiny random",
                                cooldown=0)
    quality = rbm.quality(X[:40], X[40:], params=dict(n_components=6, n_iter=2), data_note="tiny random")
    out = capsys.readouterr().out
    assert "B. scikit-learn defaults, tiny random 50x10" in out and "C. held-out exact pseudo-likelihood" in out
    _check_timed(timed, 1, "float64")
    assert timed["params"]["batch_size"] == 10 and timed["params"]["n_iter"] == 2
    assert rbm.FIXED_TEAM in timed["implementations"]  # scikit-learn's batch of 10 runs on the sliced loop
    assert set(quality["pseudo_likelihood"]) == {"fastgen", "scikit-learn"}
    assert all(np.isfinite(v) and v <= 0 for v in quality["pseudo_likelihood"].values())
    _check_targets(quality["targets"])


def test_cli_quick_json_on_tiny_fake_mnist(tmp_path, monkeypatch, capsys):
    # a tiny random binary "MNIST" file in a data folder of our own: exercises loading and scenario A
    images = (np.random.default_rng(2).random((200, 28, 28)) < 0.2).astype(np.uint8) * 255
    np.savez(tmp_path / rbm.MNIST_FILE, data=images)
    monkeypatch.setenv("FASTGEN_DATA_DIR", str(tmp_path))
    out_file = tmp_path / "out" / "cpu.json"
    code = bench_main(["rbm", "--quick", "--json", "--out", str(out_file), "--repeats", "1", "--cooldown", "0",
                       "--dtype", "both", "--only", "A", "--situations", "plain"])
    assert code == 0
    out = capsys.readouterr().out
    assert "QUICK mode" in out and "(file has only 200 rows)" in out and f"wrote {out_file}" in out
    assert "Targets:" in out

    doc = json.loads(out_file.read_text())
    assert doc["schema"] == common.JSON_SCHEMA and doc["suite"] == "rbm"
    env = doc["environment"]
    for key in ("cpu_model", "cores", "numpy", "scipy", "scikit-learn", "fastgen", "date", "commit", "threadpools"):
        assert key in env
    assert doc["settings"]["quick"] is True and doc["settings"]["repeats"] == 1
    assert set(doc["scenarios"]) == {"A_pcd1_mnist_float32", "A_pcd1_mnist_float64"}
    for name, dtype in (("A_pcd1_mnist_float32", "float32"), ("A_pcd1_mnist_float64", "float64")):
        scenario = doc["scenarios"][name]
        assert scenario["shape"] == [200, 784]
        _check_timed(scenario, 1, dtype)


def test_cli_skips_clearly_without_mnist(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FASTGEN_DATA_DIR", str(tmp_path / "absent"))
    out_file = tmp_path / "cpu.json"
    assert bench_main(["rbm", "--quick", "--json", "--out", str(out_file), "--repeats", "1", "--cooldown", "0",
                       "--only", "A"]) == 0
    out = capsys.readouterr().out
    assert "[skip] A. PCD-1 epoch on binarized MNIST" in out and "not found" in out
    doc = json.loads(out_file.read_text())
    assert doc["scenarios"] == {} and doc["skipped"]


def test_gibbs_scenario_reports_floor_ratio_and_target(capsys):
    X = (np.random.default_rng(3).random((60, 784)) < 0.2).astype(np.float32)
    result = rbm.gibbs_chains(X, 1, n_hidden=8, chains=7, steps=2, cooldown=0)
    out = capsys.readouterr().out
    assert "D. Gibbs sampling, 7 chains x 2 steps" in out
    assert set(result["implementations"]) == {rbm.GIBBS, rbm.GIBBS_DENSE, rbm.GIBBS_FLOOR}
    assert result["implementations"][rbm.GIBBS_FLOOR]["x_floor"] == 1.0
    _check_targets(result["targets"])


def test_binary_crossover_measures_both_kernels():
    from bench import binary

    points, cross = binary.crossover(3, 20, 9, np.float32, 1, np.random.default_rng(0))
    assert [p["density"] for p in points] == list(binary.DENSITIES)
    for p in points:
        assert p["binary_s"] > 0 and p["blas_s"] > 0 and p["blas_over_binary"] == p["blas_s"] / p["binary_s"]
    assert cross is None or cross in binary.DENSITIES


def test_quality_suite_on_tiny_fake_mnist(tmp_path, monkeypatch, capsys):
    """``python -m bench quality --quick``: every trainer gets a [RAISE, AIS] sandwich, the width
    and time-to-likelihood scenarios run and draw their plot, the AIS timing table has its floor,
    and the JSON document holds them all."""
    pytest.importorskip("torch")
    images = (np.random.default_rng(3).random((150, 28, 28)) < 0.2).astype(np.uint8) * 255
    np.savez(tmp_path / rbm.MNIST_FILE, data=images)
    monkeypatch.setenv("FASTGEN_DATA_DIR", str(tmp_path))
    from bench import quality

    monkeypatch.setattr(quality, "QUICK_AIS_BETAS", 20)
    monkeypatch.setattr(quality, "QUICK_BUDGET", quality.Budget(ais_chains=20, raise_chains=2, n_betas=20))
    out_file = tmp_path / "quality.json"
    assert bench_main(["quality", "--quick", "--json", "--out", str(out_file), "--repeats", "1",
                       "--cooldown", "0"]) == 0
    out = capsys.readouterr().out
    for title in ("L. [RAISE, AIS]", "S. Sandwich width", "C. Time to likelihood", "T. AIS", "Targets:"):
        assert title in out
    doc = json.loads(out_file.read_text())
    assert doc["suite"] == "quality"
    bounds = doc["scenarios"]["L_log_likelihood_bounds_mnist"]
    assert set(bounds["runs"]) == set(quality.trainers(2, 6))
    for runs in bounds["runs"].values():
        for run in runs:
            assert np.isfinite(run["raise"]) and np.isfinite(run["ais"]) and run["ais_all_test_rows"] < 0
            assert run["width"] == pytest.approx(run["ais"] - run["raise"])
            assert run["fit_s"] > 0 and run["rows"] == 3      # every 10th of the 30 test rows
    _check_targets(bounds["targets"])
    widths = doc["scenarios"]["S_sandwich_width"]["points"]
    assert [p["budget"]["n_betas"] for p in widths] == list(quality.QUICK_WIDTH_BETAS)
    curve = doc["scenarios"]["C_time_to_likelihood"]
    assert set(curve["curves"]) == {quality.RECIPE, quality.SCIKIT_LEARN, quality.PYTORCH}
    assert [p["epochs"] for p in curve["curves"][quality.RECIPE]] == list(quality.QUICK_CURVE_EPOCHS)
    assert curve["goal"]["ais"] == max(p["ais"] for p in curve["curves"][quality.SCIKIT_LEARN])
    _check_targets(curve["targets"])
    if curve["plot"] is not None:
        assert (tmp_path / quality.PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    timing = doc["scenarios"]["T_ais_time_784x500_float32"]
    assert timing["summary"]["GEMM floor (2 dense products / temperature)"]["x_floor"] == pytest.approx(1.0)
    _check_targets(timing["targets"])


def test_vae_suite_quick(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    from bench import vae

    monkeypatch.setattr(vae, "LATENTS", (8,))
    monkeypatch.setattr(vae, "QUICK_BATCH", 16)
    monkeypatch.setattr(vae, "CALLS_PER_TIMING", 1)
    out_file = tmp_path / "vae.json"
    assert bench_main(["vae", "--quick", "--json", "--out", str(out_file), "--repeats", "1", "--cooldown", "0"]) == 0
    out = capsys.readouterr().out
    assert "R. reparameterisation + KL" in out and "Targets:" in out
    doc = json.loads(out_file.read_text())
    scenario = doc["scenarios"]["R_reparam_16x8_float32"]
    assert set(scenario["summary"]) == {"torch eager", "torch.compile (inductor)", "fastgen fused op"}
    _check_targets(scenario["targets"])
    conv = doc["scenarios"][f"C_conv_transpose_dcgan_batch{vae.QUICK_DCGAN_BATCH}_float32"]
    assert set(conv["summary"]) == {"F.conv_transpose2d + activation", "fastgen fused op"}
    _check_targets(conv["targets"])


def test_vae_epoch_scenario_quick(shared_data_dir, capsys):
    pytest.importorskip("torch")
    from bench import vae_epoch

    result = vae_epoch.vae_epoch_scenario(shared_data_dir, True, 1, 0.0)
    out = capsys.readouterr().out
    assert "E. one VAE epoch" in out
    assert set(result["summary"]) == {"torch eager (examples)", "torch eager (BCE with logits)", "fastgen VAE",
                                      vae_epoch.FUSED_ADAM_ANCHOR, "GEMMs only (floor)"}
    assert result["samples"] == vae_epoch.QUICK_SAMPLES
    _check_targets(result["targets"])


def test_smiles_suite_quick(tmp_path, capsys):
    pytest.importorskip("torch")
    from bench import smiles

    out_file = tmp_path / "smiles.json"
    assert bench_main(["smiles", "--quick", "--json", "--out", str(out_file), "--repeats", "1", "--cooldown", "0"]) == 0
    out = capsys.readouterr().out
    assert "S. next-token draw" in out and "Targets:" in out
    scenario = json.loads(out_file.read_text())["scenarios"][f"S_sample_categorical_{smiles.QUICK_ROWS}x27_float32"]
    assert set(scenario["summary"]) == {smiles.REFERENCE, "torch eager: Gumbel-max", "torch.compile: Gumbel-max",
                                        "fastgen sample_categorical"}
    _check_targets(scenario["targets"])


def test_gan_speed_and_coverage_scenarios_on_tiny_settings(tmp_path, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    from bench import gan

    real = torch.rand(4, 1, 28, 28) * 2 - 1
    result = gan.speed_scenario("tiny", "S. tiny DCGAN step", real, 28, 1, 4, 2, 1, 1, 0.0)
    assert set(result["summary"]) == {"PyTorch eager DCGAN", gan.ANCHOR_CL, "fastgen DCGAN"}
    _check_targets(result["targets"])
    monkeypatch.setitem(gan.TOY, "quick_steps", 3)
    monkeypatch.setitem(gan.TOY, "n_eval", 50)
    monkeypatch.setitem(gan.TOY, "train_size", 256)
    monkeypatch.setitem(gan.TOY, "batch", 16)
    coverage = gan.coverage_scenario(True, 0, tmp_path)
    assert set(coverage["results"]) == {"ring8", "grid25"}
    for per_dataset in coverage["results"].values():
        assert set(per_dataset["methods"]) == set(gan.METHODS)
        assert (tmp_path / Path(per_dataset["png"]).name).is_file()
    assert "mode coverage" in capsys.readouterr().out


def test_vae_epoch_scenario_skips_without_the_data(tmp_path, capsys):
    pytest.importorskip("torch")
    from bench import vae_epoch

    result = vae_epoch.vae_epoch_scenario(tmp_path, True, 1, 0.0)
    assert result["targets"] == [] and "[skip] E. VAE epoch" in capsys.readouterr().out


def test_load_warning_names_hypervisor_steal_as_well_as_other_processes():
    from bench.common import load_warning

    assert load_warning({"foreign_cpu_fraction": 0.02, "steal_fraction": 0.03}) is None
    steal = load_warning({"foreign_cpu_fraction": 0.01, "steal_fraction": 0.3})
    assert steal is not None and "hypervisor took 30%" in steal and "other processes" not in steal
    foreign = load_warning({"foreign_cpu_fraction": 0.2, "steal_fraction": None})
    assert foreign is not None and "other processes used 20%" in foreign


def test_numba_suite_quick(tmp_path, capsys):
    pytest.importorskip("numba")
    out_file = tmp_path / "numba.json"
    assert bench_main(["numba", "--quick", "--json", "--out", str(out_file), "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "uniform draws in an njit loop" in out and "Potts q=3" in out
    scenarios = json.loads(out_file.read_text())["scenarios"]
    assert set(scenarios) == {"per_call_uniform", "per_call_normal", "potts"}
    potts = scenarios["potts"]["summary"]
    assert potts["fastgen.numba (stream)"]["same_on_1_thread"] and potts["fastgen.numba (stream)"]["same_when_run_twice"]
    assert all(row["ns_per_draw"] > 0 for row in scenarios["per_call_uniform"]["summary"].values())
    for scenario in scenarios.values():
        _check_targets(scenario["targets"])


@pytest.mark.slow
def test_distributed_suite_quick(tmp_path, capsys):
    pytest.importorskip("torch")
    from bench.rbm import load_binary_mnist

    if load_binary_mnist(10)[0] is None:
        pytest.skip("the MNIST file of ../shared/data is missing")
    out_file = tmp_path / "distributed.json"
    assert bench_main(["distributed", "--quick", "--json", "--out", str(out_file), "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "fastgen data-parallel, 2 ranks x 1 thread (torchrun, gloo)" in out and "all-reduce per step: 1,573,136 bytes" in out
    scenario = json.loads(out_file.read_text())["scenarios"]["data_parallel_pcd_batch100"]
    assert scenario["all_reduce_ms_per_step"] > 0 and 0 < scenario["all_reduce_share"] < 1
    assert scenario["records"]["fastgen data-parallel, 2 ranks x 1 thread (torchrun, gloo)"][0]["all_reduce_calls"] >= scenario["steps_per_epoch"]
    _check_targets(scenario["targets"])
