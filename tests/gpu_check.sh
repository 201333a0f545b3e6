#!/usr/bin/env bash
# One prepared GPU check (about 4-5 minutes on one GPU): first tests/gpu_check.py, which writes
# gpu_check.json (rewritten after each of its sections), then the cuda-marked tests. Results and
# logs go into $OUT when set, else notebooks/results. Each step has its own time limit, so the
# whole script stays under 10 minutes even when something hangs.
#   OUT=$OUT bash tests/gpu_check.sh                 # on the GPU machine
#   GPU_CHECK_ALLOW_CPU=1 bash tests/gpu_check.sh     # no GPU: the --device cpu --tiny dry run
# Without CUDA it fails loudly (exit 3) unless GPU_CHECK_ALLOW_CPU=1.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
dest="${OUT:-notebooks/results}"
[ -z "${OUT:-}" ] && echo "gpu_check.sh: OUT is not set (or not exported): results go to $dest" >&2
mkdir -p "$dest"

if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$dest/gpu_check_nvidia_smi.txt"
    args=()
elif [ "${GPU_CHECK_ALLOW_CPU:-0}" = "1" ]; then
    echo "gpu_check.sh: no CUDA device; GPU_CHECK_ALLOW_CPU=1: gpu_check.py --device cpu --tiny (the cuda tests skip)" >&2
    args=(--device cpu --tiny)
else
    echo "gpu_check.sh: ERROR: torch sees no CUDA device (torch.cuda.is_available() is False)." >&2
    echo "  This script is for the GPU machine; set GPU_CHECK_ALLOW_CPU=1 for the CPU dry run." >&2
    exit 3
fi

"$PY" -c 'import torch, platform; print("python", platform.python_version(), "torch", torch.__version__,
"cuda", torch.version.cuda)' | tee "$dest/gpu_check_run.txt"
timeout -k 10 300 "$PY" tests/gpu_check.py --out "$dest" ${args[@]+"${args[@]}"} 2>&1 | tee -a "$dest/gpu_check_run.txt"
check=${PIPESTATUS[0]}
[ "$check" -eq 124 ] && echo "gpu_check.sh: ERROR: gpu_check.py stopped after 300 s (partial gpu_check.json)" >&2
timeout -k 10 200 "$PY" -m pytest -q -rfEs --durations=15 -p no:cacheprovider -m cuda tests/test_cuda.py \
    tests/test_fast.py 2>&1 | tee "$dest/gpu_check_pytest.txt"
status=${PIPESTATUS[0]}
[ "$status" -eq 124 ] && echo "gpu_check.sh: ERROR: the cuda tests stopped after 200 s" >&2
echo "gpu_check.sh: gpu_check.py exit $check, cuda tests exit $status" | tee -a "$dest/gpu_check_run.txt"
ls -l "$dest"
exit $(( check || status ))
