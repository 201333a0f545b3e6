"""Each chapter's "**Runtime.**" line against the shipped measurement.

``notebooks/results/chapter_runtimes.json`` is written by ``python book/runtimes.py``, which runs
every chapter in a fresh kernel with and without ``AFNO_FAST=1``. Nothing is executed or timed
here: the sentence a reader sees is compared with the recorded seconds, so it cannot drift from
them, and no chapter may take more than DESIGN.md's 90 s.

A line reads either
``About A s on N CPU cores with `AFNO_FAST=1` and about B s without ...`` or
``About A s on N CPU cores, with or without `AFNO_FAST=1` ...``.
The measurement must be of the chapters' current code (a hash of their code cells): after
changing a chapter's code, run ``python book/runtimes.py --chapters NN`` again.
"""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "notebooks" / "results" / "chapter_runtimes.json"
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.md"))
LIMIT_S = 90.0          # DESIGN.md, section 1: each chapter <= 90 s on 2 CPU cores

_spec = importlib.util.spec_from_file_location("book_runtimes", ROOT / "book" / "runtimes.py")
runtimes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runtimes)

HEAD = re.compile(r"About (\d+) s on (\d+) CPU cores")
BOTH = re.compile(r"About \d+ s on \d+ CPU cores, with or without `AFNO_FAST=1`")
SPLIT = re.compile(r"About \d+ s on \d+ CPU cores with `AFNO_FAST=1`.*?\babout (\d+) s without")


def runtime_line(text: str) -> str:
    m = re.search(r"^\*\*Runtime\.\*\*(.*?)(?:\n\s*\n)", text, re.M | re.S)
    if m is None:
        raise AssertionError("no paragraph starting with **Runtime.**")
    return " ".join(m.group(1).split())


def stated(line: str) -> tuple[int, float, float]:
    """(cores, seconds with AFNO_FAST=1, seconds without) that a Runtime line states."""
    head = HEAD.search(line)
    if head is None:
        raise AssertionError(f"the Runtime line does not start 'About A s on N CPU cores': {line!r}")
    fast, cores = float(head.group(1)), int(head.group(2))
    if BOTH.search(line):
        return cores, fast, fast
    split = SPLIT.search(line)
    if split is None:
        raise AssertionError("the Runtime line names neither 'with or without `AFNO_FAST=1`' nor "
                             f"'with `AFNO_FAST=1` and about B s without': {line!r}")
    return cores, fast, float(split.group(1))


def close(stated_s: float, measured_s: float) -> bool:
    """'About' a measurement: within 5 s or 25 % of it, whichever is larger."""
    return abs(stated_s - measured_s) <= max(5.0, 0.25 * measured_s)


@pytest.fixture(scope="module")
def measured() -> dict:
    return json.loads(RESULT.read_text(encoding="utf-8"))


def test_the_comparison_can_fail():
    assert stated("About 10 s on 2 CPU cores, with or without `AFNO_FAST=1`.") == (2, 10.0, 10.0)
    assert stated("About 15 s on 2 CPU cores with `AFNO_FAST=1` (the tiny run) and about 30 s "
                  "without.") == (2, 15.0, 30.0)
    with pytest.raises(AssertionError):
        stated("Quick.")
    with pytest.raises(AssertionError):
        stated("About 10 s on 2 CPU cores.")      # says nothing about AFNO_FAST
    assert close(10, 14.9) and close(40, 50) and not close(10, 16) and not close(30, 50)


def test_measured_on_the_machine_the_chapters_name(measured):
    assert measured["schema"] == "afno_lite.book.chapter_runtimes/1"
    assert set(measured["chapters"]) == {p.stem for p in CHAPTERS}, "rerun python book/runtimes.py"
    cores = {stated(runtime_line(p.read_text(encoding="utf-8")))[0] for p in CHAPTERS}
    assert cores == {measured["machine"]["cpu_count"]} == {measured["machine"]["threads"]}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_runtime_line_states_the_measured_seconds(path, measured):
    _, fast, full = stated(runtime_line(path.read_text(encoding="utf-8")))
    row = measured["chapters"][path.stem]
    assert close(fast, row["fast_s"]), (
        f"{path.name} says about {fast:g} s with AFNO_FAST=1; measured {row['fast_s']} s")
    assert close(full, row["full_s"]), (
        f"{path.name} says about {full:g} s without AFNO_FAST; measured {row['full_s']} s")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_chapter_over_the_limit(path, measured):
    row = measured["chapters"][path.stem]
    assert max(row["fast_s"], row["full_s"]) <= LIMIT_S, f"{path.name}: {row}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_measured_code_is_the_chapters_code(path, measured):
    assert measured["chapters"][path.stem]["code_sha256"] == runtimes.code_hash(path), (
        f"{path.name}'s code changed since its run time was measured: "
        f"python book/runtimes.py --chapters {path.stem[:2]}")


def test_the_code_hash_ignores_prose_and_sees_code(tmp_path):
    src = "Text.\n\n```{code-cell} ipython3\nx = 1\n```\n"
    a, b, c = (tmp_path / n for n in ("a.md", "b.md", "c.md"))
    a.write_text(src)
    b.write_text(src.replace("Text.", "Other text."))
    c.write_text(src.replace("x = 1", "x = 2"))
    assert runtimes.code_hash(a) == runtimes.code_hash(b) != runtimes.code_hash(c)
