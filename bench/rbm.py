"""RBM scenarios on the CPU: fastgen beside scikit-learn's BernoulliRBM and the GEMM floor.

A. One PCD-1 epoch on binarized MNIST (784 x 500, batch 100), float32 and float64.
   Floor: the five GEMMs per batch PCD-1 cannot avoid, in NumPy with preallocated outputs.
B. scikit-learn's defaults on its digits (256 hidden, batch 10, 10 epochs), float64.
C. Quality: exact held-out pseudo-likelihood after B's training on 1500 digits.
Repeats are interleaved across implementations; medians are reported.
"""
from __future__ import annotations

import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DATA_DIR = Path(os.environ.get("FASTGEN_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _floor(X, n_hidden, batch):
    dtype = X.dtype
    W = np.random.default_rng(0).normal(0, 0.01, (n_hidden, X.shape[1])).astype(dtype)
    h = np.empty((batch, n_hidden), dtype)
    v = np.empty((batch, X.shape[1]), dtype)
    dW = np.empty_like(W)

    def run():
        for s in range(0, X.shape[0], batch):
            vb = X[s:s + batch]
            hb, nb = h[:vb.shape[0]], v[:vb.shape[0]]
            np.matmul(vb, W.T, out=hb)        # P(h | v_data)
            np.matmul(h, W, out=v)            # chains -> v
            np.matmul(v, W.T, out=h)          # v_k -> P(h | v_k)
            np.matmul(hb.T, vb, out=dW)       # data statistics
            np.matmul(h.T, v, out=dW)         # model statistics
            del nb
    return run


def _time_interleaved(fns: dict, repeats: int) -> dict:
    for fn in fns.values():  # warm-up: imports, first-call costs
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def _table(title, times, floor_name, sklearn_name):
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(f"\n{title}")
    print(f"  {'implementation':<26}{'median s':>10}{'x floor':>10}{'speed-up vs sklearn':>22}")
    for name, t in med.items():
        print(f"  {name:<26}{t:>10.4f}{t / med[floor_name]:>10.2f}{med[sklearn_name] / t:>22.2f}")
    return med


def _target(label, ok):
    print(f"  target {label}: {'MET' if ok else 'MISSED'}")
    return {"target": label, "met": bool(ok)}


def scenario_mnist(repeats, quick):
    from sklearn.neural_network import BernoulliRBM as SkRBM

    import fastgen

    path = DATA_DIR / "mnist_test_10k.npz"
    if not path.is_file():
        print(f"\n[skip] PCD-1 epoch on MNIST: {path} not found")
        return {}
    data = np.load(path)["data"]
    X32 = np.ascontiguousarray((data.reshape(-1, 784) > 127)[: 1000 if quick else 9000].astype(np.float32))
    out = {}
    for dtype in (np.float32, np.float64):
        X = X32.astype(dtype)
        params = dict(n_components=500, batch_size=100, n_iter=1, learning_rate=0.1, random_state=0)
        fns = {
            "fastgen": lambda: fastgen.BernoulliRBM(**params).fit(X),
            "scikit-learn": lambda: SkRBM(**params).fit(X),
            "floor (5 GEMMs/batch)": _floor(X, 500, 100),
        }
        times = _time_interleaved(fns, repeats)
        name = np.dtype(dtype).name
        med = _table(f"A. PCD-1 epoch, binarized MNIST {X.shape[0]}x784 -> 500, batch 100, {name}",
                     times, "floor (5 GEMMs/batch)", "scikit-learn")
        targets = []
        if dtype == np.float32:
            targets.append(_target("fastgen <= 1.15x floor", med["fastgen"] <= 1.15 * med["floor (5 GEMMs/batch)"]))
        targets.append(_target(">= 2x faster than scikit-learn", med["scikit-learn"] >= 2 * med["fastgen"]))
        out[f"pcd1_mnist_{name}"] = {"seconds": times, "median": med, "targets": targets}
    return out


def scenario_digits(repeats, quick):
    from sklearn.datasets import load_digits
    from sklearn.neural_network import BernoulliRBM as SkRBM

    import fastgen
    from fastgen.models.rbm import RBM

    X = load_digits().data / 16.0
    fns = {
        "fastgen": lambda: fastgen.BernoulliRBM(random_state=0).fit(X),
        "scikit-learn": lambda: SkRBM(random_state=0).fit(X),
    }
    floor_one_epoch = _floor(X, 256, 10)
    fns["floor (5 GEMMs/batch)"] = lambda: [floor_one_epoch() for _ in range(10)]
    times = _time_interleaved(fns, repeats)
    med = _table("B. scikit-learn defaults on digits 1797x64 -> 256, batch 10, 10 epochs, float64",
                 times, "floor (5 GEMMs/batch)", "scikit-learn")
    targets = [_target(">= 8x faster than scikit-learn's fit", med["scikit-learn"] >= 8 * med["fastgen"])]

    train, test = X[:1500], X[1500:]
    ours = fastgen.BernoulliRBM(random_state=0).fit(train)
    theirs = SkRBM(random_state=0).fit(train)
    theirs_pl = RBM(np.ascontiguousarray(theirs.components_), theirs.intercept_visible_.copy(),
                    theirs.intercept_hidden_.copy()).pseudo_likelihood(test).mean()
    ours_pl = ours.score_samples(test).mean()
    print("\nC. held-out exact pseudo-likelihood (digits, train 1500 / test 297, defaults)")
    print(f"  fastgen {ours_pl:.3f}   scikit-learn {theirs_pl:.3f}")
    quality = [_target("fastgen >= scikit-learn", ours_pl >= theirs_pl)]
    return {"digits_defaults_float64": {"seconds": times, "median": med, "targets": targets},
            "quality_digits": {"fastgen": float(ours_pl), "scikit-learn": float(theirs_pl), "targets": quality}}


def environment():
    import scipy
    import sklearn

    import fastgen

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"device": f"CPU: {cpu}", "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
            "fastgen": fastgen.__version__, "date": time.strftime("%Y-%m-%d")}


def main(args) -> int:
    warnings.simplefilter("ignore")
    repeats = args.repeats or (2 if args.quick else 5)
    env = environment()
    print(f"fastgen RBM benchmarks on {env['device']} ({env['cores']} cores), median of {repeats} interleaved runs")
    results = {"environment": env, "repeats": repeats}
    results.update(scenario_mnist(repeats, args.quick))
    results.update(scenario_digits(repeats, args.quick))
    if args.json:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / "cpu.json"
        path.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {path}")
    return 0
