"""The generated scenes of the classification and segmentation miniatures (afno_lite.scenes):
determinism, labels re-derived independently, the property that one patch cannot decide the
label, speed, and clear errors."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from afno_lite import MixerConfigError, scenes
from afno_lite.scenes import flat_patch_fraction, relation_displacements, relation_scenes, shape_scenes


def _chi2(table: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square statistic of a contingency table (rows x columns, empty columns
    dropped) and a limit it exceeds with probability ~3e-6 under independence (the
    Wilson-Hilferty approximation of the chi-square quantile at z = 4.5)."""
    table = table[:, table.sum(0) > 0]
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    dof = (table.shape[0] - 1) * (table.shape[1] - 1)
    a = 2 / (9 * dof)
    return float(((table - expected) ** 2 / expected).sum()), dof * (1 - a + 4.5 * math.sqrt(a)) ** 3


# --------------------------------------------------------------------------- classification
def test_relation_scenes_are_deterministic_per_seed_and_split():
    a, b = relation_scenes(64, seed=3), relation_scenes(64, seed=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(relation_scenes(64, seed=4)[0], a[0])
    assert not torch.equal(relation_scenes(64, seed=3, split="test")[0], a[0])
    x, y = a
    assert x.shape == (64, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_relation_labels_are_the_orientation_of_the_line_between_the_dots():
    """Re-derive every label from the dot positions: shortest displacement on the torus, its
    angle modulo pi, the 15-degree sector; classes balanced; both dots drawn."""
    n, size = 600, 32
    x, y, p = relation_scenes(n, size, noise=0.0, return_positions=True)
    d = np.mod((p[:, 1] - p[:, 0]).numpy() + size // 2, size) - size // 2      # in [-16, 16)
    assert (np.abs(d) < size // 2).all()
    theta = np.degrees(np.mod(np.arctan2(d[:, 0], d[:, 1]), np.pi))
    np.testing.assert_array_equal(np.floor(theta / 15).astype(int) % 12, y.numpy())
    frac = theta / 15 - np.floor(theta / 15)
    assert ((frac >= 0.2) & (frac <= 0.8)).all()                               # away from sector edges
    assert (np.abs(d).max(1) >= 8).all()                                        # min_dist, Chebyshev
    counts = torch.bincount(y, minlength=12)
    assert counts.min() == counts.max() == n // 12
    assert torch.equal(x.sum((1, 2, 3)), torch.full((n,), 18.0))               # two 3x3 dots of value 1
    assert set(x.unique().tolist()) == {0.0, 1.0}


def test_one_patch_carries_no_information_about_the_label():
    """No 7x7 window touches both dots (so no 4x4 patch does), and what a patch shows is
    independent of the class: for every patch of the 8x8 token grid, whether it shows a dot
    (chi-square test of independence with the class); over all patches, where in the patch the
    dot's pixels start. The same test on the relative position of the two dots' patches finds
    the label, so the test can see a dependence when there is one."""
    n, size, patch, dot = 6000, 32, 4, 2
    x, y, p = relation_scenes(n, size, noise=0.0, dot=dot, return_positions=True)
    d = np.mod((p[:, 1] - p[:, 0]).numpy() + size // 2, size) - size // 2
    span = np.abs(d).max(1) - dot + 2        # the smallest window side that touches both dots
    assert (span > 7).all()
    tiles = x[:, 0].numpy().reshape(n, size // patch, patch, size // patch, patch).transpose(0, 1, 3, 2, 4)
    tiles = tiles.reshape(n, -1, patch * patch)
    offsets = np.zeros((12, patch * patch + 1))
    for k in range(tiles.shape[1]):
        t = tiles[:, k]
        seen = t.any(1)
        stat, limit = _chi2(np.stack([np.bincount(y.numpy()[seen], minlength=12),
                                      np.bincount(y.numpy()[~seen], minlength=12)], 1))
        assert stat < limit, (k, stat, limit)
        np.add.at(offsets, (y.numpy(), np.where(seen, t.argmax(1) + 1, 0)), 1)
    stat, limit = _chi2(offsets[:, 1:])
    assert stat < limit, (stat, limit)
    cell = (p // patch).numpy()
    rel = np.mod(cell[:, 1] - cell[:, 0], size // patch)
    pairs = np.zeros((12, (size // patch) ** 2))
    np.add.at(pairs, (y.numpy(), rel[:, 0] * (size // patch) + rel[:, 1]), 1)
    stat, limit = _chi2(pairs)
    assert stat > 10 * limit, (stat, limit)


def test_relation_displacement_table_covers_every_class():
    table = relation_displacements(32)
    assert len(table) == 12 and min(len(t) for t in table) >= 20
    with pytest.raises(MixerConfigError, match="size=16 is too small"):
        relation_displacements(16)


def test_relation_scenes_are_fast():
    t0 = time.perf_counter()
    x, y = relation_scenes(5000, 32)
    assert time.perf_counter() - t0 < 3.0 and x.shape[0] == 5000


@pytest.mark.parametrize("kw, match", [
    (dict(n=0), "n must be a positive integer"),
    (dict(n=4, split="val"), "split must be one of"),
    (dict(n=4, seed=-1), "seed must be an integer >= 0"),
    (dict(n=4, noise=-0.1), "noise must be a finite number >= 0"),
    (dict(n=4, dot=8), "dot=8 must be smaller than min_dist=8"),
    (dict(n=4, min_dist=0), "min_dist must be a positive integer, got 0"),
    (dict(n=4, min_dist=-3), "min_dist must be a positive integer, got -3"),
    (dict(n=4, n_classes=1), "n_classes must be at least 2"),
    (dict(n=4, margin=0.5), "margin must be"),
    (dict(n=4, size=12), "too small"),
])
def test_relation_scenes_bad_inputs(kw, match):
    with pytest.raises(MixerConfigError, match=match):
        relation_scenes(**kw)


# --------------------------------------------------------------------------- segmentation
def test_shape_scenes_are_deterministic_and_labelled_where_drawn():
    a, b = shape_scenes(8, 64, seed=1, noise=0.0), shape_scenes(8, 64, seed=1, noise=0.0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(shape_scenes(8, 64, seed=2, noise=0.0)[1], a[1])
    assert not torch.equal(shape_scenes(8, 64, seed=1, split="test", noise=0.0)[1], a[1])
    x, y = a
    assert x.shape == (8, 1, 64, 64) and y.shape == (8, 64, 64) and y.dtype == torch.int64
    assert torch.equal(x[:, 0] > 0, y > 0)                                     # background is 0, fills > 0
    assert int(y.max()) <= len(scenes.SHAPES) and (y > 0).flatten(1).any(1).all()
    assert ((x[:, 0] >= 0.35) == (y > 0)).all() and (x <= 1.0).all()


@pytest.mark.parametrize("kind", range(4))
def test_shapes_have_equal_area(kind):
    yy, xx = np.meshgrid(np.arange(200) + 0.5, np.arange(200) + 0.5, indexing="ij")
    mask, bound = scenes._shape_mask(kind, yy, xx, 100.0, 100.0, 30.0)
    assert mask.sum() == pytest.approx(math.pi * 30**2, rel=0.04)     # +-1 pixel per side
    far = (yy - 100) ** 2 + (xx - 100) ** 2 > (bound + 1) ** 2
    assert not (mask & far).any()                                             # inside its circumcircle


def test_inside_a_shape_a_patch_shows_only_a_flat_fill_independent_of_the_type():
    """At 128x128 most shape pixels lie in 4x4 patches covered by one shape; such a patch is one
    constant value, and that value's distribution does not depend on the shape type."""
    x, y = shape_scenes(120, 128, noise=0.0)
    assert flat_patch_fraction(y, 4) > 0.6
    n = x.shape[0]
    tx = x[:, 0].reshape(n, 32, 4, 32, 4).permute(0, 1, 3, 2, 4).reshape(-1, 16)
    ty = y.reshape(n, 32, 4, 32, 4).permute(0, 1, 3, 2, 4).reshape(-1, 16)
    flat = (ty == ty[:, :1]).all(1) & (ty[:, 0] > 0)
    assert (tx[flat] == tx[flat][:, :1]).all()
    table = np.zeros((4, 4))
    for img in range(n):                  # one vote per shape: its fill is drawn once
        for label in y[img].unique().tolist():
            if label:
                v = float(x[img, 0][y[img] == label][0])
                table[label - 1, np.digitize(v, [0.5, 0.675, 0.85])] += 1
    assert table.sum() > 150
    stat, limit = _chi2(table)
    assert stat < limit, (stat, limit)


def test_flat_patch_fraction_on_a_hand_made_label_map():
    y = torch.zeros(1, 8, 8, dtype=torch.int64)
    y[0, :4, :4] = 1                      # one patch fully covered
    y[0, 4:6, 4:8] = 2                    # half of two patches
    assert flat_patch_fraction(y, 4) == pytest.approx(16 / 24)
    assert flat_patch_fraction(torch.zeros(1, 8, 8, dtype=torch.int64), 4) == 0.0
    with pytest.raises(MixerConfigError, match="divisible by patch=3"):
        flat_patch_fraction(y, 3)


def test_shape_scenes_at_128_are_fast_enough():
    t0 = time.perf_counter()
    x, y = shape_scenes(100, 128)
    assert time.perf_counter() - t0 < 5.0 and y.shape == (100, 128, 128)


@pytest.mark.parametrize("kw, match", [
    (dict(n=-1), "n must be a positive integer"),
    (dict(n=2, size=8), "size must be at least 16"),
    (dict(n=2, radius=(0.3, 0.6)), "radius must be a pair"),
    (dict(n=2, fill=(0.0, 1.0)), "fill must be a pair"),
    (dict(n=2, max_shapes=0), "max_shapes must be a positive integer"),
    (dict(n=2, split="dev"), "split must be one of"),
])
def test_shape_scenes_bad_inputs(kw, match):
    with pytest.raises(MixerConfigError, match=match):
        shape_scenes(**kw)
