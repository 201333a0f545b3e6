"""The benchmark's outputs: JSON in and out, the log-log plot and the plain-text tables.

Explained in chapter "Complexity and scaling" (``07_complexity_and_scaling``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..train.provenance import atomic_write
from .series import PASSES, SCHEMA, SERIES
from .stats import _rows, fit_slope, goal_ratios, on_cuda, precision

__all__ = ["save_results", "load_results", "plot_scaling", "format_table", "format_goals", "default_name"]


def _present(result: dict) -> list[str]:
    """The series measured in ``result``: those of :data:`SERIES` in their order, then others."""
    got = {r["series"] for r in result["results"]}
    return [s for s in SERIES if s in got] + sorted(got - set(SERIES))


def _label(result: dict, name: str) -> str:
    return SERIES[name].label if name in SERIES else result.get("series", {}).get(name, {}).get("label", name)


def default_name(result: dict) -> str:
    """``bench_scaling_gpu`` for a run on a CUDA device, else ``bench_scaling``."""
    return "bench_scaling_gpu" if str(result.get("device", "cpu")).startswith("cuda") else "bench_scaling"


def save_results(result: dict, out_dir, plot: bool = True, name: str | None = None) -> dict:
    """Write ``NAME.json`` (and ``NAME.png``) into ``out_dir``; returns the paths. ``name``
    defaults to :func:`default_name` (``bench_scaling``, or ``bench_scaling_gpu`` on CUDA)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or default_name(result)
    paths = {"json": out_dir / f"{name}.json"}
    atomic_write(paths["json"], lambda tmp: tmp.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n"))
    if plot:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = plot_scaling(result)
        paths["png"] = out_dir / f"{name}.png"
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
    "fft_floor_cf": ("gray", "--"), "afno_fast_compiled": ("tab:orange", "-"),
    "afno_fast_graphs": ("tab:orange", "--"),
}


