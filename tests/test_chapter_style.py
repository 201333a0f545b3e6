"""Style rules every chapter follows (fast: the chapters are parsed, never executed).

(a) code-cell lines are at most 88 characters (they fit the book's text column);
(b) no TAB character anywhere in a chapter;
(c) figure captions (``caption:`` in a code cell's ``mystnb`` metadata, ``{figure}``
    directives) contain no internal label such as ``eq-...``, ``fig-...``, ``chap-...``,
    and no plain-text maths outside ``$...$`` (``8 x 8``, ``lambda``, ``>=``);
(d) every check can fail: no ``assert_close(...) and ...`` (assert_close returns None, so
    the right-hand side is never evaluated), no assert comparing two numeric literals, no
    assert inside an ``if`` that tests whether data are present;
(e) every chapter has a learning-objectives block ("After this chapter you can ...") and
    at least one pen-and-paper exercise.

Each checker returns a list of ``(line number, message)``; a test fails with every offending
line of its chapter. ``test_checker_catches_bad_sample`` feeds a synthetic bad chapter to the
same checkers, so none of them can pass vacuously.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md"))
MAX_CODE_LINE = 88

Offence = tuple[int, str]


@dataclass
class CodeCell:
    start: int                      # 1-based line number of the ```{code-cell} fence
    meta: dict = field(default_factory=dict)
    meta_lines: list[tuple[int, str]] = field(default_factory=list)
    lines: list[tuple[int, str]] = field(default_factory=list)   # (line number, code line)


@dataclass
class Directive:
    name: str
    start: int
    body: list[tuple[int, str]] = field(default_factory=list)


def _fence(line: str) -> tuple[str, str] | None:
    m = re.match(r"^(`{3,}|~{3,})(.*)$", line.rstrip())
    return (m.group(1), m.group(2).strip()) if m else None


def parse(text: str) -> tuple[list[CodeCell], list[Directive]]:
    """Code cells and other fenced directives of a MyST notebook.

    Directives may nest (a figure inside an admonition): a stack of open directive fences
    is kept, and a bare fence closes the innermost one opened with the same fence characters.
    Code cells and plain fenced blocks are read to their own closing fence."""
    lines = text.split("\n")
    cells: list[CodeCell] = []
    directives: list[Directive] = []
    open_fences: list[str] = []
    i = 0

    def closing(j: int, ticks: str) -> int:
        while j < len(lines):
            g = _fence(lines[j])
            if g is not None and g[1] == "" and g[0][0] == ticks[0] and len(g[0]) >= len(ticks):
                return j
            j += 1
        return j

    while i < len(lines):
        f = _fence(lines[i])
        if f is None:
            i += 1
            continue
        ticks, info = f
        if info == "" and open_fences and ticks[0] == open_fences[-1][0] and len(ticks) >= len(open_fences[-1]):
            open_fences.pop()           # closes the innermost open directive
            i += 1
            continue
        m = re.match(r"^\{([\w:-]+)\}", info)
        if m and not info.startswith("{code-cell}"):
            end = closing(i + 1, ticks)
            body = [(n + 1, lines[n]) for n in range(i + 1, min(end, len(lines)))]
            directives.append(Directive(m.group(1), i + 1, body))
            open_fences.append(ticks)   # its body may hold nested directives: parse inside it
            i += 1
            continue
        end = closing(i + 1, ticks)     # a code cell or a plain fenced block: read to its end
        if info.startswith("{code-cell}"):
            cells.append(_code_cell(i + 1, [(n + 1, lines[n]) for n in range(i + 1, min(end, len(lines)))]))
        i = end + 1
    return cells, directives


def _code_cell(start: int, body: list[tuple[int, str]]) -> CodeCell:
    cell = CodeCell(start)
    k = 0
    if body and body[0][1].strip() == "---":                      # YAML metadata block
        k = 1
        while k < len(body) and body[k][1].strip() != "---":
            k += 1
        cell.meta_lines = body[1:k]
        meta_text = "\n".join(t for _, t in cell.meta_lines)
        k += 1
    else:                                                          # ":key: value" lines
        while k < len(body) and body[k][1].startswith(":"):
            k += 1
        cell.meta_lines = body[:k]
        meta_text = "\n".join(t[1:] for _, t in cell.meta_lines)
    try:
        cell.meta = yaml.safe_load(meta_text) or {} if meta_text.strip() else {}
    except yaml.YAMLError:
        cell.meta = {"_unparsed": meta_text}
    cell.lines = body[k:]
    return cell


# ---------------------------------------------------------------------------------- (a)
def check_code_line_length(text: str) -> list[Offence]:
    cells, _ = parse(text)
    # the cell's metadata (figure captions, wrapped by jupytext) counts too: it is part of the cell
    return [(n, f"code line of {len(line)} characters (> {MAX_CODE_LINE})")
            for cell in cells for n, line in [*cell.meta_lines, *cell.lines] if len(line) > MAX_CODE_LINE]


# ---------------------------------------------------------------------------------- (b)
def check_no_tab(text: str) -> list[Offence]:
    return [(n, "TAB character") for n, line in enumerate(text.split("\n"), 1) if "\t" in line]


# ---------------------------------------------------------------------------------- (c)
LABEL_WORD = re.compile(r"(?<![\w-])(eq|fig|chap)-[A-Za-z0-9]")


def captions(text: str) -> list[tuple[int, str]]:
    """(line number, caption text) of every figure caption of a chapter."""
    cells, directives = parse(text)
    found = []
    for cell in cells:
        mystnb = cell.meta.get("mystnb") if isinstance(cell.meta, dict) else None
        fig = mystnb.get("figure") if isinstance(mystnb, dict) else None
        cap = fig.get("caption") if isinstance(fig, dict) else None
        if cap is None and "_unparsed" in cell.meta:
            cap = cell.meta["_unparsed"]
        if cap is not None:
            line = next((n for n, t in cell.meta_lines if "caption" in t), cell.start)
            found.append((line, str(cap)))
    for d in directives:
        if d.name in ("figure", "glue:figure"):
            body = [(n, t) for n, t in d.body if not t.startswith(":")]
            if body:
                found.append((body[0][0], " ".join(t for _, t in body)))
    return found


PLAIN_MATH = re.compile(r"\b\d+ ?x ?\d+\b|\b(lambda|kappa|sigma|omega|rho|theta|epsilon|nu)\b"
                        r"|>=|<=|\^")


def check_captions(text: str) -> list[Offence]:
    out = []
    for n, cap in captions(text):
        m = LABEL_WORD.search(cap)
        if m:
            out.append((n, f"internal label {m.group(0)}... in a caption"))
        plain = re.sub(r"`[^`]*`", " ", re.sub(r"\$[^$]*\$", " ", cap))   # outside maths/code
        m = PLAIN_MATH.search(plain)
        if m:
            out.append((n, f"plain-text maths {m.group(0)!r} in a caption (typeset it)"))
    return out


# ---------------------------------------------------------------------------------- (d)
CLOSE_CALLS = {"assert_close", "assert_allclose", "assert_array_equal", "assert_equal",
               "assert_array_almost_equal"}
PRESENCE_CALLS = {"exists", "is_file", "is_dir", "hasattr", "isfile", "isdir"}


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        f = node.func
        return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    return None


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return (isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex))
            and not isinstance(node.value, bool))


def _tests_presence(test: ast.AST) -> bool:
    """Does an ``if`` test ask whether data are present (key in dict, x is None, p.exists())?"""
    for node in ast.walk(test):
        if isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, (ast.In, ast.NotIn)) and not isinstance(
                        right, (ast.Tuple, ast.List, ast.Set, ast.Constant)):
                    return True
                if isinstance(op, (ast.Is, ast.IsNot)) and (
                        isinstance(right, ast.Constant) and right.value is None):
                    return True
        if _call_name(node) in PRESENCE_CALLS:
            return True
    return False


def _asserts_in(stmts: list[ast.stmt]):
    for stmt in stmts:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Assert):
                yield node


def _cell_source(cell: CodeCell) -> tuple[str, list[int]]:
    """The cell's Python source (IPython magics blanked) and its line-number map."""
    src, numbers = [], []
    for n, line in cell.lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass"
        src.append(line)
        numbers.append(n)
    return "\n".join(src), numbers


