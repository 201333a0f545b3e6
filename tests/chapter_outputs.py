"""Compare the outputs that nbval checks in two executed copies of the chapters.

    python tests/chapter_outputs.py DIR_A DIR_B     # e.g. build/latest_releases build/pinned_run

For every ``NN_*.ipynb`` in ``DIR_A`` (and the same file in ``DIR_B``), each code cell tagged
``nbval-check-output`` must print the same text in both, after the substitutions of
``tests/nbval_sanitize.cfg`` (timings, rates, addresses), as nbval compares them. Prints each
difference and a count; exits 1 when any cell differs or the two copies hold different code.
"""
from __future__ import annotations

import configparser
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def sanitizers() -> list[tuple[str, str]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "tests" / "nbval_sanitize.cfg")
    return [(cfg[s]["regex"], cfg[s]["replace"]) for s in cfg.sections()]


def shown_text(cell, subs) -> str:
    """The text nbval compares: streams and ``text/plain`` results, sanitized."""
    parts = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            parts.append(o.text)
        elif "data" in o and "text/plain" in o.data:
            parts.append(o.data["text/plain"])
        elif o.output_type == "error":
            parts.append(f"{o.ename}: {o.evalue}")
    text = "".join(parts)
    for regex, replace in subs:
        text = re.sub(regex, replace, text)
    return text


def compare(dir_a: Path, dir_b: Path) -> tuple[int, list[str]]:
    """(number of checked cells, one message per difference)."""
    subs, checked, problems = sanitizers(), 0, []
    chapters = sorted(dir_a.glob("[0-9][0-9]_*.ipynb"))
    if not chapters:
        return 0, [f"no executed chapters in {dir_a}"]
    for path in chapters:
        other = dir_b / path.name
        if not other.exists():
            problems.append(f"{path.name}: missing in {dir_b}")
            continue
        a, b = (
            [c for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code"] for p in (path, other)
        )
        if [c.source for c in a] != [c.source for c in b]:
            problems.append(f"{path.name}: the two copies hold different code")
            continue
        for i, (ca, cb) in enumerate(zip(a, b, strict=True)):
            if "nbval-check-output" not in ca.metadata.get("tags", []):
                continue
            checked += 1
            ta, tb = shown_text(ca, subs), shown_text(cb, subs)
            if ta != tb:
                problems.append(f"{path.name}, code cell {i}:\n--- {dir_a}\n{ta}\n--- {dir_b}\n{tb}")
    return checked, problems


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    n, problems = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(problems))
    print(f"chapter_outputs: {n} checked cells compared, {len(problems)} differences")
    sys.exit(1 if problems or n == 0 else 0)
