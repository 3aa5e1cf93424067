"""RBM benchmarks on a CUDA GPU (``python -m bench rbm --device cuda [--json]``).

E. One PCD-1 epoch on binarized MNIST (9,000 x 784 -> 500 hidden, float32), batch 100 and batch
   1000: fastgen's trainer on CuPy arrays (epoch replayed as a CUDA graph after the warm-up), a
   plain PyTorch eager implementation of the same algorithm, learnergy's RBM (use_gpu=True; its
   CD-1 with an autograd step, the closest it has to PCD-1), and the floor: the five cuBLAS GEMMs
   per batch PCD-1 cannot avoid, into preallocated arrays.
F. k = 25 block-Gibbs steps for 100 and for 10,000 chains on the 784 -> 500 RBM: fastgen's gibbs
   op (method auto), PyTorch eager, learnergy's gibbs_sampling (steps=25), and the floor (two
   cuBLAS GEMMs per step).

Every implementation ends its timed call with a device synchronisation; timings are medians of
interleaved repeats in one process (bench/common.py). float32 GEMMs run without TF32 everywhere
(CuPy's default; torch.backends.cuda.matmul.allow_tf32 is set False) so the floor and the
implementations do the same arithmetic. Results go to bench/results/<gpu-name>.json with the
device named. The torch-eager and learnergy code paths take any torch device, so the test suite
runs them on the CPU (tests/cuda/test_bench_cuda.py).
"""
from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import numpy as np

from .common import (
    DEFAULT_COOLDOWN_S,
    RESULTS_DIR,
    environment,
    format_environment,
    format_table,
    format_targets,
    print_target_summary,
    results_document,
    skip_line,
    summarize,
    target,
    time_interleaved,
    write_json,
)

WHEELS = Path(__file__).resolve().parent / "wheels"
LEARNERGY_WHEEL = WHEELS / "learnergy-2.0.2-py3-none-any.whl"

FASTGEN = "fastgen (CUDA graph)"
TORCH = "PyTorch eager"
LEARNERGY = "learnergy RBM (use_gpu=True)"
FLOOR_EPOCH = "floor: 5 cuBLAS GEMMs/batch"
FLOOR_GIBBS = "floor: 2 cuBLAS GEMMs/step"

MAX_X_FLOOR = 1.3           # batch 1000 and 10,000 chains
MIN_VS_TORCH = 5.0          # batch 100 and 100 chains
MIN_VS_LEARNERGY = 5.0      # PCD-1 epochs
GIBBS_STEPS = 25
DEFAULT_REPEATS = 11
QUICK_REPEATS = 3


# ---- anchors written in torch (any device) --------------------------------------------------
def torch_pcd_epoch(X, n_hidden: int, batch_size: int, lr: float = 0.1, seed: int = 0):
    """A callable running one PCD-1 epoch in plain PyTorch eager on X's device: the algorithm of
    fastgen's trainer (positive phase on probabilities, one Gibbs step of the persistent chains,
    SGD on the mean statistics), written as a PyTorch user would."""
    import torch

    gen = torch.Generator(device=X.device).manual_seed(seed)
    n_visible = X.shape[1]
    W = torch.randn(n_hidden, n_visible, generator=gen, device=X.device, dtype=X.dtype) * 0.01
    b = torch.zeros(n_visible, device=X.device, dtype=X.dtype)
    c = torch.zeros(n_hidden, device=X.device, dtype=X.dtype)
    chains = torch.zeros(batch_size, n_hidden, device=X.device, dtype=X.dtype)
    state = {"W": W, "b": b, "c": c, "chains": chains}

    def run():
        W, b, c, chains = state["W"], state["b"], state["c"], state["chains"]
        with torch.no_grad():
            for start in range(0, X.shape[0], batch_size):
                v = X[start:start + batch_size]
                h_pos = torch.sigmoid(v @ W.T + c)
                v_neg = torch.bernoulli(torch.sigmoid(chains @ W + b), generator=gen)
                h_neg = torch.sigmoid(v_neg @ W.T + c)
                chains = torch.bernoulli(h_neg, generator=gen)
                W += lr * (h_pos.T @ v / v.shape[0] - h_neg.T @ v_neg / chains.shape[0])
                b += lr * (v.mean(0) - v_neg.mean(0))
                c += lr * (h_pos.mean(0) - h_neg.mean(0))
        state["chains"] = chains
        return W

    return run


