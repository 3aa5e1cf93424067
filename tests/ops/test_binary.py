"""Binary-operand products (csrc/binary.cpp) against the dense NumPy product, and the RBM loops
that use them against the same loops with every product on BLAS."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastgen._native import cpu as _cpu
from fastgen.models.rbm import RBM, ContrastiveDivergence
from fastgen.ops import binary_matmul, gibbs
from fastgen.random import Generator
from reference.binary import binary_matmul as reference

DTYPES = [np.float32, np.float64]
DENSITIES = [0.0, 0.01, 0.13, 0.5, 1.0]
# (rows of a, inner k, columns n): ones, odd sizes, more columns than one register tile
# (128 float32 / 64 float64), inner sizes beyond one L1 chunk, and empty dimensions.
SHAPES = [(1, 1, 1), (3, 129, 129), (129, 784, 500), (17, 4096 + 32, 33), (2, 5, 4096 + 32), (0, 7, 5),
          (6, 0, 5), (4, 7, 0)]


def tolerance(dtype, k):
    # Sums of up to k terms of size ~1, in another order than BLAS: a few ulps per term.
    eps = np.finfo(dtype).eps
    return 4 * eps * max(k, 1)


def random_binary(rng, shape, density):
    return (rng.random(shape) < density).astype(np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_binary_matmul_matches_dense_product(dtype, density, shape):
    m, k, n = shape
    rng = np.random.default_rng(hash((m, k, n, density)) % 2**32)
    a = random_binary(rng, (m, k), density)
    b = rng.normal(0, 1, (k, n)).astype(dtype)
    out = binary_matmul(a, b)
    assert out.shape == (m, n) and out.dtype == dtype
    np.testing.assert_allclose(out, reference(a, b), rtol=0, atol=tolerance(dtype, k))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_binary_transposed_matmul_matches_dense_product(dtype, density, shape):
    rows, k, n = shape      # a: [rows, k] -> a.T @ b: [k, n] with b: [rows, n]
    rng = np.random.default_rng(hash((rows, k, n, density, "T")) % 2**32)
    a = random_binary(rng, (rows, k), density)
    b = rng.normal(0, 1, (rows, n)).astype(dtype)
    out = binary_matmul(a, b, transpose_a=True)
    assert out.shape == (k, n) and out.dtype == dtype
    np.testing.assert_allclose(out, reference(a, b, True), rtol=0, atol=tolerance(dtype, rows))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [1, 7, 8, 9, 15, 16, 17, 33, 129, 4096 + 32])
def test_index_lists_of_ones_match_nonzero(dtype, cols):
    # The lists are packed a vector of columns at a time (16 float32, 8 float64): widths on
    # both sides of those blocks, rows empty, full and random, must all list exactly the ones.
    rng = np.random.default_rng(cols)
    x = (rng.random((70, cols)) < rng.random((70, 1))).astype(dtype)
    x[0], x[1] = 0, 1
    indices, counts, nnz = _cpu.C.binary_rows(x)
    assert nnz == np.count_nonzero(x)
    for r in range(x.shape[0]):
        assert counts[r] == np.count_nonzero(x[r])
        assert np.array_equal(indices[r, :counts[r]], np.flatnonzero(x[r]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_index_lists_report_non_binary_values_in_any_row(dtype):
    # Rows are listed in parallel: a value other than 0/1 in the last row must still be seen.
    x = np.zeros((200, 300), dtype)
    x[-1, -1] = 0.5
    assert _cpu.C.binary_rows(x)[2] == -1
    x[-1, -1] = np.nan
    assert _cpu.C.binary_rows(x)[2] == -1
    x[-1, -1] = 1
    assert _cpu.C.binary_rows(x)[2] == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_matmul_empty_rows_and_full_rows(dtype):
    rng = np.random.default_rng(3)
    a = random_binary(rng, (37, 300), 0.2)
    a[[0, 5, 36]] = 0.0       # empty rows: output exactly 0
    a[[1, 17]] = 1.0          # full rows: column sums
    b = rng.normal(0, 1, (300, 131)).astype(dtype)
    out = binary_matmul(a, b)
    assert np.all(out[[0, 5, 36]] == 0)
    np.testing.assert_allclose(out, reference(a, b), rtol=0, atol=tolerance(dtype, 300))
    c = rng.normal(0, 1, (37, 64)).astype(dtype)
    out_t = binary_matmul(a, c, transpose_a=True)     # columns of a that are all 0 except rows 1, 17
    np.testing.assert_allclose(out_t, reference(a, c, True), rtol=0, atol=tolerance(dtype, 37))


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_matmul_sums_exactly_selected_rows(dtype):
    # Small integers are exact in any summation order: the result must be bitwise the reference.
    rng = np.random.default_rng(4)
    a = random_binary(rng, (50, 257), 0.3)
    b = rng.integers(-8, 9, (257, 300)).astype(dtype)
    assert np.array_equal(binary_matmul(a, b), (a @ b.astype(np.float64)).astype(dtype))
    c = rng.integers(-8, 9, (50, 300)).astype(dtype)
    assert np.array_equal(binary_matmul(a, c, transpose_a=True), (a.T @ c.astype(np.float64)).astype(dtype))


@contextlib.contextmanager
def subset_tables(enabled):
    _cpu.C.set_binary_tables(enabled)
    try:
        yield
    finally:
        _cpu.C.set_binary_tables(True)


# (rows, k, n, density): K not a multiple of any group size, rows not a multiple of the 8-row
# block, n with a partial vector, the transposed product's column lists (rows = k of a.T).
TABLE_CASES = [(203, 131, 129, 0.5), (64, 500, 784, 0.475), (25, 37, 17, 0.9), (1000, 61, 3, 0.3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, k, n, density", TABLE_CASES)
def test_subset_tables_match_one_by_one_sums(dtype, rows, k, n, density):
    rng = np.random.default_rng(rows * 7 + k)
    a = random_binary(rng, (rows, k), density)
    a[1] = 0.0                                           # an empty row
    a[-1] = 1.0                                          # a full row
    nnz = int(a.sum())
    assert _cpu.C.binary_table_bits(rows, k, nnz) > 0   # the cases must take the table path
    b = rng.normal(0, 1, (k, n)).astype(dtype)
    bias = rng.normal(0, 1, n).astype(dtype)
    indices, counts, _ = _cpu.C.binary_rows(a.astype(dtype))

    def with_bias():                                     # the kernel's bias start (the op has none)
        out = np.empty((rows, n), dtype)
        _cpu.C.binary_matmul(indices, counts, b, bias, out)
        return out

    with subset_tables(False):
        gathered = with_bias()
    tabled = with_bias()
    expected = reference(a, b) + bias
    for out in (gathered, tabled):
        np.testing.assert_allclose(out, expected, rtol=0, atol=tolerance(dtype, k))
    # Small integers are exact in any order: both paths must give the reference bit for bit.
    bi = rng.integers(-8, 9, (k, n)).astype(dtype)
    tabled = binary_matmul(a, bi)
    with subset_tables(False):
        gathered = binary_matmul(a, bi)
    exact = (a @ bi.astype(np.float64)).astype(dtype)
    assert np.array_equal(tabled, exact) and np.array_equal(gathered, exact)


@pytest.mark.parametrize("dtype", DTYPES)
def test_subset_tables_in_transposed_product(dtype):
    # a.T @ c sums rows of c by a's column lists (rows with explicit starts), accumulating.
    rng = np.random.default_rng(12)
    a = random_binary(rng, (300, 40), 0.5)
    assert _cpu.C.binary_table_bits(40, 300, int(a.sum())) > 0
    c = rng.integers(-8, 9, (300, 70)).astype(dtype)
    assert np.array_equal(binary_matmul(a, c, transpose_a=True), (a.T @ c.astype(np.float64)).astype(dtype))


def test_subset_table_cost_model_choices():
    # Sampled hidden states of the MNIST RBM (1000 x 500, ~half ones; a quarter in the Gibbs
    # benchmark's late steps): tables; its sparse visible states (784 wide, 13-15 % ones) and
    # scikit-learn's 10-row digits batches: one-by-one sums.
    assert _cpu.C.binary_table_bits(1000, 500, int(0.475 * 1000 * 500)) == 6
    assert _cpu.C.binary_table_bits(1000, 500, int(0.227 * 1000 * 500)) == 6
    assert _cpu.C.binary_table_bits(100, 500, int(0.475 * 100 * 500)) == 5
    assert _cpu.C.binary_table_bits(1000, 784, int(0.13 * 1000 * 784)) == 0
    assert _cpu.C.binary_table_bits(1000, 784, int(0.15 * 1000 * 784)) == 0
    assert _cpu.C.binary_table_bits(10, 256, 1280) == 0
    assert _cpu.C.binary_table_bits(1000, 500, 0) == 0
    with subset_tables(False):
        assert _cpu.C.binary_table_bits(1000, 500, 250000) == 0


def mask_bits(masks, cols):
    """The [rows, cols] 0/1 matrix a [rows, words] uint64 mask array holds (bit c of row r)."""
    bits = np.unpackbits(masks.view(np.uint8), axis=1, bitorder="little")
    return bits[:, :cols], bits[:, cols:]


# Row widths: one column, word edges (63, 64, 65), partial vectors, MNIST's two layers, and rows
# longer than one 1,024-element sampling chunk, whose later chunks start mid-word.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, cols", [(3, 1), (5, 63), (4, 64), (7, 65), (9, 129), (33, 500), (11, 784),
                                        (3, 2101)])
@pytest.mark.parametrize("from_logits", [True, False])
def test_sampler_masks_and_lists_match_states(dtype, rows, cols, from_logits):
    rng = np.random.default_rng(rows * 1000 + cols)
    x = rng.normal(0, 2, (rows, cols)).astype(dtype) if from_logits else rng.random((rows, cols)).astype(dtype)
    bias = rng.normal(0, 1, cols).astype(dtype) if from_logits else None
    plain = np.empty_like(x)
    _cpu.C.sample_bernoulli(x, bias, None, plain, from_logits, 7, 3)
    states = np.empty_like(x)
    indices, counts, masks = _cpu.C.sample_bernoulli_rows(x, bias, states, from_logits, 7, 3)
    assert np.array_equal(states, plain)                       # the same draws as without lists
    assert states.size < 50 or 0 < states.sum() < states.size  # both values drawn
    assert masks.dtype == np.uint64 and masks.shape == (rows, cols // 64 + 1)
    bits, spare = mask_bits(masks, cols)
    assert np.array_equal(bits, states.astype(np.uint8)) and not spare.any()
    for r in range(rows):
        assert np.array_equal(indices[r, :counts[r]], np.flatnonzero(states[r]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_subset_tables_read_sampler_masks(dtype):
    # The tables cut each row's codes from the sampler's masks when it passes them: the same codes
    # as from the index lists, so the same sums bit for bit, and both match the reference.
    rng = np.random.default_rng(31)
    rows, k, n = 203, 131, 129
    states = np.empty((rows, k), dtype)
    indices, counts, masks = _cpu.C.sample_bernoulli_rows(rng.normal(0, 1, (rows, k)).astype(dtype), None, states,
                                                          True, 3, 0)
    assert _cpu.C.binary_table_bits(rows, k, int(states.sum())) > 0
    b = rng.normal(0, 1, (k, n)).astype(dtype)
    from_lists, from_masks = np.empty((rows, n), dtype), np.empty((rows, n), dtype)
    _cpu.C.binary_matmul(indices, counts, b, None, from_lists)
    _cpu.C.binary_matmul(indices, counts, b, None, from_masks, masks)
    assert np.array_equal(from_masks, from_lists)
    np.testing.assert_allclose(from_masks, reference(states, b), rtol=0, atol=tolerance(dtype, k))
    with pytest.raises(ValueError, match="masks"):
        _cpu.C.binary_matmul(indices, counts, b, None, from_masks, masks[:, :1].copy())


def test_binary_matmul_accepts_views_bool_and_keeps_inputs():
    rng = np.random.default_rng(5)
    big_a = rng.random((40, 300)) < 0.3          # bool
    big_b = rng.normal(0, 1, (600, 90))
    a, b = big_a[::2, ::2], big_b[::4, ::3]       # non-contiguous views: [20, 150] and [150, 30]
    a_before, b_before = a.copy(), b.copy()
    np.testing.assert_allclose(binary_matmul(a, b), reference(a, b), rtol=0, atol=1e-12)
    assert np.array_equal(a, a_before) and np.array_equal(b, b_before)


def test_binary_matmul_rejects_bad_input():
    a = np.eye(3)
    b = np.ones((3, 2))
    with pytest.raises(ValueError, match="a must be binary"):
        binary_matmul(a * 0.5, b)
    with pytest.raises(ValueError, match=r"a.shape\[1\]"):
        binary_matmul(a, np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"a.shape\[0\]"):
        binary_matmul(np.ones((4, 3)), np.ones((3, 2)), transpose_a=True)
    with pytest.raises(ValueError, match="a must be 2-D"):
        binary_matmul(np.ones(3), b)
    with pytest.raises(ValueError, match="NaN"):
        binary_matmul(a, np.full((3, 2), np.nan))
    with pytest.raises(TypeError, match="b must be a real numeric array"):
        binary_matmul(a, np.array([["x", "y"]] * 3))


# ---- the RBM loops: binary products against BLAS-only -----------------------------------------
def small_rbm(rng, n_visible, n_hidden, dtype):
    return RBM(rng.normal(0, 0.3, (n_hidden, n_visible)).astype(dtype), rng.normal(0, 0.5, n_visible).astype(dtype),
               rng.normal(0, 0.5, n_hidden).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gibbs_with_binary_products_draws_what_dense_products_draw(dtype):
    rng = np.random.default_rng(6)
    m = small_rbm(rng, 129, 65, dtype)
    v0 = (rng.random((300, 129)) < 0.3).astype(dtype)
    runs = {}
    for enabled in (True, False):
        runs[enabled] = gibbs(v0, m.weights, m.visible_bias, m.hidden_bias, 4, generator=Generator(11),
                              return_hidden=True, binary_products=enabled)
    # The same uniforms meet probabilities that differ by rounding only: a flip needs |p - u|
    # below ~1e-6 somewhere along 4 steps, which this seed does not hit.
    assert np.array_equal(runs[True][0], runs[False][0])
    np.testing.assert_allclose(runs[True][1], runs[False][1], rtol=0, atol=50 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("persistent, momentum, weight_decay, cd_k", [(True, 0.0, 0.0, 1), (True, 0.5, 1e-3, 2),
                                                                      (False, 0.0, 1e-3, 1), (False, 0.9, 0.0, 3)])
def test_training_with_binary_products_matches_dense_products(dtype, persistent, momentum, weight_decay, cd_k):
    rng = np.random.default_rng(7)
    data = (rng.random((230, 97)) < 0.2).astype(dtype)   # 230 rows: the last batch is short
    start = small_rbm(rng, 97, 41, dtype)
    results = {}
    for enabled in (True, False):
        m = RBM(start.weights.copy(), start.visible_bias.copy(), start.hidden_bias.copy())
        trainer = ContrastiveDivergence(learning_rate=0.05, cd_k=cd_k, persistent=persistent, n_chains=33,
                                        momentum=momentum, weight_decay=weight_decay, binary_products=enabled)
        for _ in range(2):
            trainer.run(m, data, 50, Generator(12))
        results[enabled] = (m, trainer)
    (mb, tb), (md, td) = results[True], results[False]
    atol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(mb.weights, md.weights, rtol=0, atol=atol)
    np.testing.assert_allclose(mb.visible_bias, md.visible_bias, rtol=0, atol=atol)
    np.testing.assert_allclose(mb.hidden_bias, md.hidden_bias, rtol=0, atol=atol)
    if persistent:
        assert np.array_equal(tb.chains, td.chains)
    if momentum:
        np.testing.assert_allclose(tb.velocities[0], td.velocities[0], rtol=0, atol=atol)


def test_training_with_fractional_data_and_chains_falls_back_to_blas():
    # Probabilities as data (not 0/1) and user-set fractional chains: no index lists exist for
    # them, so those products must take the dense path and still match it.
    rng = np.random.default_rng(8)
    data = rng.random((120, 60))
    start = small_rbm(rng, 60, 30, np.float64)
    out = {}
    for enabled in (True, False):
        m = RBM(start.weights.copy(), start.visible_bias.copy(), start.hidden_bias.copy())
        trainer = ContrastiveDivergence(learning_rate=0.05, n_chains=20, binary_products=enabled)
        trainer.prepare(m, 40)
        trainer.chains[...] = 0.5
        trainer.run(m, data, 40, Generator(13))
        out[enabled] = m.weights
    np.testing.assert_allclose(out[True], out[False], rtol=0, atol=1e-10)


_THREAD_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from fastgen._native import cpu as _cpu
    from fastgen.models.rbm import RBM, ContrastiveDivergence
    from fastgen.ops import binary_matmul
    from fastgen.random import Generator
    rng = np.random.default_rng(0)
    a = (rng.random((700, 784)) < 0.13).astype(np.float32)
    b = rng.normal(0, 1, (784, 500)).astype(np.float32)
    c = rng.normal(0, 1, (700, 333))
    # about half ones: subset-sum tables, 49 column tiles shared out by rows between two threads
    halves = (rng.random((701, 500)) < 0.5).astype(np.float32)
    d = rng.normal(0, 1, (500, 784)).astype(np.float32)
    data = (rng.random((400, 300)) < 0.2).astype(np.float32)
    m = RBM(rng.normal(0, 0.1, (257, 300)).astype(np.float32), np.zeros(300, np.float32), np.zeros(257, np.float32))
    trainer = ContrastiveDivergence(learning_rate=0.1, n_chains=200)
    trainer.run(m, data, 200, Generator(3))
    np.savez(sys.argv[1], max_threads=np.array([_cpu.C.max_threads()]), forward=binary_matmul(a, b),
             transposed=binary_matmul(a, c, transpose_a=True), tables=binary_matmul(halves, d), weights=m.weights, chains=trainer.chains)
    """
)


