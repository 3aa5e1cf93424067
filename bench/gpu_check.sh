#!/usr/bin/env bash
# One device call's worth of GPU diagnosis for fastgen's CUDA backend (docs/GPU.md). Every phase
# has a time box, clamped to what is left of BUDGET minus a reserve for the summary, and runs under
# `timeout -k`; nothing aborts the run (no set -e); everything lands under $OUT, and the summary is
# printed last so that it is in the device tool's output tail.
#
#   phase     box   what
#   env        30   nvidia-smi, nvcc, every package version, the device -> env.json
#   deps       60   packages the tests need that the image lacks, from .gpu_data/wheels (offline)
#   build     180   fastgen._C for this Python, in the background while smoke runs (fallback: g++)
#   smoke     120   bench/gpu_smoke.py: every kernel vs NumPy references, no fastgen._C needed
#   smoke-ops  40   gpu_smoke.py's torch-interop and validation-timing probes (need the build)
#   tests      --   one pytest process per file holding `gpu` tests (found at run time), -m gpu,
#                   junit XML each; 75 s a file (120 s for tests/torch/*), ahead of the bench's floor
#   bench     120   python -m bench rbm --device cuda --json --repeats 3 -> $OUT/<gpu-name>.json
#   memcheck   60   compute-sanitizer on the smoke's kernel groups, if time is left
#   summary         SUMMARY.md, junit.xml (merged), logs.tar.gz; at most 8 files in $OUT
#
# Without a GPU (no nvidia-smi, CuPy missing, no device) or with DRY_RUN=1 it runs end to end in
# seconds, recording every GPU phase as "skipped: <reason>".
#
#   OUT               where results go (default /tmp/fastgen_gpu_check)
#   BUDGET            seconds for the whole run (default 450; the device call's limit is 600)
#   FASTGEN_DATA_DIR  folder holding mnist_test_10k.npz (default .gpu_data, else ../shared/data)
#   DRY_RUN=1         skip every GPU phase;  SKIP_BUILD=1 SKIP_TESTS=1 SKIP_BENCH=1 SANITIZE=0
#   STRICT=1          exit 1 when a phase failed (default: exit 0 once the run completed; the
#                     summary says what failed)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
OUT="${OUT:-/tmp/fastgen_gpu_check}"
mkdir -p "$OUT/detail"
D="$OUT/detail"
T0=$SECONDS
BUDGET="${BUDGET:-450}"
RESERVE="${RESERVE:-20}"      # kept for the summary
BENCH_FLOOR="${BENCH_FLOOR:-90}"  # the tests leave this much for the bench
MIN_PHASE=10                  # a phase with less than this is skipped, not started
py="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1 PYTHONDONTWRITEBYTECODE=1
if [ -z "${FASTGEN_DATA_DIR:-}" ]; then
  if [ -f .gpu_data/mnist_test_10k.npz ]; then FASTGEN_DATA_DIR=$ROOT/.gpu_data; else FASTGEN_DATA_DIR=$ROOT/../shared/data; fi
fi
export FASTGEN_DATA_DIR
export FASTGEN_KERNEL_CACHE="${FASTGEN_KERNEL_CACHE:-$D/kernel_cache}" CUPY_CACHE_DIR="${CUPY_CACHE_DIR:-$D/cupy_cache}"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
printf 'phase\tstatus\tseconds\tlimit\tnote\n' > "$OUT/phases.tsv"

left() { echo $(( BUDGET - (SECONDS - T0) )); }
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$OUT/phases.tsv"; }
skip() { echo "== $1: skipped: $2"; row "$1" skipped 0 0 "$2"; }

# clamp NAME MAX [HOLD]: the seconds NAME may run: MAX, at most what is left minus the summary's
# reserve and HOLD (time kept for later phases); 0 when that is under MIN_PHASE.
clamp() {
  local avail=$(( $(left) - RESERVE - ${3:-0} )) max=$2
  (( avail < max )) && max=$avail
  (( max < MIN_PHASE )) && max=0
  echo "$max"
}

