"""The CPU-parallel kernels a user calls in loops, each beside its anchor, on a quiet machine and
with one core kept busy by another process (issue 26): ``python -m bench load``.

Kernels and anchors (float32, the same work in both):

* **gibbs** -- ``fastgen.ops.gibbs``, 200 chains x 10 block-Gibbs steps of a 784 -> 500 RBM,
  against the same chain in NumPy (two products, a sigmoid and a uniform draw per half-step);
* **ais** -- ``fastgen.ops.ais_log_weights``, 100 chains over 300 temperatures of that RBM,
  against the same AIS in NumPy;
* **conv** -- ``fastgen.ops.conv_transpose2d`` on NumPy arrays, a DCGAN layer (64 x 128 x 14 x 14
  -> 64 x 64 x 28 x 28, kernel 4, stride 2, padding 1), against torch's ``conv_transpose2d`` on the
  CPU (skipped without torch);
* **sparse_linear** -- ``fastgen.ops.sparse_linear.sparse_input_linear`` on a binarized MNIST-like
  batch (128 x 784, about 13% nonzero) into 400 units, against NumPy's ``x @ W_t + b``.

Each runs plain (no cool-down) and under load (bench.load.BackgroundLoad), interleaved with its
anchor, medians of ``--repeats``. The target per kernel and situation: fastgen at least as fast
as its anchor.
"""
from __future__ import annotations

import numpy as np

from .common import (RESULTS_DIR, environment, format_table, print_target_summary, register, results_document,
                     summarize, target, write_json)
from .rbm import PLAIN, UNDER_LOAD, situation_label, timed_in_situation

N_VISIBLE, N_HIDDEN = 784, 500
GIBBS_CHAINS, GIBBS_STEPS = 200, 10
AIS_CHAINS, AIS_TEMPERATURES = 100, 300
CONV_BATCH, CONV_IN, CONV_OUT, CONV_SIZE = 64, 128, 64, 14
SPARSE_ROWS, SPARSE_OUT, SPARSE_DENSITY = 128, 400, 0.13
DEFAULT_REPEATS = 7
QUICK_REPEATS = 2


def _rbm(rng):
    W = rng.normal(0, 0.05, (N_HIDDEN, N_VISIBLE)).astype(np.float32)
    b = rng.normal(-1, 0.5, N_VISIBLE).astype(np.float32)
    c = rng.normal(0, 0.5, N_HIDDEN).astype(np.float32)
    return W, b, c


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def gibbs_pair(rng, quick):
    from fastgen.ops import gibbs

    W, b, c = _rbm(rng)
    chains, steps = (20, 2) if quick else (GIBBS_CHAINS, GIBBS_STEPS)
    v0 = (rng.random((chains, N_VISIBLE)) < 0.15).astype(np.float32)
    numpy_rng = np.random.default_rng(1)

    def anchor():
        v = v0
        for _ in range(steps):
            h = (numpy_rng.random((chains, N_HIDDEN), dtype=np.float32) < _sigmoid(v @ W.T + c)).astype(np.float32)
            v = (numpy_rng.random((chains, N_VISIBLE), dtype=np.float32) < _sigmoid(h @ W + b)).astype(np.float32)
        return v

    return f"gibbs: {chains} chains x {steps} steps, {N_VISIBLE} -> {N_HIDDEN}", \
        (lambda: gibbs(v0, W, b, c, steps)), "NumPy Gibbs chain", anchor


def ais_pair(rng, quick):
    from fastgen.ops import ais_log_weights

    W, b, c = _rbm(rng)
    chains, temperatures = (10, 20) if quick else (AIS_CHAINS, AIS_TEMPERATURES)
    base = np.zeros(N_VISIBLE, np.float32)
    betas = np.linspace(0.0, 1.0, temperatures).astype(np.float32)
    numpy_rng = np.random.default_rng(2)

    def free_energy_terms(v, beta):
        # log of the unnormalised marginal of v at inverse temperature beta (base model: zero biases)
        return beta * (v @ b) + np.logaddexp(0.0, beta * (v @ W.T + c)).sum(axis=1) + (1 - beta) * (v @ base)

    def anchor():
        v = (numpy_rng.random((chains, N_VISIBLE), dtype=np.float32) < _sigmoid(base)).astype(np.float32)
        log_w = np.zeros(chains, np.float64)
        for previous, beta in zip(betas[:-1], betas[1:]):
            log_w += free_energy_terms(v, beta) - free_energy_terms(v, previous)
            h = (numpy_rng.random((chains, N_HIDDEN), dtype=np.float32)
                 < _sigmoid(beta * (v @ W.T + c))).astype(np.float32)
            v = (numpy_rng.random((chains, N_VISIBLE), dtype=np.float32)
                 < _sigmoid(beta * (h @ W + b) + (1 - beta) * base)).astype(np.float32)
        return log_w

    return f"ais: {chains} chains x {temperatures} temperatures, {N_VISIBLE} -> {N_HIDDEN}", \
        (lambda: ais_log_weights(W, b, c, base, betas, n_chains=chains)), "NumPy AIS", anchor


