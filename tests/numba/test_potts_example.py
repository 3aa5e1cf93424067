"""examples/potts_numba.py: its sweep samples the Potts conditionals on fastgen's stream (checked
against a NumPy sweep on the Generator's uniforms), gives one lattice on any thread count, and
its command runs on a tiny lattice."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

numba = pytest.importorskip("numba")

import fastgen  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "potts_numba.py"


@pytest.fixture(scope="module")
def potts():
    spec = importlib.util.spec_from_file_location("potts_numba", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_sweep(spins, beta, n_states, seed, first_offset):
    """One checkerboard sweep in NumPy on the uniforms of Generator(seed, offset)."""
    size = spins.shape[0]
    rows, cols = np.indices(spins.shape)
    for colour in range(2):
        u = fastgen.Generator(seed, first_offset + colour).uniform(size * size).reshape(size, size)
        counts = np.zeros((n_states, size, size))
        for shift, axis in ((1, 0), (-1, 0), (1, 1), (-1, 1)):
            neighbour = np.roll(spins, shift, axis)
            for k in range(n_states):
                counts[k] += neighbour == k
        weights = np.exp(beta * (counts - counts.max(axis=0)))
        cumulative = np.cumsum(weights, axis=0)
        drawn = np.minimum((u * cumulative[-1] >= cumulative).sum(axis=0), n_states - 1)
        mask = (rows + cols) % 2 == colour
        spins[mask] = drawn[mask]
    return spins


def test_sweep_matches_the_numpy_reference(potts):
    size, q, beta, seed = 32, 4, 0.9, 5
    spins = potts.run(size, q, beta, 0, seed)
    expected = spins.copy()
    for t in range(5):
        potts.sweep_fastgen(spins, beta, q, seed, 1 + 2 * t)
        reference_sweep(expected, beta, q, seed, 1 + 2 * t)
        # the two round exp and the running sums differently, so a uniform within a rounding of a
        # boundary may pick the neighbouring state; anything more is a wrong sampler
        assert np.mean(spins == expected) > 0.995
        expected = spins.copy()


def test_same_lattice_on_one_and_two_threads_and_across_runs(potts):
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = potts.run(24, 3, 1.0, 20, 7)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = potts.run(24, 3, 1.0, 20, 7)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, potts.run(24, 3, 1.0, 20, 7))
    assert not np.array_equal(one, potts.run(24, 3, 1.0, 20, 8))


def test_physics_at_the_two_limits(potts):
    # beta = 0: independent uniform states, energy per site -2/q (two bonds per site)
    hot = potts.run(64, 3, 0.0, 10, 1)
    fractions = np.bincount(hot.ravel(), minlength=3) / hot.size
    np.testing.assert_allclose(fractions, 1 / 3, atol=0.02)
    assert abs(potts.energy_per_site(hot) + 2 / 3) < 0.03
    # far below the transition temperature: large ordered domains, energy near its minimum -2
    cold = potts.run(32, 3, 3 * potts.critical_beta(3), 200, 1)
    assert potts.energy_per_site(cold) < -1.8
    assert potts.critical_beta(2) == pytest.approx(math.log(1 + math.sqrt(2)))


def test_command_runs_on_a_tiny_lattice(potts, capsys, tmp_path):
    assert potts.main(["--size", "8", "--states", "3", "--sweeps", "5", "--png", str(tmp_path / "l.png")]) == 0
    out = capsys.readouterr().out
    assert "same lattice on" in out and "True" in out and "energy per site" in out
    assert (tmp_path / "l.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        potts.main(["--size", "7"])
