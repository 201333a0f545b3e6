"""A small pseudo-spectral solver for 2-D incompressible Navier-Stokes in vorticity form.

Explained and used in chapter "Resolution and PDEs" (the operator-learning task
``omega(t=0) -> omega(t=T)`` on which FNO and AFNO are trained at 32x32 and
evaluated zero-shot at 64x64).

The equations, on the periodic unit square ``[0, 1)^2``::

    d_t w + u . grad w = nu * lap w + f,      div u = 0,
    u = (d_y psi, -d_x psi),                  -lap psi = w,

with the forcing of the FNO benchmark (Li et al., 2021),
``f(x, y) = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))``.

Numerics
--------
* Fourier pseudo-spectral in space: derivatives are multiplications by ``i k``, the
  product ``u . grad w`` is formed on the grid and de-aliased with the 2/3 rule; the state
  (and the forcing) are kept in the same 2/3 band, so the scheme is a Galerkin truncation:
  without viscosity and forcing it conserves energy and enstrophy up to the time-stepping
  error (tested). :func:`advection` is the right-hand side's nonlinear term, and the
  velocity it uses is the one :func:`velocity` returns (one implementation).
* Integrating-factor Runge-Kutta 4 in time: the viscous term is integrated exactly
  (``exp(-nu |k|^2 dt)``), RK4 handles advection and forcing. A single Fourier mode
  without forcing is then an exact solution of the scheme: its energy decays as
  ``exp(-2 nu |k|^2 t)`` to rounding error (tested).

Arrays are ``[..., N, N]`` with axis ``-2`` = ``x`` and axis ``-1`` = ``y``
(``w[..., i, j] = w(x_i, y_j)``, ``x_i = i / N``).
"""
from __future__ import annotations

import functools
import math

import torch

from ._checks import (
    MixerConfigError,
    check_finite,
    check_int,
    check_nonnegative,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_tensor,
)

__all__ = [
    "grid_coordinates", "wavenumbers", "kolmogorov_forcing", "gaussian_random_field",
    "stream_function", "velocity", "advection", "divergence", "curl", "kinetic_energy",
    "navier_stokes", "navier_stokes_pairs", "subsample",
]

TWO_PI = 2.0 * math.pi


def _check_grid_size(N, name: str = "N") -> int:
    if isinstance(N, bool) or not isinstance(N, int) or N < 4 or N % 2:
        raise MixerConfigError(f"{name} must be an even integer >= 4, got {N!r}")
    return N


def _check_field(w: torch.Tensor, name: str = "w") -> int:
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        raise TypeError(f"{name} must be a real floating-point torch.Tensor [..., N, N]")
    if w.dim() < 2 or w.shape[-1] != w.shape[-2]:
        raise MixerConfigError(f"{name} must have a square grid in its last two dimensions [..., N, N], "
                         f"got shape {tuple(w.shape)}")
    return _check_grid_size(w.shape[-1], f"{name}.shape[-1]")


