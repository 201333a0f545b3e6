"""Frequency grids, kept-mode masks, thresholding and spectrum energy.

Explained in the chapters "From kernel integrals to Fourier Neural Operators"
(mode truncation), "AFNO, step by step" (hard thresholding, soft-thresholding)
and "Sparsity in the frequency domain" (energy, thresholds).

Conventions
-----------
* Token grids are channels-last ``[B, H, W, C]``; the 2-D real FFT is taken over
  ``(H, W)`` and gives an ``[H, W//2 + 1]`` half-plane of complex modes.
* Row ``r`` of the half-plane holds the signed frequency ``k_H = r`` for ``r < H/2`` and
  ``k_H = r - H`` for ``r >= H/2`` (``torch.fft.fftfreq(H) * H``; so for even ``H`` the
  Nyquist row ``H/2`` is labelled ``-H/2``). Column ``c`` holds ``k_W = c``.
* "Lowest modes" means small ``|k_H|`` **and** small ``k_W``.
"""
from __future__ import annotations

import math

import torch

from ._checks import (
    MixerConfigError,
    _is_int,
    _is_real,
    check_fraction,
    check_modes,
    check_nonnegative,
    check_nonnegative_int,
    check_positive_int,
    check_tensor,
)

__all__ = [
    "frequency_grid",
    "kept_mode_cutoffs",
    "kept_mode_mask",
    "kept_rows",
    "fno_mode_mask",
    "nvidia_kept_mode_mask",
    "rfft_multiplicity",
    "self_conjugate_columns",
    "hermitian_project",
    "hermitian_project_after_ifft_",
    "hermitian_defect",
    "spectrum_energy",
    "energy_fraction",
    "radial_energy_profile",
    "soft_threshold",
    "soft_threshold_magnitude",
    "hard_threshold",
    "hard_threshold_to_fraction",
]


