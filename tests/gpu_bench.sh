#!/usr/bin/env bash
# The GPU benchmark in one prepared command (about 4-5 minutes on one H200; no
# configuration starts after 270 s, see afno_lite.bench): the "gpu" preset of
#   python -m afno_lite.bench scaling --gpu --device cuda
# (forward + backward, C = 256 and 768, B = 1 and 8, N = 1,024 ... 65,536, fp32 and bf16
# autocast, fast AFNO eager and compiled, the NVIDIA layer, 8-head attention, both FFT floors,
# three sessions), then the goals. Run from anywhere:
#   bash tests/gpu_bench.sh                                # on the GPU machine
#   GPU_BENCH_ALLOW_CPU=1 bash tests/gpu_bench.sh          # no GPU: the --device cpu --tiny dry run
#   bash tests/gpu_bench.sh --deadline 240                 # extra arguments go to "scaling"
# Writes into $OUT when set (else ./bench_results_gpu on a GPU, build/gpu_dry_run for the dry
# run): bench_scaling_gpu.json, .png, the log gpu_bench.log with nvidia-smi's line, and copies
# the JSON and PNG to
# $OUT/notebooks/results/ (the paths they have in the repository: copy them there to ship).
# Without CUDA it fails loudly (exit 3) unless GPU_BENCH_ALLOW_CPU=1.
set -uo pipefail
cd "$(dirname "$0")/.."
source tests/gpu_env.sh
if gpu_or_dry_run gpu_bench.sh GPU_BENCH_ALLOW_CPU; then
    on_gpu=1 args=(--gpu --device cuda)
else
    on_gpu=0 args=(--gpu --device cpu --tiny)
fi
dest=$(result_dir gpu_bench.sh bench_results_gpu "$on_gpu")
mkdir -p "$dest/notebooks/results"
rm -f "$dest/gpu_bench.log"
print_versions "$dest/gpu_bench.log" "$on_gpu"
"$PY" -m afno_lite.bench scaling "${args[@]}" --name bench_scaling_gpu --out "$dest" --no-progress "$@" 2>&1 \
    | tee -a "$dest/gpu_bench.log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
    echo "gpu_bench.sh: ERROR: the benchmark exited with status $status (see $dest/gpu_bench.log)" >&2
    exit "$status"
fi
for f in bench_scaling_gpu.json bench_scaling_gpu.png; do
    [ -f "$dest/$f" ] && cp "$dest/$f" "$dest/notebooks/results/$f"
done
ls -l "$dest" "$dest/notebooks/results"
