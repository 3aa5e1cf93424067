"""Data-parallel RBM training (fastgen.sklearn.data_parallel, fastgen.models.data_parallel) with
the ranks as threads of this process (a job whose all-reduce is a shared buffer and barriers):
the layout and the arithmetic, without torch. tests/torch/test_distributed_rbm.py runs the same
over torch.distributed (gloo) in spawned processes.

N ranks x batch B against one process x batch N B (the compiled epoch): the Bernoulli draws are
the same, so the PCD chains agree bit for bit; the parameters agree to rounding (the sums are
reordered); every rank ends with the same estimator, bit for bit."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from fastgen import BernoulliRBM, DBN
from fastgen.models.data_parallel import OneProcess, ShardedContrastiveDivergence, gather_rows, share
from fastgen.models.rbm import RBM, ContrastiveDivergence
from fastgen.random import Generator
from fastgen.sklearn import data_parallel

PARAM_TOL = {np.float32: 1e-5, np.float64: 1e-12}  # N ranks vs one process, after 3 passes


class ThreadJob:
    """Rank ``rank`` of ``world_size`` threads; all_reduce sums through a shared buffer."""

    def __init__(self, rank, world_size, shared):
        self.rank, self.world_size, self._shared = rank, world_size, shared

    @property
    def is_main(self):  # as fastgen.torch.train.distributed.Distributed (the CLI asks)
        return self.rank == 0

    def _collect(self, array, combine):
        s = self._shared
        s["barrier"].wait()
        if self.rank == 0:
            s["parts"] = [None] * self.world_size
        s["barrier"].wait()
        s["parts"][self.rank] = array.copy()
        s["barrier"].wait()
        array[...] = combine(s["parts"])
        s["barrier"].wait()

    def all_reduce(self, array):
        def in_rank_order(parts):
            total = parts[0].copy()
            for p in parts[1:]:
                total += p
            return total

        self._collect(array, in_rank_order)

    def broadcast(self, array, root=0):
        self._collect(array, lambda parts: parts[root])


def run_ranks(world_size, work):
    """``work(job)`` on ``world_size`` threads; their results in rank order (errors re-raised)."""
    shared = {"barrier": threading.Barrier(world_size, timeout=60)}
    results, errors = [None] * world_size, []

    def target(rank):
        try:
            with data_parallel(ThreadJob(rank, world_size, shared)) as job:
                results[rank] = work(job)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            shared["barrier"].abort()

    threads = [threading.Thread(target=target, args=(r,)) for r in range(world_size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return results


def binary_data(n=1003, n_features=40, seed=0, dtype=np.float64):
    return (np.random.default_rng(seed).random((n, n_features)) < 0.3).astype(dtype)


FITTED = ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("persistent", [True, False], ids=["PCD", "CD"])
def test_ranks_train_as_one_process_with_the_whole_batch(dtype, world_size, persistent):
    X = binary_data(dtype=dtype)  # 1003 rows: the last batch is short and split unevenly
    params = dict(n_components=16, n_iter=3, learning_rate=0.1, momentum=0.5, weight_decay=1e-3,
                  persistent=persistent, random_state=3)
    one = BernoulliRBM(batch_size=32 * world_size, **params).fit(X)
    ranks = run_ranks(world_size, lambda job: BernoulliRBM(batch_size=32, **params).fit(X))
    for est in ranks[1:]:
        for name in FITTED:
            np.testing.assert_array_equal(getattr(est, name), getattr(ranks[0], name), err_msg=name)
    for name in FITTED[:3]:
        np.testing.assert_allclose(getattr(ranks[0], name), getattr(one, name), rtol=0, atol=PARAM_TOL[dtype],
                                   err_msg=name)
    if persistent and dtype == np.float64:
        np.testing.assert_array_equal(ranks[0].h_samples_, one.h_samples_)
    assert ranks[0].h_samples_.shape == one.h_samples_.shape


def test_random_state_none_gives_every_rank_rank_0s_seed():
    X = binary_data(n=200)
    ranks = run_ranks(2, lambda job: BernoulliRBM(n_components=8, n_iter=1, batch_size=10).fit(X))
    np.testing.assert_array_equal(ranks[0].components_, ranks[1].components_)


def test_partial_fit_of_a_data_parallel_job_is_one_update_on_all_of_x():
    X = binary_data(n=301)
    one = BernoulliRBM(n_components=8, random_state=1, batch_size=15).partial_fit(X).partial_fit(X[:77])
    ranks = run_ranks(3, lambda job: BernoulliRBM(n_components=8, random_state=1, batch_size=5)
                      .partial_fit(X).partial_fit(X[:77]))
    np.testing.assert_allclose(ranks[2].components_, one.components_, rtol=0, atol=1e-12)
    # partial_fit's chains: n_chains (batch_size) per rank, all of them on every rank
    assert ranks[0].h_samples_.shape == one.h_samples_.shape == (15, 8)


def test_dbn_pretrains_layer_by_layer_data_parallel():
    X = binary_data(n=400)
    params = dict(hidden_layer_sizes=(12, 6), n_iter=2, learning_rate=0.05, random_state=4)
    one = DBN(batch_size=40, **params).fit(X)
    ranks = run_ranks(2, lambda job: DBN(batch_size=20, **params).fit(X))
    for layer_one, layer_two in zip(one.rbms_, ranks[1].rbms_):
        np.testing.assert_allclose(layer_two.components_, layer_one.components_, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ranks[0].transform(X), ranks[1].transform(X))


def test_parallel_tempering_and_gpu_devices_are_refused_clearly():
    X = binary_data(n=50)
    with pytest.raises(ValueError, match="parallel tempering.*data-parallel"):
        run_ranks(2, lambda job: BernoulliRBM(n_temperatures=3, n_iter=1).fit(X))
    with pytest.raises(ValueError, match="data-parallel training runs on the CPU"):
        run_ranks(2, lambda job: BernoulliRBM(device="cuda", n_iter=1).fit(X))


def test_a_job_without_collectives_is_refused():
    with pytest.raises(TypeError, match="job must have rank, world_size, all_reduce and broadcast"):
        with data_parallel(object()):
            pass


@pytest.mark.parametrize("n, world_size", [(0, 3), (1, 3), (10, 3), (129, 4)])
def test_shares_cover_the_rows_in_order(n, world_size):
    bounds = [share(n, r, world_size) for r in range(world_size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


def test_gather_rows_in_one_process_is_the_rows():
    rows = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(gather_rows(OneProcess(), rows, 4), rows)


@pytest.mark.parametrize("persistent", [True, False], ids=["PCD", "CD"])
def test_a_batch_read_in_chunks_trains_as_the_compiled_epoch(persistent):
    X = binary_data(n=500)
    settings = dict(learning_rate=0.1, persistent=persistent, momentum=0.5, weight_decay=1e-3)
    compiled, chunked = (RBM.initialize(40, 20, generator=Generator(3)) for _ in range(2))
    plain = ContrastiveDivergence(**settings)
    sharded = ShardedContrastiveDivergence(ContrastiveDivergence(**settings), OneProcess(), chunk_rows=7)
    g1, g2 = Generator(7), Generator(7)
    for _ in range(2):
        plain.run(compiled, X, 64, g1)
        sharded.run(chunked, X, 64, g2)
    assert g1.offset == g2.offset
    np.testing.assert_allclose(chunked.weights, compiled.weights, rtol=0, atol=1e-13)
    if persistent:
        np.testing.assert_array_equal(sharded.chains, plain.chains)


def test_ais_and_raise_spread_over_ranks_give_the_one_process_estimates():
    X = binary_data(n=300, n_features=20)
    rbm = BernoulliRBM(n_components=10, n_iter=2, random_state=0).fit(X)
    options = dict(n_betas=200, random_state=3)
    one_z = rbm.log_partition(method="ais", n_chains=7, return_result=True, **options)
    one_ll = rbm.log_likelihood_raise(X[:5], n_chains=3, **options)
    one_bounds = rbm.log_likelihood_bounds(X[:4], ais_chains=5, raise_chains=2, **options)

    def estimates(job):
        return (rbm.log_partition(method="ais", n_chains=7, return_result=True, **options),
                rbm.log_likelihood_raise(X[:5], n_chains=3, **options),
                rbm.log_likelihood_bounds(X[:4], ais_chains=5, raise_chains=2, **options))

    ranks = run_ranks(3, estimates)  # 7 chains over 3 ranks; 4 rows: one rank gets one row
    for z, ll, bounds in ranks:
        np.testing.assert_allclose(z.log_weights, one_z.log_weights, rtol=1e-12)
        np.testing.assert_allclose(ll, one_ll, rtol=1e-12)
        np.testing.assert_allclose([bounds.lower, bounds.upper], [one_bounds.lower, one_bounds.upper], rtol=1e-12)
    np.testing.assert_array_equal(ranks[0][0].log_weights, ranks[2][0].log_weights)


@pytest.mark.parametrize("persistent", [True, False], ids=["PCD", "CD"])
@pytest.mark.parametrize("learn_sigma", [False, True])
def test_gaussian_bernoulli_rbm_ranks_train_as_one_process(persistent, learn_sigma):
    from fastgen import GaussianBernoulliRBM

    X = np.random.default_rng(1).normal(0, 1, (301, 12))
    params = dict(n_components=6, n_iter=3, learning_rate=0.01, momentum=0.5, persistent=persistent,
                  learn_sigma=learn_sigma, random_state=2)
    one = GaussianBernoulliRBM(batch_size=30, **params).fit(X)
    ranks = run_ranks(3, lambda job: GaussianBernoulliRBM(batch_size=10, **params).fit(X))
    for name in ("components_", "intercept_hidden_", "log_sigma_", "h_samples_"):
        np.testing.assert_array_equal(getattr(ranks[2], name), getattr(ranks[0], name), err_msg=name)
        np.testing.assert_allclose(getattr(ranks[0], name), getattr(one, name), rtol=0, atol=1e-12, err_msg=name)


def test_dbn_fine_tune_is_refused_inside_a_data_parallel_job():
    X = binary_data(n=60)

    def work(job):
        dbn = DBN(hidden_layer_sizes=(6, 4), n_iter=1, random_state=0).fit(X)
        dbn.fine_tune(X, n_iter=1)

    with pytest.raises(ValueError, match="fine_tune does not train data-parallel"):
        run_ranks(2, work)


def test_sparse_x_trains_data_parallel_as_its_dense_rows():
    import scipy.sparse as sp

    X = binary_data(n=250)
    params = dict(n_components=8, n_iter=2, batch_size=20, random_state=6)
    dense = run_ranks(2, lambda job: BernoulliRBM(**params).fit(X))
    sparse = run_ranks(2, lambda job: BernoulliRBM(**params).fit(sp.csr_matrix(X)))
    np.testing.assert_array_equal(sparse[0].components_, dense[0].components_)


def test_ranks_given_different_data_or_settings_fail_with_a_clear_error_on_every_rank():
    X = binary_data(n=200)
    with pytest.raises(ValueError, match=r"disagree on the rows of X \(rank 0: 200, rank 1: 150\)"):
        run_ranks(2, lambda job: BernoulliRBM(n_components=8, n_iter=1).fit(X if job.rank == 0 else X[:150]))
    with pytest.raises(ValueError, match="disagree on learning_rate"):
        run_ranks(2, lambda job: BernoulliRBM(n_components=8, n_iter=1, random_state=0,
                                              learning_rate=0.1 * (job.rank + 1)).fit(X))


@pytest.mark.parametrize("world_size", [1, 2])
def test_a_diverged_pass_leaves_the_chains_as_they_were(monkeypatch, world_size):
    from fastgen.sklearn import _base

    monkeypatch.setattr(_base, "SPARSE_CHUNK_ROWS", 64)  # 300 rows: partial_fit's chunked trainer
    X = binary_data(n=300)

    def work(job):
        est = BernoulliRBM(n_components=8, random_state=0, batch_size=10).partial_fit(X[:10])
        before = est.h_samples_.copy(), est.components_.copy()
        est.set_params(learning_rate=1e9)
        with pytest.raises(FloatingPointError):
            est.partial_fit(X)
        return before, (est.h_samples_, est.components_)

    for before, after in run_ranks(world_size, work):
        for a, b in zip(after, before):
            np.testing.assert_array_equal(a, b)


def test_dbn_with_random_state_none_is_the_same_network_on_every_rank():
    X = binary_data(n=100)
    ranks = run_ranks(2, lambda job: DBN(hidden_layer_sizes=(6, 4), n_iter=1).fit(X))
    assert ranks[0]._generator.seed == ranks[1]._generator.seed
    assert [e.random_state for e in ranks[0].rbms_] == [e.random_state for e in ranks[1].rbms_]
    np.testing.assert_array_equal(ranks[0].rbms_[1].components_, ranks[1].rbms_[1].components_)


def test_train_rbm_command_resumes_with_the_per_process_chain_count(tmp_path):
    import contextlib
    import io

    from fastgen.cli import build_parser, train_rbm
    from fastgen.serialization import load_rbm

    np.save(tmp_path / "x.npy", binary_data(n=200, n_features=10).astype(np.float32))
    parser = build_parser()

    def command(*argv):
        args = parser.parse_args(["train", "rbm", str(tmp_path / "x.npy"), "--out", str(tmp_path / "out"), *argv])

        def work(job):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                return train_rbm._run(args, job)

        return run_ranks(2, work)

    assert command("--n-components", "4", "--batch-size", "10", "--n-chains", "10", "--epochs", "1",
                   "--save", str(tmp_path / "m.npz")) == [0, 0]
    assert load_rbm(tmp_path / "m.npz").h_samples_.shape == (20, 4)  # both processes' chains
    assert command("--resume", str(tmp_path / "m.npz"), "--n-chains", "10", "--epochs", "2",
                   "--save", str(tmp_path / "m2.npz")) == [0, 0]
    assert load_rbm(tmp_path / "m2.npz").n_iter == 2
