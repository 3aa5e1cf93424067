"""NumPy's and SciPy's OpenBLAS on fastgen's OpenMP team (csrc/blas_threads.cpp,
fastgen/_native/blas_threads.py): OpenBLAS's threaded jobs wait for each other, so every path of
the runner must run a call's jobs at the same time; results must not change; the environment and
the public switch turn it off."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastgen.ops as ops
from fastgen._native import cpu as _cpu
from fastgen._native.blas_threads import shared_libraries

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C = _cpu.C


def numpy_blas_has_hook() -> bool:
    return any("numpy" in path for path in ops.share_blas_threads())


def run_script(script: str, **env_vars) -> str:
    path = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path, **env_vars)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, cwd=REPO, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(autouse=True)
def sharing_restored():
    yield
    ops.share_blas_threads(True)


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_a_calls_jobs_all_run_at_once_on_the_team(jobs):
    before = C.blas_jobs_stats()
    assert C.blas_jobs_meet(jobs, False)
    after = C.blas_jobs_stats()
    assert after["calls"] == before["calls"] + 1
    assert after["calls_on_own_threads"] == before["calls_on_own_threads"]


def test_inside_an_openmp_region_the_jobs_get_threads_of_their_own():
    # A nested region would give one thread, and jobs waiting for each other would never meet.
    before = C.blas_jobs_stats()["calls_on_own_threads"]
    assert C.blas_jobs_meet(2, True)
    assert C.blas_jobs_stats()["calls_on_own_threads"] == before + 1


def test_numpy_and_scipy_products_are_unchanged_and_go_through_the_team():
    from scipy.linalg import blas

    if not numpy_blas_has_hook():
        pytest.skip("NumPy's BLAS is not an OpenBLAS with the threads hook (OpenBLAS >= 0.3.27, pthreads)")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((700, 500))
    b = rng.standard_normal((500, 600)).astype(np.float32)
    af = np.asfortranarray(a.astype(np.float32))
    ops.share_blas_threads(False)
    assert shared_libraries() == []
    calls = C.blas_jobs_stats()["calls"]
    own = (a @ a.T, blas.sgemm(1.0, af, b))
    assert C.blas_jobs_stats()["calls"] == calls
    assert ops.share_blas_threads(True) == shared_libraries() != []
    shared = (a @ a.T, blas.sgemm(1.0, af, b))
    assert C.blas_jobs_stats()["calls"] >= calls + 2
    for x, y in zip(own, shared):
        assert x.tobytes() == y.tobytes()


def test_the_switch_takes_only_a_bool():
    with pytest.raises(TypeError, match="enabled must be a bool"):
        ops.share_blas_threads("no")


def test_the_environment_turns_the_sharing_off():
    out = run_script("""
        import numpy as np
        import fastgen.ops
        from fastgen._native import cpu
        from fastgen._native.blas_threads import shared_libraries
        a = np.random.default_rng(0).standard_normal((600, 600))
        a @ a
        print(shared_libraries(), cpu.blas_threads_stats()["calls"])
    """, FASTGEN_SHARE_BLAS_THREADS="0")
    assert out.split() == ["[]", "0"]


_FORK_SCRIPT = """
    import os, sys
    import numpy as np
    import fastgen.ops as ops
    from fastgen._native import cpu
    if not any("numpy" in p for p in ops.share_blas_threads()):
        print("no hook"); sys.exit(0)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((600, 600))
    W = rng.normal(0, 0.1, (300, 200)); b = np.zeros(200); c = np.zeros(300)
    v = (rng.random((50, 200)) < 0.5).astype(np.float64)
    expected = (a @ a).tobytes()                         # a BLAS call on the team in the parent
    ops.gibbs(v, W, b, c, 2)                             # and an OpenMP region of fastgen's own
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                         # the child: the forking thread cannot start a team
        ok = (a @ a).tobytes() == expected and cpu.blas_threads_stats()["calls_on_own_threads"] >= 1
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    print("child ok" if os.read(read, 1) == b"1" else "child wrong")
"""


def test_a_forked_child_runs_blas_on_threads_of_its_own():
    out = run_script(_FORK_SCRIPT, OMP_NUM_THREADS="2")
    assert out.strip() in ("child ok", "no hook")
    if out.strip() == "no hook":
        pytest.skip("NumPy's BLAS has no threads hook")


def test_a_thread_limit_below_the_jobs_falls_back_to_threads_of_their_own():
    out = run_script("""
        import numpy as np
        import fastgen.ops as ops
        from fastgen._native import cpu
        a = np.random.default_rng(2).standard_normal((600, 600))
        ops.share_blas_threads(False); own = (a @ a).tobytes()
        ops.share_blas_threads(True); shared = (a @ a).tobytes()
        stats = cpu.blas_threads_stats()
        print(own == shared, stats["calls"] >= 1 and stats["calls_on_own_threads"] == stats["calls"])
    """, OMP_THREAD_LIMIT="1", OPENBLAS_NUM_THREADS="2")
    assert out.split() == ["True", "True"]