def plot_scaling(result: dict, mode: str | None = None, C: int | None = None, B: int | None = None,
                 series=None, axes=None, prec: str | None = None):
    """Log-log median time per call against ``N``, one panel per (mode, C, B, precision) present
    (or the ones selected; ``prec`` is ``"fp32"`` or ``"bf16"``). Slopes are fitted over
    ``N >= 1024`` (over all ``N`` when fewer than two such points): in the legend for a single
    panel, else in a small table inside each panel (the series legend is then shared, below the
    panels). Returns the figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    rows = result["results"]
    modes = [m for m in PASSES if any(r["mode"] == m for r in rows) and (mode is None or m == mode)]
    sel = [r for r in rows if (C is None or r["C"] == C) and (B is None or r["B"] == B)
           and (prec is None or precision(r) == prec)]
    cbs = sorted({(r["C"], r["B"]) for r in sel})
    precs = sorted({precision(r) for r in sel}, key=lambda p: p != "fp32")
    several = precs != ["fp32"]
    if not modes or not cbs:
        raise ValueError("no measurements match the requested mode/C/B")
    names = [s for s in _present(result) if series is None or s in series]
    # one row of panels per (pass, precision), one column per (C, B)
    modes = [(m, p) for m in modes for p in precs]
    single = len(modes) * len(cbs) == 1
    if axes is None:
        fig, axes = plt.subplots(len(modes), len(cbs), figsize=(4.3 * len(cbs) + (1.0 if single else 0),
                                                                3.6 * len(modes) + (0 if single else 0.9)),
                                 squeeze=False, sharex=True)
    else:
        axes = np.atleast_2d(axes)
        fig = axes.flat[0].figure
    handles = {}
    for i, (m, p) in enumerate(modes):
        for j, (c, b) in enumerate(cbs):
            ax = axes[i][j]
            slope_lines = []
            for s in names:
                rs = _rows(result, s, m, c, b, p)
                if not rs:
                    continue
                Ns, ts = [r["N"] for r in rs], [r["median_ms"] for r in rs]
                big = [(n, t) for n, t in zip(Ns, ts, strict=True) if n >= 1024]
                sl = fit_slope(*zip(*big, strict=True)) if len(big) >= 2 else fit_slope(Ns, ts)
                color, ls = _STYLE.get(s, (None, "-"))
                lab = _label(result, s) + (f" (slope {sl:.2f})" if single and sl is not None else "")
                (line,) = ax.plot(Ns, ts, ls, marker="o", ms=3, color=color, label=lab)
                handles.setdefault(s, line)
                if sl is not None:
                    slope_lines.append(f"{s:<17} {sl:5.2f}")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{m}, C={c}, B={b}" + (f", {p}" if several else ""), fontsize=9)
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
        fig.legend([handles[s] for s in names if s in handles], [_label(result, s) for s in names if s in handles],
                   loc="lower center", ncol=4, fontsize=7, frameon=False)
    n_thr = result.get("threads")
    on_gpu = str(result.get("device", "")).startswith("cuda")
    where = (f"{result.get('device_name')}, CUDA {result.get('cuda')}" if on_gpu
             else f"{n_thr} thread{'' if n_thr == 1 else 's'}")
    fig.suptitle(f"token mixer cost, torch {result.get('torch')}, {where} "
                 f"(slopes fitted over N ≥ 1024 when available)", fontsize=9)
    fig.tight_layout(rect=(0, 0 if single else 0.9 / (3.6 * len(modes) + 0.9), 1, 1))
    return fig


def format_table(result: dict, peak: bool = False) -> str:
    """Plain-text table: one block per (mode, C, B), rows ``N``, columns series (median ms,
    or peak MB with ``peak=True``); ``skip`` marks skipped configurations, ``!`` after a time
    an unstable row (p90/p10 > 2 within a session even after a re-measure)."""
    rows = result["results"]
    names = _present(result)
    skips = result.get("skipped", [])
    skipped = {(s["series"], s["mode"], s["C"], s["B"], s["N"], precision(s)) for s in skips}
    several = any(precision(r) != "fp32" for r in rows + skips)
    lines = []
    for m in PASSES:
        blocks = sorted({(r["C"], r["B"], precision(r)) for r in rows if r["mode"] == m},
                        key=lambda k: (k[2] != "fp32", k))
        for c, b, p in blocks:
            grids = sorted({(r["N"], r["H"], r["W"]) for r in rows + skips
                            if r["mode"] == m and r["C"] == c and r["B"] == b and precision(r) == p})
            lines.append(f"\n{m}, C={c}, B={b}{f', {p}' if several else ''}: "
                         f"{'peak tensor MB' if peak else 'median ms per call'}")
            lines.append(f"{'grid':>9} {'N':>6} " + " ".join(f"{s[:13]:>13}" for s in names))
            for N, H, W in grids:
                cells = []
                for s in names:
                    r = next((r for r in rows if (r["series"], r["mode"], r["C"], r["B"], r["N"], precision(r))
                              == (s, m, c, b, N, p)), None)
                    if r is not None:
                        v = r["peak_mb"] if peak else r["median_ms"]
                        mark = "!" if r.get("unstable") and not peak else ""
                        cells.append(f"{f'{v:.3g}{mark}':>13}" if v is not None else f"{'-':>13}")
                    else:
                        cells.append(f"{'skip' if (s, m, c, b, N, p) in skipped else '-':>13}")
                lines.append(f"{H:>4}x{W:<4} {N:>6} " + " ".join(cells))
    return "\n".join(lines)


def _range(s: dict) -> str:
    """``median [min, max] (n=...)`` of a per-session ratio summary."""
    if s["n"] == 1:
        return f"{s['median']:.2f} (n=1)"
    return f"{s['median']:.2f} [{s['min']:.2f}, {s['max']:.2f}] (n={s['n']})"


def _bad(goal: dict, label: str, N) -> bool:
    """Whether ``goal`` lists an unstable row at configuration ``label`` (``"fp32 C=256 B=1"``), ``N``."""
    return any(u.endswith(f"[{label}] N={N}") for u in goal["unstable"])


def _met(g: dict) -> str:
    if g["met"] is None:
        if g.get("met_where_measured") is None:
            return "not measured"
        return (f"{'met' if g['met_where_measured'] else 'not met'} where measured "
                f"({', '.join(g['not_measured'])} not measured)")
    txt = "met" if g["met"] else "NOT met"
    return txt + f" (every session: {'yes' if g['met_every_session'] else 'no'})"


def _fit_quality(fit: dict) -> str:
    """How far the ``t = a + b N log2 N`` fit can be read: two points fit exactly (no residual
    to judge), and a negative fixed cost means the model does not describe the points."""
    if fit["points"] < 3:
        q = f"{fit['points']} points: an exact fit, nothing to judge it by"
    else:
        q = f"largest residual {100 * fit['max_rel_residual']:.0f} %, {fit['points']} points"
    if fit["a_ms"] < 0:
        q += "; negative fixed cost: the model does not describe these points"
    return q


def format_goals(result: dict) -> str:
    """The goals as readable lines: each ratio as ``median [min, max] (n=sessions)``, ``!`` after
    a ratio whose rows are unstable (always recomputed from the rows, so that results written by
    earlier versions print the current goals)."""
    g = goal_ratios(result)
    cuda_rows = bool(on_cuda(result)["results"])
    cpu_rows = bool(on_cuda(result, False)["results"])
    L = _format_cpu_goals(g) if cpu_rows or not cuda_rows else []
    if cuda_rows or str(result.get("preset", "")).startswith("gpu"):
        L += _format_gpu_goals(g)
    return "\n".join(L)


def _format_cpu_goals(g: dict) -> list[str]:
    na = "not measured (in this run; the full benchmark or --quick measures it)"
    L = ["Goals (fwd+bwd, C=256; per-session ratios: median [min, max] over n sessions):"]
    v = g["vs_nvidia"]
    if v["baseline"] is None:
        L.append("  fast AFNO / NVIDIA AFNO layer: " + na)
    else:
        for B in (1, 8):
            rs = v[f"B{B}"]
            lab = f"fp32 C=256 B={B}"
            txt = ", ".join(f"N={n}: {_range(r)}{'!' if _bad(v, lab, n) else ''}" for n, r in rs.items()) if rs else na
            L.append(f"  fast AFNO / {v['baseline']} at B={B}: {txt}")
        if v.get("note"):
            L.append(f"    ({v['note']})")
        if v.get("excluded"):
            left = "; ".join(f"{lab} N={', '.join(map(str, Ns))}" for lab, Ns in v["excluded"].items())
            L.append(f"    (left out: {left}. {v['excluded_why']})")
        L.append(f"    goal <= {v['limit']} at every N >= {v['n_min']} with W//2 <= H//2, B=1 and 8: {_met(v)}")
    f = g["vs_fft_floor"]
    if not f["B1"] and not f["B8"]:
        L.append("  fast AFNO / FFT floor at N >= 4096: " + na)
    for B in (1, 8):
        for N, d in f[f"B{B}"].items():
            bad = _bad(f, f"fp32 C=256 B={B}", N)
            layouts = set(d["faster_layout"])
            faster = layouts.pop().replace("_", "-") if len(layouts) == 1 else "either, by session"
            parts = [f"{k.replace('_', '-')} {_range(d[k])}" for k in ("channels_last", "channels_first") if d.get(k)]
            L.append(f"  fast AFNO / best FFT floor at N={N}, B={B}: {_range(d['best'])}{'!' if bad else ''} "
                     f"(faster floor: {faster}; vs {', vs '.join(parts)})")
    if f["B1"] or f["B8"]:
        L.append(f"    goal <= {f['limit']} x the faster floor at every N >= {f['n_min']}: {_met(f)}")
    unstable = sorted(set(v["unstable"]) | set(f["unstable"]))
    if unstable:
        L.append("  ! unstable rows (p90/p10 > 2 in a session after a re-measure): " + ", ".join(unstable))
    e = g["growth_exponent"]
    fit = e.get("afno_fast_C256_nlogn")
    L.append("  growth over N=1024..16384, B=1, C=256 (information): "
             + (na if e["afno_fast_C256"] is None else
                f"log-log exponent afno_fast {e['afno_fast_C256']} ({e['afno_fast_C256_points']} points), "
                f"afno {e['afno_C256']}, attention_h8 {e['attention_h8_C256']} "
                f"({e['attention_h8_C256_points']} points), fft_floor {e['fft_floor_C256']}"
                + (f"; afno_fast t = {fit['a_ms']:.3g} ms + {fit['b_ns']:.3g} ns x N log2 N ({_fit_quality(fit)})"
                   if fit else "")
                + f"; earlier goal exponent <= 1.15: met={e['met']}"))
    c = g["crossover_vs_attention_h8"]
    L.append("  crossover N (afno_fast faster than 8-head attention, B=1; information): "
             + (f"n/a ({c.get('note')})" if c["N"] is None else
                f"{c.get('bound', '')} {c['N']} ({c.get('note')}); earlier goal <= 128: met={c['met']}"))
    return L


def _ms(s: dict) -> str:
    """``median [min, max] ms (n=...)`` of per-session times."""
    if s["n"] == 1:
        return f"{s['median']:.3g} ms (n=1)"
    return f"{s['median']:.3g} [{s['min']:.3g}, {s['max']:.3g}] ms (n={s['n']})"


def _format_gpu_goals(g: dict) -> list[str]:
    v, pl, fl = g["gpu_vs_nvidia"], g["gpu_plateau"], g["gpu_vs_floor_cf"]
    L = ["GPU goals (fwd+bwd on CUDA; per-session values: median [min, max] over n sessions):"]
    if not v["evaluated"]:
        return L + ["  not evaluated: no rows measured on a CUDA device (run with --gpu --device cuda)"]

    for lab, rs in v["ratios"].items():
        txt = ", ".join(f"N={n}: {_range(r)}{'!' if _bad(v, lab, n) else ''}" for n, r in rs.items()) or "not measured"
        L.append(f"  fast AFNO / {v['baseline'] or 'NVIDIA layer'} [{lab}]: {txt}")
    if v.get("note"):
        L.append(f"    ({v['note']})")
    L.append(f"    goal <= {v['limit']} at every N >= {v['n_min']}: {_met(v)}")
    for lab, ts in pl["times_ms"].items():
        txt = ", ".join(f"N={n}: {_ms(t)}" for n, t in ts.items()) or "not measured"
        eager = ", ".join(f"N={n}: {_ms(t)}" for n, t in pl["eager_ms"].get(lab, {}).items()) or "not measured"
        L.append(f"  {pl['label'] or 'compiled fast AFNO'} [{lab}]: {txt}")
        L.append(f"    (eager fast AFNO: {eager})")
        for s, d in pl["other_compiled_ms"].items():
            if d.get(lab):
                L.append(f"    ({s}: " + ", ".join(f"N={n}: {_ms(t)}" for n, t in d[lab].items()) + ")")
    if pl.get("note"):
        L.append(f"    ({pl['note']})")
    L.append(f"    goal <= {pl['limit_ms']} ms at every N <= {pl['n_max']} (B=1): {_met(pl)}")
    for lab, d in fl["floors"].items():
        parts = [f"{k.replace('_', '-')} {_range(d[k])}" for k in ("channels_first", "channels_last") if d.get(k)]
        L.append(f"  fast AFNO / FFT floor at N={fl['N']} [{lab}]: vs {', vs '.join(parts)}; "
                 f"faster floor {_range(d['best'])}")
    L.append(f"    goal <= {fl['limit']} x the channels-first floor at N = {fl['N']}: {_met(fl)}")
    unstable = sorted(set(v["unstable"]) | set(pl["unstable"]) | set(fl["unstable"]))
    if unstable:
        L.append("  ! unstable rows (p90/p10 > 2 in a session after a re-measure): " + ", ".join(unstable))
    co = g["gpu_crossover_vs_attention_h8"]
    for p in ("fp32", "bf16"):
        c = co.get(p)
        if c:
            L.append(f"  crossover N vs 8-head attention [{p} C=256 B=1] (information): "
                     + (f"n/a ({c.get('note')})" if c["N"] is None else f"{c.get('bound', '')} {c['N']} "
                        f"({c.get('note')})"))
    return L
