"""Image and field metrics of the experiment chapters: PSNR, SSIM, relative L2.

Explained in the chapter "Inpainting with different token mixers" (PSNR, SSIM) and
"Resolution and PDEs" (relative L2).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["psnr", "ssim", "relative_l2"]


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image (dB): ``10 log10(range^2 / MSE)``, inputs ``[B, C, H, W]``."""
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse.clamp_min(1e-12))


def _gaussian_window(size: int, sigma: float, dtype) -> torch.Tensor:
    t = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity (Wang et al., 2004) per image, ``[B, C, H, W] -> [B]``.

    Gaussian window ``window x window`` with ``sigma``, local means/variances/covariance over
    the window positions that fit inside the image ('valid'), ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2``::

        SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))

    averaged over positions and channels.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"x and y must have the same shape [B, C, H, W], got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"images must be at least window={window} pixels on each side, got {tuple(x.shape[-2:])}")
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    x, y = x.to(dt), y.to(dt)
    C = x.shape[1]
    w = _gaussian_window(window, sigma, dt).to(x.device).expand(C, 1, window, window)

    def filt(t):
        return F.conv2d(t, w, groups=C)

    mx, my = filt(x), filt(y)
    sxx = filt(x * x) - mx * mx
    syy = filt(y * y) - my * my
    sxy = filt(x * y) - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||pred - target|| / ||target||`` per sample."""
    return (pred.float() - target.float()).flatten(1).norm(dim=1) / target.float().flatten(1).norm(dim=1)
