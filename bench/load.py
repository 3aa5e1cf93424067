"""The two "machine that is not quiet" situations of the CPU benchmarks (issue 26):

* **after NumPy** -- :class:`NumpyBlasWork`: a few NumPy matrix products, large enough to start
  (and leave spinning) NumPy's OpenBLAS worker threads, run right before each timed call of every
  implementation (``time_interleaved(..., before_each=...)``), outside the timed interval: what a
  user's script does when it calls fastgen after its own NumPy code.
* **under load** -- :class:`BackgroundLoad`: a bench-owned subprocess spinning one core (a pure
  Python loop, ``python -I -S``: no NumPy, no site), started before a scenario and stopped after
  it, checked to be busy before the timing starts and measured while it runs. It is bounded in
  time whatever happens to the bench: it exits by itself at its deadline, and earlier when its
  parent dies (it watches ``os.getppid()``), so a killed benchmark never leaves it spinning.
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

# ---- after NumPy -------------------------------------------------------------------------------
NUMPY_WORK_SIZE = 384          # 384^3 multiply-adds per product: well above OpenBLAS's threading threshold
NUMPY_WORK_PRODUCTS = 4


class NumpyBlasWork:
    """A callable doing ``products`` float64 ``size x size`` NumPy matmuls into a preallocated
    array (about 4 x 0.11 GFLOP: a few ms on two cores), so that NumPy's OpenBLAS threads were just
    busy, and are still spinning, when the next call starts. ``calls`` counts the calls."""

    def __init__(self, size: int = NUMPY_WORK_SIZE, products: int = NUMPY_WORK_PRODUCTS, seed: int = 0):
        import numpy as np

        rng = np.random.default_rng(seed)
        self.size, self.products = int(size), int(products)
        self._a = rng.standard_normal((size, size))
        self._b = rng.standard_normal((size, size)) / size
        self._out = np.empty((size, size))
        self._matmul = np.matmul
        self.calls = 0

    def __call__(self) -> None:
        a, b, out = self._a, self._b, self._out
        for _ in range(self.products):
            self._matmul(a, b, out=out)
        self.calls += 1

    def describe(self) -> dict:
        return {"name": "after NumPy", "numpy_products": self.products, "numpy_product_shape": [self.size] * 3,
                "dtype": "float64", "when": "right before each timed call of every implementation, not timed"}


# ---- under load --------------------------------------------------------------------------------
DEFAULT_DEADLINE_S = 600.0     # the longest a load process lives, even if the bench is killed
READY_TIMEOUT_S = 10.0
MIN_BUSY_FRACTION = 0.5        # of one core, over the verification window

# The load process: argv[1] is its lifetime in seconds, argv[2] "1" to exit when its parent dies.
# Pure Python (no imports beyond os/sys/time), so that it cannot start a BLAS pool of its own.
SPIN_CODE = r"""
import os, sys, time
deadline = time.monotonic() + float(sys.argv[1])
watch = sys.argv[2] == "1"
parent = os.getppid()
try:
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    x = 0
    while True:
        for i in range(20000):
            x = (x + i) & 0xFFFF
        if time.monotonic() >= deadline or (watch and os.getppid() != parent):
            break
except (KeyboardInterrupt, BrokenPipeError):
    pass
"""


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux /proc), or None when unreadable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()      # after "pid (comm) ": state is fields[0]
    ticks = int(fields[11]) + int(fields[12])         # utime, stime (fields 14, 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def process_running(pid: int) -> bool:
    """Whether ``pid`` exists and has not exited (a zombie waiting for its reaper counts as exited)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    state = text[text.rfind(")") + 2:].split()[0]
    return state not in ("Z", "X", "x")


