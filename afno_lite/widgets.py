"""Explorers: pure compute functions + thin ipywidgets views.

Explained in the chapter "Sparsity in the frequency domain", which hosts all three explorers
(spectrum / kept fraction, soft-thresholding sparsity, AFNO blocks) and the kernel-free players;
the AFNO block explorer also fits the chapter "AFNO, step by step".

Every explorer is split in two:

* a **compute function** (``compute_spectrum``, ``compute_sparsity``, ``compute_afno_block``)
  that takes plain arguments and returns a small frozen dataclass of numbers and arrays --
  this is what the tests and the chapters check;
* a **view** (``SpectrumExplorer``, ``SparsityExplorer``, ``AFNOBlockExplorer``) that owns the
  widgets (attributes, also listed in ``.sliders``), calls the compute function on every
  change, keeps the result in ``.state``, updates the artists of one persistent figure
  (no re-layout, fixed axis limits) and shows the figure as a PNG in an
  :class:`ipywidgets.Output` (``.output``) next to an HTML readout (``.readout``).

``sparsity_animation_html`` and ``keep_fraction_animation_html`` precompute a few frames and
return a ``FuncAnimation.to_jshtml()`` player: a slider that works on a static page with no
kernel. ``measure_latency`` times slider change -> new PNG for each view.
"""
from __future__ import annotations

import base64
import contextlib
import functools
import io
import math
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import data, spectral
from ._checks import MixerConfigError, check_fraction, check_nonnegative, check_positive_int
from .mixers import AFNO, GlobalFilter, SpectralConv2d
from .plotting import offline_jshtml

__all__ = [
    "SOURCES", "load_source", "lift_to_channels", "feature_map",
    "SpectrumState", "compute_spectrum", "keep_fraction_options",
    "MODES", "NORMS", "SparsityState", "compute_sparsity", "lambda_grid", "lambda_label", "sparsity_curve",
    "AFNOBlockState", "compute_afno_block", "divisors", "parameter_counts",
    "SpectrumExplorer", "SparsityExplorer", "AFNOBlockExplorer",
    "sparsity_animation_html", "keep_fraction_animation_html", "measure_latency",
]

#: inputs every explorer offers: the shipped images, a synthetic field, a feature map
SOURCES = ("grace_hopper", "mri", "topography", "synthetic", "feature")
MODES = ("soft", "hard")          # sparsity explorer: soft-thresholding, or hard at the same sparsity
NORMS = ("ortho", "backward")     # FFT normalisations the sparsity explorer compares
_DPI = 64
_PNG_KW = {"compress_level": 1}  # fast PNG encoding: latency matters more than bytes here


