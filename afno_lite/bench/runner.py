"""The benchmark's runner: in each session (an independent repeat of the whole run), for every
configuration (pass, ``C``, ``B``, grid), predict, skip or build every series, warm it up, time
it interleaved (re-measuring a configuration whose calls scatter), and measure its peak memory;
then one row per series and configuration from all sessions.

Explained in chapter "Complexity and scaling" (``07_complexity_and_scaling``); the method is
described in :mod:`afno_lite.bench`.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import statistics
import sys
import time

import torch

from ..timing import call_seconds, interleaved_seconds, quantile
from ..train.provenance import code_hash, git_commit, git_dirty
from .machine import machine_info
from .series import (
    COMPILED,
    PASSES,
    PRECISIONS,
    SCHEMA,
    SERIES,
    build,
    compiled_mismatch,
    growth,
    minor_faults,
    param_count,
    peak_memory_bytes,
    physicsnemo_layer_cls,
    series_for,
)
from .stats import goal_ratios, slopes

__all__ = ["SCHEMA", "PASSES", "PRECISIONS", "PRESETS", "SPREAD_LIMIT", "GPU_SERIES", "run_scaling", "grid_list"]

#: Within one session, a series whose calls scatter by more than this (p90 / p10 of its
#: per-call times) has its configuration re-measured once; still above it, its row is flagged
#: ``unstable``.
SPREAD_LIMIT = 2.0


_FULL_GRIDS = [(8, 8), (8, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)]

#: The series the goals compare (:func:`~afno_lite.bench.stats.goal_ratios`): the fast AFNO, the
#: NVIDIA layer (package or stand-in) and the FFT floor in both layouts.
GOAL_SERIES = ["afno_fast", "afno_physicsnemo", "afno_nvidia_style", "fft_floor", "fft_floor_cf"]

#: The series of the GPU preset: one NVIDIA layer (physicsnemo's when importable, else the stand-in),
#: the fast AFNO eager and through the two compiled paths, 8-head attention (flash attention
#: under bf16 autocast where available), both FFT floors.
GPU_SERIES = ["attention_h8", "afno_physicsnemo", "afno_nvidia_style", "afno_fast", "afno_fast_compiled",
              "afno_fast_graphs", "fft_floor", "fft_floor_cf"]
_GPU_GRIDS = [(32, 32), (64, 64), (128, 128), (256, 256)]

_CPU_DEFAULTS = dict(precisions=["fp32"], series=None, only={}, compile_cpu={}, deadline_s=None, one_nvidia=False)

#: Run sizes. ``target_s``: seconds of timed calls per configuration (all series together) in
#: one session; ``sessions``: independent repeats of the whole run; ``goal_configs``: extra
#: configurations measured only for the goals (only :data:`GOAL_SERIES`; dropped when grids,
#: channels, batches or passes are given explicitly). (``modes`` is the list of passes; the
#: name is kept for the JSON settings.)
PRESETS = {
    "full": dict(grids=_FULL_GRIDS, channels=[64, 256], batches=[1, 8], modes=list(PASSES),
                 min_repeats=5, max_repeats=40, target_s=4.0, time_budget=3.0, memory_budget=1536.0,
                 sessions=3, goal_configs=[]),
    "quick": dict(grids=[(8, 8), (16, 16), (32, 32), (64, 64)], channels=[64, 256], batches=[1],
                  modes=list(PASSES), min_repeats=3, max_repeats=15, target_s=0.6, time_budget=1.0,
                  memory_budget=512.0, sessions=3,
                  goal_configs=[dict(mode="fwd+bwd", C=256, B=8, grids=[(32, 32), (64, 64)], series=GOAL_SERIES)]),
    "tiny": dict(grids=[(8, 8), (16, 16)], channels=[32], batches=[1], modes=list(PASSES),
                 min_repeats=2, max_repeats=3, target_s=0.05, time_budget=0.5, memory_budget=256.0,
                 sessions=1, goal_configs=[]),
    # one H200 in at most ~5 minutes (see afno_lite.bench.estimate): forward + backward only, fp32 and
    # bf16 autocast; the compiled paths only where the launch-bound plateau goal needs them
    # (C=256, B=1, N <= 16,384: each grid and precision compiles anew); a deadline after which no
    # new configuration starts.
    "gpu": dict(grids=_GPU_GRIDS, channels=[256, 768], batches=[1, 8], modes=["fwd+bwd"],
                precisions=list(PRECISIONS), min_repeats=3, max_repeats=30, target_s=0.25, time_budget=1.5,
                memory_budget=40000.0, sessions=3, goal_configs=[], series=GPU_SERIES, one_nvidia=True,
                only={"afno_fast_compiled": dict(C=[256], B=[1], N_max=16384),
                      "afno_fast_graphs": dict(C=[256], B=[1], N_max=16384)},
                compile_cpu={}, deadline_s=270.0),
    # the same run, tiny, for a dry run on any device (tests): on CPU the compiled series only
    # trace (backend aot_eager), they do not generate code
    "gpu_tiny": dict(grids=[(8, 8), (16, 16)], channels=[32], batches=[1, 2], modes=["fwd+bwd"],
                     precisions=list(PRECISIONS), min_repeats=2, max_repeats=3, target_s=0.05, time_budget=60.0,
                     memory_budget=1024.0, sessions=1, goal_configs=[], series=GPU_SERIES, one_nvidia=True,
                     only={"afno_fast_compiled": dict(B=[1], N_max=64), "afno_fast_graphs": dict(B=[1], N_max=64)},
                     compile_cpu={"backend": "aot_eager"}, deadline_s=600.0),
}


def _make_call(module, fn, x, g, mode: str, precision: str = "fp32", device_type: str = "cpu"):
    params = [p for p in module.parameters() if p.requires_grad] if module is not None else []
    low = {"fp32": None, "bf16": torch.bfloat16}[precision]
    grads = {g.dtype: g}

    def forward():
        if low is None:
            return fn(x)
        with torch.autocast(device_type, dtype=low):      # the forward pass only, as in training
            return fn(x)

    if mode == "fwd":
        def call():
            with torch.no_grad():
                forward()
    else:
        def call():
            for p in params:
                p.grad = None
            x.grad = None
            y = forward()
            gy = grads.get(y.dtype)
            if gy is None:                                 # e.g. attention's bf16 output under autocast
                gy = grads[y.dtype] = g.to(y.dtype)
            y.backward(gy)
    return call


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
    cfg = dict(_CPU_DEFAULTS, **PRESETS[preset])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    cfg["grids"] = grid_list(cfg["grids"])
    for m in cfg["modes"]:
        if m not in PASSES:
            raise ValueError(f"modes must be among {PASSES}, got {m!r}")
    for p in cfg["precisions"]:
        if p not in PRECISIONS:
            raise ValueError(f"precisions must be among {PRECISIONS}, got {p!r}")
    n = cfg["sessions"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"sessions must be an integer >= 1, got {n!r}")
    cfg["goal_configs"] = [dict(gc, grids=grid_list(gc["grids"])) for gc in cfg["goal_configs"]]
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


def _spread(ts: list[float]) -> float:
    """p90 / p10 of per-call times (nearest rank, as reported)."""
    ts = sorted(ts)
    lo = quantile(ts, 0.1)
    return quantile(ts, 0.9) / lo if lo > 0 else math.inf


def _failure(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"failed: {type(exc).__name__}: {msg[:300]}"


def _measure(cfg, active, calls, base: dict, skipped, first: bool, extra_warmup: dict,
             first_call: dict) -> tuple[dict, dict, bool]:
    """Warm up (two calls each, more for compiled series; the last estimates a round), then time
    interleaved. In the first session a series whose warm-up call is over twice the time budget
    is skipped (removed from ``active``); a series that raises is skipped with the error in any
    session. When some series' calls scatter by more than :data:`SPREAD_LIMIT`, the whole
    configuration is timed once more and that block replaces the first.
    Returns the seconds per call of each series, their spreads (p90 / p10) and whether the block
    was re-measured;
    ``first_call`` receives the seconds of each series' first call (compilation included)."""
    est = {}
    for name in list(active):
        try:
            first_call[name] = call_seconds(calls[name])
            for _ in range(extra_warmup.get(name, 0)):
                calls[name]()
            est[name] = call_seconds(calls[name])
        except Exception as exc:  # noqa: BLE001 -- one series failing must not end the run
            skipped.append(dict(series=name, **base, reason=_failure(exc)))
            active.remove(name)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        if first and est[name] > 2 * cfg["time_budget"]:
            skipped.append(dict(series=name, **base, reason=f"one call took {est[name]:.2f} s > 2 x time budget "
                                                          f"{cfg['time_budget']:.2f} s"))
            active.remove(name)
    if not active:
        return {}, {}, False
    round_s = sum(est[n] for n in active)
    reps = int(min(cfg["max_repeats"], max(cfg["min_repeats"], round(cfg["target_s"] / max(round_s, 1e-9)))))
    block = {n: calls[n] for n in active}
    times = interleaved_seconds(block, reps)
    spreads = {n: _spread(times[n]) for n in active}
    remeasured = any(v > SPREAD_LIMIT for v in spreads.values())
    if remeasured:
        times = interleaved_seconds(block, reps)
        spreads = {n: _spread(times[n]) for n in active}
    return times, spreads, remeasured


