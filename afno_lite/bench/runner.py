"""The benchmark's runner: for every configuration (pass, ``C``, ``B``, grid), predict, skip
or build every series, warm it up, time it interleaved and measure its peak memory.

Explained in chapter "Complexity and scaling" (``07_complexity_and_scaling``); the method is
described in :mod:`afno_lite.bench`.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import sys
import time

import torch

from ..timing import call_seconds, interleaved_seconds, quantile
from .series import (
    PASSES,
    SCHEMA,
    SERIES,
    build,
    growth,
    param_count,
    peak_memory_bytes,
    physicsnemo_layer_cls,
    series_for,
)
from .stats import goal_ratios, slopes

__all__ = ["SCHEMA", "PASSES", "PRESETS", "run_scaling", "grid_list"]


_FULL_GRIDS = [(8, 8), (8, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)]

#: Run sizes. ``target_s``: seconds of timed calls per configuration (all series together).
#: (``modes`` is the list of passes; the name is kept for the JSON settings.)
PRESETS = {
    "full": dict(grids=_FULL_GRIDS, channels=[64, 256], batches=[1, 8], modes=list(PASSES),
                 min_repeats=5, max_repeats=40, target_s=4.0, time_budget=3.0, memory_budget=1536.0),
    "quick": dict(grids=[(8, 8), (16, 16), (32, 32), (64, 64)], channels=[64, 256], batches=[1],
                  modes=list(PASSES), min_repeats=3, max_repeats=15, target_s=0.6, time_budget=1.0,
                  memory_budget=512.0),
    "tiny": dict(grids=[(8, 8), (16, 16)], channels=[32], batches=[1], modes=list(PASSES),
                 min_repeats=2, max_repeats=3, target_s=0.05, time_budget=0.5, memory_budget=256.0),
}


def _make_call(module, fn, x, g, mode: str):
    params = [p for p in module.parameters() if p.requires_grad] if module is not None else []

    if mode == "fwd":
        def call():
            with torch.no_grad():
                fn(x)
    else:
        def call():
            for p in params:
                p.grad = None
            x.grad = None
            fn(x).backward(g)
    return call


def _machine_info(device) -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": str(device)}
    try:
        info["load_average_start"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _mb(nbytes: float) -> str:
    mb = nbytes / 2**20
    return f"{mb:,.0f} MB" if mb >= 100 else f"{mb:.3g} MB"


def _predict(prev: dict | None, name: str, N: int) -> tuple[float | None, float | None]:
    """Predicted seconds per call and tensor bytes at ``N`` from the previous grid: time grows
    as ``N^max(g, 1.2)`` and memory as ``N^g`` with ``g`` the growth of the series' mixer."""
    if not prev:
        return None, None
    r = N / prev["N"]
    g = growth(name)
    t = prev.get("min_ms", prev["median_ms"]) / 1000 * r ** max(g, 1.2)   # the fastest call: least disturbed
    mem = prev["peak_bytes"] * r**g if prev.get("peak_bytes") is not None else None
    return t, mem


def grid_list(grids) -> list[tuple[int, int]]:
    """Grids given as pairs or ``"HxW"`` strings, checked (at least 2x2) and sorted by size."""
    out = []
    for g in grids:
        if isinstance(g, str):
            h, _, w = g.lower().partition("x")
            g = (int(h), int(w or h))
        h, w = int(g[0]), int(g[1])
        if h < 2 or w < 2:
            raise ValueError(f"grids must be at least 2x2, got {g!r}")
        out.append((h, w))
    return sorted(out, key=lambda hw: (hw[0] * hw[1], hw))


def _settings(preset: str, overrides: dict) -> dict:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
    cfg = dict(PRESETS[preset])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    cfg["grids"] = grid_list(cfg["grids"])
    for m in cfg["modes"]:
        if m not in PASSES:
            raise ValueError(f"modes must be among {PASSES}, got {m!r}")
    return cfg


def _skip_reason(cfg: dict, prev: dict | None, name: str, mode: str, C: int, H: int, W: int) -> str | None:
    t_pred, mem_pred = _predict(prev, name, H * W)
    param_bytes = 4 * param_count(name, C, H, W) * (2 if mode == "fwd+bwd" else 1)
    budget = cfg["memory_budget"] * 2**20
    if param_bytes > budget:
        return (f"parameters{' and gradients' if mode == 'fwd+bwd' else ''} alone need "
                f"{_mb(param_bytes)} > memory budget {_mb(budget)}")
    if mem_pred is not None and mem_pred > budget:
        return f"predicted {_mb(mem_pred)} > memory budget {_mb(budget)}"
    if t_pred is not None and t_pred > cfg["time_budget"]:
        return f"predicted {t_pred:.3g} s per call > time budget {cfg['time_budget']:.3g} s"
    return None


def _inputs(mode: str, B: int, H: int, W: int, C: int, gen, device):
    x = torch.randn(B, H, W, C, generator=gen).to(device)
    g = torch.randn(B, H, W, C, generator=gen).to(device)
    x_cf = x.permute(0, 3, 1, 2).contiguous()
    g_cf = g.permute(0, 3, 1, 2).contiguous()
    if mode == "fwd+bwd":
        x.requires_grad_(True)
        x_cf.requires_grad_(True)
    return (x, g), (x_cf, g_cf)


