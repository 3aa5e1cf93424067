"""Shared machinery for the benchmark scenarios: the registry, interleaved timing, tables,
targets, the environment record and the JSON results file.

Conventions every scenario follows (see DESIGN.md, "Tests, benchmarks, devices"):

* all implementations of one scenario run in the same process, each warmed up once, then timed
  in interleaved rounds (A, B, C, A, B, C, ...) so machine noise hits them alike;
* only medians over the repeats are compared, and only as ratios measured in that process;
* targets are printed as MET / MISSED beside the numbers, never asserted.
"""
from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
JSON_SCHEMA = 1


# ---- registry ----------------------------------------------------------------------------------
@dataclass
class Suite:
    """A named group of scenarios runnable as ``python -m bench NAME``.

    ``add_arguments(parser)`` adds the suite's own options to its sub-parser; ``run(args)`` runs
    it, printing as it goes, and returns the JSON-able results (``{"scenarios": {...}, ...}``);
    ``results_file`` is the file ``--json`` writes under bench/results/ by default.
    """

    name: str
    help: str
    run: Callable
    add_arguments: Callable | None = None
    results_file: str = "cpu.json"


SUITES: dict[str, Suite] = {}


def register(name: str, help: str, *, add_arguments=None, results_file: str = "cpu.json"):
    """Decorator: ``@register("rbm", "...", add_arguments=f)`` over the suite's run(args)."""

    def deco(run):
        # re-registering (a reloaded module) replaces the entry
        SUITES[name] = Suite(name, help, run, add_arguments, results_file)
        return run

    return deco


