"""fastgen in forked children, spawned workers, joblib workers and threads: every kernel runs
(no hang after the parent used its OpenMP team), results equal the parent's bitwise, a child's
writes never reach the parent's arrays, and a shared Generator hands out each offset once.

The multiprocessing cases run in a subprocess with a time limit, so that a regression fails
the test instead of hanging the suite."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import threading

import numpy as np
import pytest

import fastgen
from fastgen.ops import sample_bernoulli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The work every worker does: one call into each family of kernels (sampler, Gibbs, CD epoch,
# transform, pseudo-likelihood, reparameterisation), large enough to use every thread and the
# pooled result buffers. Returns one float64 vector (bitwise comparable).
WORK = textwrap.dedent("""
    import numpy as np, fastgen
    from fastgen.ops import sample_bernoulli, gibbs, reparameterize

    def work(seed):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(512, 300))
        states = sample_bernoulli(x, generator=seed)
        v = (rng.random((64, 40)) < 0.5).astype(np.float64)
        W = rng.normal(0, 0.1, (30, 40))
        v_k = gibbs(v, W, np.zeros(40), np.zeros(30), steps=3, generator=seed)
        z, kl = reparameterize(x[:, :128], 0.1 * x[:, 128:256], generator=seed)
        X = (rng.random((300, 40)) < 0.3).astype(np.float64)
        rbm = fastgen.BernoulliRBM(n_components=20, n_iter=2, batch_size=10, random_state=seed).fit(X)
        return np.concatenate([a.ravel() for a in (states, v_k, z, kl, rbm.components_, rbm.transform(X),
                                                   rbm.score_samples(X))]).astype(np.float64)
""")


def run_script(body: str, threads: int = 2, timeout: float = 120.0, preamble: str = "") -> str:
    """Runs WORK + body as a script (spawned workers import it by path) in a fresh interpreter
    with OMP_NUM_THREADS=threads; returns stdout."""
    # the checkout's fastgen, as in the test process (the script's folder is not the checkout)
    path = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=path)
    with tempfile.TemporaryDirectory() as folder:
        script = os.path.join(folder, "workers.py")
        with open(script, "w") as fh:
            fh.write(preamble + WORK + textwrap.dedent(body))
        try:
            result = subprocess.run([sys.executable, script], env=env, cwd=REPO, capture_output=True, text=True,
                                    timeout=timeout)
        except subprocess.TimeoutExpired as exc:  # a hung child is the failure this file guards
            pytest.fail(f"timed out after {timeout} s (a worker hung): {exc.stdout!r} {exc.stderr!r}")
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("torch_first", [False, True])
def test_fork_child_runs_kernels_after_parent_used_its_threads(threads, torch_first):
    preamble = "import torch\n" if torch_first else ""
    out = run_script("""
        import os
        parent = work(1)                   # the parent's OpenMP team exists from here on
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            ok = all(np.array_equal(work(1), parent) for _ in range(2))
            grandchild = os.fork()         # a child of a child, from the same thread
            if grandchild == 0:
                os._exit(0 if np.array_equal(work(1), parent) else 3)
            _, status = os.waitpid(grandchild, 0)
            os.write(w, b"1" if ok and status == 0 else b"0")
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        print("child matches parent:", os.read(r, 1) == b"1")
    """, threads=threads, preamble=preamble)
    assert "child matches parent: True" in out


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_pool_and_process_match_the_parent(start_method):
    out = run_script(f"""
        import multiprocessing as mp
        if __name__ == "__main__":
            parent = [work(s) for s in (1, 2, 3)]
            ctx = mp.get_context("{start_method}")
            with ctx.Pool(2) as pool:
                pooled = pool.map(work, [1, 2, 3])
            p = ctx.Process(target=work, args=(1,))
            p.start(); p.join(120)
            print("pool matches:", all(np.array_equal(a, b) for a, b in zip(parent, pooled)))
            print("process exit:", p.exitcode)
    """)
    assert "pool matches: True" in out
    assert "process exit: 0" in out


@pytest.mark.parametrize("backend", ["loky", "multiprocessing", "threading"])
def test_joblib_parallel_matches_the_parent(backend):
    out = run_script(f"""
        from joblib import Parallel, delayed
        if __name__ == "__main__":
            parent = [work(s) for s in (1, 2, 3, 4)]
            got = Parallel(n_jobs=2, backend="{backend}")(delayed(work)(s) for s in (1, 2, 3, 4))
            print("joblib matches:", all(np.array_equal(a, b) for a, b in zip(parent, got)))
    """)
    assert "joblib matches: True" in out


def test_fork_pool_results_are_private_memory():
    # 8 reparameterize calls in a fork Pool(2), one thread each: every result must be the
    # parent's, none overwritten by another worker through a shared buffer
    out = run_script("""
        import multiprocessing as mp
        def one(seed):
            rng = np.random.default_rng(seed)
            mu, logvar = rng.normal(size=(4096, 64)), 0.1 * rng.normal(size=(4096, 64))
            return reparameterize(mu, logvar, generator=seed)[0]
        if __name__ == "__main__":
            parent = [one(s).copy() for s in range(8)]  # the results' maps go back to the pool
            with mp.get_context("fork").Pool(2) as pool:
                got = pool.map(one, range(8))
            print("wrong results:", sum(not np.array_equal(a, b) for a, b in zip(parent, got)))
    """, threads=1)
    assert "wrong results: 0" in out


def test_child_writes_to_a_pooled_result_do_not_reach_the_parent():
    out = run_script("""
        import os
        from fastgen import _buffers
        mu = np.zeros((4096, 64))
        z, _ = reparameterize(mu, mu, generator=0)
        assert z.nbytes >= _buffers.MIN_BYTES  # a pooled map, the case that was shared
        before = z.copy()
        pid = os.fork()
        if pid == 0:
            try:
                z[...] = 7.0
                # a child's next result may reuse a pooled map: no write of it reaches the parent
                del z
                z2, _ = reparameterize(mu, mu, generator=1)
                z2[...] = 9.0
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("child status:", status)
        print("parent unchanged:", np.array_equal(z, before))
    """)
    assert "child status: 0" in out
    assert "parent unchanged: True" in out


def test_generator_take_from_threads_gives_every_offset_once():
    gen = fastgen.Generator(seed=3)
    per_thread, n_threads = 20000, 4
    taken = [[] for _ in range(n_threads)]
    barrier = threading.Barrier(n_threads)

    def take(k):
        barrier.wait()
        out = taken[k]
        for i in range(per_thread):
            out.append(gen.take(1 + i % 3))

    threads = [threading.Thread(target=take, args=(k,)) for k in range(n_threads)]
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(0.005)
    starts = np.concatenate([np.asarray(t) for t in taken])
    sizes = np.concatenate([1 + np.arange(per_thread) % 3 for _ in range(n_threads)])
    order = np.argsort(starts)
    # disjoint, contiguous ranges covering exactly [0, total)
    assert starts[order][0] == 0
    np.testing.assert_array_equal(starts[order][1:], (starts + sizes)[order][:-1])
    assert gen.offset == sizes.sum()


def test_threads_sharing_nothing_match_one_thread():
    x = np.random.default_rng(0).normal(size=(512, 300))
    expected = [sample_bernoulli(x, generator=s) for s in range(8)]
    got = [None] * 8

    def draw(s):
        got[s] = sample_bernoulli(x, generator=s)

    threads = [threading.Thread(target=draw, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)
