"""Statistics of a scaling result: growth exponents (log-log slopes) and the ``N log N`` fit,
the crossover with attention, and the goal ratios -- each ratio computed per session (one
independent repeat of the whole run) and reported with its median and range.

Explained in chapter "Complexity and scaling" (``07_complexity_and_scaling``); the method is
described in :mod:`afno_lite.bench`.
"""
from __future__ import annotations

import math
import statistics

from .series import SERIES

__all__ = ["fit_slope", "fit_nlogn", "slopes", "crossover", "session_times", "session_ratios", "ratio_summary",
           "best_floor_ratios", "goal_ratios", "NVIDIA_SERIES", "FLOOR_SERIES"]

#: The NVIDIA layer, in order of preference: NVIDIA's package when it was measured, else the stand-in.
NVIDIA_SERIES = ("afno_physicsnemo", "afno_nvidia_style")
#: The FFT floor in its two layouts: channels-last (as the mixers get their tokens) and channels-first.
FLOOR_SERIES = {"channels_last": "fft_floor", "channels_first": "fft_floor_cf"}


def _rows(result: dict, series: str, mode: str, C: int, B: int) -> list[dict]:
    return sorted((r for r in result["results"] if r["series"] == series and r["mode"] == mode
                   and r["C"] == C and r["B"] == B), key=lambda r: r["N"])


def _row(result, series, mode, C, B, N) -> dict | None:
    return next((r for r in _rows(result, series, mode, C, B) if r["N"] == N), None)


def _time(result, series, mode, C, B, N) -> float | None:
    r = _row(result, series, mode, C, B, N)
    return None if r is None else r["median_ms"]


def session_times(row: dict | None) -> list[float]:
    """The per-session medians (ms) of a result row; a row written before sessions existed
    (no ``sessions_ms``) counts as one session, its ``median_ms``."""
    if row is None:
        return []
    return list(row.get("sessions_ms") or [row["median_ms"]])


def session_ratios(num: dict | None, den: dict | None) -> list[float]:
    """Time ratio ``num / den`` of two rows of one configuration, session by session (the two
    series were timed interleaved in each session). When the rows hold different numbers of
    sessions (not written by one run), the one ratio of their medians."""
    a, b = session_times(num), session_times(den)
    if not a or not b:
        return []
    if len(a) != len(b):
        return [num["median_ms"] / den["median_ms"]]
    return [x / y for x, y in zip(a, b, strict=True)]


def ratio_summary(ratios, digits: int = 3) -> dict | None:
    """``{"median", "min", "max", "n"}`` of per-session ratios (``None`` for none)."""
    ratios = list(ratios)
    if not ratios:
        return None
    return {"median": round(statistics.median(ratios), digits), "min": round(min(ratios), digits),
            "max": round(max(ratios), digits), "n": len(ratios)}


def best_floor_ratios(result: dict, series: str, mode: str, C: int, B: int, N: int) -> dict | None:
    """``series`` against the FFT floor at one configuration, per session: against each layout
    that was measured and against the faster of the two in that session (``best``);
    ``faster_layout`` names the layout that was faster, per session."""
    row = _row(result, series, mode, C, B, N)
    floors = {k: _row(result, s, mode, C, B, N) for k, s in FLOOR_SERIES.items()}
    floors = {k: r for k, r in floors.items() if r is not None}
    if row is None or not floors:
        return None
    out = {k: ratio_summary(session_ratios(row, r)) for k, r in floors.items()}
    n = {len(session_times(r)) for r in floors.values()} | {len(session_times(row))}
    if len(n) == 1:   # one run: the faster floor of each session
        per = [min(floors.items(), key=lambda kr: session_times(kr[1])[i]) for i in range(n.pop())]
        best = [session_times(row)[i] / session_times(r)[i] for i, (_, r) in enumerate(per)]
        layouts = [k for k, _ in per]
    else:             # rows of different runs: the faster median
        k, r = min(floors.items(), key=lambda kr: kr[1]["median_ms"])
        best, layouts = [row["median_ms"] / r["median_ms"]], [k]
    out["best"] = ratio_summary(best)
    out["best_sessions"] = [round(v, 3) for v in best]
    out["faster_layout"] = layouts
    return out


