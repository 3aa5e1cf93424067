"""Gibbs sampling of the q-state Potts model, written in numba on fastgen's random stream.

Each site of an L x L periodic lattice holds one of q states; its energy is -J times the number of
its four neighbours in the same state. A checkerboard sweep updates the black sites, then the white
ones (sites of one colour do not touch each other, so a row-parallel ``prange`` is exact): a site
takes state k with probability proportional to exp(beta * J * n_k), n_k its neighbours in state k,
drawn by inverting the cumulative weights with one uniform.

The uniform of site i in half-sweep h is ``fastgen.numba.uniform(seed, 2 * sweep + h, i)``: it
depends on nothing else, so a run gives the same lattice on any number of threads. The same sweep
on numba's ``np.random.random()`` (per-thread generators) does not: see ``python -m bench numba``.

    python examples/potts_numba.py --size 128 --states 3 --sweeps 200 [--png lattice.png]
"""
from __future__ import annotations

import argparse
import math

import numba
import numpy as np

import fastgen.numba as fn


def make_sweep(draw_uniform):
    """A checkerboard Gibbs sweep on the uniforms of ``draw_uniform(seed, offset, index)``."""

    @numba.njit(parallel=True)
    def sweep(spins, beta, n_states, seed, first_offset):
        size = spins.shape[0]
        for colour in range(2):
            offset = first_offset + colour
            for r in numba.prange(size):
                weights = np.empty(n_states)
                for c in range((r + colour) % 2, size, 2):
                    weights[:] = 0.0
                    for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                        weights[spins[(r + dr) % size, (c + dc) % size]] += 1.0
                    top = weights.max()
                    total = 0.0
                    for k in range(n_states):  # exp(beta * n_k), scaled by the largest
                        weights[k] = math.exp(beta * (weights[k] - top))
                        total += weights[k]
                    u = draw_uniform(seed, offset, r * size + c) * total
                    k = 0
                    while k < n_states - 1 and u >= weights[k]:
                        u -= weights[k]
                        k += 1
                    spins[r, c] = k

    return sweep


@numba.njit
def fastgen_uniform(seed, offset, index):
    return fn.uniform(seed, offset, index)


@numba.njit
def numba_uniform(seed, offset, index):  # numba's per-thread Mersenne Twister; ignores the counters
    return np.random.random()


sweep_fastgen = make_sweep(fastgen_uniform)
sweep_numba_random = make_sweep(numba_uniform)


def critical_beta(n_states: int) -> float:
    """The square lattice's transition point, beta_c = log(1 + sqrt(q)) (J = 1)."""
    return math.log1p(math.sqrt(n_states))


def run(size: int, n_states: int, beta: float, n_sweeps: int, seed: int, sweep=sweep_fastgen) -> np.ndarray:
    """The lattice after ``n_sweeps`` sweeps from a random start (state k at site i from the
    stream's offset 0, so the start is reproducible too)."""
    spins = np.empty((size, size), np.int64)
    seed = np.uint64(seed)  # every seed below 2**64 (numba's int64 would stop at 2**63)
    fill_start(spins, n_states, seed)
    for t in range(n_sweeps):
        sweep(spins, beta, n_states, seed, 1 + 2 * t)
    return spins


@numba.njit(parallel=True)
def fill_start(spins, n_states, seed):
    size = spins.shape[0]
    for r in numba.prange(size):
        for c in range(size):
            spins[r, c] = min(n_states - 1, int(fn.uniform(seed, 0, r * size + c) * n_states))


def order_parameter(spins: np.ndarray, n_states: int) -> float:
    """(q * largest state fraction - 1) / (q - 1): 0 when disordered, 1 when one state fills the lattice."""
    largest = np.bincount(spins.ravel(), minlength=n_states).max() / spins.size
    return (n_states * largest - 1) / (n_states - 1)


def energy_per_site(spins: np.ndarray) -> float:
    same = (spins == np.roll(spins, 1, 0)).sum() + (spins == np.roll(spins, 1, 1)).sum()
    return -float(same) / spins.size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="lattice side L (default 128)")
    parser.add_argument("--states", type=int, default=3, help="q (default 3)")
    parser.add_argument("--beta", type=float, default=None, help="inverse temperature (default: 1.05 beta_c)")
    parser.add_argument("--sweeps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", default=None, help="draw the final lattice to this PNG (matplotlib)")
    args = parser.parse_args(argv)
    if args.size < 2 or args.size % 2:
        parser.error(f"--size must be an even number >= 2 (the checkerboard wraps around), got {args.size}")
    if args.states < 2:
        parser.error(f"--states must be >= 2, got {args.states}")
    beta = 1.05 * critical_beta(args.states) if args.beta is None else args.beta

    threads = numba.get_num_threads()
    spins = run(args.size, args.states, beta, args.sweeps, args.seed)
    numba.set_num_threads(1)
    one_thread = run(args.size, args.states, beta, args.sweeps, args.seed)
    numba.set_num_threads(threads)
    print(f"Potts q={args.states}, {args.size}x{args.size}, beta={beta:.4f} (beta_c={critical_beta(args.states):.4f}), "
          f"{args.sweeps} sweeps, seed {args.seed}")
    print(f"energy per site {energy_per_site(spins):.4f}, order parameter {order_parameter(spins, args.states):.4f}")
    print(f"same lattice on {threads} threads and on 1 thread: {np.array_equal(spins, one_thread)}")
    if args.png:
        try:
            import matplotlib
        except ImportError:
            print("--png needs matplotlib: pip install matplotlib")
            return 1

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 5))
        ax.imshow(spins, cmap="viridis", interpolation="nearest")
        ax.set_title(f"q={args.states} Potts, beta={beta:.3f}, {args.sweeps} sweeps")
        ax.axis("off")
        fig.savefig(args.png, dpi=100, bbox_inches="tight")
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
