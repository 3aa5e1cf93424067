"""The per-call cost of the two ways to register a torch op, behind
:mod:`fastgen.torch.ops._library`.

``python -m bench.torch_dispatch [--repeats N] [--calls N]`` (from the repository root). One
trivial op (``x * 2`` on a 64 x 64 float64 tensor, backward ``2 * grad``) is registered twice:

* ``custom_op``: ``torch.library.custom_op`` with ``register_fake`` and ``register_autograd``;
* ``fastgen``: :func:`fastgen.torch.ops._library.custom_op`, the helper every fastgen op uses (a
  ``torch.library.Library`` fragment with one ``autograd.Function`` as its autograd kernel).

Rows: ``forward`` (no input requires grad), ``forward+backward`` (the input requires grad;
``.sum().backward()`` included) and ``kernel`` (the bare ``x * 2``, the floor). Each row is
timed per call, ``--calls`` calls per timing, interleaved; medians in microseconds. Timings go to
stdout only: a measurement for the helper's choice of route, not a suite with targets.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch  # at module level: the ops' annotations name it


def _time(fns: dict, repeats: int, calls: int) -> dict:
    for fn in fns.values():
        for _ in range(10):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls * 1e6)
    return {name: statistics.median(t) for name, t in times.items()}


def _register_both():
    """``(custom_op's op, the helper's op)``: the same kernel, fake and backward."""
    from fastgen.torch.ops._library import custom_op

    @torch.library.custom_op("fastgen_bench::scale", mutates_args=(), device_types="cpu")
    def scale(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @custom_op("bench_scale")
    def bench_scale(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    def backward(ctx, grad):
        return grad * 2

    def setup_context(ctx, inputs, output):
        pass

    for op in (scale, bench_scale):
        op.register_fake(lambda x: torch.empty_like(x))
        op.register_autograd(backward, setup_context=setup_context)
    return torch.ops.fastgen_bench.scale, torch.ops.fastgen.bench_scale


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    with_custom_op, with_helper = _register_both()
    x = torch.randn(64, 64, dtype=torch.float64)
    x_grad = x.clone().requires_grad_()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; microseconds per call (median of "
          f"{args.repeats} x {args.calls} calls)")
    forward = _time({"kernel": lambda: x * 2, "custom_op": lambda: with_custom_op(x),
                     "fastgen": lambda: with_helper(x)}, args.repeats, args.calls)
    both = _time({"custom_op": lambda: with_custom_op(x_grad).sum().backward(),
                  "fastgen": lambda: with_helper(x_grad).sum().backward()}, args.repeats, max(1, args.calls // 4))
    print(f"  {'route':<12}{'forward':>10}{'forward+backward':>19}")
    print(f"  {'kernel':<12}{forward['kernel']:>10.1f}{'':>19}")
    for route in ("custom_op", "fastgen"):
        print(f"  {route:<12}{forward[route]:>10.1f}{both[route]:>19.1f}")


if __name__ == "__main__":
    main()