def torch_gibbs(v0, W, b, c, steps: int, seed: int = 0):
    """``steps`` block-Gibbs steps v -> h -> v in PyTorch eager."""
    import torch

    gen = torch.Generator(device=v0.device).manual_seed(seed)

    def run():
        v = v0
        with torch.no_grad():
            for _ in range(steps):
                h = torch.bernoulli(torch.sigmoid(v @ W.T + c), generator=gen)
                v = torch.bernoulli(torch.sigmoid(h @ W + b), generator=gen)
        return v

    return run


def import_learnergy():
    """learnergy's RBM class, from an installed learnergy or from the wheel in bench/wheels/ (pure
    Python: imported straight from the zip, its declared dependencies are not needed by the RBM);
    (None, reason) when neither is there."""
    try:
        from learnergy.models.bernoulli import RBM
        return RBM, "installed"
    except ImportError:
        pass
    if LEARNERGY_WHEEL.is_file():
        sys.path.insert(0, str(LEARNERGY_WHEEL))
        try:
            from learnergy.models.bernoulli import RBM
            return RBM, str(LEARNERGY_WHEEL.relative_to(LEARNERGY_WHEEL.parents[2]))
        except ImportError as exc:
            return None, f"learnergy wheel did not import: {exc}"
    return None, "learnergy is not installed and bench/wheels/ has no learnergy wheel"


def learnergy_epoch(X, n_hidden: int, batch_size: int, lr: float = 0.1):
    """One epoch of learnergy's RBM.fit on X (a torch tensor; use_gpu when X is on CUDA)."""
    import torch
    from torch.utils.data import TensorDataset

    RBM, source = import_learnergy()
    if RBM is None:
        raise RuntimeError(source)
    model = RBM(n_visible=X.shape[1], n_hidden=n_hidden, steps=1, learning_rate=lr, use_gpu=X.is_cuda)
    dataset = TensorDataset(X, torch.zeros(X.shape[0], device=X.device))

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(dataset, batch_size=batch_size, epochs=1)

    return run


def learnergy_gibbs(v0, n_hidden: int, steps: int):
    """learnergy's gibbs_sampling with ``steps`` steps (h -> v -> h per step) from v0."""
    RBM, source = import_learnergy()
    if RBM is None:
        raise RuntimeError(source)
    model = RBM(n_visible=v0.shape[1], n_hidden=n_hidden, steps=steps, use_gpu=v0.is_cuda)

    def run():
        import torch

        with torch.no_grad():
            return model.gibbs_sampling(v0)

    return run


# ---- fastgen and the floor on CuPy ----------------------------------------------------------
def fastgen_epoch(Xc, n_hidden: int, batch_size: int, lr: float = 0.1, seed: int = 0):
    import cupy as cp

    from fastgen.models.rbm import RBM, ContrastiveDivergence
    from fastgen.random import Generator

    gen = Generator(seed)
    host = RBM.initialize(Xc.shape[1], n_hidden, dtype=Xc.dtype, generator=gen)
    rbm = RBM(*(cp.asarray(a) for a in (host.weights, host.visible_bias, host.hidden_bias)))
    trainer = ContrastiveDivergence(learning_rate=lr, n_chains=batch_size)
    trainer.prepare(rbm, batch_size)
    return lambda: trainer.run(rbm, Xc, batch_size, gen)


def cublas_floor_epoch(Xc, n_hidden: int, batch_size: int):
    """The five GEMMs per batch of bench/rbm.py's gemm_floor, on cuBLAS into preallocated arrays."""
    import cupy as cp

    from fastgen._native import cuda as _cuda

    nv, dtype = Xc.shape[1], Xc.dtype
    W = cp.asarray((np.random.default_rng(0).standard_normal((n_hidden, nv)) * 0.01).astype(dtype))
    h_pos = cp.empty((batch_size, n_hidden), dtype)
    h_chain = cp.asarray((np.random.default_rng(1).random((batch_size, n_hidden)) < 0.5).astype(dtype))
    v_neg = cp.empty((batch_size, nv), dtype)
    h_neg = cp.empty((batch_size, n_hidden), dtype)
    dW = cp.empty((n_hidden, nv), dtype)
    batches = [Xc[s:s + batch_size] for s in range(0, Xc.shape[0], batch_size)]

    def run():
        for v in batches:
            hp = h_pos[:v.shape[0]]
            _cuda.gemm("N", "T", v, W, hp)
            _cuda.gemm("N", "N", h_chain, W, v_neg)
            _cuda.gemm("N", "T", v_neg, W, h_neg)
            _cuda.gemm("T", "N", hp, v, dW)
            _cuda.gemm("T", "N", h_neg, v_neg, dW)

    return run


