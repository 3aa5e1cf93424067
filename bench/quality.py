"""``python -m bench quality``: how well RBMs learn on binarized MNIST, bounded from both sides, how
long each trainer takes to get there, and how fast AIS runs against its GEMM floor.

Data: the first 9,000 images of mnist_test_10k.npz to train, the last 1,000 to test; 500 hidden
units. Every likelihood is a sandwich: RAISE (reverse AIS from the test rows; errs low) and AIS
(log Z from the base-rate model; the likelihood errs high) on the same test rows, with the same
temperatures, the base rate from the training data.

L. Six trainers over several seeds: fastgen PCD-1 with the annealed recipe
   (``BernoulliRBM.annealed_pcd``: rate 0.05 decayed linearly to 0, visible biases at the data's
   log-odds, 100 persistent chains, batch 100), fastgen CD-1 and CD-10 and PT (10 temperatures)
   with the same settings, scikit-learn's BernoulliRBM with the recipe's rate, batch and epochs
   (constant: it has no schedule) and a plain PyTorch PCD-1 written out with the recipe. Each
   model: [RAISE, AIS] on every 10th test row, the sandwich's width, AIS over all 1,000 test
   rows and its ESS. Targets: the recipe's RAISE (lower) bound at or above CD-1's and CD-10's
   for every seed.
S. The sandwich's width on the seed-0 recipe model as the temperatures grow: why the defaults
   (14,500 temperatures, the paper's schedule) are what they are.
C. Time to likelihood: fastgen's recipe, scikit-learn and PyTorch trained for growing epoch
   budgets (each a complete run, since the annealed rate depends on the budget), held-out
   [RAISE, AIS] against training seconds, drawn to quality_time_to_likelihood.png. Target:
   fastgen's RAISE bound reaches scikit-learn's best AIS estimate in at most 1/5 of the time
   scikit-learn took to reach that estimate.
T. AIS wall time, 100 chains x 14,500 temperatures on 784 x 500, float32, against its floor: the
   two dense products per temperature (v @ W.T and h @ W over the 100 chains, NumPy into
   preallocated arrays). Target: within 1.3x of the floor.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from .common import (DEFAULT_COOLDOWN_S, print_target_summary, RESULTS_DIR, background_load, environment, format_environment,
                     format_table, format_targets, load_warning, LoadMonitor, register, results_document,
                     skip_line, summarize, target, time_interleaved, write_json)
from .quality_trainers import fit_fastgen, fit_scikit_learn, fit_torch_pcd
from .rbm import load_binary_mnist

TRAIN_ROWS, TEST_ROWS = 9000, 1000
QUICK_TRAIN_ROWS, QUICK_TEST_ROWS = 600, 200
N_HIDDEN, QUICK_N_HIDDEN = 500, 50
SEEDS, QUICK_SEEDS = (0, 1, 2), (0,)
SANDWICH_ROW_STEP = 10          # [RAISE, AIS] on every 10th test row
PT_TEMPERATURES = 10
RECIPE = "fastgen PCD-1 (recipe)"
SCIKIT_LEARN = "scikit-learn PCD-1"
PYTORCH = "PyTorch PCD-1 (recipe)"
CD_MODELS = ("fastgen CD-1", "fastgen CD-10")
# Epoch budgets of the time-to-likelihood runs (scikit-learn's rate is constant, so its longest
# run also shows where it levels off).
CURVE_EPOCHS = {RECIPE: (2, 5, 10, 20, 50, 100), SCIKIT_LEARN: (2, 5, 10, 20, 50, 100),
                PYTORCH: (2, 5, 10, 20, 50, 100)}
QUICK_CURVE_EPOCHS = (1, 2)
MIN_SPEEDUP_TO_LIKELIHOOD = 5.0
AIS_TIMING_CHAINS, AIS_TIMING_BETAS, QUICK_AIS_BETAS = 100, 14500, 300
AIS_MAX_X_FLOOR = 1.3
DEFAULT_REPEATS, QUICK_REPEATS = 3, 1
PLOT_FILE = "quality_time_to_likelihood.png"


@dataclass(frozen=True)
class Budget:
    """What one [RAISE, AIS] evaluation spends."""

    ais_chains: int
    raise_chains: int      # per test row
    n_betas: int


BUDGET = Budget(ais_chains=500, raise_chains=5, n_betas=14500)
CURVE_BUDGET = Budget(ais_chains=500, raise_chains=5, n_betas=5000)
WIDTH_BETAS = (1000, 5000, 14500, 30000)
QUICK_BUDGET = Budget(ais_chains=50, raise_chains=2, n_betas=50)
QUICK_WIDTH_BETAS = (20, 50)


def trainers(epochs: int, n_hidden: int) -> dict:
    """name -> fit(X, seed) -> (W, b, c) for scenario L's models, ``epochs`` passes each."""
    from fastgen import BernoulliRBM

    recipe = BernoulliRBM.annealed_pcd(n_components=n_hidden, n_iter=epochs).get_params()
    keep = ("n_components", "learning_rate", "batch_size", "n_iter", "learning_rate_schedule", "final_learning_rate",
            "visible_bias_init", "n_chains")
    recipe = {k: recipe[k] for k in keep}
    no_chains = {k: v for k, v in recipe.items() if k != "n_chains"}
    plain = {k: recipe[k] for k in ("n_components", "learning_rate", "batch_size", "n_iter")}
    torch_settings = dict(plain, n_chains=recipe["n_chains"], final_learning_rate=recipe["final_learning_rate"])
    return {
        "fastgen CD-1": lambda X, seed: fit_fastgen(X, seed, persistent=False, cd_k=1, **no_chains),
        "fastgen CD-10": lambda X, seed: fit_fastgen(X, seed, persistent=False, cd_k=10, **no_chains),
        RECIPE: lambda X, seed: fit_fastgen(X, seed, **recipe),
        f"fastgen PT (recipe, {PT_TEMPERATURES} temperatures)": lambda X, seed: fit_fastgen(
            X, seed, n_temperatures=PT_TEMPERATURES, **recipe),
        SCIKIT_LEARN: lambda X, seed: fit_scikit_learn(X, seed, **plain),
        PYTORCH: lambda X, seed: fit_torch_pcd(X, seed, **torch_settings),
    }


