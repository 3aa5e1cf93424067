"""``python -m bench quality``: how well the RBMs learn, measured by AIS log-likelihoods, and how
fast AIS runs against its GEMM floor.

L. Binarized MNIST (first 9,000 images of mnist_test_10k.npz to train, last 1,000 to test),
   500 hidden units, the same epochs, learning rate and batch size for every trainer: fastgen
   CD-1, CD-10, PCD-1, PT (parallel tempering) and scikit-learn's BernoulliRBM (PCD-1, its weights
   put through fastgen's AIS). Each model's log Z by AIS (100 chains x 14,500 temperatures,
   base rate from the training data); mean test and train log-likelihood with the error bar
   that log Z's +-3 sd puts on it. Target: fastgen PCD >= scikit-learn.
T. AIS wall time, 100 chains x 14,500 temperatures on 784 x 500, float32, against its floor: the
   two dense products per temperature that the algorithm cannot avoid (v @ W.T and h @ W over
   the 100 chains, NumPy into preallocated arrays). Target: within 1.3x of the floor.
"""
from __future__ import annotations

import time

import numpy as np

from .common import (DEFAULT_COOLDOWN_S, print_target_summary, RESULTS_DIR, background_load, environment, format_environment,
                     format_table, format_targets, load_warning, LoadMonitor, register, results_document,
                     skip_line, summarize, target, time_interleaved, write_json)
from .rbm import load_binary_mnist

TRAIN_ROWS, TEST_ROWS = 9000, 1000
QUICK_TRAIN_ROWS, QUICK_TEST_ROWS = 600, 200
SETTINGS = dict(n_components=500, learning_rate=0.05, batch_size=20, n_iter=10)
QUICK_SETTINGS = dict(n_components=50, learning_rate=0.05, batch_size=20, n_iter=2)
PT_TEMPERATURES = 10
AIS_CHAINS, AIS_BETAS = 100, 14500
QUICK_AIS_BETAS = 300
AIS_MAX_X_FLOOR = 1.3
DEFAULT_REPEATS, QUICK_REPEATS = 3, 1


def _trainers(settings):
    """name -> (description, estimator factory)."""
    from sklearn.neural_network import BernoulliRBM as SkBernoulliRBM

    from fastgen import BernoulliRBM

    common = dict(settings, random_state=0)
    return {
        "fastgen CD-1": lambda: BernoulliRBM(persistent=False, cd_k=1, **common),
        "fastgen CD-10": lambda: BernoulliRBM(persistent=False, cd_k=10, **common),
        "fastgen PCD-1": lambda: BernoulliRBM(persistent=True, cd_k=1, **common),
        f"fastgen PT ({PT_TEMPERATURES} temperatures)": lambda: BernoulliRBM(
            persistent=True, cd_k=1, n_temperatures=PT_TEMPERATURES, **common),
        "scikit-learn PCD-1": lambda: SkBernoulliRBM(**common),
    }


def likelihoods(X_train, X_test, settings, n_betas):
    """Scenario L: train every model, estimate its log Z by AIS, report mean log-likelihoods."""
    from fastgen import Generator
    from fastgen.models.ais import ais_log_partition, default_schedule
    from fastgen.models.rbm import RBM

    betas = default_schedule(n_betas)
    rows = {}
    print(f"\nL. AIS log-likelihood on binarized MNIST ({X_train.shape[0]} train / {X_test.shape[0]} test), "
          f"{settings['n_components']} hidden, lr {settings['learning_rate']}, batch {settings['batch_size']}, "
          f"{settings['n_iter']} epochs; AIS {AIS_CHAINS} chains x {n_betas} temperatures, base rate from the "
          "training data", flush=True)
    header = (f"  {'model':<30}{'fit s':>8}{'log Z':>11}{'test LL':>11}{'(+-3 sd of log Z)':>20}"
              f"{'train LL':>11}{'AIS s':>8}")
    print(header, flush=True)
    for name, make in _trainers(settings).items():
        model = make()
        start = time.perf_counter()
        model.fit(X_train)
        fit_s = time.perf_counter() - start
        rbm = RBM(np.ascontiguousarray(model.components_, np.float32),
                  np.ascontiguousarray(model.intercept_visible_, np.float32),
                  np.ascontiguousarray(model.intercept_hidden_, np.float32))
        start = time.perf_counter()
        result = ais_log_partition(rbm, n_chains=AIS_CHAINS, betas=betas, data=X_train, generator=Generator(2008))
        ais_s = time.perf_counter() - start
        rbm64 = RBM(*(a.astype(np.float64) for a in (rbm.weights, rbm.visible_bias, rbm.hidden_bias)))
        test_ll = float(np.mean(-rbm64.free_energy(X_test.astype(np.float64)))) - result.log_z
        train_ll = float(np.mean(-rbm64.free_energy(X_train.astype(np.float64)))) - result.log_z
        # log Z's upper bound gives the lower bound of the likelihood and vice versa
        low, high = test_ll - (result.log_z_upper - result.log_z), test_ll + (result.log_z - result.log_z_lower)
        rows[name] = {"fit_s": fit_s, "ais_s": ais_s, "log_z": result.log_z, "log_z_lower": result.log_z_lower,
                      "log_z_upper": result.log_z_upper, "test_log_likelihood": test_ll,
                      "test_log_likelihood_range": [low, high], "train_log_likelihood": train_ll,
                      "ais_effective_sample_size": result.effective_sample_size}
        print(f"  {name:<30}{fit_s:>8.1f}{result.log_z:>11.2f}{test_ll:>11.2f}{f'[{low:.2f}, {high:.2f}]':>20}"
              f"{train_ll:>11.2f}{ais_s:>8.1f}", flush=True)
    ours, theirs = rows["fastgen PCD-1"]["test_log_likelihood"], rows["scikit-learn PCD-1"]["test_log_likelihood"]
    targets = [target("fastgen PCD-1 test log-likelihood - scikit-learn's (>= 0)", ours - theirs, ">=", 0.0,
                      " nats")]
    print(format_targets(targets))
    return {"settings": dict(settings, ais_chains=AIS_CHAINS, ais_betas=n_betas, pt_temperatures=PT_TEMPERATURES),
            "models": rows, "targets": targets}


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
        ais_log_partition(rbm, n_chains=AIS_CHAINS, betas=betas, data=X_train, generator=Generator(1))

    def fastgen_dense():
        ais_log_partition(rbm, n_chains=AIS_CHAINS, betas=betas, data=X_train, generator=Generator(1),
                          binary_products=False)

    fns = {"GEMM floor (2 dense products / temperature)": ais_floor(nv, nh, AIS_CHAINS, n_betas, np.float32),
           "fastgen AIS": fastgen_ais, "fastgen AIS, BLAS products": fastgen_dense}
    with LoadMonitor() as mon:
        times = time_interleaved(fns, repeats, cooldown=cooldown, warmup=0 if repeats > 1 else 1)
    floor = "GEMM floor (2 dense products / temperature)"
    summary = summarize(times, floor=floor, reference=None)
    title = (f"\nT. AIS, {AIS_CHAINS} chains x {n_betas} temperatures, {nv} x {nh}, float32 "
             f"(median of {repeats})")
    print(format_table(title, summary, floor=floor, reference=None))
    warning = load_warning(mon.as_dict())
    if warning:
        print("  " + warning)
    targets = [target(f"AIS <= {AIS_MAX_X_FLOOR}x its GEMM floor", summary["fastgen AIS"]["x_floor"], "<=",
                      AIS_MAX_X_FLOOR, "x")]
    print(format_targets(targets))
    return {"summary": summary, "targets": targets, "load": mon.as_dict(),
            "shape": {"n_visible": nv, "n_hidden": nh, "chains": AIS_CHAINS, "betas": n_betas}}


