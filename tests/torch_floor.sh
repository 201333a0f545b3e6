#!/usr/bin/env bash
# The library's unit tests with its dependencies at the lowest releases pyproject.toml accepts
# (torch, numpy, matplotlib, ipywidgets, tqdm: each `name>=X.Y` installed as `name==X.Y.*`),
# in a throwaway virtual environment. Not part of `make test`: it downloads torch from PyPI
# (a CUDA build, several GB).
#
#   bash tests/torch_floor.sh            # every dependency at its floor
#   bash tests/torch_floor.sh 2.9.1      # the same, with another torch release
#
# Chapters, book and browser tests are left out (they need Jupyter, not another torch), and so
# are the `cuda` tests.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t floors < <(python3 - <<'PY'
import re
text = open("pyproject.toml").read()
deps = re.search(r"dependencies = \[(.*?)\]", text, re.S).group(1)
for name, version in re.findall(r'"([A-Za-z0-9_-]+)>=([0-9.]+)"', deps):
    print(f"{name}=={version}.*")
PY
)
torch_v=${1:-}
[ -n "$torch_v" ] && floors=("${floors[@]/#torch==*/torch==$torch_v}")
tag=$(printf '%s' "${floors[*]}" | tr -c 'A-Za-z0-9.' '_')
venv=${TORCH_FLOOR_VENV:-/tmp/afno-lite-floor-${tag:0:80}}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "${floors[@]}" pytest hypothesis "scikit-image<0.25" pyyaml
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
print(" | ".join(f"{n} {md.version(n)}" for n in ("torch", "numpy", "matplotlib", "ipywidgets", "tqdm")))
PY
source tests/unit_pytest.sh
unit_pytest "$venv/bin/python"
