"""Generated scenes for the classification and segmentation miniatures: offline, seeded, fast.

Nothing is downloaded; every image comes from a NumPy generator seeded by ``(seed, split)``.
Used by the trainer's ``classification`` and ``segmentation`` tasks (:mod:`afno_lite.train.tasks`)
for the miniatures of the paper's classification and segmentation experiments.

Classification: :func:`relation_scenes`
---------------------------------------
Each image is a periodic ``size x size`` canvas (default 32) with two identical ``dot x dot``
squares on a noisy background. The class is the *orientation of the line joining the two dots*,
``theta = atan2(dy, dx) mod pi`` cut into ``n_classes`` equal sectors (default 12, 15 degrees
each), where ``(dx, dy)`` is the shortest displacement on the torus. The dots are at least
``min_dist`` pixels apart along some axis (Chebyshev distance on the torus), and
displacements whose angle lies within ``margin`` of a sector edge are never drawn, so the
classes are separated.

Why one patch cannot decide the label: the first dot is uniform on the torus and the second is
the first shifted by the class's displacement, so *each* dot is uniform whatever the class, and
no window of side ``<= min_dist - dot + 1`` (6 pixels by default, which covers a 4x4 patch at any
alignment) touches both dots. What one window shows -- nothing, or one dot at some offset, plus
noise -- has the same distribution for every class: a patch carries no information about the
label. The label lives only in the *relation* between two distant tokens, and that relation is
a displacement: what a learned global convolution (GFN, FNO) or attention can read in one
layer. AFNO's weights are the same at every frequency, so its linear part cannot: without its
nonlinearity it is a channel map plus a fixed transform along the width axis (chapter
"Ablations", section 5). A network without token mixing (mixer ``"identity"``) still pools its tokens at the
end, so its logits are a sum of per-patch terms: the interaction of two patches, which is what
decides the class, is exactly zero for it (``tests/test_label_tasks.py`` checks this). That rules
out a perfect score but not every gain over chance; how far it gets is measured, not assumed.

Why this is a fair miniature of the paper's ImageNet claim: the paper compares token mixers
(AFNO, GFN, FNO, attention) inside the same classification backbone, trained from scratch, by
top-1 accuracy. Here too only the mixer changes, the labels are balanced, there are more than
10 classes, and the task needs information from distant patches, which is the job the paper
gives the mixer. What it cannot test: natural-image statistics, textures, scale and the
ImageNet class hierarchy, transfer from pre-training, the paper's model sizes and training
recipe; a win here says which mixer reads a two-token relation best at this scale, not which
one wins on ImageNet.

Segmentation: :func:`shape_scenes`
----------------------------------
Each image holds 1 to 3 large filled shapes -- disk, square, diamond, triangle -- of *equal
area* for a given size parameter, on a noisy background; they do not overlap. Every pixel is
labelled with the type of the shape that covers it (0 = background). The fill intensity is
drawn independently of the type, so a patch that lies entirely inside a shape shows a flat
fill plus noise whatever the shape: its label is decided only by the shape's outline, which is
one or more patches away. :func:`flat_patch_fraction` measures how many labelled pixels are in
such patches. At 128x128 pixels with 4x4 patches, or 64x64 pixels with 2x2 patches (the
setting of :data:`afno_lite.experiments.SEG_BASE`), the token grid is 32x32 (1,024 tokens).

What it is a miniature of: the paper's high-resolution segmentation, where a per-token head on
a long token sequence labels every pixel and the mixer must carry context across the image;
here a pixel's class is decided by an outline that can be many patches away, and the grid is
large enough for the cost of attention (quadratic in the tokens) to differ from the spectral
mixers'. What it cannot test: real street scenes, class imbalance and thin structures, the
paper's backbone and decoder, pre-training, and resolutions of the paper's size.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ._checks import MixerConfigError, check_choice, check_nonnegative, check_positive_int

__all__ = ["relation_scenes", "relation_displacements", "shape_scenes", "flat_patch_fraction", "SHAPES",
           "SPLITS"]

SPLITS = ("train", "test")
#: Segmentation classes after background (label 0): label ``i + 1`` is ``SHAPES[i]``.
SHAPES = ("disk", "square", "diamond", "triangle")


def _rng(seed, split: str) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MixerConfigError(f"seed must be an integer >= 0, got {seed!r}")
    seed = int(seed)
    check_choice(split, "split", SPLITS)
    return np.random.default_rng([seed, SPLITS.index(split)])


def _check_count(n, name: str = "n") -> int:
    return check_positive_int(n, name)


def relation_displacements(size: int = 32, n_classes: int = 12, min_dist: int = 8,
                           margin: float = 0.2) -> list[np.ndarray]:
    """The displacements ``(dy, dx)`` each class draws from: integer vectors with
    ``|dy|, |dx| < size / 2`` (the shortest displacement on the torus is unique),
    ``max(|dy|, |dx|) >= min_dist``, and an angle ``atan2(dy, dx) mod pi`` in the class's sector
    and at least ``margin`` sectors away from its edges. One ``[k, 2]`` array per class."""
    size, n_classes = check_positive_int(size, "size"), check_positive_int(n_classes, "n_classes")
    min_dist = check_positive_int(min_dist, "min_dist")
    if not 0 <= check_nonnegative(margin, "margin") < 0.5:
        raise MixerConfigError(f"margin must be a fraction of a sector in [0, 0.5), got {margin!r}")
    if n_classes < 2:
        raise MixerConfigError(f"n_classes must be at least 2, got {n_classes}")
    r = np.arange(-((size - 1) // 2), (size - 1) // 2 + 1)
    if size % 2 == 0:
        r = r[np.abs(r) < size // 2]
    dy, dx = (a.ravel() for a in np.meshgrid(r, r, indexing="ij"))
    ok = np.maximum(np.abs(dy), np.abs(dx)) >= min_dist
    sector = np.mod(np.arctan2(dy, dx), np.pi) / (np.pi / n_classes)
    sector = np.where(sector >= n_classes - 1e-9, 0.0, sector)
    frac = sector - np.floor(sector)
    ok &= (frac >= margin) & (frac <= 1 - margin)
    out = [np.stack([dy[ok & (np.floor(sector) == c)], dx[ok & (np.floor(sector) == c)]], 1) for c in range(n_classes)]
    empty = [c for c, a in enumerate(out) if len(a) == 0]
    if empty:
        raise MixerConfigError(f"size={size} is too small for min_dist={min_dist}, n_classes={n_classes} and "
                               f"margin={margin}: classes {empty} have no displacement; enlarge size or lower min_dist")
    return out


def relation_scenes(n: int, size: int = 32, split: str = "train", seed: int = 0, n_classes: int = 12,
                    min_dist: int = 8, dot: int = 3, noise: float = 0.1, margin: float = 0.2,
                    return_positions: bool = False):
    """``(x[n, 1, size, size] float32, y[n] int64)``: two dots whose joining line's orientation is
    the class (see the module docstring). Classes are balanced (``n // n_classes`` or one more
    each, in a shuffled order). With ``return_positions`` also ``p[n, 2, 2]``: the top-left
    pixel ``(row, col)`` of each dot."""
    n, size = _check_count(n), check_positive_int(size, "size")
    dot, min_dist = check_positive_int(dot, "dot"), check_positive_int(min_dist, "min_dist")
    noise = check_nonnegative(noise, "noise")
    if dot >= min_dist:
        raise MixerConfigError(f"dot={dot} must be smaller than min_dist={min_dist}")
    table = relation_displacements(size, n_classes, min_dist, margin)
    rng = _rng(seed, split)
    y = rng.permutation(np.arange(n) % n_classes)
    pick = [rng.integers(0, len(table[c]), n) for c in range(n_classes)]
    d = np.stack([table[c][pick[c][i]] for i, c in enumerate(y)]) if n else np.zeros((0, 2), int)
    d = d * np.where(rng.random(n) < 0.5, 1, -1)[:, None]          # which dot is "first" is random
    p1 = rng.integers(0, size, (n, 2))
    p2 = np.mod(p1 + d, size)
    x = noise * rng.standard_normal((n, size, size)).astype(np.float32) if noise else np.zeros((n, size, size),
                                                                                               np.float32)
    off = np.arange(dot)
    for p in (p1, p2):
        rows = np.mod(p[:, 0, None, None] + off[None, :, None], size)
        cols = np.mod(p[:, 1, None, None] + off[None, None, :], size)
        x[np.arange(n)[:, None, None], rows, cols] += 1.0
    out = (torch.from_numpy(x[:, None]), torch.from_numpy(y.astype(np.int64)))
    if return_positions:
        return (*out, torch.from_numpy(np.stack([p1, p2], 1)))
    return out


# --------------------------------------------------------------------------- segmentation
def _shape_mask(kind: int, yy, xx, cy: float, cx: float, r: float):
    """Pixels of one shape of area ``pi r^2`` centred at ``(cy, cx)``; also its circumradius."""
    dy, dx = yy - cy, xx - cx
    if kind == 0:                                                   # disk
        return dy**2 + dx**2 <= r**2, r
    if kind in (1, 2):                                              # square, diamond (rotated square)
        half = math.sqrt(math.pi) * r / 2
        if kind == 1:
            return np.maximum(np.abs(dy), np.abs(dx)) <= half, half * math.sqrt(2)
        return np.abs(dy) + np.abs(dx) <= half * math.sqrt(2), half * math.sqrt(2)
    a = r * math.sqrt(4 * math.pi / math.sqrt(3))                   # equilateral triangle, apex up
    h = a * math.sqrt(3) / 2
    top = cy - 2 * h / 3
    return (dy <= h / 3) & (np.abs(dx) * math.sqrt(3) <= yy - top), 2 * h / 3


def _place(rng, size: int, k: int, radius, tries: int = 50):
    """Up to ``k`` non-overlapping (kind, cy, cx, r, circumradius) inside the image (2-pixel
    gaps); the type of each shape is drawn first, then up to ``tries`` placements of it."""
    placed = []
    for kind in rng.integers(0, len(SHAPES), k):
        for _ in range(tries):
            r = rng.uniform(*radius) * size
            bound = _shape_mask(int(kind), np.zeros(1), np.zeros(1), 0.0, 0.0, r)[1]
            if 2 * bound + 2 > size:
                continue
            cy, cx = rng.uniform(bound + 1, size - bound - 1, 2)
            if all(math.hypot(cy - q[1], cx - q[2]) > bound + q[4] + 2 for q in placed):
                placed.append((int(kind), cy, cx, r, bound))
                break
    return placed


def shape_scenes(n: int, size: int = 128, split: str = "train", seed: int = 0, max_shapes: int = 3,
                 radius=(0.1, 0.2), noise: float = 0.05, fill=(0.35, 1.0)):
    """``(x[n, 1, size, size] float32, y[n, size, size] int64)``: 1 to ``max_shapes`` filled shapes
    (:data:`SHAPES`, equal area ``pi r^2`` with ``r / size`` uniform in ``radius``; a shape that
    finds no free place in 50 tries is left out, so a very large ``radius`` can leave an image
    empty, the default never does) with fill
    intensities uniform in ``fill`` (independent of the type), Gaussian noise of std ``noise``;
    ``y`` is the type + 1 on shape pixels and 0 elsewhere (see the module docstring)."""
    n, size = _check_count(n), check_positive_int(size, "size")
    max_shapes = check_positive_int(max_shapes, "max_shapes")
    noise = check_nonnegative(noise, "noise")
    for name, pair, hi in (("radius", radius, 0.5), ("fill", fill, math.inf)):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and 0 < pair[0] <= pair[1] < hi):
            raise MixerConfigError(f"{name} must be a pair (low, high) with 0 < low <= high < {hi}, got {pair!r}")
    if size < 16:
        raise MixerConfigError(f"size must be at least 16 pixels, got {size}")
    rng = _rng(seed, split)
    yy, xx = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    x = np.zeros((n, size, size), np.float32)
    y = np.zeros((n, size, size), np.int64)
    for i in range(n):
        k = int(rng.integers(1, max_shapes + 1))
        for kind, cy, cx, r, _ in _place(rng, size, k, radius):
            m = _shape_mask(kind, yy, xx, cy, cx, r)[0]
            x[i][m] = rng.uniform(*fill)
            y[i][m] = kind + 1
    if noise:
        x += noise * rng.standard_normal(x.shape).astype(np.float32)
    return torch.from_numpy(x[:, None]), torch.from_numpy(y)


def flat_patch_fraction(y: torch.Tensor, patch: int = 4) -> float:
    """Fraction of the shape pixels (label > 0) of ``y[n, H, W]`` that lie in a ``patch x patch``
    patch (aligned to the token grid) covered entirely by one label: pixels whose patch shows
    only a flat fill, so that only context beyond the patch can tell the shape."""
    patch = check_positive_int(patch, "patch")
    if not isinstance(y, torch.Tensor) or y.dim() != 3 or y.shape[1] % patch or y.shape[2] % patch:
        raise MixerConfigError(f"y must be a label tensor [n, H, W] with H, W divisible by patch={patch}, "
                               f"got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    n, H, W = y.shape
    t = y.reshape(n, H // patch, patch, W // patch, patch).permute(0, 1, 3, 2, 4).reshape(n, -1, patch * patch)
    flat = (t == t[..., :1]).all(-1) & (t[..., 0] > 0)
    shape_px = int((y > 0).sum())
    return float(flat.sum()) * patch * patch / shape_px if shape_px else 0.0
