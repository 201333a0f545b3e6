"""Book style and the plots shared by several chapters (spectra, masks, kernels).

Used throughout; the figures are explained where they first appear."""
from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import torch

from ._checks import MixerConfigError, check_positive, check_tensor

__all__ = ["use_book_style", "plot_mask", "plot_spectrum", "log_magnitude", "offline_jshtml",
           "BOOK_DPI", "BOOK_PIXEL_RATIO"]


# One figure style for the whole book. Sizes are in CSS pixels: 96 per inch, so a 7-inch-wide
# figure fills the 672 px text column and 10 pt text is 13 px on screen. Every PNG carries
# BOOK_PIXEL_RATIO times as many pixels ("retina" output: the notebook output asks to be shown at
# its CSS size, which JupyterLab and Jupyter Book honour), so figures stay sharp on high-density
# screens and when zoomed.
BOOK_DPI = 96
BOOK_PIXEL_RATIO = 2


def use_book_style() -> None:
    """The book's figure style: 7-inch-wide figures at 96 CSS px per inch, drawn with twice
    as many pixels (``savefig.dpi`` = 192; in a notebook, inline figures use the ``retina``
    format, which stores the on-screen size with the PNG)."""
    mpl.rcParams.update({
        "figure.dpi": BOOK_DPI,
        "savefig.dpi": BOOK_PIXEL_RATIO * BOOK_DPI,
        "figure.figsize": (7.0, 3.6),
        "axes.grid": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "image.cmap": "viridis",
        "font.size": 10,
    })
    _retina_inline_figures()


def _retina_inline_figures() -> None:
    """In an IPython kernel, show inline figures as ``retina`` PNGs (2x pixels, CSS size in
    the output's metadata); outside IPython nothing to do."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    if get_ipython() is None:
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("retina")


def _check_half_plane(X, name: str) -> None:
    check_tensor(X, name)
    if X.dim() != 2:
        raise MixerConfigError(f"{name} must be a 2-D tensor [H, W//2+1], "
                               f"got shape {tuple(X.shape)}")


def log_magnitude(X: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``log10(|X| + eps)`` as a float CPU tensor."""
    check_tensor(X, "X")
    return torch.log10(X.abs().detach().cpu().double() + eps).float()


def plot_mask(mask: torch.Tensor, ax=None, title: str | None = None, shift: bool = True):
    """Show a boolean ``[H, W//2+1]`` kept-mode mask with ``k_H`` centred (rows fftshifted);
    ``shift=False`` shows the rows in grid order, labelled ``0 .. H-1``."""
    _check_half_plane(mask, "mask")
    ax = ax or plt.gca()
    H = mask.shape[0]
    m = mask.detach().cpu().float()
    m = torch.fft.fftshift(m, dim=0) if shift else m
    lo = -(H // 2) if shift else 0
    ax.imshow(m.numpy(), cmap="Greys", vmin=0, vmax=1, origin="lower", aspect="auto",
              extent=(-0.5, mask.shape[1] - 0.5, lo - 0.5, lo + H - 0.5))
    ax.set_xlabel("$k_W$ (rfft half-axis)")
    ax.set_ylabel("$k_H$" if shift else "row ($k_H$ mod $H$)")
    if title:
        ax.set_title(title)
    return ax


def plot_spectrum(X: torch.Tensor, ax=None, title: str | None = None, vmin=None, vmax=None):
    """Log-magnitude of an rfft half-plane ``[H, W//2+1]`` with ``k_H`` centred."""
    _check_half_plane(X, "X")
    ax = ax or plt.gca()
    H = X.shape[0]
    lm = torch.fft.fftshift(log_magnitude(X), dim=0)
    lo = -(H // 2)
    im = ax.imshow(lm.numpy(), origin="lower", aspect="auto", vmin=vmin, vmax=vmax,
                   extent=(-0.5, X.shape[1] - 0.5, lo - 0.5, lo + H - 0.5))
    ax.set_xlabel("$k_W$")
    ax.set_ylabel("$k_H$")
    if title:
        ax.set_title(title)
    return im


# matplotlib's to_jshtml() template links Font Awesome 4 from a CDN for its button
# icons; a static page must not reach the network, so the icons become plain text.
_JSHTML_ICONS = {  # glyphs present in every common font (no emoji-only symbols)
    "fa fa-minus": "&#8722;", "fa fa-fast-backward": "|&#9664;&#9664;", "fa fa-step-backward": "|&#9664;",
    "fa fa-play fa-flip-horizontal": "&#9664;", "fa fa-pause": "||", "fa fa-play": "&#9654;",
    "fa fa-step-forward": "&#9654;|", "fa fa-fast-forward": "&#9654;&#9654;|", "fa fa-plus": "+",
}


def offline_jshtml(anim, default_mode: str = "once", pixel_ratio: float = BOOK_PIXEL_RATIO) -> str:
    """``anim.to_jshtml()`` with no network access needed: the Font Awesome ``<link>``
    is removed and the button icons become Unicode symbols. The result is a
    self-contained slider that works on a static page with no kernel.

    Frames are drawn at ``pixel_ratio`` times the figure's dpi and shown at the figure's own
    size (``figwidth * dpi`` CSS pixels), like every other figure of the book."""
    import re

    from matplotlib.animation import Animation

    if not isinstance(anim, Animation):
        raise TypeError(f"anim must be a matplotlib Animation (e.g. FuncAnimation), "
                        f"got {type(anim).__name__}")
    pixel_ratio = check_positive(pixel_ratio, "pixel_ratio")
    fig = anim._fig
    css_width = round(fig.get_figwidth() * fig.dpi)
    anim.__dict__.pop("_html_representation", None)   # matplotlib caches the first call's HTML
    with mpl.rc_context({"savefig.dpi": pixel_ratio * fig.dpi}):
        html = anim.to_jshtml(default_mode=default_mode)
    anim.__dict__.pop("_html_representation", None)   # ... and would show ours, not its own, next
    html = re.sub(r'<img id="(_anim_img\w+)">',
                  rf'<img id="\1" style="width: {css_width}px; max-width: 100%">', html)
    html = re.sub(r'<link[^>]*font-awesome[^>]*>', "", html)
    for cls, sym in _JSHTML_ICONS.items():
        html = html.replace(f'<i class="{cls}"></i>', sym)
    if "http://" in html or "https://" in html:
        raise RuntimeError("offline_jshtml: the animation HTML still references the network")
    return html
