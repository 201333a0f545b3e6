"""Tests for the offline training data (afno_lite.data: crops, masks, inpainting, PDE pairs)."""
import socket

import pytest
import torch
import torch.nn.functional as F

from afno_lite import data


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_crops_load_offline_with_shape_range_and_seed(no_network):
    data._PYRAMID.clear()
    a = data.image_crops(12, size=32, seed=3)
    b = data.image_crops(12, size=32, seed=3)
    c = data.image_crops(12, size=32, seed=4)
    assert a.shape == (12, 1, 32, 32) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    # crops differ from each other (random positions, images and zooms)
    assert (a.flatten(1)[:, None] - a.flatten(1)[None]).abs().sum(-1).add(torch.eye(12)).min() > 0


def _window_distances(crop: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """L1 distance of ``crop`` to every window of ``img``, as ``[rows, cols]``."""
    s = crop.shape[-1]
    win = F.unfold(img[None, None], s)                        # [1, s*s, L]
    d = (win[0] - crop.reshape(-1, 1)).abs().sum(0)
    return d.view(img.shape[0] - s + 1, img.shape[1] - s + 1)


@pytest.mark.parametrize("split", ["train", "test"])
def test_train_and_test_crops_come_from_disjoint_regions(split):
    img = data._downsampled("topography", 1)
    W = img.shape[1]
    a, b = round(W * data.TEST_BAND[0]), round(W * data.TEST_BAND[1])
    crops = data.image_crops(8, size=32, split=split, seed=1, names=("topography",), scales=(1,), flips=False)
    for crop in crops:
        d = _window_distances(crop[0], img)                  # [rows, W - 31]: window starting at column c
        cols = torch.arange(d.shape[1])
        in_test = (cols >= a) & (cols + 32 <= b)              # windows entirely inside the test band
        in_train = (cols + 32 <= a) | (cols >= b)             # windows entirely outside it
        own, other = (d[:, in_train], d[:, in_test]) if split == "train" else (d[:, in_test], d[:, in_train])
        assert float(own.min()) < 1e-4                       # the crop is a window of its own region
        assert float(other.min()) > 1.0                      # and matches nothing in the other one


def _full_columns(name: str, scale: int, split: str) -> set[int]:
    """The full-resolution columns the ``split`` regions of image ``name`` cover at ``scale``
    (a pixel of the zoomed image averages ``scale`` full columns)."""
    W = data._downsampled(name, scale).shape[1]
    index = torch.arange(W, dtype=torch.float64)[None, :]
    cols = set()
    for region in data._split_regions(index, split):
        cols |= {int(c) * scale + j for c in region[0].tolist() for j in range(scale)}
    return cols


@pytest.mark.parametrize("name", sorted(data.IMAGES))
def test_split_regions_are_disjoint_per_zoom_and_share_at_most_two_columns_across(name):
    """TEST_BAND's docstring: at one zoom train and test never overlap; across the default zooms
    a train region and a test region share at most 2 full-image columns."""
    scales = (1, 2, 4)
    train = {s: _full_columns(name, s, "train") for s in scales}
    test = {s: _full_columns(name, s, "test") for s in scales}
    for s in scales:
        assert not train[s] & test[s]
    shared = max(len(train[s1] & test[s2]) for s1 in scales for s2 in scales)
    assert shared <= 2, shared


def test_flat_background_crops_are_redrawn():
    # the MRI slice sits on a black background: without redrawing, many crops would be constant
    crops = data.image_crops(64, size=32, split="test", seed=0, names=("mri",), scales=(1,))
    assert (crops.flatten(1).std(1) >= data.MIN_CROP_STD).all()


def test_procedural_fraction_and_flips():
    a = data.image_crops(10, size=16, seed=0, procedural=1.0)
    assert a.shape == (10, 1, 16, 16)
    # every procedural field is min-max normalised to exactly [0, 1]
    torch.testing.assert_close(a.amin(dim=(1, 2, 3)), torch.zeros(10))
    torch.testing.assert_close(a.amax(dim=(1, 2, 3)), torch.ones(10))
    noflip = data.image_crops(20, size=16, seed=0, flips=False)
    flip = data.image_crops(20, size=16, seed=0, flips=True)
    assert not torch.equal(noflip, flip)


def test_patch_mask_hides_exact_number_of_aligned_patches():
    m = data.patch_mask(5, size=32, patch=4, ratio=0.5, seed=0)
    assert m.shape == (5, 1, 32, 32)
    assert set(m.unique().tolist()) == {0.0, 1.0}
    blocks = m.view(5, 8, 4, 8, 4)
    # constant inside every 4x4 patch
    assert (blocks.amax(dim=(2, 4)) == blocks.amin(dim=(2, 4))).all()
    assert (blocks[:, :, 0, :, 0].sum(dim=(1, 2)) == 32).all()
    assert torch.equal(m, data.patch_mask(5, size=32, patch=4, ratio=0.5, seed=0))
    assert not torch.equal(m, data.patch_mask(5, size=32, patch=4, ratio=0.5, seed=1))
    assert int(data.patch_mask(1, 32, 8, ratio=0.25)[0, 0, ::8, ::8].sum()) == 4


def test_inpainting_data_layout():
    d = data.inpainting_data(4, size=32, patch=4, ratio=0.25, seed=2)
    x, t, m = d["x"], d["target"], d["mask"]
    assert x.shape == (4, 2, 32, 32) and t.shape == m.shape == (4, 1, 32, 32)
    torch.testing.assert_close(x[:, :1], t * (1 - m))
    torch.testing.assert_close(x[:, 1:], m)
    assert float(m.mean()) == pytest.approx(0.25)
    test = data.inpainting_data(4, size=32, patch=4, ratio=0.25, split="test", seed=2)
    assert not torch.equal(test["target"], t) and not torch.equal(test["mask"], m)


def test_pde_data_wraps_the_solver():
    p = data.pde_data(2, grids=(32, 64), T=0.1, seed=0)
    assert p[32][0].shape == (2, 1, 32, 32) and p[64][1].shape == (2, 1, 64, 64)
    assert torch.equal(p[32][1], p[64][1][..., ::2, ::2])


@pytest.mark.parametrize("call,match", [
    (lambda: data.image_crops(0), "n must be"),
    (lambda: data.image_crops(2, size=0), "size must be"),
    (lambda: data.image_crops(2, split="val"), "split must be"),
    (lambda: data.image_crops(2, names=("lena",)), "names must be"),
    (lambda: data.image_crops(2, scales=(0,)), "scales must be"),
    (lambda: data.image_crops(2, procedural=1.5), "procedural must be"),
    (lambda: data.image_crops(2, size=512, split="test"), "no image region"),
    (lambda: data.patch_mask(2, size=30, patch=4), "divisible"),
    (lambda: data.patch_mask(2, ratio=1.0), "ratio must be"),
    (lambda: data.pde_data(0), "n must be"),
])
def test_bad_arguments_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
