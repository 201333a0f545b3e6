"""One way to time a call, shared by the benchmark, the explorers' latency and chapter
"Complexity and scaling".

The clock is ``torch.utils.benchmark.timer``: ``time.perf_counter`` after synchronising the
accelerator when there is one, so a CUDA kernel still running is never mistaken for a fast
call. Timings are per call (no loops of ``number`` calls): the benchmark interleaves the
series round-robin, the explorers time one slider change at a time.
"""
from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable

import torch
from torch.utils.benchmark import timer as clock

from ._checks import check_nonnegative_int, check_positive_int

__all__ = ["clock", "call_seconds", "median_seconds", "interleaved_seconds", "quantile", "one_thread"]


def call_seconds(fn: Callable[[], object]) -> float:
    """Seconds taken by one call ``fn()`` (accelerator synchronised before and after)."""
    t0 = clock()
    fn()
    return clock() - t0


def median_seconds(fn: Callable[[], object], repeats: int = 30, warmup: int = 1) -> float:
    """Median of ``repeats`` timed calls after ``warmup`` untimed ones."""
    repeats = check_positive_int(repeats, "repeats")
    for _ in range(check_nonnegative_int(warmup, "warmup")):
        fn()
    return statistics.median(call_seconds(fn) for _ in range(repeats))


def interleaved_seconds(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Time every call once per round, round-robin ``A B C ... A B C ...``, ``repeats`` rounds:
    load from other processes then hits every call alike. Returns the seconds per call."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            times[name].append(call_seconds(fn))
    return times


def quantile(sorted_values: list[float], p: float) -> float:
    """The ``p`` quantile of sorted values (nearest rank, as the benchmark reports it)."""
    return sorted_values[min(len(sorted_values) - 1, int(p * (len(sorted_values) - 1) + 0.5))]


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread: for tiny tensors a multi-threaded pool waiting for busy cores
    costs far more than the work (on a shared 2-core machine, load average 3.7, torch
    2.13.0+cpu: an 8x8, C = 32 FFT round trip took 0.03 ms on one thread, 28-48 ms on two)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
