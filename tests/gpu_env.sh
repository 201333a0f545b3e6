# Sourced by tests/gpu_check.sh and tests/gpu_bench.sh, from the repository root: the checkout
# on PYTHONPATH, unbuffered logs, $PY ($PYTHON when set, else the project's .venv when there is
# one, else python3), gpu_or_dry_run and print_versions.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python

# gpu_or_dry_run SCRIPT ALLOW_VAR: returns 0 when torch sees a CUDA device, 1 when there is none
# and $ALLOW_VAR is 1 (the CPU dry run); otherwise says so and exits 3.
gpu_or_dry_run() {
    local script=$1 allow=$2
    if timeout 120 "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        return 0
    elif [ "${!allow:-0}" = "1" ]; then
        echo "$script: no CUDA device; $allow=1: the CPU dry run (--device cpu --tiny)" >&2
        return 1
    fi
    echo "$script: ERROR: torch sees no CUDA device (torch.cuda.is_available() is False)." >&2
    echo "  This script is for the GPU machine; set $allow=1 for the CPU dry run." >&2
    exit 3
}

# result_dir SCRIPT GPU_DEFAULT ON_GPU: $OUT when set; else GPU_DEFAULT on a GPU, and
# build/gpu_dry_run (ignored by git) for a CPU dry run, so that a dry run never lands where the
# GPU results are shipped from. Warns when OUT is not set.
result_dir() {
    local dest
    if [ -n "${OUT:-}" ]; then
        dest=$OUT
    elif [ "$3" = 1 ]; then
        dest=$2
    else
        dest=build/gpu_dry_run
    fi
    [ -z "${OUT:-}" ] && echo "$1: OUT is not set (or not exported): results go to $dest" >&2
    mkdir -p "$dest"
    echo "$dest"
}

# print_versions FILE ON_GPU: python, torch and CUDA versions (and nvidia-smi's line on a GPU),
# to the terminal and FILE (appended)
print_versions() {
    "$PY" -c 'import torch, platform; print("python", platform.python_version(), "torch", torch.__version__,
"cuda", torch.version.cuda)' | tee -a "$1"
    if [ "$2" = 1 ]; then
        timeout 60 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$1"
    fi
}
