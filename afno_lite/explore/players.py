"""Explorers, kernel-free players: a few precomputed frames in a ``FuncAnimation`` player
(:func:`afno_lite.plotting.offline_jshtml`), a slider that works on a static page with no kernel.

Explained in the chapter "Sparsity in the frequency domain".
"""
from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

from .._checks import MixerConfigError, check_image, check_positive, check_positive_int
from ..plotting import offline_jshtml
from ..timing import one_thread
from .compute import (
    _peak,
    _rfft,
    compute_sparsity,
    compute_spectrum,
    keep_fraction_options,
    lambda_grid,
    lambda_label,
    load_source,
)
from .views import _half_extent, _new_figure, _shifted

__all__ = ["sparsity_animation_html", "keep_fraction_animation_html"]


def _check_player(n_frames, dpi, fps) -> int:
    n_frames = check_positive_int(n_frames, "n_frames")
    if n_frames < 2:
        raise MixerConfigError(f"n_frames must be at least 2, got {n_frames}")
    check_positive(dpi, "dpi")
    check_positive(fps, "fps")
    return n_frames


#: smallest on-screen text of a player: a frame is shown ``figwidth * dpi`` CSS px wide
MIN_TEXT_PX = 10


def _readable_text(fig: Figure, ax) -> None:
    """Every label, title and tick label at least :data:`MIN_TEXT_PX` CSS px tall at the
    figure's dpi (the book's rule for on-screen text), then a tight layout."""
    pt = MIN_TEXT_PX * 72 / fig.dpi + 0.01
    for a in np.ravel(ax):
        a.tick_params(labelsize=pt)
        for t in (a.title, a.xaxis.label, a.yaxis.label):
            t.set_fontsize(max(pt, t.get_fontsize()))
    if fig._suptitle is not None:
        fig._suptitle.set_fontsize(max(pt, fig._suptitle.get_fontsize()))
    fig.tight_layout()


def _animation_html(fig: Figure, frames: int, draw, fps: float) -> str:
    from matplotlib import rc_context
    from matplotlib.animation import FuncAnimation

    anim = FuncAnimation(fig, draw, frames=frames, interval=1000 / fps, blit=False, repeat=False)
    # JPEG frames (photographs and spectra: the two players' pages are 2-3x smaller than with PNG);
    # offline_jshtml replaces the player's CDN icons with plain characters
    with rc_context({"animation.frame_format": "jpeg", "savefig.dpi": fig.dpi}):
        html = offline_jshtml(anim, default_mode="once")
    # matplotlib's range slider is a fixed 374 px: let it shrink with the frame on a phone
    return html.replace("input[type=range].anim-slider {\n    width: 374px;",
                        "input[type=range].anim-slider {\n    width: 374px;\n    max-width: 100%;")


def _player_lambdas(x: torch.Tensor, n_frames: int, norm: str) -> list[float]:
    """``0`` and at most ``n_frames - 1`` stops of ``lambda_grid(x)``, every ``step``-th one
    counted back from the first stop that zeroes every mode of ``x`` in ``norm``."""
    top = float(_peak(_rfft(x, norm)).max())
    grid = lambda_grid(x)
    stops = [v for v in grid[1:] if v <= top] + [next(v for v in grid if v > top)]
    step = math.ceil(len(stops) / (n_frames - 1))
    return [0.0] + stops[::-1][::step][::-1]


@one_thread()
def sparsity_animation_html(x: torch.Tensor | None = None, n_frames: int = 14, norm: str = "ortho",
                            dpi: int = 64, fps: float = 3.0) -> str:
    """A kernel-free ``λ`` slider: ``FuncAnimation(...).to_jshtml()`` over at most ``n_frames``
    precomputed ``λ``: ``0``, then evenly spaced stops of the live explorer's ``λ`` slider
    (:func:`~afno_lite.explore.compute.lambda_grid`) up to the first that zeroes every mode in
    this norm, so every frame is one the live explorer shows for the same ``λ``.
    Shows the surviving-mode map, the reconstruction and the non-zero fraction vs ``λ``."""
    x = load_source("grace_hopper", 64) if x is None else x
    xd = check_image(x)
    n_frames = _check_player(n_frames, dpi, fps)
    lams = _player_lambdas(xd, n_frames, norm)
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
    _readable_text(fig, ax)

    def draw(i):
        s = states[i]
        surv.set_data(_shifted(s.survivors).astype(float))
        rec.set_data(s.reconstruction)
        dot.set_data([xs[i]], [s.fraction_nonzero])
        ax[1].set_title(f"error {s.relative_error:.3f}")
        title.set_text(f"λ = {lambda_label(s.lambd)}: {100 * s.fraction_nonzero:.1f} % of rfft modes non-zero")
        return surv, rec, dot, title

    draw(0)
    return _animation_html(fig, len(states), draw, fps)


@one_thread()
def keep_fraction_animation_html(x: torch.Tensor | None = None, n_frames: int = 14, dpi: int = 64,
                                 fps: float = 3.0) -> str:
    """A kernel-free kept-fraction slider (``to_jshtml`` over at most ``n_frames`` precomputed
    fractions from the smallest to 1: log-spaced picks of :func:`keep_fraction_options`, repeats
    dropped, so 12 frames for ``n_frames=14`` on 64x64): the kept-mode mask on the spectrum, the
    reconstruction, the error."""
    x = load_source("grace_hopper", 64) if x is None else x
    xd = check_image(x)
    n_frames = _check_player(n_frames, dpi, fps)
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
    ax[2].set(xlabel="kept fraction", ylabel="energy kept\n(mean included)", xlim=(0, 1.02))
    title = fig.suptitle("")
    _readable_text(fig, ax)

    def draw(i):
        s = states[i]
        v = np.zeros(s.mask.shape + (4,))
        v[..., 3] = 0.7 * (~_shifted(s.mask))
        veil.set_data(v)
        rec.set_data(s.reconstruction)
        dot.set_data([s.keep_fraction], [s.energy_kept])
        ax[1].set_title(f"error {s.relative_error:.3f}")
        title.set_text(f"kept fraction {s.keep_fraction:.3g}: {s.kept_modes} / {s.total_modes} modes, "
                       f"{100 * s.energy_kept:.1f} % of the energy (mean included)")
        return veil, rec, dot, title

    draw(0)
    return _animation_html(fig, len(states), draw, fps)
