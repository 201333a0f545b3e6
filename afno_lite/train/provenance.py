"""Provenance of a run: the git commit and a hash of the library's code, atomic writes,
RNG states (for exact resumes), compact array encoding for JSON.

Explained in the chapter "Inpainting with different token mixers" (what a results file
records); the chapter "Scaling out" compares the weights of the checkpoints two runs wrote.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

__all__ = ["git_commit", "git_dirty", "code_hash", "folder", "atomic_write", "write_json",
           "rng_state", "set_rng_state", "encode_array", "decode_array"]

_PACKAGE = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """``git rev-parse HEAD`` of the repository holding the library (``"unknown"`` outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_PACKAGE.parent, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def git_dirty() -> bool | None:
    """Whether ``afno_lite/`` has uncommitted changes (``None`` outside git): a run from a dirty
    tree is not reproducible from its commit alone (its :func:`code_hash` still identifies it)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", str(_PACKAGE)], cwd=_PACKAGE.parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def code_hash() -> str:
    """SHA-256 (first 16 hex digits) of every ``afno_lite/**/*.py`` file, paths and contents:
    equal hashes = the same library code, committed or not."""
    h = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        h.update(str(path.relative_to(_PACKAGE)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def folder(path, name: str = "out") -> Path:
    """``path`` as a folder, created with its parents if missing; a ``ValueError`` naming the
    argument ``name`` when it cannot be one (a file is in the way, no permission)."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{name} must be a folder, but {str(path)!r} cannot be one "
                         f"({e.strerror})") from e
    return Path(path)


def atomic_write(path, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` into a temporary file next to ``path``, then rename it onto ``path``: a
    reader never sees half a file (checkpoints, results, cached data)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)
    return path


def write_json(path, obj) -> Path:
    """``obj`` as indented JSON at ``path``, atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=1, sort_keys=False)))


def rng_state() -> dict:
    """Python, NumPy, torch (and CUDA) random states, for an exact resume.

    Only tensors and plain Python values, so that a checkpoint holding it loads with
    ``torch.load(..., weights_only=True)`` (no pickled NumPy objects, no code run on load)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    st = {"torch": torch.get_rng_state(),
          "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
          "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                    "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(st["torch"])
    py = st["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss"]))
    n = st["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def encode_array(a) -> dict:
    """A float array as ``{"shape", "dtype": "float16", "b64"}`` (compact JSON; ~3 significant digits)."""
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float16))
    return {"shape": list(a.shape), "dtype": "float16", "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_array(d: dict) -> np.ndarray:
    """Inverse of :func:`encode_array` (returns float32)."""
    return np.frombuffer(base64.b64decode(d["b64"]), dtype=d["dtype"]).reshape(d["shape"]).astype(np.float32)
