"""The sparse-input linear layer's kernel against the dense GEMM, and the density crossover
behind ``fastgen.ops.sparse_linear.FORWARD_MAX_DENSITY`` / ``BACKWARD_MAX_DENSITY``.

``python -m bench.sparse_linear [--repeats N]`` (from the repository root). x is 128 x 784,
weight_t 784 x 400, float32 (the VAE's first layer at batch 128): the MNIST batch of
../shared/data, then x with nonzeros scattered uniformly at each density. Rows:

* ``kernel fwd``: the compiled kernel forced at every density (``forward_numpy``, max_density 1);
* ``x @ W_t``, ``F.linear``: torch's dense forward (MKL), the second what nn.Linear runs;
* ``kernel bwd``: the weight gradient ``x.T @ grad_y`` and the bias gradient, forced;
* ``x.T @ g``: torch's dense weight gradient (what nn.Linear's backward runs, as ``g.T @ x``);
* ``op fwd+bwd`` and ``nn.Linear fwd+bwd``: the whole custom op with its dispatcher and autograd
  against nn.Linear (x does not require grad, as for a first layer).

Each row is timed per call, 10 calls per timing, interleaved; medians in microseconds, default
thread count. Timings go to stdout only: this is a measurement for the kernel's constants, not a
suite with targets.
"""
from __future__ import annotations

import argparse
import time

ROWS, IN, OUT = 128, 784, 400
DENSITIES = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)


def _time(fns: dict, repeats: int, calls: int = 10) -> dict:
    import statistics

    for fn in fns.values():
        for _ in range(3):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls * 1e6)
    return {name: statistics.median(t) for name, t in times.items()}


def _rows(x, w_t, b, g, repeats: int) -> dict:
    import torch
    import torch.nn.functional as F

    from fastgen.ops.sparse_linear import backward_numpy, forward_numpy

    xn, wn, bn, gn = (t.numpy() for t in (x, w_t, b, g))
    w = w_t.t().contiguous()
    return _time({
        "kernel fwd": lambda: forward_numpy(xn, wn, bn, 1.0),
        "x @ W_t": lambda: x @ w_t,
        "F.linear": lambda: F.linear(x, w, b),
        "kernel bwd": lambda: backward_numpy(xn, gn, True, True, 1.0),
        "x.T @ g": lambda: x.t() @ g,
        "g.T @ x": lambda: g.t() @ x,
    }, repeats)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)

    import fastgen._native.cpu  # noqa: F401  (sets OMP_WAIT_POLICY before torch's OpenMP starts)
    import torch

    from fastgen.datasets import load_mnist_shared
    from fastgen.torch.nn.layers import SparseInputLinear

    from .common import data_dir

    torch.manual_seed(0)
    layer = SparseInputLinear(IN, OUT)
    linear = torch.nn.Linear(IN, OUT)
    linear.load_state_dict({"weight": layer.weight_t.detach().t(), "bias": layer.bias.detach()})
    w_t, b = layer.weight_t.detach(), layer.bias.detach()
    g = torch.randn(ROWS, OUT)
    print(f"x {ROWS} x {IN} @ weight_t {IN} x {OUT}, float32, {torch.get_num_threads()} threads; "
          f"medians of {args.repeats} timings of 10 calls, microseconds")
    path = data_dir() / "mnist_test_10k.npz"
    if path.is_file():
        x = torch.from_numpy(load_mnist_shared(path, binary=False)[:ROWS].copy())
        density = float((x != 0).float().mean())
        t = _rows(x, w_t, b, g, args.repeats)
        print(f"\nMNIST batch (density {density:.3f}):")
        for name, us in t.items():
            print(f"  {name:<12} {us:8.0f}")
        print(f"  forward: kernel / x @ W_t {t['kernel fwd'] / t['x @ W_t']:.2f}, / F.linear "
              f"{t['kernel fwd'] / t['F.linear']:.2f};  backward: kernel / x.T @ g "
              f"{t['kernel bwd'] / t['x.T @ g']:.2f}, / g.T @ x {t['kernel bwd'] / t['g.T @ x']:.2f}")

        def op_step():
            layer(x).backward(g)

        def linear_step():
            linear(x).backward(g)

        t = _time({"op fwd+bwd": op_step, "nn.Linear fwd+bwd": linear_step}, args.repeats)
        print(f"  op fwd+bwd (dispatcher, autograd) {t['op fwd+bwd']:.0f}, nn.Linear fwd+bwd "
              f"{t['nn.Linear fwd+bwd']:.0f}: {t['op fwd+bwd'] / t['nn.Linear fwd+bwd']:.2f}")
    print("\nuniformly scattered nonzeros: kernel time / dense time (forward vs F.linear, backward vs g.T @ x)")
    print("  density   kernel fwd   F.linear  ratio   kernel bwd    g.T @ x  ratio")
    gen = torch.Generator().manual_seed(1)
    for d in DENSITIES:
        mask = torch.rand(ROWS, IN, generator=gen) < d
        x = torch.rand(ROWS, IN, generator=gen) * mask
        t = _rows(x, w_t, b, g, args.repeats)
        print(f"  {d:7.2f} {t['kernel fwd']:12.0f} {t['F.linear']:10.0f} {t['kernel fwd'] / t['F.linear']:6.2f} "
              f"{t['kernel bwd']:12.0f} {t['g.T @ x']:10.0f} {t['kernel bwd'] / t['g.T @ x']:6.2f}")


if __name__ == "__main__":
    main()
