"""The seed rule, in code: paired differences over seeds, their 95 % interval, and the verdict.

The rule itself is written once in the book, in the section "How we measure" of the page
"The paper's claims, and where this book stands" (``book/claims.md``, label
``how-we-measure``). Every verdict sentence of chapters 8, 9, 10 and 12 and of that page is
produced here, from the shipped ``notebooks/results/*.json``:

* every setting runs at least 3 seeds (5 for headline comparisons); report mean +- std;
* compare two settings by the paired difference (same seed, two settings) with a 95 %
  Student-t interval;
* say better/worse only when the interval excludes 0, otherwise "no difference at this
  scale"; with fewer than 3 paired seeds say "not enough seeds (n < 3)".

>>> d = paired_difference({0: 24.5, 1: 24.7, 2: 24.6}, {0: 24.3, 1: 24.4, 2: 24.2})
>>> verdict(d, "ahead", "behind", " dB")
'+0.30 dB, 95 % interval [+0.05, +0.55], 3 paired seeds: ahead'

Pure Python (``math`` only), so that it imports anywhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

MIN_SEEDS = 3
HEADLINE_SEEDS = 5
_Z975 = 1.959963984540054  # the normal limit of the t quantile

# two-sided 95 % critical values of Student's t, t.ppf(0.975, df), df = 1 ... 60
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
    2.0395, 2.0369, 2.0345, 2.0322, 2.0301, 2.0281, 2.0262, 2.0244, 2.0227, 2.0211,
    2.0195, 2.0181, 2.0167, 2.0154, 2.0141, 2.0129, 2.0117, 2.0106, 2.0096, 2.0086,
    2.0076, 2.0066, 2.0057, 2.0049, 2.0040, 2.0032, 2.0025, 2.0017, 2.0010, 2.0003,
)


def t_critical(df: int) -> float:
    """Two-sided 95 % critical value of Student's t with ``df`` degrees of freedom.

    A table for df = 1 ... 60; above, the Cornish-Fisher expansion around the normal limit
    (error below 1e-4 at df = 61, tending to 0)."""
    if isinstance(df, bool) or not isinstance(df, Integral) or df < 1:
        raise ValueError(f"df: expected an integer >= 1, got {df!r}")
    df = int(df)
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def _as_by_seed(values, name: str) -> dict:
    """``values`` (dict seed -> value, or a list indexed by seed) as a checked dict."""
    if isinstance(values, dict):
        by_seed = dict(values)
    elif isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name}: expected a dict seed -> value or a list of values, "
                        f"got {type(values).__name__}")
    else:
        by_seed = dict(enumerate(values))
    if not by_seed:
        raise ValueError(f"{name}: no values (empty)")
    for seed, v in by_seed.items():
        if isinstance(v, bool) or not isinstance(v, Real):
            raise TypeError(f"{name}: seed {seed!r} has a non-numeric value {v!r}")
        if not math.isfinite(float(v)):
            raise ValueError(f"{name}: seed {seed!r} is {float(v)} (NaN or infinite)")
        by_seed[seed] = float(v)
    return by_seed


@dataclass(frozen=True)
class MeanStd:
    """Mean and sample standard deviation (ddof = 1; ``None`` for a single value)."""

    mean: float
    std: float | None
    n: int

    def format(self, digits: int = 2, unit: str = "") -> str:
        if self.std is None:
            return f"{self.mean:.{digits}f}{unit} (1 seed, no spread)"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}{unit} ({self.n} seeds)"


def mean_std(values, name: str = "values") -> MeanStd:
    """Mean and sample standard deviation of a list (or dict seed -> value) of numbers."""
    xs = list(_as_by_seed(values, name).values())
    n = len(xs)
    mean = math.fsum(xs) / n
    if n == 1:
        return MeanStd(mean, None, 1)
    return MeanStd(mean, math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)), n)


@dataclass(frozen=True)
class Difference:
    """Paired difference a - b over ``seeds``: mean, std, n and the 95 % t-interval
    (``lo``/``hi`` are ``None`` for a single pair: "interval pending")."""

    mean: float
    std: float | None
    n: int
    lo: float | None
    hi: float | None
    seeds: tuple

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.lo is None else (self.lo, self.hi)

    @property
    def excludes_zero(self) -> bool:
        return self.lo is not None and (self.lo > 0 or self.hi < 0)


def paired_difference(a, b) -> Difference:
    """Paired difference ``a - b`` over the seeds both share.

    ``a`` and ``b``: dicts seed -> value (paired on the seeds present in both), or two lists of
    equal length aligned by seed."""
    if isinstance(a, dict) != isinstance(b, dict):
        raise TypeError("a and b: pass two dicts seed -> value or two lists, not one of each")
    da, db = _as_by_seed(a, "a"), _as_by_seed(b, "b")
    if not isinstance(a, dict) and len(da) != len(db):
        raise ValueError(f"a and b: mismatched seeds, {len(da)} and {len(db)} values; "
                         "pass dicts seed -> value to pair on the shared seeds")
    seeds = tuple(sorted(set(da) & set(db), key=repr))
    if not seeds:
        raise ValueError(f"a and b: mismatched seeds, none shared "
                         f"(a: {sorted(da, key=repr)}, b: {sorted(db, key=repr)})")
    d = [da[s] - db[s] for s in seeds]
    ms = mean_std(d, "a - b")
    if ms.n == 1:
        return Difference(ms.mean, None, 1, None, None, seeds)
    half = t_critical(ms.n - 1) * ms.std / math.sqrt(ms.n)
    return Difference(ms.mean, ms.std, ms.n, ms.mean - half, ms.mean + half, seeds)


def verdict(diff: Difference, better_word: str, worse_word: str, unit: str = "",
            digits: int = 2) -> str:
    """The sentence for a paired difference: ``better_word``/``worse_word`` only when the 95 %
    interval excludes 0 (with at least 3 seeds), else "no difference at this scale"."""
    if not isinstance(diff, Difference):
        raise TypeError(f"diff: expected a Difference from paired_difference, "
                        f"got {type(diff).__name__}")
    if isinstance(digits, bool) or not isinstance(digits, Integral) or digits < 0:
        raise ValueError(f"digits: expected an integer >= 0 (decimals printed), got {digits!r}")
    f = f"+.{int(digits)}f"
    seeds = f"{diff.n} paired seed" + ("s" if diff.n != 1 else "")
    if diff.n < MIN_SEEDS:
        pending = "interval pending" if diff.lo is None else (
            f"95 % interval [{diff.lo:{f}}, {diff.hi:{f}}]")
        return (f"{diff.mean:{f}}{unit} ({pending}), {seeds}: "
                f"not enough seeds (n < {MIN_SEEDS})")
    word = "no difference at this scale"
    if diff.excludes_zero:
        word = better_word if diff.lo > 0 else worse_word
        if min(abs(diff.lo), abs(diff.hi)) < 0.5 * 10.0**-digits:
            f = "+.2g"   # a verdict never rests on an interval that reads [+0.000, +0.000]
    return (f"{diff.mean:{f}}{unit}, 95 % interval [{diff.lo:{f}}, {diff.hi:{f}}], "
            f"{seeds}: {word}")