# ---- data --------------------------------------------------------------------------------------
def data_dir() -> Path:
    """``$FASTGEN_DATA_DIR`` if set, else ``../shared/data`` beside the repository checkout."""
    env = os.environ.get("FASTGEN_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def skip_line(what: str, reason: str) -> str:
    line = f"[skip] {what}: {reason}"
    print(line, flush=True)
    return line


# ---- background load -----------------------------------------------------------------------
def _system_busy_seconds() -> tuple[float, float] | None:
    """(busy, steal) CPU-seconds of all processes since boot (Linux /proc/stat), or None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(x) for x in fields[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)      # idle + iowait
    steal = ticks[7] if len(ticks) > 7 else 0
    busy = sum(ticks[:8]) - idle                                # guest time is already in user
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return busy / hz, steal / hz


class LoadMonitor:
    """Measures, over a with-block, how much CPU *other* processes used (and hypervisor steal),
    as a fraction of all cores: the noise a benchmark on a shared machine cannot see otherwise.
    ``foreign`` ~ 0 on a quiet machine; 0.5 on 2 cores means one core was busy elsewhere."""

    def __enter__(self):
        self._sys = _system_busy_seconds()
        self._own = sum(os.times()[:4])
        self._wall = time.perf_counter()
        self.foreign = self.steal = None
        return self

    def __exit__(self, *exc):
        end = _system_busy_seconds()
        wall = time.perf_counter() - self._wall
        if self._sys is None or end is None or wall <= 0:
            return False
        own = sum(os.times()[:4]) - self._own
        cores = os.cpu_count() or 1
        self.foreign = max(0.0, (end[0] - self._sys[0] - own) / (wall * cores))
        self.steal = max(0.0, (end[1] - self._sys[1]) / (wall * cores))
        return False

    def as_dict(self) -> dict:
        return {"foreign_cpu_fraction": self.foreign, "steal_fraction": self.steal}


def background_load(seconds: float = 1.0) -> dict:
    """The LoadMonitor reading over ``seconds`` of sleep: what else is running right now."""
    with LoadMonitor() as mon:
        time.sleep(seconds)
    return mon.as_dict()


BUSY_WARNING = 0.10


def load_warning(load: dict) -> str | None:
    """A warning line when other processes, or the hypervisor (steal: time this VM's cores were
    not running at all), took more than BUSY_WARNING of the CPUs; None otherwise."""
    foreign, steal = load.get("foreign_cpu_fraction"), load.get("steal_fraction")
    parts = []
    if foreign is not None and foreign > BUSY_WARNING:
        parts.append(f"other processes used {foreign:.0%} of the CPUs")
    if steal is not None and steal > BUSY_WARNING:
        parts.append(f"the hypervisor took {steal:.0%} of them (steal)")
    if parts:
        return (f"WARNING: {' and '.join(parts)} meanwhile; these timings are not representative "
                "(rerun on a quiet machine)")
    return None


def describe_load(load: "LoadMonitor") -> str:
    """One line on what else ran during a measurement, for the printed tables."""
    if load.foreign is None:
        return "background: unknown (no /proc/stat)"
    return (f"background: other processes used {load.foreign:.0%} of the CPUs, hypervisor steal "
            f"{load.steal:.0%}, during these runs")


# ---- timing ------------------------------------------------------------------------------------
# The idle wait before each timed call that suites without their own default use; the rbm suite
# defaults to none (what users get) and keeps --cooldown for a quiet-machine figure (issue 26).
DEFAULT_COOLDOWN_S = 0.2
QUIET_COOLDOWN_S = DEFAULT_COOLDOWN_S


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, *, warmup: int = 1,
                     cooldown: float = DEFAULT_COOLDOWN_S,
                     before_each: Callable[[], object] | None = None) -> dict[str, list[float]]:
    """Seconds of each call, ``repeats`` per implementation, interleaved across implementations
    (A, B, C, A, B, C, ...), with ``time.perf_counter``.

    * Each implementation is called ``warmup`` times first (imports, first-call allocations,
      BLAS thread start-up).
    * ``cooldown`` seconds of sleep precede every timed call. OpenBLAS's worker threads spin for
      a while (THREAD_TIMEOUT, ~0.1 s) after each call; when two BLAS libraries are loaded (NumPy's
      and SciPy's OpenBLAS are separate copies, and fastgen's C++ calls SciPy's), the threads of
      one still spinning steal the cores from the next implementation (docs/performance.md).
    * ``before_each()``, when given, runs right before every timed call of every implementation
      (after the cool-down, outside the timed interval): e.g. bench.load.NumpyBlasWork, the
      "after NumPy" situation.
    * The garbage collector is collected before and disabled during each timed call (as
      ``timeit`` does), so one implementation's garbage is not charged to another.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    gc_was_enabled = gc.isenabled()
    try:
        for _ in range(repeats):
            for name, fn in fns.items():
                gc.collect()
                if cooldown > 0:
                    time.sleep(cooldown)
                if before_each is not None:
                    before_each()
                gc.disable()
                start = time.perf_counter()
                fn()
                elapsed = time.perf_counter() - start
                if gc_was_enabled:
                    gc.enable()
                times[name].append(elapsed)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times


def median(values) -> float:
    return float(statistics.median(values))


def summarize(times: dict[str, list[float]], *, floor: str | None, reference: str | None) -> dict:
    """Per implementation: median seconds, all repeats, ratio to the floor's median and speed-up
    over the reference's median (reference median / this median)."""
    med = {name: median(ts) for name, ts in times.items()}
    out = {}
    for name, ts in times.items():
        row = {"median_s": med[name], "repeats_s": [float(t) for t in ts],
               "min_s": float(min(ts)), "max_s": float(max(ts))}
        if floor is not None:
            row["x_floor"] = med[name] / med[floor]
        if reference is not None:
            row["speedup_vs_reference"] = med[reference] / med[name]
        out[name] = row
    return out


def format_table(title: str, summary: dict, *, floor: str | None, reference: str | None,
                 reference_label: str | None = None, notes: dict[str, str] | None = None) -> str:
    """A fixed-width table: implementation, median s, spread (min-max), x floor, speed-up vs the
    reference (``reference_label`` names it in the header; default: its key)."""
    notes = notes or {}
    width = max([len("implementation")] + [len(name) for name in summary]) + 2
    speed_head = f"speed-up vs {reference_label or reference}"
    head = f"  {'implementation':<{width}}{'median s':>10}{'min-max s':>17}"
    if floor is not None:
        head += f"{'x floor':>9}"
    if reference is not None:
        head += f"{speed_head:>{len(speed_head) + 3}}"
    lines = [title, head]
    for name, row in summary.items():
        spread = f"{row['min_s']:.4f}-{row['max_s']:.4f}"
        line = f"  {name:<{width}}{row['median_s']:>10.4f}{spread:>17}"
        if floor is not None:
            line += f"{row['x_floor']:>9.2f}"
        if reference is not None:
            line += f"{row['speedup_vs_reference']:>{len(speed_head) + 3}.2f}"
        if name in notes:
            line += f"   {notes[name]}"
        lines.append(line)
    return "\n".join(lines)


# ---- targets -----------------------------------------------------------------------------------
_OPS = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}


def target(label: str, measured: float, op: str, threshold: float, unit: str = "") -> dict:
    """A target as data: ``measured op threshold`` and whether it was met (never asserted)."""
    met = bool(_OPS[op](measured, threshold))
    return {"target": label, "measured": float(measured), "op": op, "threshold": float(threshold),
            "unit": unit, "status": "MET" if met else "MISSED", "met": met}


def print_target_summary(scenarios: dict) -> None:
    """The closing "Targets:" block of a suite: every scenario's targets, one line each."""
    lines = [f"{t['status']:<6} {t['target']} (measured {t['measured']:.3f}{t['unit']})"
             for s in scenarios.values() for t in s["targets"]]
    if lines:
        print("\nTargets:")
        for line in lines:
            print("  " + line)


def format_targets(targets: list[dict]) -> str:
    lines = []
    for t in targets:
        lines.append(f"  target {t['target']}: measured {t['measured']:.3f}{t['unit']} "
                     f"(needs {t['op']} {t['threshold']:g}{t['unit']}) -> {t['status']}")
    return "\n".join(lines)


# ---- environment -------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [f for f in wanted if f in present]
    except OSError:
        pass
    return []


def _threadpools() -> list[dict]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed"}]
    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer", "architecture",
            "filepath")
    pools = []
    for info in threadpool_info():
        pool = {k: info.get(k) for k in keep if k in info}
        # whose copy it is: site-packages/numpy.libs/... -> numpy
        parent = Path(str(info.get("filepath", ""))).parent.name
        pool["shipped_by"] = parent[:-5] if parent.endswith(".libs") else parent
        pools.append(pool)
    return pools


