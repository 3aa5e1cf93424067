"""The small-batch training loop over slices of hidden units (csrc/rbm_sliced.cpp) against the
NumPy reference pass, against the per-product loop it stands in for, and across thread counts.

It runs when data and chains together are at most C.sliced_max_rows rows a batch (scikit-learn's
batch_size=10); hidden units are cut into slices of 64, so the sizes below give several slices,
a partial last slice and partial vectors."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import reference as ref
from fastgen._native import cpu as _cpu
from fastgen.ops import cd_epoch
from fastgen.random import Generator

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 2e-5, np.float64: 1e-12}
LOOPS = ["sliced", "per-product"]


def params(n_visible, n_hidden, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.2, (n_hidden, n_visible)).astype(dtype), rng.normal(0, 0.5, n_visible).astype(dtype),
            rng.normal(0, 0.5, n_hidden).astype(dtype))


def train(data, W, b, c, batch_size, *, k=1, chains=None, lr=0.1, momentum=0.0, weight_decay=0.0, seed=4,
          offset=5, loop="sliced"):
    """One pass of the compiled trainer on copies; returns (W, b, c, velocities, chains)."""
    W, b, c = W.copy(), b.copy(), c.copy()
    velocities = tuple(np.zeros_like(x) for x in (W, b, c)) if momentum else None
    chains = None if chains is None else chains.copy()
    cd_epoch(W, b, c, data, batch_size=batch_size, cd_k=k, learning_rate=lr, momentum=momentum,
             weight_decay=weight_decay, chains=chains, velocities=velocities, generator=Generator(seed, offset),
             binary_products=True, hidden_slices=loop == "sliced")
    return W, b, c, velocities or (None, None, None), chains


CASES = [  # (name, k, persistent, momentum, weight_decay, fractional data)
    ("PCD-1", 1, True, 0.0, 0.0, False),
    ("PCD-1 fractional data", 1, True, 0.0, 0.0, True),
    ("PCD-2 momentum decay", 2, True, 0.6, 0.01, True),
    ("CD-1", 1, False, 0.0, 0.0, False),
    ("CD-3 momentum", 3, False, 0.5, 0.0, True),
]


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,k,persistent,momentum,weight_decay,fractional", CASES, ids=[c[0] for c in CASES])
def test_small_batch_loops_match_the_numpy_reference(loop, dtype, name, k, persistent, momentum, weight_decay,
                                                     fractional):
    # 37 visible, 150 hidden (slices of 64, 64 and 22), batches of 7 over 23 rows (the last has 2),
    # 5 persistent chains: at most 12 rows a batch, well inside the sliced loop's range.
    rng = np.random.default_rng(11)
    W, b, c = params(37, 150, dtype)
    data = (rng.random((23, 37)) * (rng.random((23, 37)) < 0.5) if fractional
            else (rng.random((23, 37)) < 0.3)).astype(dtype)
    chains = (rng.random((5, 150)) < 0.4).astype(dtype) if persistent else None
    got = train(data, W, b, c, 7, k=k, chains=chains, momentum=momentum, weight_decay=weight_decay, loop=loop)
    want = ref.train_pass(data, W, b, c, 7, k=k, chains=chains, learning_rate=0.1, momentum=momentum,
                          weight_decay=weight_decay, seed=4, first_offset=5)
    assert want.n_ambiguous == 0  # fixed seeds (stream seed 3 has ambiguous draws): compare tightly
    for name_, g, w in zip(("weights", "visible_bias", "hidden_bias"), got[:3], want[:3]):
        np.testing.assert_allclose(g, w, rtol=0, atol=TOL[dtype], err_msg=name_)
    assert np.abs(got[0] - W).max() > 1000 * TOL[dtype]  # the pass moved the weights
    if momentum:
        for g, w in zip(got[3], want.velocities):
            np.testing.assert_allclose(g, w, rtol=0, atol=TOL[dtype])
    if persistent:
        np.testing.assert_array_equal(got[4], want.chains)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_visible, n_hidden", [(1, 1), (3, 64), (64, 65), (97, 129)])
def test_sliced_loop_matches_per_product_loop_at_edge_sizes(dtype, n_visible, n_hidden):
    rng = np.random.default_rng(n_visible + n_hidden)
    W, b, c = params(n_visible, n_hidden, dtype, seed=2)
    data = (rng.random((31, n_visible)) < 0.4).astype(dtype)
    chains = np.zeros((9, n_hidden), dtype)
    sliced = train(data, W, b, c, 10, chains=chains, momentum=0.3, weight_decay=0.02, loop="sliced")
    per_product = train(data, W, b, c, 10, chains=chains, momentum=0.3, weight_decay=0.02, loop="per-product")
    for g, w in zip(sliced[:3], per_product[:3]):
        np.testing.assert_allclose(g, w, rtol=0, atol=TOL[dtype])
    np.testing.assert_array_equal(sliced[4], per_product[4])
    assert np.abs(sliced[0] - W).max() > 100 * TOL[dtype]


def test_fractional_starting_chains_are_used_as_values():
    # Chains the caller set to probabilities enter h @ W with their values until the first draw.
    rng = np.random.default_rng(4)
    W, b, c = params(20, 130, np.float64)
    data = (rng.random((12, 20)) < 0.5).astype(np.float64)
    chains = rng.random((6, 130))
    got = train(data, W, b, c, 6, chains=chains)
    want = ref.train_pass(data, W, b, c, 6, chains=chains, learning_rate=0.1, seed=4, first_offset=5)
    assert want.n_ambiguous == 0
    np.testing.assert_allclose(got[0], want.weights, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got[4], want.chains)


def test_inputs_other_than_the_parameters_are_not_modified():
    rng = np.random.default_rng(5)
    W, b, c = params(30, 100, np.float32)
    data = (rng.random((20, 30)) < 0.5).astype(np.float32)
    data_copy = data.copy()
    train(data, W, b, c, 10, chains=np.zeros((10, 100), np.float32))
    np.testing.assert_array_equal(data, data_copy)


_THREAD_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from fastgen._native import cpu as _cpu
    from fastgen.ops import cd_epoch
    from fastgen.random import Generator
    rng = np.random.default_rng(0)
    out = {}
    for dtype in (np.float32, np.float64):
        W = rng.normal(0, 0.2, (200, 45)).astype(dtype)        # 4 slices: 3 threads get 1, 1 and 2
        b, c = rng.normal(0, 0.5, 45).astype(dtype), rng.normal(0, 0.5, 200).astype(dtype)
        vw, vb, vc = np.zeros_like(W), np.zeros_like(b), np.zeros_like(c)
        chains = np.zeros((10, 200), dtype)
        data = (rng.random((95, 45)) * (rng.random((95, 45)) < 0.5)).astype(dtype)
        cd_epoch(W, b, c, data, batch_size=10, cd_k=2, learning_rate=0.1, momentum=0.5, weight_decay=0.01,
                 chains=chains, velocities=(vw, vb, vc), generator=Generator(7), binary_products=True,
                 hidden_slices=True)
        for name, x in dict(W=W, b=b, c=c, vw=vw, vb=vb, vc=vc, chains=chains).items():
            out[f"{np.dtype(dtype).name}_{name}"] = x
    out["max_threads"] = np.array([_cpu.C.max_threads()])
    np.savez(sys.argv[1], **out)
    """
)


def test_sliced_loop_is_bitwise_identical_for_1_2_and_3_threads(tmp_path):
    # h @ W is summed by slices in slice order whatever the number of threads, so the thread
    # count cannot change a bit (three threads split four slices unevenly).
    results = []
    for threads in ("1", "2", "3"):
        path = tmp_path / f"threads{threads}.npz"
        env = dict(os.environ, OMP_NUM_THREADS=threads, FASTGEN_DENSE_PRODUCTS="0")
        subprocess.run([sys.executable, "-c", _THREAD_SCRIPT, str(path)], check=True, env=env, timeout=300)
        results.append(np.load(path))
    assert [int(r["max_threads"][0]) for r in results] == [1, 2, 3]
    for key in results[0].files:
        if key == "max_threads":
            continue
        for other in results[1:]:
            assert results[0][key].tobytes() == other[key].tobytes(), f"{key} differs between thread counts"


def test_sliced_loop_covers_scikit_learns_default_batch():
    assert _cpu.C.sliced_max_rows >= 20  # batch_size=10 with 10 persistent chains
