#!/usr/bin/env bash
# The library's unit tests under another torch, by default the lowest one pyproject.toml
# accepts, with numpy at its lowest too. Not part of `make test`: it downloads torch from PyPI
# (a CUDA build, several GB) into a throwaway virtual environment.
#
#   bash tests/torch_floor.sh            # the floor declared in pyproject.toml
#   bash tests/torch_floor.sh 2.9.1      # any other release
#
# Chapters, book and browser tests are left out (they need Jupyter, not another torch), and so
# are the `cuda` tests.
set -euo pipefail
cd "$(dirname "$0")/.."
floor=$(python3 - <<'PY'
import re
deps = open("pyproject.toml").read()
print(re.search(r'"torch>=([0-9.]+)"', deps).group(1), re.search(r'"numpy>=([0-9.]+)"', deps).group(1))
PY
)
torch_v=${1:-${floor% *}.0}
numpy_v=${floor#* }
venv=${TORCH_FLOOR_VENV:-/tmp/afno-lite-torch-$torch_v}
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$torch_v')" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "torch==$torch_v" "numpy==$numpy_v.*" matplotlib tqdm ipywidgets \
        pytest hypothesis "scikit-image<0.25" pyyaml
fi
"$venv/bin/python" -c "import torch, numpy; print('torch', torch.__version__, '| numpy', numpy.__version__)"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not book and not browser and not cuda" \
    --doctest-modules --ignore=tests/prepare_nbval.py --ignore=tests/browser_utils.py \
    --ignore=tests/test_packaging.py --ignore=tests/test_chapter_style.py \
    --ignore=tests/test_claims_ledger.py --ignore=tests/test_lab_browser.py \
    --ignore=tests/test_book_site.py tests afno_lite