def add_arguments(parser):
    parser.add_argument("--only", default="LT", metavar="LETTERS",
                        help="run only these scenarios: L (likelihoods), T (AIS time) (default: %(default)s)")


def run_suite(args) -> dict:
    quick = bool(getattr(args, "quick", False))
    repeats = args.repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    cooldown = DEFAULT_COOLDOWN_S if getattr(args, "cooldown", None) is None else args.cooldown
    only = (getattr(args, "only", None) or "LT").upper()
    if set(only) - set("LT"):
        raise SystemExit(f"python -m bench quality: error: --only takes letters from LT, got {only!r}")
    env = environment()
    env["background_load_before"] = background_load(0.25 if quick else 1.0)
    print("fastgen RBM quality (AIS log-likelihood) and AIS speed (CPU)"
          + (" -- QUICK mode: smoke test only, not for comparison" if quick else ""))
    print(format_environment(env))
    warning = load_warning(env["background_load_before"])
    if warning:
        print("before starting: " + warning.replace("meanwhile", "in the last second"))
    n_betas = QUICK_AIS_BETAS if quick else AIS_BETAS
    settings = QUICK_SETTINGS if quick else SETTINGS
    train_rows, test_rows = (QUICK_TRAIN_ROWS, QUICK_TEST_ROWS) if quick else (TRAIN_ROWS, TEST_ROWS)
    scenarios, skipped = {}, []
    X, source = load_binary_mnist(TRAIN_ROWS + TEST_ROWS)
    if X is None:
        skipped.append(skip_line("quality on binarized MNIST", source))
    else:
        # The convention: first 9,000 to train, last 1,000 to test; a shorter file (or --quick)
        # keeps its last rows for the test set all the same.
        test_rows = min(test_rows, X.shape[0] // 5)
        X_train, X_test = X[:min(train_rows, X.shape[0] - test_rows)], X[X.shape[0] - test_rows:]
        if "L" in only:
            scenarios["L_ais_log_likelihood_mnist"] = likelihoods(X_train, X_test, settings, n_betas)
        if "T" in only:
            from fastgen import BernoulliRBM

            # AIS speed does not depend much on the weights; a briefly trained model has
            # realistic hidden activity (density of the sampled states).
            model = BernoulliRBM(n_components=500, learning_rate=0.05, batch_size=20, n_iter=1,
                                 random_state=0).fit(X_train)
            weights = (model.components_, model.intercept_visible_, model.intercept_hidden_)
            scenarios["T_ais_time_784x500_float32"] = ais_speed(weights, X_train, n_betas, repeats, cooldown)
    document = results_document("quality", env, {"quick": quick, "repeats": repeats, "scenarios": only,
                                                 "mnist_file": source}, scenarios)
    if skipped:
        document["skipped"] = skipped
    print_target_summary(scenarios)
    return document


@register("quality", "RBM AIS log-likelihoods on MNIST (CD-1, CD-10, PCD, PT, scikit-learn) and AIS speed vs "
          "its GEMM floor", add_arguments=add_arguments, results_file="quality.json")
def main(args) -> int:
    document = run_suite(args)
    if getattr(args, "json", False):
        path = write_json(document, getattr(args, "out", None) or RESULTS_DIR / "quality.json")
        print(f"\nwrote {path}")
    return 0
