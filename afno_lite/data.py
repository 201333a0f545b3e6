"""Offline data: images shipped inside installed packages and generated fields.

Nothing here touches the network: the photographs are matplotlib's own sample
data (installed with matplotlib), the rest is generated from a seed.
Used from chapter "Tokens and mixing" onward.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["IMAGES", "load_image", "synthetic_field"]

# name -> file in matplotlib's mpl-data/sample_data
IMAGES = {
    "grace_hopper": "grace_hopper.jpg",   # 600x512 RGB photograph
    "mri": "s1045.ima.gz",                # 256x256 16-bit MRI slice
    "topography": "jacksboro_fault_dem.npz",  # digital elevation model
}


def _sample_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data"


def _load_raw(name: str) -> np.ndarray:
    path = _sample_dir() / IMAGES[name]
    if not path.exists():
        raise FileNotFoundError(f"sample image {name!r} not found at {path}; is matplotlib fully installed?")
    if name == "grace_hopper":
        import matplotlib.image as mpimg

        return np.asarray(mpimg.imread(path), dtype=np.float32) / 255.0
    if name == "mri":
        with gzip.open(path) as f:
            a = np.frombuffer(f.read(), np.uint16).astype(np.float32).reshape(256, 256)
        return a / a.max()
    with np.load(path) as z:
        a = z["elevation"].astype(np.float32)
    return (a - a.min()) / (a.max() - a.min())


def load_image(name: str = "grace_hopper", size: int | tuple[int, int] | None = 64,
               gray: bool = True) -> torch.Tensor:
    """A shipped image as a float32 tensor in [0, 1]: ``[H, W]`` if ``gray`` else ``[H, W, 3]``.

    ``size`` resizes (area interpolation, after a centre square crop when ``size`` is an int);
    ``None`` keeps the original resolution.
    """
    if name not in IMAGES:
        raise ValueError(f"name must be one of {sorted(IMAGES)}, got {name!r}")
    a = torch.from_numpy(np.ascontiguousarray(_load_raw(name)))
    if a.dim() == 2:
        a = a[..., None]
    if gray:
        a = a[..., :3].mean(-1, keepdim=True) if a.shape[-1] >= 3 else a
    if size is not None:
        if isinstance(size, int):
            if size < 1:
                raise ValueError(f"size must be a positive int or (H, W), got {size!r}")
            H, W = a.shape[:2]
            s = min(H, W)
            a = a[(H - s) // 2:(H - s) // 2 + s, (W - s) // 2:(W - s) // 2 + s]
            size = (size, size)
        t = a.permute(2, 0, 1)[None]
        a = F.interpolate(t, size=tuple(size), mode="area")[0].permute(1, 2, 0)
    a = a.clamp(0, 1).contiguous()
    return a[..., 0] if gray else a


def synthetic_field(H: int = 64, W: int = 64, slope: float = 3.0, seed: int = 0,
                    channels: int | None = None) -> torch.Tensor:
    """A Gaussian random field with power spectrum ``~ |k|^-slope`` (smooth for large slope),
    normalised to zero mean and unit variance. ``[H, W]`` or ``[H, W, channels]``."""
    g = torch.Generator().manual_seed(seed)
    C = channels or 1
    kh = torch.fft.fftfreq(H).view(H, 1) * H
    kw = torch.fft.rfftfreq(W).view(1, -1) * W
    k = torch.sqrt(kh**2 + kw**2)
    amp = torch.where(k > 0, k.clamp_min(1e-9) ** (-slope / 2), torch.zeros_like(k))
    noise = torch.complex(torch.randn(C, H, W // 2 + 1, generator=g), torch.randn(C, H, W // 2 + 1, generator=g))
    f = torch.fft.irfft2(noise * amp, s=(H, W))
    f = (f - f.mean(dim=(-2, -1), keepdim=True)) / f.std(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    f = f.permute(1, 2, 0)
    return f[..., 0] if channels is None else f.contiguous()