def check_checks_can_fail(text: str) -> list[Offence]:
    cells, _ = parse(text)
    out: list[Offence] = []
    for cell in cells:
        src, numbers = _cell_source(cell)
        if src.lstrip().startswith("%%"):
            continue
        try:
            tree = ast.parse(src)
        except SyntaxError as e:
            out.append((cell.start, f"code cell does not parse: {e.msg}"))
            continue

        def at(node: ast.AST) -> int:
            return numbers[min(node.lineno, len(numbers)) - 1]

        for node in ast.walk(tree):
            if isinstance(node, ast.BoolOp) and any(
                    _call_name(v) in CLOSE_CALLS for v in node.values):
                out.append((at(node), "assert_close(...) combined with and/or: it returns "
                                      "None, so only its first operand is checked"))
            if isinstance(node, ast.Assert):
                for cmp in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
                    operands = [cmp.left, *cmp.comparators]
                    if any(_is_number(a) and _is_number(b)
                           for a, b in zip(operands, operands[1:], strict=False)):
                        out.append((at(node), "assert compares two numeric literals"))
            if isinstance(node, ast.If) and _tests_presence(node.test):
                for a in _asserts_in(node.body + node.orelse):
                    out.append((at(a), "assert inside an `if` that tests for data presence "
                                       "(it is skipped when the data are missing)"))
    return sorted(set(out))


