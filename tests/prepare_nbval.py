"""Prepare the chapters for nbval: ``notebooks/NN_*.md`` -> ``build/nbval/NN_*.ipynb``.

nbval re-runs each notebook and compares the cells tagged ``nbval-check-output``
with the outputs stored in the ``.ipynb``, so every notebook needs a reference run.
When the book has just been built, its executed copy
(``book/_build/jupyter_execute/notebooks/NN_*.ipynb``) is that reference run, provided
its code is exactly the chapter's current code; otherwise the chapter is executed
here once. Either way nbval then executes it a second time: outputs that are claims
must reproduce across two independent runs.

    python tests/prepare_nbval.py [--fresh] [OUT_DIR [CHAPTER ...]]   # e.g. build/one 05_afno_step_by_step

``--fresh`` executes every chapter here, even when the book build holds a matching copy (to
run the chapters in another Python environment, as ``tests/latest_releases.sh`` does).
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "book" / "_build" / "jupyter_execute" / "notebooks"


def code_sources(nb) -> list[str]:
    return [c.source.strip() for c in nb.cells if c.cell_type == "code"]


def prepare(out: Path, only: list[str] | None = None, fresh: bool = False) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if (ROOT / "notebooks" / "results").is_dir():
        shutil.copytree(ROOT / "notebooks" / "results", out / "results")
    chapters = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.md"))
    if only:
        chapters = [c for c in chapters if c.stem in only or c.name in only]
    if not chapters:
        sys.exit(f"prepare_nbval: no chapters in notebooks/ matching {only or '*'}")
    for md in chapters:
        nb = jupytext.read(md)
        ref_path = EXECUTED / f"{md.stem}.ipynb"
        target = out / f"{md.stem}.ipynb"
        if ref_path.exists() and not fresh:
            ref = nbformat.read(ref_path, as_version=4)
            if code_sources(ref) == code_sources(nb):
                ref.metadata.pop("source_map", None)
                nbformat.write(ref, target)
                print(f"{md.name}: reference outputs from the book build")
                continue
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(out)}}).execute()
        nbformat.write(nb, target)
        print(f"{md.name}: reference run {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    os.environ.setdefault("AFNO_FAST", "1")
    args = [a for a in sys.argv[1:] if a != "--fresh"]
    prepare(Path(args[0]) if args else ROOT / "build" / "nbval", args[1:], fresh="--fresh" in sys.argv[1:])
