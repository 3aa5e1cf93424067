#!/usr/bin/env bash
# Prepare .gpu_data/, the ignored folder that travels to a lent GPU machine with the device call
# (carry [".gpu_data"]; see docs/GPU.md): the MNIST file the GPU benchmark reads and wheels for
# Python 3.12 of the few packages bench/gpu_check.sh installs there when they are missing (the
# device machine has no network). Run it here once, on a machine with PyPI access:
#
#   bash bench/gpu_wheels.sh            # then check the printed sizes
#
#   SHARED_DATA   folder holding mnist_test_10k.npz (default: ../shared/data beside the checkout)
#   MAX_MIB       largest total size allowed for .gpu_data (default 60: the whole travelling
#                 tree, repository included, must stay under 64 MiB)
#
# Exit status: 0 when everything is in place and within MAX_MIB, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
data="$root/.gpu_data"
wheels="$data/wheels"
shared="${SHARED_DATA:-$root/../shared/data}"
max_mib="${MAX_MIB:-60}"
py="${PYTHON:-python3}"
status=0

# Versions for Python 3.12 that work with NumPy 2.x (the device image has NumPy 2.5): each is a
# fallback, installed there only when the image lacks the package.
PACKAGES=(
  "scipy==1.17.1"
  "scikit-learn==1.8.0"
  "threadpoolctl==3.6.0"
  "joblib==1.5.2"
  "setuptools==80.9.0"
)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64
           manylinux1_x86_64 any)

mkdir -p "$wheels"
grep -qxF "/.gpu_data/" .gitignore 2>/dev/null || echo "!! /.gpu_data/ is not in .gitignore: the wheels would be committed"

echo "== data"
if [ -f "$shared/mnist_test_10k.npz" ]; then
  cp -f "$shared/mnist_test_10k.npz" "$data/" && echo "copied $shared/mnist_test_10k.npz"
elif [ -f "$data/mnist_test_10k.npz" ]; then
  echo "kept $data/mnist_test_10k.npz ($shared has none)"
else
  echo "!! no mnist_test_10k.npz in $shared: the GPU benchmark will skip its MNIST scenarios"
  status=1
fi

echo "== wheels (Python 3.12, manylinux x86_64)"
plat_args=()
for p in "${PLATFORMS[@]}"; do plat_args+=(--platform "$p"); done
for spec in "${PACKAGES[@]}"; do
  name=${spec%%==*}
  # one version of each package: an older download of the same name would stop the install there
  stem=$(echo "$name" | tr '-' '_')
  for old in "$wheels"/"$stem"-*.whl "$wheels"/"$name"-*.whl; do
    [ -e "$old" ] || continue
    case "$old" in *"-${spec##*==}-"*) ;; *) echo "removing stale $(basename "$old")"; rm -f "$old" ;; esac
  done
  # PIP_CONSTRAINT is cleared: a constraints file of this machine must not pin the other Python's wheels
  if ! PIP_CONSTRAINT="" "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp "${plat_args[@]}" -d "$wheels" "$spec"; then
    echo "!! pip download $spec failed"
    status=1
  fi
done

echo "== sizes"
ls -l "$wheels"/*.whl 2>/dev/null | awk '{printf "%8.1f MiB  %s\n", $5 / 1048576, $9}' | sed "s|$root/||"
bytes=$(du -sb "$data" | cut -f1)
tree_bytes=$(git ls-files -z --cached --others --exclude-standard 2>/dev/null | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
mib=$(( (bytes + 1048575) / 1048576 ))
tree_mib=$(( (${tree_bytes:-0} + 1048575) / 1048576 ))
echo ".gpu_data: ${mib} MiB (limit ${max_mib} MiB); the rest of the travelling tree: ${tree_mib} MiB; together at most 64 MiB"
if (( mib > max_mib )); then
  echo "!! .gpu_data is over ${max_mib} MiB"
  status=1
fi
if (( mib + tree_mib > 64 )); then
  echo "!! .gpu_data plus the working tree is over 64 MiB: the device call would be refused"
  status=1
fi
echo "== done (status $status). Device call: carry [\".gpu_data\"], command 'bash bench/gpu_check.sh'"
exit $status