def fit_slope(Ns, ts) -> float | None:
    """Least-squares slope of ``log t`` against ``log N`` (the growth exponent)."""
    pts = [(math.log(n), math.log(t)) for n, t in zip(Ns, ts, strict=True) if t and t > 0]
    if len(pts) < 2 or len({p[0] for p in pts}) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def fit_nlogn(Ns, ts) -> dict | None:
    """Least-squares fit ``t = a + b * N log2 N`` (closed form) of times ``ts`` in ms.

    Returns ``a_ms`` (the fixed cost per call, ms), ``b_ns`` (ns per unit of ``N log2 N``),
    ``max_rel_residual`` (the largest ``|t - fit| / t``) and ``points``; ``None`` with fewer than
    two distinct ``N``. Unlike the log-log slope, a fixed cost does not bend this fit: ``b``
    is the cost that grows, ``a`` the part that does not."""
    pts = [(n * math.log2(n), float(t)) for n, t in zip(Ns, ts, strict=True) if t is not None and t > 0]
    if len(pts) < 2 or len({p[0] for p in pts}) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    b = sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx
    a = my - b * mx
    res = max(abs(t - (a + b * x)) / t for x, t in pts)
    return {"a_ms": a, "b_ns": b * 1e6, "max_rel_residual": res, "points": len(pts)}


def slopes(result: dict, n_min: int = 1024, n_max: int = 16384) -> list[dict]:
    """Growth exponents per (series, mode, C, B): over ``n_min <= N <= n_max`` and over all ``N``;
    beside them the fit ``t = a + b N log2 N`` over the same large-``N`` range (``nlogn_a_ms``,
    ``nlogn_b_ns``, ``nlogn_max_rel_residual``; see :func:`fit_nlogn`)."""
    out = []
    keys = sorted({(r["series"], r["mode"], r["C"], r["B"]) for r in result["results"]},
                  key=lambda k: (list(SERIES).index(k[0]) if k[0] in SERIES else 99, k[1:]))
    for s, mode, C, B in keys:
        rows = _rows(result, s, mode, C, B)
        big = [r for r in rows if n_min <= r["N"] <= n_max]
        fit = fit_nlogn([r["N"] for r in big], [r["median_ms"] for r in big]) or {}
        out.append(dict(series=s, mode=mode, C=C, B=B,
                        slope_all=fit_slope([r["N"] for r in rows], [r["median_ms"] for r in rows]),
                        slope_large=fit_slope([r["N"] for r in big], [r["median_ms"] for r in big]),
                        large_range=[n_min, n_max], large_points=len(big),
                        nlogn_a_ms=fit.get("a_ms"), nlogn_b_ns=fit.get("b_ns"),
                        nlogn_max_rel_residual=fit.get("max_rel_residual")))
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


def _unstable(result, names, mode, C, B, N) -> list[str]:
    return [f"{s} B={B} N={N}" for s in names
            if (r := _row(result, s, mode, C, B, N)) is not None and r.get("unstable")]


def _verdict(g: dict, per_b: dict, required: list[int], limit: float) -> None:
    """``met`` (on the median ratios: True / False / None when a required batch size was not
    measured and nothing measured failed), ``met_every_session``, ``met_where_measured`` and
    ``not_measured`` of a goal with per-batch {N: summary}."""
    meds = [s["median"] for d in per_b.values() for s in d.values()]
    highs = [s["max"] for d in per_b.values() for s in d.values()]
    g["not_measured"] = [f"B={B}" for B in required if not per_b.get(B)]
    g["met_where_measured"] = None if not meds else all(m <= limit for m in meds)
    if not meds:
        g["met"] = None
    elif not g["met_where_measured"]:
        g["met"] = False
    else:
        g["met"] = None if g["not_measured"] else True
    g["met_every_session"] = None if g["met"] is None else all(h <= limit for h in highs)


