"""Statistics of a scaling result: growth exponents (log-log slopes) and the ``N log N`` fit,
the crossover with attention, and the goal ratios -- each ratio computed per session (one
independent repeat of the whole run) and reported with its median and range.

Explained in chapter "Complexity and scaling" (``07_complexity_and_scaling``); the method is
described in :mod:`afno_lite.bench`.
"""
from __future__ import annotations

import functools
import math
import statistics

from ..spectral import nvidia_kept_mode_mask
from .series import SERIES

__all__ = ["fit_slope", "fit_nlogn", "slopes", "crossover", "session_times", "session_ratios", "ratio_summary",
           "best_floor_ratios", "goal_ratios", "gpu_goal_ratios", "on_cuda", "precision", "row_device",
           "NVIDIA_SERIES", "FLOOR_SERIES", "COMPILED_SERIES", "GPU_GOALS"]

#: The NVIDIA layer, in order of preference: NVIDIA's package when it was measured, else the stand-in.
NVIDIA_SERIES = ("afno_physicsnemo", "afno_nvidia_style")
#: The FFT floor in its two layouts: channels-last (as the mixers get their tokens) and channels-first.
FLOOR_SERIES = {"channels_last": "fft_floor", "channels_first": "fft_floor_cf"}
#: The compiled fast AFNO, in order of preference: torch.compile's reduce-overhead mode (inductor +
#: CUDA graphs), else the eager kernels replayed as CUDA graphs.
COMPILED_SERIES = ("afno_fast_compiled", "afno_fast_graphs")
#: The configurations of the GPU goals (fwd+bwd).
GPU_GOALS = {"channels": (256, 768), "batches": (1, 8), "precisions": ("fp32", "bf16"),
             "vs_nvidia": {"limit": 0.5, "n_min": 4096}, "plateau": {"limit_ms": 1.0, "n_max": 16384, "C": 256},
             "vs_floor_cf": {"limit": 3.0, "N": 65536}}


def precision(row: dict) -> str:
    """A row's precision; rows written before precisions existed are fp32."""
    return row.get("precision", "fp32")


def row_device(result: dict, row: dict) -> str:
    """The device a row was measured on: its own ``device``, else the result's, else ``"cpu"``."""
    return str(row.get("device") or result.get("machine", {}).get("device") or result.get("device") or "cpu")


def on_cuda(result: dict, cuda: bool = True) -> dict:
    """``result`` with only the rows measured on a CUDA device (``cuda=False``: on any other)."""
    rows = [r for r in result["results"] if row_device(result, r).startswith("cuda") == cuda]
    return dict(result, results=rows)


def _rows(result: dict, series: str, mode: str, C: int, B: int, prec: str = "fp32") -> list[dict]:
    return sorted((r for r in result["results"] if r["series"] == series and r["mode"] == mode
                   and r["C"] == C and r["B"] == B and precision(r) == prec), key=lambda r: r["N"])


def _row(result, series, mode, C, B, N, prec: str = "fp32") -> dict | None:
    return next((r for r in _rows(result, series, mode, C, B, prec) if r["N"] == N), None)


def _time(result, series, mode, C, B, N, prec: str = "fp32") -> float | None:
    r = _row(result, series, mode, C, B, N, prec)
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


def best_floor_ratios(result: dict, series: str, mode: str, C: int, B: int, N: int,
                      prec: str = "fp32") -> dict | None:
    """``series`` against the FFT floor at one configuration, per session: against each layout
    that was measured and against the faster of the two in that session (``best``);
    ``faster_layout`` names the layout that was faster, per session."""
    row = _row(result, series, mode, C, B, N, prec)
    floors = {k: _row(result, s, mode, C, B, N, prec) for k, s in FLOOR_SERIES.items()}
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


