"""Headless tests of the explorers in afno_lite.widgets: every control is set across its whole
range (extremes included); the views must not fail and must report exactly what the pure
compute functions return."""
from __future__ import annotations

import base64
import io
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from afno_lite import AFNO, GlobalFilter, MixerConfigError, SpectralConv2d, spectral
from afno_lite import widgets as W

SIZE = 32  # small grid: same code paths as 64x64, faster
KEEP = W.keep_fraction_options(SIZE, SIZE)
PROPS = settings(max_examples=20, deadline=None)


def _numel(m) -> int:
    return sum(p.numel() for p in m.parameters())


def _shown_png(view) -> bytes:
    (out,) = view.output.outputs
    assert out["output_type"] == "display_data"
    png = base64.b64decode(out["data"]["image/png"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return png


@pytest.fixture(scope="module")
def spectrum_view():
    return W.SpectrumExplorer(size=SIZE)


@pytest.fixture(scope="module")
def sparsity_view():
    return W.SparsityExplorer(size=SIZE)


@pytest.fixture(scope="module")
def block_view():
    return W.AFNOBlockExplorer(size=SIZE, dim=16)


# --------------------------------------------------------------------------- inputs
@pytest.mark.parametrize("source", W.SOURCES)
def test_sources_are_finite_images_of_the_requested_size(source):
    x = W.load_source(source, SIZE)
    assert x.shape == (SIZE, SIZE) and x.dtype == torch.float32
    assert torch.isfinite(x).all() and x.std() > 0


def test_feature_map_is_a_channel_of_an_afno_layer():
    img = W.load_source("grace_hopper", SIZE)
    tokens = W.lift_to_channels(img, 16)
    assert tokens.shape == (1, SIZE, SIZE, 16)
    # the channels differ: a pointwise non-linear embedding, not 16 copies
    assert torch.linalg.matrix_rank(tokens.reshape(-1, 16).double()) > 1
    f = W.feature_map(img, dim=16, num_blocks=4, channel=3)
    assert f.shape == (SIZE, SIZE) and torch.isfinite(f).all()
    torch.testing.assert_close(W.load_source("feature", SIZE), W.feature_map(img))


# --------------------------------------------------------------------------- spectrum explorer
@PROPS
@given(i=st.integers(0, len(KEEP) - 1), source=st.sampled_from(W.SOURCES))
@example(i=0, source="grace_hopper")
@example(i=len(KEEP) - 1, source="grace_hopper")
@example(i=len(KEEP) - 1, source="synthetic")
def test_spectrum_slider_reports_the_compute_function(spectrum_view, i, source):
    v = spectrum_view
    v.source.value = source
    v.keep.value = KEEP[i]
    s, ref = v.state, W.compute_spectrum(W.load_source(source, SIZE), KEEP[i])
    assert s.keep_fraction == KEEP[i]
    assert s.energy_kept == ref.energy_kept and s.relative_error == ref.relative_error
    np.testing.assert_array_equal(s.mask, spectral.kept_mode_mask(SIZE, SIZE, KEEP[i]).numpy())
    np.testing.assert_array_equal(s.reconstruction, ref.reconstruction)
    assert s.kept_modes == int(s.mask.sum()) and s.total_modes == SIZE * (SIZE // 2 + 1)
    assert s.cutoffs == spectral.kept_mode_cutoffs(SIZE, SIZE, KEEP[i])
    # Parseval: what is not kept is the error
    assert math.isclose(s.relative_error**2, 1 - s.energy_kept, abs_tol=1e-9)
    assert f"{100 * ref.energy_kept:.2f} %" in v.readout.value
    assert f"{ref.relative_error:.4f}" in v.readout.value
    assert f"{ref.kept_modes} / {ref.total_modes}" in v.readout.value
    assert _shown_png(v) == v.png
    if i == 0:  # the smallest fraction keeps |k_H| <= 1 and k_W <= 1
        assert s.cutoffs == (1, 1) and s.kept_modes == 3 * 2
    if KEEP[i] == 1.0:
        assert s.kept_modes == s.total_modes and s.energy_kept == pytest.approx(1.0, abs=1e-12)
        assert s.relative_error < 1e-12


def test_spectrum_state_matches_library_pieces():
    x = W.load_source("mri", SIZE)
    s = W.compute_spectrum(x, 0.5)
    radii, prof = spectral.radial_energy_profile(x.double())
    np.testing.assert_allclose(s.radial_energy, prof.numpy())
    assert s.radial_energy.sum() == pytest.approx(float((x.double() ** 2).sum()), rel=1e-10)
    X = torch.fft.rfft2(x.double(), norm="ortho")
    np.testing.assert_allclose(s.log_mag_half, torch.fft.fftshift(torch.log10(X.abs() + 1e-12), dim=0).numpy())
    assert s.log_mag_full.shape == (SIZE, SIZE) and s.image.shape == (SIZE, SIZE)
    # the energy curve the view plots rises to 1
    e = [W.compute_spectrum(x, f).energy_kept for f in KEEP]
    assert all(b >= a - 1e-12 for a, b in zip(e, e[1:], strict=False)) and e[-1] == pytest.approx(1.0)


# --------------------------------------------------------------------------- sparsity explorer
def _grid(source="grace_hopper"):
    return W.lambda_grid(W.load_source(source, SIZE))


GRID = _grid()


@PROPS
@given(i=st.integers(0, len(GRID) - 1), mode=st.sampled_from(W.THRESHOLDINGS), norm=st.sampled_from(W.NORMS))
@example(i=0, mode="soft", norm="ortho")
@example(i=0, mode="hard", norm="backward")
@example(i=len(GRID) - 1, mode="soft", norm="ortho")
@example(i=len(GRID) - 1, mode="hard", norm="backward")
def test_sparsity_slider_reports_the_compute_function(sparsity_view, i, mode, norm):
    v = sparsity_view
    v.source.value = "grace_hopper"
    v.lambd.value, v.mode.value, v.norm.value = GRID[i], mode, norm
    s = v.state
    x = W.load_source("grace_hopper", SIZE)
    ref = W.compute_sparsity(x, GRID[i], mode, norm)
    assert (s.lambd, s.mode, s.norm) == (GRID[i], mode, norm)
    for field in ("kept_modes", "total_modes", "fraction_nonzero", "energy_kept", "relative_error",
                  "soft_error", "hard_error"):
        assert getattr(s, field) == getattr(ref, field), field
    np.testing.assert_array_equal(s.survivors, ref.survivors)
    assert s.fraction_nonzero == s.kept_modes / s.total_modes == s.survivors.mean()
    assert f"{100 * ref.fraction_nonzero:.1f} %" in v.readout.value
    assert f"{ref.relative_error:.4f}" in v.readout.value
    assert _shown_png(v) == v.png
    # hard thresholding at the same sparsity is never worse (best n-term approximation)
    assert s.hard_error <= s.soft_error + 1e-9
    if GRID[i] == 0:  # λ = 0 changes nothing
        assert s.fraction_nonzero == 1.0 and s.relative_error < 1e-12
    if i == len(GRID) - 1:  # the last λ zeroes every mode, in either norm
        assert s.kept_modes == 0 and s.energy_kept == 0 and s.relative_error == pytest.approx(1.0)
        assert not np.any(s.reconstruction)


@pytest.mark.parametrize("norm", W.NORMS)
def test_sparsity_monotone_across_the_slider(sparsity_view, norm):
    v = sparsity_view
    v.source.value, v.mode.value, v.norm.value = "topography", "soft", norm
    rows = []
    for lam in W.lambda_grid(W.load_source("topography", SIZE)):
        v.lambd.value = lam
        rows.append((v.state.fraction_nonzero, v.state.energy_kept, v.state.relative_error))
    frac, energy, err = map(np.array, zip(*rows, strict=True))
    assert frac[0] == 1.0 and frac[-1] == 0.0
    assert np.all(np.diff(frac) <= 0) and np.all(np.diff(energy) <= 1e-12) and np.all(np.diff(err) >= -1e-12)
    assert len(set(frac)) > 5  # the slider actually sweeps through intermediate sparsities


@settings(max_examples=40, deadline=None)
@given(a=st.floats(0, 50), b=st.floats(0, 50), norm=st.sampled_from(W.NORMS))
def test_sparsity_is_monotone_in_lambda(a, b, norm):
    x = W.load_source("mri", SIZE)
    lo, hi = sorted((a, b))
    s_lo, s_hi = W.compute_sparsity(x, lo, "soft", norm), W.compute_sparsity(x, hi, "soft", norm)
    assert s_lo.kept_modes >= s_hi.kept_modes
    assert s_lo.relative_error <= s_hi.relative_error + 1e-12
    assert np.all(s_lo.survivors | ~s_hi.survivors)  # a mode that survives hi survives lo


def test_lambda_meaning_depends_on_the_fft_norm():
    x = W.load_source("grace_hopper", SIZE)
    peaks = np.unique(W.compute_sparsity(x, 0.0).coefficients)
    lam = float(np.sqrt(peaks[len(peaks) // 2] * peaks[len(peaks) // 2 + 1]))  # between two coefficients
    ortho = W.compute_sparsity(x, lam, norm="ortho")
    back = W.compute_sparsity(x, lam, norm="backward")
    assert back.kept_modes > ortho.kept_modes  # same λ, very different sparsity
    # "backward" coefficients are sqrt(H W) times larger: rescaling λ gives the same survivors
    rescaled = W.compute_sparsity(x, lam * SIZE, norm="backward")
    np.testing.assert_array_equal(rescaled.survivors, ortho.survivors)
    assert rescaled.relative_error == pytest.approx(ortho.relative_error, rel=1e-9)


def test_sparsity_source_change_rebuilds_the_lambda_range(sparsity_view):
    v = sparsity_view
    for source in W.SOURCES:
        v.source.value = source
        values = [val for _, val in v.lambd.options]
        assert values == _grid(source) and v.lambd.value in values
        v.lambd.value = values[-1]
        assert v.state.kept_modes == 0, source


# --------------------------------------------------------------------------- AFNO block explorer
@PROPS
@given(k=st.sampled_from(W.divisors(16)), f=st.integers(1, 4), source=st.sampled_from(W.SOURCES))
@example(k=1, f=1, source="grace_hopper")
@example(k=16, f=4, source="grace_hopper")
def test_block_sliders_report_real_module_counts(block_view, k, f, source):
    v = block_view
    v.source.value, v.num_blocks.value, v.hidden_factor.value = source, k, f
    s = v.state
    C, b = 16, 16 // k
    assert (s.num_blocks, s.hidden_factor, s.block_size) == (k, f, b)
    assert s.params["afno"] == _numel(AFNO(C, num_blocks=k, hidden_factor=f)) == 4 * C * b * f + 2 * C * f + 2 * C
    assert s.params["fno"] == _numel(SpectralConv2d(C, modes=(SIZE // 2, SIZE // 2)))
    assert s.params["gfn"] == _numel(GlobalFilter(C, grid=(SIZE, SIZE))) == SIZE * (SIZE // 2 + 1) * C * 2
    assert f"AFNO {s.params['afno']:,}" in v.readout.value
    # block-diagonal: zero outside the k blocks of size b x (b f), non-zero inside
    on = np.zeros((C, C * f), dtype=bool)
    for j in range(k):
        on[j * b:(j + 1) * b, j * b * f:(j + 1) * b * f] = True
    assert s.block_weight.shape == (C, C * f)
    assert not np.any(s.block_weight[~on]) and np.all(s.block_weight[on] > 0)
    ref = W.compute_afno_block(W.load_source(source, SIZE), k, f, dim=C)
    np.testing.assert_array_equal(s.output, ref.output)
    assert s.output.shape == (SIZE, SIZE) and np.isfinite(s.output).all()
    assert _shown_png(v) == v.png


def test_more_blocks_fewer_parameters():
    x = W.load_source("grace_hopper", SIZE)
    counts = [W.compute_afno_block(x, k, 1).params["afno"] for k in W.divisors(16)]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == len(counts)


# --------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("call, match", [
    (lambda x: W.compute_spectrum(x, 0.0), "keep_fraction"),
    (lambda x: W.compute_spectrum(x, 1.5), "keep_fraction"),
    (lambda x: W.compute_spectrum(x[None], 0.5), r"x must be .*\[H, W\]"),
    (lambda x: W.compute_sparsity(x, -0.1), "lambd"),
    (lambda x: W.compute_sparsity(x, float("nan")), "lambd"),
    (lambda x: W.compute_sparsity(x, 0.1, mode="medium"), "mode"),
    (lambda x: W.compute_sparsity(x, 0.1, norm="forward"), "norm"),
    (lambda x: W.compute_afno_block(x, 3), r"num_blocks must divide dim=16.*\[1, 2, 4, 8, 16\]"),
    (lambda x: W.compute_afno_block(x, 4, 0), "hidden_factor"),
    (lambda x: W.compute_afno_block(x, 4, 1, channel=16), "channel"),
    (lambda x: W.load_source("cat"), "source"),
    (lambda x: W.SparsityExplorer(size=SIZE, norm="forward"), "norm"),
    (lambda x: W.AFNOBlockExplorer(size=SIZE, num_blocks=5), "num_blocks"),
    (lambda x: W.sparsity_animation_html(x, n_frames=1), "n_frames"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(MixerConfigError, match=match):
        call(W.load_source("grace_hopper", SIZE))


def test_non_finite_input_is_rejected():
    x = W.load_source("grace_hopper", SIZE)
    x[3, 4] = float("nan")
    with pytest.raises(MixerConfigError, match="NaN"):
        W.compute_sparsity(x, 0.1)


# --------------------------------------------------------------------------- views, players, latency
def _full_redraw(view) -> np.ndarray:
    """Pixels of the view's figure drawn from scratch (no blitting)."""
    for art in view._dynamic:
        art.set_animated(False)
    view.fig.canvas.draw()
    pixels = np.asarray(view.fig.canvas.buffer_rgba())[..., :3].copy()
    for art in view._dynamic:
        art.set_animated(True)
    view._invalidate()
    return pixels


def _decode(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _differs(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(a.astype(int) - b.astype(int)).max(-1) > 30).mean())


@pytest.mark.parametrize("make, steps", [
    (lambda: W.SpectrumExplorer(size=SIZE), [("keep", KEEP[0]), ("source", "mri"), ("keep", 1.0)]),
    (lambda: W.SparsityExplorer(size=SIZE), [("lambd", 0.01), ("norm", "backward"), ("source", "topography"),
                                             ("norm", "ortho"), ("lambd", 0.1), ("mode", "hard"),
                                             ("lambd", 0.0)]),
    (lambda: W.AFNOBlockExplorer(size=SIZE), [("num_blocks", 1), ("hidden_factor", 3), ("source", "synthetic"),
                                              ("num_blocks", 16)]),
])
def test_shown_png_equals_a_full_redraw(make, steps):
    """Only the changing artists are redrawn on each change: the PNG sent must still be the
    whole, current figure (up to anti-aliasing where artists overlap the axes frame)."""
    v = make()
    previous = _decode(v.png)
    for attr, value in steps:
        getattr(v, attr).value = value
        shown = _decode(v.png)
        assert _differs(shown, _full_redraw(v)) < 0.01, (attr, value)
        assert _differs(shown, previous) > 0.01, (attr, value)  # the picture did change
        previous = shown


def test_views_expose_their_controls_and_render_as_widgets(spectrum_view, sparsity_view, block_view):
    assert set(spectrum_view.sliders) == {"source", "keep_fraction"}
    assert set(sparsity_view.sliders) == {"source", "lambd", "mode", "norm"}
    assert set(block_view.sliders) == {"source", "num_blocks", "hidden_factor"}
    for v in (spectrum_view, sparsity_view, block_view):
        assert all(getattr(c, "continuous_update", False) is False
                   for c in v.sliders.values() if hasattr(c, "continuous_update"))
        bundle = v._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
    assert [val for _, val in sparsity_view.lambd.options][0] == 0.0  # an explicit λ = 0 stop


@pytest.mark.parametrize("make, frames", [
    (lambda x: W.sparsity_animation_html(x, n_frames=4), 4),
    (lambda x: W.keep_fraction_animation_html(x, n_frames=4), 4),
])
def test_kernel_free_players(make, frames):
    html = make(W.load_source("grace_hopper", SIZE))
    assert re.search(r'<input [^>]*type="range"', html) and '<div class="animation">' in html
    assert html.count("data:image/jpeg;base64,") == frames
    assert "http://" not in html and "https://" not in html  # works offline, no CDN
    assert len(html) < 250_000   # 4 JPEG frames, drawn at up to twice the figure's dpi for sharp screens


def test_controls_are_wide_enough_and_their_labels_fit(spectrum_view, sparsity_view, block_view):
    for slider in (sparsity_view.lambd, spectrum_view.keep):
        assert int(slider.layout.width.removesuffix("px")) >= 400     # fine control over many stops
    # the λ readout is the value itself, not an index into the slider's stops
    labels = [lab for lab, _ in sparsity_view.lambd.options]
    assert all(lab == W.lambda_label(v) for lab, v in sparsity_view.lambd.options)
    assert labels[0] == "0" and any("e" in lab or "." in lab for lab in labels)
    for view in (spectrum_view, sparsity_view, block_view):
        for ctl in view.sliders.values():
            assert ctl.style.description_width == "initial", (view.name, ctl.description)


def test_block_explorer_reads_the_afno_spectrum_after_shrinkage():
    x = W.load_source("grace_hopper", SIZE)
    fracs = [W.compute_afno_block(x, 4, 1, sparsity_threshold=lam).zeroed_fraction for lam in (0.0, 0.5, 1e6)]
    assert fracs[0] < fracs[1] < fracs[2] == 1.0


# --------------------------------------------------------------------------- labels say what is computed
def test_block_readout_separates_zeroed_parts_from_zeroed_entries(block_view):
    """softshrink acts on Re and Im separately: the share of real numbers it zeroes and the share
    of complex (mode, channel) entries with both parts zero differ, and the readout gives both."""
    from afno_lite.explore.compute import _visible_afno

    x = W.load_source("grace_hopper", SIZE)
    tokens = W.lift_to_channels(x, 16)
    for lam in (0.0, 0.1, 1e6):
        s = W.compute_afno_block(x, 1, 1, sparsity_threshold=lam)
        m = _visible_afno(16, 1, 1, lam, 0, residual=False)
        with torch.no_grad():
            before = torch.view_as_real(m.spectrum(tokens).before).double()   # [..., (Re, Im)]
        dead = before.abs() <= lam                                          # S_λ(a) = 0 iff |a| <= λ
        assert s.zeroed_fraction == pytest.approx(float(dead.double().mean()), abs=1e-12)
        assert s.zeroed_entries == pytest.approx(float(dead.all(-1).double().mean()), abs=1e-12)
    mid = W.compute_afno_block(x, 1, 1, sparsity_threshold=0.1)
    assert mid.zeroed_entries < 0.7 * mid.zeroed_fraction    # the two readings are far apart
    v = block_view
    v.source.value, v.num_blocks.value, v.hidden_factor.value = "grace_hopper", 4, 1
    s = v.state
    assert f"{100 * s.zeroed_fraction:.1f} % of the Re and Im parts" in v.readout.value
    assert f"{100 * s.zeroed_entries:.1f} % of the complex (mode, channel) entries" in v.readout.value


def test_block_view_shows_the_spectral_branch_without_residual(block_view):
    v = block_view
    v.source.value, v.num_blocks.value, v.hidden_factor.value = "grace_hopper", 4, 1
    s = v.state
    # the same layer with its residual: feature_map = branch + input channel
    with_residual = W.feature_map(W.load_source("grace_hopper", SIZE), dim=16, num_blocks=4).numpy()
    np.testing.assert_allclose(s.output + s.tokens, with_residual, atol=1e-5)
    assert np.abs(s.output - with_residual).max() > 0.1
    assert v._axes[1].get_title() == "spectral branch (channel 0)"


@pytest.mark.parametrize("n", [32, 33])
def test_fftshift_panel_axes_on_even_and_odd_grids(n):
    """The fftshift-ed panel labels k from -(n//2) to n-1-n//2, the frequencies it shows."""
    v = W.SpectrumExplorer(size=n)
    k = np.fft.fftshift(np.round(np.fft.fftfreq(n) * n))
    lo, hi = k[0] - 0.5, k[-1] + 0.5
    assert tuple(v._full.get_extent()) == (lo, hi, lo, hi)
    assert tuple(v._half.get_extent())[2:] == (lo, hi)


def _capture_player(monkeypatch, make):
    """Run a player; return its figure and frame-drawing function."""
    from afno_lite.explore import players

    seen = {}
    real = players._animation_html

    def spy(fig, frames, draw, fps):
        seen.update(fig=fig, frames=frames, draw=draw)
        return real(fig, frames, draw, fps)

    monkeypatch.setattr(players, "_animation_html", spy)
    make()
    return seen


@pytest.mark.parametrize("norm", W.NORMS)
def test_sparsity_player_frames_are_stops_of_the_live_slider(monkeypatch, norm):
    """Each frame is what the live explorer shows at one of its own λ stops, labelled alike."""
    x = W.load_source("grace_hopper", SIZE)
    stops = W.SparsityExplorer(size=SIZE, norm=norm).lambd.options    # (label, λ) pairs
    seen = _capture_player(monkeypatch, lambda: W.sparsity_animation_html(x, n_frames=6, norm=norm))
    assert 2 <= seen["frames"] <= 6
    fracs = []
    for i in range(seen["frames"]):
        seen["draw"](i)
        title = seen["fig"]._suptitle.get_text()
        label = title.removeprefix("λ = ").split(":")[0]
        lam = dict(stops)[label]
        s = W.compute_sparsity(x, lam, "soft", norm)
        assert title == f"λ = {label}: {100 * s.fraction_nonzero:.1f} % of rfft modes non-zero"
        fracs.append(s.fraction_nonzero)
    assert fracs[0] == 1.0 and fracs[-1] == 0.0 and fracs[-2] > 0.0


def test_energy_readouts_say_the_mean_is_included(spectrum_view, monkeypatch):
    """The explorer's and the player's energy share count the mean (k = 0, always kept), unlike
    the chapter's mean-removed curves: the label says so."""
    x = W.load_source("grace_hopper", SIZE).double()
    v = spectrum_view
    v.source.value, v.keep.value = "grace_hopper", 0.25
    rec = v.state.reconstruction
    direct = float((torch.from_numpy(rec).double() ** 2).sum() / (x**2).sum())
    assert v.state.energy_kept == pytest.approx(direct, abs=1e-6)
    xc = x - x.mean()
    removed = spectral.energy_fraction(xc, spectral.kept_mode_mask(SIZE, SIZE, 0.25))
    assert v.state.energy_kept - removed > 0.02                # the two readings differ visibly
    assert "energy kept</b> (mean included)" in v.readout.value
    seen = _capture_player(monkeypatch, lambda: W.keep_fraction_animation_html(x.float(), n_frames=4))
    seen["draw"](0)
    assert seen["fig"]._suptitle.get_text().endswith("% of the energy (mean included)")


@pytest.mark.parametrize("make", [W.sparsity_animation_html, W.keep_fraction_animation_html])
def test_player_text_is_at_least_10_css_px(monkeypatch, make):
    """A player frame is shown ``figwidth * dpi`` CSS px wide (narrower, never wider, on a
    phone): every visible text, tick labels included, is >= 10 px at that size."""
    from matplotlib.text import Text

    seen = _capture_player(monkeypatch, lambda: make(W.load_source("grace_hopper", SIZE), n_frames=4))
    fig = seen["fig"]
    seen["draw"](0)
    fig.canvas.draw()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    assert len(texts) > 10
    small = {t.get_text(): t.get_fontsize() * fig.dpi / 72 for t in texts if t.get_fontsize() * fig.dpi / 72 < 10}
    assert not small, small


def test_player_controls_shrink_on_a_phone():
    """On a 390-px phone the frame shrinks (max-width 100 %); matplotlib's range slider is a
    fixed 374 px, wider than the text column there, unless it may shrink too."""
    html = W.keep_fraction_animation_html(W.load_source("grace_hopper", SIZE), n_frames=2)
    rules = {k.strip(): v for k, v in re.findall(r"([^{}<>]+)\{([^}]*)\}", html.split("</style>")[0])}
    slider = rules["input[type=range].anim-slider"]
    assert "width: 374px" in slider and "max-width: 100%" in slider
    assert re.search(r'<img id="_anim_img\w+" style="width: \d+px; max-width: 100%">', html)


def test_sparsity_explorer_names_best_n_term_and_rfft_modes(sparsity_view):
    """Mode "hard" keeps the n largest modes unchanged (best-n-term), not the paper's hard
    thresholding (mode truncation to the lowest modes): the control and the readout say
    best-n-term; the counts are of rfft half-plane entries (H (W//2+1) of them)."""
    v = sparsity_view
    v.source.value, v.norm.value, v.lambd.value, v.mode.value = "grace_hopper", "ortho", 0.1, "hard"
    x = W.load_source("grace_hopper", SIZE).double()
    X = torch.fft.rfft2(x, norm="ortho")
    e = (X.abs() ** 2 * spectral.rfft_multiplicity(SIZE, SIZE)).flatten()
    n = v.state.kept_modes
    tail = float(e.sort(descending=True).values[n:].sum() / e.sum())
    assert v.state.relative_error == pytest.approx(math.sqrt(tail), rel=1e-5)   # best n terms
    assert dict(v.mode.options) == {"soft": "soft", "best-n-term": "hard"}
    assert f"relative error</b> best-n-term {v.state.relative_error:.4f}" in v.readout.value
    assert "(soft at the same sparsity" in v.readout.value
    assert f"non-zero rfft modes</b> {n} / {SIZE * (SIZE // 2 + 1)}" in v.readout.value
    v.mode.value = "soft"
    assert "(best-n-term at the same sparsity" in v.readout.value


# --------------------------------------------------------------------------- regressions found by probing
def test_best_n_term_split_mirror_edge_case_is_as_the_chapter_says():
    """Documented edge case, not a bug: the n modes of largest energy are kept (a plain top-n, as the
    chapter's check cell asserts); when that splits a self-conjugate column's mode from its mirror,
    irfft2 spreads it over both: n + 1 non-zero modes pictured, error below the n-term bound."""
    x = W.load_source("mri", 16).double()
    s = W.compute_sparsity(x, 1.0, "hard")
    X = torch.fft.rfft2(x, norm="ortho")
    e = spectral.spectrum_energy(x).flatten()
    keep = torch.zeros_like(e, dtype=torch.bool)
    keep[e.topk(s.kept_modes).indices] = True
    np.testing.assert_allclose(s.reconstruction, torch.fft.irfft2(X * keep.view(X.shape), s=x.shape,
                                                                  norm="ortho").numpy(), atol=1e-12)
    Y = torch.fft.rfft2(torch.from_numpy(s.reconstruction), norm="ortho")
    assert int((Y.abs() > 1e-9).sum()) == s.kept_modes + 1
    assert s.relative_error**2 < float(e[~keep].sum() / e.sum())
    assert "Edge case" in W.SparsityState.__doc__ and "one more non-zero" in W.SparsityState.__doc__


def test_zero_image_loses_no_energy():
    """A zero image has no energy to lose: both explorers say 100 % kept, error 0, no NaN."""
    z = torch.zeros(8, 8)
    for mode in W.THRESHOLDINGS:
        s = W.compute_sparsity(z, 0.1, mode)
        assert s.energy_kept == 1.0 and s.relative_error == 0.0
    assert W.compute_spectrum(z, 0.5).energy_kept == 1.0


def test_numpy_integers_are_integers():
    """_checks' rule: Python and NumPy integers are both integers (no self-contradicting message)."""
    x, i = W.load_source("grace_hopper", 8), np.int64
    ref = W.compute_afno_block(x, 4, 2, channel=3)
    s = W.compute_afno_block(x, i(4), i(2), dim=i(16), channel=i(3))
    np.testing.assert_array_equal(s.output, ref.output)
    torch.testing.assert_close(W.feature_map(x, channel=i(3)), W.feature_map(x, channel=3))
    assert W.AFNOBlockExplorer(size=8, hidden_factor=i(2)).state.hidden_factor == 2


@pytest.mark.parametrize("seed", [1.5, True, "0"])
def test_block_seed_is_checked_for_tokens_too(seed):
    with pytest.raises(MixerConfigError, match="seed"):
        W.compute_afno_block(torch.rand(1, 4, 4, 16), seed=seed)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
def test_image_dtype_error_names_the_dtype(dtype):
    x = torch.ones(8, 8, dtype=dtype)
    for call in (lambda: W.compute_spectrum(x), lambda: W.compute_sparsity(x), lambda: W.compute_afno_block(x),
                 lambda: W.keep_fraction_animation_html(x, n_frames=2)):
        with pytest.raises(MixerConfigError, match=re.escape(str(dtype))):
            call()


def _tiny_animation(n=2):
    from matplotlib.animation import FuncAnimation
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1), dpi=50)
    line, = fig.subplots().plot([0, 1], [0, 1])
    return FuncAnimation(fig, lambda i: line.set_ydata([0, i]), frames=n)


def _first_frame_size(html):
    from PIL import Image

    b64 = re.search(r"data:image/png;base64,([^\"']+)", html).group(1).replace("\\n", "").replace("\n", "")
    return Image.open(io.BytesIO(base64.b64decode(b64))).size


def test_offline_jshtml_honours_its_arguments_on_every_call():
    """matplotlib caches to_jshtml()'s HTML on the animation: a second call must not return it."""
    from afno_lite.plotting import offline_jshtml

    anim = _tiny_animation()
    assert _first_frame_size(offline_jshtml(anim, pixel_ratio=1)) == (100, 50)
    html = offline_jshtml(anim, default_mode="loop", pixel_ratio=2)
    assert _first_frame_size(html) == (200, 100)
    assert re.search(r'value="loop" id="\w+"\s+checked>', html)
    for bad in (0, -1, float("nan"), "2"):
        with pytest.raises(MixerConfigError, match="pixel_ratio"):
            offline_jshtml(anim, pixel_ratio=bad)


def test_plot_mask_unshifted_rows_and_any_mask_tensor():
    """shift=False shows the rows in grid order: the axis says rows 0..H-1, not centred k_H;
    a float mask that requires grad is plotted (detached), as plot_spectrum does."""
    from matplotlib.figure import Figure

    from afno_lite.plotting import plot_mask

    mask = spectral.kept_mode_mask(8, 8, 0.25)
    ax = Figure().subplots()
    plot_mask(mask, ax=ax, shift=False)
    assert tuple(ax.get_images()[-1].get_extent())[2:] == (-0.5, 7.5)
    assert "row" in ax.get_ylabel()
    ax = Figure().subplots()
    plot_mask(mask.float().requires_grad_(), ax=ax)
    assert tuple(ax.get_images()[-1].get_extent())[2:] == (-4.5, 3.5)


def test_block_bars_are_inside_the_axis_for_one_channel():
    v = W.AFNOBlockExplorer(size=8, dim=1, num_blocks=1)
    lo, hi = v._axes[3].get_ylim()
    assert lo < v.state.params["afno"] < hi
