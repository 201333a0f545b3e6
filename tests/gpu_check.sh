#!/usr/bin/env bash
# One prepared GPU check (about 4-5 minutes on one GPU): first tests/gpu_check.py, which writes
# gpu_check.json (rewritten after each of its sections), then the cuda-marked tests. Results and
# logs go into $OUT when set, else notebooks/results on a GPU and build/gpu_dry_run for the dry
# run. Each step has its own time limit, so the whole script stays under 10 minutes even when
# something hangs.
#   OUT=$OUT bash tests/gpu_check.sh                 # on the GPU machine
#   GPU_CHECK_ALLOW_CPU=1 bash tests/gpu_check.sh     # no GPU: the --device cpu --tiny dry run
# Without CUDA it fails loudly (exit 3) unless GPU_CHECK_ALLOW_CPU=1.
set -uo pipefail
cd "$(dirname "$0")/.."
source tests/gpu_env.sh
if gpu_or_dry_run gpu_check.sh GPU_CHECK_ALLOW_CPU; then
    on_gpu=1 args=()
else
    on_gpu=0 args=(--device cpu --tiny)
fi
dest=$(result_dir gpu_check.sh notebooks/results "$on_gpu")
rm -f "$dest/gpu_check_run.txt"
print_versions "$dest/gpu_check_run.txt" "$on_gpu"
timeout -k 10 300 "$PY" tests/gpu_check.py --out "$dest" ${args[@]+"${args[@]}"} 2>&1 | tee -a "$dest/gpu_check_run.txt"
check=${PIPESTATUS[0]}
[ "$check" -eq 124 ] || [ "$check" -eq 137 ] && \
    echo "gpu_check.sh: ERROR: gpu_check.py stopped after 300 s (partial gpu_check.json)" >&2
timeout -k 10 200 "$PY" -m pytest -q -rfEs --durations=15 -p no:cacheprovider -m cuda tests/test_cuda.py \
    tests/test_fast.py 2>&1 | tee "$dest/gpu_check_pytest.txt"
status=${PIPESTATUS[0]}
[ "$status" -eq 124 ] || [ "$status" -eq 137 ] && echo "gpu_check.sh: ERROR: the cuda tests stopped after 200 s" >&2
echo "gpu_check.sh: gpu_check.py exit $check, cuda tests exit $status" | tee -a "$dest/gpu_check_run.txt"
ls -l "$dest"
exit $(( check || status ))
