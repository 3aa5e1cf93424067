"""Data-parallel RBM training on this machine: 1 process against 2 torchrun ranks (gloo).

PCD-1 epochs of a 784 x 500 BernoulliRBM on binarized MNIST (9,000 rows, float32, a step's
batch 100 rows), each run a fresh process (bench/distributed_worker.py), the kinds interleaved
run by run with no cool-down:

* ``1 process, compiled epoch``: ``BernoulliRBM.fit`` on all cores (what one machine gives);
* ``1 process x 1 thread, compiled epoch`` and ``1 process x 1 thread, per-batch path``: the
  per-batch NumPy path is what every rank runs (one all-reduce per batch needs the batch loop
  in Python), so it is the baseline scaling is measured from;
* ``fastgen data-parallel, 2 ranks x 1 thread (torchrun, gloo)``: half the step's rows per rank.

Printed: seconds per epoch, the scaling efficiency (per-batch path time / (2 x ranks' time)), the
all-reduce's share of a step and its bytes, and what a cluster link would cost per step
(``README.md``, "Scaling out"). ``python -m bench distributed [--quick] [--json]``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .common import (RESULTS_DIR, environment, format_environment, format_table, format_targets, register,
                     results_document, skip_line, summarize, target, write_json)
from .rbm import load_binary_mnist

REPO = Path(__file__).resolve().parents[1]
ROWS, QUICK_ROWS = 9000, 2000
N_HIDDEN = 500
# A step's rows (all ranks together): the annealed recipe's 100, and 1000, where a step's compute
# outweighs its all-reduce (which does not depend on the batch).
GLOBAL_BATCHES = (100, 1000)
# A stated network for the cluster estimate: 10 Gb/s Ethernet, ring all-reduce (each rank sends
# and receives 2 (N - 1) / N times the buffer).
LINK_BYTES_PER_S = 10e9 / 8
# On 2 cores the 2 ranks should together do at least this share of the ideal 2x over one rank's path.
MIN_SCALING_EFFICIENCY = 0.7

KINDS = {
    "1 process, compiled epoch": ("compiled", 1, None),
    "1 process x 1 thread, compiled epoch": ("compiled", 1, 1),
    "1 process x 1 thread, per-batch path": ("per-batch", 1, 1),
    "fastgen data-parallel, 2 ranks x 1 thread (torchrun, gloo)": ("ranks", 2, 1),
}
REFERENCE = "1 process x 1 thread, per-batch path"


def run_once(mode, ranks, threads, data, epochs, workdir, global_batch) -> dict:
    out = Path(workdir) / f"{mode}-{ranks}.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
        env["OPENBLAS_NUM_THREADS"] = str(threads)
    else:
        env.pop("OMP_NUM_THREADS", None)
    env.setdefault("FASTGEN_DIST_TIMEOUT", "120")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"] \
        if ranks > 1 else [sys.executable]
    command = [*launcher, "-m", "bench.distributed_worker", str(data), str(out), "--mode", mode,
               "--batch-size", str(global_batch // ranks), "--epochs", str(epochs), "--n-components", str(N_HIDDEN)]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return json.loads(out.read_text())


def scenario(X, source, data, workdir, global_batch, repeats, epochs) -> dict:
    """The four kinds at one global batch size, interleaved run by run; printed and returned."""
    times = {name: [] for name in KINDS}
    records = {name: [] for name in KINDS}
    for _ in range(repeats):
        for name, (mode, ranks, threads) in KINDS.items():
            record = run_once(mode, ranks, threads, data, epochs, workdir, global_batch)
            records[name].append(record)
            times[name].append(record["seconds"] / epochs)
    summary = summarize(times, floor=None, reference=REFERENCE)
    ranks_name = "fastgen data-parallel, 2 ranks x 1 thread (torchrun, gloo)"
    steps = -(-X.shape[0] // global_batch) * epochs
    share = float(np.median([r["all_reduce_seconds"] / r["seconds"] for r in records[ranks_name]]))
    reduce_ms = float(np.median([r["all_reduce_seconds"] / max(1, r["all_reduce_calls"]) for r in
                                 records[ranks_name]])) * 1e3
    bytes_per_step = records[ranks_name][0]["all_reduce_bytes"]
    efficiency = summary[ranks_name]["speedup_vs_reference"] / 2
    notes = {ranks_name: f"all-reduce {share:.0%} of the time, {reduce_ms:.2f} ms per step"}
    print("\n" + format_table(f"one epoch of {X.shape[0]} rows in steps of {global_batch} rows, {steps} steps "
                              f"(median of {repeats})", summary, floor=None, reference=REFERENCE,
                              reference_label="1 rank's path", notes=notes))
    compute_ms = summary[REFERENCE]["median_s"] / steps * 1e3
    link_ms = {n: 2 * (n - 1) / n * bytes_per_step / LINK_BYTES_PER_S * 1e3 for n in (2, 8, 32)}
    print(f"all-reduce per step: {bytes_per_step:,} bytes (the gradient of W, b and c, float32); one rank's "
          f"step of {global_batch} rows on one core: {compute_ms:.1f} ms")
    print("on a 10 Gb/s link (ring all-reduce, bandwidth only): "
          + ", ".join(f"{n} nodes {ms:.1f} ms per step" for n, ms in link_ms.items()))
    targets = [target(f"batch {global_batch}, 2 ranks on 2 cores: scaling efficiency >= {MIN_SCALING_EFFICIENCY:.0%} "
                      "of the ideal 2x over one rank's path", efficiency, ">=", MIN_SCALING_EFFICIENCY)]
    print(format_targets(targets))
    return {
        "title": f"Data-parallel PCD-1, 784 x {N_HIDDEN}, binarized MNIST {X.shape[0]} rows, float32, "
                 f"{global_batch} rows a step, 1 process vs 2 torchrun ranks (gloo)",
        "mnist_file": source, "rows": int(X.shape[0]), "global_batch": global_batch, "steps_per_epoch": steps,
        "summary": summary, "scaling_efficiency": efficiency, "all_reduce_share": share,
        "all_reduce_ms_per_step": reduce_ms, "all_reduce_bytes_per_step": bytes_per_step,
        "one_rank_step_ms": compute_ms,
        "link_estimate_ms_per_step": {"bytes_per_s": LINK_BYTES_PER_S, **{f"{n}_nodes": ms for n, ms in
                                                                           link_ms.items()}},
        "records": records, "targets": targets}


@register("distributed", "data-parallel RBM training: 1 process vs 2 torchrun ranks (gloo), scaling and all-reduce",
          results_file="distributed_cpu.json")
def main(args) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        print(skip_line("distributed", "torch is not installed (pip install 'fastgen[torch]')"))
        return 0
    quick = bool(getattr(args, "quick", False))
    repeats = args.repeats or (2 if quick else 5)
    epochs = 1
    X, source = load_binary_mnist(QUICK_ROWS if quick else ROWS)
    if X is None:
        print(skip_line("distributed", source))
        return 0
    env = environment()
    print(f"Data-parallel BernoulliRBM (PCD-1, 784 x {N_HIDDEN}, float32): each run a fresh process, kinds "
          "interleaved, no cool-down")
    print(format_environment(env))
    scenarios = {}
    with tempfile.TemporaryDirectory() as workdir:
        data = Path(workdir) / "mnist_binary.npy"
        np.save(data, X)
        for global_batch in GLOBAL_BATCHES[:1] if quick else GLOBAL_BATCHES:
            scenarios[f"data_parallel_pcd_batch{global_batch}"] = scenario(X, source, data, workdir, global_batch,
                                                                           repeats, epochs)
    document = results_document("distributed", env, {"repeats": repeats, "quick": quick, "epochs": epochs,
                                                     "cooldown_s": 0.0}, scenarios)
    if getattr(args, "json", False):
        path = write_json(document, getattr(args, "out", None) or RESULTS_DIR / "distributed_cpu.json")
        print(f"\nwrote {path}")
    return 0