def frequency_grid(H: int, W: int, rfft: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer frequencies of an ``H x W`` FFT: ``k_h`` of shape ``[H, 1]`` and
    ``k_w`` of shape ``[1, W//2+1]`` (rfft half-plane) or ``[1, W]`` (full plane)."""
    H = check_positive_int(H, "H")
    W = check_positive_int(W, "W")
    kh = torch.round(torch.fft.fftfreq(H) * H).long().view(H, 1)
    if rfft:
        kw = torch.arange(W // 2 + 1).view(1, -1)
    else:
        kw = torch.round(torch.fft.fftfreq(W) * W).long().view(1, W)
    return kh, kw


def kept_mode_cutoffs(H: int, W: int, keep_fraction: float) -> tuple[int, int]:
    """Largest kept ``|k_H|`` and ``k_W`` for a hard-thresholding fraction.

    ``m_h = floor(keep_fraction * (H // 2))`` and ``m_w = floor(keep_fraction * (W // 2))``.
    At ``keep_fraction = 1`` every mode of the grid is kept, square or not, even or odd.
    """
    f = check_fraction(keep_fraction)
    H = check_positive_int(H, "H")
    W = check_positive_int(W, "W")
    return math.floor(f * (H // 2) + 1e-9), math.floor(f * (W // 2) + 1e-9)


def kept_rows(H: int, m_h: int) -> tuple[list[int], list[int]]:
    """The rows of an ``H``-row half-spectrum with ``|k_H| <= m_h``, in grid order.

    Returns ``(slots, rows)``: ``rows[i]`` is a grid row and ``slots[i]`` the index ``k_H + m_h``
    of its signed frequency in a ``2*m_h + 1`` weight (an FNO's first weight axis). When
    ``2*m_h >= H`` two signed frequencies alias to one row (``±H/2`` for even ``H``); the
    negative one, first in ``-m_h..m_h``, is kept. Used by every spectral mixer that acts on
    the lowest rows only (AFNO's hard thresholding, FastAFNO, FNO)."""
    H = check_positive_int(H, "H")
    m_h = check_nonnegative_int(m_h, "m_h")
    first: dict[int, int] = {}
    for slot, k in enumerate(range(-m_h, m_h + 1)):
        first.setdefault(k % H, slot)
    rows = sorted(first)
    return [first[r] for r in rows], rows


def kept_mode_mask(H: int, W: int, keep_fraction: float = 1.0) -> torch.Tensor:
    """Boolean ``[H, W//2+1]`` mask of the modes AFNO keeps (``afno_lite`` convention):
    ``|k_H| <= m_h`` and ``k_W <= m_w`` with the cutoffs of :func:`kept_mode_cutoffs`."""
    m_h, m_w = kept_mode_cutoffs(H, W, keep_fraction)
    kh, kw = frequency_grid(H, W)
    return (kh.abs() <= m_h) & (kw <= m_w)


def fno_mode_mask(H: int, W: int, modes: tuple[int, int] | None = None) -> torch.Tensor:
    """Boolean ``[H, W//2+1]`` mask of the modes a :class:`~afno_lite.SpectralConv2d`
    with ``modes=(m_h, m_w)`` acts on (``|k_H| <= m_h``, ``k_W <= m_w``; ``None`` = all)."""
    kh, kw = frequency_grid(H, W)
    if modes is None:
        return torch.ones(H, W // 2 + 1, dtype=torch.bool)
    m_h, m_w = check_modes(modes)
    if m_h > H // 2 or m_w > W // 2:
        raise MixerConfigError(
            f"modes={tuple(modes)} is larger than the grid {H}x{W} allows "
            f"(at most ({H // 2}, {W // 2}))"
        )
    return (kh.abs() <= m_h) & (kw <= m_w)


def nvidia_kept_mode_mask(H: int, W: int, keep_fraction: float = 1.0,
                          variant: str = "fourcastnet") -> torch.Tensor:
    """The modes NVIDIA's reference AFNO layers compute (their slicing, reproduced).

    ``variant="fourcastnet"`` (FourCastNet and PhysicsNeMo ``AFNO2DLayer``):
    ``total = H//2 + 1``, ``kept = int(total * f)``, rows
    ``total-kept : total+kept`` (a band around the **Nyquist** row, not the lowest
    frequencies) and columns ``:kept``: even at ``keep_fraction = 1`` the columns
    ``k_W >= H//2 + 1`` are dropped; they exist when ``W//2 > H//2`` (``W > H``, except
    ``W = H + 1`` for even ``H``).

    ``variant="afno_transformer"`` (the paper's ViT code, tokens flattened to
    ``N = H*W``): ``total = N//2 + 1``, ``kept = int(total * f)``, **all** rows and
    columns ``:kept``. Since ``total`` counts tokens, not columns, ``kept`` is far larger
    than ``W//2 + 1`` and the slicing rarely truncates anything.
    """
    f = check_fraction(keep_fraction)
    H = check_positive_int(H, "H")
    W = check_positive_int(W, "W")
    mask = torch.zeros(H, W // 2 + 1, dtype=torch.bool)
    if variant == "fourcastnet":
        total = H // 2 + 1
        kept = int(total * f)
        mask[total - kept: total + kept, :kept] = True   # x[:, total-kept:total+kept, :kept]
    elif variant == "afno_transformer":
        total = (H * W) // 2 + 1
        kept = int(total * f)
        mask[:, :kept] = True                            # x[:, :, :kept]
    else:
        raise MixerConfigError(f"variant must be 'fourcastnet' or 'afno_transformer', got {variant!r}")
    return mask


def self_conjugate_columns(W: int, n_cols: int | None = None) -> list[int]:
    """The rfft columns whose modes are their own mirror image along ``W``: ``k_W = 0``
    and, for even ``W``, the Nyquist column ``k_W = W/2`` (only those below ``n_cols``,
    the number of columns a possibly truncated half-spectrum actually holds)."""
    W = check_positive_int(W, "W")
    n = W // 2 + 1 if n_cols is None else n_cols
    cols = [0] if n > 0 else []
    if W % 2 == 0 and 0 < W // 2 < n:
        cols.append(W // 2)
    return cols


def _mirror_rows(z: torch.Tensor, h: int) -> torch.Tensor:
    """``z`` with row ``r`` replaced by row ``(-r) mod H`` along axis ``h``."""
    return torch.roll(torch.flip(z, (h,)), 1, h)


def _spectral_axes(X: torch.Tensor, dims, name: str = "X") -> tuple[int, int]:
    if not isinstance(X, torch.Tensor) or not X.is_complex():
        got = f"dtype {X.dtype}" if isinstance(X, torch.Tensor) else type(X).__name__
        raise TypeError(f"{name} must be a complex torch.Tensor (an rfft half-spectrum), got {got}")
    if not (isinstance(dims, (tuple, list)) and len(dims) == 2):
        raise MixerConfigError(f"dims must be a pair (axis of k_H, axis of k_W), got {dims!r}")
    h, w = (d % X.dim() if _is_int(d) and -X.dim() <= d < X.dim() else None for d in dims)
    if h is None or w is None or h == w:
        raise MixerConfigError(f"dims={tuple(dims)} must name two different axes of a rank-{X.dim()} tensor")
    return h, w


def hermitian_project(X: torch.Tensor, W: int, dims=(1, 2)) -> torch.Tensor:
    """Project the self-conjugate columns of an rfft half-spectrum onto their Hermitian part.

    ``irfft``/``irfft2`` read only half a spectrum. On the columns ``k_W = 0`` (and
    ``k_W = W/2`` for even ``W``) the full spectrum of a real signal satisfies
    ``Z[-k_H] = conj(Z[k_H])``; a half-spectrum written by a non-linear layer (AFNO's MLP)
    or by complex weights breaks that, and the inverse transform is then not defined by
    the maths alone: CPU FFT libraries silently use the Hermitian part of those columns,
    cuFFT does not for every plan. Every spectral layer therefore hands the inverse
    transform ``½(z + conj(z reversed along H))`` on those columns, which is what the CPU
    computes implicitly, so the layer is the same function on every FFT backend.

    ``dims`` names the axes of ``k_H`` (full FFT axis) and ``k_W`` (rfft half-axis, possibly
    truncated to fewer than ``W//2 + 1`` columns); ``W`` is the signal length along ``k_W``.
    Returns a new tensor; the other columns are unchanged. Differentiable.
    """
    h, w = _spectral_axes(X, dims)
    cols = self_conjugate_columns(W, X.shape[w])
    parts, start = [], 0
    for c in cols:
        if c > start:
            parts.append(X.narrow(w, start, c - start))
        z = X.narrow(w, c, 1)
        # conj_physical, not the lazy conj view: torch 2.5-2.7's inductor cannot lower a conj
        # view (fast.compiled failed there); the values are the same
        parts.append(0.5 * (z + _mirror_rows(z, h).conj_physical()))
        start = c + 1
    if start < X.shape[w]:
        parts.append(X.narrow(w, start, X.shape[w] - start))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=w)


def hermitian_project_after_ifft_(Z: torch.Tensor, W: int, dim: int = -1) -> torch.Tensor:
    """:func:`hermitian_project` for a half-spectrum that is already inverse-transformed along
    ``k_H``: in place, the real part of its self-conjugate columns (axis ``dim`` holds ``k_W``).

    The inverse FFT along ``k_H`` of a column's Hermitian part is the real part of the column's
    inverse FFT, ``ifft(½(z + conj(z reversed))) = Re(ifft(z))``: the two routes give the
    same numbers up to rounding (tested). A 2-D inverse real FFT split into ``ifft`` along
    ``k_H`` and ``irfft`` along ``k_W`` (as :class:`afno_lite.fast.FastAFNO` computes it)
    therefore projects with one write to those columns instead of a copy of the spectrum,
    and its 1-D ``irfft`` receives real self-conjugate entries, which is all a 1-D inverse
    real FFT is defined for. Returns ``Z``; not differentiable (for use inside
    :class:`torch.autograd.Function` code or without gradients)."""
    if not isinstance(Z, torch.Tensor) or not Z.is_complex():
        got = f"dtype {Z.dtype}" if isinstance(Z, torch.Tensor) else type(Z).__name__
        raise TypeError(f"Z must be a complex torch.Tensor, got {got}")
    for c in self_conjugate_columns(W, Z.shape[dim]):
        Z.select(dim, c).imag.zero_()
    return Z


def hermitian_defect(X: torch.Tensor, W: int, dims=(1, 2)) -> float:
    """How far the self-conjugate columns of ``X`` are from Hermitian along ``k_H``:
    ``max |z - conj(z reversed)| / max |z|`` over those columns (0 for an exact rfft of real
    data, 0 after :func:`hermitian_project`)."""
    h, w = _spectral_axes(X, dims)
    worst = 0.0
    for c in self_conjugate_columns(W, X.shape[w]):
        z = X.narrow(w, c, 1).detach()
        scale = float(z.abs().max())
        if scale > 0:
            worst = max(worst, float((z - _mirror_rows(z, h).conj()).abs().max()) / scale)
    return worst


def rfft_multiplicity(H: int, W: int) -> torch.Tensor:
    """How many modes of the full ``H x W`` spectrum each rfft half-plane entry stands
    for: 1 for column 0 (and the Nyquist column when ``W`` is even), 2 otherwise."""
    H = check_positive_int(H, "H")
    W = check_positive_int(W, "W")
    m = torch.full((H, W // 2 + 1), 2.0)
    m[:, 0] = 1.0
    if W % 2 == 0:
        m[:, -1] = 1.0
    return m


def spectrum_energy(x: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """Energy ``|X_k|^2`` per rfft mode (summed over channels and batch), shape
    ``[H, W//2+1]``, weighted so that ``sum = ||x||^2`` (Parseval, ortho FFT).

    ``x`` is ``[H, W]``, ``[H, W, C]``/``[B, H, W, C]`` (channels last) or, with
    ``channels_last=False``, ``[..., H, W]``."""
    if not isinstance(x, torch.Tensor) or x.is_complex() or not x.is_floating_point():
        got = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"x must be a real floating-point torch.Tensor, got {got}")
    if x.dim() < 2:
        raise MixerConfigError(f"x must have at least 2 dimensions [H, W], got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise MixerConfigError(f"x must not be empty, got shape {tuple(x.shape)}")
    if x.dim() == 2:
        X = torch.fft.rfft2(x, norm="ortho")
        e = X.abs() ** 2
    elif channels_last:
        if x.dim() not in (3, 4):
            raise MixerConfigError(f"x must be [H, W], [H, W, C] or [B, H, W, C], got shape {tuple(x.shape)}")
        dims = (-3, -2)
        X = torch.fft.rfft2(x, dim=dims, norm="ortho")
        e = (X.abs() ** 2).sum(dim=-1)
        if e.dim() == 3:
            e = e.sum(0)
    else:
        X = torch.fft.rfft2(x, norm="ortho")
        e = (X.abs() ** 2).reshape(-1, *X.shape[-2:]).sum(0)
    H = e.shape[0]
    W = x.shape[-2] if (channels_last and x.dim() > 2) else x.shape[-1]
    return e * rfft_multiplicity(H, W).to(e.device, e.dtype)


def energy_fraction(x: torch.Tensor, mask: torch.Tensor, channels_last: bool = True) -> float:
    """Fraction of the energy of ``x`` carried by the rfft modes selected by ``mask``."""
    e = spectrum_energy(x, channels_last)
    check_tensor(mask, "mask")
    if mask.dtype != torch.bool:      # an integer 0/1 mask would index rows 0 and 1, not select modes
        raise TypeError(f"mask must be a boolean tensor (torch.bool), got dtype {mask.dtype}; "
                        "pass mask.bool() for a 0/1 mask")
    if mask.shape != e.shape:
        raise MixerConfigError(f"mask must have shape {tuple(e.shape)}, got {tuple(mask.shape)}")
    total = e.sum()
    return float(e[mask.to(e.device)].sum() / total) if total > 0 else 1.0


def radial_energy_profile(x: torch.Tensor, channels_last: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Energy summed over rings of integer radius ``round(sqrt(k_H^2 + k_W^2))``.
    Returns ``(radii, energy)``."""
    e = spectrum_energy(x, channels_last)
    H = e.shape[0]
    W = x.shape[-2] if (channels_last and x.dim() > 2) else x.shape[-1]
    kh, kw = frequency_grid(H, W)
    r = torch.sqrt((kh**2 + kw**2).double()).round().long()
    prof = torch.zeros(int(r.max()) + 1, dtype=e.dtype, device=e.device)
    prof.index_add_(0, r.flatten().to(e.device), e.flatten())
    return torch.arange(len(prof), device=e.device), prof


def _check_lambd(lambd) -> float:
    return check_nonnegative(lambd, "lambd")


def _check_coefficients(z) -> None:
    check_tensor(z, "z")
    if not (z.is_floating_point() or z.is_complex()):
        raise TypeError(f"z must be a floating-point or complex tensor, got dtype {z.dtype}")


def soft_threshold(z: torch.Tensor, lambd: float) -> torch.Tensor:
    """AFNO's soft-thresholding: ``softshrink`` on the real and imaginary parts
    **separately** (``S_λ(a) = sign(a) max(|a| - λ, 0)``). Works on real or complex ``z``."""
    _check_coefficients(z)
    lambd = _check_lambd(lambd)
    if z.is_complex():
        return torch.complex(torch.nn.functional.softshrink(z.real, lambd),
                             torch.nn.functional.softshrink(z.imag, lambd))
    return torch.nn.functional.softshrink(z, lambd)


def soft_threshold_magnitude(z: torch.Tensor, lambd: float) -> torch.Tensor:
    """The complex LASSO proximal operator: shrink the **magnitude**, keep the phase,
    ``z * max(1 - λ/|z|, 0)``. (Not what AFNO does; shown for comparison.)"""
    _check_coefficients(z)
    lambd = _check_lambd(lambd)
    mag = z.abs()
    scale = torch.clamp(1 - lambd / mag.clamp_min(torch.finfo(mag.dtype).tiny), min=0)
    return z * scale


def hard_threshold(z: torch.Tensor, lambd: float) -> torch.Tensor:
    """Keep entries with ``|z| > λ`` unchanged, zero the rest."""
    check_tensor(z, "z")
    lambd = _check_lambd(lambd)
    return torch.where(z.abs() > lambd, z, torch.zeros_like(z))


def hard_threshold_to_fraction(z: torch.Tensor, keep: float) -> torch.Tensor:
    """Keep the ``round(keep * z.numel())`` entries of largest ``|z|``, zero the rest (which
    of several entries with equal ``|z|`` are kept is up to ``torch.topk``, not their order)."""
    check_tensor(z, "z")
    if not _is_real(keep) or not (0.0 <= keep <= 1.0):
        raise MixerConfigError(f"keep must be a fraction in [0, 1], got {keep!r}")
    keep = float(keep)
    flat = z.reshape(-1)
    n = round(keep * flat.numel())
    out = torch.zeros_like(flat)
    if n > 0:
        idx = flat.abs().topk(n).indices
        out[idx] = flat[idx]
    return out.reshape(z.shape)
