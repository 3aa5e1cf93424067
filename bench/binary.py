"""Where a binary-operand product beats dense BLAS: the crossover density per shape and dtype.

For each product shape an RBM loop runs ([rows, K] 0/1 operand times [K, N] weights) and each
density, times the compiled binary_matmul on precomputed index lists (what the loops run; the
sampler writes the lists while drawing) against SciPy's BLAS ?gemm on the same 0/1 matrix (what
the loops would call instead), both into preallocated outputs, interleaved, median of repeats.
The crossover is the density above which BLAS wins. Then one PCD-1 epoch per limit on the
loops' density (FASTGEN_BINARY_MAX_DENSITY) against the dense loop: inside training the whole-epoch
sweep, not the stand-alone crossover, set the default limit of 1 (docs/performance.md).

``python -m bench binary [--quick] [--json]`` (writes bench/results/binary_crossover.json)
"""
from __future__ import annotations

import numpy as np

from .common import environment, format_environment, median, register, results_document, write_json, RESULTS_DIR

DENSITIES = (0.01, 0.05, 0.13, 0.25, 0.35, 0.5, 0.65, 0.8, 1.0)
# (rows, K, N, what): the products of the benchmarked RBMs.
SHAPES = (
    (100, 784, 500, "MNIST batch 100: v @ W.T"),
    (100, 500, 784, "MNIST batch 100: h @ W"),
    (1000, 784, 500, "1,000 chains: v @ W.T"),
    (1000, 500, 784, "1,000 chains: h @ W"),
    (10, 64, 256, "digits batch 10: v @ W.T"),
    (10, 256, 64, "digits batch 10: h @ W"),
)


def _time(fn, repeats):
    import time

    fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def crossover(rows, K, N, dtype, repeats, rng):
    from scipy.linalg import blas

    from fastgen._native import cpu as _cpu

    gemm = blas.sgemm if dtype == np.float32 else blas.dgemm
    M = rng.normal(0, 1, (K, N)).astype(dtype)
    M_f = np.asfortranarray(M)
    out = np.empty((rows, N), dtype)
    points = []
    for density in DENSITIES:
        A = (rng.random((rows, K)) < density).astype(dtype)
        A_f = np.asfortranarray(A)
        indices, counts, nnz = _cpu.C.binary_rows(A)
        c_f = np.asfortranarray(np.empty((rows, N), dtype))
        t_bin, t_blas = [], []
        # Interleave in small groups so slow phases of a shared machine hit both alike.
        per_call = max(1, int(2e-3 / max(1e-7, 2.0 * rows * K * N / 50e9)))
        for _ in range(repeats):
            t_bin += _time(lambda: [_cpu.C.binary_matmul(indices, counts, M, None, out) for _ in range(per_call)], 1)
            t_blas += _time(lambda: [gemm(1.0, A_f, M_f, 0.0, c_f, overwrite_c=True) for _ in range(per_call)], 1)
        b, g = median(t_bin) / per_call, median(t_blas) / per_call
        points.append({"density": density, "nnz": int(nnz), "binary_s": b, "blas_s": g, "blas_over_binary": g / b})
    # Crossover: first density from which BLAS is at least as fast for every higher density.
    cross = None
    for i, p in enumerate(points):
        if all(q["blas_over_binary"] <= 1.0 for q in points[i:]):
            cross = p["density"]
            break
    return points, cross


LOOP_DENSITIES = (0.0, 0.2, 0.35, 0.5, 1.0)


def loop_sweep(X, repeats, cooldown):
    """One PCD-1 epoch (784 -> 500, batch 100) per setting of the loops' density limit, and the
    dense loop, interleaved in one process: the crossover that matters inside training."""
    from fastgen._native import cpu as _cpu

    from .common import time_interleaved
    from .rbm import dense_products, fastgen_trainer

    params = dict(n_components=500, batch_size=100, n_iter=1, learning_rate=0.1, random_state=0)
    run = fastgen_trainer(X, params)

    def with_limit(density):
        def call():
            previous = _cpu.C.binary_max_density()
            _cpu.C.set_binary_max_density(density)
            try:
                run()
            finally:
                _cpu.C.set_binary_max_density(previous)
        return call

    dense_loop = dense_products(run)

    fns = {f"binary loop, max density {d:g}": with_limit(d) for d in LOOP_DENSITIES}
    fns["dense loop (before)"] = dense_loop
    times = time_interleaved(fns, repeats, cooldown=cooldown)
    return {name: {"median_s": median(ts), "repeats_s": ts} for name, ts in times.items()}


@register("binary", "binary-operand products vs dense BLAS: crossover density per shape",
          results_file="binary_crossover.json")
def main(args) -> int:
    quick = bool(getattr(args, "quick", False))
    repeats = args.repeats or (3 if quick else 9)
    env = environment()
    print("fastgen binary_matmul vs BLAS ?gemm (SciPy's, which the RBM loops call)")
    print(format_environment(env))
    print(f"median of {repeats} interleaved repeats; ratio = BLAS time / binary time (> 1: binary wins)")
    rng = np.random.default_rng(0)
    scenarios = {}
    for dtype in (np.float32, np.float64):
        for rows, K, N, what in SHAPES:
            points, cross = crossover(rows, K, N, dtype, repeats, rng)
            name = f"{np.dtype(dtype).name} [{rows}x{K}] @ [{K}x{N}]"
            ratios = "  ".join(f"{p['density']:g}:{p['blas_over_binary']:.2f}" for p in points)
            print(f"\n{name}  ({what})\n  BLAS/binary by density  {ratios}\n  BLAS {points[0]['blas_s'] * 1e6:.0f} us; "
                  f"binary wins below density {cross if cross is not None else '> 1'}")
            scenarios[name] = {"what": what, "dtype": np.dtype(dtype).name, "shape": [rows, K, N],
                               "points": points, "crossover_density": cross}
    from .common import DEFAULT_COOLDOWN_S
    from .rbm import MNIST_QUICK_ROWS, MNIST_TRAIN_ROWS, load_binary_mnist

    X32, source = load_binary_mnist(MNIST_QUICK_ROWS if quick else MNIST_TRAIN_ROWS)
    if X32 is None:
        print(f"\nskipped the in-loop sweep: {source}")
    else:
        for dtype in ("float32", "float64"):
            sweep = loop_sweep(X32.astype(dtype), repeats, DEFAULT_COOLDOWN_S)
            base = sweep["dense loop (before)"]["median_s"]
            print(f"\nPCD-1 epoch, binarized MNIST {X32.shape[0]}x784 -> 500, batch 100, {dtype}: "
                  f"the loops' density limit (median of {repeats})")
            for name, row in sweep.items():
                print(f"  {name:<32}{row['median_s']:>9.4f} s  {row['median_s'] / base:>6.2f}x dense loop")
            scenarios[f"loop_sweep_{dtype}"] = sweep
    document = results_document("binary", env, {"repeats": repeats, "quick": quick}, scenarios)
    if getattr(args, "json", False):
        path = write_json(document, getattr(args, "out", None) or RESULTS_DIR / "binary_crossover.json")
        print(f"\nwrote {path}")
    return 0