# phase NAME MAX HOLD command...: run under timeout -k, record status, duration and limit.
phase() {
  local name=$1 max=$2 hold=$3; shift 3
  max=$(clamp "$name" "$max" "$hold")
  if (( max == 0 )); then skip "$name" "no time left ($(left)s of ${BUDGET}s, reserve ${RESERVE}s, held ${hold}s)"; return 0; fi
  echo "== $name (limit ${max}s, $(left)s left)"
  declare -F "$1" > /dev/null && set -- bash -c "$1"   # a shell function (exported) runs in its own bash
  local t=$SECONDS rc status note=""
  timeout -k 5 "$max" "$@"; rc=$?
  case $rc in
    0) status=ok ;;
    124|137) status=timeout; note="killed after ${max}s"; echo "!! $name TIMED OUT after ${max}s" ;;
    *) status="rc=$rc" ;;
  esac
  row "$name" "$status" $(( SECONDS - t )) "$max" "$note"
  return 0
}

# ---- is there a GPU? -----------------------------------------------------------------------------
GPU_REASON=""
if [ "${DRY_RUN:-0}" != "0" ]; then
  GPU_REASON="DRY_RUN=1"
elif ! command -v nvidia-smi > /dev/null 2>&1; then
  GPU_REASON="no nvidia-smi on PATH (no NVIDIA driver here)"
