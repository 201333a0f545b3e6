"""Frequency grids, kept-mode masks, spectrum energy and thresholding helpers."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afno_lite import SpectralConv2d
from afno_lite.spectral import (
    energy_fraction,
    fno_mode_mask,
    frequency_grid,
    hard_threshold,
    hard_threshold_to_fraction,
    kept_mode_cutoffs,
    kept_mode_mask,
    nvidia_kept_mode_mask,
    radial_energy_profile,
    rfft_multiplicity,
    soft_threshold,
    soft_threshold_magnitude,
    spectrum_energy,
)

F64 = torch.float64

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _signed_row(r: int, H: int) -> int:
    """Signed frequency of rfft row r: r for r < H/2, r - H above (Nyquist labelled -H/2)."""
    return r if r < (H + 1) // 2 else r - H


# ----------------------------------------------------------------------------- frequency grid
@pytest.mark.parametrize("H,W", [(8, 8), (9, 15), (6, 7), (1, 1)])
def test_frequency_grid_matches_definition(H, W):
    kh, kw = frequency_grid(H, W)
    assert kh.shape == (H, 1) and kw.shape == (1, W // 2 + 1)
    assert kh.flatten().tolist() == [_signed_row(r, H) for r in range(H)]
    assert kw.flatten().tolist() == list(range(W // 2 + 1))
    _, kw_full = frequency_grid(H, W, rfft=False)
    assert kw_full.flatten().tolist() == [_signed_row(c, W) for c in range(W)]


# ----------------------------------------------------------------------------- kept-mode masks
def test_kept_mode_mask_quarter_of_16x16_is_exactly_the_lowest_modes():
    mask = kept_mode_mask(16, 16, 0.25)
    assert mask.shape == (16, 9) and mask.dtype == torch.bool
    expected = {(r, c) for r in range(16) for c in range(9) if abs(_signed_row(r, 16)) <= 2 and c <= 2}
    got = {(r, c) for r, c in mask.nonzero().tolist()}
    assert got == expected
    assert int(mask.sum()) == 15                      # 5 rows (k_H = -2..2) x 3 columns (k_W = 0..2)
    assert {r for r, _ in got} == {0, 1, 2, 14, 15}   # low rows on both ends of the FFT axis
    assert kept_mode_cutoffs(16, 16, 0.25) == (2, 2)


@pytest.mark.parametrize("H,W", [(16, 16), (9, 15), (12, 7), (15, 9), (1, 1), (2, 3), (7, 32)])
def test_kept_mode_mask_full_fraction_keeps_every_mode(H, W):
    mask = kept_mode_mask(H, W, 1.0)
    assert mask.shape == (H, W // 2 + 1) and bool(mask.all())


@given(H=st.integers(1, 40), W=st.integers(1, 40), f1=st.floats(0.01, 1.0), f2=st.floats(0.01, 1.0))
@PROPS
def test_kept_mode_mask_is_monotone_symmetric_and_lowest(H, W, f1, f2):
    lo, hi = sorted((f1, f2))
    m_lo, m_hi = kept_mode_mask(H, W, lo), kept_mode_mask(H, W, hi)
    assert bool((m_lo <= m_hi).all())                  # more fraction, superset of modes
    kh, kw = frequency_grid(H, W)
    m_h, m_w = kept_mode_cutoffs(H, W, hi)
    assert 0 <= m_h <= H // 2 and 0 <= m_w <= W // 2
    # "lowest": a mode is kept iff |k_H| <= m_h and k_W <= m_w
    assert torch.equal(m_hi, (kh.abs() <= m_h) & (kw <= m_w))
    # symmetric in ±k_H: row r is kept iff row (-r mod H) is kept
    neg = [(-r) % H for r in range(H)]
    assert torch.equal(m_hi, m_hi[neg])
    assert bool(m_hi[0, 0])                            # the mean is always kept


def test_fno_mode_mask_marks_the_modes_an_fno_writes():
    torch.manual_seed(0)
    for (H, W), modes in [((12, 10), (3, 2)), ((9, 15), (4, 7)), ((8, 8), (1, 3))]:
        fno = SpectralConv2d(3, modes=modes).double()
        x = torch.randn(2, H, W, 3, dtype=F64)
        Y = torch.fft.rfft2(fno(x), dim=(1, 2), norm="ortho").abs().amax(dim=(0, 3))
        mask = fno_mode_mask(H, W, modes)
        full = (H, W) == (9, 15)                      # modes (4, 7) cover the whole 9 x 15 grid
        assert bool(mask.all()) == full
        if not full:
            assert Y[~mask].max() < 1e-12
        assert (Y[mask] > 1e-8).all()
    assert bool(fno_mode_mask(5, 6).all())


def test_nvidia_fourcastnet_mask_is_a_band_around_nyquist():
    m = nvidia_kept_mode_mask(16, 16, 0.25, variant="fourcastnet")
    # total = 16//2 + 1 = 9, kept = int(9 * 0.25) = 2: rows 7:11, columns :2
    got = {(r, c) for r, c in m.nonzero().tolist()}
    assert got == {(r, c) for r in (7, 8, 9, 10) for c in (0, 1)}
    assert bool(m[8].any())                      # the Nyquist row (k_H = -8) is kept
    assert not bool(m[0].any())                  # the mean row (k_H = 0) is not
    assert not torch.equal(m, kept_mode_mask(16, 16, 0.25))
    # at fraction 1 every mode on a square grid ...
    assert bool(nvidia_kept_mode_mask(16, 16, 1.0).all())
    assert bool(nvidia_kept_mode_mask(9, 9, 1.0).all())
    # ... but when W > H the columns >= H//2 + 1 are dropped
    wide = nvidia_kept_mode_mask(8, 16, 1.0)
    assert bool(wide[:, :5].all()) and not bool(wide[:, 5:].any())


def test_nvidia_afno_transformer_mask_slices_columns_from_the_token_count():
    # total = (H*W)//2 + 1 = 129, so even a quarter keeps int(129/4) = 32 >= 9 columns: all modes
    assert bool(nvidia_kept_mode_mask(16, 16, 0.25, variant="afno_transformer").all())
    # a tiny fraction: kept = int(129 * 0.05) = 6 columns, on every row
    m = nvidia_kept_mode_mask(16, 16, 0.05, variant="afno_transformer")
    assert bool(m[:, :6].all()) and not bool(m[:, 6:].any())


def test_rfft_multiplicity_counts_the_full_spectrum():
    for H, W in [(8, 8), (8, 9), (5, 1), (3, 2)]:
        m = rfft_multiplicity(H, W)
        assert m.shape == (H, W // 2 + 1)
        assert float(m.sum()) == H * W


# ----------------------------------------------------------------------------- energy
@pytest.mark.parametrize("shape,channels_last", [
    ((8, 10), True), ((8, 9), True), ((7, 10, 3), True), ((2, 6, 7, 4), True), ((2, 6, 8, 4), True),
    ((2, 3, 6, 7), False), ((3, 5, 8), False),
])
def test_spectrum_energy_parseval(shape, channels_last):
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=F64)
    e = spectrum_energy(x, channels_last=channels_last)
    torch.testing.assert_close(e.sum(), (x ** 2).sum(), rtol=1e-12, atol=0)
    assert (e >= 0).all()


def test_spectrum_energy_per_mode_matches_the_full_fft():
    # energy of rfft entry (k_H, k_W) = |F(k_H, k_W)|^2 + |F(-k_H, -k_W)|^2 for columns that stand
    # for two modes of the full spectrum, |F(k_H, k_W)|^2 otherwise
    torch.manual_seed(0)
    for H, W in [(6, 8), (5, 7)]:
        x = torch.randn(H, W, dtype=F64)
        full = torch.fft.fft2(x, norm="ortho").abs() ** 2
        e = spectrum_energy(x)
        for r in range(H):
            for c in range(W // 2 + 1):
                mirror = c not in (0, W / 2)
                ref = full[r, c] + (full[(-r) % H, (-c) % W] if mirror else 0)
                torch.testing.assert_close(e[r, c], ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("H,W", [(16, 16), (15, 17), (12, 9)])
def test_radial_profile_sums_to_total_and_places_a_pure_mode(H, W):
    torch.manual_seed(0)
    x = torch.randn(2, H, W, 3, dtype=F64)
    r, prof = radial_energy_profile(x)
    assert r.tolist() == list(range(len(prof)))
    torch.testing.assert_close(prof.sum(), (x ** 2).sum(), rtol=1e-12, atol=0)
    # cos(2π(3h/H + 4w/W)) lives on the ring of radius 5 only
    h = torch.arange(H, dtype=F64)[:, None]
    w = torch.arange(W, dtype=F64)[None, :]
    wave = torch.cos(2 * math.pi * (3 * h / H + 4 * w / W))
    _, p = radial_energy_profile(wave)
    assert int(p.argmax()) == 5
    torch.testing.assert_close(p[5], (wave ** 2).sum())
    torch.testing.assert_close(p.sum() - p[5], torch.zeros((), dtype=F64), rtol=0, atol=1e-10)


def test_energy_fraction_of_kept_modes():
    torch.manual_seed(0)
    x = torch.randn(1, 16, 16, 2, dtype=F64)
    assert energy_fraction(x, kept_mode_mask(16, 16, 1.0)) == pytest.approx(1.0, abs=1e-12)
    f = energy_fraction(x, kept_mode_mask(16, 16, 0.25))
    e = spectrum_energy(x)
    assert f == pytest.approx(float(e[kept_mode_mask(16, 16, 0.25)].sum() / e.sum()), rel=1e-12)
    assert 0 < f < 0.2                               # white noise: roughly the kept share of modes


# ----------------------------------------------------------------------------- thresholding
def test_soft_threshold_zeroes_exactly_the_coefficients_within_lambda():
    lam = 0.5
    re = torch.tensor([-1.25, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 2.0], dtype=F64)
    im = torch.tensor([0.5, 3.0, -0.75, 0.5, -0.5, 0.0, 0.5, -0.5], dtype=F64)
    out = soft_threshold(torch.complex(re, im), lam)
    for parts_in, part_out in [(re, out.real), (im, out.imag)]:
        small = parts_in.abs() <= lam                 # |a| <= λ, boundary included
        assert (part_out[small] == 0).all()
        assert (part_out[~small] != 0).all()
        # the others move toward zero by exactly λ, keeping their sign
        torch.testing.assert_close(part_out[~small], parts_in[~small] - lam * parts_in[~small].sign())
    # real tensors: the same rule
    expected = torch.tensor([-0.75, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25, 1.5], dtype=F64)
    assert torch.equal(soft_threshold(re, lam), expected)


def test_soft_threshold_is_separable_not_magnitude_shrinkage():
    z = torch.tensor([0.4 + 0.4j], dtype=torch.complex128)    # |z| = 0.566 > λ, each part < λ
    assert soft_threshold(z, 0.5).abs().item() == 0.0
    assert soft_threshold_magnitude(z, 0.5).abs().item() > 0.0


# Subnormal parts are excluded: for |p| ~ 5e-324 the optimality residual p/|p| itself
# is not computable (0/0 in complex division), whatever the thresholding function does.
_part = st.floats(-10, 10, allow_nan=False, allow_subnormal=False)
complex_lists = st.lists(
    st.tuples(_part, _part), min_size=1, max_size=40
)
lambdas = st.floats(0.0, 5.0, allow_nan=False)


def _z(pairs) -> torch.Tensor:
    t = torch.tensor(pairs, dtype=F64)
    return torch.complex(t[:, 0], t[:, 1])


@given(pairs=complex_lists, l1=lambdas, l2=lambdas)
@PROPS
def test_sparsity_is_monotone_in_lambda(pairs, l1, l2):
    z = _z(pairs)
    lo, hi = sorted((l1, l2))
    for f in (soft_threshold, soft_threshold_magnitude, hard_threshold):
        zero_lo = f(z, lo) == 0
        zero_hi = f(z, hi) == 0
        assert bool((zero_lo <= zero_hi).all()), f.__name__   # every zero at λ_lo stays zero at λ_hi
    sr_lo, sr_hi = soft_threshold(z.real, lo), soft_threshold(z.real, hi)
    assert bool((sr_hi.abs() <= sr_lo.abs()).all())


@given(pairs=complex_lists, lam=lambdas)
@PROPS
def test_hard_threshold_is_idempotent_and_keeps_large_entries_unchanged(pairs, lam):
    z = _z(pairs)
    h = hard_threshold(z, lam)
    assert torch.equal(hard_threshold(h, lam), h)
    big = z.abs() > lam
    assert torch.equal(h[big], z[big]) and bool((h[~big] == 0).all())


@given(pairs=complex_lists, lam=lambdas)
@PROPS
def test_soft_threshold_magnitude_is_the_prox_of_lambda_abs(pairs, lam):
    # p = argmin_u  ½|u - z|² + λ|u|  (per entry). Check the optimality conditions and that
    # no perturbation lowers the objective.
    z = _z(pairs)
    p = soft_threshold_magnitude(z, lam)
    obj = lambda u: 0.5 * (u - z).abs() ** 2 + lam * u.abs()  # noqa: E731
    g = torch.Generator().manual_seed(0)
    for scale in (1e-1, 1e-3):
        d = torch.complex(torch.randn(z.shape, generator=g, dtype=F64), torch.randn(z.shape, generator=g, dtype=F64))
        assert bool((obj(p + scale * d) >= obj(p) - 1e-12).all())
    zero = p == 0
    assert bool((z[zero].abs() <= lam + 1e-12).all())          # 0 is optimal iff |z| <= λ
    nz = ~zero
    # first-order condition for p != 0:  p - z + λ p/|p| = 0
    torch.testing.assert_close(p[nz] - z[nz] + lam * p[nz] / p[nz].abs(), torch.zeros_like(p[nz]),
                               rtol=0, atol=1e-9)
    # closed form: same phase as z, magnitude max(|z| - λ, 0)
    torch.testing.assert_close(p.abs(), (z.abs() - lam).clamp(min=0), rtol=0, atol=1e-12)


@given(pairs=complex_lists, lam=lambdas)
@PROPS
def test_soft_threshold_is_the_prox_of_separable_l1(pairs, lam):
    # AFNO's softshrink on real and imaginary parts = argmin_u ½|u - z|² + λ(|Re u| + |Im u|)
    z = _z(pairs)
    p = soft_threshold(z, lam)
    obj = lambda u: 0.5 * (u - z).abs() ** 2 + lam * (u.real.abs() + u.imag.abs())  # noqa: E731
    g = torch.Generator().manual_seed(1)
    d = torch.complex(torch.randn(z.shape, generator=g, dtype=F64), torch.randn(z.shape, generator=g, dtype=F64))
    for scale in (1e-1, 1e-3):
        assert bool((obj(p + scale * d) >= obj(p) - 1e-12).all())


@given(pairs=complex_lists, keep=st.floats(0.0, 1.0))
@PROPS
def test_hard_threshold_to_fraction_keeps_the_largest(pairs, keep):
    z = _z(pairs)
    out = hard_threshold_to_fraction(z, keep)
    n = round(keep * z.numel())
    kept = out != 0
    # topk picks n entries; those that are exactly 0 stay 0
    assert int(kept.sum()) == min(n, int((z != 0).sum()))
    assert torch.equal(out[kept], z[kept])
    if kept.any() and (~kept).any():
        assert z[kept].abs().min() >= z[~kept].abs().max()


def test_soft_threshold_magnitude_on_subnormal_coefficients():
    # the property test above leaves subnormals out; the function itself must still be exact
    z = torch.complex(torch.tensor([0.0, 5e-324], dtype=F64), torch.tensor([5e-324, 0.0], dtype=F64))
    assert torch.equal(soft_threshold_magnitude(z, 0.0), z)
    assert torch.equal(soft_threshold_magnitude(z, 1e-3), torch.zeros_like(z))
