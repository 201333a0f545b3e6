"""Measure how long each chapter takes to run, as its "**Runtime.**" line states it.

    python book/runtimes.py                       # every chapter, with and without AFNO_FAST=1
    python book/runtimes.py --chapters 01 07      # some chapters (merged into the shipped file)
    python book/runtimes.py --out /tmp/rt.json    # elsewhere (default: the shipped file)

Each chapter is read from its MyST source (``notebooks/NN_*.md``), executed top to bottom in a
fresh kernel from ``notebooks/`` (as a reader runs it in JupyterLab, Run All), once with
``AFNO_FAST=1`` and once without, and timed from the kernel's start to the end of its last cell.
The result, ``notebooks/results/chapter_runtimes.json``, records the seconds, the machine (CPU,
cores, torch threads, torch version) and a hash of each chapter's code cells, and
``tests/test_chapter_runtimes.py`` checks every chapter's "**Runtime.**" line against it: the
stated seconds within 5 s or 25 % of the measured ones, no chapter over DESIGN.md's 90 s, and
the measured code is the chapter's code (rerun ``--chapters NN`` after changing a chapter's code).
One run per chapter and mode: a chapter's time varies by some seconds from run to run on a
shared machine, which the tolerance covers.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
OUT = NOTEBOOKS / "results" / "chapter_runtimes.json"
SCHEMA = "afno_lite.book.chapter_runtimes/1"
MODES = {"fast": {"AFNO_FAST": "1"}, "full": {}}


def chapters(selected=None) -> list[Path]:
    """The chapters' sources, all or those whose number (``"01"``) or name is in ``selected``."""
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md"))
    if not selected:
        return found
    picked = [p for p in found if p.stem[:2] in selected or p.stem in selected]
    unknown = set(selected) - {p.stem[:2] for p in picked} - {p.stem for p in picked}
    if unknown:
        raise SystemExit(f"--chapters: no chapter {sorted(unknown)}; expected numbers such as 01 "
                         f"or names such as {found[0].stem}")
    return picked


CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.M | re.S)


def code_hash(path: Path) -> str:
    """A hash of the chapter's code cells (cell options included), not of its prose: what the
    run time depends on. ``tests/test_chapter_runtimes.py`` compares it with the measured one,
    so a chapter whose code changed must be measured again."""
    cells = CODE_CELL.findall(path.read_text(encoding="utf-8"))
    return hashlib.sha256("\n\x00".join(cells).encode()).hexdigest()[:16]


def run_chapter(path: Path, env: dict, timeout: int = 600) -> float:
    """Seconds from the kernel's start to the end of the chapter's last cell, with ``env``
    added to this process's environment (``AFNO_FAST`` removed unless ``env`` sets it)."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(path)
    saved = {k: os.environ.get(k) for k in ("AFNO_FAST", "MPLBACKEND")}
    os.environ.pop("AFNO_FAST", None)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ.update(env)
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOKS)}})
        t0 = time.perf_counter()
        client.execute()
        return time.perf_counter() - t0
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def machine() -> dict:
    import torch

    from afno_lite.bench.machine import cpu_name

    return {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(),
            "platform": platform.platform()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chapters", nargs="*", help="chapter numbers (01) or names; default: all")
    ap.add_argument("--out", type=Path, default=OUT, help=f"result file (default: {OUT})")
    args = ap.parse_args(argv)
    todo = chapters(args.chapters)
    doc = {"schema": SCHEMA, "chapters": {}}
    if args.out.exists():
        doc = json.loads(args.out.read_text())
    doc.update(schema=SCHEMA, machine=machine(),
               command="python book/runtimes.py" + (f" --chapters {' '.join(args.chapters)}"
                                                    if args.chapters else ""),
               date=time.strftime("%Y-%m-%d"))
    for path in todo:
        row = {"code_sha256": code_hash(path)}
        for mode, env in MODES.items():
            row[f"{mode}_s"] = round(run_chapter(path, env), 1)
        doc["chapters"][path.stem] = row
        print(f"{path.stem:<40} AFNO_FAST=1 {row['fast_s']:6.1f} s   without {row['full_s']:6.1f} s",
              flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")     # nothing lost if stopped
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
