"""Shared helpers of the real-browser tests (headless Chromium driven by Playwright).

Chromium is the system one (``/usr/bin/chromium`` or ``$CHROMIUM``); Playwright's own
browser downloads are never used.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """The Chromium executable to use, or ``None`` if there is none."""
    for cand in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ROOT = Path(__file__).resolve().parents[1]
# The project's JupyterLab settings (``make lab`` passes the same folder): overrides.json makes
# a double-click open a chapter ``.md`` as a notebook (jupytext's documented default viewer).
LAB_SETTINGS = ROOT / "jupyterlab-settings"


def start_jupyterlab(root: Path, port: int, token: str, scratch: Path, env: dict | None = None,
                     timeout: float = 60.0, app_settings: Path | None = LAB_SETTINGS) -> subprocess.Popen:
    """Start JupyterLab on ``127.0.0.1:port`` serving ``root`` with ``token``; fresh workspace,
    user-settings and runtime folders under ``scratch`` (nothing from the tester's own Lab set-up
    leaks in); the project's settings folder ``app_settings`` as ``make lab`` uses it;
    ``window.jupyterapp`` exposed for the tests. Waits until the server answers. Stop it with
    :func:`stop_process`."""
    scratch.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True", f"--LabApp.workspaces_dir={scratch / 'workspaces'}",
           f"--LabApp.user_settings_dir={scratch / 'user-settings'}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if app_settings is not None:
        cmd.append(f"--LabApp.app_settings_dir={app_settings}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    full_env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"), **(env or {})}
    log = open(scratch / f"lab-{port}.log", "w")  # noqa: SIM115 -- closed with the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=root,
                            start_new_session=True)
    proc.log_path = log.name
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}; see {log.name}") from None
            time.sleep(0.5)
    stop_process(proc)
    raise RuntimeError(f"jupyter lab did not answer within {timeout} s; see {log.name}")


def stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop a process started by :func:`start_jupyterlab` and its kernels (its own session)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