def _measure(cfg, active, calls, base: dict, skipped, last, device, measure_memory: bool) -> list[dict]:
    """Warm up (two calls each; the second estimates a round), time interleaved, measure memory."""
    est = {}
    for name in list(active):
        calls[name]()
        est[name] = call_seconds(calls[name])
        if est[name] > 2 * cfg["time_budget"]:
            skipped.append(dict(series=name, **base, reason=f"one call took {est[name]:.2f} s > 2 x time budget "
                                                          f"{cfg['time_budget']:.2f} s"))
            last[name] = None
            active.remove(name)
    round_s = sum(est[n] for n in active)
    reps = int(min(cfg["max_repeats"], max(cfg["min_repeats"], round(cfg["target_s"] / max(round_s, 1e-9)))))
    times = interleaved_seconds({n: calls[n] for n in active}, reps)
    rows = []
    for name in active:
        ts = sorted(times[name])
        row = dict(series=name, **base, repeats=len(ts), median_ms=statistics.median(ts) * 1e3,
                   p10_ms=quantile(ts, 0.1) * 1e3, p90_ms=quantile(ts, 0.9) * 1e3, min_ms=ts[0] * 1e3)
        row["peak_bytes"] = peak_memory_bytes(calls[name], device) if measure_memory else None
        row["peak_mb"] = None if row["peak_bytes"] is None else round(row["peak_bytes"] / 2**20, 3)
        rows.append(row)
        last[name] = row
    return rows


def _run_config(cfg, series, key, state, device, measure_memory, seed, gen) -> int:
    """One configuration ``(mode, C, B, (H, W))``: returns how many series it finished."""
    mode, C, B, (H, W) = key
    base = dict(mode=mode, C=C, B=B, H=H, W=W, N=H * W)
    last = state["last"].setdefault((mode, C, B), {})
    active = []
    for name in series:
        if name in last and last[name] is None:
            state["skipped"].append(dict(series=name, **base, reason="skipped at a smaller grid"))
            continue
        reason = _skip_reason(cfg, last.get(name), name, mode, C, H, W)
        if reason:
            state["skipped"].append(dict(series=name, **base, reason=reason))
            last[name] = None
            continue
        active.append(name)
    if not active:
        return len(series)
    torch.manual_seed(seed)
    (x, g), (x_cf, g_cf) = _inputs(mode, B, H, W, C, gen, device)
    calls = {}
    for name in active:
        module, fn, cf = build(name, C, H, W, device)
        calls[name] = _make_call(module, fn, x_cf if cf else x, g_cf if cf else g, mode)
    state["results"] += _measure(cfg, active, calls, base, state["skipped"], last, device, measure_memory)
    return len(series)


def _document(preset, cfg, series, state, info, device, command, t_start) -> dict:
    try:
        info["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    settings = dict(cfg, grids=[list(hw) for hw in cfg["grids"]])
    out = {
        "schema": SCHEMA,
        "command": command or f"python -m afno_lite.bench scaling (preset {preset})",
        "argv": list(sys.argv),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "preset": preset, "machine": info, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "settings": settings,
        "method": {
            "timing": "interleaved round-robin over series per configuration; median of repeats after 2 warm-up "
                      "calls; torch.utils.benchmark.timer (time.perf_counter, accelerator synchronised)",
            "memory": ("torch.cuda.max_memory_allocated minus memory in use before the call" if device.type == "cuda"
                       else "peak of live tensor storages created by operators during one call, tracked with a "
                            "TorchDispatchMode (inputs, parameters and kernel-internal workspaces excluded)"),
            "fwd+bwd": "y = f(x); y.backward(g) with x.requires_grad; gradients reset to None before each call",
            "fft_floor": SERIES["fft_floor"].description,
            "mixers": "built with check_finite=False",
        },
        "series": {n: {"label": series_for(n).label, "description": series_for(n).description} for n in series},
        "results": state["results"], "skipped": state["skipped"],
        "elapsed_s": round(time.perf_counter() - t_start, 2),
    }
    out["slopes"] = slopes(out)
    out["goals"] = goal_ratios(out)
    return out


def run_scaling(preset: str = "quick", *, grids=None, channels=None, batches=None, passes=None, modes=None,
                series=None, device=None, min_repeats=None, max_repeats=None, target_s=None,
                time_budget=None, memory_budget=None, measure_memory: bool = True,
                progress: bool = True, seed: int = 0, command: str | None = None) -> dict:
    """Run the scaling benchmark and return the result dictionary (what ``scaling`` writes
    as JSON). Keyword arguments override the preset (``"full"``, ``"quick"``, ``"tiny"``);
    ``passes`` (or its former name ``modes``) selects ``"fwd"`` and/or ``"fwd+bwd"``. ``series``
    may name registered mixers too (timed with their record's ``grid_kw``)."""
    cfg = _settings(preset, dict(grids=grids, channels=channels, batches=batches, modes=passes or modes,
                                 min_repeats=min_repeats, max_repeats=max_repeats, target_s=target_s,
                                 time_budget=time_budget, memory_budget=memory_budget))
    if series is None:
        series = [s for s in SERIES if s != "afno_physicsnemo" or physicsnemo_layer_cls() is not None]
    for s in series:
        series_for(s)                          # a clear error for an unknown name
    device = torch.device(device) if device is not None else torch.device("cpu")
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    info = _machine_info(device)
    state = {"results": [], "skipped": [], "last": {}}
    configs = [(mode, C, B, hw) for mode in cfg["modes"] for C in cfg["channels"] for B in cfg["batches"]
               for hw in cfg["grids"]]
    bar = tqdm(total=len(configs) * len(series), file=sys.stderr, disable=not progress, unit="series",
               desc=f"bench {preset}", leave=False)
    gen = torch.Generator().manual_seed(seed)
    for key in configs:
        bar.set_postfix_str(f"{key[0]} C={key[1]} B={key[2]} {key[3][0]}x{key[3][1]}")
        bar.update(_run_config(cfg, series, key, state, device, measure_memory, seed, gen))
    bar.close()
    return _document(preset, cfg, series, state, info, device, command, t_start)