else
  GPU_REASON=$(timeout -k 5 40 "$py" -c "
try:
    import cupy
except Exception as e:
    print(f'CuPy does not import ({type(e).__name__}: {e})'.replace(chr(10), ' ')); raise SystemExit
try:
    n = cupy.cuda.runtime.getDeviceCount()
except Exception as e:
    print(f'no CUDA device ({type(e).__name__}: {e})'.replace(chr(10), ' ')); raise SystemExit
print('' if n > 0 else 'no CUDA device')
" 2>&1 | tail -1) || GPU_REASON="the CuPy device probe failed or hung"
fi
echo "== fastgen GPU check: budget ${BUDGET}s, OUT=$OUT, GPU: ${GPU_REASON:-yes}"

# ---- env -------------------------------------------------------------------------------------------
env_phase() {
  { nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_cap --format=csv; } \
    > "$D/nvidia-smi.txt" 2>&1 || echo "nvidia-smi: unavailable" >> "$D/nvidia-smi.txt"
  GPU_REASON="$GPU_REASON" BUDGET="$BUDGET" "$py" - "$OUT/env.json" <<'EOF'
import importlib, json, os, platform, shutil, subprocess, sys
info = {"python": sys.version, "executable": sys.executable, "platform": platform.platform(),
        "machine": platform.machine(), "cpus": os.cpu_count(), "gpu": os.environ.get("GPU_REASON") or "yes",
        "budget_s": int(os.environ["BUDGET"])}
def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"
info["nvidia-smi"] = run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap", "--format=csv,noheader"]) if shutil.which("nvidia-smi") else "absent"
info["nvcc"] = run(["nvcc", "--version"]).splitlines()[-1:] if shutil.which("nvcc") else "absent"
info["compute-sanitizer"] = (run(["compute-sanitizer", "--version"]).splitlines() or ["?"])[-1] if shutil.which("compute-sanitizer") else "absent"
info["cuobjdump"] = shutil.which("cuobjdump") or "absent"
versions = {}
for mod in ("numpy", "scipy", "sklearn", "threadpoolctl", "joblib", "torch", "cupy", "numba", "pybind11",
            "setuptools", "pytest", "pytest_timeout", "PIL", "tqdm", "learnergy"):
    try:
        versions[mod] = getattr(importlib.import_module(mod), "__version__", "?")
    except Exception as exc:
        versions[mod] = f"missing ({type(exc).__name__})"
info["versions"] = versions
if not os.environ.get("GPU_REASON"):
    try:
        import cupy as cp
        rt = cp.cuda.runtime
        props = rt.getDeviceProperties(0)
        name = props["name"]
        info["device"] = {"name": name.decode() if isinstance(name, bytes) else name,
                          "compute_capability": f"{props['major']}.{props['minor']}",
                          "multiprocessors": props["multiProcessorCount"], "memory_bytes": props["totalGlobalMem"],
                          "driver": rt.driverGetVersion(), "runtime": rt.runtimeGetVersion()}
        from cupy_backends.cuda.libs import nvrtc
        info["device"]["nvrtc"] = ".".join(map(str, nvrtc.getVersion()))
    except Exception as exc:
        info["device_error"] = f"{type(exc).__name__}: {exc}"
    try:
        import torch
        info["torch_cuda"] = {"version": torch.version.cuda, "available": torch.cuda.is_available(),
                              "device": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    except Exception as exc:
        info["torch_cuda"] = f"{type(exc).__name__}: {exc}"
info["env"] = {k: v for k, v in os.environ.items() if k.startswith(("FASTGEN_", "CUDA_", "CUPY_", "OMP_")) or k in ("DRY_RUN", "BUDGET")}
json.dump(info, open(sys.argv[1], "w"), indent=1, default=str)
print(json.dumps({k: info[k] for k in ("python", "gpu", "nvidia-smi", "nvcc")}, default=str))
print("versions:", " ".join(f"{k}={v}" for k, v in versions.items()))
EOF
}
export -f env_phase
export py D OUT GPU_REASON BUDGET
phase env 30 0 env_phase

# ---- deps: what the tests import and the image lacks, from carried wheels --------------------------
deps_phase() {
  local missing
  missing=$("$py" -c "
import importlib.util as u
need = {'scipy': 'scipy', 'sklearn': 'scikit-learn', 'threadpoolctl': 'threadpoolctl', 'joblib': 'joblib',
        'setuptools': 'setuptools', 'pybind11': 'pybind11', 'pytest': 'pytest'}
print(' '.join(p for m, p in need.items() if u.find_spec(m) is None))")
  echo "missing: ${missing:-none}"
  [ -z "$missing" ] && return 0
  if [ "${DRY_RUN:-0}" != "0" ]; then echo "dry run: would install $missing from .gpu_data/wheels"; return 0; fi
  if [ ! -d .gpu_data/wheels ]; then echo "!! no .gpu_data/wheels (run bench/gpu_wheels.sh here and carry .gpu_data)"; return 3; fi
  local target=()
  if ! "$py" -c "import site, os, sys; p = site.getsitepackages()[0]; sys.exit(0 if os.access(p, os.W_OK) else 1)"; then
    target=(--target "$D/site"); export PYTHONPATH="$D/site${PYTHONPATH:+:$PYTHONPATH}"
    echo "site-packages is read-only: installing into $D/site (added to PYTHONPATH)"
  fi
  # shellcheck disable=SC2086
  "$py" -m pip install -q --no-index --no-deps --no-compile --find-links .gpu_data/wheels "${target[@]}" $missing \
    && echo "installed: $missing" || { echo "!! pip install from .gpu_data/wheels failed"; return 4; }
}
if [ -n "$GPU_REASON" ] && [ "$GPU_REASON" != "DRY_RUN=1" ]; then DRY_RUN=1; fi
export -f deps_phase
export DRY_RUN="${DRY_RUN:-0}"
phase deps 60 0 deps_phase
[ -d "$D/site" ] && export PYTHONPATH="$D/site${PYTHONPATH:+:$PYTHONPATH}"

# ---- build (background) ----------------------------------------------------------------------------
build_phase() {
  local jobs; jobs=$(nproc 2>/dev/null || echo 4)
  if "$py" -c "import setuptools, pybind11" 2>/dev/null; then
    "$py" setup.py build_ext --inplace -j "$jobs" > "$D/build.log" 2>&1 && { echo "built with setup.py build_ext"; return 0; }
    echo "!! setup.py build_ext failed:"; tail -20 "$D/build.log"
  fi
  echo "== build fallback: g++ without setuptools" | tee -a "$D/build.log"
  local inc ext flags obj=$D/obj
  inc="$("$py" -c "import sysconfig, pybind11; print('-I'+sysconfig.get_paths()['include'], '-I'+pybind11.get_include())")" || return 1
  ext="$("$py" -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")"
  flags="-std=c++17 -O3 -fopenmp -ffp-contract=off -fno-math-errno -fPIC $inc -Ikernels/include -Icsrc"
  mkdir -p "$obj"
  # shellcheck disable=SC2016
  printf '%s\n' csrc/*.cpp | xargs -P "$jobs" -I{} sh -c 'g++ '"$flags"' -c "$1" -o "$2/$(basename "$1" .cpp).o"' _ {} "$obj" >> "$D/build.log" 2>&1 &&
    g++ -shared -fopenmp "$obj"/*.o -o "fastgen/_C$ext" >> "$D/build.log" 2>&1 || { tail -20 "$D/build.log"; return 1; }
  echo "built with g++"
}
BUILD_PID=""
if [ "${DRY_RUN:-0}" != "0" ]; then
  skip build "${GPU_REASON:-DRY_RUN=1}: fastgen._C is not rebuilt"
elif [ "${SKIP_BUILD:-0}" = "1" ]; then
  skip build "SKIP_BUILD=1"
else
  BUILD_MAX=$(clamp build 180 "$BENCH_FLOOR")
  if (( BUILD_MAX == 0 )); then skip build "no time left"; else
    echo "== build (background, limit ${BUILD_MAX}s; log detail/build.log)"
    BUILD_T=$SECONDS
    ( timeout -k 5 "$BUILD_MAX" bash -c "$(declare -f build_phase); py='$py' D='$D' build_phase" > "$D/build.out" 2>&1; echo $? > "$D/build.rc" ) &
    BUILD_PID=$!
  fi
fi
wait_build() {
  [ -z "$BUILD_PID" ] && return 0
  wait "$BUILD_PID"
  local rc; rc=$(cat "$D/build.rc" 2>/dev/null || echo 1)
  cat "$D/build.out"
  case $rc in 0) st=ok ;; 124|137) st=timeout ;; *) st="rc=$rc" ;; esac
  row build "$st" $(( SECONDS - BUILD_T )) "$BUILD_MAX" "in the background during smoke"
  echo "== build: $st"
  BUILD_PID=""
}

# ---- smoke: every kernel, no fastgen._C needed ------------------------------------------------------
KERNEL_GROUPS=compile,rng,sampling,cd,gibbs,graph,epoch,elbo,reparam,pool,conv,categorical,ftz,coverage
if [ -n "$GPU_REASON" ]; then
  skip smoke "$GPU_REASON"
  skip smoke-ops "$GPU_REASON"
  "$py" bench/gpu_smoke.py --out "$D/smoke" > "$D/smoke_dry.log" 2>&1   # records each check as SKIP
else
  SMOKE_MAX=$(clamp smoke 120 "$BENCH_FLOOR")
  phase smoke 120 "$BENCH_FLOOR" "$py" bench/gpu_smoke.py --out "$D/smoke" --only "$KERNEL_GROUPS" --hang-timeout $(( SMOKE_MAX > 15 ? SMOKE_MAX - 5 : 10 ))
  wait_build
  phase smoke-ops 40 "$BENCH_FLOOR" "$py" bench/gpu_smoke.py --out "$D/smoke" --append --only interop,timing --hang-timeout 35
fi
wait_build

# ---- gpu tests: one process per file ------------------------------------------------------------
gpu_test_files() {
  # files holding gpu-marked tests: an explicit mark, or a test taking the `device` fixture (its
  # "cuda" case is gpu-marked); cuda/ and ops/ first, torch/ (slow torch.compile cases) and numba/ last
  grep -rlE --include='test_*.py' 'mark\.gpu|pytest\.mark\.(usefixtures\()?.?gpu|def test_[a-zA-Z0-9_]*\([^)]*\bdevice\b' tests \
    | awk '{p = 5} /^tests\/cuda\//{p = 1} /^tests\/ops\//{p = 2} /^tests\/models\//{p = 3} /^tests\/torch\//{p = 4} {print p "\t" $0}' \
    | sort -k1,1n -k2 | cut -f2
}
if [ -n "$GPU_REASON" ]; then
  files=$(gpu_test_files | tr '\n' ' ')
  skip tests "$GPU_REASON (would run one pytest -m gpu process each: $files)"
elif [ "${SKIP_TESTS:-0}" = "1" ]; then
  skip tests "SKIP_TESTS=1"
else
  timeout_opt=()
  "$py" -c "import pytest_timeout" 2>/dev/null && timeout_opt=(-p pytest_timeout --timeout=60 --timeout-method=signal)
  for f in $(gpu_test_files); do
    slug=$(echo "${f#tests/}" | sed 's/\.py$//; s/[^A-Za-z0-9]/_/g')
    box=75; case $f in tests/torch/*) box=120 ;; esac
    phase "tests:${f#tests/}" "$box" "$BENCH_FLOOR" "$py" -m pytest "$f" -m gpu -q -rfEs -p no:cacheprovider \
      -o faulthandler_timeout=$(( box - 15 )) "${timeout_opt[@]}" --durations=5 --junitxml="$D/junit_$slug.xml"
  done
fi

# ---- bench -----------------------------------------------------------------------------------------
SLUG=""
if [ -n "$GPU_REASON" ]; then
  skip bench "$GPU_REASON"
elif [ "${SKIP_BENCH:-0}" = "1" ]; then
  skip bench "SKIP_BENCH=1"
else
  SLUG=$("$py" -c "import cupy, re; n = cupy.cuda.runtime.getDeviceProperties(0)['name']; n = n.decode() if isinstance(n, bytes) else n; print(re.sub(r'[^a-z0-9]+', '-', n.lower()).strip('-'))" 2>/dev/null || echo gpu)
  phase bench 120 0 "$py" -m bench rbm --device cuda --json --out "$OUT/$SLUG.json" --repeats 3
fi

# ---- memcheck (what time is left) ---------------------------------------------------------------
if [ -n "$GPU_REASON" ]; then
  skip memcheck "$GPU_REASON"
elif [ "${SANITIZE:-1}" = "0" ]; then
  skip memcheck "SANITIZE=0"
elif ! command -v compute-sanitizer > /dev/null 2>&1; then
  skip memcheck "compute-sanitizer is not on PATH"
else
  phase memcheck 60 0 compute-sanitizer --tool memcheck --print-limit 20 --error-exitcode 9 \
    "$py" bench/gpu_smoke.py --out "$D/memcheck" --only rng,sampling,cd,gibbs,elbo,reparam,pool,conv,categorical
fi

# ---- summary ----------------------------------------------------------------------------------------
"$py" - "$OUT" "$SLUG" "${GPU_REASON}" <<'EOF' > "$OUT/SUMMARY.md" 2>&1
import glob, json, os, sys, xml.etree.ElementTree as ET
out, slug, reason = sys.argv[1], sys.argv[2], sys.argv[3]
D = os.path.join(out, "detail")
env = {}
try:
    env = json.load(open(os.path.join(out, "env.json")))
except Exception as exc:
    env = {"error": repr(exc)}
smoke_env = {}
try:
    smoke_env = json.load(open(os.path.join(D, "smoke", "env.json")))
except Exception:
    pass
if smoke_env:
    env["smoke_env"] = smoke_env
    json.dump(env, open(os.path.join(out, "env.json"), "w"), indent=1, default=str)
print("# fastgen GPU check\n")
dev = env.get("device") or {}
if reason:
    print(f"GPU: none ({reason}): every GPU phase skipped\n")
else:
    print(f"device: {dev.get('name')} (compute {dev.get('compute_capability')}), driver {dev.get('driver')}, runtime "
          f"{dev.get('runtime')}, NVRTC {dev.get('nvrtc')}; CuPy {env.get('versions', {}).get('cupy')}, torch "
          f"{env.get('versions', {}).get('torch')}, numpy {env.get('versions', {}).get('numpy')}\n")
print("## phases (status, seconds, limit)\n")
for line in open(os.path.join(out, "phases.tsv")).read().splitlines()[1:]:
    name, status, secs, limit, note = (line.split("\t") + [""] * 5)[:5]
    print(f"- {name}: {status} {secs}s/{limit}s {note}".rstrip())
print()
for name in ("smoke", "memcheck"):
    p = os.path.join(D, name, "smoke_summary.json")
    if not os.path.exists(p):
        continue
    s = json.load(open(p))
    print(f"## {name}: {s['counts']}\n")
    for r in s["results"]:
        if r["status"] in ("FAIL", "ERROR", "INFO") or (r["status"] == "SKIP" and not reason):
            print(f"- [{r['status']}] {r['group']}/{r['check']}: {r['detail'][:500].splitlines()[0] if r['detail'] else ''}")
    print()
suites = []
for x in sorted(glob.glob(os.path.join(D, "junit_*.xml"))):
    try:
        root = ET.parse(x).getroot()
        suites += [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    except Exception as exc:
        print(f"- {os.path.basename(x)}: unreadable ({exc})")
if suites:
    print("## gpu tests (junit)\n")
    merged = ET.Element("testsuites")
    for s in suites:
        merged.append(s)
        a = s.attrib
        print(f"- {a.get('name')}: {a.get('tests')} tests, {a.get('failures')} failures, {a.get('errors')} errors, "
              f"{a.get('skipped')} skipped, {float(a.get('time', 0)):.1f}s")
        shown = 0
        for case in s.iter("testcase"):
            for bad in list(case.findall("failure")) + list(case.findall("error")):
                if shown < 8:
                    print(f"    {case.get('classname')}::{case.get('name')}: {(bad.get('message') or '')[:240]}")
                shown += 1
        if shown > 8:
            print(f"    ... {shown - 8} more")
    ET.ElementTree(merged).write(os.path.join(out, "junit.xml"), encoding="utf-8", xml_declaration=True)
    print()
if slug:
    p = os.path.join(out, f"{slug}.json")
    if os.path.exists(p):
        doc = json.load(open(p))
        gpu = doc.get("environment", {}).get("gpu")
        print(f"## bench: {os.path.basename(p)} (device named inside: {gpu!r}); commit it to bench/results/\n")
    else:
        print("## bench: no results file (see detail/ logs)\n")
EOF
cp -f "$D/smoke/smoke_summary.json" "$OUT/smoke_summary.json" 2>/dev/null
# at most 8 files come back from $OUT: everything else goes into logs.tar.gz
tar -czf "$OUT/logs.tar.gz" -C "$OUT" --exclude=kernel_cache --exclude=cupy_cache --exclude=site --exclude=obj detail 2>/dev/null \
  && rm -rf "$D"
echo "== done in $(( SECONDS - T0 ))s of ${BUDGET}s; files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
echo
cat "$OUT/SUMMARY.md"
if [ "${STRICT:-0}" = "1" ] && cut -f2 "$OUT/phases.tsv" | tail -n +2 | grep -qvE '^(ok|skipped)$'; then exit 1; fi
exit 0