def test_binary_products_are_bitwise_identical_for_1_and_2_threads(tmp_path):
    files = []
    for threads in ("1", "2"):
        path = tmp_path / f"threads{threads}.npz"
        env = dict(os.environ, OMP_NUM_THREADS=threads, FASTGEN_DENSE_PRODUCTS="0")
        subprocess.run([sys.executable, "-c", _THREAD_SCRIPT, str(path)], check=True, env=env, timeout=300)
        files.append(np.load(path))
    assert files[0]["max_threads"][0] == 1 and files[1]["max_threads"][0] == 2
    for key in ("forward", "transposed", "tables", "weights", "chains"):
        assert files[0][key].tobytes() == files[1][key].tobytes(), f"{key} differs between 1 and 2 threads"


@pytest.mark.parametrize("value, ok", [("0.3", True), ("0", True), ("1.5", False), ("dense", False)])
def test_binary_max_density_env_is_validated(value, ok):
    env = dict(os.environ, FASTGEN_BINARY_MAX_DENSITY=value)
    code = "import fastgen._native.cpu as c; print(c.C.binary_max_density())"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if ok:
        assert proc.returncode == 0 and float(proc.stdout) == float(value)
    else:
        assert proc.returncode != 0 and "FASTGEN_BINARY_MAX_DENSITY must be a number in [0, 1]" in proc.stderr