def _git_commit() -> str | None:
    """The checkout's commit (12 hex digits, "-dirty" when tracked files differ from it), or
    None outside a git checkout: the README's table names the code each result measured."""
    import subprocess

    def git(*args) -> str:
        return subprocess.run(["git", "-C", str(BENCH_DIR.parent), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


def environment() -> dict:
    """What the numbers were measured on (CPU, cores, library versions, BLAS, date, commit)."""
    import numpy as np

    env = {
        "device": f"CPU: {_cpu_model()}",
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "commit": _git_commit(),
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                                   "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_PROC_BIND")
                       if k in os.environ},
    }
    for module, key in (("scipy", "scipy"), ("sklearn", "scikit-learn"), ("fastgen", "fastgen")):
        try:
            env[key] = __import__(module).__version__
        except Exception as exc:  # pragma: no cover - recorded, not fatal
            env[key] = f"unavailable ({type(exc).__name__})"
    try:
        import fastgen._native.cpu as _cpu  # loads _C and hands it SciPy's BLAS

        env["fastgen_blas"] = "SciPy's BLAS (scipy.linalg.cython_blas ?gemm)"
        if hasattr(_cpu.C, "max_threads"):
            env["fastgen_openmp_threads"] = int(_cpu.C.max_threads())
    except Exception as exc:  # pragma: no cover
        env["fastgen_blas"] = f"unavailable ({type(exc).__name__})"
    # after fastgen/_cpu set GOMP_SPINCOUNT (if the user had set neither)
    env["thread_env"]["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "(unset)")
    env["thread_env"]["GOMP_SPINCOUNT"] = os.environ.get("GOMP_SPINCOUNT", "(unset)")
    env["threadpools"] = _threadpools()
    return env


def format_environment(env: dict) -> str:
    blas = [f"{p.get('shipped_by')}'s {p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads, "
            f"{p.get('architecture')})" for p in env.get("threadpools", []) if p.get("user_api") == "blas"]
    lines = [
        f"{env['device']}, {env['cores']} cores ({env['cores_usable']} usable)"
        + (f", flags {' '.join(env['cpu_flags'])}" if env.get("cpu_flags") else ""),
        f"python {env['python']}, numpy {env['numpy']}, scipy {env['scipy']}, scikit-learn {env['scikit-learn']}, "
        f"fastgen {env['fastgen']}; {env['date']}" + (f", commit {env['commit']}" if env.get("commit") else ""),
    ]
    if blas:
        lines.append("BLAS: " + "; ".join(blas))
        lines.append("      (the floor and scikit-learn use NumPy's; fastgen's C++ calls SciPy's ?gemm)")
    return "\n".join(lines)


# ---- results file ------------------------------------------------------------------------------

def start_torch_suite(title: str, quick: bool) -> dict:
    """The opening of a torch suite: the environment (with torch's version and the background
    load of the last second) printed under ``title``, with a warning when the machine is busy.
    Returns the environment for the results document."""
    import torch

    env = environment()
    env["torch"] = torch.__version__
    env["background_load_before"] = background_load(0.25 if quick else 1.0)
    print(title + (" -- QUICK mode: smoke test only, not for comparison" if quick else ""))
    print(format_environment(env) + f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads")
    warning = load_warning(env["background_load_before"])
    if warning:
        print("before starting: " + warning.replace("meanwhile", "in the last second"))
    return env


def results_document(suite: str, env: dict, settings: dict, scenarios: dict) -> dict:
    return {"schema": JSON_SCHEMA, "suite": suite, "command": " ".join(["python -m bench", *sys.argv[1:]]),
            "environment": env, "settings": settings, "scenarios": scenarios}


def write_json(document: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path
