#!/usr/bin/env bash
# The unit tests and every chapter under the newest releases of the dependencies (what pip
# installs today for $LATEST_PYTHON, else python3), against the pinned environment (.venv, from
# `make setup`): each chapter is executed in both (tests/prepare_nbval.py --fresh), and the cells
# nbval checks must print the same in both (tests/chapter_outputs.py, with nbval's sanitizer).
# Not part of `make test`: it downloads torch from PyPI (a CUDA build, several GB) and takes about
# ten minutes once installed.
#
#   bash tests/latest_releases.sh
#
# The environment is a throwaway one under /tmp ($LATEST_VENV sets its path; reused when it exists).
set -uo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "latest_releases.sh: run 'make setup' first (the pinned .venv)" >&2; exit 2; }
venv=${LATEST_VENV:-/tmp/afno-lite-latest-releases}
[ -x "$venv/bin/python" ] || "${LATEST_PYTHON:-python3}" -m venv "$venv" || exit 1
"$venv/bin/python" -m pip install -q -U torch numpy matplotlib ipywidgets tqdm jupytext ipykernel nbclient \
    pytest hypothesis scikit-image pyyaml || exit 1
"$venv/bin/python" - <<'PY'
import importlib.metadata as md, platform
print("python", platform.python_version(), "|", " | ".join(f"{n} {md.version(n)}" for n in
      ("torch", "numpy", "matplotlib", "ipywidgets", "tqdm", "ipykernel")))
PY
source tests/unit_pytest.sh
PYTHONPATH=$PWD unit_pytest "$venv/bin/python" 2>&1 | tail -1
unit=${PIPESTATUS[0]}
PYTHONPATH=$PWD "$venv/bin/python" tests/prepare_nbval.py --fresh build/latest_releases 2>&1 | grep -v IPKernelApp
latest=${PIPESTATUS[0]}
.venv/bin/python tests/prepare_nbval.py --fresh build/pinned_run 2>&1 | grep -v IPKernelApp
pinned=${PIPESTATUS[0]}
compared=1
if [ "$latest" -eq 0 ] && [ "$pinned" -eq 0 ]; then
    .venv/bin/python tests/chapter_outputs.py build/latest_releases build/pinned_run
    compared=$?
fi
echo "latest_releases.sh: unit tests exit $unit, chapters (newest releases) exit $latest, chapters (pinned)" \
     "exit $pinned, checked outputs compared exit $compared"
exit $(( unit || latest || pinned || compared ))
