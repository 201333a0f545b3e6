"""``python -m afno_lite.bench``: how each token mixer's cost grows with the number of tokens.

Explained in chapter "Complexity and scaling" (``07_complexity_and_scaling``), which runs
a small version of the benchmark and plots the shipped full run
(``notebooks/results/bench_scaling.json``).

Sub-commands
------------
``scaling [--quick | --tiny] [--out DIR]``
    Times the forward pass and the forward + backward pass of every series (see
    :data:`SERIES`) on grids ``8x8 ... 128x128`` (``N = 64 ... 16,384`` tokens), ``C = 64, 256``
    channels, batch ``B = 1, 8``. Writes ``DIR/bench_scaling.json`` and
    ``DIR/bench_scaling.png`` (log-log time against ``N`` with fitted slopes), prints a
    table and the goal ratios (:func:`goal_ratios`). ``--quick`` (four grids, ``B = 1``)
    runs in under a minute on 2 idle cores; ``--tiny`` is for tests and the chapter.
``nvidia``
    Compares :class:`~afno_lite.fast.FastAFNO` with NVIDIA's ``AFNO2DLayer`` when
    ``physicsnemo`` is importable (weights copied with :mod:`afno_lite.compat`, outputs
    compared, time ratio printed). Always also times the NVIDIA-style stand-in
    :func:`afno_lite.compat.nvidia_afno2d_forward` (their einsum code path re-implemented
    line by line -- not NVIDIA's package).
``widgets``
    Slider-to-figure latency of the explorers (:func:`afno_lite.widgets.measure_latency`)
    against the 150 ms goal.

Method
------
* **Interleaved**: for one configuration (mode, ``C``, ``B``, grid) every series is built,
  warmed up twice, then timed round-robin ``A B C ... A B C ...``; the median over the
  repeats is reported (also the 10 % and 90 % quantiles). Load from other processes then
  hits every series alike.
* **Fair inputs**: all mixers take channels-last tokens ``[B, H, W, C]``, are built with
  ``check_finite=False`` (no input validation pass), and in ``fwd+bwd`` the input requires a
  gradient and every gradient is reset to ``None`` before a call (as ``zero_grad`` does).
* **FFT floor**: ``irfft2(rfft2(x))`` over ``(H, W)`` of the same channels-last tokens
  (``fft_floor``): the least a spectral mixer must do. ``fft_floor_cf`` does the same
  transforms on a contiguous channels-first copy made outside the timed region.
* **Peak memory**: tracemalloc does not see torch's allocations. On CUDA we report
  ``torch.cuda.max_memory_allocated`` minus the memory in use before the call. On CPU
  (torch keeps no allocator statistics there) one extra call runs under a
  ``TorchDispatchMode`` that records the storage of every operator's output and drops it
  when the storage is freed: the peak of those live bytes is the tensor memory of the call
  (activations, saved tensors, temporaries, gradients) -- inputs and parameters that
  existed before the call and scratch space inside kernels (FFT plans, BLAS buffers) are
  not counted.
* **Threads on a busy machine**: with several threads every parallel region waits for its
  slowest thread, and a thread that loses its core to another program stalls the whole call;
  on a machine shared with other work, timings with 2 threads then scatter by 10-100x. Pass
  ``--threads 1`` there (the JSON records the thread count and the load average).
* **Budgets**: before a configuration runs, each series' time per call is predicted from
  its previous grid (``t * (N/N_prev)^p``, ``p = 2`` for attention, ``1.2`` otherwise) and
  its memory from its parameter count (``afno_lite.complexity``) plus the previous peak
  scaled with ``N``; series over ``--time-budget`` seconds or ``--memory-budget`` MB are
  skipped and listed with the reason.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time
import weakref
from pathlib import Path

import torch

from . import mixers as _mixers
from .fast import FastAFNO
from .spectral import kept_mode_cutoffs

__all__ = ["SERIES", "PRESETS", "run_scaling", "save_results", "load_results", "plot_scaling", "fit_slope",
           "slopes", "goal_ratios", "format_table", "format_goals", "peak_memory_bytes", "main"]

SCHEMA = "afno_lite.bench.scaling/1"
MODES = ("fwd", "fwd+bwd")

#: name -> (label, description). The order is the round-robin order.
SERIES = {
    "attention_h1": ("attention, 1 head", "SelfAttention(C, num_heads=1): SDPA with q/k/v/out projections"),
    "attention_h8": ("attention, 8 heads", "SelfAttention(C, num_heads=8)"),
    "gfn": ("GFN", "GlobalFilter(C, grid=(H, W)): one complex weight per mode and channel"),
    "fno_all": ("FNO, all modes", "SpectralConv2d(C, modes=(H//2, W//2)): dense C x C complex matrix per mode"),
    "fno_25": ("FNO, 25 % modes", "SpectralConv2d(C, modes=kept_mode_cutoffs(H, W, 0.25))"),
    "afno": ("AFNO (reference)", "afno_lite.mixers.AFNO(C, num_blocks=8), the readable reference"),
    "afno_nvidia_style": ("AFNO, NVIDIA-style code",
                          "afno_lite.compat.nvidia_afno2d_forward: NVIDIA's AFNO2DLayer einsum code path "
                          "re-implemented line by line (a stand-in, not NVIDIA's package)"),
    "afno_physicsnemo": ("AFNO, physicsnemo AFNO2DLayer", "physicsnemo's AFNO2DLayer (only when importable)"),
    "afno_fast": ("AFNO fast", "afno_lite.fast.FastAFNO(C, num_blocks=8)"),
    "afno_fast_k25": ("AFNO fast, keep 25 %", "FastAFNO(C, num_blocks=8, keep_fraction=0.25)"),
    "fft_floor": ("FFT floor", "irfft2(rfft2(x)) over (H, W) of the channels-last tokens"),
    "fft_floor_cf": ("FFT floor, channels-first", "irfft2(rfft2(x)) on a contiguous [B, C, H, W] copy"),
}

_FULL_GRIDS = [(8, 8), (8, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)]

#: Run sizes. ``target_s``: seconds of timed calls per configuration (all series together).
PRESETS = {
    "full": dict(grids=_FULL_GRIDS, channels=[64, 256], batches=[1, 8], modes=list(MODES),
                 min_repeats=5, max_repeats=40, target_s=4.0, time_budget=3.0, memory_budget=1536.0),
    "quick": dict(grids=[(8, 8), (16, 16), (32, 32), (64, 64)], channels=[64, 256], batches=[1],
                  modes=list(MODES), min_repeats=3, max_repeats=15, target_s=0.6, time_budget=1.0,
                  memory_budget=512.0),
    "tiny": dict(grids=[(8, 8), (16, 16)], channels=[32], batches=[1], modes=list(MODES),
                 min_repeats=2, max_repeats=3, target_s=0.05, time_budget=0.5, memory_budget=256.0),
}

_ATTENTION = ("attention_h1", "attention_h8")


# --------------------------------------------------------------------------- the series
def _physicsnemo_layer_cls():
    try:  # optional: NVIDIA's package (not a dependency of afno_lite)
        from physicsnemo.models.afno.afno import AFNO2DLayer
    except Exception:  # noqa: BLE001 -- any import failure means "not available"
        return None
    return AFNO2DLayer


def _floor(x: torch.Tensor) -> torch.Tensor:
    H, W = x.shape[1], x.shape[2]
    X = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")
    return torch.fft.irfft2(X, s=(H, W), dim=(1, 2), norm="ortho")


def _floor_cf(x: torch.Tensor) -> torch.Tensor:
    H, W = x.shape[-2], x.shape[-1]
    return torch.fft.irfft2(torch.fft.rfft2(x, norm="ortho"), s=(H, W), norm="ortho")


def _build(name: str, C: int, H: int, W: int, device) -> tuple[torch.nn.Module | None, callable, bool]:
    """(module or None, function of the channels-last input, wants channels-first input)."""
    kw = dict(check_finite=False)
    if name in _ATTENTION:
        m = _mixers.SelfAttention(C, num_heads=1 if name == "attention_h1" else 8, **kw)
    elif name == "gfn":
        m = _mixers.GlobalFilter(C, grid=(H, W), **kw)
    elif name == "fno_all":
        m = _mixers.SpectralConv2d(C, modes=(H // 2, W // 2), **kw)
    elif name == "fno_25":
        m = _mixers.SpectralConv2d(C, modes=kept_mode_cutoffs(H, W, 0.25), **kw)
    elif name == "afno":
        m = _mixers.AFNO(C, num_blocks=8, **kw)
    elif name == "afno_fast":
        m = FastAFNO(C, num_blocks=8, **kw)
    elif name == "afno_fast_k25":
        m = FastAFNO(C, num_blocks=8, keep_fraction=0.25, **kw)
    elif name == "afno_nvidia_style":
        from .compat import nvidia_afno2d_forward

        m = _mixers.AFNO(C, num_blocks=8, **kw).to(device)
        return m, (lambda x: nvidia_afno2d_forward(x, m.w1, m.b1, m.w2, m.b2, num_blocks=8)), False
    elif name == "afno_physicsnemo":
        cls = _physicsnemo_layer_cls()
        if cls is None:
            raise RuntimeError("physicsnemo is not importable")
        m = cls(hidden_size=C, num_blocks=8, sparsity_threshold=0.01, hard_thresholding_fraction=1,
                hidden_size_factor=1)
    elif name == "fft_floor":
        return None, _floor, False
    elif name == "fft_floor_cf":
        return None, _floor_cf, True
    else:
        raise ValueError(f"unknown series {name!r}; expected one of {list(SERIES)}")
    m = m.to(device)
    return m, m, False


def _param_count(name: str, C: int, H: int, W: int) -> int:
    """Parameters of a series from :mod:`afno_lite.complexity` (nothing is allocated)."""
    from . import complexity

    if name in _ATTENTION:
        return complexity.parameter_count("attention", C, num_heads=1 if name == "attention_h1" else 8)
    if name == "gfn":
        return complexity.parameter_count("gfn", C, (H, W))
    if name == "fno_all":
        return complexity.parameter_count("fno", C, modes=(H // 2, W // 2))
    if name == "fno_25":
        return complexity.parameter_count("fno", C, modes=kept_mode_cutoffs(H, W, 0.25))
    if name.startswith("afno"):
        return complexity.parameter_count("afno", C, num_blocks=8)
    return 0


# --------------------------------------------------------------------------- memory
class _LiveTensorBytes:
    """Peak bytes of tensor storages created by operators and alive at the same time."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_leaves

        tracker = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in tree_leaves(out):
                    if isinstance(t, torch.Tensor):
                        tracker._track(t)
                return out

        self.mode = _Mode()
        self.live: dict = {}
        self.current = 0
        self.peak = 0

    def _track(self, t: torch.Tensor) -> None:
        st = t.untyped_storage()
        key = (str(st.device), st.data_ptr())
        n = st.nbytes()
        if n and key not in self.live:
            self.live[key] = n
            self.current += n
            self.peak = max(self.peak, self.current)
            weakref.finalize(st, self._free, key)

    def _free(self, key) -> None:
        self.current -= self.live.pop(key, 0)


