"""Explorers, view half: thin ipywidgets views over :mod:`afno_lite.explore.compute`.

Explained in the chapter "Sparsity in the frequency domain", which hosts the three explorers.

A view owns the widgets (attributes, also listed in ``.sliders``), calls the compute function
on every change, keeps the result in ``.state``, updates the artists of one persistent figure
(no re-layout, fixed axis limits) and shows the figure as a PNG in an
:class:`ipywidgets.Output` (``.output``) next to an HTML readout (``.readout``).
"""
from __future__ import annotations

import base64
import io
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .. import spectral
from .._checks import (
    MixerConfigError,
    _is_int,
    check_choice,
    check_fraction,
    check_nonnegative,
    check_positive_int,
    divisors,
)
from ..timing import one_thread
from .compute import (
    NORMS,
    SOURCES,
    THRESHOLDINGS,
    compute_afno_block,
    compute_sparsity,
    compute_spectrum,
    keep_fraction_options,
    lambda_grid,
    lambda_label,
    lift_to_channels,
    load_source,
    parameter_counts,
    sparsity_curve,
)

__all__ = ["SpectrumExplorer", "SparsityExplorer", "AFNOBlockExplorer", "CONTROL_STYLE", "WIDE_SLIDER"]

#: what the sparsity explorer calls each thresholding: "hard" keeps the n largest modes
#: (best-n-term), which is not the paper's hard thresholding (mode truncation)
THRESHOLDING_LABELS = {"soft": "soft", "hard": "best-n-term"}
_DPI = 96  # 7-inch figures: 672 px, the text column; 8-pt text is ~11 px on screen
_PNG_KW = {"compress_level": 1}  # fast PNG encoding: latency matters more than bytes here
#: every control: labels are never cut ("initial" fits the description to its text)
CONTROL_STYLE = {"description_width": "initial"}
#: width of the λ and kept-fraction sliders: wide enough for fine control
WIDE_SLIDER = "480px"