def _run_config(cfg, series, key, state, device, measure_memory, seed, gen, session: int) -> int:
    """One configuration ``(mode, C, B, (H, W), precision)`` in one session: returns how many
    series it finished. The first session decides which series run (budgets) and measures peak
    memory; later sessions reuse its decisions with freshly built modules and fresh inputs."""
    mode, C, B, (H, W), precision = key
    base = dict(mode=mode, C=C, B=B, H=H, W=W, N=H * W, precision=precision)
    last = state["last"].setdefault((mode, C, B, precision), {})
    if session == 0:
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
    else:
        active = list(state["runs"][key]["active"]) if key in state["runs"] else []
    if not active:
        return len(series)
    torch.manual_seed(seed + session)
    (x, g), (x_cf, g_cf) = _inputs(mode, B, H, W, C, gen, device)
    compile_kw = cfg["compile_cpu"] if device.type != "cuda" else {}
    calls, made = {}, {}
    for name in list(active):
        try:
            module, fn, cf = build(name, C, H, W, device, compile_kw)
        except Exception as exc:  # noqa: BLE001 -- e.g. a layer that cannot be built on this device
            state["skipped"].append(dict(series=name, **base, reason=_failure(exc)))
            active.remove(name)
            continue
        made[name] = (module, fn, x_cf if cf else x, g_cf if cf else g)
        calls[name] = _make_call(module, fn, *made[name][2:], mode, precision, device.type)
    tried = list(active)
    first_call = {}
    extra = {n: 2 for n in active if n in COMPILED}          # compile, then (CUDA graphs) record, then replay
    times, spreads, remeasured = _measure(cfg, active, calls, base, state["skipped"], session == 0, extra, first_call)
    if session == 0:
        for name in [n for n in active if n in COMPILED]:     # timed only if it is the eager layer
            if why := compiled_mismatch(*made[name], mode, precision, device.type):
                state["skipped"].append(dict(series=name, **base, reason=why))
                active.remove(name)
        for name in tried:
            if name not in active:
                last[name] = None
        if not active:
            return len(series)
        run = state["runs"][key] = dict(base=base, active=list(active), times={n: [] for n in active},
                                        spreads={n: [] for n in active}, remeasured=0, peak={}, faults={},
                                        first_call={n: first_call[n] for n in active})
        for name in active:
            # a compiled series: a CUDA graph's memory lives in its pool, allocated when recorded
            run["peak"][name] = (peak_memory_bytes(calls[name], device)
                                 if measure_memory and name not in COMPILED else None)
            run["faults"][name] = minor_faults(calls[name]) if measure_memory else None
            ts = sorted(times[name])
            # what the budgets of the next grid are predicted from
            last[name] = dict(N=H * W, median_ms=statistics.median(ts) * 1e3, min_ms=ts[0] * 1e3,
                              peak_bytes=run["peak"][name])
    run = state["runs"][key]
    run["remeasured"] += int(remeasured)
    for name in active:
        run["times"][name].append(times[name])
        run["spreads"][name].append(spreads[name])
    return len(series)