# --------------------------------------------------------------------------- inputs
@contextlib.contextmanager
def _one_thread():
    """Run torch on one thread: the tensors here are tiny (64x64), and a multi-threaded pool
    waiting for busy cores costs far more than the work (measured: 10 ms vs 0.8 s)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _check_choice(value, name: str, choices) -> str:
    if value not in choices:
        raise MixerConfigError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _check_image(x, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point() or x.is_complex():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise MixerConfigError(f"{name} must be a real floating-point tensor of shape [H, W], got {shape}")
    if min(x.shape) < 2:
        raise MixerConfigError(f"{name} must be at least 2x2, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise MixerConfigError(f"{name} contains NaN or Inf values")
    return x.detach().cpu().double()


def lift_to_channels(x: torch.Tensor, dim: int = 16, seed: int = 0) -> torch.Tensor:
    """Turn an image ``[H, W]`` into tokens ``[1, H, W, dim]``: channel ``c`` is
    ``gelu(w_c (x - mean x) + b_c)`` with fixed seeded ``w_c, b_c`` (a pointwise embedding,
    so every channel is a different non-linear view of the same picture)."""
    x = _check_image(x).float()
    dim = check_positive_int(dim, "dim")
    g = torch.Generator().manual_seed(seed)
    w = 3.0 * torch.randn(dim, generator=g)
    b = torch.randn(dim, generator=g)
    return F.gelu((x - x.mean())[..., None] * w + b)[None].contiguous()


def _visible_afno(dim: int, num_blocks: int, hidden_factor: int, sparsity_threshold: float,
                  seed: int, residual: bool) -> AFNO:
    """An AFNO layer whose weights are drawn with std ``1/sqrt(fan-in)`` (seeded): the library's
    ``0.02`` initialisation makes the spectral branch almost invisible next to the residual."""
    m = AFNO(dim, num_blocks=num_blocks, hidden_factor=hidden_factor,
             sparsity_threshold=sparsity_threshold, residual=residual, check_finite=False)
    g = torch.Generator().manual_seed(seed)
    b, h = m.block_size, m.block_size * m.hidden_factor
    with torch.no_grad():
        m.w1.copy_(torch.randn(m.w1.shape, generator=g) / math.sqrt(b))
        m.w2.copy_(torch.randn(m.w2.shape, generator=g) / math.sqrt(h))
        m.b1.copy_(0.02 * torch.randn(m.b1.shape, generator=g))
        m.b2.copy_(0.02 * torch.randn(m.b2.shape, generator=g))
    return m


def feature_map(x: torch.Tensor, dim: int = 16, num_blocks: int = 4, channel: int = 0,
                seed: int = 0) -> torch.Tensor:
    """An intermediate feature: channel ``channel`` of one AFNO layer (with residual)
    applied to :func:`lift_to_channels` of the image ``x``. Returns ``[H, W]``."""
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < dim:
        raise MixerConfigError(f"channel must be an integer in [0, {dim}), got {channel!r}")
    tokens = lift_to_channels(x, dim, seed)
    with torch.no_grad():
        y = _visible_afno(dim, num_blocks, 1, 0.01, seed, residual=True)(tokens)
    return y[0, ..., channel]


@functools.lru_cache(maxsize=16)
def _cached_source(source: str, size: int) -> torch.Tensor:
    if source == "synthetic":
        return data.synthetic_field(size, size, slope=3.0, seed=0)
    if source == "feature":
        return feature_map(data.load_image("grace_hopper", size))
    return data.load_image(source, size)


def load_source(source: str = "grace_hopper", size: int = 64) -> torch.Tensor:
    """The ``[size, size]`` float32 input named ``source`` (one of :data:`SOURCES`):
    a shipped image, a synthetic ``|k|^-3`` field, or ``"feature"`` (:func:`feature_map`
    of the Grace Hopper photograph)."""
    _check_choice(source, "source", SOURCES)
    size = check_positive_int(size, "size")
    if size < 4:
        raise MixerConfigError(f"size must be at least 4, got {size}")
    return _cached_source(source, size).clone()


# --------------------------------------------------------------------------- spectrum
@dataclass(frozen=True)
class SpectrumState:
    """What the spectrum explorer shows for one input and one kept fraction."""

    keep_fraction: float
    image: np.ndarray            # [H, W]
    log_mag_half: np.ndarray     # [H, W//2+1] log10 |rfft2|, rows fftshifted (k_H centred)
    log_mag_full: np.ndarray     # [H, W] log10 |fft2|, fftshifted on both axes
    radii: np.ndarray            # ring radii |k|
    radial_energy: np.ndarray    # energy per ring (sums to ||x||^2)
    mask: np.ndarray             # [H, W//2+1] bool, kept_mode_mask (rows NOT shifted)
    cutoffs: tuple[int, int]     # (m_h, m_w)
    kept_modes: int
    total_modes: int
    energy_kept: float           # energy_fraction(x, mask)
    reconstruction: np.ndarray   # irfft2(mask * rfft2(x))
    relative_error: float        # ||x - reconstruction|| / ||x||


def keep_fraction_options(H: int, W: int) -> list[float]:
    """The kept fractions that give distinct masks on an ``H x W`` grid: ``j / n`` for
    ``j = 1..n`` with ``n = min(H, W) // 2`` (the cutoff of the shorter axis moves by one)."""
    n = max(min(check_positive_int(H, "H"), check_positive_int(W, "W")) // 2, 1)
    return [j / n for j in range(1, n + 1)]


def _log10_abs(X: torch.Tensor) -> torch.Tensor:
    return torch.log10(X.abs() + 1e-12)


def compute_spectrum(x: torch.Tensor, keep_fraction: float = 1.0) -> SpectrumState:
    """Spectrum of the image ``x [H, W]`` and its reconstruction from the lowest modes kept by
    :func:`afno_lite.spectral.kept_mode_mask` (ortho FFT, so energies obey Parseval)."""
    f = check_fraction(keep_fraction)
    x = _check_image(x)
    H, W = x.shape
    X = torch.fft.rfft2(x, norm="ortho")
    mask = spectral.kept_mode_mask(H, W, f)
    rec = torch.fft.irfft2(X * mask, s=(H, W), norm="ortho")
    radii, prof = spectral.radial_energy_profile(x)
    err = float(torch.linalg.norm(x - rec) / torch.linalg.norm(x).clamp_min(1e-300))
    return SpectrumState(
        keep_fraction=f,
        image=x.numpy(),
        log_mag_half=torch.fft.fftshift(_log10_abs(X), dim=0).numpy(),
        log_mag_full=torch.fft.fftshift(_log10_abs(torch.fft.fft2(x, norm="ortho"))).numpy(),
        radii=radii.numpy(),
        radial_energy=prof.numpy(),
        mask=mask.numpy(),
        cutoffs=spectral.kept_mode_cutoffs(H, W, f),
        kept_modes=int(mask.sum()),
        total_modes=mask.numel(),
        energy_kept=spectral.energy_fraction(x, mask),
        reconstruction=rec.numpy(),
        relative_error=err,
    )


# --------------------------------------------------------------------------- sparsity
@dataclass(frozen=True)
class SparsityState:
    """What the sparsity explorer shows for one input, ``λ``, mode and FFT norm.

    ``mode="soft"`` pictures AFNO's soft-thresholding (real and imaginary parts shrunk
    separately by ``λ``); ``mode="hard"`` keeps, unchanged, the same number of modes
    (those of largest energy), i.e. hard thresholding **at the same sparsity**.
    Both errors are always reported.
    """

    lambd: float
    mode: str
    norm: str
    coefficients: np.ndarray     # [H, W//2+1] max(|Re X|, |Im X|) in this norm (what λ is compared with)
    survivors: np.ndarray        # [H, W//2+1] bool, modes non-zero after thresholding
    kept_modes: int
    total_modes: int
    fraction_nonzero: float      # kept_modes / total_modes
    energy_kept: float           # ||y||^2 / ||x||^2 for the pictured result y
    reconstruction: np.ndarray   # y = irfft2(thresholded rfft2(x))
    relative_error: float        # ||x - y|| / ||x|| for the pictured result
    soft_error: float            # relative error of soft-thresholding at λ
    hard_error: float            # relative error of hard thresholding keeping kept_modes modes


def _check_lambd(lambd) -> float:
    return check_nonnegative(lambd, "lambd")


def _rfft(x: torch.Tensor, norm: str) -> torch.Tensor:
    return torch.fft.rfft2(x, norm=_check_choice(norm, "norm", NORMS))


def _peak(X: torch.Tensor) -> torch.Tensor:
    return torch.maximum(X.real.abs(), X.imag.abs())


def _keep_top_energy(X: torch.Tensor, n: int, W: int) -> torch.Tensor:
    """Keep the ``n`` rfft modes of largest energy (multiplicity-weighted), zero the rest."""
    e = (X.abs() ** 2) * spectral.rfft_multiplicity(X.shape[0], W).to(X.real.dtype)
    keep = torch.zeros(X.numel(), dtype=torch.bool)
    if n > 0:
        keep[e.flatten().topk(n).indices] = True
    return X * keep.view(X.shape)


def _rel(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.linalg.norm(x - y) / torch.linalg.norm(x).clamp_min(1e-300))


def compute_sparsity(x: torch.Tensor, lambd: float = 0.1, mode: str = "soft",
                     norm: str = "ortho") -> SparsityState:
    """Soft-threshold the rfft modes of ``x [H, W]`` at ``λ`` (FFT norm ``norm``) and compare
    with hard thresholding at the same number of non-zero modes."""
    lambd = _check_lambd(lambd)
    _check_choice(mode, "mode", MODES)
    x = _check_image(x)
    H, W = x.shape
    X = _rfft(x, norm)
    Ys = spectral.soft_threshold(X, lambd)
    survivors = Ys != 0
    n = int(survivors.sum())
    Yh = _keep_top_energy(X, n, W)
    ys = torch.fft.irfft2(Ys, s=(H, W), norm=norm)
    yh = torch.fft.irfft2(Yh, s=(H, W), norm=norm)
    y = ys if mode == "soft" else yh
    pictured = survivors if mode == "soft" else Yh != 0
    energy = float((y**2).sum() / (x**2).sum().clamp_min(1e-300))
    return SparsityState(
        lambd=lambd, mode=mode, norm=norm,
        coefficients=_peak(X).numpy(),
        survivors=pictured.numpy(),
        kept_modes=int(pictured.sum()),
        total_modes=X.numel(),
        fraction_nonzero=int(pictured.sum()) / X.numel(),
        energy_kept=energy,
        reconstruction=y.numpy(),
        relative_error=_rel(x, y),
        soft_error=_rel(x, ys),
        hard_error=_rel(x, yh),
    )


def lambda_grid(x: torch.Tensor, per_decade: int = 4, lowest: float = 1e-3) -> list[float]:
    """``[0]`` followed by log-spaced ``λ`` (``per_decade`` per decade from ``lowest``) up to
    the first value above every ``|Re X|, |Im X|`` of ``x`` **in both FFT norms**, so the last
    ``λ`` zeroes every mode whichever norm is chosen."""
    x = _check_image(x)
    per_decade = check_positive_int(per_decade, "per_decade")
    if not (isinstance(lowest, (int, float)) and lowest > 0):
        raise MixerConfigError(f"lowest must be a number > 0, got {lowest!r}")
    top = max(float(_peak(_rfft(x, n)).max()) for n in NORMS)
    e0 = round(math.log10(lowest) * per_decade)
    e1 = max(math.floor(math.log10(max(top, lowest)) * per_decade) + 1, e0)
    return [0.0] + [10 ** (e / per_decade) for e in range(e0, e1 + 1)]


def lambda_label(lambd: float) -> str:
    """Short readout label of a ``λ`` value (``0``, ``0.0018``, ``5.6``, ``1.8e+03``)."""
    return "0" if lambd == 0 else f"{lambd:.2g}"


def sparsity_curve(x: torch.Tensor, lambdas, norm: str = "ortho") -> np.ndarray:
    """Fraction of rfft modes of ``x`` that survive soft-thresholding, for each ``λ``."""
    x = _check_image(x)
    peak = _peak(_rfft(x, norm)).flatten()
    return np.array([float((peak > _check_lambd(lam)).double().mean()) for lam in lambdas])


# --------------------------------------------------------------------------- AFNO blocks
@dataclass(frozen=True)
class AFNOBlockState:
    """What the AFNO block explorer shows for one ``num_blocks`` and ``hidden_factor``."""

    dim: int
    num_blocks: int
    hidden_factor: int
    block_size: int
    params: dict                 # {"afno", "fno", "gfn"}: parameters counted on real modules
    block_weight: np.ndarray     # [C, C*f] |real part of w1| laid out block-diagonally
    tokens: np.ndarray           # [H, W] channel `channel` of the lifted input
    output: np.ndarray           # [H, W] channel `channel` of the AFNO spectral branch (no residual)
    output_rms: float


def divisors(n: int) -> list[int]:
    """Positive divisors of ``n`` (the valid ``num_blocks`` for ``dim = n``)."""
    n = check_positive_int(n, "n")
    return [d for d in range(1, n + 1) if n % d == 0]


def _numel(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@functools.lru_cache(maxsize=32)
def parameter_counts(dim: int, H: int, W: int) -> dict:
    """Parameters of a full-spectrum FNO layer (``modes=(H//2, W//2)``) and of a GFN layer on
    an ``H x W`` grid with ``dim`` channels, counted on the real modules."""
    with torch.device("meta"):  # shapes only: no memory, no random numbers
        fno = SpectralConv2d(dim, modes=(H // 2, W // 2))
        gfn = GlobalFilter(dim, grid=(H, W))
    return {"fno": _numel(fno), "gfn": _numel(gfn)}


def compute_afno_block(x: torch.Tensor, num_blocks: int = 4, hidden_factor: int = 1, dim: int = 16,
                       sparsity_threshold: float = 0.01, channel: int = 0, seed: int = 0) -> AFNOBlockState:
    """One AFNO layer (``num_blocks`` diagonal blocks, hidden factor ``hidden_factor``) on
    :func:`lift_to_channels` of the image ``x [H, W]`` (or on tokens ``x [1, H, W, dim]`` already
    lifted); parameter counts against FNO and GFN on the same grid."""
    dim = check_positive_int(dim, "dim")
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        if x.shape[0] != 1 or x.shape[-1] != dim or not x.is_floating_point() or not torch.isfinite(x).all():
            raise MixerConfigError(f"tokens x must be a finite float tensor [1, H, W, {dim}], got {tuple(x.shape)}")
        tokens = x.float()
    else:
        tokens = lift_to_channels(x, dim, seed)
    if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or num_blocks not in divisors(dim):
        raise MixerConfigError(f"num_blocks must divide dim={dim}; valid values: {divisors(dim)}, got {num_blocks!r}")
    hidden_factor = check_positive_int(hidden_factor, "hidden_factor")
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < dim:
        raise MixerConfigError(f"channel must be an integer in [0, {dim}), got {channel!r}")
    H, W = tokens.shape[1:3]
    m = _visible_afno(dim, num_blocks, hidden_factor, sparsity_threshold, seed, residual=False)
    with torch.no_grad():
        y = m(tokens)[0, ..., channel]
    b, h = m.block_size, m.block_size * hidden_factor
    big = torch.zeros(dim, dim * hidden_factor)
    for i in range(num_blocks):
        big[i * b:(i + 1) * b, i * h:(i + 1) * h] = m.w1[0, i].detach().abs()
    params = {"afno": _numel(m), **parameter_counts(dim, H, W)}
    return AFNOBlockState(
        dim=dim, num_blocks=num_blocks, hidden_factor=hidden_factor, block_size=b, params=params,
        block_weight=big.numpy(), tokens=tokens[0, ..., channel].numpy(), output=y.numpy(),
        output_rms=float(y.pow(2).mean().sqrt()),
    )


# --------------------------------------------------------------------------- views
def _new_figure(figsize) -> Figure:
    fig = Figure(figsize=figsize, dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _small_text(axes) -> None:
    for a in np.ravel(axes):
        a.tick_params(labelsize=7)
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
        with _one_thread():
            self.update()

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
        self.source = w.Dropdown(options=list(SOURCES), value=_check_choice(source, "source", SOURCES),
                                 description="input")
        self.keep = w.SelectionSlider(options=[(f"{f:.3g}", f) for f in opts], value=start,
                                      description="kept fraction", continuous_update=False,
                                      style={"description_width": "initial"})
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
        fig = self.fig = _new_figure((9.0, 5.0))
        ax = fig.subplots(2, 3)
        z = np.zeros((n, n))
        self._im = ax[0, 0].imshow(z, cmap="gray")
        ax[0, 0].set_title("input")
        self._full = ax[0, 1].imshow(z, origin="lower", extent=(-n // 2 - 0.5, n - n // 2 - 0.5) * 2)
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
        ax[1, 2].set(title="energy kept", xlabel="kept fraction", xlim=(0, 1.02), ylim=(0, 1.02))
        for a in (ax[0, 0], ax[1, 1]):
            a.set_xticks([])
            a.set_yticks([])
        self._axes = ax
        _small_text(ax)
        self._animate(self._rec, self._veil, self._cut, self._dot)
        fig.tight_layout()
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
            f"<b>energy kept</b> {100 * s.energy_kept:.2f} % &middot; "
            f"<b>relative error</b> {s.relative_error:.4f}")
        self._show()


class SparsityExplorer(_Explorer):
    """Drag ``λ`` and watch modes die: fraction of non-zero modes, energy kept, reconstruction
    error, the surviving-mode map and a histogram of ``max(|Re X|, |Im X|)`` with ``λ`` marked.
    Toggles: soft vs hard thresholding at the same sparsity; FFT norm ``ortho`` vs ``backward``."""

    name = "sparsity"

    def __init__(self, source: str = "grace_hopper", size: int = 64, lambd: float = 0.1,
                 mode: str = "soft", norm: str = "ortho"):
        super().__init__()
        w = self._w
        self.size = check_positive_int(size, "size")
        self._x = load_source(_check_choice(source, "source", SOURCES), self.size)
        grid = lambda_grid(self._x)
        self.source = w.Dropdown(options=list(SOURCES), value=source, description="input")
        self.lambd = w.SelectionSlider(options=self._options(grid), value=self._nearest(grid, lambd),
                                       description="λ", continuous_update=False)
        self.mode = w.ToggleButtons(options=list(MODES), value=_check_choice(mode, "mode", MODES),
                                    description="threshold")
        self.norm = w.ToggleButtons(options=list(NORMS), value=_check_choice(norm, "norm", NORMS),
                                    description="FFT norm")
        for t in (self.mode, self.norm):
            t.style.button_width = "80px"
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
        lambd = _check_lambd(lambd)
        return min(grid, key=lambda v: abs(math.log10(v + 1e-12) - math.log10(lambd + 1e-12)))

    def _on_source(self, change):
        self._busy = True
        try:
            with _one_thread():
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
        fig = self.fig = _new_figure((9.0, 5.0))
        ax = fig.subplots(2, 3)
        z = np.zeros((n, n))
        self._im = ax[0, 0].imshow(z, cmap="gray")
        ax[0, 0].set_title("input")
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
        fig.tight_layout()

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
        other = "hard" if s.mode == "soft" else "soft"
        other_err = s.hard_error if s.mode == "soft" else s.soft_error
        self.readout.value = (
            f"<b>λ</b> = {lambda_label(s.lambd)} ({s.norm}) &middot; "
            f"<b>non-zero modes</b> {s.kept_modes} / {s.total_modes} = "
            f"<span class='afno-sparsity'>{100 * s.fraction_nonzero:.1f} %</span> &middot; "
            f"<b>energy kept</b> {100 * s.energy_kept:.1f} % &middot; "
            f"<b>relative error</b> {s.mode} {s.relative_error:.4f} "
            f"({other} at the same sparsity: {other_err:.4f})")
        self._show()


class AFNOBlockExplorer(_Explorer):
    """``num_blocks`` (divisors of ``C`` only) and ``hidden_factor`` of one AFNO layer: parameter
    counts against FNO and GFN, the block-diagonal weight, the layer's output on the input."""

    name = "afno_blocks"

    def __init__(self, source: str = "grace_hopper", size: int = 64, dim: int = 16,
                 num_blocks: int = 4, hidden_factor: int = 1, max_hidden_factor: int = 4):
        super().__init__()
        w = self._w
        self.size = check_positive_int(size, "size")
        self.dim = check_positive_int(dim, "dim")
        self.max_hidden_factor = check_positive_int(max_hidden_factor, "max_hidden_factor")
        if num_blocks not in divisors(dim):
            raise MixerConfigError(f"num_blocks must divide dim={dim}; valid values: {divisors(dim)}, "
                                   f"got {num_blocks!r}")
        if not (isinstance(hidden_factor, int) and 1 <= hidden_factor <= self.max_hidden_factor):
            raise MixerConfigError(f"hidden_factor must be an integer in [1, {self.max_hidden_factor}], "
                                   f"got {hidden_factor!r}")
        self.source = w.Dropdown(options=list(SOURCES), value=_check_choice(source, "source", SOURCES),
                                 description="input")
        self.num_blocks = w.SelectionSlider(options=divisors(dim), value=num_blocks, description="num_blocks",
                                            continuous_update=False, style={"description_width": "initial"})
        self.hidden_factor = w.IntSlider(value=hidden_factor, min=1, max=self.max_hidden_factor,
                                         description="hidden_factor", continuous_update=False,
                                         style={"description_width": "initial"})
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
        fig = self.fig = _new_figure((9.0, 2.8))
        ax = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1.3, 1]})
        z = np.zeros((n, n))
        self._tok = ax[0].imshow(z, cmap="gray")
        ax[0].set_title("input (channel 0)")
        self._out = ax[1].imshow(z)
        ax[1].set_title("AFNO output (channel 0)")
        self._wimg = ax[2].imshow(np.zeros((C, C)), cmap="magma", aspect="auto", extent=(0, C, C, 0))
        self._h = C
        ax[2].set(title="|Re w1|, block-diagonal", xlabel="hidden unit", ylabel="channel")
        names = ["AFNO", "GFN", "FNO"]
        counts = parameter_counts(C, n, n)
        self._bars = ax[3].bar(names, [1, counts["gfn"], counts["fno"]], color=["C3", "C1", "C0"])
        top = max(counts["fno"], 4 * C * C * self.max_hidden_factor)
        ax[3].set(yscale="log", ylim=(10, top * 5), title="parameters")
        for a in ax[:2]:
            a.set_xticks([])
            a.set_yticks([])
        self._axes = ax
        _small_text(ax)
        self._animate(self._out, self._wimg, self._bars[0])
        fig.tight_layout()
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
            f"FNO {s.params['fno']:,} &middot; <b>output rms</b> {s.output_rms:.3f}")
        self._show()


# --------------------------------------------------------------------------- kernel-free players
def _animation_html(fig: Figure, frames: int, draw, fps: float) -> str:
    from matplotlib import rc_context
    from matplotlib.animation import FuncAnimation

    anim = FuncAnimation(fig, draw, frames=frames, interval=1000 / fps, blit=False, repeat=False)
    # JPEG frames (photographs and spectra compress ~3x better than PNG at this size);
    # offline_jshtml replaces the player's CDN icons with plain characters
    with rc_context({"animation.frame_format": "jpeg", "savefig.dpi": fig.dpi}):
        return offline_jshtml(anim, default_mode="once")


@_one_thread()
def sparsity_animation_html(x: torch.Tensor | None = None, n_frames: int = 14, norm: str = "ortho",
                            dpi: int = 64, fps: float = 3.0) -> str:
    """A kernel-free ``λ`` slider: ``FuncAnimation(...).to_jshtml()`` over ``n_frames``
    precomputed ``λ`` (``0`` then log-spaced up to the value that zeroes every mode in this norm).
    Shows the surviving-mode map, the reconstruction and the non-zero fraction vs ``λ``."""
    x = load_source("grace_hopper", 64) if x is None else x
    xd = _check_image(x)
    n_frames = check_positive_int(n_frames, "n_frames")
    if n_frames < 2:
        raise MixerConfigError(f"n_frames must be at least 2, got {n_frames}")
    top = float(_peak(_rfft(xd, norm)).max())
    lams = [0.0] + list(np.geomspace(top * 1e-4, top * 1.01, n_frames - 1))
    states = [compute_sparsity(xd, lam, "soft", norm) for lam in lams]
    H, W = xd.shape
    fig = _new_figure((7.5, 2.5))
    fig.set_dpi(dpi)
    ax = fig.subplots(1, 3)
    surv = ax[0].imshow(_shifted(states[0].survivors).astype(float), cmap="Greys", vmin=0, vmax=1,
                        origin="lower", aspect="auto", extent=_half_extent(H, W // 2 + 1))
    ax[0].set(title="surviving modes", xlabel="$k_W$", ylabel="$k_H$")
    img = xd.numpy()
    rec = ax[1].imshow(states[0].reconstruction, cmap="gray", vmin=img.min(), vmax=img.max())
    ax[1].set_xticks([])
    ax[1].set_yticks([])
    xs = [lams[1] / 3] + lams[1:]
    ax[2].semilogx(xs, [s.fraction_nonzero for s in states], ".-", ms=3)
    dot, = ax[2].semilogx([xs[0]], [1.0], "o", color="C3")
    ax[2].set(xlabel=f"λ ({norm})", ylabel="non-zero fraction", ylim=(-0.03, 1.03))
    title = fig.suptitle("")
    fig.tight_layout()

    def draw(i):
        s = states[i]
        surv.set_data(_shifted(s.survivors).astype(float))
        rec.set_data(s.reconstruction)
        dot.set_data([xs[i]], [s.fraction_nonzero])
        ax[1].set_title(f"error {s.relative_error:.3f}")
        title.set_text(f"λ = {lambda_label(s.lambd)}: {100 * s.fraction_nonzero:.1f} % of modes non-zero")
        return surv, rec, dot, title

    draw(0)
    return _animation_html(fig, len(states), draw, fps)


@_one_thread()
def keep_fraction_animation_html(x: torch.Tensor | None = None, n_frames: int = 14, dpi: int = 64,
                                 fps: float = 3.0) -> str:
    """A kernel-free kept-fraction slider (``to_jshtml`` over ``n_frames`` precomputed fractions
    from the smallest to 1): the kept-mode mask on the spectrum, the reconstruction, the error."""
    x = load_source("grace_hopper", 64) if x is None else x
    xd = _check_image(x)
    n_frames = check_positive_int(n_frames, "n_frames")
    if n_frames < 2:
        raise MixerConfigError(f"n_frames must be at least 2, got {n_frames}")
    H, W = xd.shape
    opts = keep_fraction_options(H, W)
    idx = sorted({round(i) for i in np.geomspace(1, len(opts), n_frames)})
    fracs = [opts[i - 1] for i in idx]
    states = [compute_spectrum(xd, f) for f in fracs]
    fig = _new_figure((7.5, 2.5))
    fig.set_dpi(dpi)
    ax = fig.subplots(1, 3)
    s0 = states[0]
    ext = _half_extent(H, W // 2 + 1)
    ax[0].imshow(s0.log_mag_half, origin="lower", aspect="auto", extent=ext)
    veil = ax[0].imshow(np.zeros(s0.mask.shape + (4,)), origin="lower", aspect="auto", extent=ext)
    ax[0].set(title="kept modes", xlabel="$k_W$", ylabel="$k_H$")
    img = xd.numpy()
    rec = ax[1].imshow(s0.reconstruction, cmap="gray", vmin=img.min(), vmax=img.max())
    ax[1].set_xticks([])
    ax[1].set_yticks([])
    ax[2].plot(fracs, [s.energy_kept for s in states], ".-", ms=3)
    dot, = ax[2].plot([fracs[0]], [s0.energy_kept], "o", color="C3")
    ax[2].set(xlabel="kept fraction", ylabel="energy kept", xlim=(0, 1.02))
    title = fig.suptitle("")
    fig.tight_layout()

    def draw(i):
        s = states[i]
        v = np.zeros(s.mask.shape + (4,))
        v[..., 3] = 0.7 * (~_shifted(s.mask))
        veil.set_data(v)
        rec.set_data(s.reconstruction)
        dot.set_data([s.keep_fraction], [s.energy_kept])
        ax[1].set_title(f"error {s.relative_error:.3f}")
        title.set_text(f"kept fraction {s.keep_fraction:.3g}: {s.kept_modes} of {s.total_modes} modes, "
                       f"{100 * s.energy_kept:.1f} % of the energy")
        return veil, rec, dot, title

    draw(0)
    return _animation_html(fig, len(states), draw, fps)


# --------------------------------------------------------------------------- latency
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
            t0 = time.perf_counter()
            slider.value = v
            dt = (time.perf_counter() - t0) * 1000
            if i:  # the first change warms caches up
                times.append(dt)
        times.sort()
        out[view.name] = {
            "median_ms": statistics.median(times),
            "p90_ms": times[min(len(times) - 1, math.ceil(0.9 * len(times)) - 1)],
            "n": len(times),
        }
    return out
