#!/usr/bin/env bash
# Rehearse the GPU machine's runs on the CPU, in the GPU machine's software: Python 3.12, torch
# 2.11.0 and numpy 2, without ipywidgets or Jupyter (the packages CONTRIBUTING lists for it), in a
# throwaway virtual environment under /tmp. It runs the unit tests (less the widget tests, which
# need ipywidgets) and the CPU dry runs of tests/gpu_check.sh and tests/gpu_bench.sh, and fails
# when any of them fails or the dry benchmark skips a series (a compiled series that differs
# from its eager layer is skipped). Not part of `make test`: it downloads torch from PyPI (a CUDA
# build, several GB). Run it before a GPU run, whose minutes are few:
#
#   bash tests/gpu_rehearsal.sh              # torch 2.11.0
#   bash tests/gpu_rehearsal.sh 2.12.1       # another torch
#
# Python: $REHEARSAL_PYTHON, else python3.12 on PATH, else pyenv's 3.12, else python3 (with a
# warning). The environment is reused when it exists ($GPU_REHEARSAL_VENV sets its path).
set -uo pipefail
cd "$(dirname "$0")/.."
torch_v=${1:-2.11.0}
base=${REHEARSAL_PYTHON:-$(command -v python3.12 || ls -d "$(pyenv root 2>/dev/null || echo ~/.pyenv)"/versions/3.12*/bin/python3 2>/dev/null | tail -1)}
if [ -z "$base" ]; then
    base=python3
    echo "gpu_rehearsal.sh: WARNING: no Python 3.12 found; using $(python3 --version)" >&2
fi
venv=${GPU_REHEARSAL_VENV:-/tmp/afno-lite-gpu-rehearsal-torch$torch_v}
[ -x "$venv/bin/python" ] || "$base" -m venv "$venv" || exit 1
py=$venv/bin/python
"$py" -m pip install -q "torch==$torch_v" "numpy>=2" matplotlib tqdm pytest hypothesis scikit-image \
    torchmetrics pyyaml || exit 1
"$py" - <<'PY' || exit 1
import importlib.metadata as md, importlib.util, platform
print("python", platform.python_version(), "|", " | ".join(f"{n} {md.version(n)}" for n in ("torch", "numpy", "matplotlib")))
assert importlib.util.find_spec("ipywidgets") is None, "ipywidgets is installed here; the GPU machine has none"
PY
out=$(mktemp -d /tmp/gpu-rehearsal.XXXXXX)
source tests/unit_pytest.sh
unit_pytest "$py" --ignore=tests/test_widgets.py -k "not widgets_subcommand" > "$out/unit.txt" 2>&1
unit=$?
tail -1 "$out/unit.txt"
PYTHON=$py OUT=$out/check GPU_CHECK_ALLOW_CPU=1 bash tests/gpu_check.sh > "$out/check.txt" 2>&1
check=$?
PYTHON=$py OUT=$out/bench GPU_BENCH_ALLOW_CPU=1 bash tests/gpu_bench.sh > "$out/bench.txt" 2>&1
bench=$?
"$py" - "$out/bench/bench_scaling_gpu.json" <<'PY'
import json, sys
skipped = json.load(open(sys.argv[1]))["skipped"]
for s in skipped:
    print(f"  skipped: {s['series']} N={s['N']} {s['precision']}: {s['reason']}")
sys.exit(1 if skipped else 0)
PY
skips=$?
echo "gpu_rehearsal.sh: unit tests exit $unit, gpu_check.sh dry run exit $check, gpu_bench.sh dry run exit" \
     "$bench, skipped series: $([ $skips -eq 0 ] && echo none || echo some); logs in $out"
exit $(( unit || check || bench || skips ))