def conv_pair(rng, quick):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    from fastgen.ops.conv import conv_transpose2d

    batch = 4 if quick else CONV_BATCH
    x = rng.standard_normal((batch, CONV_IN, CONV_SIZE, CONV_SIZE)).astype(np.float32)
    w = (rng.standard_normal((CONV_IN, CONV_OUT, 4, 4)) * 0.05).astype(np.float32)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)

    def anchor():
        with torch.no_grad():
            return F.conv_transpose2d(xt, wt, stride=2, padding=1)

    return (f"conv: transposed 4x4/2, {batch}x{CONV_IN}x{CONV_SIZE}x{CONV_SIZE} -> "
            f"{batch}x{CONV_OUT}x{2 * CONV_SIZE}x{2 * CONV_SIZE}"), \
        (lambda: conv_transpose2d(x, w, stride=2, padding=1)), "torch F.conv_transpose2d", anchor


def sparse_linear_pair(rng, quick):
    from fastgen.ops.sparse_linear import sparse_input_linear

    x = (rng.random((SPARSE_ROWS, N_VISIBLE)) < SPARSE_DENSITY).astype(np.float32)
    w_t = (rng.standard_normal((N_VISIBLE, SPARSE_OUT)) * 0.05).astype(np.float32)
    bias = np.zeros(SPARSE_OUT, np.float32)
    calls = 2 if quick else 20    # one call is tens of microseconds: time a few back to back

    def repeat(fn):
        def run():
            for _ in range(calls):
                fn()
        return run

    return (f"sparse_linear: {calls} calls, {SPARSE_ROWS}x{N_VISIBLE} at {SPARSE_DENSITY:.0%} nonzero -> "
            f"{SPARSE_OUT}"), \
        repeat(lambda: sparse_input_linear(x, w_t, bias)), "NumPy x @ W_t + b", repeat(lambda: x @ w_t + bias)


PAIRS = {"gibbs": gibbs_pair, "ais": ais_pair, "conv": conv_pair, "sparse_linear": sparse_linear_pair}


def run_kernel(name, repeats, quick, cooldown=0.0, load_deadline_s=None) -> dict[str, dict] | None:
    """The kernel and its anchor quiet, then under load: one scenario per situation, keyed
    ``<kernel>`` and ``<kernel>_under_load``; None when the anchor is missing."""
    made = PAIRS[name](np.random.default_rng(0), quick)
    if made is None:
        print(f"\n{name}: skipped (needs PyTorch for its anchor)")
        return None
    title, ours, anchor_name, anchor = made
    ours_name = f"fastgen {name}"
    fns = {ours_name: ours, anchor_name: anchor}
    scenarios = {}
    for situation in (PLAIN, UNDER_LOAD):
        times, load, record, lines = timed_in_situation(fns, repeats, cooldown=cooldown, situation=situation,
                                                        load_deadline_s=load_deadline_s)
        summary = summarize(times, floor=None, reference=anchor_name)
        full_title = f"{title}, {situation_label(situation, cooldown)}"
        print()
        print(format_table(f"{full_title} (median of {repeats})", summary, floor=None, reference=anchor_name,
                           reference_label="its anchor"))
        for line in lines:
            print("  " + line)
        key = name if situation == PLAIN else f"{name}_{situation}"
        scenarios[key] = {"title": full_title, "situation": record, "reference": anchor_name, "implementations": summary,
                          "background_load": load, "targets": []}
    quiet = scenarios[name]["implementations"][ours_name]["speedup_vs_reference"]
    loaded = scenarios[f"{name}_{UNDER_LOAD}"]["implementations"][ours_name]["speedup_vs_reference"]
    for key, speedup, where in ((name, quiet, "quiet"), (f"{name}_{UNDER_LOAD}", loaded, "under load")):
        scenarios[key]["targets"].append(
            target(f"{name}, {where}: fastgen at least as fast as its anchor", speedup, ">=", 1.0, "x"))
    print(f"  speed-up over its anchor: {quiet:.2f}x quiet, {loaded:.2f}x under load "
          f"({loaded / quiet:.0%} of the quiet figure kept)")
    return scenarios


def run_suite(args) -> dict:
    quick = bool(getattr(args, "quick", False))
    repeats = getattr(args, "repeats", None) or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    cooldown = getattr(args, "cooldown", None) or 0.0
    names = getattr(args, "kernels", None) or list(PAIRS)
    env = environment()
    scenarios = {}
    for name in names:
        result = run_kernel(name, repeats, quick, cooldown, getattr(args, "load_deadline", None))
        if result is not None:
            scenarios.update(result)
    print_target_summary(scenarios)
    return results_document("load", env, {"repeats": repeats, "quick": quick, "cooldown_s": cooldown}, scenarios)


def add_arguments(parser) -> None:
    parser.add_argument("--kernels", nargs="+", choices=list(PAIRS), default=None,
                        help="which kernels (default: all)")
    parser.add_argument("--load-deadline", type=float, default=None, metavar="S",
                        help="the longest the load process may live, per situation, even if the bench is killed")


@register("load", "the CPU kernels called in loops (gibbs, ais, conv, sparse_linear) beside their anchors, "
                  "quiet and with one core busy", add_arguments=add_arguments, results_file="load.json")
def main(args) -> int:
    document = run_suite(args)
    if getattr(args, "json", False):
        path = write_json(document, getattr(args, "out", None) or RESULTS_DIR / "load.json")
        print(f"\nwrote {path}")
    return 0