def goal_ratios(result: dict) -> dict:
    """The goals of the benchmark, computed from one result. Every ratio is computed per session
    and summarised as ``{"median", "min", "max", "n"}``; a goal is met on the median ratio
    (``met_every_session`` says whether every session met it). ``met`` is ``None`` where the run
    did not measure the configurations a goal needs (``not_measured`` names them).

    * ``vs_nvidia``: fast AFNO / the NVIDIA layer (physicsnemo's ``AFNO2DLayer`` when it was
      measured, else the NVIDIA-style stand-in, labelled) <= 0.5 at every ``N >= 1024``, ``B = 1``
      and ``B = 8``, ``C = 256``, fwd+bwd.
    * ``vs_fft_floor``: fast AFNO / the faster FFT floor layout (per session) <= 2.0 at every
      ``N >= 4096``, ``C = 256``, fwd+bwd, ``B = 1`` (and ``B = 8`` where measured); the ratios to
      both layouts are reported too.
    * ``growth_exponent`` and ``crossover_vs_attention_h8``: information, with the thresholds of
      an earlier issue (growth exponent <= 1.15, crossover N <= 128); the growth entry also has
      the ``t = a + b N log2 N`` fit (:func:`fit_nlogn`).
    """
    mode, C = "fwd+bwd", 256
    goals = {}
    present = {r["series"] for r in result["results"]}
    nv = next((s for s in NVIDIA_SERIES if s in present), None)
    g = {"baseline": nv and SERIES[nv].label, "series": nv, "limit": 0.5, "n_min": 1024,
         "goal": "fast AFNO / NVIDIA AFNO layer <= 0.5 at every N >= 1024, B=1 and B=8 (C=256, fwd+bwd); "
                 "met on the median of the per-session ratios"}
    if nv == "afno_nvidia_style":
        g["note"] = ("physicsnemo not importable: baseline is the NVIDIA-style stand-in "
                     "afno_lite.compat.nvidia_afno2d_forward (their einsum code path), not NVIDIA's package")
    per_b, unstable = {}, []
    for B in (1, 8):
        ratios = {}
        if nv:
            for r in _rows(result, "afno_fast", mode, C, B):
                other = _row(result, nv, mode, C, B, r["N"])
                if r["N"] >= 1024 and other is not None:
                    ratios[r["N"]] = ratio_summary(session_ratios(r, other))
                    unstable += _unstable(result, ("afno_fast", nv), mode, C, B, r["N"])
        per_b[B] = ratios
        g[f"B{B}"] = ratios
        g[f"B{B}_max"] = max(s["median"] for s in ratios.values()) if ratios else None
    g["unstable"] = unstable
    _verdict(g, per_b, [1, 8], 0.5)
    goals["vs_nvidia"] = g

    f = {"goal": "fast AFNO / the faster FFT floor layout <= 2.0 at every N >= 4096 (C=256, fwd+bwd, B=1, "
                 "and B=8 where measured); met on the median of the per-session ratios",
         "limit": 2.0, "n_min": 4096}
    per_b, unstable = {}, []
    for B in (1, 8):
        d = {}
        for r in _rows(result, "afno_fast", mode, C, B):
            if r["N"] >= 4096 and (fr := best_floor_ratios(result, "afno_fast", mode, C, B, r["N"])):
                d[r["N"]] = fr
                unstable += _unstable(result, ("afno_fast", *FLOOR_SERIES.values()), mode, C, B, r["N"])
        f[f"B{B}"] = d
        per_b[B] = {N: fr["best"] for N, fr in d.items()}
    f["unstable"] = unstable
    at = f["B1"].get(4096, {})
    # the single numbers of earlier versions, at N=4096, B=1 (medians)
    f["value"] = (at.get("best") or {}).get("median")
    f["vs_channels_first_floor"] = (at.get("channels_first") or {}).get("median")
    f["vs_channels_last_floor"] = (at.get("channels_last") or {}).get("median")
    _verdict(f, per_b, [1], 2.0)
    goals["vs_fft_floor"] = f

    ge = {"goal": "information (threshold of an earlier issue): afno_fast exponent <= 1.15 over N=1024..16384 "
                  "at B=1 (attention ~1.9)", "informational": True, "range": [1024, 16384]}
    for s in ("afno_fast", "afno", "attention_h8", "fft_floor", "fft_floor_cf"):
        for c in (256, 64):
            rows = [r for r in _rows(result, s, mode, c, 1) if 1024 <= r["N"] <= 16384]
            if s == "fft_floor_cf" and not rows:    # a series older results did not have
                continue
            Ns, ts = [r["N"] for r in rows], [r["median_ms"] for r in rows]
            sl = fit_slope(Ns, ts)
            ge[f"{s}_C{c}"] = None if sl is None else round(sl, 3)
            ge[f"{s}_C{c}_points"] = len(rows)
            fit = fit_nlogn(Ns, ts)
            ge[f"{s}_C{c}_nlogn"] = None if fit is None else {
                "a_ms": round(fit["a_ms"], 4), "b_ns": round(fit["b_ns"], 4),
                "max_rel_residual": round(fit["max_rel_residual"], 3), "points": fit["points"]}
    ge["met"] = None if ge["afno_fast_C256"] is None else ge["afno_fast_C256"] <= 1.15
    goals["growth_exponent"] = ge
    co = crossover(result)
    co = {k: v for k, v in co.items() if k != "ratios"} | {
        "ratios": {str(k): round(v, 3) for k, v in co.get("ratios", {}).items()},
        "goal": "information (threshold of an earlier issue): afno_fast faster than 8-head attention from "
                "N <= 128 (C=256, B=1, fwd+bwd)", "informational": True}
    co["met"] = None if co["N"] is None else co["N"] <= 128
    goals["crossover_vs_attention_h8"] = co
    return goals