def sandwich(weights, X_train, X_test, budget: Budget, seed: int = 0) -> dict:
    """[RAISE, AIS] mean log-likelihood on every SANDWICH_ROW_STEP-th test row, and AIS over all of
    X_test, for the float32 RBM ``weights`` = (W, b, c)."""
    from fastgen import Generator
    from fastgen.models.ais import ais_log_partition, base_rate_bias, default_schedule, raise_log_likelihood
    from fastgen.models.rbm import RBM

    start = time.perf_counter()
    rbm = RBM(*(np.ascontiguousarray(a, np.float32) for a in weights))
    base = base_rate_bias(X_train, rbm.n_visible, np.float32)
    betas = default_schedule(budget.n_betas)
    rows = X_test[::SANDWICH_ROW_STEP]
    ais = ais_log_partition(rbm, n_chains=budget.ais_chains, betas=betas, base_visible_bias=base,
                            generator=Generator(2008 + seed))
    rbm64 = RBM(*(a.astype(np.float64) for a in (rbm.weights, rbm.visible_bias, rbm.hidden_bias)))
    ais_rows = -rbm64.free_energy(rows.astype(np.float64)) - ais.log_z
    reverse = raise_log_likelihood(rbm, rows, n_chains=budget.raise_chains, betas=betas, base_visible_bias=base,
                                   generator=Generator(2015 + seed))
    n = rows.shape[0]
    return {"raise": reverse.mean, "raise_standard_error": reverse.standard_error,
            "ais": float(ais_rows.mean()), "ais_standard_error": float(ais_rows.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            "width": float(ais_rows.mean()) - reverse.mean,
            "ais_all_test_rows": float((-rbm64.free_energy(X_test.astype(np.float64))).mean() - ais.log_z),
            "log_z": ais.log_z, "log_z_3sd": [ais.log_z_lower, ais.log_z_upper],
            "ais_effective_sample_size": ais.effective_sample_size, "rows": n, "budget": asdict(budget),
            "evaluation_s": time.perf_counter() - start}


def _fit_timed(fit, X, seed):
    start = time.perf_counter()
    weights = fit(X, seed)
    return weights, time.perf_counter() - start


def likelihoods(X_train, X_test, epochs, n_hidden, seeds, budget: Budget) -> dict:
    """Scenario L: every trainer for every seed, each model's sandwich."""
    print(f"\nL. [RAISE, AIS] test log-likelihood on binarized MNIST ({X_train.shape[0]} train / {X_test.shape[0]} "
          f"test), {n_hidden} hidden, {epochs} epochs, seeds {list(seeds)}; AIS {budget.ais_chains} chains, RAISE "
          f"{budget.raise_chains} chains per row, {budget.n_betas} temperatures, base rate from the training data; "
          f"the sandwich on every {SANDWICH_ROW_STEP}th test row", flush=True)
    print(f"  {'model':<38}{'seed':>5}{'fit s':>8}{'RAISE':>9}{'AIS':>9}{'width':>7}{'AIS, all rows':>15}{'ESS':>7}",
          flush=True)
    runs: dict[str, list[dict]] = {}
    models = trainers(epochs, n_hidden)
    for seed in seeds:
        for name, fit in models.items():
            weights, fit_s = _fit_timed(fit, X_train, seed)
            result = dict(sandwich(weights, X_train, X_test, budget, seed), seed=seed, fit_s=fit_s)
            runs.setdefault(name, []).append(result)
            print(f"  {name:<38}{seed:>5}{fit_s:>8.1f}{result['raise']:>9.2f}{result['ais']:>9.2f}"
                  f"{result['width']:>7.2f}{result['ais_all_test_rows']:>15.2f}"
                  f"{result['ais_effective_sample_size']:>7.1f}", flush=True)
    summary = {name: {key: float(np.mean([r[key] for r in rs]))
                      for key in ("fit_s", "raise", "ais", "width", "ais_all_test_rows")}
               for name, rs in runs.items()}
    print(f"\n  mean over {len(seeds)} seed(s):")
    print(f"  {'model':<38}{'fit s':>8}{'[RAISE, AIS]':>20}{'width':>7}{'AIS, all rows':>15}")
    for name, s in summary.items():
        bounds = f"[{s['raise']:.2f}, {s['ais']:.2f}]"
        print(f"  {name:<38}{s['fit_s']:>8.1f}{bounds:>20}{s['width']:>7.2f}"
              f"{s['ais_all_test_rows']:>15.2f}")
    targets = []
    for cd in CD_MODELS:
        margin = min(ours["raise"] - theirs["raise"] for ours, theirs in zip(runs[RECIPE], runs[cd]))
        targets.append(target(f"{RECIPE} RAISE - {cd} RAISE, lowest over seeds (>= 0)", margin, ">=", 0.0,
                              " nats"))
    print(format_targets(targets))
    for cd in CD_MODELS:
        apart = all(ours["raise"] >= theirs["ais"] for ours, theirs in zip(runs[RECIPE], runs[cd]))
        print(f"  {RECIPE}'s RAISE bound above {cd}'s AIS estimate for every seed: {'yes' if apart else 'no'}")
    return {"settings": {"epochs": epochs, "n_hidden": n_hidden, "seeds": list(seeds), "budget": asdict(budget),
                         "sandwich_rows": f"every {SANDWICH_ROW_STEP}th test row", "pt_temperatures": PT_TEMPERATURES},
            "runs": runs, "summary": summary, "targets": targets}


def sandwich_width(X_train, X_test, epochs, n_hidden, betas_list, budget: Budget) -> dict:
    """Scenario S: one recipe model (seed 0), its sandwich at growing temperature counts."""
    weights = trainers(epochs, n_hidden)[RECIPE](X_train, 0)
    print(f"\nS. Sandwich width against the temperatures, {RECIPE}, seed 0 (AIS {budget.ais_chains} chains, RAISE "
          f"{budget.raise_chains} chains per row)", flush=True)
    print(f"  {'temperatures':>13}{'RAISE':>9}{'AIS':>9}{'width':>7}{'ESS':>7}{'eval s':>8}", flush=True)
    points = []
    for n_betas in betas_list:
        result = sandwich(weights, X_train, X_test, Budget(budget.ais_chains, budget.raise_chains, n_betas))
        points.append(result)
        print(f"  {n_betas:>13}{result['raise']:>9.2f}{result['ais']:>9.2f}{result['width']:>7.2f}"
              f"{result['ais_effective_sample_size']:>7.1f}{result['evaluation_s']:>8.1f}", flush=True)
    return {"model": RECIPE, "epochs": epochs, "points": points, "targets": []}


def time_to_likelihood(X_train, X_test, n_hidden, curve_epochs, budget: Budget, plot_path=None) -> dict:
    """Scenario C: complete runs at growing epoch budgets, [RAISE, AIS] against training seconds."""
    print(f"\nC. Time to likelihood: complete runs of growing epoch budgets, seed 0, [RAISE, AIS] on every "
          f"{SANDWICH_ROW_STEP}th test row ({budget.n_betas} temperatures)", flush=True)
    print(f"  {'trainer':<26}{'epochs':>7}{'fit s':>8}{'RAISE':>9}{'AIS':>9}", flush=True)
    curves: dict[str, list[dict]] = {}
    for name in (RECIPE, SCIKIT_LEARN, PYTORCH):
        for epochs in curve_epochs[name]:
            weights, fit_s = _fit_timed(trainers(epochs, n_hidden)[name], X_train, 0)
            result = dict(sandwich(weights, X_train, X_test, budget), epochs=epochs, fit_s=fit_s)
            curves.setdefault(name, []).append(result)
            print(f"  {name:<26}{epochs:>7}{fit_s:>8.2f}{result['raise']:>9.2f}{result['ais']:>9.2f}", flush=True)
    best = max(curves[SCIKIT_LEARN], key=lambda p: p["ais"])
    goal, sklearn_s = best["ais"], best["fit_s"]

    def first_reaching(name, bound):
        reached = [p["fit_s"] for p in curves[name] if p[bound] >= goal]
        return min(reached) if reached else None

    reach = {name: {"raise": first_reaching(name, "raise"), "ais": first_reaching(name, "ais")}
             for name in (RECIPE, PYTORCH)}
    print(f"  goal: scikit-learn's best AIS estimate, {goal:.2f} nats, after {best['epochs']} epochs in "
          f"{sklearn_s:.2f} s")
    for name, r in reach.items():
        for bound in ("raise", "ais"):
            when = r[bound]
            print(f"  {name} by its {bound.upper()} bound: " + (
                f"{when:.2f} s, {sklearn_s / when:.1f}x sooner" if when else "not reached"))
    ours = reach[RECIPE]["raise"]
    speedup = sklearn_s / ours if ours else 0.0
    targets = [target(f"time to scikit-learn's best held-out LL, scikit-learn / fastgen (RAISE bound) "
                      f"(>= {MIN_SPEEDUP_TO_LIKELIHOOD:g})", speedup, ">=", MIN_SPEEDUP_TO_LIKELIHOOD, "x")]
    print(format_targets(targets))
    plot = None
    if plot_path is not None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        title = (f"Binarized MNIST ({X_train.shape[0]} train / {X_test.shape[0]} test), {n_hidden} hidden units: "
                 f"time to likelihood ({cores} CPU cores)")
        plot = draw_time_to_likelihood(curves, goal, plot_path, title)
        if plot:
            print(f"  drew {plot}")
    return {"curves": curves, "goal": {"ais": goal, "fit_s": sklearn_s, "epochs": best["epochs"]},
            "reached": reach, "plot": plot, "targets": targets}


def draw_time_to_likelihood(curves, goal, path, title):
    """The curves of scenario C on one set of axes (None when matplotlib is missing)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        skip_line("time-to-likelihood plot", "matplotlib is not installed (pip install 'fastgen[bench]')")
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    for (name, points), color in zip(curves.items(), ("tab:blue", "tab:orange", "tab:green")):
        t = [p["fit_s"] for p in points]
        ax.fill_between(t, [p["raise"] for p in points], [p["ais"] for p in points], color=color, alpha=0.25)
        ax.plot(t, [p["ais"] for p in points], "o-", color=color, label=f"{name}: AIS (top), RAISE (bottom)")
        ax.plot(t, [p["raise"] for p in points], ".--", color=color, linewidth=0.8)
        for p in points:
            ax.annotate(str(p["epochs"]), (p["fit_s"], p["ais"]), textcoords="offset points", xytext=(0, 5),
                        fontsize=7, ha="center", color=color)
    ax.axhline(goal, color="gray", linestyle=":", label=f"scikit-learn's best AIS estimate ({goal:.1f})")
    ax.set_xscale("log")
    ax.set_xlabel("training time, s (log scale; labels: epochs)")
    ax.set_ylabel("held-out log-likelihood, nats")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def ais_floor(n_visible, n_hidden, n_chains, n_betas, dtype, seed=0):
    """The two products per temperature, dense, into preallocated arrays."""
    rng = np.random.default_rng(seed)
    W = (rng.standard_normal((n_hidden, n_visible)) * 0.01).astype(dtype)
    v = (rng.random((n_chains, n_visible)) < 0.13).astype(dtype)
    h = np.empty((n_chains, n_hidden), dtype)
    x = np.empty((n_chains, n_visible), dtype)
    Wt = W.T

    def run():
        for _ in range(n_betas):
            np.matmul(v, Wt, out=h)
            np.matmul(h, W, out=x)

    return run


def ais_speed(model_weights, X_train, n_betas, repeats, cooldown):
    """Scenario T: AIS wall time against the floor (and with dense products, as before issue 7)."""
    from fastgen import Generator
    from fastgen.models.ais import ais_log_partition, default_schedule
    from fastgen.models.rbm import RBM

    rbm = RBM(*(np.ascontiguousarray(a, np.float32) for a in model_weights))
    betas = default_schedule(n_betas)
    nh, nv = rbm.weights.shape

    def fastgen_ais():
        ais_log_partition(rbm, n_chains=AIS_TIMING_CHAINS, betas=betas, data=X_train, generator=Generator(1))

    def fastgen_dense():
        ais_log_partition(rbm, n_chains=AIS_TIMING_CHAINS, betas=betas, data=X_train, generator=Generator(1),
                          binary_products=False)

    floor = "GEMM floor (2 dense products / temperature)"
    fns = {floor: ais_floor(nv, nh, AIS_TIMING_CHAINS, n_betas, np.float32),
           "fastgen AIS": fastgen_ais, "fastgen AIS, BLAS products": fastgen_dense}
    with LoadMonitor() as mon:
        times = time_interleaved(fns, repeats, cooldown=cooldown, warmup=0 if repeats > 1 else 1)
    summary = summarize(times, floor=floor, reference=None)
    title = (f"\nT. AIS, {AIS_TIMING_CHAINS} chains x {n_betas} temperatures, {nv} x {nh}, float32 "
             f"(median of {repeats})")
    print(format_table(title, summary, floor=floor, reference=None))
    warning = load_warning(mon.as_dict())
    if warning:
        print("  " + warning)
    targets = [target(f"AIS <= {AIS_MAX_X_FLOOR}x its GEMM floor", summary["fastgen AIS"]["x_floor"], "<=",
                      AIS_MAX_X_FLOOR, "x")]
    print(format_targets(targets))
    return {"summary": summary, "targets": targets, "load": mon.as_dict(),
            "shape": {"n_visible": nv, "n_hidden": nh, "chains": AIS_TIMING_CHAINS, "betas": n_betas}}


def add_arguments(parser):
    parser.add_argument("--only", default="LSCT", metavar="LETTERS",
                        help="run only these scenarios: L (likelihoods), S (sandwich width), C (time to "
                             "likelihood), T (AIS time) (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help=f"train scenario L's models with seeds 0..N-1 (default: {len(SEEDS)})")


def run_suite(args) -> dict:
    from fastgen import BernoulliRBM

    quick = bool(getattr(args, "quick", False))
    repeats = args.repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    cooldown = DEFAULT_COOLDOWN_S if getattr(args, "cooldown", None) is None else args.cooldown
    only = (getattr(args, "only", None) or "LSCT").upper()
    if set(only) - set("LSCT"):
        raise SystemExit(f"python -m bench quality: error: --only takes letters from LSCT, got {only!r}")
    n_seeds = getattr(args, "seeds", None)
    if n_seeds is not None and n_seeds < 1:
        raise SystemExit(f"python -m bench quality: error: --seeds must be >= 1, got {n_seeds}")
    seeds = tuple(range(n_seeds)) if n_seeds else (QUICK_SEEDS if quick else SEEDS)
    env = environment()
    env["background_load_before"] = background_load(0.25 if quick else 1.0)
    print("fastgen RBM quality ([RAISE, AIS] log-likelihood bounds), time to likelihood and AIS speed (CPU)"
          + (" -- QUICK mode: smoke test only, not for comparison" if quick else ""))
    print(format_environment(env))
    warning = load_warning(env["background_load_before"])
    if warning:
        print("before starting: " + warning.replace("meanwhile", "in the last second"))
    epochs = BernoulliRBM.annealed_pcd().n_iter if not quick else 2
    n_hidden = QUICK_N_HIDDEN if quick else N_HIDDEN
    budget, curve_budget = (QUICK_BUDGET, QUICK_BUDGET) if quick else (BUDGET, CURVE_BUDGET)
    curve_epochs = {name: QUICK_CURVE_EPOCHS for name in CURVE_EPOCHS} if quick else CURVE_EPOCHS
    train_rows, test_rows = (QUICK_TRAIN_ROWS, QUICK_TEST_ROWS) if quick else (TRAIN_ROWS, TEST_ROWS)
    scenarios, skipped = {}, []
    X, source = load_binary_mnist(TRAIN_ROWS + TEST_ROWS)
    if X is None:
        skipped.append(skip_line("quality on binarized MNIST", source))
    else:
        X = X.astype(np.float32)
        # The convention: first 9,000 to train, last 1,000 to test; a shorter file (or --quick)
        # keeps its last rows for the test set all the same.
        test_rows = min(test_rows, X.shape[0] // 5)
        X_train, X_test = X[:min(train_rows, X.shape[0] - test_rows)], X[X.shape[0] - test_rows:]
        if "L" in only:
            scenarios["L_log_likelihood_bounds_mnist"] = likelihoods(X_train, X_test, epochs, n_hidden, seeds, budget)
        if "S" in only:
            scenarios["S_sandwich_width"] = sandwich_width(X_train, X_test, epochs, n_hidden,
                                                           QUICK_WIDTH_BETAS if quick else WIDTH_BETAS, budget)
        if "C" in only:
            out = getattr(args, "out", None)
            plot_dir = RESULTS_DIR if out is None else type(RESULTS_DIR)(out).parent
            plot_path = plot_dir / PLOT_FILE if getattr(args, "json", False) else None
            scenarios["C_time_to_likelihood"] = time_to_likelihood(X_train, X_test, n_hidden, curve_epochs,
                                                                   curve_budget, plot_path)
        if "T" in only:
            # AIS speed does not depend much on the weights; a briefly trained model has
            # realistic hidden activity (density of the sampled states).
            model = BernoulliRBM(n_components=500, learning_rate=0.05, batch_size=20, n_iter=1,
                                 random_state=0).fit(X_train)
            weights = (model.components_, model.intercept_visible_, model.intercept_hidden_)
            n_betas = QUICK_AIS_BETAS if quick else AIS_TIMING_BETAS
            scenarios["T_ais_time_784x500_float32"] = ais_speed(weights, X_train, n_betas, repeats, cooldown)
    document = results_document("quality", env, {"quick": quick, "repeats": repeats, "scenarios": only,
                                                 "mnist_file": source}, scenarios)
    if skipped:
        document["skipped"] = skipped
    print_target_summary(scenarios)
    return document


@register("quality", "RBM log-likelihood bounds [RAISE, AIS] on MNIST (CD-1, CD-10, the PCD recipe, PT, "
          "scikit-learn, PyTorch), time to likelihood, and AIS speed vs its GEMM floor",
          add_arguments=add_arguments, results_file="quality.json")
def main(args) -> int:
    document = run_suite(args)
    if getattr(args, "json", False):
        path = write_json(document, getattr(args, "out", None) or RESULTS_DIR / "quality.json")
        print(f"\nwrote {path}")
    return 0