def _result_rows(state) -> list[dict]:
    """One row per (configuration, series) from all sessions: ``median_ms`` is the median of the
    per-session medians (``sessions_ms``); quantiles, ``min_ms`` and ``spread`` (p90 / p10) are
    over every timed call of every session."""
    rows = []
    for run in state["runs"].values():
        for name in run["active"]:
            per = run["times"][name]
            ts = sorted(t for block in per for t in block)
            sessions_ms = [statistics.median(block) * 1e3 for block in per]
            p10, p90 = quantile(ts, 0.1) * 1e3, quantile(ts, 0.9) * 1e3
            peak = run["peak"][name]
            rows.append(dict(series=name, **run["base"], device=state["device"], repeats=len(ts),
                             median_ms=statistics.median(sessions_ms),
                             p10_ms=p10, p90_ms=p90, min_ms=ts[0] * 1e3, peak_bytes=peak,
                             peak_mb=None if peak is None else round(peak / 2**20, 3),
                             sessions_ms=sessions_ms, spread=p90 / p10 if p10 > 0 else None,
                             session_spreads=[round(v, 3) for v in run["spreads"][name]],
                             remeasured=run["remeasured"],
                             unstable=any(v > SPREAD_LIMIT for v in run["spreads"][name]),
                             first_call_s=round(run["first_call"][name], 6),
                             minor_faults=run["faults"].get(name)))
    return rows


