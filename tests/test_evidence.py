"""The seed rule in code (``afno_lite.evidence``): t critical values against scipy, paired
differences by seed, the verdict sentence, and clear errors for bad input."""
from __future__ import annotations

import math

import pytest
from scipy import stats

from afno_lite.evidence import (
    Difference,
    mean_std,
    paired_difference,
    t_critical,
    verdict,
)


@pytest.mark.parametrize("df", list(range(1, 61)) + [61, 70, 100, 250, 1000, 10**6])
def test_t_critical_matches_scipy(df):
    assert t_critical(df) == pytest.approx(stats.t.ppf(0.975, df), abs=1e-4)


def test_t_critical_tends_to_the_normal_limit():
    assert t_critical(10**9) == pytest.approx(stats.norm.ppf(0.975), abs=1e-8)


def test_paired_difference_matches_scipy_interval():
    a = {0: 24.51, 1: 24.72, 2: 24.54, 3: 24.60}
    b = {0: 24.37, 1: 22.93, 2: 24.49, 3: 24.10}
    d = paired_difference(a, b)
    diffs = [a[s] - b[s] for s in range(4)]
    lo, hi = stats.t.interval(0.95, len(diffs) - 1, loc=sum(diffs) / 4,
                              scale=stats.sem(diffs))
    assert d.n == 4 and d.seeds == (0, 1, 2, 3)
    assert d.mean == pytest.approx(sum(diffs) / 4)
    assert d.std == pytest.approx(stats.tstd(diffs))
    assert (d.lo, d.hi) == pytest.approx((lo, hi), abs=1e-4)


def test_pairs_only_shared_seeds_and_by_seed_not_by_position():
    d = paired_difference({2: 5.0, 0: 1.0, 7: 100.0}, {0: 0.0, 2: 3.0, 9: -100.0})
    assert d.seeds == (0, 2) and d.mean == pytest.approx(1.5)


def test_lists_are_aligned_by_seed():
    d = paired_difference([1.0, 2.0, 4.0], [0.0, 0.0, 0.0])
    assert d.mean == pytest.approx(7 / 3) and d.n == 3


def test_single_pair_has_no_interval():
    d = paired_difference({0: 24.3}, {0: 24.5})
    assert d.n == 1 and d.interval is None and not d.excludes_zero
    s = verdict(d, "ahead", "behind", " dB")
    assert s == "-0.20 dB (interval pending), 1 paired seed: not enough seeds (n < 3)"


def test_two_seeds_are_not_enough_even_with_an_interval():
    d = paired_difference([1.0, 1.1], [0.0, 0.0])
    assert d.excludes_zero
    assert verdict(d, "ahead", "behind").endswith("not enough seeds (n < 3)")


def test_verdict_words_follow_the_interval():
    ahead = paired_difference([1.0, 1.1, 0.9], [0.0, 0.0, 0.0])
    behind = paired_difference([0.0, 0.0, 0.0], [1.0, 1.1, 0.9])
    tie = paired_difference([1.0, -1.0, 0.2], [0.0, 0.0, 0.0])
    assert verdict(ahead, "better", "worse").endswith(": better")
    assert verdict(behind, "better", "worse").endswith(": worse")
    assert verdict(tie, "better", "worse").endswith(": no difference at this scale")
    assert verdict(ahead, "better", "worse", " dB") == (
        "+1.00 dB, 95 % interval [+0.75, +1.25], 3 paired seeds: better")


def test_a_verdict_never_shows_an_interval_that_rounds_to_zero():
    """A difference far below the printed precision still gets its sign's word, so its
    interval is printed with significant digits, not as [+0.000, +0.000]."""
    tiny = paired_difference([1.00003, 1.00004, 1.00002], [1.0, 1.0, 1.0])
    s = verdict(tiny, "worse", "better", "", 3)
    assert s == "+3e-05, 95 % interval [+5.2e-06, +5.5e-05], 3 paired seeds: worse"
    assert verdict(tiny, "worse", "better", "", 5).startswith("+0.00003, 95 % interval [+0.00001,")


def test_mean_std():
    ms = mean_std([1.0, 2.0, 3.0])
    assert (ms.mean, ms.std, ms.n) == (2.0, 1.0, 3)
    assert ms.format(2, " dB") == "2.00 ± 1.00 dB (3 seeds)"
    assert mean_std({5: 2.5}).std is None


@pytest.mark.parametrize(
    "a, b, match",
    [
        ({}, {0: 1.0}, "a: no values"),
        ([1.0], [], "b: no values"),
        ({0: 1.0}, {1: 1.0}, "mismatched seeds"),
        ([1.0, 2.0], [1.0], "mismatched seeds"),
        ({0: math.nan}, {0: 1.0}, "a: seed 0 is nan"),
        ([1.0, 2.0], [1.0, math.inf], "b: seed 1 is inf"),
    ],
)
def test_bad_input_names_the_argument(a, b, match):
    with pytest.raises(ValueError, match=match):
        paired_difference(a, b)


def test_bad_types_name_the_argument():
    with pytest.raises(TypeError, match="a and b"):
        paired_difference({0: 1.0}, [1.0])
    with pytest.raises(TypeError, match="a: seed 0"):
        paired_difference(["x"], [1.0])
    with pytest.raises(TypeError, match="diff"):
        verdict((0.1, -0.1, 0.3), "better", "worse")
    with pytest.raises(ValueError, match="values: no values"):
        mean_std([])
    with pytest.raises(ValueError, match="df"):
        t_critical(0)
    assert isinstance(paired_difference([1.0], [0.0]), Difference)


def test_bad_digits_name_the_argument():
    """digits=-1 failed with "Format specifier missing precision"."""
    d = paired_difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    for digits in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="digits"):
            verdict(d, "better", "worse", digits=digits)
    assert verdict(d, "better", "worse", digits=0).startswith("+2, 95 % interval")


def test_t_critical_takes_numpy_integers():
    """t_critical(np.int64(5)) said "expected an integer >= 1, got np.int64(5)"."""
    import numpy as np

    assert t_critical(np.int64(5)) == t_critical(5)
    with pytest.raises(ValueError, match="df"):
        t_critical(np.int64(0))
