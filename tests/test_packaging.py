"""Packaging: ``environment.yml`` agrees with ``pyproject.toml``; the chapters are single
MyST Markdown files (no ``.ipynb`` twins, none committed) that JupyterLab opens, runs and saves
without rewriting them; ``make lab`` applies the project's Lab settings."""
from __future__ import annotations

import json
import os
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
MD_NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.md"))
LAB_SETTINGS = ROOT / "jupyterlab-settings"


def test_chapters_are_not_paired_with_ipynb():
    """One file per chapter: the project's jupytext.toml (found first, so a personal jupytext
    configuration cannot pair the chapters either) asks for no pairing."""
    from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

    found = find_jupytext_configuration_file(str(ROOT / "notebooks"))
    assert found is not None and Path(found) == ROOT / "jupytext.toml", found
    config = load_jupytext_configuration_file(found)
    for option in ("formats", "default_jupytext_formats"):
        value = getattr(config, option)
        pairing = [f for f in ([value] if isinstance(value, str) else list(value or [])) if f]
        assert not pairing, (f"jupytext.toml pairs the chapters ({option} = {value!r}); JupyterLab opens "
                             "the .md itself, a twin would be a second entry that can go stale")


def test_no_ipynb_tracked_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    r = subprocess.run(["git", "ls-files", "--", "*.ipynb"], cwd=ROOT, capture_output=True, text=True, check=True)
    tracked = r.stdout.split()
    assert tracked == [], f".ipynb files must not be committed (git rm --cached them): {tracked}"
    # and .gitignore keeps new ones (and Lab's checkpoints) out
    for probe in ("notebooks/probe.ipynb", "notebooks/.ipynb_checkpoints/probe-checkpoint.md"):
        r = subprocess.run(["git", "check-ignore", "-q", probe], cwd=ROOT)
        assert r.returncode == 0, f".gitignore must ignore {probe}"


def _header(md: Path) -> str:
    text = md.read_text(encoding="utf-8")
    assert text.startswith("---\n"), f"{md.name} has no YAML header"
    return text[4:text.index("\n---\n", 4)]


def _lab_kernelspec() -> dict:
    """The kernelspec JupyterLab writes into a notebook it runs with the ``python3`` kernel of
    this environment, in Lab's key order (name, display_name, language)."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    return {"name": "python3", "display_name": spec.display_name, "language": spec.language}


@pytest.mark.parametrize("md", MD_NOTEBOOKS or [None], ids=[p.name for p in MD_NOTEBOOKS] or ["none"])
def test_chapter_kernelspec_is_what_lab_writes(md):
    """JupyterLab rewrites the kernelspec when it opens a notebook; the chapters carry exactly
    what it writes (values and order), so saving a chapter does not change its header."""
    if md is None:
        pytest.skip("no notebooks/*.md yet")
    kernelspec = yaml.safe_load(_header(md))["kernelspec"]
    expected = _lab_kernelspec()
    assert list(kernelspec.items()) == list(expected.items()), (
        f"{md.name}: kernelspec {kernelspec}, JupyterLab writes {expected} (see CONTRIBUTING.md)")


def test_saving_a_chapter_through_jupytext_changes_nothing(tmp_path):
    """What JupyterLab does on save, without a browser: jupytext's contents manager (the one Lab
    uses) reads each chapter, the notebook gets the kernel's metadata as Lab sets it, and is
    saved back. The file is byte-for-byte unchanged and no other file appears."""
    from jupytext import TextFileContentsManager

    if not MD_NOTEBOOKS:
        pytest.skip("no notebooks/*.md yet")
    shutil.copy(ROOT / "jupytext.toml", tmp_path / "jupytext.toml")
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    for md in MD_NOTEBOOKS:
        shutil.copy2(md, nbdir / md.name)
    cm = TextFileContentsManager(root_dir=str(nbdir))
    rewritten = []
    for md in MD_NOTEBOOKS:
        model = cm.get(md.name)
        assert model["type"] == "notebook", f"{md.name} does not open as a notebook"
        meta = model["content"]["metadata"]
        meta["kernelspec"] = _lab_kernelspec()
        meta["language_info"] = {"name": "python", "version": "3.x", "mimetype": "text/x-python"}
        cm.save(model, md.name)
        if (nbdir / md.name).read_bytes() != md.read_bytes():
            rewritten.append(md.name)
    assert not rewritten, f"saving rewrote {rewritten} (header, or not in canonical jupytext form)"
    assert sorted(p.name for p in nbdir.iterdir()) == sorted(p.name for p in MD_NOTEBOOKS)


def test_make_lab_applies_the_project_lab_settings():
    """`make lab` passes jupyterlab-settings/ as Lab's application settings folder, whose
    overrides.json makes jupytext's notebook view the default for Markdown and MyST files
    (jupytext's documented default-viewer setting)."""
    overrides = json.loads((LAB_SETTINGS / "overrides.json").read_text())
    viewers = overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers.get("markdown") == "Jupytext Notebook" and viewers.get("myst") == "Jupytext Notebook", viewers
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\nlab:"):].split("\n\n")[0]
    assert "--LabApp.app_settings_dir" in recipe and "$(LAB_SETTINGS)" in recipe, recipe
    assert re.search(r"^LAB_SETTINGS := \$\(CURDIR\)/jupyterlab-settings$", makefile, re.M)
    assert "sync" not in re.findall(r"^([\w-]+):", makefile, re.M), "no pairing target (see jupytext.toml)"


@pytest.mark.parametrize("md", MD_NOTEBOOKS or [None], ids=[p.name for p in MD_NOTEBOOKS] or ["none"])
def test_chapter_is_in_canonical_jupytext_form(md):
    """Saving a chapter (JupyterLab, jupytext) must not rewrite it: the committed .md is
    exactly what jupytext writes for it (the jupytext version line aside)."""
    if md is None:
        pytest.skip("no notebooks/*.md yet")
    import jupytext

    def strip(text):
        return re.sub(r"\n\s*jupytext_version: .*", "", text)

    text = md.read_text(encoding="utf-8")
    assert strip(jupytext.writes(jupytext.reads(text, fmt="md:myst"), fmt="md:myst")) == strip(text), (
        f"{md.name} is not in canonical jupytext form; run `.venv/bin/jupytext --to md:myst "
        f"notebooks/{md.name}` (rewrites it in place) and commit the .md")


README_SNIPPETS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


@pytest.mark.parametrize("code", README_SNIPPETS, ids=[f"snippet{i}" for i in range(len(README_SNIPPETS))])
def test_readme_python_snippets_run(code):
    """Each Python example of the README runs as printed, in a fresh interpreter (one of them
    registers a mixer, which must not leak into the other tests)."""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]


def test_the_readme_has_its_python_examples():
    assert len(README_SNIPPETS) >= 2