def test_density_limit_zero_sends_loops_to_blas_and_matches():
    # With the limit at 0 the binary loop runs every product on BLAS (the mixed path digits
    # data takes); it must still agree with the all-binary run.
    rng = np.random.default_rng(9)
    data = (rng.random((90, 70)) < 0.25).astype(np.float64)
    start = small_rbm(rng, 70, 20, np.float64)
    weights = []
    previous = _cpu.C.binary_max_density()
    try:
        for limit in (1.0, 0.0):
            _cpu.C.set_binary_max_density(limit)
            m = RBM(start.weights.copy(), start.visible_bias.copy(), start.hidden_bias.copy())
            ContrastiveDivergence(learning_rate=0.05, n_chains=30).run(m, data, 30, Generator(14))
            weights.append(m.weights)
    finally:
        _cpu.C.set_binary_max_density(previous)
    np.testing.assert_allclose(weights[0], weights[1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("value, binary", [(None, True), ("", True), ("0", True), ("off", True), ("1", False),
                                           ("yes", False)])
def test_dense_products_env_sets_the_default_at_each_call(monkeypatch, value, binary):
    if value is None:
        monkeypatch.delenv("FASTGEN_DENSE_PRODUCTS", raising=False)
    else:
        monkeypatch.setenv("FASTGEN_DENSE_PRODUCTS", value)
    assert _cpu.binary_products_default() is binary
