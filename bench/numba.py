"""fastgen's stream inside numba code against numba's own ``np.random``, in one process.

* Per call: a compiled loop summing ``fastgen.numba.uniform`` / ``normal`` against the same loop
  on ``np.random.random()`` / ``np.random.standard_normal()`` (numba's Mersenne Twister, inlined):
  nanoseconds per draw.
* The Potts sampler of examples/potts_numba.py, the same checkerboard sweep on either stream,
  on all of numba's threads: seconds per sweep, and whether the lattice is the same on 1 thread
  as on all of them, and the same when run twice.

``python -m bench numba [--quick] [--json]`` (writes bench/results/numba_cpu.json)
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .common import (RESULTS_DIR, environment, format_environment, format_table, format_targets, register,
                     results_document, summarize, target, time_interleaved, write_json)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "potts_numba.py"


def _potts():
    spec = importlib.util.spec_from_file_location("potts_numba", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def per_call_loops():
    """{kind: (fastgen loop, numba np.random loop)}, each summing n draws in one njit loop."""
    import numba

    import fastgen.numba as fn

    def summing_loop(draw):
        @numba.njit
        def loop(n):
            total = 0.0
            for i in range(n):
                total += draw(i)
            return total
        return loop

    draws = {"uniform": (lambda i: fn.uniform(1, 2, i), lambda i: np.random.random()),
             "normal": (lambda i: fn.normal(1, 2, i), lambda i: np.random.standard_normal())}
    return {kind: tuple(summing_loop(numba.njit(d)) for d in pair) for kind, pair in draws.items()}


def potts_runs(potts, size, n_states, beta, n_sweeps, seed, sweep):
    import numba

    threads = numba.get_num_threads()
    first = potts.run(size, n_states, beta, n_sweeps, seed, sweep=sweep)
    again = potts.run(size, n_states, beta, n_sweeps, seed, sweep=sweep)
    numba.set_num_threads(1)
    try:
        one_thread = potts.run(size, n_states, beta, n_sweeps, seed, sweep=sweep)
    finally:
        numba.set_num_threads(threads)
    return {"same_when_run_twice": bool(np.array_equal(first, again)),
            "same_on_1_thread": bool(np.array_equal(first, one_thread))}


@register("numba", "fastgen.numba's stream vs numba's np.random: per-call cost and a Potts sampler",
          results_file="numba_cpu.json")
def main(args) -> int:
    try:
        import numba
    except ImportError:
        print("skipped: numba is not installed (pip install 'fastgen[numba]')")
        return 0
    quick = bool(getattr(args, "quick", False))
    repeats = args.repeats or (3 if quick else 7)
    cooldown = args.cooldown if args.cooldown is not None else 0.0
    env = environment()
    env["numba"] = numba.__version__
    env["numba_threads"] = numba.get_num_threads()
    print("fastgen.numba vs numba's np.random, in one process, interleaved, no cool-down by default")
    print(format_environment(env) + f"\nnumba {numba.__version__}, {numba.get_num_threads()} threads")
    scenarios = {}

    n = 200_000 if quick else 5_000_000
    for kind, (ours, theirs) in per_call_loops().items():
        fns = {f"fastgen.numba.{kind}": lambda f=ours: f(n), f"numba np.random ({kind})": lambda f=theirs: f(n)}
        summary = summarize(time_interleaved(fns, repeats, cooldown=cooldown), floor=None,
                            reference=f"numba np.random ({kind})")
        for row in summary.values():
            row["ns_per_draw"] = row["median_s"] / n * 1e9
        print("\n" + format_table(f"{n:,} {kind} draws in an njit loop (median of {repeats})", summary, floor=None,
                                  reference=f"numba np.random ({kind})", reference_label="np.random",
                                  notes={k: f"{v['ns_per_draw']:.1f} ns/draw" for k, v in summary.items()}))
        number = 1 if kind == "uniform" else 2
        # a call from numba must cost a native call, never a trip through Python (ctypes, objmode)
        targets = [target(f"N{number} fastgen.numba.{kind}: at least half the speed of numba's inlined np.random",
                          summary[f"fastgen.numba.{kind}"]["speedup_vs_reference"], ">=", 0.5, "x")]
        print(format_targets(targets))
        scenarios[f"per_call_{kind}"] = {
            "title": f"N{number}. one {kind} draw per call in an njit loop, {n:,} draws, float64", "draws": n,
            "summary": summary, "targets": targets}

    potts = _potts()
    size, n_states, n_sweeps = (64, 3, 5) if quick else (512, 3, 20)
    beta = potts.critical_beta(n_states)
    sweeps = {"fastgen.numba (stream)": potts.sweep_fastgen, "numba np.random": potts.sweep_numba_random}
    fns = {name: (lambda s=s: potts.run(size, n_states, beta, n_sweeps, 0, sweep=s)) for name, s in sweeps.items()}
    summary = summarize(time_interleaved(fns, repeats, cooldown=cooldown), floor=None, reference="numba np.random")
    reproducible = {name: potts_runs(potts, size, n_states, beta, n_sweeps, 0, s) for name, s in sweeps.items()}
    notes = {name: "same on 1 thread: {same_on_1_thread}, run twice: {same_when_run_twice}".format(**r)
             for name, r in reproducible.items()}
    print("\n" + format_table(f"Potts q={n_states} {size}x{size}, {n_sweeps} checkerboard sweeps at beta_c "
                              f"(examples/potts_numba.py; median of {repeats})", summary, floor=None,
                              reference="numba np.random", reference_label="np.random", notes=notes))
    for name, row in summary.items():
        row.update(reproducible[name])
        row["s_per_sweep"] = row["median_s"] / n_sweeps
    ours = reproducible["fastgen.numba (stream)"]
    targets = [target("N3 fastgen stream: the same lattice on 1 thread as on all threads, and when run twice",
                      float(ours["same_on_1_thread"] and ours["same_when_run_twice"]), ">=", 1.0)]
    print(format_targets(targets))
    scenarios["potts"] = {
        "title": f"N3. Potts q={n_states} {size}x{size}, {n_sweeps} checkerboard sweeps at beta_c, "
                 f"{env['numba_threads']} numba threads (examples/potts_numba.py)",
        "size": size, "n_states": n_states, "n_sweeps": n_sweeps, "beta": beta, "summary": summary,
        "targets": targets}

    document = results_document("numba", env, {"repeats": repeats, "quick": quick, "cooldown_s": cooldown},
                                scenarios)
    if getattr(args, "json", False):
        path = write_json(document, getattr(args, "out", None) or RESULTS_DIR / "numba_cpu.json")
        print(f"\nwrote {path}")
    return 0