def grid_coordinates(N: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid points ``x_i = i/N`` as ``[N, 1]`` and ``y_j = j/N`` as ``[1, N]``."""
    N = _check_grid_size(N)
    t = torch.arange(N, dtype=dtype) / N
    return t.view(N, 1), t.view(1, N)


def wavenumbers(N: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Angular wavenumbers ``2 pi k`` of the rfft2 half-plane: ``kx [N, 1]``, ``ky [1, N//2+1]``."""
    N = _check_grid_size(N)
    kx = TWO_PI * torch.fft.fftfreq(N, d=1.0 / N).to(dtype).view(N, 1)
    ky = TWO_PI * torch.fft.rfftfreq(N, d=1.0 / N).to(dtype).view(1, N // 2 + 1)
    return kx, ky


def _dealias_mask(N: int) -> torch.Tensor:
    """2/3 rule on the rfft half-plane: keep integer ``|k_x|, k_y < N/3``."""
    k = torch.fft.fftfreq(N, d=1.0 / N).abs().view(N, 1)
    ky = torch.fft.rfftfreq(N, d=1.0 / N).view(1, -1)
    return (k < N / 3) & (ky < N / 3)


def kolmogorov_forcing(N: int, amplitude: float = 0.1, dtype=torch.float64) -> torch.Tensor:
    """``f(x, y) = amplitude * (sin 2 pi (x+y) + cos 2 pi (x+y))`` on the ``N x N`` grid."""
    x, y = grid_coordinates(N, dtype)
    check_finite(amplitude, "amplitude")
    return amplitude * (torch.sin(TWO_PI * (x + y)) + torch.cos(TWO_PI * (x + y)))


def gaussian_random_field(n: int, N: int, alpha: float = 2.5, tau: float = 7.0, seed: int = 0,
                          std: float | None = 1.0, dtype=torch.float64) -> torch.Tensor:
    """``n`` samples of the FNO benchmark's initial vorticity, a Gaussian random field with
    covariance ``tau^(2 alpha - 2) (-lap + tau^2)^(-alpha)`` (zero mean), shape ``[n, N, N]``.

    Samples for the same ``seed`` are nested across grids: the random coefficients are drawn
    on a 256x256 spectrum and the modes that fit the ``N x N`` grid are kept, so a 32x32 field
    is the band-limited restriction of the 64x64 one with the same seed (with ``std=None``).

    ``std``: rescale each sample to this standard deviation (``None`` keeps the raw covariance,
    whose samples have a standard deviation near 0.2; ``1.0`` makes advection matter).
    """
    if std is not None and (isinstance(std, bool) or not isinstance(std, (int, float)) or not std > 0):
        raise MixerConfigError(f"std must be a positive number or None, got {std!r}")
    check_positive_int(n, "n")
    check_positive(alpha, "alpha")
    check_positive(tau, "tau")
    check_int(seed, "seed")
    N = _check_grid_size(N)
    M = 256
    if N > M:
        raise MixerConfigError(f"N must be <= {M}, got {N}")
    g = torch.Generator().manual_seed(seed)
    coef = torch.complex(torch.randn(n, M, M, generator=g, dtype=dtype),
                         torch.randn(n, M, M, generator=g, dtype=dtype)) / math.sqrt(2.0)
    # keep the modes |k_x| < N/2 and |k_y| < N/2 of the big spectrum, in fft order
    idx = torch.cat([torch.arange(0, N // 2), torch.arange(M - N // 2 + 1, M)])
    c = coef[:, idx][:, :, idx]                                   # [n, N-1, N-1]
    full = torch.zeros(n, N, N, dtype=c.dtype)
    rows = torch.cat([torch.arange(0, N // 2), torch.arange(N // 2 + 1, N)])
    full[:, rows[:, None], rows[None, :]] = c
    kx = TWO_PI * torch.fft.fftfreq(N, d=1.0 / N).to(dtype)
    k2 = kx.view(N, 1) ** 2 + kx.view(1, N) ** 2
    sigma = tau ** (0.5 * (2 * alpha - 2))
    amp = sigma * (k2 + tau**2) ** (-alpha / 2)
    amp[0, 0] = 0.0
    # real field = real part of the inverse FFT of the Hermitian-free coefficients (times sqrt 2)
    w = torch.fft.ifft2(full * amp * N * N).real * math.sqrt(2.0)
    if std is not None:
        w = w * (std / w.std(dim=(-2, -1), keepdim=True))
    return w


def stream_function(w: torch.Tensor) -> torch.Tensor:
    """``psi`` with ``-lap psi = w`` (zero mean) on the periodic unit square."""
    N = _check_field(w)
    kx, ky = wavenumbers(N, torch.float64)
    k2 = kx**2 + ky**2
    k2[0, 0] = 1.0
    W = torch.fft.rfft2(w.double())
    P = W / k2
    P[..., 0, 0] = 0.0
    return torch.fft.irfft2(P, s=(N, N)).to(w.dtype)


@functools.lru_cache(maxsize=8)
def _operators(N: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``kx [N, 1]``, ``ky [1, N//2+1]``, ``1/|k|^2`` (0 at ``k = 0``) and the 2/3 mask (read-only)."""
    kx, ky = wavenumbers(N, torch.float64)
    k2 = kx**2 + ky**2
    k2_inv = 1.0 / torch.where(k2 == 0, torch.ones_like(k2), k2)
    k2_inv[0, 0] = 0.0
    return kx, ky, k2_inv, _dealias_mask(N)


def _velocity_from_spectrum(Wh: torch.Tensor, N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u, v) = (d_y psi, -d_x psi)`` on the grid from the rfft2 ``Wh`` of the vorticity:
    the one implementation behind :func:`velocity` and the solver's right-hand side."""
    kx, ky, k2_inv, _ = _operators(N)
    P = Wh * k2_inv                                   # psi_hat = w_hat / |k|^2
    return torch.fft.irfft2(1j * ky * P, s=(N, N)), torch.fft.irfft2(-1j * kx * P, s=(N, N))


def _advection_spectrum(Wh: torch.Tensor, N: int, dealias: bool = True) -> torch.Tensor:
    """rfft2 of ``u . grad w`` for the vorticity spectrum ``Wh`` (2/3-rule de-aliased)."""
    kx, ky, _, mask = _operators(N)
    u, v = _velocity_from_spectrum(Wh, N)
    wx = torch.fft.irfft2(1j * kx * Wh, s=(N, N))
    wy = torch.fft.irfft2(1j * ky * Wh, s=(N, N))
    adv = torch.fft.rfft2(u * wx + v * wy)
    return adv * mask if dealias else adv


def velocity(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Divergence-free velocity ``(u, v) = (d_y psi, -d_x psi)`` of the vorticity ``w``."""
    N = _check_field(w)
    u, v = _velocity_from_spectrum(torch.fft.rfft2(w.double()), N)
    return u.to(w.dtype), v.to(w.dtype)


def advection(w: torch.Tensor, dealias: bool = True) -> torch.Tensor:
    """The nonlinear term ``u . grad w`` of the vorticity equation, exactly as the solver's
    right-hand side computes it (pseudo-spectral product, 2/3-rule de-aliased by default)."""
    N = _check_field(w)
    return torch.fft.irfft2(_advection_spectrum(torch.fft.rfft2(w.double()), N, dealias), s=(N, N)).to(w.dtype)


def _spectral_derivative(f: torch.Tensor, axis: str) -> torch.Tensor:
    N = _check_field(f, "field")
    kx, ky = wavenumbers(N, torch.float64)
    F = torch.fft.rfft2(f.double())
    k = kx if axis == "x" else ky
    return torch.fft.irfft2(1j * k * F, s=(N, N)).to(f.dtype)


def _check_pair(u, v) -> None:
    check_tensor(u, "u")
    check_tensor(v, "v")
    if u.shape != v.shape:
        raise MixerConfigError(f"u and v must have the same shape, got {tuple(u.shape)} and "
                               f"{tuple(v.shape)}")


def divergence(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Spectral ``d_x u + d_y v``."""
    _check_pair(u, v)
    return _spectral_derivative(u, "x") + _spectral_derivative(v, "y")


def curl(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Spectral ``d_x v - d_y u`` (the vorticity of ``(u, v)``)."""
    _check_pair(u, v)
    return _spectral_derivative(v, "x") - _spectral_derivative(u, "y")


def kinetic_energy(w: torch.Tensor) -> torch.Tensor:
    """``0.5 * mean(u^2 + v^2)`` over the unit square (one value per field)."""
    u, v = velocity(w)
    return 0.5 * (u.double() ** 2 + v.double() ** 2).mean(dim=(-2, -1))


def navier_stokes(w0: torch.Tensor, T: float, nu: float = 1e-3, dt: float = 1e-2,
                  forcing: torch.Tensor | str | None = "kolmogorov", record: int = 0,
                  dealias: bool = True, progress: bool | str = False) -> torch.Tensor:
    """Integrate the vorticity equation from ``w0 [..., N, N]`` to time ``T``.

    ``forcing``: ``"kolmogorov"`` (the FNO benchmark's ``f``), ``None`` or a tensor ``[N, N]``.
    ``record > 0`` returns ``record`` equally spaced snapshots ``[..., record, N, N]`` at
    ``t = T/record, 2T/record, ..., T`` instead of the final field.
    The computation runs in float64; the result has the dtype of ``w0``.
    ``progress``: ``True`` or a label shows a progress bar over the time steps on stderr.
    """
    N = _check_field(w0, "w0")
    if not torch.isfinite(w0).all():
        raise MixerConfigError("w0 contains NaN or Inf values; the solver needs a finite field")
    for name, val in (("T", T), ("dt", dt)):
        check_positive(val, name)
    check_nonnegative(nu, "nu")                         # nu = 0: inviscid (Euler)
    check_nonnegative_int(record, "record")
    if not isinstance(progress, (bool, str)):
        raise MixerConfigError(f"progress must be True, False or a label (str), got {progress!r}")
    n_chunks = max(record, 1)
    steps_per_chunk = max(1, math.ceil(T / n_chunks / dt))
    h = T / n_chunks / steps_per_chunk                  # exact landing on every snapshot time

    kx, ky, _, band = _operators(N)
    k2 = kx**2 + ky**2
    E = torch.exp(-nu * k2 * h / 2)
    E2 = E * E
    mask = band if dealias else torch.ones(N, N // 2 + 1, dtype=torch.bool)

    if isinstance(forcing, str):
        if forcing != "kolmogorov":
            raise MixerConfigError(f"forcing must be 'kolmogorov', None or a tensor [N, N], got {forcing!r}")
        forcing = kolmogorov_forcing(N)
    if forcing is None:
        Fh = torch.zeros(N, N // 2 + 1, dtype=torch.complex128)
    else:
        if not isinstance(forcing, torch.Tensor) or forcing.shape != (N, N):
            raise MixerConfigError(f"forcing tensor must have shape ({N}, {N})")
        Fh = torch.fft.rfft2(forcing.double()) * mask

    def rhs(Wh: torch.Tensor) -> torch.Tensor:
        """h * (-(u . grad w) + f) in spectral space, de-aliased."""
        return h * (Fh - _advection_spectrum(Wh, N, dealias))

    Wh = torch.fft.rfft2(w0.double()) * mask          # the state lives in the 2/3 band
    out = []
    bar = _steps_bar(n_chunks * steps_per_chunk, progress)
    for _ in range(n_chunks):
        for _ in range(steps_per_chunk):
            bar.update()
            a = rhs(Wh)
            b = rhs(E * (Wh + a / 2))
            c = rhs(E * Wh + b / 2)
            d = rhs(E2 * Wh + E * c)
            Wh = E2 * Wh + (E2 * a + 2 * E * (b + c) + d) / 6
        out.append(torch.fft.irfft2(Wh, s=(N, N)))
    bar.close()
    if record:
        return torch.stack(out, dim=-3).to(w0.dtype)
    return out[-1].to(w0.dtype)


def _steps_bar(total: int, progress: bool | str):
    """A tqdm bar over the solver's time steps (disabled unless ``progress``)."""
    import sys

    from tqdm import tqdm

    label = progress if isinstance(progress, str) else "Navier-Stokes steps"
    return tqdm(total=total, desc=label, unit="step", disable=not progress, leave=False,
                mininterval=1.0, file=sys.stderr)


def subsample(w: torch.Tensor, factor: int) -> torch.Tensor:
    """Every ``factor``-th grid point in both directions (the coarse grid is a subset of the fine one)."""
    check_positive_int(factor, "factor")
    check_tensor(w, "w")
    if w.shape[-1] % factor or w.shape[-2] % factor:
        raise MixerConfigError(f"grid {tuple(w.shape[-2:])} is not divisible by factor={factor}")
    return w[..., ::factor, ::factor]


def navier_stokes_pairs(n: int, grids=(32, 64), T: float = 1.0, nu: float = 1e-3, dt: float = 2e-2,
                        seed: int = 0, fine: int = 64, dtype=torch.float32,
                        progress: bool | str = False) -> dict:
    """Input/output pairs ``(w(0), w(T))`` for the operator-learning task.

    Solved once on the ``fine`` grid and **subsampled** to every grid in ``grids`` (each must
    divide ``fine``), so the 32x32 pair is exactly the 64x64 pair at every other point.
    Returns ``{N: (x [n, 1, N, N], y [n, 1, N, N])}``.
    The default ``dt = 0.02`` changes ``w(T)`` by about 2e-7 (relative) against ``dt = 0.01``.
    ``progress`` (``True`` or a label) shows the solver's progress bar.
    """
    fine = _check_grid_size(fine, "fine")
    if isinstance(grids, (str, bytes)) or not hasattr(grids, "__iter__") or not tuple(grids):
        raise MixerConfigError(f"grids must be a non-empty sequence of grid sizes, got {grids!r}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise MixerConfigError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    grids = tuple(grids)
    for G in grids:
        _check_grid_size(G, "grids[i]")
        if fine % G:
            raise MixerConfigError(f"every grid must divide fine={fine}, got {G}")
    w0 = gaussian_random_field(n, fine, seed=seed)
    wT = navier_stokes(w0, T=T, nu=nu, dt=dt, progress=progress)
    out = {}
    for G in grids:
        f = fine // G
        out[G] = (subsample(w0, f)[:, None].to(dtype).contiguous(), subsample(wT, f)[:, None].to(dtype).contiguous())
    return out
