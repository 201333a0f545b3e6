#!/usr/bin/env bash
# One prepared GPU check (<= 5 minutes on one GPU): the cuda-marked tests, then
# tests/gpu_check.py, which writes gpu_check.json (into $OUT when set, else notebooks/results).
#   bash tests/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
dest="${OUT:-notebooks/results}"
mkdir -p "$dest"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$dest/gpu_check_nvidia_smi.txt"
python -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py tests/test_fast.py 2>&1 | tee "$dest/gpu_check_pytest.txt"
status=${PIPESTATUS[0]}
python tests/gpu_check.py --out "$dest" 2>&1 | tee "$dest/gpu_check_run.txt"
exit $(( status || PIPESTATUS[0] ))
