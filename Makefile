# AFNO from first principles -- the two commands a reader needs:
#   make lab    set up (first time only) and open JupyterLab on notebooks/ (double-click a chapter)
#   make test   set up (first time only) and run everything CI runs
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.afno-lite-installed
# torch pinned to one version. Which build pip installs depends on where it looks: a CPU
# wheel where one is offered (as on the machine CI runs on), else PyPI's default build
# for the platform (with CUDA on Linux x86_64). Override the pin with TORCH_PIN=...
TORCH_PIN ?= torch==2.13.0
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
PORT ?= 8888
BUILD := build
NB_BUILD := $(BUILD)/nbval
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.md))
export PYTHONHASHSEED := 0

.PHONY: setup lab test lint unit nbval book book-test browser bench experiments clean help

help:
	@echo "make lab          set up if needed, open JupyterLab on notebooks/ (chapters open as notebooks)"
	@echo "make test         set up if needed, then lint, unit tests, book, nbval, browser tests"
	@echo "make book         build the Jupyter Book site into book/_build/html"
	@echo "make bench        run the scaling benchmark (python -m afno_lite.bench scaling)"
	@echo "make experiments  full training runs that refresh notebooks/results/*.json"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[dev]" "$(TORCH_PIN)"
	@touch $(STAMP)

setup: $(STAMP)

# JupyterLab with the project's settings (jupyterlab-settings/overrides.json): double-clicking a
# chapter's .md opens it as a notebook (jupytext), MyST renders through jupyterlab-myst. The
# chapters are not paired with .ipynb files (see jupytext.toml): one file per chapter.
LAB_SETTINGS := $(CURDIR)/jupyterlab-settings

lab: setup
	cd notebooks && ../$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --port=$(PORT) $(ROOT_FLAG) \
	  --LabApp.app_settings_dir="$(LAB_SETTINGS)"

lint: setup
	$(BIN)/ruff check afno_lite tests

# unit and property tests, and the examples (>>>) in afno_lite's docstrings
unit: setup
	$(BIN)/pytest -q -m "not browser and not book" --doctest-modules tests afno_lite

# Validate every chapter: .md -> .ipynb in build/nbval (reference outputs from the book
# build when its code matches, else one reference run), then nbval re-runs each notebook
# and compares the cells tagged nbval-check-output.
nbval: setup
	AFNO_FAST=1 $(PY) tests/prepare_nbval.py $(NB_BUILD)
	cd $(NB_BUILD) && AFNO_FAST=1 MPLBACKEND=module://matplotlib_inline.backend_inline \
	  $(abspath $(BIN))/pytest -q -c /dev/null -p no:cacheprovider --rootdir=. \
	  --nbval-lax --nbval-current-env --nbval-sanitize-with $(abspath tests/nbval_sanitize.cfg) \
	  --durations=0 .

book: setup
	AFNO_FAST=1 $(PY) book/build.py

book-test: setup
	$(BIN)/pytest -q -m "book or browser" tests

test: lint unit book nbval book-test
	@echo "make test: all passed"

bench: setup
	$(PY) -m afno_lite.bench scaling

experiments: setup
	$(PY) -m afno_lite.experiments all

clean:
	rm -rf $(BUILD) book/_build book/_vendor