def _new_figure(figsize) -> Figure:
    fig = Figure(figsize=figsize, dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _small_text(axes) -> None:
    for a in np.ravel(axes):
        a.tick_params(labelsize=8)
        a.title.set_fontsize(9)
        a.xaxis.label.set_fontsize(8)
        a.yaxis.label.set_fontsize(8)


def _encode_png(rgba: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(buf, format="png", **_PNG_KW)
    return buf.getvalue()


def _shifted(a: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(a, axes=0)


def _half_extent(H: int, Wr: int):
    lo = -(H // 2)
    return (-0.5, Wr - 0.5, lo - 0.5, lo + H - 0.5)


def _full_extent(H: int, W: int):
    """Extent of an image ``fftshift``-ed on both axes: ``k`` runs from ``-(n//2)`` to
    ``n - 1 - n//2`` on an axis of ``n`` points, even or odd."""
    (lo_w, hi_w), (lo_h, hi_h) = ((-(n // 2) - 0.5, n - n // 2 - 0.5) for n in (W, H))
    return (lo_w, hi_w, lo_h, hi_h)


class _Explorer:
    """Shared plumbing: one persistent figure, a PNG in ``.output``, an HTML ``.readout``."""

    name = "explorer"

    def __init__(self):
        import ipywidgets as w

        self._w = w
        self.output = w.Output(layout=w.Layout(min_height="120px"))
        self.readout = w.HTML()
        self.readout.add_class("afno-readout")
        self.png = b""
        self.state = None
        self._busy = False

    @property
    def sliders(self) -> dict:
        """The controls of this explorer by name (set ``.value`` to drive it)."""
        raise NotImplementedError

    def _observe(self):
        for ctl in self.sliders.values():
            ctl.observe(self._on_change, names="value")

    def _on_change(self, _change=None):
        if not self._busy:
            self.refresh()

    def refresh(self):
        """Recompute ``.state`` from the current widget values and redraw."""
        with one_thread():
            self.update()

    def _input_panel(self, n: int):
        """A 2 x 3 figure, 7 inches wide, with the input image in the top-left panel."""
        fig = self.fig = _new_figure((7.0, 5.2))
        ax = fig.subplots(2, 3)
        z = np.zeros((n, n))
        self._im = ax[0, 0].imshow(z, cmap="gray")
        ax[0, 0].set_title("input")
        return ax, z

    def _animate(self, *artists):
        """Mark artists redrawn on every change; everything else is drawn once (blitting)."""
        for a in artists:
            a.set_animated(True)
        self._dynamic = [*getattr(self, "_dynamic", []), *artists]

    def _invalidate(self):
        """Static parts (limits, curves, colour scales of static images) changed: redraw them."""
        self._background = None

    def _show(self):
        canvas = self.fig.canvas
        if getattr(self, "_background", None) is None:
            canvas.draw()  # axes, ticks, labels, static artists: once per input
            self._background = canvas.copy_from_bbox(self.fig.bbox)
        canvas.restore_region(self._background)
        for a in self._dynamic:
            a.axes.draw_artist(a)
        self.png = _encode_png(np.asarray(canvas.buffer_rgba()))
        self.output.outputs = ({
            "output_type": "display_data",
            "data": {"image/png": base64.b64encode(self.png).decode("ascii"),
                     "text/plain": f"<{self.name} figure>"},
            "metadata": {},
        },)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


class SpectrumExplorer(_Explorer):
    """Image, log-magnitude spectra (rfft half-plane and full ``fftshift`` view), radial energy
    profile; a kept-fraction slider with the :func:`~afno_lite.spectral.kept_mode_mask`
    overlaid, the reconstruction and its relative error."""

    name = "spectrum"

    def __init__(self, source: str = "grace_hopper", size: int = 64, keep_fraction: float = 0.25):
        super().__init__()
        w = self._w
        self.size = check_positive_int(size, "size")
        opts = keep_fraction_options(size, size)
        start = min(opts, key=lambda f: abs(f - check_fraction(keep_fraction)))
        self.source = w.Dropdown(options=list(SOURCES), value=check_choice(source, "source", SOURCES),
                                 description="input", style=CONTROL_STYLE)
        self.keep = w.SelectionSlider(options=[(f"{f:.3g}", f) for f in opts], value=start,
                                      description="kept fraction", continuous_update=False,
                                      style=CONTROL_STYLE, layout=w.Layout(width=WIDE_SLIDER))
        self._build_figure()
        self.widget = w.VBox([w.HBox([self.source, self.keep]), self.readout, self.output])
        self.widget.add_class("afno-spectrum-explorer")
        self._observe()
        self.refresh()

    @property
    def sliders(self) -> dict:
        return {"source": self.source, "keep_fraction": self.keep}

    def _build_figure(self):
        n, Wr = self.size, self.size // 2 + 1
        ax, z = self._input_panel(n)
        self._full = ax[0, 1].imshow(z, origin="lower", extent=_full_extent(n, n))
        ax[0, 1].set(title="log10 |FFT|, fftshift", xlabel="$k_W$", ylabel="$k_H$")
        self._half = ax[0, 2].imshow(np.zeros((n, Wr)), origin="lower", aspect="auto", extent=_half_extent(n, Wr))
        self._veil = ax[0, 2].imshow(np.zeros((n, Wr, 4)), origin="lower", aspect="auto",
                                     extent=_half_extent(n, Wr))
        ax[0, 2].set(title="rfft half-plane, kept modes", xlabel="$k_W$", ylabel="$k_H$")
        self._prof, = ax[1, 0].loglog([1, 2], [1, 1], ".-", ms=3)
        self._cut = ax[1, 0].axvline(1, color="C3", ls="--")
        ax[1, 0].set(title="radial energy", xlabel="|k|", xlim=(0.8, n))
        self._rec = ax[1, 1].imshow(z, cmap="gray")
        ax[1, 1].set_title("reconstruction")
        fr = keep_fraction_options(n, n)
        self._curve, = ax[1, 2].plot(fr, np.ones(len(fr)), ".-", ms=3)
        self._dot, = ax[1, 2].plot([1], [1], "o", color="C3")
        ax[1, 2].set(title="energy kept (mean included)", xlabel="kept fraction", xlim=(0, 1.02), ylim=(0, 1.02))
        for a in (ax[0, 0], ax[1, 1]):
            a.set_xticks([])
            a.set_yticks([])
        self._axes = ax
        _small_text(ax)
        self._animate(self._rec, self._veil, self._cut, self._dot)
        self.fig.tight_layout()
        self._loaded = None

    def _load(self, source: str):
        x = load_source(source, self.size)
        self._x = x
        s = compute_spectrum(x, 1.0)
        lo, hi = float(np.percentile(s.image, 0.5)), float(np.percentile(s.image, 99.5))
        self._im.set_data(s.image)
        self._im.set_clim(lo, hi)
        self._rec.set_clim(lo, hi)
        vmin, vmax = float(np.percentile(s.log_mag_full, 1)), float(s.log_mag_full.max())
        self._full.set_data(s.log_mag_full)
        self._full.set_clim(vmin, vmax)
        self._half.set_data(s.log_mag_half)
        self._half.set_clim(vmin, vmax)
        r, e = s.radii[1:], s.radial_energy[1:]
        self._prof.set_data(r, e)
        pos = e[e > 0]
        self._axes[1, 0].set_ylim(pos.min() / 2, pos.max() * 2)
        fr = keep_fraction_options(self.size, self.size)
        self._curve.set_ydata([spectral.energy_fraction(x, spectral.kept_mode_mask(*x.shape, f)) for f in fr])
        self._loaded = source
        self._invalidate()

    def update(self):
        if self._loaded != self.source.value:
            self._load(self.source.value)
        s = self.state = compute_spectrum(self._x, self.keep.value)
        self._rec.set_data(s.reconstruction)
        veil = np.zeros(s.mask.shape + (4,))
        veil[..., 3] = 0.7 * (~_shifted(s.mask))
        self._veil.set_data(veil)
        self._cut.set_xdata([max(s.cutoffs[0], 0.8)] * 2)
        self._dot.set_data([s.keep_fraction], [s.energy_kept])
        self.readout.value = (
            f"<b>kept modes</b> {s.kept_modes} / {s.total_modes} "
            f"(|k_H| &le; {s.cutoffs[0]}, k_W &le; {s.cutoffs[1]}) &middot; "
            f"<b>energy kept</b> (mean included) {100 * s.energy_kept:.2f} % &middot; "
            f"<b>relative error</b> {s.relative_error:.4f}")
        self._show()


class SparsityExplorer(_Explorer):
    """Drag ``λ`` and watch modes die: fraction of non-zero modes, energy kept, reconstruction
    error, the surviving-mode map and a histogram of ``max(|Re X|, |Im X|)`` with ``λ`` marked.
    Toggles: soft vs best-n-term thresholding at the same sparsity (value ``"hard"``; not the
    paper's hard thresholding, which is mode truncation); FFT norm ``ortho`` vs ``backward``."""

    name = "sparsity"

    def __init__(self, source: str = "grace_hopper", size: int = 64, lambd: float = 0.1,
                 mode: str = "soft", norm: str = "ortho"):
        super().__init__()
        w = self._w
        self.size = check_positive_int(size, "size")
        self._x = load_source(check_choice(source, "source", SOURCES), self.size)
        grid = lambda_grid(self._x)
        self.source = w.Dropdown(options=list(SOURCES), value=source, description="input", style=CONTROL_STYLE)
        # the readout shows λ itself (each option is labelled with its value), never an index
        self.lambd = w.SelectionSlider(options=self._options(grid), value=self._nearest(grid, lambd),
                                       description="λ", continuous_update=False, readout=True,
                                       style=CONTROL_STYLE, layout=w.Layout(width=WIDE_SLIDER))
        self.mode = w.ToggleButtons(options=[(THRESHOLDING_LABELS[t], t) for t in THRESHOLDINGS],
                                    value=check_choice(mode, "mode", THRESHOLDINGS),
                                    description="threshold", style=CONTROL_STYLE)
        self.norm = w.ToggleButtons(options=list(NORMS), value=check_choice(norm, "norm", NORMS),
                                    description="FFT norm", style=CONTROL_STYLE)
        for t in (self.mode, self.norm):
            t.style.button_width = "96px"
        self._build_figure(grid)
        self.widget = w.VBox([w.HBox([self.source, self.lambd]), w.HBox([self.mode, self.norm]),
                              self.readout, self.output])
        self.widget.add_class("afno-sparsity-explorer")
        self.source.observe(self._on_source, names="value")
        for ctl in (self.lambd, self.mode, self.norm):
            ctl.observe(self._on_change, names="value")
        self._loaded = None
        self.refresh()

    @property
    def sliders(self) -> dict:
        return {"source": self.source, "lambd": self.lambd, "mode": self.mode, "norm": self.norm}

    @staticmethod
    def _options(grid):
        return [(lambda_label(v), v) for v in grid]

    @staticmethod
    def _nearest(grid, lambd) -> float:
        lambd = check_nonnegative(lambd, "lambd")
        return min(grid, key=lambda v: abs(math.log10(v + 1e-12) - math.log10(lambd + 1e-12)))

    def _on_source(self, change):
        self._busy = True
        try:
            with one_thread():
                self._x = load_source(change["new"], self.size)
                grid = lambda_grid(self._x)
                old = self.lambd.value
                self.lambd.options = self._options(grid)
                self.lambd.value = self._nearest(grid, old)
                self._set_axes(grid)
        finally:
            self._busy = False
        self.refresh()

    def _build_figure(self, grid):
        n, Wr = self.size, self.size // 2 + 1
        ax, z = self._input_panel(n)
        self._surv = ax[0, 1].imshow(np.zeros((n, Wr)), cmap="Greys", vmin=0, vmax=1, origin="lower",
                                     aspect="auto", extent=_half_extent(n, Wr))
        ax[0, 1].set(title="surviving modes (black)", xlabel="$k_W$", ylabel="$k_H$")
        self._rec = ax[0, 2].imshow(z, cmap="gray")
        ax[0, 2].set_title("reconstruction")
        self._hist = ax[1, 0].stairs(np.zeros(1), np.array([1.0, 2.0]), fill=True, alpha=0.6)
        self._lam_h = ax[1, 0].axvline(1, color="C3")
        ax[1, 0].set(xscale="log", title="max(|Re X|, |Im X|)", ylabel="modes")
        self._curves = {nm: ax[1, 1].semilogx([1, 2], [1, 1], "-" if nm == "ortho" else "--", label=nm)[0]
                        for nm in NORMS}
        self._dot, = ax[1, 1].semilogx([1], [1], "o", color="C3")
        ax[1, 1].set(title="non-zero fraction vs λ", ylim=(-0.03, 1.03))
        ax[1, 1].legend(fontsize=7, loc="lower left")
        self._err = ax[1, 2].imshow(z, cmap="RdBu_r")
        ax[1, 2].set_title("error  x - y")
        for a in (ax[0, 0], ax[0, 2], ax[1, 2]):
            a.set_xticks([])
            a.set_yticks([])
        self._axes = ax
        _small_text(ax)
        self._animate(self._surv, self._rec, self._err, self._hist, self._lam_h, self._dot)
        self._set_axes(grid)
        self.fig.tight_layout()

    def _set_axes(self, grid):
        lo, hi = grid[1] / 2, grid[-1] * 1.5
        self._lo = lo
        self._axes[1, 0].set_xlim(lo, hi)
        self._axes[1, 1].set_xlim(lo, hi)
        x = self._x.double()
        for nm, line in self._curves.items():
            line.set_data([lo] + grid[1:], sparsity_curve(x, grid, nm))
        self._grid = grid
        img = x.numpy()
        a, b = float(np.percentile(img, 0.5)), float(np.percentile(img, 99.5))
        self._im.set_data(img)
        for im in (self._im, self._rec):
            im.set_clim(a, b)
        self._err.set_clim(-(b - a) / 2, (b - a) / 2)
        self._loaded = None
        self._invalidate()

    def _set_hist(self, coeff):
        edges = np.geomspace(self._lo, self._grid[-1] * 1.5, 41)
        counts, _ = np.histogram(np.clip(coeff.ravel(), edges[0], edges[-1]), bins=edges)
        self._hist.set_data(counts, edges)
        self._axes[1, 0].set_ylim(0, counts.max() * 1.1 + 1)
        self._invalidate()

    def update(self):
        s = self.state = compute_sparsity(self._x, self.lambd.value, self.mode.value, self.norm.value)
        if self._loaded != s.norm:
            self._set_hist(s.coefficients)
            self._loaded = s.norm
        lam = max(s.lambd, self._lo)
        self._lam_h.set_xdata([lam, lam])
        self._dot.set_data([lam], [s.fraction_nonzero])
        self._surv.set_data(_shifted(s.survivors).astype(float))
        self._rec.set_data(s.reconstruction)
        self._err.set_data(self._x.numpy() - s.reconstruction)
        other = THRESHOLDING_LABELS["hard" if s.mode == "soft" else "soft"]
        other_err = s.hard_error if s.mode == "soft" else s.soft_error
        self.readout.value = (
            f"<b>λ</b> = {lambda_label(s.lambd)} ({s.norm}) &middot; "
            f"<b>non-zero rfft modes</b> {s.kept_modes} / {s.total_modes} = "
            f"<span class='afno-sparsity'>{100 * s.fraction_nonzero:.1f} %</span> &middot; "
            f"<b>energy kept</b> {100 * s.energy_kept:.1f} % &middot; "
            f"<b>relative error</b> {THRESHOLDING_LABELS[s.mode]} {s.relative_error:.4f} "
            f"({other} at the same sparsity: {other_err:.4f})")
        self._show()


class AFNOBlockExplorer(_Explorer):
    """``num_blocks`` (divisors of ``C`` only) and ``hidden_factor`` of one AFNO layer: parameter
    counts against FNO and GFN, the block-diagonal weight, one channel of the layer's spectral
    branch (no residual) on the input, and the share that soft-thresholding zeroes."""

    name = "afno_blocks"

    def __init__(self, source: str = "grace_hopper", size: int = 64, dim: int = 16,
                 num_blocks: int = 4, hidden_factor: int = 1, max_hidden_factor: int = 4):
        super().__init__()
        w = self._w
        self.size = check_positive_int(size, "size")
        self.dim = check_positive_int(dim, "dim")
        self.max_hidden_factor = check_positive_int(max_hidden_factor, "max_hidden_factor")
        if isinstance(num_blocks, bool) or num_blocks not in divisors(dim):
            raise MixerConfigError(f"num_blocks must divide dim={dim}; valid values: {divisors(dim)}, "
                                   f"got {num_blocks!r}")
        hf_max = self.max_hidden_factor
        if not (_is_int(hidden_factor) and 1 <= hidden_factor <= hf_max):
            raise MixerConfigError(f"hidden_factor must be an integer in [1, {self.max_hidden_factor}], "
                                   f"got {hidden_factor!r}")
        self.source = w.Dropdown(options=list(SOURCES), value=check_choice(source, "source", SOURCES),
                                 description="input", style=CONTROL_STYLE)
        self.num_blocks = w.SelectionSlider(options=divisors(dim), value=num_blocks, description="num_blocks",
                                            continuous_update=False, style=CONTROL_STYLE)
        self.hidden_factor = w.IntSlider(value=hidden_factor, min=1, max=self.max_hidden_factor,
                                         description="hidden_factor", continuous_update=False,
                                         style=CONTROL_STYLE)
        self._build_figure()
        self.widget = w.VBox([w.HBox([self.source, self.num_blocks, self.hidden_factor]),
                              self.readout, self.output])
        self.widget.add_class("afno-block-explorer")
        self._observe()
        self.refresh()

    @property
    def sliders(self) -> dict:
        return {"source": self.source, "num_blocks": self.num_blocks, "hidden_factor": self.hidden_factor}

    def _build_figure(self):
        n, C = self.size, self.dim
        fig = self.fig = _new_figure((7.0, 5.6))
        ax = fig.subplots(2, 2).ravel()   # 2 x 2 panels: readable in a 7-inch column
        z = np.zeros((n, n))
        self._tok = ax[0].imshow(z, cmap="gray")
        ax[0].set_title("input (channel 0)")
        self._out = ax[1].imshow(z)
        ax[1].set_title("spectral branch (channel 0)")
        self._wimg = ax[2].imshow(np.zeros((C, C)), cmap="magma", aspect="auto", extent=(0, C, C, 0))
        self._h = C
        ax[2].set(title="|Re w1|, block-diagonal", xlabel="hidden unit", ylabel="channel")
        names = ["AFNO", "GFN", "FNO"]
        counts = parameter_counts(C, n, n)
        self._bars = ax[3].bar(names, [1, counts["gfn"], counts["fno"]], color=["C3", "C1", "C0"])
        top = max(counts["fno"], 4 * C * C * self.max_hidden_factor)
        ax[3].set(yscale="log", ylim=(min(10, 4 * C), top * 5), title="parameters")  # AFNO: >= 8 C
        for a in ax[:2]:
            a.set_xticks([])
            a.set_yticks([])
        self._axes = ax
        _small_text(ax)
        self._animate(self._out, self._wimg, self._bars[0])
        self.fig.tight_layout()
        self._loaded = None

    def update(self):
        if self._loaded != self.source.value:
            self._x = load_source(self.source.value, self.size)
            self._loaded = self.source.value
            self._tokens = lift_to_channels(self._x, self.dim)
            tok = self._tokens[0, ..., 0].numpy()
            self._tok.set_data(tok)
            self._tok.set_clim(float(tok.min()), float(tok.max()))
            self._invalidate()
        s = self.state = compute_afno_block(self._tokens, self.num_blocks.value, self.hidden_factor.value, self.dim)
        self._out.set_data(s.output)
        lo, hi = (float(v) for v in np.percentile(s.output, [1, 99]))
        self._out.set_clim(lo, hi if hi > lo else lo + 1)
        C, h = self.dim, self.dim * s.hidden_factor
        self._wimg.set_data(s.block_weight)
        self._wimg.set_extent((0, h, C, 0))
        self._wimg.set_clim(0, float(s.block_weight.max()) or 1.0)
        if self._h != h:
            self._h = h
            self._axes[2].set_xlim(0, h)  # new ticks: redraw the static layer once
            self._invalidate()
        self._bars[0].set_height(s.params["afno"])
        self.readout.value = (
            f"<b>C</b> = {C}, <b>k</b> = {s.num_blocks} blocks of {s.block_size} channels, hidden {h} &middot; "
            f"<b>parameters</b> AFNO {s.params['afno']:,} &middot; GFN {s.params['gfn']:,} &middot; "
            f"FNO {s.params['fno']:,} &middot; <b>output rms</b> {s.output_rms:.3f} &middot; "
            f"<b>zeroed by shrinkage</b> {100 * s.zeroed_fraction:.1f} % of the Re and Im parts, "
            f"{100 * s.zeroed_entries:.1f} % of the complex (mode, channel) entries (both parts)")
        self._show()
