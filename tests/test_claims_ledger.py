"""The claims ledger (book/claims.md): every link resolves, every number comes from code.

Fast: the page is parsed, not executed (the book build executes it).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LEDGER = ROOT / "book" / "claims.md"
PAGES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.md")) + sorted((ROOT / "book").glob("*.md"))

ROLE = re.compile(r"\{(ref|numref|eq|doc|cite|glue|glue:text|glue:md)\}`([^`]+)`")


def _target(text: str) -> str:
    """`title <target>` or `target`."""
    m = re.search(r"<([^>]+)>\s*$", text)
    return (m.group(1) if m else text).strip()


def known_targets() -> dict[str, set[str]]:
    labels, figures, equations = set(), set(), set()
    for p in PAGES:
        t = p.read_text(encoding="utf-8")
        labels |= set(re.findall(r"^\(([\w:-]+)\)=\s*$", t, re.M))
        figures |= set(re.findall(r"^:?\s*:?name:\s*(fig-[\w-]+)\s*$", t, re.M))
        equations |= set(re.findall(r"^\$\$\s*\((eq-[\w-]+)\)\s*$", t, re.M))
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    cites = set(re.findall(r"@\w+\{([^,\s]+),", bib))
    return {"labels": labels, "figures": figures | labels, "equations": equations,
            "cites": cites}


def code_cells(text: str) -> str:
    return "\n".join(re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```", text, re.M | re.S))


def glued_keys(text: str) -> set[str]:
    """Keys the page's code can glue: the string literals of its code cells (the ledger
    dictionary is glued key by key in a loop), provided the code calls glue at all."""
    code = code_cells(text)
    return set(re.findall(r'"([\w-]+)"', code)) if "glue(" in code else set()


def unresolved(text: str, targets: dict[str, set[str]], root: Path = ROOT) -> list[str]:
    """Every role in ``text`` whose target does not exist."""
    problems = []
    glued = glued_keys(text)
    for role, arg in ROLE.findall(text):
        target = _target(arg)
        if role == "ref" and target not in targets["labels"]:
            problems.append(f"{{ref}}`{target}`: no such label in the chapters or book pages")
        elif role == "numref" and target not in targets["figures"]:
            problems.append(f"{{numref}}`{target}`: no figure or label of that name")
        elif role == "eq" and target not in targets["equations"]:
            problems.append(f"{{eq}}`{target}`: no such equation label")
        elif role == "cite":
            for key in target.split(","):
                if key.strip() not in targets["cites"]:
                    problems.append(f"{{cite}}`{key.strip()}`: not in references.bib")
        elif role == "doc" and not any((root / "book" / f"{target}{ext}").exists()
                                       for ext in ("", ".md", ".ipynb")):
            problems.append(f"{{doc}}`{target}`: no such file")
        elif role.startswith("glue") and target.split(":")[0] not in glued:
            problems.append(f"{{{role}}}`{target}`: no code on the page computes this key")
    for name in re.findall(r'RESULTS / "([^"]+)"', text):
        if not (root / "notebooks" / "results" / name).exists():
            problems.append(f"results file notebooks/results/{name} does not exist")
    return problems


def table_rows(text: str) -> list[str]:
    rows = [ln for ln in text.splitlines() if ln.startswith("|") and not ln.startswith("| ---")]
    return [r for r in rows if not r.startswith("| claim ")]


def rows_without_source(text: str) -> list[str]:
    """Rows that neither link into the book nor say the result is the paper's, not ours."""
    return [r for r in table_rows(text)
            if "{ref}`" not in r and "not reproduced here" not in r]


def test_ledger_in_toc():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert "claims" in files
    assert LEDGER.exists()


def test_every_link_resolves():
    text = LEDGER.read_text(encoding="utf-8")
    problems = unresolved(text, known_targets())
    assert not problems, "\n".join(problems)