def _document(preset, cfg, series, state, info, device, command, t_start) -> dict:
    state["results"] = _result_rows(state)
    try:
        info["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    settings = dict(cfg, grids=[list(hw) for hw in cfg["grids"]],
                    goal_configs=[dict(gc, grids=[list(hw) for hw in gc["grids"]]) for gc in cfg["goal_configs"]])
    out = {
        "schema": SCHEMA,
        "command": command or f"python -m afno_lite.bench scaling (preset {preset})",
        "argv": list(sys.argv),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "preset": preset, "machine": info, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "device": str(device), "device_name": info.get("gpu") or info.get("cpu"), "cuda": torch.version.cuda,
        "settings": settings,
        "method": {
            "timing": "interleaved round-robin over series per configuration; median of repeats after 2 warm-up "
                      "calls; torch.utils.benchmark.timer (time.perf_counter, accelerator synchronised); "
                      f"{torch.get_num_threads()} torch threads (torch.get_num_threads(), set with --threads)",
            "sessions": f"{cfg['sessions']} independent sessions, each a complete pass over every configuration "
                        "(fresh modules and inputs); median_ms is the median of the per-session medians "
                        "(sessions_ms); skipping decisions of the first session are reused; peak memory is "
                        "measured in the first session",
            "spread": f"a configuration where some series has p90/p10 > {SPREAD_LIMIT:g} within a session is timed "
                      "once more (the new block replaces the first); still above, the row is flagged unstable; "
                      "spread is p90/p10 over all calls of all sessions",
            "goals": "ratios per session (series timed interleaved in the same session), reported as median, "
                     "min, max over the sessions; the FFT floor is the faster of fft_floor and fft_floor_cf in "
                     "each session",
            "memory": ("torch.cuda.max_memory_allocated minus memory in use before the call" if device.type == "cuda"
                       else "peak of live tensor storages created by operators during one call, tracked with a "
                            "TorchDispatchMode (inputs, parameters and kernel-internal workspaces excluded)"),
            "minor_faults": "page faults of the process (getrusage ru_minflt) during one untimed call after the "
                            "timed ones, first session: memory the call had to take fresh from the operating "
                            "system (None with --no-memory or where getrusage is missing)",
            "fwd+bwd": "y = f(x); y.backward(g) with x.requires_grad; gradients reset to None before each call",
            "precision": "fp32: float32 throughout; bf16: the forward pass under torch.autocast(device, "
                         "dtype=torch.bfloat16), the backward pass outside it (g cast to the output dtype); rows "
                         "without a precision (older results) are fp32",
            "compiled": "compiled series (afno_lite.fast.compiled) get two more warm-up calls (compile, record a "
                        "CUDA graph) and, after the first session's timing, are checked against their eager "
                        "layer (bench.series.compiled_mismatch; one that differs is listed in skipped and not "
                        "timed again); first_call_s is the first call of each series in the first session, "
                        "compilation included; their peak memory is not measured (a CUDA graph's pool is "
                        "allocated when it is recorded)",
            "fft_floor": SERIES["fft_floor"].description,
            "mixers": "built with check_finite=False",
        },
        "series": {n: {"label": series_for(n).label, "description": series_for(n).description} for n in series},
        "code": {"git_commit": git_commit(), "git_dirty": git_dirty(), "code_hash": code_hash()},
        "results": state["results"], "skipped": state["skipped"], "deadline": state["deadline"],
        "elapsed_s": round(time.perf_counter() - t_start, 2),
    }
    out["slopes"] = slopes(out)
    out["goals"] = goal_ratios(out)
    return out