class BackgroundLoad:
    """A subprocess keeping one core busy, as a context manager::

        with BackgroundLoad(deadline_s=300) as load:
            ... timed work ...
        load.as_dict()   # pid, verified busy fraction, busy fraction while it ran, lifetime

    ``start()`` waits for the process's "ready" line, then measures its CPU time over
    ``verify_s`` seconds and raises RuntimeError when it is not running; a busy fraction below
    MIN_BUSY_FRACTION (the machine is saturated already) is recorded and flagged, not fatal.
    ``stop()`` terminates it (then kills it) and reaps it; it also exits by itself after
    ``deadline_s`` seconds, and, with ``watch_parent``, as soon as its parent process dies.
    """

    def __init__(self, deadline_s: float = DEFAULT_DEADLINE_S, *, verify_s: float = 0.3,
                 watch_parent: bool = True):
        if not deadline_s > 0:
            raise ValueError(f"deadline_s must be > 0, got {deadline_s}")
        self.deadline_s = float(deadline_s)
        self.verify_s = float(verify_s)
        self.watch_parent = bool(watch_parent)
        self.proc: subprocess.Popen | None = None
        self.verified_busy_fraction: float | None = None
        self.busy_fraction: float | None = None      # over start() .. stop(), after verification
        self.ran_s: float | None = None
        self.alive_at_stop: bool | None = None
        self._cpu0 = self._t0 = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def command(self) -> list[str]:
        return [sys.executable, "-I", "-S", "-c", SPIN_CODE, repr(self.deadline_s),
                "1" if self.watch_parent else "0"]

    def start(self) -> "BackgroundLoad":
        if self.proc is not None:
            raise RuntimeError("this BackgroundLoad was started already")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, close_fds=True)
        try:
            ready, _, _ = select.select([self.proc.stdout], [], [], READY_TIMEOUT_S)
            line = self.proc.stdout.readline() if ready else b""
            if line.strip() != b"ready":
                raise RuntimeError(f"the background load process (pid {self.proc.pid}) did not start "
                                   f"(exit status {self.proc.poll()})")
            self.verified_busy_fraction = self.measure(self.verify_s)
            if self.proc.poll() is not None:
                raise RuntimeError(f"the background load process exited early (status {self.proc.returncode})")
        except BaseException:
            self.stop()
            raise
        self._t0, self._cpu0 = time.perf_counter(), process_cpu_seconds(self.proc.pid)
        return self

    def measure(self, seconds: float) -> float | None:
        """The process's CPU seconds per wall second over the next ``seconds`` (1.0: one core)."""
        pid = self.proc.pid
        t0, c0 = time.perf_counter(), process_cpu_seconds(pid)
        time.sleep(seconds)
        t1, c1 = time.perf_counter(), process_cpu_seconds(pid)
        if c0 is None or c1 is None:
            return None
        return (c1 - c0) / (t1 - t0)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.ran_s is not None:
            return
        proc = self.proc
        self.alive_at_stop = proc.poll() is None
        if self._t0 is not None:
            cpu = process_cpu_seconds(proc.pid) if self.alive_at_stop else None
            wall = time.perf_counter() - self._t0
            if cpu is not None and self._cpu0 is not None and wall > 0:
                self.busy_fraction = (cpu - self._cpu0) / wall
            self.ran_s = wall
        else:
            self.ran_s = 0.0
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> "BackgroundLoad":
        return self.start()

    def __exit__(self, *exc) -> bool:
        self.stop()
        return False

    def as_dict(self) -> dict:
        return {"name": "under load", "load": "a bench-owned subprocess spinning a pure-Python loop (one core)",
                "pid": self.pid, "deadline_s": self.deadline_s,
                "verified_busy_fraction_of_a_core": self.verified_busy_fraction,
                "busy_fraction_of_a_core_during_timing": self.busy_fraction,
                "alive_until_stopped": self.alive_at_stop, "ran_s": self.ran_s}

    def describe(self) -> str:
        """One line for the printed tables."""
        def pct(x):
            return "unknown" if x is None else f"{x:.0%}"

        line = (f"load: pid {self.pid} spun {pct(self.busy_fraction)} of a core during the runs (verified "
                f"{pct(self.verified_busy_fraction)} before)")
        if self.alive_at_stop is False:
            line += "; WARNING: it had exited before the runs ended (deadline too short)"
        elif self.verified_busy_fraction is not None and self.verified_busy_fraction < MIN_BUSY_FRACTION:
            line += "; WARNING: it got under half a core: the machine was saturated already"
        return line


__all__ = ["NumpyBlasWork", "BackgroundLoad", "process_cpu_seconds", "process_running", "SPIN_CODE",
           "DEFAULT_DEADLINE_S", "MIN_BUSY_FRACTION"]
