"""Offline data: images shipped inside installed packages and generated fields.

Nothing here touches the network: the photographs are matplotlib's own sample
data (installed with matplotlib), the rest is generated from a seed.
Used from chapter "Tokens and mixing" onward; the training data (image crops, masked
patches, Navier-Stokes pairs from :mod:`afno_lite.pde`) from chapter "Inpainting" on.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ._checks import (
    MixerConfigError,
    check_finite,
    check_fraction_open,
    check_grid,
    check_int,
    check_positive_int,
)

__all__ = ["IMAGES", "load_image", "synthetic_field", "image_crops", "patch_mask", "inpainting_data", "pde_data"]

# name -> file in matplotlib's mpl-data/sample_data
IMAGES = {
    "grace_hopper": "grace_hopper.jpg",   # RGB photograph, 600 rows x 512 columns
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
    if not isinstance(name, str) or name not in IMAGES:
        raise MixerConfigError(f"name must be one of {sorted(IMAGES)}, got {name!r}")
    if size is not None and not isinstance(size, (tuple, list)):
        size = check_positive_int(size, "size", "a positive int, a pair (H, W) of them or None")
    elif size is not None:
        size = check_grid(size, "size")
    a = torch.from_numpy(np.ascontiguousarray(_load_raw(name)))
    if a.dim() == 2:
        a = a[..., None]
    if gray:
        a = a[..., :3].mean(-1, keepdim=True) if a.shape[-1] >= 3 else a
    if size is not None:
        if isinstance(size, int):
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
    normalised to zero mean and unit variance. ``[H, W]`` or ``[H, W, channels]``.

    Not quite isotropic: the noise is drawn on the half-spectrum, and on its self-conjugate
    columns (``k_W = 0``, and ``k_W = W/2`` for even ``W``) the inverse real FFT keeps only
    its Hermitian part, so the modes there carry half the power of the other modes of the
    same ``|k|``. The procedural training crops (:func:`image_crops`) and the shipped results
    were made with this field, so it is kept as it is."""
    H, W = check_positive_int(H, "H"), check_positive_int(W, "W")
    if H * W < 2:
        raise MixerConfigError(f"a field needs at least 2 grid points to normalise, got {H}x{W}")
    check_finite(slope, "slope")
    C = 1 if channels is None else check_positive_int(channels, "channels",
                                                       "a positive integer or None")
    g = torch.Generator().manual_seed(check_int(seed, "seed"))
    kh = torch.fft.fftfreq(H).view(H, 1) * H
    kw = torch.fft.rfftfreq(W).view(1, -1) * W
    k = torch.sqrt(kh**2 + kw**2)
    amp = torch.where(k > 0, k.clamp_min(1e-9) ** (-slope / 2), torch.zeros_like(k))
    noise = torch.complex(torch.randn(C, H, W // 2 + 1, generator=g), torch.randn(C, H, W // 2 + 1, generator=g))
    f = torch.fft.irfft2(noise * amp, s=(H, W))
    f = (f - f.mean(dim=(-2, -1), keepdim=True)) / f.std(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    f = f.permute(1, 2, 0)
    return f[..., 0] if channels is None else f.contiguous()


# --------------------------------------------------------------------------- training data
# Used by the trainer (afno_lite.train) and the chapters "Inpainting", "Ablations" and
# "Resolution and PDEs". Everything is generated from a seed; nothing is downloaded.

#: Test crops come from this vertical band of every image (fractions of its width); train crops
#: from the parts left and right of it. At one zoom the two never overlap; across the default
#: zooms (1, 2, 4) the band's edges, rounded on each zoom's grid, differ by at most 2 columns of
#: the full image, which a train crop at one zoom and a test crop at another can share. The band
#: sits right of centre, where all three images have structure (their right edges are mostly
#: background).
TEST_BAND = (0.55, 0.8)
#: Crops whose standard deviation is below this (flat background, e.g. around the MRI slice) are redrawn.
MIN_CROP_STD = 0.02


def _check_count(value, name: str) -> int:
    return check_positive_int(value, name)


def _as_tuple(values):
    """A non-string iterable as a tuple; anything else unchanged (for the error message)."""
    if hasattr(values, "__iter__") and not isinstance(values, (str, bytes)):
        return tuple(values)
    return values


_PYRAMID: dict = {}


def _downsampled(name: str, scale: int) -> torch.Tensor:
    """Grayscale image ``name`` at full resolution divided by ``scale`` (area average), cached."""
    key = (name, scale)
    if key not in _PYRAMID:
        a = load_image(name, size=None, gray=True)
        if scale > 1:
            a = F.avg_pool2d(a[None, None], scale)[0, 0]
        _PYRAMID[key] = a.contiguous()
    return _PYRAMID[key]


def _split_regions(img: torch.Tensor, split: str) -> list[torch.Tensor]:
    W = img.shape[1]
    a, b = int(round(W * TEST_BAND[0])), int(round(W * TEST_BAND[1]))
    return [img[:, a:b]] if split == "test" else [img[:, :a], img[:, b:]]


def image_crops(n: int, size: int = 32, split: str = "train", seed: int = 0,
                names=tuple(IMAGES), scales=(1, 2, 4), flips: bool = True,
                procedural: float = 0.0) -> torch.Tensor:
    """``n`` random grayscale crops ``[n, 1, size, size]`` in [0, 1] from the shipped images.

    Each crop picks an image from ``names``, a zoom from ``scales`` (the image is area-averaged
    by that factor first, so crops see structure at several scales), a random position and,
    with ``flips``, random horizontal/vertical flips. Train and test crops come from disjoint
    regions of each zoom (across zooms up to 2 full-image columns at the band's edges, see
    ``TEST_BAND``): the vertical band ``TEST_BAND`` of every image is reserved for ``split="test"``.
    Crops flatter than ``MIN_CROP_STD`` (background) are redrawn (at most 100 draws each; the
    last draw is kept).
    A fraction ``procedural`` of the crops are instead random fields
    (:func:`synthetic_field`, spectral slope drawn in [1.5, 4], mapped to [0, 1]).
    """
    n = _check_count(n, "n")
    size = _check_count(size, "size")
    if split not in ("train", "test"):
        raise MixerConfigError(f"split must be 'train' or 'test', got {split!r}")
    seed = check_int(seed, "seed")
    names, scales = _as_tuple(names), _as_tuple(scales)
    if not isinstance(names, tuple) or not names or any(not isinstance(nm, str) or nm not in IMAGES
                                                        for nm in names):
        raise MixerConfigError(f"names must be a non-empty sequence of names from "
                               f"{sorted(IMAGES)}, got {names!r}")
    if not isinstance(scales, tuple) or not scales or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in scales):
        raise MixerConfigError(f"scales must be a non-empty sequence of positive integers, got {scales!r}")
    if isinstance(procedural, bool) or not isinstance(procedural, (int, float)) or not 0 <= procedural <= 1:
        raise MixerConfigError(f"procedural must be a fraction in [0, 1], got {procedural!r}")
    sources = []
    for nm in names:
        for s in scales:
            for region in _split_regions(_downsampled(nm, s), split):
                if region.shape[0] >= size and region.shape[1] >= size:
                    sources.append(region)
    if not sources and procedural < 1:
        raise MixerConfigError(f"no image region of the {split!r} split is at least {size}x{size} pixels "
                         f"at scales {tuple(scales)}; use smaller crops or smaller scales")
    g = torch.Generator().manual_seed(seed * 2 + (0 if split == "train" else 1))
    out = torch.empty(n, 1, size, size)
    n_proc = int(round(procedural * n))
    kinds = torch.zeros(n, dtype=torch.bool)
    kinds[torch.randperm(n, generator=g)[:n_proc]] = True
    for i in range(n):
        if kinds[i]:
            slope = 1.5 + 2.5 * float(torch.rand((), generator=g))
            f = synthetic_field(size, size, slope=slope, seed=int(torch.randint(0, 2**31 - 1, (), generator=g)))
            crop = (f - f.min()) / (f.max() - f.min()).clamp_min(1e-12)
        else:
            for _ in range(100):
                src = sources[int(torch.randint(len(sources), (), generator=g))]
                H, W = src.shape
                r = int(torch.randint(H - size + 1, (), generator=g))
                c = int(torch.randint(W - size + 1, (), generator=g))
                crop = src[r:r + size, c:c + size]
                if float(crop.std()) >= MIN_CROP_STD:
                    break
            if flips and bool(torch.rand((), generator=g) < 0.5):
                crop = crop.flip(1)
            if flips and bool(torch.rand((), generator=g) < 0.5):
                crop = crop.flip(0)
        out[i, 0] = crop
    return out


def patch_mask(n: int, size: int = 32, patch: int = 4, ratio: float = 0.5, seed: int = 0) -> torch.Tensor:
    """Masks ``[n, 1, size, size]`` (1 = missing pixel) hiding exactly ``round(ratio * P)`` of the
    ``P = (size/patch)^2`` non-overlapping ``patch x patch`` squares of every image (clipped to
    ``[1, P - 1]``: at least one square hidden and one shown), chosen at random (MAE-style random
    patch masking)."""
    n = _check_count(n, "n")
    size = _check_count(size, "size")
    patch = _check_count(patch, "patch")
    if size % patch or size == patch:
        raise MixerConfigError(f"size={size} must be divisible by patch={patch} into at least "
                               f"2 squares per side")
    check_fraction_open(ratio, "ratio")
    g = torch.Generator().manual_seed(check_int(seed, "seed"))
    h = size // patch
    P = h * h
    k = max(1, min(P - 1, int(round(ratio * P))))
    order = torch.rand(n, P, generator=g).argsort(dim=1)
    m = torch.zeros(n, P)
    m.scatter_(1, order[:, :k], 1.0)
    m = m.view(n, 1, h, h)
    return m.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)


def inpainting_data(n: int, size: int = 32, patch: int = 4, ratio: float = 0.5, split: str = "train",
                    seed: int = 0, **crop_kw) -> dict:
    """Masked-patch inpainting examples: ``{"x": [n, 2, S, S], "target": [n, 1, S, S], "mask": [n, 1, S, S]}``.

    ``x`` stacks the image with its missing pixels set to 0 and the mask itself (1 = missing),
    so a model knows which pixels to fill. ``crop_kw`` goes to :func:`image_crops`.
    """
    target = image_crops(n, size, split=split, seed=seed, **crop_kw)
    mask = patch_mask(n, size, patch, ratio, seed=seed * 2 + (0 if split == "train" else 1) + 7919)
    x = torch.cat([target * (1 - mask), mask], dim=1)
    return {"x": x, "target": target, "mask": mask}


def pde_data(n: int, grids=(32, 64), T: float = 1.0, nu: float = 1e-3, seed: int = 0, **kw) -> dict:
    """Navier-Stokes pairs ``{N: (w(0) [n,1,N,N], w(T) [n,1,N,N])}`` solved on the ``fine`` grid
    (default 64x64) and subsampled (see :func:`afno_lite.pde.navier_stokes_pairs`)."""
    from .pde import navier_stokes_pairs

    return navier_stokes_pairs(_check_count(n, "n"), grids=grids, T=T, nu=nu, seed=seed, **kw)
