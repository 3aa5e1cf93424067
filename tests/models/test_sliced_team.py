"""The sliced training loop's team governor (csrc/rbm_sliced.cpp): a pass runs as parallel regions
of kChunkBatches batches, and a region runs on one thread instead of the full team after a
full-team region waited too long at its step barrier (a busy machine).

The policy is driven here through its two entry points with made-up measurements, so these tests
do not depend on the machine's load; the results must not depend on the teams chosen at all."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastgen._native import cpu as _cpu

C = _cpu.C
SHAPE, OTHER_SHAPE = 11, 12


@pytest.fixture(autouse=True)
def fresh_governor():
    adaptive = C.sliced_adaptive()
    C.set_sliced_adaptive(True)
    C.sliced_team_reset()
    yield
    C.set_sliced_adaptive(adaptive)
    C.sliced_team_reset()


def teams(n, full_team=2, shape=SHAPE):
    return [C.sliced_team_for_region(full_team, shape) for _ in range(n)]


def test_a_long_barrier_wait_sends_the_next_regions_to_one_thread_then_the_full_team_is_tried():
    assert teams(3) == [2, 2, 2]
    limit = C.sliced_team_stats()["max_wait_fraction"]
    C.sliced_team_record(2, 2, limit + 0.01, 1000.0)
    backoff = 4
    assert teams(backoff + 2) == [1] * backoff + [2, 2]
    stats = C.sliced_team_stats()
    assert (stats["refusals"], stats["reduced_regions"], stats["backoff"]) == (1, backoff, 2 * backoff)


def test_a_wait_at_the_limit_keeps_the_full_team():
    C.sliced_team_for_region(2, SHAPE)
    limit = C.sliced_team_stats()["max_wait_fraction"]
    C.sliced_team_record(2, 2, limit, 1e12)
    assert teams(4) == [2, 2, 2, 2]
    assert C.sliced_team_stats()["refusals"] == 0


def test_refusals_double_the_one_thread_regions_up_to_64_and_acceptances_halve_them():
    C.sliced_team_for_region(2, SHAPE)
    backoffs = []
    for _ in range(7):
        C.sliced_team_record(2, 2, 0.9, 1000.0)
        backoffs.append(C.sliced_team_stats()["reduced_left"])
        teams(backoffs[-1])  # run the one-thread regions
    assert backoffs == [4, 8, 16, 32, 64, 64, 64]
    C.sliced_team_record(2, 2, 0.1, 1000.0)
    assert C.sliced_team_stats()["backoff"] == 32
    for _ in range(5):
        C.sliced_team_record(2, 2, 0.1, 1000.0)
    assert C.sliced_team_stats()["backoff"] == 4


def test_the_full_team_stays_when_one_thread_was_measured_slower_per_batch():
    C.sliced_team_for_region(2, SHAPE)
    C.sliced_team_record(1, 2, 0.0, 500.0)
    C.sliced_team_record(1, 2, 0.0, 700.0)
    assert C.sliced_team_stats()["one_thread_ns_per_batch"] == pytest.approx(600.0)
    C.sliced_team_record(2, 2, 0.9, 550.0)  # waited, and still faster than one thread
    assert teams(2) == [2, 2]
    C.sliced_team_record(2, 2, 0.9, 650.0)  # waited, and slower than one thread
    assert teams(1) == [1]


def test_measurements_are_forgotten_when_the_shape_changes():
    C.sliced_team_for_region(2, SHAPE)
    C.sliced_team_record(1, 2, 0.0, 500.0)
    C.sliced_team_record(2, 2, 0.9, 1000.0)
    assert teams(1, shape=OTHER_SHAPE) == [2]
    stats = C.sliced_team_stats()
    assert (stats["reduced_left"], stats["one_thread_ns_per_batch"], stats["backoff"]) == (0, 0.0, 4)


def test_a_one_thread_team_and_the_fixed_schedule_are_left_alone():
    C.sliced_team_for_region(2, SHAPE)
    C.sliced_team_record(2, 2, 0.9, 1000.0)
    assert teams(3, full_team=1) == [1, 1, 1]
    C.set_sliced_adaptive(False)
    assert teams(3) == [2, 2, 2]
    C.sliced_team_record(2, 2, 0.9, 1000.0)  # the fixed schedule's regions change no policy state
    assert (C.sliced_team_stats()["refusals"], C.sliced_team_stats()["backoff"]) == (1, 8)
    C.set_sliced_adaptive(True)
    assert teams(1) == [1]


_MIXED_TEAMS_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from fastgen._native import cpu as _cpu
    from fastgen.ops import cd_epoch
    from fastgen.random import Generator
    C = _cpu.C

    def run(dtype, schedule):
        rng = np.random.default_rng(3)
        W = rng.normal(0, 0.2, (200, 45)).astype(dtype)        # 4 slices
        b, c = rng.normal(0, 0.5, 45).astype(dtype), rng.normal(0, 0.5, 200).astype(dtype)
        vw, vb, vc = np.zeros_like(W), np.zeros_like(b), np.zeros_like(c)
        chains = np.zeros((6, 200), dtype)
        data = (rng.random((1001, 45)) * (rng.random((1001, 45)) < 0.5)).astype(dtype)  # 251 batches: 8 regions
        def epoch(W, b, c, vw, vb, vc, chains, offset):
            cd_epoch(W, b, c, data, batch_size=4, cd_k=2, learning_rate=0.05, momentum=0.5, weight_decay=0.01,
                     chains=chains, velocities=(vw, vb, vc), generator=Generator(7, offset), binary_products=True,
                     hidden_slices=True)
        C.sliced_team_reset()
        C.set_sliced_adaptive(schedule != "fixed")
        if schedule == "mixed":
            epoch(*(x.copy() for x in (W, b, c, vw, vb, vc, chains)), 0)  # the governor learns the shape
            C.sliced_team_record(3, 3, 0.9, 1e12)                        # then its next regions run on one thread
        before = C.sliced_team_stats()
        epoch(W, b, c, vw, vb, vc, chains, 1)
        after = C.sliced_team_stats()
        return dict(W=W, b=b, c=c, vw=vw, vb=vb, vc=vc, chains=chains,
                    regions=np.array([after["regions"] - before["regions"]]),
                    reduced=np.array([after["reduced_regions"] - before["reduced_regions"]]))

    out = {"max_threads": np.array([C.max_threads()])}
    for dtype in (np.float32, np.float64):
        for schedule in ("fixed", "mixed"):
            for name, x in run(dtype, schedule).items():
                out[f"{np.dtype(dtype).name}_{schedule}_{name}"] = x
    np.savez(sys.argv[1], **out)
    """
)