def run_scaling(preset: str = "quick", *, grids=None, channels=None, batches=None, passes=None, modes=None,
                series=None, device=None, min_repeats=None, max_repeats=None, target_s=None,
                time_budget=None, memory_budget=None, sessions=None, goal_configs=None, precisions=None,
                deadline_s=None, measure_memory: bool = True, progress: bool = True, seed: int = 0,
                command: str | None = None) -> dict:
    """Run the scaling benchmark and return the result dictionary (what ``scaling`` writes
    as JSON). Keyword arguments override the preset (one of :data:`PRESETS`: ``"full"``,
    ``"quick"``, ``"tiny"``, ``"gpu"``, ``"gpu_tiny"``);
    ``passes`` (or its former name ``modes``) selects ``"fwd"`` and/or ``"fwd+bwd"``. ``series``
    may name registered mixers too (timed with their record's ``grid_kw``). ``sessions``: how
    many independent repeats of the whole run (presets ``full``, ``quick``, ``gpu``: 3; ``tiny``,
    ``gpu_tiny``: 1); ``goal_configs``: extra
    configurations for the goals (see :data:`PRESETS`; ``[]`` for none, and none by default when
    grids, channels, batches or passes are given). ``precisions``: ``"fp32"`` and/or ``"bf16"``
    (autocast; presets ``gpu``, ``gpu_tiny``: both, else fp32). ``deadline_s``: no configuration
    starts after this many seconds (the rest is listed in ``skipped`` and ``deadline``)."""
    if goal_configs is None and any(v is not None for v in (grids, channels, batches, passes or modes)):
        goal_configs = []
    cfg = _settings(preset, dict(grids=grids, channels=channels, batches=batches, modes=passes or modes,
                                 min_repeats=min_repeats, max_repeats=max_repeats, target_s=target_s,
                                 time_budget=time_budget, memory_budget=memory_budget, sessions=sessions,
                                 goal_configs=goal_configs, precisions=precisions, deadline_s=deadline_s))
    have_nemo = physicsnemo_layer_cls() is not None
    if series is None and cfg["series"] is not None:
        series = [s for s in cfg["series"] if s != "afno_physicsnemo" or have_nemo]
        if cfg["one_nvidia"] and have_nemo:      # the NVIDIA layer itself; else its stand-in, labelled
            series = [s for s in series if s != "afno_nvidia_style"]
    if series is None:
        series = [s for s in SERIES if (s != "afno_physicsnemo" or have_nemo) and s not in COMPILED]
    for s in series:
        series_for(s)                          # a clear error for an unknown name
    device = torch.device(device) if device is not None else torch.device("cpu")
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    info = machine_info(device)
    state = {"results": [], "skipped": [], "last": {}, "runs": {}, "device": str(device), "deadline": None}
    configs = [((mode, C, B, hw, prec), _where(cfg, series, C, B, hw, prec)) for mode in cfg["modes"]
               for prec in cfg["precisions"] for C in cfg["channels"] for B in cfg["batches"] for hw in cfg["grids"]]
    seen = {key for key, _ in configs}
    for gc in cfg["goal_configs"]:
        names = [s for s in gc["series"] if s in series]
        for prec in cfg["precisions"]:
            for hw in gc["grids"]:
                key = (gc["mode"], gc["C"], gc["B"], hw, prec)
                if names and key not in seen:
                    configs.append((key, names))
                    seen.add(key)
    configs = [(key, names) for key, names in configs if names]
    n = cfg["sessions"]
    bar = tqdm(total=n * sum(len(names) for _, names in configs), file=sys.stderr, disable=not progress,
               unit="series", desc=f"bench {preset}", leave=False)
    gen = torch.Generator().manual_seed(seed)
    deadline = cfg["deadline_s"]
    for session in range(n):
        for i, (key, names) in enumerate(configs):
            if deadline is not None and time.perf_counter() - t_start > deadline:
                _stop(state, configs[i:], session, n, deadline, len(configs))
                break
            bar.set_postfix_str(f"session {session + 1}/{n} {key[0]} {key[4]} C={key[1]} B={key[2]} "
                                f"{key[3][0]}x{key[3][1]}")
            bar.update(_run_config(cfg, names, key, state, device, measure_memory, seed, gen, session))
        if state["deadline"] is not None:
            break
    bar.close()
    return _document(preset, cfg, series, state, info, device, command, t_start)