def _line(pts: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least-squares ``(intercept, slope)`` of ``y`` against ``x`` for points ``(x, y)``;
    ``None`` with fewer than two distinct ``x``."""
    if len(pts) < 2 or len({p[0] for p in pts}) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    b = sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx
    return my - b * mx, b


def fit_slope(Ns, ts) -> float | None:
    """Least-squares slope of ``log t`` against ``log N`` (the growth exponent)."""
    line = _line([(math.log(n), math.log(t)) for n, t in zip(Ns, ts, strict=True) if t and t > 0])
    return None if line is None else line[1]


def fit_nlogn(Ns, ts) -> dict | None:
    """Least-squares fit ``t = a + b * N log2 N`` (closed form) of times ``ts`` in ms.

    Returns ``a_ms`` (the fixed cost per call, ms), ``b_ns`` (ns per unit of ``N log2 N``),
    ``max_rel_residual`` (the largest ``|t - fit| / t``) and ``points``; ``None`` with fewer than
    two distinct ``N``. Unlike the log-log slope, a fixed cost does not bend this fit: ``b``
    is the cost that grows, ``a`` the part that does not."""
    pts = [(n * math.log2(n), float(t)) for n, t in zip(Ns, ts, strict=True) if t is not None and t > 0]
    line = _line(pts)
    if line is None:
        return None
    a, b = line
    res = max(abs(t - (a + b * x)) / t for x, t in pts)
    return {"a_ms": a, "b_ns": b * 1e6, "max_rel_residual": res, "points": len(pts)}


def slopes(result: dict, n_min: int = 1024, n_max: int = 16384) -> list[dict]:
    """Growth exponents per (series, mode, C, B): over ``n_min <= N <= n_max`` and over all ``N``;
    beside them the fit ``t = a + b N log2 N`` over the same large-``N`` range (``nlogn_a_ms``,
    ``nlogn_b_ns``, ``nlogn_max_rel_residual``; see :func:`fit_nlogn`)."""
    out = []
    keys = sorted({(r["series"], r["mode"], r["C"], r["B"], precision(r)) for r in result["results"]},
                  key=lambda k: (list(SERIES).index(k[0]) if k[0] in SERIES else 99, k[1:]))
    for s, mode, C, B, prec in keys:
        rows = _rows(result, s, mode, C, B, prec)
        big = [r for r in rows if n_min <= r["N"] <= n_max]
        fit = fit_nlogn([r["N"] for r in big], [r["median_ms"] for r in big]) or {}
        out.append(dict(series=s, mode=mode, C=C, B=B, precision=prec,
                        slope_all=fit_slope([r["N"] for r in rows], [r["median_ms"] for r in rows]),
                        slope_large=fit_slope([r["N"] for r in big], [r["median_ms"] for r in big]),
                        large_range=[n_min, n_max], large_points=len(big),
                        nlogn_a_ms=fit.get("a_ms"), nlogn_b_ns=fit.get("b_ns"),
                        nlogn_max_rel_residual=fit.get("max_rel_residual")))
    return out


def crossover(result: dict, fast: str = "afno_fast", slow: str = "attention_h8", mode: str = "fwd+bwd",
              C: int = 256, B: int = 1, prec: str = "fp32") -> dict:
    """Smallest ``N`` from which ``fast`` stays faster than ``slow`` (log-log interpolation
    between the two measured grids where the ratio crosses 1)."""
    a = {r["N"]: r["median_ms"] for r in _rows(result, fast, mode, C, B, prec)}
    b = {r["N"]: r["median_ms"] for r in _rows(result, slow, mode, C, B, prec)}
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


def _label(prec: str, C: int, B: int) -> str:
    return f"{prec} C={C} B={B}"


def _unstable(result, names, mode, C, B, N, prec: str = "fp32") -> list[str]:
    """``"series [label] N=..."`` for each of ``names`` whose row at this configuration is unstable."""
    return [f"{s} [{_label(prec, C, B)}] N={N}" for s in names
            if (r := _row(result, s, mode, C, B, N, prec)) is not None and r.get("unstable")]


_STAND_IN_NOTE = ("physicsnemo not importable: baseline is the NVIDIA-style stand-in "
                  "afno_lite.compat.nvidia_afno2d_forward (their einsum code path), not NVIDIA's package")


#: Why some grids do not enter the NVIDIA goals: there NVIDIA's layer is another function.
NOT_COMPARABLE = ("W//2 > H//2 (W > H, except W = H+1 for even H): NVIDIA's AFNO2DLayer keeps only the rfft "
                  "columns k_W <= H/2 there, so its block MLP "
                  "does less work than the fast AFNO's (different outputs); not a like-for-like ratio")


@functools.cache
def _nvidia_keeps_every_mode(H: int, W: int) -> bool:
    """Whether NVIDIA's layer computes every mode of an ``H x W`` grid (then it is the fast
    AFNO's function), from its own slicing (:func:`afno_lite.spectral.nvidia_kept_mode_mask`)."""
    return bool(nvidia_kept_mode_mask(H, W).all())


def _nvidia_ratios(result, nv, mode, C, B, prec, n_min) -> tuple[dict, list[str], list[int]]:
    """Fast AFNO / the NVIDIA layer ``nv`` per session at every measured ``N >= n_min`` of one
    (precision, C, B) where both compute the same function: ``({N: summary}, unstable rows,
    the N left out because NVIDIA's layer drops modes there, see :data:`NOT_COMPARABLE`)``."""
    ratios, unstable, left_out = {}, [], []
    if nv:
        for r in _rows(result, "afno_fast", mode, C, B, prec):
            other = _row(result, nv, mode, C, B, r["N"], prec)
            if r["N"] < n_min or other is None:
                continue
            if not _nvidia_keeps_every_mode(r["H"], r["W"]):
                left_out.append(r["N"])
                continue
            ratios[r["N"]] = ratio_summary(session_ratios(r, other))
            unstable += _unstable(result, ("afno_fast", nv), mode, C, B, r["N"], prec)
    return ratios, unstable, left_out


def _verdict(g: dict, per_b: dict, required: list[int], limit: float) -> None:
    """``met`` (on the median ratios: True / False / None when a required batch size was not
    measured and nothing measured failed), ``met_every_session``, ``met_where_measured`` and
    ``not_measured`` of a goal with per-batch {N: summary}."""
    _decide(g, {f"B={B}": d for B, d in per_b.items()}, [f"B={B}" for B in required], limit)


def _decide(g: dict, per: dict, required: list[str], limit: float) -> None:
    """:func:`_verdict` for any labels: ``per`` maps a label (e.g. ``"bf16 C=256 B=8"``) to
    {N: summary}; ``required`` are the labels a decided goal needs."""
    meds = [s["median"] for d in per.values() for s in d.values()]
    highs = [s["max"] for d in per.values() for s in d.values()]
    g["not_measured"] = [k for k in required if not per.get(k)]
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
      and ``B = 8``, ``C = 256``, fwd+bwd, on the grids where both compute the same function
      (NVIDIA's layer keeps every mode; the others are listed in ``excluded``, see :data:`NOT_COMPARABLE`).
    * ``vs_fft_floor``: fast AFNO / the faster FFT floor layout (per session) <= 2.0 at every
      ``N >= 4096``, ``C = 256``, fwd+bwd, ``B = 1`` (and ``B = 8`` where measured); the ratios to
      both layouts are reported too.
    * ``growth_exponent`` and ``crossover_vs_attention_h8``: information, with the thresholds of
      an earlier goal (growth exponent <= 1.15, crossover N <= 128); the growth entry also has
      the ``t = a + b N log2 N`` fit (:func:`fit_nlogn`).
    """
    goals = _cpu_goals(on_cuda(result, False))
    goals.update(gpu_goal_ratios(result))
    return goals


def _cpu_goals(result: dict) -> dict:
    mode, C = "fwd+bwd", 256
    goals = {}
    present = {r["series"] for r in result["results"]}
    nv = next((s for s in NVIDIA_SERIES if s in present), None)
    g = {"baseline": nv and SERIES[nv].label, "series": nv, "limit": 0.5, "n_min": 1024,
         "goal": "fast AFNO / NVIDIA AFNO layer <= 0.5 at every N >= 1024 with W//2 <= H//2, B=1 and B=8 (C=256, "
                 "fwd+bwd); met on the median of the per-session ratios"}
    if nv == "afno_nvidia_style":
        g["note"] = _STAND_IN_NOTE
    per_b, unstable, excluded = {}, [], {}
    for B in (1, 8):
        ratios, bad, left_out = _nvidia_ratios(result, nv, mode, C, B, "fp32", 1024)
        unstable += bad
        if left_out:
            excluded[f"B={B}"] = left_out
        per_b[B] = ratios
        g[f"B{B}"] = ratios
        g[f"B{B}_max"] = max(s["median"] for s in ratios.values()) if ratios else None
    g["unstable"] = unstable
    g["excluded"], g["excluded_why"] = excluded, NOT_COMPARABLE
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

    ge = {"goal": "information (an earlier goal): afno_fast exponent <= 1.15 over N=1024..16384 "
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
        "goal": "information (an earlier goal): afno_fast faster than 8-head attention from "
                "N <= 128 (C=256, B=1, fwd+bwd)", "informational": True}
    co["met"] = None if co["N"] is None else co["N"] <= 128
    goals["crossover_vs_attention_h8"] = co
    return goals


def gpu_goal_ratios(result: dict) -> dict:
    """The GPU goals, from the rows measured on a CUDA device only (forward + backward;
    C = 256 and 768, B = 1 and 8, fp32 and bf16 autocast; :data:`GPU_GOALS`). Without such rows
    every goal says so (``met: None``, ``evaluated: False``).

    * ``gpu_vs_nvidia``: fast AFNO (eager) / the NVIDIA layer <= 0.5 at every ``N >= 4096``, in
      every (precision, C, B); per label ``"bf16 C=256 B=8"`` a {N: per-session summary}.
    * ``gpu_plateau``: the compiled fast AFNO (:data:`COMPILED_SERIES`: reduce-overhead, else CUDA
      graphs of the eager kernels, labelled) at B = 1, C = 256, every ``N <= 16384``: median time
      <= 1 ms, in both precisions; times (ms) summarised over the sessions, beside the eager ones.
    * ``gpu_vs_floor_cf``: fast AFNO (eager) / the channels-first FFT floor <= 3 at N = 65536, in
      every (precision, C, B); the ratios to both floor layouts and the faster one are reported.
    * ``gpu_crossover_vs_attention_h8`` (information): per precision, C = 256, B = 1.
    """
    cu = on_cuda(result)
    evaluated = bool(cu["results"])
    G = GPU_GOALS
    combos = [(p, C, B) for p in G["precisions"] for C in G["channels"] for B in G["batches"]]
    present = {r["series"] for r in cu["results"]}
    return {"gpu_vs_nvidia": _gpu_vs_nvidia(cu, combos, present, evaluated),
            "gpu_plateau": _gpu_plateau(cu, present, evaluated),
            "gpu_vs_floor_cf": _gpu_vs_floor(cu, combos, evaluated),
            "gpu_crossover_vs_attention_h8": _gpu_crossover(cu, evaluated)}


def _gpu_vs_nvidia(cu: dict, combos: list, present: set, evaluated: bool) -> dict:
    mode, G = "fwd+bwd", GPU_GOALS
    nv = next((s for s in NVIDIA_SERIES if s in present), None)
    lim, n_min = G["vs_nvidia"]["limit"], G["vs_nvidia"]["n_min"]
    g = {"goal": f"GPU: fast AFNO / NVIDIA AFNO layer <= {lim} at every N >= {n_min}, fp32 and bf16 autocast, "
                 "C=256 and 768, B=1 and 8 (fwd+bwd); met on the median of the per-session ratios",
         "limit": lim, "n_min": n_min, "series": nv, "baseline": nv and SERIES[nv].label, "evaluated": evaluated}
    if nv == "afno_nvidia_style":
        g["note"] = _STAND_IN_NOTE
    per, unstable = {}, []
    for p, C, B in combos:
        per[_label(p, C, B)], bad, _ = _nvidia_ratios(cu, nv, mode, C, B, p, n_min)
        unstable += bad
    g["ratios"], g["unstable"] = per, unstable
    _decide(g, per, [_label(*c) for c in combos], lim)
    return g


def _gpu_plateau(cu: dict, present: set, evaluated: bool) -> dict:
    mode, G = "fwd+bwd", GPU_GOALS
    pl = G["plateau"]
    comp = next((s for s in COMPILED_SERIES if s in present), None)
    g = {"goal": f"GPU: compiled fast AFNO at B=1, C={pl['C']}, every N <= {pl['n_max']}: median time <= "
                 f"{pl['limit_ms']} ms per fwd+bwd call, fp32 and bf16 (the launch-bound plateau)",
         "limit_ms": pl["limit_ms"], "n_max": pl["n_max"], "series": comp,
         "label": comp and SERIES[comp].label, "evaluated": evaluated}
    if comp == "afno_fast_graphs":
        g["note"] = "torch.compile's reduce-overhead mode not measured: CUDA graphs of the eager kernels instead"
    per, eager, others, unstable = {}, {}, {}, []

    def times(series, p):
        return {r["N"]: ratio_summary(session_times(r)) for r in _rows(cu, series, mode, pl["C"], 1, p)
                if r["N"] <= pl["n_max"]}

    for p in G["precisions"]:
        lab = _label(p, pl["C"], 1)
        per[lab] = times(comp, p) if comp else {}
        for N in per[lab]:
            unstable += _unstable(cu, (comp,), mode, pl["C"], 1, N, p)
        eager[lab] = times("afno_fast", p)
        for s in COMPILED_SERIES:
            if s != comp:
                others.setdefault(s, {})[lab] = times(s, p)
    g["times_ms"], g["eager_ms"], g["other_compiled_ms"], g["unstable"] = per, eager, others, unstable
    _decide(g, per, list(per), pl["limit_ms"])
    return g


def _gpu_vs_floor(cu: dict, combos: list, evaluated: bool) -> dict:
    mode, fl = "fwd+bwd", GPU_GOALS["vs_floor_cf"]
    g = {"goal": f"GPU: fast AFNO / the channels-first FFT floor <= {fl['limit']} at N = {fl['N']}, fp32 and bf16, "
                 "C=256 and 768, B=1 and 8 (fwd+bwd); met on the median of the per-session ratios",
         "limit": fl["limit"], "N": fl["N"], "evaluated": evaluated}
    per, detail, unstable = {}, {}, []
    for p, C, B in combos:
        fr = best_floor_ratios(cu, "afno_fast", mode, C, B, fl["N"], p)
        lab = _label(p, C, B)
        per[lab] = {fl["N"]: fr["channels_first"]} if fr and fr.get("channels_first") else {}
        if fr:
            detail[lab] = fr
            unstable += _unstable(cu, ("afno_fast", *FLOOR_SERIES.values()), mode, C, B, fl["N"], p)
    g["ratios"], g["floors"], g["unstable"] = per, detail, unstable
    _decide(g, per, [_label(*c) for c in combos], fl["limit"])
    return g


def _gpu_crossover(cu: dict, evaluated: bool) -> dict:
    co = {"goal": "information: N from which fast AFNO stays faster than 8-head attention on the GPU "
                  "(C=256, B=1, fwd+bwd)", "informational": True, "evaluated": evaluated}
    for p in GPU_GOALS["precisions"]:
        c = crossover(cu, C=256, B=1, prec=p)
        co[p] = {k: v for k, v in c.items() if k != "ratios"} | {
            "ratios": {str(k): round(v, 3) for k, v in c.get("ratios", {}).items()}}
    return co