def test_regions_on_one_thread_between_full_team_regions_change_no_bit(tmp_path):
    # Three threads for four slices; the mixed pass runs at least its first four regions on one.
    results = {}
    for threads in ("1", "3"):
        path = tmp_path / f"threads{threads}.npz"
        env = dict(os.environ, OMP_NUM_THREADS=threads, FASTGEN_DENSE_PRODUCTS="0")
        subprocess.run([sys.executable, "-c", _MIXED_TEAMS_SCRIPT, str(path)], check=True, env=env, timeout=300)
        results[threads] = np.load(path)
    assert int(results["3"]["max_threads"][0]) == 3
    for dtype in ("float32", "float64"):
        three = results["3"]
        assert int(three[f"{dtype}_fixed_regions"][0]) == int(three[f"{dtype}_mixed_regions"][0]) == 8
        assert int(three[f"{dtype}_fixed_reduced"][0]) == 0
        assert int(three[f"{dtype}_mixed_reduced"][0]) >= 4
        for name in ("W", "b", "c", "vw", "vb", "vc", "chains"):
            reference = results["1"][f"{dtype}_fixed_{name}"]
            for schedule in ("fixed", "mixed"):
                assert three[f"{dtype}_{schedule}_{name}"].tobytes() == reference.tobytes(), (
                    f"{dtype} {name} differs ({schedule} teams on 3 threads vs 1 thread)")


@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-5), (np.float64, 1e-12)])
def test_a_pass_over_many_regions_matches_the_per_product_loop(dtype, tol):
    # 251 batches: eight regions, each re-reading the parameters, chains and velocities the
    # previous one wrote, and drawing from the stream at its batches' offsets.
    from fastgen.ops import cd_epoch
    from fastgen.random import Generator

    rng = np.random.default_rng(8)
    W0 = rng.normal(0, 0.2, (150, 37)).astype(dtype)
    b0, c0 = rng.normal(0, 0.5, 37).astype(dtype), rng.normal(0, 0.5, 150).astype(dtype)
    data = (rng.random((1001, 37)) < 0.4).astype(dtype)
    results = []
    for hidden_slices in (True, False):
        W, b, c = W0.copy(), b0.copy(), c0.copy()
        velocities = (np.zeros_like(W), np.zeros_like(b), np.zeros_like(c))
        chains = np.zeros((5, 150), dtype)
        cd_epoch(W, b, c, data, batch_size=4, cd_k=2, learning_rate=0.05, momentum=0.5, chains=chains,
                 velocities=velocities, generator=Generator(2, 9), binary_products=True,
                 hidden_slices=hidden_slices)
        results.append((W, b, c, *velocities, chains))
    regions = C.sliced_team_stats()["regions"]
    assert regions == 8
    for sliced, per_product in zip(*results):
        np.testing.assert_allclose(sliced, per_product, rtol=tol, atol=tol)
