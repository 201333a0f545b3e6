# Sourced by tests/gpu_check.sh and tests/gpu_bench.sh, from the repository root: the checkout
# on PYTHONPATH, unbuffered logs, $PY (the project's .venv when there is one, else $PYTHON or
# python3), and gpu_or_dry_run.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python

# gpu_or_dry_run SCRIPT ALLOW_VAR SMI_FILE: returns 0 when torch sees a CUDA device (after saving
# nvidia-smi's line to SMI_FILE), 1 when there is none and $ALLOW_VAR is 1 (the CPU dry run);
# otherwise says so and exits 3.
gpu_or_dry_run() {
    local script=$1 allow=$2 smi=$3
    if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$smi"
        return 0
    elif [ "${!allow:-0}" = "1" ]; then
        echo "$script: no CUDA device; $allow=1: the CPU dry run (--device cpu --tiny)" >&2
        return 1
    fi
    echo "$script: ERROR: torch sees no CUDA device (torch.cuda.is_available() is False)." >&2
    echo "  This script is for the GPU machine; set $allow=1 for the CPU dry run." >&2
    exit 3
}

# print_versions FILE: python, torch and CUDA versions, to the terminal and FILE (appended)
print_versions() {
    "$PY" -c 'import torch, platform; print("python", platform.python_version(), "torch", torch.__version__,
"cuda", torch.version.cuda)' | tee -a "$1"
}
