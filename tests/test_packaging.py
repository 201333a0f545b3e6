"""Packaging: ``environment.yml`` agrees with ``pyproject.toml``, notebooks are paired
correctly and no ``.ipynb`` is committed."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENV_YML = yaml.safe_load((ROOT / "environment.yml").read_text())


def _pip_section() -> list[str]:
    return [d for d in ENV_YML["dependencies"] if isinstance(d, dict)][0]["pip"]


def _requirements(lines) -> dict[str, Requirement]:
    reqs = {}
    for line in lines:
        r = Requirement(line)
        name = canonicalize_name(r.name)
        assert name not in reqs, f"{r.name} listed twice"
        reqs[name] = r
    return reqs


# ----------------------------------------------------------------------------- environment.yml structure
def test_environment_yml_structure():
    """The offline check conda would do: known top-level keys, ``- pip`` plus exactly one
    ``pip:`` list of strings, a python spec compatible with ``requires-python``."""
    assert isinstance(ENV_YML, dict)
    assert set(ENV_YML) <= {"name", "channels", "dependencies", "variables", "prefix"}, sorted(ENV_YML)
    assert isinstance(ENV_YML.get("name"), str) and ENV_YML["name"]
    assert isinstance(ENV_YML.get("channels"), list) and all(isinstance(c, str) for c in ENV_YML["channels"])
    deps = ENV_YML["dependencies"]
    assert isinstance(deps, list)
    dicts = [d for d in deps if isinstance(d, dict)]
    assert len(dicts) == 1 and list(dicts[0]) == ["pip"], "need exactly one `pip:` list"
    assert all(isinstance(d, (str, dict)) for d in deps)
    assert "pip" in deps, "conda needs `- pip` to install the pip section"
    pip = dicts[0]["pip"]
    assert isinstance(pip, list) and pip and all(isinstance(p, str) for p in pip)
    python = [d for d in deps if isinstance(d, str) and re.match(r"python\b", d)]
    assert len(python) == 1
    conda_floor = re.fullmatch(r"python\s*>=\s*([\d.]+)", python[0])
    pyproject_floor = re.fullmatch(r">=\s*([\d.]+)", PYPROJECT["project"]["requires-python"])
    assert conda_floor and pyproject_floor
    assert Version(conda_floor.group(1)) == Version(pyproject_floor.group(1))


def test_environment_yml_pip_section_matches_pyproject():
    pip = _pip_section()
    assert "-e ." in pip, "the pip section must install the project itself"
    env = _requirements(p for p in pip if not p.startswith("-"))
    project = PYPROJECT["project"]
    py = _requirements(project["dependencies"] + project["optional-dependencies"]["dev"])
    assert sorted(env) == sorted(py), f"only in environment.yml: {sorted(set(env) - set(py))}; " \
                                      f"only in pyproject.toml: {sorted(set(py) - set(env))}"
    for name in py:
        assert env[name].specifier == py[name].specifier, (name, str(env[name].specifier), str(py[name].specifier))
        assert env[name].extras == py[name].extras and env[name].marker == py[name].marker, name
        # lower bounds, not pins (torch is pinned only by the Makefile's install step)
        assert any(s.operator == ">=" for s in py[name].specifier), f"{name} has no lower bound"
        assert not any(s.operator == "==" for s in py[name].specifier), f"{name} is pinned"


def test_environment_yml_pip_section_resolves():
    """``pip install --dry-run`` of the pip section.

    A full resolution of the section picks the newest *CUDA* build of torch and its ~15
    ``nvidia-*`` wheels (seen here: 18 s and a torch 2.14.1 + CUDA 13 plan; on a machine
    without local wheels pip may fetch GBs to read their metadata). So torch is checked
    against the installed CPU build instead, and every other entry is resolved with
    ``--no-deps``: each name must exist on the index with a release inside its bounds
    (their own dependencies are resolved by the real install, ``make setup``)."""
    import torch

    reqs = _requirements(p for p in _pip_section() if not p.startswith("-"))
    torch_req = reqs.pop("torch")
    assert torch_req.specifier.contains(Version(torch.__version__.split("+")[0])), torch.__version__
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps", "--ignore-installed",
           "--disable-pip-version-check", "--report", "-", *(str(r) for r in reqs.values())]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("pip did not answer within 120 s (no package index reachable?)")
    if r.returncode and re.search(r"NewConnectionError|Network is unreachable|Temporary failure in name resolution|"
                                  r"Could not fetch URL|ProxyError|ConnectTimeout", r.stderr):
        pytest.skip("no package index reachable: " + r.stderr.strip().splitlines()[-1])
    assert r.returncode == 0, "pip section does not resolve:\n" + r.stderr[-2000:]
    report = json.loads(r.stdout)
    resolved = {canonicalize_name(i["metadata"]["name"]): Version(i["metadata"]["version"]) for i in report["install"]}
    assert sorted(resolved) == sorted(reqs)
    for name, version in resolved.items():
        assert reqs[name].specifier.contains(version), (name, str(version))


# ----------------------------------------------------------------------------- notebooks
def test_jupytext_pairs_ipynb_with_myst_markdown():
    cfg = tomllib.loads((ROOT / "jupytext.toml").read_text())
    assert cfg.get("formats") == "ipynb,md:myst"


def test_no_ipynb_tracked_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    r = subprocess.run(["git", "ls-files", "--", "*.ipynb"], cwd=ROOT, capture_output=True, text=True, check=True)
    tracked = r.stdout.split()
    assert tracked == [], f".ipynb files must not be committed (git rm --cached them): {tracked}"
    # and .gitignore keeps new ones out
    probe = subprocess.run(["git", "check-ignore", "-q", "notebooks/probe.ipynb"], cwd=ROOT)
    assert probe.returncode == 0, ".gitignore must ignore *.ipynb"


MD_NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.md"))


def _cells(path):
    import jupytext

    nb = jupytext.read(path)
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def pair_mismatch(md: Path, twin: Path) -> str | None:
    """Why ``md`` and its paired ``twin`` disagree (cell types, sources, tags), or None."""
    a, b = _cells(md), _cells(twin)
    if len(a) != len(b):
        return f"{md.name}: {len(a)} cells, {twin.name}: {len(b)} cells; run `make sync`"
    for i, (ca, cb) in enumerate(zip(a, b, strict=True)):
        if ca != cb:
            return f"cell {i} differs between {md.name} and {twin.name}; run `make sync`"
    return None


@pytest.mark.parametrize("md", MD_NOTEBOOKS or [None], ids=[p.name for p in MD_NOTEBOOKS] or ["none"])
def test_paired_notebook_has_the_same_cells(md):
    if md is None:
        pytest.skip("no notebooks/*.md yet")
    twin = md.with_suffix(".ipynb")
    if not twin.exists():
        pytest.skip(f"{md.name} has no .ipynb twin in the working tree (created by `make sync`)")
    problem = pair_mismatch(md, twin)
    assert problem is None, problem


def test_pairing_round_trips_and_a_stale_twin_is_caught(tmp_path):
    """On a clean clone there are no twins: pair every chapter in a scratch folder the way
    `make sync` does, check nothing is lost, then make one twin stale and check it is caught."""
    import jupytext

    if not MD_NOTEBOOKS:
        pytest.skip("no notebooks/*.md yet")
    for md in MD_NOTEBOOKS:
        copy = tmp_path / md.name
        shutil.copy2(md, copy)
        twin = copy.with_suffix(".ipynb")
        jupytext.write(jupytext.read(copy), twin)
        assert pair_mismatch(copy, twin) is None, md.name
    nb = jupytext.read(twin)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.source += "\n# edited in JupyterLab, not synced"
    jupytext.write(nb, twin)
    assert pair_mismatch(copy, twin) is not None


@pytest.mark.parametrize("md", MD_NOTEBOOKS or [None], ids=[p.name for p in MD_NOTEBOOKS] or ["none"])
def test_chapter_is_in_canonical_jupytext_form(md):
    """Pairing (JupyterLab, `make sync`) must not rewrite a chapter: the committed .md is
    exactly what jupytext writes for it (the jupytext version line aside)."""
    if md is None:
        pytest.skip("no notebooks/*.md yet")
    import jupytext

    def strip(text):
        return re.sub(r"\n\s*jupytext_version: .*", "", text)

    text = md.read_text(encoding="utf-8")
    assert strip(jupytext.writes(jupytext.reads(text, fmt="md:myst"), fmt="md:myst")) == strip(text), (
        f"{md.name} is not in canonical jupytext form; run `make sync` and commit the .md")