def test_every_row_has_a_source():
    text = LEDGER.read_text(encoding="utf-8")
    assert len(table_rows(text)) >= 10
    bad = rows_without_source(text)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("topic", [
    "complexity", "Inpainting", "Few-shot", "Cityscapes", "ImageNet", r"\lambda", "Depth",
    "Adaptive", "35 %", "resolution",
])
def test_every_claim_of_the_paper_is_listed(topic: str):
    rows = "\n".join(table_rows(LEDGER.read_text(encoding="utf-8")))
    assert topic in rows


def test_numbers_in_rows_are_glued_or_the_papers():
    """A row's measured figure comes from code ({glue}); typed numbers only in 'paper' cells."""
    for row in table_rows(LEDGER.read_text(encoding="utf-8")):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4, row
        ours = cells[3]
        assert ours == "–" or re.fullmatch(r"\{glue(:text)?\}`[\w-]+`", ours), row


BAD_LEDGER = {
    "label": "| c | p | {ref}`chap-does-not-exist` | x |",
    "figure": "| c | p | {numref}`fig-does-not-exist` | x |",
    "glue": "| c | p | {ref}`chap-afno` | {glue:text}`never_computed` |",
    "glue_without_code": "| c | p | {ref}`chap-afno` | {glue:text}`ok` |\n\n```{code-cell} ipython3\nx = \"ok\"\n```",
    "cite": "{cite}`nobody2099`",
    "results": 'x = json.loads((RESULTS / "missing.json").read_text())',
}


@pytest.mark.parametrize("case", sorted(BAD_LEDGER))
def test_checker_catches_bad_ledger(case: str):
    assert unresolved(BAD_LEDGER[case], known_targets())


def test_row_without_source_is_caught():
    text = "| claim | the paper | where | ours |\n| --- | --- | --- | --- |\n| c | p | nowhere | – |"
    assert rows_without_source(text)


def test_code_lines_fit_the_column():
    long = [ln for ln in code_cells(LEDGER.read_text(encoding="utf-8")).splitlines()
            if len(ln) > 88]
    assert not long, "\n".join(long)


HAND_ROLLED = re.compile(r"T975|12\.706|4\.303|def verdict|def paired_psnr|\.ppf\(|ttest")
EVIDENCE_PAGES = [LEDGER] + [p for p in PAGES if re.match(r"(08|09|10|11)_", p.name)]


def hand_rolled_statistics(text: str) -> list[str]:
    """Code lines that compute a t quantile or a verdict outside afno_lite.evidence."""
    return [ln for ln in code_cells(text).splitlines() if HAND_ROLLED.search(ln)]


@pytest.mark.parametrize("page", EVIDENCE_PAGES, ids=lambda p: p.name)
def test_intervals_and_verdicts_come_from_evidence(page: Path):
    """The seed rule is written once (afno_lite/evidence.py); pages call it."""
    text = page.read_text(encoding="utf-8")
    assert not hand_rolled_statistics(text), "\n".join(hand_rolled_statistics(text))
    if "interval" in code_cells(text) or page == LEDGER:
        assert "afno_lite.evidence import" in code_cells(text), page.name


def test_hand_rolled_statistics_are_caught():
    cell = "```{code-cell} ipython3\nT = {1: 12.706, 2: 4.303}\ndef verdict(lo, hi): ...\n```"
    assert len(hand_rolled_statistics(cell)) == 2


def test_the_seed_rule_is_written_once_and_cited():
    """'How we measure' states the rule; the chapters with verdicts link to it."""
    text = LEDGER.read_text(encoding="utf-8")
    section = text.split("(how-we-measure)=", 1)[1].split("\n## References", 1)[0]
    for phrase in ("at least 3 seeds", "5 for the headline", "95 %",
                   "no difference at this scale", "not enough seeds (n < 3)",
                   "Controls before causes", "Provenance", "fewer than"):
        assert phrase in section, phrase
    for page in EVIDENCE_PAGES[1:]:
        if "afno_lite.evidence" in code_cells(page.read_text(encoding="utf-8")):
            assert "{ref}`how-we-measure`" in page.read_text(encoding="utf-8"), page.name
