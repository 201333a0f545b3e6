"""The GPU check behind ``notebooks/results/gpu_check.json``: same answer on every device.

For every mixer it measures the largest CPU-vs-GPU output difference (relative to the CPU
output's largest entry, float32) at ``B = 2, 128 x 128, C = 256`` and at ``9 x 15``, once with
the explicit Hermitian projection of the self-conjugate columns removed ("before") and once as
the library ships it ("after"; a mixer that calls no projection, such as attention, is not run
twice: its "after" is its "before", ``projection_used: false``); the same for the FFT library
alone (``irfft2`` of a random half-spectrum, raw and projected, against the CPU in float64);
then two training epochs of
``afno`` and ``afno_fast`` on the GPU (amp none and bf16; the first epoch includes warm-up, both
times are kept) and a one-process ``torchrun`` with nccl. Device name and versions are recorded
with the figures. ``gpu_check.json`` is rewritten after every section, and a section (or one mixer,
one training run) that raises is recorded with its error while the others still run; the exit
status is 1 when anything failed or a difference is over the tolerance.

    PYTHONPATH=. python tests/gpu_check.py --out notebooks/results            # on a GPU machine
    PYTHONPATH=. python tests/gpu_check.py --device cpu --tiny --out /tmp/x   # dry run anywhere

``bash tests/gpu_check.sh`` runs this script and the ``cuda``-marked tests in one go.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

import afno_lite
from afno_lite import train
from afno_lite.bench.machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
MIXERS = ["attention", "kernel_attention", "fno", "gfn", "afno", "afno_fast"]


@contextlib.contextmanager
def no_projection(calls: list | None = None):
    """Every spectral layer without its explicit projection (the FFT library decides); each
    skipped projection appends to ``calls`` when given."""
    def skip(X, W, *dims, **kw):
        if calls is not None:
            calls.append(W)
        return X

    # on a spectrum, and on a spectrum already inverse-transformed along k_H (afno_fast)
    helpers = ("hermitian_project", "hermitian_project_after_ifft_")
    saved = []
    for name, mod in list(sys.modules.items()):
        for helper in helpers:
            if name.startswith("afno_lite") and hasattr(mod, helper):
                saved.append((mod, helper, getattr(mod, helper)))
                setattr(mod, helper, skip)
    try:
        yield
    finally:
        for mod, helper, fn in saved:
            setattr(mod, helper, fn)


def build(name: str, C: int, H: int, W: int) -> torch.nn.Module:
    torch.manual_seed(0)
    kw = {}
    if name == "gfn":
        kw = {"grid": (H, W)}
    elif name == "fno":
        kw = {"modes": (min(8, H // 2), min(8, W // 2))}
    return afno_lite.mixer(name, C, **kw).eval()


@torch.no_grad()
def max_rel_diff(name: str, B: int, H: int, W: int, C: int, device: torch.device) -> dict:
    m = build(name, C, H, W)
    x = torch.randn(B, H, W, C, generator=torch.Generator().manual_seed(1))
    out, skipped = {}, []
    for label, ctx in (("before", lambda: no_projection(skipped)), ("after", contextlib.nullcontext)):
        if label == "after" and not skipped:   # no projection to remove (attention): the same computation
            out[label] = out["before"]
            break
        with ctx():
            y_cpu = m.cpu()(x)
            y_dev = m.to(device)(x.to(device)).cpu()
        out[label] = float((y_dev - y_cpu).abs().max() / y_cpu.abs().max())
    out["max_abs_y"] = float(y_cpu.abs().max())
    out["projection_used"] = bool(skipped)
    return out


@torch.no_grad()
def irfft2_vs_cpu(device: torch.device, tiny: bool) -> dict:
    """The FFT library alone: ``irfft2`` of a random (non-Hermitian) half-spectrum on ``device``
    in float32 against the CPU in float64, as it is and with the self-conjugate columns
    projected first (relative to the largest entry of the CPU result)."""
    from afno_lite.spectral import hermitian_project
    B, H, W, C = (2, 16, 16, 8) if tiny else (2, 128, 128, 256)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(B, H, W // 2 + 1, C, dtype=torch.complex128, generator=g)
    out = {"shape": [B, H, W // 2 + 1, C]}
    for label, Z in (("raw", X), ("projected", hermitian_project(X, W, dims=(1, 2)))):
        ref = torch.fft.irfft2(Z, s=(H, W), dim=(1, 2), norm="ortho")
        got = torch.fft.irfft2(Z.to(torch.complex64).to(device), s=(H, W), dim=(1, 2), norm="ortho")
        out[label] = float((got.cpu().double() - ref).abs().max() / ref.abs().max())
    return out


def _error(exc: BaseException) -> dict:
    """An exception as the JSON records it (the run goes on with the next item)."""
    return {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}",
            "traceback_tail": traceback.format_exc()[-1500:]}


def epoch_times(device: torch.device, tiny: bool) -> dict:
    res = {}
    size = 32 if tiny else 64
    for mixer in ("afno", "afno_fast"):
        for amp in ("none", "bf16"):
            cfg = dict(task="inpainting", mixer=mixer, embed_dim=64 if tiny else 256, depth=2 if tiny else 4,
                       patch_size=4, img_size=size, epochs=2, batch_size=16 if tiny else 64,
                       n_train=64 if tiny else 2048, n_test=16 if tiny else 128, mask_patch=4, progress=False,
                       amp=amp, device=device.type)
            try:
                r = train.fit(cfg)
            except Exception as exc:  # noqa: BLE001 -- recorded; the other runs still go
                res[f"{mixer}/{amp}"] = _error(exc)
                print(f"epochs {mixer}/{amp}: {res[f'{mixer}/{amp}']['error']}", flush=True)
                continue
            times = [h["epoch_time_s"] for h in r["history"]]
            res[f"{mixer}/{amp}"] = {"epoch_time_s_first": times[0], "epoch_time_s_second": times[-1],
                                     "final_loss": r["history"][-1].get("train_loss"),
                                     "device": r["device"], "psnr": r["final"][str(size)].get("psnr")}
            print(f"epochs {mixer}/{amp}: {times[0]:.2f} s, {times[-1]:.2f} s", flush=True)
    return res


def torchrun_one_process(device: torch.device, timeout_s: float = 90.0) -> dict:
    """``torchrun --standalone --nproc_per_node=1`` of a tiny run (nccl on CUDA, gloo on CPU). On
    timeout torchrun gets SIGTERM, on which it stops its worker (which runs in a session of its
    own, out of reach of a kill of torchrun's process group), and SIGKILL 15 s later."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
               "-m", "afno_lite.train", "--task", "inpainting", "--mixer", "afno_fast", "--embed-dim", "32",
               "--depth", "1", "--img-size", "32", "--epochs", "1", "--batch-size", "8", "--n-train", "32",
               "--n-test", "8", "--no-progress", "--device", device.type, "--out", tmp]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        timed_out = False
        try:
            _, stderr = p.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            p.terminate()
            try:
                _, stderr = p.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                _, stderr = p.communicate()
        res = {"command": " ".join(cmd[2:]), "returncode": p.returncode, "wall_s": time.perf_counter() - t0,
               "timed_out": timed_out, "timeout_s": timeout_s}
        results = Path(tmp) / "results.json"
        if p.returncode == 0 and results.is_file():
            r = json.loads(results.read_text())
            res.update(backend=r.get("backend"), device=r.get("device"), world_size=r.get("world_size"))
        else:
            res["stderr_tail"] = stderr[-2000:]
    return res


