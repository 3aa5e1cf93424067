"""Data-parallel RBMs over torch.distributed (gloo on the CPU), 2 ranks started by torchrun as
spawned processes, each job bounded in time: every rank ends with the same parameters, equal to
the one-process run with the doubled batch (the PCD chains bit for bit, the parameters to
rounding), the chains persist per rank, AIS across ranks equals one-process AIS with the same
chains, ``torchrun -m fastgen train rbm`` trains as one process, and a failed rank fails the job."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

TIMEOUT_S = 300
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "FASTGEN_DIST_TIMEOUT": "60"}

SCRIPT = """
import sys, numpy as np
from fastgen import BernoulliRBM
from fastgen.sklearn import data_parallel
from fastgen.torch.train.distributed import close, from_environment

data, batch_size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
job = from_environment()
X = np.load(data, mmap_mode="r")  # every rank opens the file; each reads its rows of each batch
with data_parallel(job):
    rbm = BernoulliRBM(n_components=16, batch_size=batch_size, n_iter=3, learning_rate=0.1, momentum=0.5,
                       weight_decay=1e-4, random_state=3).fit(X)
    ais = rbm.log_partition(method="ais", n_chains=9, n_betas=300, random_state=1, return_result=True)
    raise_ll = rbm.log_likelihood_raise(X[:5], n_chains=3, n_betas=300, random_state=2)
rank = 0 if job is None else job.rank
np.savez(f"{out}.{rank}.npz", W=rbm.components_, b=rbm.intercept_visible_, c=rbm.intercept_hidden_,
         chains=rbm.h_samples_, ais=ais.log_weights, raise_ll=raise_ll)
close(job)
"""


def launch(args, cwd, ranks):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"] \
        if ranks > 1 else [sys.executable]
    return subprocess.run([*launcher, *args], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=TIMEOUT_S)


def run_ok(args, cwd, ranks=1):
    result = launch(args, cwd, ranks)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture
def data_file(tmp_path):
    X = (np.random.default_rng(0).random((1003, 40)) < 0.3).astype(np.float64)
    np.save(tmp_path / "X.npy", X)
    return tmp_path / "X.npy"


@pytest.mark.slow
def test_two_ranks_train_and_estimate_as_one_process_with_twice_the_batch(tmp_path, data_file):
    (tmp_path / "script.py").write_text(SCRIPT)
    run_ok(["script.py", str(data_file), "64", "one"], tmp_path)
    run_ok(["script.py", str(data_file), "32", "two"], tmp_path, ranks=2)
    one, rank0, rank1 = (np.load(tmp_path / name) for name in ("one.0.npz", "two.0.npz", "two.1.npz"))
    for key in rank0.files:  # the ranks agree bit for bit
        np.testing.assert_array_equal(rank1[key], rank0[key], err_msg=key)
    for key in ("W", "b", "c"):  # with one process, to rounding (the sums are reordered)
        np.testing.assert_allclose(rank0[key], one[key], rtol=0, atol=1e-12, err_msg=key)
    np.testing.assert_array_equal(rank0["chains"], one["chains"])  # the same draws: 64 chains, 32 a rank
    np.testing.assert_allclose(rank0["ais"], one["ais"], rtol=1e-12)  # 9 AIS chains over 2 ranks
    np.testing.assert_allclose(rank0["raise_ll"], one["raise_ll"], rtol=1e-12)


@pytest.mark.slow
def test_train_rbm_command_under_torchrun_trains_as_one_process(tmp_path, data_file):
    common = ["-m", "fastgen", "train", "rbm", str(data_file), "--epochs", "2", "--n-components", "20",
              "--dtype", "float64"]
    run_ok([*common, "--batch-size", "32", "--n-chains", "200", "--save", "one.npz", "--out", "one"], tmp_path)
    out = run_ok([*common, "--batch-size", "16", "--n-chains", "100", "--save", "two.npz", "--out", "two"], tmp_path,
                 ranks=2)
    assert "data parallel: 2 processes x batch 16" in out
    assert out.count("saved model to") == 1 and out.count("mean exact pseudo-likelihood") == 1  # rank 0 alone
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    np.testing.assert_allclose(two["components_"], one["components_"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(two["h_samples_"], one["h_samples_"])
    # continued under torchrun: the saved chains are all of them, shared out again
    out = run_ok([*common[:5], "--resume", "two.npz", "--epochs", "3", "--save", "three.npz", "--out", "two"],
                 tmp_path, ranks=2)
    assert "continued training for 1 epochs" in out


FAILING = """
import os, numpy as np
from fastgen import BernoulliRBM
from fastgen.sklearn import data_parallel
from fastgen.torch.train.distributed import from_environment

job = from_environment()
if job.rank == 1:
    raise RuntimeError("rank 1 lost its data")
with data_parallel(job):
    BernoulliRBM(n_components=4, n_iter=50).fit(np.zeros((100, 6)))
"""


@pytest.mark.slow
def test_a_failed_rank_fails_the_job_instead_of_hanging_it(tmp_path):
    (tmp_path / "failing.py").write_text(FAILING)
    result = launch(["failing.py"], tmp_path, ranks=2)
    assert result.returncode != 0
    assert "rank 1 lost its data" in result.stdout + result.stderr


FAILING_IN_TRY = """
import numpy as np
from fastgen import BernoulliRBM
from fastgen.sklearn import data_parallel
from fastgen.torch.train.distributed import close, from_environment

job = from_environment()
try:
    if job.rank == 1:
        raise RuntimeError("rank 1 lost its data")
    with data_parallel(job):
        BernoulliRBM(n_components=4, n_iter=50).fit(np.zeros((100, 6)))
finally:
    close(job)  # must not wait at a barrier for rank 0, which waits in the training's all-reduce
"""


@pytest.mark.slow
def test_a_rank_failing_inside_try_finally_close_fails_the_job_too(tmp_path):
    (tmp_path / "failing.py").write_text(FAILING_IN_TRY)
    env = {**ENV, "FASTGEN_DIST_TIMEOUT": "600"}  # a hang would outlast the subprocess timeout below
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                             "failing.py"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode != 0
    assert "rank 1 lost its data" in result.stdout + result.stderr