# ---------------------------------------------------------------------------------- (e)
OBJECTIVES = re.compile(r"learning objectives", re.I)
AFTER = re.compile(r"after this chapter,? you can", re.I)
PEN = re.compile(r"pen[- ]and[- ]paper", re.I)


def check_anatomy(text: str) -> list[Offence]:
    out: list[Offence] = []
    if not (OBJECTIVES.search(text) and AFTER.search(text)):
        out.append((1, 'no learning-objectives block ("Learning objectives" ... '
                       '"After this chapter you can ...")'))
    m = re.search(r"^## Exercises\b.*$", text, re.M)
    if m is None:
        out.append((1, "no '## Exercises' section"))
    else:
        section = text[m.end():]
        nxt = re.search(r"^## ", section, re.M)
        section = section[: nxt.start()] if nxt else section
        if not PEN.search(section):
            out.append((text[: m.start()].count("\n") + 1,
                        "no pen-and-paper exercise in the Exercises section"))
    return out


CHECKS = {
    "code_line_length": check_code_line_length,
    "no_tab": check_no_tab,
    "captions": check_captions,
    "checks_can_fail": check_checks_can_fail,
    "anatomy": check_anatomy,
}


def _report(path: Path, offences: list[Offence]) -> str:
    return f"{path.name}: {len(offences)} offence(s)\n" + "\n".join(
        f"  {path.name}:{n}: {msg}" for n, msg in offences)


def test_chapters_found():
    assert len(CHAPTERS) >= 11, [p.name for p in CHAPTERS]


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_style(chapter: Path, check: str):
    offences = CHECKS[check](chapter.read_text(encoding="utf-8"))
    assert not offences, _report(chapter, offences)


# ------------------------------------------------------------ the checkers can fail
GOOD = '''\
# A chapter

**Learning objectives.** After this chapter you can

* write a check that can fail.

```{code-cell} ipython3
---
mystnb:
  figure:
    caption: The spectrum $\\kappa(s,\\cdot)$ on an $8\\times 8$ grid.
    name: fig-good-spectrum
---
from torch.testing import assert_close
results = {"a": 1.0}
if "a" in results:
    print("present")
assert results["a"] < 2
assert_close(1.0, 1.0)
for keep in (0.5, 1.0):
    if keep in (0.5,):
        assert keep < 1
```

```{figure} picture.png
:name: fig-good-picture

A caption with typeset maths, $N \\log N$.
```

## Exercises

**Exercise 1 (pen and paper).** Derive it.

## References
'''