def _section(report: dict, key: str, fn, path: Path) -> None:
    """``report[key] = fn()`` (or the error it raised), then the report so far written to ``path``:
    a run stopped later still leaves what it measured."""
    t = time.perf_counter()
    try:
        report[key] = fn()
    except Exception as exc:  # noqa: BLE001 -- recorded; the next section still runs
        report[key] = _error(exc)
        report["failed_sections"].append(key)
        print(f"{key}: {report[key]['error']}", flush=True)
    report["section_s"][key] = round(time.perf_counter() - t, 1)
    path.write_text(json.dumps(report, indent=2) + "\n")


def _diffs(device: torch.device, tiny: bool, tol: float) -> dict:
    grids = [(2, 16, 16, 32), (2, 9, 15, 32)] if tiny else [(2, 128, 128, 256), (2, 9, 15, 256)]
    diffs = {}
    for name in MIXERS:
        for B, H, W, C in grids:
            key = f"{name}/{B}x{H}x{W}x{C}"
            try:
                diffs[key] = d = max_rel_diff(name, B, H, W, C, device)
            except Exception as exc:  # noqa: BLE001 -- recorded; the other mixers still go
                diffs[key] = _error(exc)
                print(f"{key}: {diffs[key]['error']}", flush=True)
                continue
            d["after_within_tolerance"] = d["after"] < tol
            print(f"{name:17s} B={B} {H}x{W} C={C}: before {d['before']:.2e}  after {d['after']:.2e}", flush=True)
    return diffs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="device to compare with the CPU (default cuda)")
    ap.add_argument("--tiny", action="store_true", help="small sizes (a dry run on any machine)")
    ap.add_argument("--out", default="notebooks/results", help="folder for gpu_check.json")
    a = ap.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda needs a CUDA GPU; use --device cpu --tiny for a dry run")
    device = torch.device(a.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", 0)
    t0 = time.perf_counter()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "gpu_check.json"
    tol = 1e-4
    report = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "tiny": a.tiny,
        "tolerance_rel": tol,
        "command": "python tests/gpu_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "failed_sections": [],
        "section_s": {},
    }
    _section(report, "max_rel_diff_cpu_vs_device", lambda: _diffs(device, a.tiny, tol), path)
    _section(report, "irfft2_vs_cpu_float64", lambda: irfft2_vs_cpu(device, a.tiny), path)
    _section(report, "epochs", lambda: epoch_times(device, a.tiny), path)
    _section(report, "torchrun_1proc", lambda: torchrun_one_process(device), path)
    report["wall_s"] = time.perf_counter() - t0
    path.write_text(json.dumps(report, indent=2) + "\n")
    keys = ("device_name", "torch", "cuda", "irfft2_vs_cpu_float64", "torchrun_1proc", "epochs", "failed_sections")
    print(json.dumps({k: report[k] for k in keys}, indent=1))
    bad = list(report["failed_sections"])
    if "max_rel_diff_cpu_vs_device" not in bad:
        bad += [k for k, d in report["max_rel_diff_cpu_vs_device"].items() if not d.get("after_within_tolerance")]
    if "epochs" not in bad:
        bad += [f"epochs {k}" for k, d in report["epochs"].items() if "error" in d]
    if "torchrun_1proc" not in bad and report["torchrun_1proc"].get("returncode") != 0:
        bad.append("torchrun_1proc")
    if bad:
        print("gpu_check.py: FAILED: " + ", ".join(bad), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