def cublas_floor_gibbs(v0c, Wc, steps: int):
    import cupy as cp

    from fastgen._native import cuda as _cuda

    h = cp.empty((v0c.shape[0], Wc.shape[0]), Wc.dtype)
    v = cp.empty_like(v0c)

    def run():
        vv = v0c
        for _ in range(steps):
            _cuda.gemm("N", "T", vv, Wc, h)
            _cuda.gemm("N", "N", h, Wc, v)
            vv = v

    return run


# ---- the suite ------------------------------------------------------------------------------
def _synced(fn, sync):
    def run():
        fn()
        sync()

    return run


def gpu_name() -> str:
    import cupy as cp

    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def results_path(name: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"
    return RESULTS_DIR / f"{slug}.json"


def _time(title, fns, repeats, cooldown, floor, reference, sync):
    fns = {k: _synced(f, sync) for k, f in fns.items()}
    times = time_interleaved(fns, repeats, cooldown=cooldown)
    summary = summarize(times, floor=floor, reference=reference)
    print()
    print(format_table(title, summary, floor=floor, reference=reference, reference_label=reference))
    return summary


def epoch_scenario(X, batch_size, repeats, cooldown, sync, n_hidden=500):
    import cupy as cp
    import torch

    Xc = cp.asarray(X)
    Xt = torch.from_numpy(X).cuda()
    fns = {FASTGEN: fastgen_epoch(Xc, n_hidden, batch_size), TORCH: torch_pcd_epoch(Xt, n_hidden, batch_size),
           FLOOR_EPOCH: cublas_floor_epoch(Xc, n_hidden, batch_size)}
    RBM, source = import_learnergy()
    if RBM is not None:
        fns[LEARNERGY] = learnergy_epoch(Xt, n_hidden, batch_size)
    else:
        skip_line(f"learnergy in E (batch {batch_size})", source)
    title = (f"E. PCD-1 epoch, binarized MNIST {X.shape[0]}x{X.shape[1]} -> {n_hidden}, batch {batch_size}, "
             f"float32 (median of {repeats})")
    summary = _time(title, fns, repeats, cooldown, FLOOR_EPOCH, TORCH, sync)
    targets = []
    fg = summary[FASTGEN]["median_s"]
    if batch_size >= 1000:
        targets.append(target(f"batch {batch_size}: fastgen <= {MAX_X_FLOOR}x the cuBLAS floor",
                              summary[FASTGEN]["x_floor"], "<=", MAX_X_FLOOR, "x"))
    else:
        targets.append(target(f"batch {batch_size}: fastgen >= {MIN_VS_TORCH:g}x faster than PyTorch eager",
                              summary[TORCH]["median_s"] / fg, ">=", MIN_VS_TORCH, "x"))
    if LEARNERGY in summary:
        targets.append(target(f"batch {batch_size}: fastgen >= {MIN_VS_LEARNERGY:g}x faster than learnergy",
                              summary[LEARNERGY]["median_s"] / fg, ">=", MIN_VS_LEARNERGY, "x"))
    print(format_targets(targets))
    return {"title": title, "batch_size": batch_size, "floor": FLOOR_EPOCH, "reference": TORCH,
            "learnergy": source, "implementations": summary, "targets": targets}


def gibbs_scenario(X, chains, repeats, cooldown, sync, n_hidden=500):
    import cupy as cp
    import torch

    from fastgen._native import cuda as _cuda
    from fastgen.ops import gibbs

    rng = np.random.default_rng(0)
    W = (rng.standard_normal((n_hidden, X.shape[1])) * 0.05).astype(np.float32)
    b = np.zeros(X.shape[1], np.float32)
    c = np.zeros(n_hidden, np.float32)
    rows = np.resize(np.arange(X.shape[0]), chains)
    v0 = np.ascontiguousarray(X[rows])
    Wc, bc, cc, v0c = (cp.asarray(a) for a in (W, b, c, v0))
    Wt, bt, ct, v0t = (torch.from_numpy(a).cuda() for a in (W, b, c, v0))
    method = _cuda.gibbs_method(chains, X.shape[1], n_hidden, GIBBS_STEPS, np.float32)
    fns = {FASTGEN: lambda: gibbs(v0c, Wc, bc, cc, GIBBS_STEPS, generator=1),
           TORCH: torch_gibbs(v0t, Wt, bt, ct, GIBBS_STEPS), FLOOR_GIBBS: cublas_floor_gibbs(v0c, Wc, GIBBS_STEPS)}
    RBM, source = import_learnergy()
    if RBM is not None:
        fns[LEARNERGY] = learnergy_gibbs(v0t, n_hidden, GIBBS_STEPS)
    title = (f"F. Gibbs sampling, {chains} chains x {GIBBS_STEPS} steps, 784 -> {n_hidden}, float32, "
             f"fastgen method {method} (median of {repeats})")
    summary = _time(title, fns, repeats, cooldown, FLOOR_GIBBS, TORCH, sync)
    fg = summary[FASTGEN]["median_s"]
    if chains >= 10_000:
        targets = [target(f"{chains} chains: fastgen <= {MAX_X_FLOOR}x the cuBLAS floor", summary[FASTGEN]["x_floor"],
                          "<=", MAX_X_FLOOR, "x")]
    else:
        targets = [target(f"{chains} chains: fastgen >= {MIN_VS_TORCH:g}x faster than PyTorch eager",
                          summary[TORCH]["median_s"] / fg, ">=", MIN_VS_TORCH, "x")]
    print(format_targets(targets))
    return {"title": title, "chains": chains, "steps": GIBBS_STEPS, "fastgen_method": method,
            "floor": FLOOR_GIBBS, "reference": TORCH, "implementations": summary, "targets": targets}


def run_cuda_suite(args) -> dict:
    """Scenarios E and F on the current CUDA device; SystemExit with a clear message without one."""
    from fastgen._native import cublas as _cublas, cuda as _cuda, graphs as _graphs

    reason = _cuda.unavailable_reason()
    if reason is not None:
        raise SystemExit(f"python -m bench rbm --device cuda needs a CUDA device: {reason}")
    try:
        import torch
    except ImportError:
        raise SystemExit("python -m bench rbm --device cuda needs torch (the PyTorch eager anchor)") from None
    if not torch.cuda.is_available():
        raise SystemExit("python -m bench rbm --device cuda needs torch with CUDA (the PyTorch eager anchor)")
    import cupy as cp

    from .rbm import MNIST_QUICK_ROWS, MNIST_TRAIN_ROWS, load_binary_mnist

    torch.backends.cuda.matmul.allow_tf32 = False
    quick = bool(getattr(args, "quick", False))
    repeats = args.repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    cooldown = getattr(args, "cooldown", None)
    cooldown = 0.0 if cooldown is None else cooldown   # no BLAS threads to let settle on a GPU

    def sync():
        cp.cuda.Device().synchronize()
        torch.cuda.synchronize()

    env = environment()
    env["gpu"] = gpu_name()
    env["cupy"] = cp.__version__
    env["torch"] = torch.__version__
    env["cuda_runtime"] = cp.cuda.runtime.runtimeGetVersion()
    env["cuda_driver"] = cp.cuda.runtime.driverGetVersion()
    env["nvrtc"] = ".".join(str(v) for v in _cuda.nvrtc_binding().getVersion())
    env["cublas"] = _cublas.version()
    print(f"fastgen RBM benchmarks (CUDA: {env['gpu']})" + (" -- QUICK mode" if quick else ""))
    print(format_environment(env))
    scenarios: dict = {}
    skipped: list = []
    X, source = load_binary_mnist(MNIST_QUICK_ROWS if quick else MNIST_TRAIN_ROWS)
    if X is None:
        skipped.append(skip_line("E/F on binarized MNIST", source))
    else:
        only = (getattr(args, "only", None) or "EF").upper()
        if "E" in only:
            for batch in (100, 1000):
                scenarios[f"E_pcd1_mnist_batch{batch}_float32"] = epoch_scenario(X, batch, repeats, cooldown, sync)
        if "F" in only:
            for chains in (100, 10_000):
                scenarios[f"F_gibbs_{chains}_chains_float32"] = gibbs_scenario(X, chains, repeats, cooldown, sync)
    settings = {"quick": quick, "repeats": repeats, "cooldown_s": cooldown, "warmup": 1, "device": "cuda",
                "timer": "time.perf_counter after device synchronisation", "statistic": "median", "tf32": False}
    document = results_document("rbm-cuda", env, settings, scenarios)
    # whether the timed fastgen runs were graph replays (a failed capture falls back to eager)
    document["cuda_graphs"] = dict(_graphs.STATS)
    print(f"CUDA graphs: {document['cuda_graphs']}")
    if skipped:
        document["skipped"] = skipped
    print_target_summary(scenarios)
    return document


def main_cuda(args) -> int:
    document = run_cuda_suite(args)
    if getattr(args, "json", False):
        path = write_json(document, getattr(args, "out", None) or results_path(document["environment"]["gpu"]))
        print(f"\nwrote {path}")
    return 0


__all__ = ["run_cuda_suite", "main_cuda", "torch_pcd_epoch", "torch_gibbs", "learnergy_epoch", "learnergy_gibbs",
           "import_learnergy", "DEFAULT_COOLDOWN_S"]
