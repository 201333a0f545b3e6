"""Behaviour of the spectral helpers and layers that a reader or a researcher relies on, each
checked against an independent reference (a naive formula, a hand-worked case, float64 maths).

Frequency bookkeeping (``afno_lite.spectral``), the token mixers (``afno_lite.mixers``), the fast
AFNO (``afno_lite.fast``) and the NVIDIA weight bridge (``afno_lite.compat``).
"""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from test_compat import masked_afno
from torch import nn

from afno_lite import AFNO, GlobalFilter, SpectralConv2d, compat, mixer
from afno_lite._checks import MixerConfigError, MixerInputError
from afno_lite.compat import NvidiaWeightsError
from afno_lite.fast import FastAFNO, compiled
from afno_lite.registry import SPECS
from afno_lite.spectral import (
    energy_fraction,
    fno_mode_mask,
    frequency_grid,
    hermitian_defect,
    kept_mode_cutoffs,
    kept_rows,
    nvidia_kept_mode_mask,
    radial_energy_profile,
    self_conjugate_columns,
    soft_threshold_magnitude,
)

F64 = torch.float64


def _signed(r: int, n: int) -> int:
    """numpy's ``fftfreq(n) * n`` for index ``r``: ``0..(n-1)//2`` then ``-(n//2)..-1``."""
    return r if r <= (n - 1) // 2 else r - n


# ----------------------------------------------------------------------------- spectral.py
def test_frequency_grid_is_exact_integers_on_every_size_up_to_128():
    """The signed frequencies label rows for every mask and every radial profile; a grid of
    25 or 41 rows must not mislabel a row because ``fftfreq(H) * H`` is 2.9999998."""
    for n in range(1, 129):
        kh, _ = frequency_grid(n, 4)
        assert kh.flatten().tolist() == [_signed(r, n) for r in range(n)], n
        _, kw = frequency_grid(4, n, rfft=False)
        assert kw.flatten().tolist() == [_signed(c, n) for c in range(n)], n


