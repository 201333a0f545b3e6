"""The package's layout: modules and functions small enough to hold in mind, and imports that
follow the layers documented in ``afno_lite/__init__.py`` (no cycles, no upward imports)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import afno_lite

PKG = Path(afno_lite.__file__).resolve().parent
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    """``afno_lite.x.y`` -> path, for every module of the package."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def test_no_module_over_500_lines_and_no_function_over_80():
    too_long = []
    for name, path in _modules().items():
        src = path.read_text()
        if len(src.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {len(src.splitlines())} lines")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {n} lines")
    assert not too_long, "\n".join(too_long)


def _layers() -> dict[str, int]:
    """The layer table of the package docstring: top-level module or sub-package -> layer."""
    table = re.search(r"Layers:.*?::\n\n(.*?)\n\n", afno_lite.__doc__ + "\n\n", re.S).group(1)
    out = {}
    for line in table.splitlines():
        layer, *rest = line.split()
        for word in rest:
            if not re.fullmatch(r"_?[a-z]\w*", word) or not (PKG / word).exists() and not (PKG / f"{word}.py").exists():
                break
            out[word] = int(layer)
    return out


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """The package modules ``name`` imports (at module level or inside functions)."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                root = base[: len(base) - node.level + 1]
                mod = ".".join(root + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from .. import x``: the modules named; ``from ..x import y``: x (and y if a module)
            candidates = ([mod] if node.module else []) + [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found |= {c for c in candidates if c in modules and c != name}
    return found


def _unit(module: str) -> str:
    """The layered unit of a module: ``afno_lite.train.fit`` -> ``train``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_has_a_layer():
    layers = _layers()
    units = {_unit(m) for m in _modules()} - {""}
    assert units == set(layers), f"not in the layer table: {units - set(layers)}; stale: {set(layers) - units}"


def test_imports_follow_the_layers_without_cycles():
    modules, layers = _modules(), _layers()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    upward = []
    for m, deps in graph.items():
        if m == "afno_lite":
            continue                                  # the package itself re-exports everything
        for d in deps:
            if d == "afno_lite":
                upward.append(f"{m} imports the package afno_lite")
            elif _unit(d) != _unit(m) and layers[_unit(d)] >= layers[_unit(m)]:
                upward.append(f"{m} (layer {layers[_unit(m)]}) imports {d} (layer {layers[_unit(d)]})")
    assert not upward, "\n".join(sorted(upward))
    # no cycles, sub-package modules included
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for d in graph[m]:
            assert state.get(d) != 1, "import cycle: " + " -> ".join([*stack, m, d])
            if d not in state:
                visit(d, [*stack, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_the_layer_check_sees_an_upward_import(tmp_path):
    src = "from ..registry import spec\nfrom . import mixers\n\n\ndef f():\n    from .bench import SERIES\n"
    path = tmp_path / "x.py"
    path.write_text(src)
    modules = _modules()
    got = _imports("afno_lite.spectral", path, modules)
    assert {"afno_lite.mixers", "afno_lite.bench"} <= got


def test_console_scripts_and_module_commands_resolve():
    import importlib
    import subprocess
    import sys

    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    scripts = tomllib.loads((PKG.parent / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"afno-lite-bench", "afno-lite-train"}
    for target in scripts.values():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), target
    for module, words in (("afno_lite.bench", ("scaling", "nvidia", "widgets")),
                          ("afno_lite.train", ("--mixer-kw", "--eval-sizes", "--no-progress")),
                          ("afno_lite.experiments", ("inpainting", "--jobs"))):
        out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120,
                             cwd=PKG.parent)
        assert out.returncode == 0 and all(w in out.stdout for w in words), (module, out.stderr[-500:])
