"""Statistics of a scaling result: growth exponents (log-log slopes), the crossover with
attention, and the four goal ratios the chapter checks.

Explained in chapter "Complexity and scaling" (``07_complexity_and_scaling``).
"""
from __future__ import annotations

import math

from .series import SERIES

__all__ = ["fit_slope", "slopes", "crossover", "goal_ratios"]


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
    g = {"baseline": nv and SERIES[nv].label, "goal": "<= 0.7 at B=1, <= 0.8 at B=8 (N >= 1024, C=256, fwd+bwd)"}
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