def test_kept_mode_cutoffs_are_the_floor_of_the_decimal_fraction():
    """``m = floor(keep_fraction * (H // 2))`` as the decimal the user typed means it: 0.58 of
    a 100-row grid keeps |k_H| <= 29 (not 28 from 0.58 * 50 = 28.999999999999996), and 0.5 of
    the 7 half-columns of a 15-wide grid keeps 3 (floor, not the rounded 4)."""
    assert kept_mode_cutoffs(100, 15, 0.58) == (29, 4)
    assert kept_mode_cutoffs(9, 15, 0.5) == (2, 3)
    for i in range(1, 101):
        f = i / 100
        for H in range(1, 130, 3):
            W = H + 7
            exact = tuple(math.floor(Fraction(str(f)) * (n // 2)) for n in (H, W))
            assert kept_mode_cutoffs(H, W, f) == exact, (H, W, f)


def test_fno_mode_mask_rejects_too_many_modes_on_either_axis():
    """A mode count the grid cannot hold must be an error on the W axis as much as on H: an
    8 x 6 grid has rfft columns k_W = 0..3, so m_w = 4 silently meaning 'all' would hide a bug."""
    assert fno_mode_mask(8, 6, (4, 3)).all()
    for bad in [(2, 4), (5, 1)]:
        with pytest.raises(MixerConfigError, match="larger than the grid"):
            fno_mode_mask(8, 6, bad)


def test_nvidia_afno_transformer_mask_keeps_int_of_the_token_count_fraction():
    """The paper's vision code keeps ``int(total * f)`` columns with ``total = H*W//2 + 1``
    (truncation, as Python's ``int``): on 4 x 4 at f = 0.3 that is int(2.7) = 2 columns."""
    mask = nvidia_kept_mode_mask(4, 4, 0.3, variant="afno_transformer")
    expected = torch.zeros(4, 3, dtype=torch.bool)
    expected[:, :2] = True
    assert torch.equal(mask, expected)


def test_self_conjugate_columns_are_the_columns_equal_to_their_own_mirror():
    """Column c is its own mirror when c = -c (mod W); only columns a (possibly truncated)
    half-spectrum of ``n`` columns holds can be listed, else the projection indexes past it."""
    for W in range(1, 14):
        for n in range(0, W // 2 + 2):
            expected = [c for c in range(min(n, W // 2 + 1)) if (2 * c) % W == 0]
            assert self_conjugate_columns(W, n) == expected, (W, n)
        assert self_conjugate_columns(W) == [c for c in range(W // 2 + 1) if (2 * c) % W == 0]


def _naive_defect(X: torch.Tensor, W: int) -> float:
    """max over self-conjugate columns of max_r |z[r] - conj(z[-r])| / max_r |z[r]| ([H, Wr])."""
    H, worst = X.shape[0], 0.0
    for c in [c for c in range(X.shape[1]) if (2 * c) % W == 0]:
        z = X[:, c]
        scale = max(abs(complex(v)) for v in z)
        if scale > 0:
            d = max(abs(complex(z[r]) - complex(z[(-r) % H]).conjugate()) for r in range(H))
            worst = max(worst, d / scale)
    return worst


def test_hermitian_defect_is_relative_to_the_column_scale():
    """The defect is a relative measure (documented as ``max |z - conj(z reversed)| / max |z|``):
    the same asymmetry at 1000x the amplitude is the same defect, so one tolerance fits all layers."""
    X = torch.zeros(1, 4, 3, 1, dtype=torch.complex128)
    X[0, 1, 0, 0] = 10.0                              # k_H = 1 present, k_H = -1 missing
    assert hermitian_defect(X, 4) == pytest.approx(1.0, rel=1e-12)
    torch.manual_seed(0)
    for W in (6, 7):
        Z = torch.randn(5, W // 2 + 1, dtype=torch.complex128)
        ref = _naive_defect(Z, W)
        for scale in (1.0, 1e3):
            got = hermitian_defect((scale * Z)[None, ..., None], W)
            assert got == pytest.approx(ref, rel=1e-9), (W, scale)


def test_energy_fraction_of_an_all_zero_input_is_one():
    """A blank sample loses no energy to any mask: the kept fraction is 1, not 0 (or NaN)."""
    x = torch.zeros(1, 8, 8, 2, dtype=F64)
    mask = torch.zeros(8, 5, dtype=torch.bool)
    assert energy_fraction(x, mask) == 1.0


def test_radial_profile_rounds_the_radius_to_the_nearest_ring():
    """A pure mode (k_H, k_W) = (2, 3) has radius sqrt(13) = 3.61: it belongs to ring 4, as the
    docstring's ``round(sqrt(k_H^2 + k_W^2))`` says, not ring 3."""
    H = W = 16
    h = torch.arange(H, dtype=F64)[:, None]
    w = torch.arange(W, dtype=F64)[None, :]
    wave = torch.cos(2 * math.pi * (2 * h / H + 3 * w / W))
    _, p = radial_energy_profile(wave)
    assert int(p.argmax()) == round(math.sqrt(13)) == 4
    torch.testing.assert_close(p[4], (wave ** 2).sum())


def test_soft_threshold_magnitude_is_exact_for_tiny_float32_magnitudes():
    """max(|z| - λ, 0) e^{iθ} holds at every scale a float32 spectrum reaches, also for
    |z| far below machine epsilon (a deep-layer spectrum): 1e-10 shrunk by 4e-11 is 6e-11."""
    theta = torch.linspace(0, 2 * math.pi, 7, dtype=F64)
    for mag, lam in [(1e-10, 4e-11), (1e-20, 2.5e-21), (3e-30, 1e-30)]:
        z = torch.polar(torch.full_like(theta, mag), theta)
        expected = torch.polar(torch.full_like(theta, mag - lam), theta)
        got = soft_threshold_magnitude(z.to(torch.complex64), lam)
        torch.testing.assert_close(got.to(torch.complex128), expected, rtol=1e-5, atol=0)


# ----------------------------------------------------------------------------- mixers.py
def test_fno_rejects_a_grid_too_narrow_for_its_column_modes():
    """An FNO with m_w = 4 needs W >= 8; on a 8 x 6 grid the reader must get the library's
    error naming the modes and the grid, not an einsum shape error from inside torch."""
    fno = SpectralConv2d(4, modes=(2, 4))
    with pytest.raises(MixerInputError, match=r"modes=\(2, 4\) is larger than the input grid 8x6"):
        fno(torch.randn(1, 8, 6, 4))
    assert fno(torch.randn(1, 8, 8, 4)).shape == (1, 8, 8, 4)


def _bilinear_align_corners(w: torch.Tensor, H: int, Wr: int) -> torch.Tensor:
    """Naive bilinear resampling of ``w[H0, Wr0, ...]`` to ``[H, Wr, ...]``, corners aligned:
    output index i sits at source coordinate i * (H0 - 1) / (H - 1)."""
    H0, Wr0 = w.shape[:2]
    out = torch.zeros(H, Wr, *w.shape[2:], dtype=w.dtype)
    for i in range(H):
        y = i * (H0 - 1) / (H - 1) if H > 1 else 0.0
        y0 = min(int(math.floor(y)), H0 - 1)
        y1, ty = min(y0 + 1, H0 - 1), y - y0
        for j in range(Wr):
            x = j * (Wr0 - 1) / (Wr - 1) if Wr > 1 else 0.0
            x0 = min(int(math.floor(x)), Wr0 - 1)
            x1, tx = min(x0 + 1, Wr0 - 1), x - x0
            out[i, j] = ((1 - ty) * (1 - tx) * w[y0, x0] + (1 - ty) * tx * w[y0, x1]
                         + ty * (1 - tx) * w[y1, x0] + ty * tx * w[y1, x1])
    return out


def test_gfn_filter_on_another_grid_is_the_bilinear_corner_aligned_resample():
    """The docstring promises bilinear interpolation with ``align_corners=True`` on the frequency
    grid: the same filter read at another resolution must be exactly that resample (bicubic or
    half-pixel-centred resampling gives a different operator at the new resolution)."""
    torch.manual_seed(0)
    m = GlobalFilter(3, grid=(4, 6)).double()                     # half-plane 4 x 4
    w = m.weight.detach()
    for H, W in [(7, 10), (3, 4), (9, 17)]:
        ref = _bilinear_align_corners(w, H, W // 2 + 1)
        got = m.complex_weight(H, W)
        assert got.shape == (H, W // 2 + 1, 3)
        torch.testing.assert_close(torch.view_as_real(got), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_mixer_built_by_name_rejects_nan_input_by_default(name):
    """NaN tokens are refused by every mixer, the identity baseline included, unless the user
    opts out with ``check_finite=False``: a diverged run stops at the first layer it reaches."""
    m = mixer(name, 8, **SPECS[name].grid_kw(4, 4))
    x = torch.randn(1, 4, 4, 8)
    x[0, 1, 2, 3] = float("nan")
    with pytest.raises(MixerInputError, match="NaN or Inf"):
        m(x)


# ----------------------------------------------------------------------------- fast.py
def test_compiled_hands_torch_compile_static_shapes_and_the_documented_mode(monkeypatch):
    """``compiled`` promises: on a CPU module the default mode (CUDA graphs only for CUDA
    parameters), static shapes unless the caller asks otherwise, and with an explicit
    ``backend`` no ``mode`` (torch.compile refuses both together)."""
    calls = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: calls.append((module, kw)) or module)
    layer = FastAFNO(16, num_blocks=4)
    assert compiled(layer) is layer
    assert calls[-1] == (layer, {"mode": "default", "dynamic": False})
    compiled(layer, backend="aot_eager")
    assert calls[-1][1] == {"backend": "aot_eager", "dynamic": False}
    compiled(layer, dynamic=True)
    assert calls[-1][1] == {"mode": "default", "dynamic": True}
    compiled(layer, mode="max-autotune")
    assert calls[-1][1] == {"mode": "max-autotune", "dynamic": False}


@pytest.mark.parametrize("H, W, keep", [(8, 8, 0.75), (5, 6, 0.7), (7, 12, 0.9)])
def test_fast_afno_equals_reference_when_the_kept_columns_stop_just_below_nyquist(H, W, keep):
    """With ``m_w = W/2 - 1`` the pruned half-spectrum holds W/2 columns: column 0 is
    self-conjugate, the Nyquist column W/2 is not there. FastAFNO must still be the reference
    function (float64, weights large enough for ReLU and softshrink to act)."""
    torch.manual_seed(0)
    assert kept_mode_cutoffs(H, W, keep)[1] + 1 == W // 2
    ref = AFNO(8, num_blocks=2, keep_fraction=keep, sparsity_threshold=0.05).double()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.4)
    fast = FastAFNO(8, num_blocks=2, keep_fraction=keep, sparsity_threshold=0.05).double()
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(2, H, W, 8, dtype=F64)
    torch.testing.assert_close(fast(x), ref(x), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- compat.py
def _tensors(dim: int = 8, k: int = 2, seed: int = 0, scale: float = 0.3) -> dict:
    g = torch.Generator().manual_seed(seed)
    b = dim // k
    shapes = {"w1": (2, k, b, b), "b1": (2, k, b), "w2": (2, k, b, b), "b2": (2, k, b)}
    return {n: scale * torch.randn(*sh, generator=g) for n, sh in shapes.items()}


def _fourcastnet_naive(x: torch.Tensor, t: dict, lam: float, frac: float) -> torch.Tensor:
    """FourCastNet's AFNO2D in float64 complex arithmetic: modes in rows total-kept:total+kept
    and columns :kept (total = H//2 + 1, kept = int(total * frac)), written from its source."""
    _, H, W, _ = x.shape
    total = H // 2 + 1
    kept = int(total * frac)
    mask = torch.zeros(H, W // 2 + 1)
    mask[total - kept: total + kept, :kept] = 1
    return masked_afno(x, t, mask, lam)


def test_reference_layer_forward_reads_the_layers_threshold_and_fraction():
    """``nvidia_layer_forward`` is what NVIDIA's layer computes with *this* layer's λ and
    keep_fraction (read as hard_thresholding_fraction), not with the reference defaults."""
    torch.manual_seed(0)
    t = _tensors()
    layer = AFNO(8, num_blocks=2, sparsity_threshold=0.3, keep_fraction=0.5).double()
    compat.load_nvidia_afno_layer(layer, t)
    x = torch.randn(2, 8, 8, 8, dtype=F64)
    got = compat.nvidia_layer_forward(layer, x, compute_dtype=None)
    torch.testing.assert_close(got, _fourcastnet_naive(x, t, 0.3, 0.5), rtol=1e-10, atol=1e-10)


def test_reference_forward_computes_in_float32_by_default_and_keeps_the_input_dtype():
    """The reference runs ``x.float()``: by default float64 input has float32 accuracy (not
    float64's), and bfloat16 input comes back as bfloat16 (its ``x.type(dtype)``), as a
    checkpoint's users see it."""
    torch.manual_seed(0)
    t = _tensors()
    x = torch.randn(2, 6, 6, 8, dtype=F64)
    y = compat.nvidia_afno2d_forward(x, *(t[n] for n in ("w1", "b1", "w2", "b2")), num_blocks=2)
    err = float((y - _fourcastnet_naive(x, t, 0.01, 1.0)).abs().max())
    assert y.dtype == F64 and 1e-10 < err < 1e-4
    xb = x.to(torch.bfloat16)
    yb = compat.nvidia_afno2d_forward(xb, *(t[n] for n in ("w1", "b1", "w2", "b2")), num_blocks=2)
    assert yb.dtype == torch.bfloat16
    ref = _fourcastnet_naive(xb.double(), t, 0.01, 1.0)
    torch.testing.assert_close(yb.double(), ref, rtol=2 ** -6, atol=2 ** -6)


def test_wrapper_prefixes_are_stripped_in_any_order_and_repeated():
    """A checkpoint of a compiled DDP model has keys ``_orig_mod.module.blocks...``; every
    wrapper prefix must come off, whatever the nesting, or no filter key is found."""
    t = torch.zeros(1)
    for pre in ("_orig_mod.module.", "module._orig_mod.", "module.module.", "_orig_mod._orig_mod.module."):
        assert list(compat.unwrap_state_dict({pre + "blocks.0.filter.w1": t})) == ["blocks.0.filter.w1"]
    src = AFNO(8, num_blocks=2)
    for pre in ("module.module.", "_orig_mod.module.", "module._orig_mod."):
        prefix = pre + "blocks.0.filter."
        sd = compat.nvidia_afno_layer_state(src, prefix=prefix)
        dst = compat.load_nvidia_afno_layer(AFNO(8, num_blocks=2), sd, prefix=prefix)
        assert all(torch.equal(getattr(dst, n), getattr(src, n)) for n in ("w1", "b1", "w2", "b2")), pre


def test_models_with_nvidia_filter_attributes_and_module_sources_load():
    """``afno_layers`` finds ``model.blocks[i].filter`` (NVIDIA's naming) as documented, and a
    source model can be handed over directly instead of its state dict."""
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.filter = AFNO(8, num_blocks=2)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([Block(), Block()])

    torch.manual_seed(0)
    src, dst = Net(), Net()
    assert compat.afno_layers(dst) == [dst.blocks[0].filter, dst.blocks[1].filter]
    report = compat.load_nvidia_afno_blocks(dst, src)
    assert report.num_layers == 2
    assert torch.equal(dst.blocks[1].filter.w2, src.blocks[1].filter.w2)


def test_bias_free_layer_refuses_a_nonzero_second_bias():
    """bias=False means zero biases in both layers: a checkpoint with a non-zero b2 alone must
    be refused too, or the loaded layer silently computes another function than the source."""
    t = _tensors()
    t["b1"].zero_()
    with pytest.raises(NvidiaWeightsError, match=r"bias=False but \['b2'\] are non-zero"):
        compat.load_nvidia_afno_layer(AFNO(8, num_blocks=2, bias=False), t)


def test_exported_layer_state_is_a_copy():
    """``nvidia_afno_layer_state`` returns detached copies: editing the exported tensors (e.g.
    to test a perturbed checkpoint) must not change the live layer."""
    layer = AFNO(8, num_blocks=2)
    before = layer.w1.detach().clone()
    state = compat.nvidia_afno_layer_state(layer)
    state["w1"].add_(1.0)
    assert torch.equal(layer.w1, before)


def test_strict_loading_refuses_fewer_filters_than_layers():
    """With strict=True a checkpoint holding fewer filters than the model has AFNO layers is
    an error: the remaining layers would silently keep their random initialisation."""
    src = [AFNO(8, num_blocks=2)]
    dst = [AFNO(8, num_blocks=2), AFNO(8, num_blocks=2)]
    sd = compat.to_nvidia_state_dict(src)
    with pytest.raises(NvidiaWeightsError, match="has 1 AFNO filters .* model has 2 AFNO layers"):
        compat.load_nvidia_afno_blocks(dst, sd)
    assert compat.load_nvidia_afno_blocks(dst, sd, strict=False).num_layers == 1


def test_keys_that_only_start_like_a_filter_tensor_are_ignored():
    """Only ``blocks.<i>.filter.<w1|b1|w2|b2>`` exactly is a filter tensor; a key such as
    ``blocks.0.filter.w1_ema`` is listed as ignored and never loaded in place of w1."""
    src = [AFNO(8, num_blocks=2)]
    sd = compat.to_nvidia_state_dict(src)
    sd["blocks.0.filter.w1_ema"] = torch.zeros_like(sd["blocks.0.filter.w1"])
    dst = [AFNO(8, num_blocks=2)]
    report = compat.load_nvidia_afno_blocks(dst, sd)
    assert report.ignored == ["blocks.0.filter.w1_ema"]
    assert torch.equal(dst[0].w1, src[0].w1)


def test_bad_arguments_to_the_bridge_and_row_helper_get_named_errors():
    """Mistakes get the library's message naming the argument: a non-string prefix, a checkpoint
    whose hidden width is no multiple of the block size, a bool where a mode count belongs."""
    layer = AFNO(8, num_blocks=2)
    sd = compat.nvidia_afno_layer_state(layer)
    with pytest.raises(NvidiaWeightsError, match="prefix must be a string"):
        compat.load_nvidia_afno_layer(layer, sd, prefix=0)
    odd = _tensors()
    odd["w1"], odd["b1"], odd["w2"] = torch.zeros(2, 2, 4, 6), torch.zeros(2, 2, 6), torch.zeros(2, 2, 6, 4)
    with pytest.raises(NvidiaWeightsError, match=r"hidden_size_factor=6/4 \(not an integer\)"):
        compat.load_nvidia_afno_layer(layer, odd)
    with pytest.raises(MixerConfigError, match="m_h must be an integer >= 0, got True"):
        kept_rows(8, True)
