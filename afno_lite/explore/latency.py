"""Explorers, latency: slider change -> new figure for each view, timed with
:func:`afno_lite.timing.call_seconds` (``python -m afno_lite.bench widgets`` prints it against
its 150 ms goal).

The views it times are the explorers of the chapter "Sparsity in the frequency domain".
"""
from __future__ import annotations

import math
import statistics

from .._checks import check_positive_int
from ..timing import call_seconds
from .views import AFNOBlockExplorer, SparsityExplorer, SpectrumExplorer

__all__ = ["measure_latency"]


def measure_latency(n: int = 20, size: int = 64) -> dict:
    """Time slider change -> new figure (compute + artist update + canvas draw + PNG encode,
    i.e. everything the view does before the PNG is sent) for each explorer on a
    ``size x size`` input, ``n`` changes each after one warm-up change.

    Returns ``{explorer_name: {"median_ms": float, "p90_ms": float, "n": int}}`` for
    ``"spectrum"``, ``"sparsity"`` and ``"afno_blocks"``.
    """
    n = check_positive_int(n, "n")
    size = check_positive_int(size, "size")
    views = [
        (SpectrumExplorer(size=size), "keep"),
        (SparsityExplorer(size=size), "lambd"),
        (AFNOBlockExplorer(size=size), "num_blocks"),
    ]
    out = {}
    for view, attr in views:
        slider = getattr(view, attr)
        values = [v for _, v in slider.options] if isinstance(slider.options[0], tuple) else list(slider.options)
        times = []
        for i in range(n + 1):
            v = values[(i * 7 + 1) % len(values)]
            if v == slider.value:
                v = values[(values.index(v) + 1) % len(values)]
            dt = call_seconds(lambda v=v: setattr(slider, "value", v)) * 1000
            if i:  # the first change warms caches up
                times.append(dt)
        times.sort()
        out[view.name] = {
            "median_ms": statistics.median(times),
            "p90_ms": times[min(len(times) - 1, math.ceil(0.9 * len(times)) - 1)],
            "n": len(times),
        }
    return out
