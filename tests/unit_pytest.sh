# Sourced by torch_floor.sh, gpu_rehearsal.sh and latest_releases.sh: unit_pytest PY [ARGS...] runs
# the library's unit tests with the python PY, from the repository root: everything but chapters,
# book, browser and `cuda` tests and the chapter tooling (they need Jupyter or a GPU, not
# another torch).
unit_pytest() {
    local py=$1
    shift
    "$py" -m pytest -q -p no:cacheprovider -m "not book and not browser and not cuda" \
        --doctest-modules --ignore=tests/prepare_nbval.py --ignore=tests/browser_utils.py \
        --ignore=tests/test_packaging.py --ignore=tests/test_chapter_style.py \
        --ignore=tests/test_claims_ledger.py --ignore=tests/test_lab_browser.py \
        --ignore=tests/test_book_site.py --ignore=tests/chapter_outputs.py \
        --ignore=tests/test_chapter_outputs.py "$@" tests afno_lite
}