def _where(cfg: dict, series: list[str], C: int, B: int, hw: tuple[int, int], precision: str) -> list[str]:
    """The series timed at one configuration: all, except those the preset's ``only`` restricts
    (lists ``C``, ``B``, ``precisions`` and a largest ``N_max``)."""
    out = []
    for s in series:
        rule = cfg["only"].get(s)
        if rule and not (C in rule.get("C", [C]) and B in rule.get("B", [B])
                         and precision in rule.get("precisions", [precision])
                         and hw[0] * hw[1] <= rule.get("N_max", hw[0] * hw[1])):
            continue
        out.append(s)
    return out


def _stop(state: dict, left: list, session: int, sessions: int, deadline: float, per_session: int) -> None:
    """The run's deadline passed: nothing more starts. Configurations never run (first session)
    are listed in ``skipped``; ``deadline`` says where the run stopped."""
    state["deadline"] = {"deadline_s": deadline, "stopped_in_session": session + 1, "sessions": sessions,
                         "configs_left_in_session": len(left), "configs_per_session": per_session}
    if session == 0:
        for (mode, C, B, (H, W), prec), names in left:
            for name in names:
                state["skipped"].append(dict(series=name, mode=mode, C=C, B=B, H=H, W=W, N=H * W, precision=prec,
                                             reason=f"run deadline {deadline:g} s reached before this configuration"))
