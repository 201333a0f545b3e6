"""How long the GPU preset of the scaling benchmark should take on one H200: a rough cost
model, printed before a run so that the preset can be sized to its device time (a guide, not a
measurement; the run's ``deadline_s`` is what bounds it).

Explained in chapter "Complexity and scaling" (``07_complexity_and_scaling``).
"""
from __future__ import annotations

import math

from .runner import _settings, _where
from .series import COMPILED, SERIES, growth

__all__ = ["estimate_seconds"]


# Rough H200 costs per fwd+bwd call at C=256, B=1, fp32, measured earlier on one H200: a fixed
# launch-bound cost (ms), the cost at N = 65,536 (ms), growing as B*C*N*log2(N), or B*C*N^g with
# g the mixer's growth (attention: 2), and the factor bf16 autocast brings.
_H200_MS = {"afno_fast": (2.2, 5.5, 0.8), "afno_nvidia_style": (2.5, 14.2, 0.8), "afno_physicsnemo": (2.5, 14.2, 0.8),
            "afno_fast_compiled": (0.4, 5.0, 0.8), "afno_fast_graphs": (0.4, 5.5, 0.8), "fft_floor": (0.3, 1.7, 1.0),
            "fft_floor_cf": (0.25, 0.85, 1.0), "attention_h8": (1.0, 789.0, 0.4)}
_COMPILE_S = {"afno_fast_compiled": 15.0, "afno_fast_graphs": 3.0}


def _h200_ms(name: str, C: int, B: int, N: int, precision: str) -> float:
    a, b, low = _H200_MS.get(name, (2.0, 10.0, 1.0))
    g = growth(name)
    size = (N / 65536) ** g if g > 1.5 else N * math.log2(N) / (65536 * 16)
    return max(a, b * B * C / 256 * size) * (low if precision == "bf16" else 1.0)


def estimate_seconds(preset: str = "gpu", **overrides) -> dict:
    """A rough estimate of the run's wall time on one H200 from a simple cost model (earlier
    H200 measurements scaled as ``B C N log N``, attention as ``B C N^2``): per configuration two
    warm-up calls (four for compiled series), the timed rounds, one memory call, in every
    session, plus compilation in the first session and 30 s of start-up. A guide for sizing
    the preset, not a measurement; ``deadline_s`` is what bounds the run."""
    cfg = _settings(preset, overrides)
    series = [s for s in (cfg["series"] or list(SERIES)) if s != "afno_physicsnemo"]
    total, compile_s, skipped = 30.0, 0.0, 0
    for prec in cfg["precisions"]:
        for C in cfg["channels"]:
            for B in cfg["batches"]:
                for hw in cfg["grids"]:
                    N = hw[0] * hw[1]
                    names = [s for s in _where(cfg, series, C, B, hw, prec)
                             if _h200_ms(s, C, B, N, prec) / 1e3 <= cfg["time_budget"]]
                    skipped += len(_where(cfg, series, C, B, hw, prec)) - len(names)
                    round_s = sum(_h200_ms(s, C, B, N, prec) for s in names) / 1e3
                    reps = min(cfg["max_repeats"], max(cfg["min_repeats"], round(cfg["target_s"] / max(round_s, 1e-9))))
                    per = round_s * (reps + 3) + sum(2 * _h200_ms(s, C, B, N, prec) / 1e3 for s in names
                                                     if s in COMPILED)
                    total += per * cfg["sessions"] * len(cfg["modes"])
                    compile_s += sum(_COMPILE_S.get(s, 0.0) for s in names)
    total += compile_s
    return {"seconds": round(total), "compile_seconds": round(compile_s), "skipped_series_configs": skipped,
            "deadline_s": cfg["deadline_s"]}
