"""Explorers, compute half: plain functions of plain arguments that return a small frozen
dataclass of numbers and arrays -- what the tests and the chapters check. No ipywidgets,
no figures.

Explained in the chapter "Sparsity in the frequency domain" (spectrum and kept fraction,
soft-thresholding sparsity, AFNO blocks); the AFNO block explorer also fits the chapter
"AFNO, step by step".
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import complexity, data, spectral
from .._checks import (
    MixerConfigError,
    _is_int,
    check_choice,
    check_fraction,
    check_image,
    check_int,
    check_nonnegative,
    check_positive,
    check_positive_int,
    divisors,
)
from ..mixers import AFNO
from ..registry import SPECS

__all__ = [
    "SOURCES", "load_source", "lift_to_channels", "feature_map",
    "SpectrumState", "compute_spectrum", "keep_fraction_options",
    "THRESHOLDINGS", "NORMS", "SparsityState", "compute_sparsity", "lambda_grid", "lambda_label", "sparsity_curve",
    "AFNOBlockState", "compute_afno_block", "divisors", "parameter_counts",
]

#: inputs every explorer offers: the shipped images, a synthetic field, a feature map
SOURCES = ("grace_hopper", "mri", "topography", "synthetic", "feature")
THRESHOLDINGS = ("soft", "hard")  # sparsity explorer: soft-thresholding, or best-n-term at the same sparsity
NORMS = ("ortho", "backward")     # FFT normalisations the sparsity explorer compares


# --------------------------------------------------------------------------- inputs
def _check_channel(channel, dim: int) -> int:
    if not _is_int(channel) or not 0 <= channel < dim:
        raise MixerConfigError(f"channel must be an integer in [0, {dim}), got {channel!r}")
    return int(channel)


def lift_to_channels(x: torch.Tensor, dim: int = 16, seed: int = 0) -> torch.Tensor:
    """Turn an image ``[H, W]`` into tokens ``[1, H, W, dim]``: channel ``c`` is
    ``gelu(w_c (x - mean x) + b_c)`` with fixed seeded ``w_c, b_c`` (a pointwise embedding,
    so every channel is a different non-linear view of the same picture)."""
    x = check_image(x).float()
    dim = check_positive_int(dim, "dim")
    g = torch.Generator().manual_seed(check_int(seed, "seed"))
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
    dim = check_positive_int(dim, "dim")
    channel = _check_channel(channel, dim)
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
    check_choice(source, "source", SOURCES)
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
    x = check_image(x)
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
    (those of largest energy), i.e. best-n-term (magnitude) thresholding **at the same sparsity**
    (not the paper's hard thresholding, which is mode truncation).
    Both errors are always reported. Edge case (chapter "Sparsity in the frequency domain"): when
    the ``n``-th place splits a mode of a self-conjugate column (``k_W = 0`` or ``W/2``) from its
    mirror, irfft2 spreads the kept one over both, so the pictured result has one more non-zero
    mode than ``kept_modes`` and an error below the ``n``-term bound.
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
    return torch.fft.rfft2(x, norm=check_choice(norm, "norm", NORMS))


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
    check_choice(mode, "mode", THRESHOLDINGS)
    x = check_image(x)
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
    total = float((x**2).sum())
    energy = float((y**2).sum()) / total if total > 0 else 1.0     # no energy to lose: all of it kept
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
    x = check_image(x)
    per_decade = check_positive_int(per_decade, "per_decade")
    lowest = check_positive(lowest, "lowest")
    top = max(float(_peak(_rfft(x, n)).max()) for n in NORMS)
    e0 = round(math.log10(lowest) * per_decade)
    e1 = max(math.floor(math.log10(max(top, lowest)) * per_decade) + 1, e0)
    return [0.0] + [10 ** (e / per_decade) for e in range(e0, e1 + 1)]


def lambda_label(lambd: float) -> str:
    """Short readout label of a ``λ`` value (``0``, ``0.0018``, ``5.6``, ``1.8e+03``)."""
    return "0" if lambd == 0 else f"{lambd:.2g}"


def sparsity_curve(x: torch.Tensor, lambdas, norm: str = "ortho") -> np.ndarray:
    """Fraction of rfft modes of ``x`` that survive soft-thresholding, for each ``λ``."""
    x = check_image(x)
    if isinstance(lambdas, (str, bytes)) or not hasattr(lambdas, "__iter__"):
        raise MixerConfigError(f"lambdas must be a sequence of thresholds >= 0, got {lambdas!r}")
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
    params: dict                 # {"afno", "fno", "gfn"}: parameters (records' formulas = real modules)
    block_weight: np.ndarray     # [C, C*f] |real part of w1| laid out block-diagonally
    tokens: np.ndarray           # [H, W] channel `channel` of the lifted input
    output: np.ndarray           # [H, W] channel `channel` of the AFNO spectral branch (no residual)
    output_rms: float
    zeroed_fraction: float       # real numbers (Re and Im parts of the kept modes, every channel) set to 0
    zeroed_entries: float        # complex (mode, channel) entries with both parts set to 0


def _numel(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@functools.lru_cache(maxsize=32)
def parameter_counts(dim: int, H: int, W: int) -> dict:
    """Parameters of a full-spectrum FNO layer (``modes=(H//2, W//2)``) and of a GFN layer on
    an ``H x W`` grid with ``dim`` channels, from their records' formulas (no module is built)."""
    return {name: complexity.parameter_count(name, dim, **SPECS[name].grid_kw(H, W)) for name in ("fno", "gfn")}


def compute_afno_block(x: torch.Tensor, num_blocks: int = 4, hidden_factor: int = 1, dim: int = 16,
                       sparsity_threshold: float = 0.01, channel: int = 0, seed: int = 0) -> AFNOBlockState:
    """One AFNO layer (``num_blocks`` diagonal blocks, hidden factor ``hidden_factor``) on
    :func:`lift_to_channels` of the image ``x [H, W]`` (or on tokens ``x [1, H, W, dim]`` already
    lifted); parameter counts against FNO and GFN on the same grid."""
    dim = check_positive_int(dim, "dim")
    seed = check_int(seed, "seed")
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        if x.shape[0] != 1 or x.shape[-1] != dim or not x.is_floating_point() or not torch.isfinite(x).all():
            raise MixerConfigError(f"tokens x must be a finite float tensor [1, H, W, {dim}], "
                                   f"got shape {tuple(x.shape)}, dtype {x.dtype}")
        tokens = x.float()
    else:
        tokens = lift_to_channels(x, dim, seed)
    if not _is_int(num_blocks) or num_blocks not in divisors(dim):
        raise MixerConfigError(f"num_blocks must divide dim={dim}; valid values: {divisors(dim)}, got {num_blocks!r}")
    num_blocks = int(num_blocks)
    hidden_factor = check_positive_int(hidden_factor, "hidden_factor")
    channel = _check_channel(channel, dim)
    H, W = tokens.shape[1:3]
    m = _visible_afno(dim, num_blocks, hidden_factor, sparsity_threshold, seed, residual=False)
    with torch.no_grad():
        y = m(tokens)[0, ..., channel]
        after = torch.view_as_real(m.spectrum(tokens).after)   # the kept modes after shrinkage
    b, h = m.block_size, m.block_size * hidden_factor
    big = torch.zeros(dim, dim * hidden_factor)
    for i in range(num_blocks):
        big[i * b:(i + 1) * b, i * h:(i + 1) * h] = m.w1[0, i].detach().abs()
    params = {"afno": _numel(m), **parameter_counts(dim, H, W)}
    return AFNOBlockState(
        dim=dim, num_blocks=num_blocks, hidden_factor=hidden_factor, block_size=b, params=params,
        block_weight=big.numpy(), tokens=tokens[0, ..., channel].numpy(), output=y.numpy(),
        output_rms=float(y.pow(2).mean().sqrt()), zeroed_fraction=float((after == 0).double().mean()),
        zeroed_entries=float((after == 0).all(-1).double().mean()),
    )