BAD = {
    "code_line_length": "```{code-cell} ipython3\nx = 1" + " " * 90 + "+ 1\n```\n",
    "no_tab": "Text with a broken \\times: 4\times4.\n",
    "captions": ("```{code-cell} ipython3\n---\nmystnb:\n  figure:\n    caption: The slope-2 "
                 "line of eq-attention-flops.\n    name: fig-bad\n---\nplt.show()\n```\n"),
    "captions_figure_directive": ("```{figure} a.png\n:name: fig-bad\n\nAs in "
                                  "fig-other-panel, but larger.\n```\n"),
    "captions_plain_maths": ("```{code-cell} ipython3\n---\nmystnb:\n  figure:\n    caption: "
                             "The kernel kappa(s, .) on an 8 x 8 grid.\n    name: fig-bad\n---\n"
                             "plt.show()\n```\n"),
    "captions_colon_metadata": ("```{code-cell} ipython3\n:mystnb:\n:  figure:\n:    caption: "
                                "See chap-afno.\n:    name: fig-bad\nplt.show()\n```\n"),
    "checks_can_fail": ("```{code-cell} ipython3\nassert_close(u, u_hand) and "
                        "assert_close(v, v_hand)\n```\n"),
    "checks_can_fail_literals": "```{code-cell} ipython3\nassert ratio < 1.5 < 2 < other\n```\n",
    "checks_can_fail_presence": ("```{code-cell} ipython3\nif (\"afno\", 256) in slope:\n"
                                 "    assert slope[(\"afno\", 256)] < 1.5\n```\n"),
    "checks_can_fail_none": ("```{code-cell} ipython3\nr = results.get(\"x\")\nif r is not None:"
                             "\n    assert r > 0\n```\n"),
    "anatomy": "# A chapter\n\nNo objectives here.\n\n## Exercises\n\nCode only.\n",
}


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_checker_passes_good_sample(check: str):
    assert CHECKS[check](GOOD) == []


@pytest.mark.parametrize("sample", sorted(BAD))
def test_checker_catches_bad_sample(sample: str):
    check = next(c for c in CHECKS if sample.startswith(c))
    offences = CHECKS[check](BAD[sample])
    assert offences, f"{check} missed the bad sample {sample!r}"
    assert all(isinstance(n, int) and n >= 1 for n, _ in offences)


def test_bad_sample_line_numbers():
    """Offences point at the offending line of the chapter."""
    text = "intro\n\n" + BAD["checks_can_fail_presence"]
    assert [n for n, _ in check_checks_can_fail(text)] == [5]
    text = "intro\n" + BAD["code_line_length"]
    assert [n for n, _ in check_code_line_length(text)] == [3]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_parser_sees_every_code_cell_jupytext_sees(chapter: Path):
    """The line checks read every code cell: the parser finds as many as jupytext does
    (a directive closed by a bare fence must not swallow the next code cell)."""
    import jupytext

    text = chapter.read_text(encoding="utf-8")
    cells, _ = parse(text)
    nb = jupytext.reads(text, fmt="md:myst")
    assert len(cells) == sum(c.cell_type == "code" for c in nb.cells)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    assert ["\n".join(t for _, t in c.lines).strip() for c in cells] == [s.strip() for s in sources]


def test_a_long_metadata_line_of_a_code_cell_is_checked():
    text = ("```{code-cell} ipython3\n---\nmystnb:\n  figure:\n    caption: " + "word " * 20
            + "\n    name: fig-x\n---\nx = 1\n```\n")
    assert check_code_line_length(text), "the long caption line was not seen"


def test_a_code_cell_after_a_directive_is_checked():
    text = "```{admonition} Note\nA remark.\n```\n\n```{code-cell} ipython3\nx = " + "1 + " * 30 + "1\n```\n"
    assert check_code_line_length(text), "the long line after the admonition was not seen"
