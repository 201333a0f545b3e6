"""Metrics of the experiment chapters: PSNR, SSIM, relative L2; top-1 accuracy; the confusion
matrix and mean intersection-over-union (mIoU) of a segmentation.

Explained in the chapters "Inpainting with different token mixers" (PSNR, SSIM), "Resolution
and PDEs" (relative L2) and "Classification and segmentation" (top-1, mIoU).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import _is_int

__all__ = ["psnr", "ssim", "relative_l2", "top1", "confusion_matrix", "iou_per_class", "miou"]


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """A metric compares two batches sample by sample: never broadcast one over the other."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape [B, ...], got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    if a.dim() < 2:
        raise ValueError(f"{name_a} and {name_b} must be batches [B, ...] of at least 2 dimensions, got shape "
                         f"{tuple(a.shape)}")


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image (dB): ``10 log10(range^2 / MSE)``, inputs ``[B, C, H, W]``
    of the same shape (the MSE is floored at 1e-12: identical images score ``10 log10(range^2 / 1e-12)``,
    120 dB for ``range=1``, not infinity)."""
    _check_same_shape(pred, target, "pred", "target")
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
    if not _is_int(window) or window < 1:
        raise ValueError(f"window must be a positive integer (the side of the Gaussian window), got {window!r}")
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
    """``||pred - target|| / ||target||`` per sample (``pred`` and ``target`` of the same shape ``[B, ...]``)."""
    _check_same_shape(pred, target, "pred", "target")
    return (pred.float() - target.float()).flatten(1).norm(dim=1) / target.float().flatten(1).norm(dim=1)


def top1(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1.0 where the largest logit is the target class, else 0.0, per sample: ``logits[B, K]``,
    ``target[B]`` (class indices) -> ``[B]`` (ties go to the lowest class index)."""
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"logits must be [B, K] and target [B], got {tuple(logits.shape)} and {tuple(target.shape)}")
    return (logits.argmax(1) == target).float()


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``C[t, p]``: number of pixels of class ``t`` predicted as ``p`` (int64), for label maps
    ``pred`` and ``target`` of the same shape with values in ``[0, num_classes)``."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    p, t = pred.reshape(-1).long(), target.reshape(-1).long()
    for name, v in (("pred", p), ("target", t)):
        if v.numel() and (int(v.min()) < 0 or int(v.max()) >= num_classes):
            raise ValueError(f"{name} has labels outside [0, {num_classes})")
    return torch.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes).cpu()


def iou_per_class(conf: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every class, ``C[k, k] / (row_k + col_k - C[k, k])``; NaN for a
    class absent from both the targets and the predictions (its union is empty)."""
    conf = conf.double()
    inter = conf.diagonal()
    union = conf.sum(0) + conf.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, float("nan")))


def miou(conf: torch.Tensor) -> float:
    """Mean IoU over the classes present in the targets or the predictions (NaN entries of
    :func:`iou_per_class` are left out; a class predicted but never present counts as 0)."""
    iou = iou_per_class(conf)
    present = ~torch.isnan(iou)
    if not present.any():
        raise ValueError("the confusion matrix is empty: no pixel to score")
    return float(iou[present].mean())