def peak_memory_bytes(fn, device=None) -> int:
    """Peak tensor memory (bytes) allocated while ``fn()`` runs (see the module docstring)."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    tracker = _LiveTensorBytes()
    with tracker.mode:
        fn()
    return int(tracker.peak)


# --------------------------------------------------------------------------- timing
def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
    """Predicted seconds per call and tensor bytes at ``N`` from the previous grid."""
    if not prev:
        return None, None
    r = N / prev["N"]
    p = 2.0 if name in _ATTENTION else 1.2
    t = prev.get("min_ms", prev["median_ms"]) / 1000 * r**p   # the fastest call: least disturbed by load
    mem = prev["peak_bytes"] * (r**2 if name in _ATTENTION else r) if prev.get("peak_bytes") is not None else None
    return t, mem


def _grid_list(grids) -> list[tuple[int, int]]:
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


def run_scaling(preset: str = "quick", *, grids=None, channels=None, batches=None, modes=None,
                series=None, device=None, min_repeats=None, max_repeats=None, target_s=None,
                time_budget=None, memory_budget=None, measure_memory: bool = True,
                progress: bool = True, seed: int = 0, command: str | None = None) -> dict:
    """Run the scaling benchmark and return the result dictionary (what ``scaling`` writes
    as JSON). Keyword arguments override the preset (``"full"``, ``"quick"``, ``"tiny"``)."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
    cfg = dict(PRESETS[preset])
    for k, v in dict(grids=grids, channels=channels, batches=batches, modes=modes, min_repeats=min_repeats,
                     max_repeats=max_repeats, target_s=target_s, time_budget=time_budget,
                     memory_budget=memory_budget).items():
        if v is not None:
            cfg[k] = v
    grids = _grid_list(cfg["grids"])
    for m in cfg["modes"]:
        if m not in MODES:
            raise ValueError(f"modes must be among {MODES}, got {m!r}")
    if series is None:
        series = [s for s in SERIES if s != "afno_physicsnemo" or _physicsnemo_layer_cls() is not None]
    unknown = [s for s in series if s not in SERIES]
    if unknown:
        raise ValueError(f"unknown series {unknown}; expected some of {list(SERIES)}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    info = _machine_info(device)
    results: list[dict] = []
    skipped: list[dict] = []
    configs = [(mode, C, B, hw) for mode in cfg["modes"] for C in cfg["channels"] for B in cfg["batches"]
               for hw in grids]
    bar = tqdm(total=len(configs) * len(series), file=sys.stderr, disable=not progress, unit="series",
               desc=f"bench {preset}", leave=False)
    last: dict = {}   # (name, mode, C, B) -> last measured row
    gen = torch.Generator().manual_seed(seed)
    for mode, C, B, (H, W) in configs:
        N = H * W
        bar.set_postfix_str(f"{mode} C={C} B={B} {H}x{W}")
        active = []
        for name in series:
            key = (name, mode, C, B)
            base = dict(series=name, mode=mode, C=C, B=B, H=H, W=W, N=N)
            if key in last and last[key] is None:
                skipped.append(dict(base, reason="skipped at a smaller grid"))
                continue
            t_pred, mem_pred = _predict(last.get(key), name, N)
            n_params = _param_count(name, C, H, W)
            param_bytes = 4 * n_params * (2 if mode == "fwd+bwd" else 1)
            if param_bytes > cfg["memory_budget"] * 2**20:
                reason = (f"parameters{' and gradients' if mode == 'fwd+bwd' else ''} alone need "
                          f"{_mb(param_bytes)} > memory budget {_mb(cfg['memory_budget'] * 2**20)}")
            elif mem_pred is not None and mem_pred > cfg["memory_budget"] * 2**20:
                reason = f"predicted {_mb(mem_pred)} > memory budget {_mb(cfg['memory_budget'] * 2**20)}"
            elif t_pred is not None and t_pred > cfg["time_budget"]:
                reason = f"predicted {t_pred:.3g} s per call > time budget {cfg['time_budget']:.3g} s"
            else:
                reason = None
            if reason:
                skipped.append(dict(base, reason=reason))
                last[key] = None
                continue
            active.append(name)
        bar.update(len(series) - len(active))
        if not active:
            continue
        torch.manual_seed(seed)
        x = torch.randn(B, H, W, C, generator=gen).to(device)
        g = torch.randn(B, H, W, C, generator=gen).to(device)
        x_cf = x.permute(0, 3, 1, 2).contiguous()
        g_cf = g.permute(0, 3, 1, 2).contiguous()
        if mode == "fwd+bwd":
            x.requires_grad_(True)
            x_cf.requires_grad_(True)
        calls = {}
        for name in active:
            module, fn, cf = _build(name, C, H, W, device)
            calls[name] = _make_call(module, fn, x_cf if cf else x, g_cf if cf else g, mode)
        # warm-up: two calls each; the second one estimates the cost of one round
        est = {}
        for name in list(active):
            calls[name]()
            _sync(device)
            t0 = time.perf_counter()
            calls[name]()
            _sync(device)
            est[name] = time.perf_counter() - t0
            if est[name] > 2 * cfg["time_budget"]:
                row = dict(series=name, mode=mode, C=C, B=B, H=H, W=W, N=N)
                skipped.append(dict(row, reason=f"one call took {est[name]:.2f} s > 2 x time budget "
                                                f"{cfg['time_budget']:.2f} s"))
                last[(name, mode, C, B)] = None
                active.remove(name)
                bar.update(1)
        round_s = sum(est[n] for n in active)
        reps = int(min(cfg["max_repeats"], max(cfg["min_repeats"], round(cfg["target_s"] / max(round_s, 1e-9)))))
        times = {n: [] for n in active}
        for _ in range(reps):
            for name in active:
                _sync(device)
                t0 = time.perf_counter()
                calls[name]()
                _sync(device)
                times[name].append(time.perf_counter() - t0)
        for name in active:
            ts = sorted(times[name])
            q = lambda p: ts[min(len(ts) - 1, int(p * (len(ts) - 1) + 0.5))]  # noqa: E731
            row = dict(series=name, mode=mode, C=C, B=B, H=H, W=W, N=N, repeats=len(ts),
                       median_ms=statistics.median(ts) * 1e3, p10_ms=q(0.1) * 1e3, p90_ms=q(0.9) * 1e3,
                       min_ms=ts[0] * 1e3)
            row["peak_bytes"] = peak_memory_bytes(calls[name], device) if measure_memory else None
            row["peak_mb"] = None if row["peak_bytes"] is None else round(row["peak_bytes"] / 2**20, 3)
            results.append(row)
            last[(name, mode, C, B)] = row
            bar.update(1)
        del calls
    bar.close()
    try:
        info["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    settings = {k: (list(map(list, v)) if k == "grids" else v) for k, v in cfg.items()}
    settings["grids"] = [list(hw) for hw in grids]
    out = {
        "schema": SCHEMA,
        "command": command or f"python -m afno_lite.bench scaling (preset {preset})",
        "argv": list(sys.argv),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "preset": preset,
        "machine": info,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "settings": settings,
        "method": {
            "timing": "interleaved round-robin over series per configuration; median of repeats after 2 warm-up "
                      "calls; time.perf_counter (CUDA synchronised)",
            "memory": ("torch.cuda.max_memory_allocated minus memory in use before the call" if device.type == "cuda"
                       else "peak of live tensor storages created by operators during one call, tracked with a "
                            "TorchDispatchMode (inputs, parameters and kernel-internal workspaces excluded)"),
            "fwd+bwd": "y = f(x); y.backward(g) with x.requires_grad; gradients reset to None before each call",
            "fft_floor": SERIES["fft_floor"][1],
            "mixers": "built with check_finite=False",
        },
        "series": {n: {"label": SERIES[n][0], "description": SERIES[n][1]} for n in series},
        "results": results,
        "skipped": skipped,
        "elapsed_s": round(time.perf_counter() - t_start, 2),
    }
    out["slopes"] = slopes(out)
    out["goals"] = goal_ratios(out)
    return out


# --------------------------------------------------------------------------- analysis
def _rows(result: dict, series: str, mode: str, C: int, B: int) -> list[dict]:
    return sorted((r for r in result["results"] if r["series"] == series and r["mode"] == mode
                   and r["C"] == C and r["B"] == B), key=lambda r: r["N"])


def _time(result, series, mode, C, B, N) -> float | None:
    for r in _rows(result, series, mode, C, B):
        if r["N"] == N:
            return r["median_ms"]
    return None


def fit_slope(Ns, ts) -> float | None:
    """Least-squares slope of ``log t`` against ``log N`` (the growth exponent)."""
    pts = [(math.log(n), math.log(t)) for n, t in zip(Ns, ts, strict=True) if t and t > 0]
    if len(pts) < 2 or len({p[0] for p in pts}) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def slopes(result: dict, n_min: int = 1024, n_max: int = 16384) -> list[dict]:
    """Growth exponents per (series, mode, C, B): over ``n_min <= N <= n_max`` and over all ``N``."""
    out = []
    keys = sorted({(r["series"], r["mode"], r["C"], r["B"]) for r in result["results"]},
                  key=lambda k: (list(SERIES).index(k[0]) if k[0] in SERIES else 99, k[1:]))
    for s, mode, C, B in keys:
        rows = _rows(result, s, mode, C, B)
        big = [r for r in rows if n_min <= r["N"] <= n_max]
        out.append(dict(series=s, mode=mode, C=C, B=B,
                        slope_all=fit_slope([r["N"] for r in rows], [r["median_ms"] for r in rows]),
                        slope_large=fit_slope([r["N"] for r in big], [r["median_ms"] for r in big]),
                        large_range=[n_min, n_max], large_points=len(big)))
    return out


def crossover(result: dict, fast: str = "afno_fast", slow: str = "attention_h8", mode: str = "fwd+bwd",
              C: int = 256, B: int = 1) -> dict:
    """Smallest ``N`` from which ``fast`` stays faster than ``slow`` (log-log interpolation
    between the two measured grids where the ratio crosses 1)."""
    a = {r["N"]: r["median_ms"] for r in _rows(result, fast, mode, C, B)}
    b = {r["N"]: r["median_ms"] for r in _rows(result, slow, mode, C, B)}
    Ns = sorted(set(a) & set(b))
    if not Ns:
        return {"N": None, "note": f"no common measurements of {fast} and {slow} at C={C}, B={B}, {mode}"}
    ratio = {n: a[n] / b[n] for n in Ns}
    faster = [ratio[n] < 1 for n in Ns]
    if not faster[-1]:
        return {"N": None, "note": f"{fast} is not faster than {slow} at the largest common N={Ns[-1]}",
                "ratios": ratio}
    i = len(Ns) - 1
    while i > 0 and faster[i - 1]:
        i -= 1
    if i == 0:
        return {"N": Ns[0], "bound": "<=", "note": f"faster at every measured N (from N={Ns[0]})", "ratios": ratio}
    n0, n1 = Ns[i - 1], Ns[i]
    l0, l1 = math.log(ratio[n0]), math.log(ratio[n1])
    ln = math.log(n0) + (math.log(n1) - math.log(n0)) * l0 / (l0 - l1)
    return {"N": round(math.exp(ln)), "bound": "~", "between": [n0, n1], "ratios": ratio,
            "note": f"interpolated between N={n0} and N={n1}"}


def goal_ratios(result: dict) -> dict:
    """The issue's four goals, computed from one result (``None`` where the run lacks the data)."""
    goals = {}
    nv = next((s for s in ("afno_physicsnemo", "afno_nvidia_style")
               if any(r["series"] == s for r in result["results"])), None)
    g = {"baseline": nv and SERIES[nv][0], "goal": "<= 0.7 at B=1, <= 0.8 at B=8 (N >= 1024, C=256, fwd+bwd)"}
    if nv == "afno_nvidia_style":
        g["note"] = ("physicsnemo not importable: baseline is the NVIDIA-style stand-in "
                     "afno_lite.compat.nvidia_afno2d_forward (their einsum code path), not NVIDIA's package")
    met = []
    for B, lim in ((1, 0.7), (8, 0.8)):
        ratios = {}
        if nv:
            for r in _rows(result, "afno_fast", "fwd+bwd", 256, B):
                t = _time(result, nv, "fwd+bwd", 256, B, r["N"])
                if r["N"] >= 1024 and t:
                    ratios[r["N"]] = round(r["median_ms"] / t, 3)
        g[f"B{B}"] = ratios
        g[f"B{B}_max"] = max(ratios.values()) if ratios else None
        if ratios:
            met.append(max(ratios.values()) <= lim)
    g["met"] = all(met) if met else None
    goals["vs_nvidia"] = g
    tf = _time(result, "afno_fast", "fwd+bwd", 256, 1, 4096)
    tfl = _time(result, "fft_floor", "fwd+bwd", 256, 1, 4096)
    tcf = _time(result, "fft_floor_cf", "fwd+bwd", 256, 1, 4096)
    goals["vs_fft_floor"] = {"value": round(tf / tfl, 3) if tf and tfl else None,
                             "vs_channels_first_floor": round(tf / tcf, 3) if tf and tcf else None,
                             "goal": "<= 2.5 at N=4096, B=1, C=256, fwd+bwd"}
    goals["vs_fft_floor"]["met"] = None if goals["vs_fft_floor"]["value"] is None else \
        goals["vs_fft_floor"]["value"] <= 2.5
    ge = {"goal": "afno_fast <= 1.15 over N=1024..16384 at B=1 (attention ~1.9)", "range": [1024, 16384]}
    for s in ("afno_fast", "afno", "attention_h8", "fft_floor"):
        for C in (256, 64):
            rows = [r for r in _rows(result, s, "fwd+bwd", C, 1) if 1024 <= r["N"] <= 16384]
            sl = fit_slope([r["N"] for r in rows], [r["median_ms"] for r in rows])
            ge[f"{s}_C{C}"] = None if sl is None else round(sl, 3)
            ge[f"{s}_C{C}_points"] = len(rows)
    ge["met"] = None if ge["afno_fast_C256"] is None else ge["afno_fast_C256"] <= 1.15
    goals["growth_exponent"] = ge
    co = crossover(result)
    co = {k: v for k, v in co.items() if k != "ratios"} | {
        "ratios": {str(k): round(v, 3) for k, v in co.get("ratios", {}).items()},
        "goal": "afno_fast faster than 8-head attention from N <= 128 (C=256, B=1, fwd+bwd)"}
    co["met"] = None if co["N"] is None else co["N"] <= 128
    goals["crossover_vs_attention_h8"] = co
    return goals


# --------------------------------------------------------------------------- output
def save_results(result: dict, out_dir, plot: bool = True) -> dict:
    """Write ``bench_scaling.json`` (and ``bench_scaling.png``) into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "bench_scaling.json"}
    with open(paths["json"], "w") as fh:
        json.dump(result, fh, indent=1, sort_keys=False)
        fh.write("\n")
    if plot:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = plot_scaling(result)
        paths["png"] = out_dir / "bench_scaling.png"
        fig.savefig(paths["png"], dpi=110, bbox_inches="tight")
        plt.close(fig)
    return paths


def load_results(path) -> dict:
    """Read a JSON file written by :func:`save_results` (checks the schema)."""
    with open(path) as fh:
        result = json.load(fh)
    if result.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a scaling result (schema {result.get('schema')!r}, expected {SCHEMA!r})")
    return result


_STYLE = {
    "attention_h1": ("tab:red", "--"), "attention_h8": ("tab:red", "-"), "gfn": ("tab:green", "-"),
    "fno_all": ("tab:purple", "-"), "fno_25": ("tab:purple", "--"), "afno": ("tab:blue", ":"),
    "afno_nvidia_style": ("tab:cyan", ":"), "afno_physicsnemo": ("tab:cyan", "-."),
    "afno_fast": ("tab:blue", "-"), "afno_fast_k25": ("tab:blue", "--"), "fft_floor": ("black", "-"),
    "fft_floor_cf": ("gray", "--"),
}


def plot_scaling(result: dict, mode: str | None = None, C: int | None = None, B: int | None = None,
                 series=None, axes=None):
    """Log-log median time per call against ``N``, one panel per (mode, C, B) present (or the
    ones selected). Slopes are fitted over ``N >= 1024`` (over all ``N`` when fewer than two
    such points): in the legend for a single panel, else in a small table inside each panel
    (the series legend is then shared, below the panels). Returns the figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    rows = result["results"]
    modes = [m for m in MODES if any(r["mode"] == m for r in rows) and (mode is None or m == mode)]
    cbs = sorted({(r["C"], r["B"]) for r in rows if (C is None or r["C"] == C) and (B is None or r["B"] == B)})
    if not modes or not cbs:
        raise ValueError("no measurements match the requested mode/C/B")
    names = [s for s in SERIES if any(r["series"] == s for r in rows) and (series is None or s in series)]
    single = len(modes) * len(cbs) == 1
    if axes is None:
        fig, axes = plt.subplots(len(modes), len(cbs), figsize=(4.3 * len(cbs) + (1.0 if single else 0),
                                                                3.6 * len(modes) + (0 if single else 0.9)),
                                 squeeze=False, sharex=True)
    else:
        axes = np.atleast_2d(axes)
        fig = axes.flat[0].figure
    handles = {}
    for i, m in enumerate(modes):
        for j, (c, b) in enumerate(cbs):
            ax = axes[i][j]
            slope_lines = []
            for s in names:
                rs = _rows(result, s, m, c, b)
                if not rs:
                    continue
                Ns, ts = [r["N"] for r in rs], [r["median_ms"] for r in rs]
                big = [(n, t) for n, t in zip(Ns, ts, strict=True) if n >= 1024]
                sl = fit_slope(*zip(*big, strict=True)) if len(big) >= 2 else fit_slope(Ns, ts)
                color, ls = _STYLE.get(s, (None, "-"))
                lab = SERIES[s][0] + (f" (slope {sl:.2f})" if single and sl is not None else "")
                (line,) = ax.plot(Ns, ts, ls, marker="o", ms=3, color=color, label=lab)
                handles.setdefault(s, line)
                if sl is not None:
                    slope_lines.append(f"{s:<17} {sl:5.2f}")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{m}, C={c}, B={b}", fontsize=9)
            ax.grid(True, which="major", alpha=0.3)
            if i == len(modes) - 1:
                ax.set_xlabel("tokens N = H·W")
            if j == 0:
                ax.set_ylabel("median time per call (ms)")
            if single:
                ax.legend(fontsize=7, loc="upper left")
            elif slope_lines:
                ax.text(0.98, 0.02, "slope\n" + "\n".join(slope_lines), transform=ax.transAxes, ha="right",
                        va="bottom", family="monospace", fontsize=5.5,
                        bbox=dict(boxstyle="round", fc="white", alpha=0.75, lw=0.3))
    if not single:
        fig.legend([handles[s] for s in names if s in handles], [SERIES[s][0] for s in names if s in handles],
                   loc="lower center", ncol=4, fontsize=7, frameon=False)
    n_thr = result.get("threads")
    fig.suptitle(f"token mixer cost, torch {result.get('torch')}, {n_thr} thread{'' if n_thr == 1 else 's'} "
                 f"(slopes fitted over N ≥ 1024 when available)", fontsize=9)
    fig.tight_layout(rect=(0, 0 if single else 0.9 / (3.6 * len(modes) + 0.9), 1, 1))
    return fig


def format_table(result: dict, peak: bool = False) -> str:
    """Plain-text table: one block per (mode, C, B), rows ``N``, columns series (median ms,
    or peak MB with ``peak=True``); ``skip`` marks skipped configurations."""
    rows = result["results"]
    names = [s for s in SERIES if any(r["series"] == s for r in rows)]
    skipped = {(s["series"], s["mode"], s["C"], s["B"], s["N"]) for s in result.get("skipped", [])}
    lines = []
    for m in MODES:
        for c, b in sorted({(r["C"], r["B"]) for r in rows if r["mode"] == m}):
            grids = sorted({(r["N"], r["H"], r["W"]) for r in rows + result.get("skipped", [])
                            if r["mode"] == m and r["C"] == c and r["B"] == b})
            lines.append(f"\n{m}, C={c}, B={b}: {'peak tensor MB' if peak else 'median ms per call'}")
            lines.append(f"{'grid':>9} {'N':>6} " + " ".join(f"{s[:13]:>13}" for s in names))
            for N, H, W in grids:
                cells = []
                for s in names:
                    r = next((r for r in rows if (r["series"], r["mode"], r["C"], r["B"], r["N"]) == (s, m, c, b, N)),
                             None)
                    if r is not None:
                        v = r["peak_mb"] if peak else r["median_ms"]
                        cells.append(f"{v:13.3g}" if v is not None else f"{'-':>13}")
                    else:
                        cells.append(f"{'skip' if (s, m, c, b, N) in skipped else '-':>13}")
                lines.append(f"{H:>4}x{W:<4} {N:>6} " + " ".join(cells))
    return "\n".join(lines)


def format_goals(result: dict) -> str:
    """The goal ratios as readable lines."""
    g = result.get("goals") or goal_ratios(result)
    na = "n/a (not measured in this run: use the full benchmark)"
    L = ["Goals (fwd+bwd medians from this run):"]
    v = g["vs_nvidia"]
    if v["baseline"] is None:
        L.append("  fast AFNO / NVIDIA AFNO2DLayer: " + na)
    else:
        for B in (1, 8):
            rs = v[f"B{B}"]
            txt = ", ".join(f"N={n}: {r:.2f}" for n, r in rs.items()) if rs else na
            L.append(f"  fast AFNO / {v['baseline']} at B={B}, C=256: {txt}")
        if v.get("note"):
            L.append(f"    ({v['note']})")
        L.append(f"    goal {v['goal']}: met={v['met']}")
    f = g["vs_fft_floor"]
    L.append("  fast AFNO / FFT floor at N=4096, B=1, C=256: "
             + (na if f["value"] is None else f"{f['value']:.2f} (channels-first floor: "
                f"{f['vs_channels_first_floor']}) goal <= 2.5: met={f['met']}"))
    e = g["growth_exponent"]
    L.append("  growth exponent over N=1024..16384, B=1, C=256: "
             + (na if e["afno_fast_C256"] is None else
                f"afno_fast {e['afno_fast_C256']} ({e['afno_fast_C256_points']} points), afno {e['afno_C256']}, "
                f"attention_h8 {e['attention_h8_C256']} ({e['attention_h8_C256_points']} points), "
                f"fft_floor {e['fft_floor_C256']}; goal <= 1.15: met={e['met']}"))
    c = g["crossover_vs_attention_h8"]
    L.append("  crossover N (afno_fast faster than 8-head attention, C=256, B=1): "
             + (f"n/a ({c.get('note')})" if c["N"] is None else
                f"{c.get('bound', '')} {c['N']} ({c.get('note')}); goal <= 128: met={c['met']}"))
    return "\n".join(L)


# --------------------------------------------------------------------------- other sub-commands
def run_nvidia(grids=((32, 32), (64, 64), (128, 128)), channels: int = 256, batches=(1, 8), repeats: int = 7,
               device=None, out=print) -> dict:
    """Fast AFNO against NVIDIA's ``AFNO2DLayer`` (when importable) and the NVIDIA-style
    stand-in, same weights, fwd+bwd, interleaved; prints output differences and ratios."""
    from .compat import load_nvidia_afno_layer, nvidia_afno2d_forward, nvidia_afno_layer_state

    device = torch.device(device) if device is not None else torch.device("cpu")
    cls = _physicsnemo_layer_cls()
    if cls is None:
        out("physicsnemo is not importable (NVIDIA's AFNO2DLayer comes with `pip install nvidia-physicsnemo`): "
            "skipping the comparison with NVIDIA's package.")
    out("Timing the NVIDIA-style stand-in afno_lite.compat.nvidia_afno2d_forward instead/as well: their einsum "
        "code path re-implemented line by line in afno_lite (not NVIDIA's package).")
    report = {"physicsnemo": cls is not None, "rows": []}
    for B in batches:
        for H, W in grids:
            torch.manual_seed(0)
            fast = FastAFNO(channels, num_blocks=8, check_finite=False).to(device)
            with torch.no_grad():  # weights large enough for ReLU and softshrink to matter
                for p in fast.parameters():
                    p.normal_(0, 0.2)
            fns = {"afno_fast": fast,
                   "nvidia_style": lambda x: nvidia_afno2d_forward(x, fast.w1, fast.b1, fast.w2, fast.b2, 8)}
            if cls is not None:
                layer = cls(hidden_size=channels, num_blocks=8, sparsity_threshold=0.01,
                            hard_thresholding_fraction=1, hidden_size_factor=1).to(device)
                layer.load_state_dict(nvidia_afno_layer_state(fast), strict=False)   # afno_lite -> NVIDIA
                back = load_nvidia_afno_layer(FastAFNO(channels, num_blocks=8).to(device), layer.state_dict())
                if any(not torch.equal(getattr(back, k), getattr(fast, k)) for k in ("w1", "b1", "w2", "b2")):
                    raise RuntimeError("weights did not survive the round trip through AFNO2DLayer")
                fns["physicsnemo"] = layer
            x = torch.randn(B, H, W, channels, device=device, requires_grad=True)
            g = torch.randn_like(x)
            with torch.no_grad():
                y = fast(x)
                diffs = {k: float((f(x) - y).abs().max()) for k, f in fns.items() if k != "afno_fast"}
            times = {k: [] for k in fns}
            for _ in range(repeats + 1):
                for k, f in fns.items():
                    for p in fast.parameters():
                        p.grad = None
                    x.grad = None
                    _sync(device)
                    t0 = time.perf_counter()
                    f(x).backward(g)
                    _sync(device)
                    times[k].append(time.perf_counter() - t0)
            med = {k: statistics.median(v[1:]) * 1e3 for k, v in times.items()}
            row = dict(B=B, H=H, W=W, C=channels, median_ms=med, max_abs_diff=diffs,
                       ratio_vs_nvidia_style=med["afno_fast"] / med["nvidia_style"])
            if "physicsnemo" in med:
                row["ratio_vs_physicsnemo"] = med["afno_fast"] / med["physicsnemo"]
            report["rows"].append(row)
            txt = ", ".join(f"{k} {v:.2f} ms" for k, v in med.items())
            rat = f"fast/nvidia-style {row['ratio_vs_nvidia_style']:.2f}"
            if "ratio_vs_physicsnemo" in row:
                rat += f", fast/physicsnemo {row['ratio_vs_physicsnemo']:.2f}"
            out(f"B={B} {H}x{W} C={channels} fwd+bwd: {txt}; {rat}; max |diff| {diffs}")
    return report


def run_widgets(n: int = 10, size: int = 64, goal_ms: float = 150.0, out=print) -> dict:
    """Median slider-to-figure latency of each explorer against ``goal_ms``."""
    from .widgets import measure_latency

    lat = measure_latency(n=n, size=size)
    for name, d in lat.items():
        ok = d["median_ms"] <= goal_ms
        out(f"{name:>14}: median {d['median_ms']:7.1f} ms, p90 {d['p90_ms']:7.1f} ms over n={d['n']} "
            f"({'meets' if ok else 'misses'} the {goal_ms:.0f} ms goal)")
    return lat


# --------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m afno_lite.bench", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("scaling", help="time every mixer against the number of tokens; JSON + PNG + table")
    size = s.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="4 grids, B=1: under a minute on 2 idle cores")
    size.add_argument("--tiny", action="store_true", help="2 grids, C=32: a few seconds (tests, chapter)")
    s.add_argument("--out", default="bench_results", help="output folder (default: ./bench_results)")
    s.add_argument("--grids", nargs="+", metavar="HxW", help="override the grids, e.g. 16x16 32x64")
    s.add_argument("--channels", nargs="+", type=int, metavar="C", help="override the channel counts")
    s.add_argument("--batches", nargs="+", type=int, metavar="B", help="override the batch sizes")
    s.add_argument("--modes", nargs="+", choices=MODES, help="fwd and/or fwd+bwd")
    s.add_argument("--series", nargs="+", choices=list(SERIES), metavar="NAME",
                   help=f"subset of series: {', '.join(SERIES)}")
    s.add_argument("--time-budget", type=float, metavar="S", help="skip series predicted slower (s per call)")
    s.add_argument("--memory-budget", type=float, metavar="MB", help="skip series predicted larger (MB)")
    s.add_argument("--threads", type=int,
                   help="torch.set_num_threads (default: torch's choice); use 1 on a machine busy with other work")
    s.add_argument("--device", default=None, help="cpu or cuda (default: cpu)")
    s.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    s.add_argument("--no-memory", action="store_true", help="skip the peak-memory call")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    n = sub.add_parser("nvidia", help="fast AFNO vs NVIDIA's AFNO2DLayer (if importable) and the NVIDIA-style code")
    n.add_argument("--repeats", type=int, default=7)
    n.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    n.add_argument("--channels", type=int, default=256)
    n.add_argument("--grids", nargs="+", default=["32x32", "64x64", "128x128"], metavar="HxW")
    n.add_argument("--threads", type=int)
    w = sub.add_parser("widgets", help="slider-to-figure latency of the explorers vs the 150 ms goal")
    w.add_argument("--n", type=int, default=10, help="slider changes per explorer")
    w.add_argument("--size", type=int, default=64)
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    cmdline = "python -m afno_lite.bench " + " ".join(sys.argv[1:] if argv is None else list(argv))
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    if args.command == "widgets":
        run_widgets(n=args.n, size=args.size)
        return 0
    if args.command == "nvidia":
        run_nvidia(grids=_grid_list(args.grids), channels=args.channels, batches=args.batches,
                   repeats=args.repeats)
        return 0
    preset = "tiny" if args.tiny else "quick" if args.quick else "full"
    result = run_scaling(preset, grids=args.grids, channels=args.channels, batches=args.batches,
                         modes=args.modes, series=args.series, device=args.device,
                         time_budget=args.time_budget, memory_budget=args.memory_budget,
                         measure_memory=not args.no_memory, progress=not args.no_progress, command=cmdline)
    paths = save_results(result, args.out, plot=not args.no_plot)
    print(format_table(result))
    if result["skipped"]:
        print("\nSkipped:")
        for s in result["skipped"]:
            print(f"  {s['mode']:>7} C={s['C']:<3} B={s['B']} {s['H']}x{s['W']:<4} {s['series']:>17}: {s['reason']}")
    print()
    print(format_goals(result))
    load = result["machine"].get("load_average_start"), result["machine"].get("load_average_end")
    print(f"\n{result['elapsed_s']:.0f} s, torch {result['torch']}, {result['threads']} threads, "
          f"load average start/end {load[0]} / {load[1]}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
