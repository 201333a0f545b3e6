"""Claims made in the library's docstrings and comments, checked where they are cheap to check.

Each test names the docstring it guards; a test fails when the sentence it guards stops being
true (of this code or of the installed torch).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import afno_lite
from afno_lite import mixer
from afno_lite._checks import MixerConfigError, MixerInputError, check_image
from afno_lite.compat import NvidiaWeightsError, nvidia_afno2d_forward, nvidia_layer_forward
from afno_lite.complexity import flops
from afno_lite.fast import FastAFNO, compiled
from afno_lite.mixers import AFNO
from afno_lite.models import TokenMixerNet
from afno_lite.spectral import frequency_grid, hard_threshold_to_fraction, nvidia_kept_mode_mask


def _flop_count(fn) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        fn()
    return counter.get_total_flops()


# --------------------------------------------------------------------------- spectral
@pytest.mark.parametrize("H", range(1, 13))
def test_row_frequencies_as_the_conventions_say(H):
    """spectral module docstring: ``k_H = r`` for ``r < H/2`` and ``r - H`` for ``r >= H/2``."""
    kh, _ = frequency_grid(H, 4)
    assert kh.flatten().tolist() == [r if r < H / 2 else r - H for r in range(H)]


def test_nvidia_drops_columns_exactly_when_w_half_exceeds_h_half():
    """spectral.nvidia_kept_mode_mask and compat: at keep_fraction = 1 NVIDIA's slicing drops
    columns iff ``W//2 > H//2`` (``W > H`` except ``W = H + 1`` for even ``H``)."""
    for H in range(2, 17):
        for W in range(2, 17):
            drops = not bool(nvidia_kept_mode_mask(H, W, 1.0).all())
            assert drops == (W // 2 > H // 2), (H, W)
            assert drops == (W > H and not (H % 2 == 0 and W == H + 1)), (H, W)


def test_hard_threshold_to_fraction_keeps_round_keep_times_numel():
    """spectral.hard_threshold_to_fraction: keeps ``round(keep * numel)`` entries of largest |z|."""
    z = torch.tensor([0.1, -3.0, 2.0, 0.5, -1.0, 4.0, 0.0])
    out = hard_threshold_to_fraction(z, 0.4)                     # round(2.8) = 3
    assert torch.equal(out, torch.tensor([0.0, -3.0, 2.0, 0.0, 0.0, 4.0, 0.0]))


# --------------------------------------------------------------------------- compat
@pytest.mark.parametrize("grid, same", [((8, 8), True), ((12, 8), True), ((8, 9), True),
                                        ((7, 8), False), ((8, 16), False)])
def test_reference_equals_afno_exactly_when_w_half_at_most_h_half(grid, same):
    """compat module docstring: at keep_fraction = 1 the reference forward equals AFNO to float32
    rounding whenever ``W//2 <= H//2`` (CPU FFTs), and differs otherwise."""
    torch.manual_seed(0)
    m = AFNO(32, num_blocks=4)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.2)
    x = torch.randn(2, *grid, 32)
    with torch.no_grad():
        diff = float((nvidia_layer_forward(m, x) - m(x)).abs().max())
    assert (diff < 1e-5) == same, diff


# --------------------------------------------------------------------------- complexity
def test_flop_counter_facts_the_convention_rests_on():
    """complexity module docstring, the three facts measured with torch on CPU."""
    a, b = torch.randn(3, 4, 5), torch.randn(3, 5, 6)
    real = _flop_count(lambda: torch.bmm(a, b))
    assert real == 2 * 3 * 4 * 5 * 6
    assert _flop_count(lambda: torch.bmm(a.cfloat(), b.cfloat())) == real   # complex = real
    q = torch.randn(1, 2, 64, 8)
    assert _flop_count(lambda: F.scaled_dot_product_attention(q, q, q)) == 0  # fused CPU kernel
    t, w = torch.randn(5, 7, 8, 1), torch.randn(8, 1, 3)
    assert _flop_count(lambda: torch.einsum("...bi,bio->...bo", t, w)) == 0   # contracted size 1


@pytest.mark.parametrize("name, kw, factor", [("afno", {"num_blocks": 4}, 1),
                                              ("afno_fast", {"num_blocks": 4}, 4),
                                              ("fno", {"modes": (2, 2)}, 4)])
def test_matmul_real_is_four_times_matmul_for_the_complex_products(name, kw, factor):
    """complexity module docstring: ``matmul_real`` is ``4 * matmul`` for the FNO's complex
    einsum and afno_fast's complex baddbmm, ``matmul`` for AFNO's real einsums."""
    f = flops(name, 16, (8, 8), **kw)
    assert f["matmul_real"] == factor * f["matmul"] > 0


# --------------------------------------------------------------------------- fast
def test_autocast_leaves_complex_matmuls_in_complex64():
    """fast module docstring: autocast does not touch complex tensors, so a complex baddbmm
    stays complex64 under CPU autocast (while a real bmm goes to bfloat16)."""
    a = torch.randn(2, 3, 4, dtype=torch.cfloat)
    b = torch.randn(2, 4, 5, dtype=torch.cfloat)
    c = torch.randn(2, 3, 1, dtype=torch.cfloat)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.baddbmm(c, a, b).dtype == torch.complex64
        assert torch.bmm(a.real.contiguous(), b.real.contiguous()).dtype == torch.bfloat16


def test_compiled_raises_the_recompile_limit_to_64_and_never_lowers_it():
    """fast.compiled: dynamo's recompile_limit (default 8; ``cache_size_limit`` in older torch)
    is raised to 64 when lower."""
    import torch._dynamo.config as dcfg

    name = "recompile_limit" if hasattr(dcfg, "recompile_limit") else "cache_size_limit"
    old = getattr(dcfg, name)
    try:
        setattr(dcfg, name, 8)
        compiled(FastAFNO(16, num_blocks=4))        # compiles lazily: nothing runs here
        assert getattr(dcfg, name) == 64
        setattr(dcfg, name, 100)
        compiled(FastAFNO(16, num_blocks=4))
        assert getattr(dcfg, name) == 100
    finally:
        setattr(dcfg, name, old)


def _shipped_cpu_bench() -> dict:
    """The shipped CPU benchmark, ``notebooks/results/bench_scaling.json``."""
    from pathlib import Path

    from afno_lite.bench import load_results

    return load_results(Path(afno_lite.__file__).resolve().parents[1] / "notebooks" / "results"
                        / "bench_scaling.json")


def _shipped_floor_ratios(mode: str, channels: tuple, per_session: bool = False) -> list[float]:
    """channels-last / channels-first FFT floor in the shipped CPU benchmark, ``N >= 4096``,
    ``B = 1, 8``: one ratio of medians per configuration, or one per session."""
    doc = _shipped_cpu_bench()
    rows = {(r["series"], r["N"], r["B"], r["C"]): r for r in doc["results"] if r["mode"] == mode}
    out = []
    for (series, N, B, C), cl in rows.items():
        if series == "fft_floor" and N >= 4096 and B in (1, 8) and C in channels:
            cf = rows[("fft_floor_cf", N, B, C)]
            pairs = zip(cl["sessions_ms"], cf["sessions_ms"], strict=True) if per_session else [
                (cl["median_ms"], cf["median_ms"])]
            out += [a / b for a, b in pairs]
    return out


def test_shipped_cpu_run_took_as_long_as_the_bench_docstring_says():
    """bench package docstring: the shipped full run (three sessions) took 36 minutes (2,187 s)
    on 2 threads, torch 2.13.0+cpu."""
    doc = _shipped_cpu_bench()
    assert round(doc["elapsed_s"]) == 2187 and round(doc["elapsed_s"] / 60) == 36
    assert doc["settings"]["sessions"] == 3 and doc["threads"] == 2 and doc["torch"] == "2.13.0+cpu"


def test_shipped_floor_layout_ratios_as_the_docstrings_say():
    """fast module and bench package docstrings: in the shipped CPU run the channels-last floor
    took 1.7-2.4x the channels-first one (``C = 256``, fwd+bwd; medians), 1.6-2.7x in single
    sessions, the channels-first one being faster in every session; 1.2-1.7x for the forward
    pass alone (``C = 64, 256``)."""
    for (mode, channels, per_session), (lo, hi) in {
        ("fwd+bwd", (256,), False): (1.7, 2.4),
        ("fwd+bwd", (256,), True): (1.6, 2.7),
        ("fwd", (64, 256), False): (1.2, 1.7),
    }.items():
        r = _shipped_floor_ratios(mode, channels, per_session)
        assert len(r) >= 6 and min(r) > 1.0
        assert abs(min(r) - lo) < 0.05 and abs(max(r) - hi) < 0.05, (mode, channels, per_session, r)


# --------------------------------------------------------------------------- models, registry
def test_fno_network_needs_twice_its_modes_in_tokens():
    """models.TokenMixerNet, img_size: an fno mixer needs at least 2*m_h x 2*m_w tokens."""
    net = TokenMixerNet("fno", img_size=36, patch_size=4, in_chans=1, embed_dim=8, depth=1)
    assert net.mixer_kw["modes"] == (4, 4)                       # 9x9 tokens
    assert net(torch.randn(1, 1, 32, 32)).shape == (1, 1, 32, 32)   # 8x8 tokens: 8 >= 2*4
    with pytest.raises(MixerInputError):
        net(torch.randn(1, 1, 28, 28))                           # 7x7 tokens: 7 < 2*4


def test_identity_is_built_by_name():
    """registry.mixer: the baseline ``identity`` is built by name like the mixers."""
    x = torch.randn(1, 4, 4, 8)
    assert torch.equal(mixer("identity", 8)(x), x)
    assert "identity" not in afno_lite.MIXERS


# --------------------------------------------------------------------------- _checks
def test_the_listed_departures_from_the_exception_rule():
    """_checks module docstring: the known departures from the exception-type rule."""
    with pytest.raises(MixerConfigError):
        check_image([[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(MixerConfigError):
        check_image(torch.ones(4, 4, dtype=torch.long))
    x64 = torch.randn(1, 4, 4, 8, dtype=torch.float64)
    with pytest.raises(MixerInputError):
        mixer("attention", 8, num_heads=2)(x64)
    net = TokenMixerNet("attention", img_size=8, patch_size=2, in_chans=1, embed_dim=8, depth=1,
                        mixer_kw={"num_heads": 2})
    with pytest.raises(TypeError):
        net(torch.randn(1, 1, 8, 8, dtype=torch.float64))
    w = AFNO(8, num_blocks=2)
    with pytest.raises(NvidiaWeightsError):
        nvidia_afno2d_forward([1.0], w.w1, w.b1, w.w2, w.b2, num_blocks=2)


# --------------------------------------------------------------------------- bench.stepcost
def test_fused_attention_memory_grows_linearly_in_the_tokens():
    """bench.stepcost: a fused attention kernel keeps attention's memory linear in the tokens
    (forward + backward on CPU)."""
    from afno_lite.bench import peak_memory_bytes

    m = mixer("attention", 16, num_heads=2)
    peaks = []
    for side in (16, 32):
        x = torch.randn(1, side, side, 16, requires_grad=True)
        peaks.append(peak_memory_bytes(lambda x=x: m(x).sum().backward()))
    assert peaks[1] / peaks[0] < 6          # 4x the tokens: linear ~4, quadratic ~16


def test_synthetic_field_has_half_power_on_the_self_conjugate_columns_only():
    """``data.synthetic_field``'s docstring: the modes of the self-conjugate columns carry half
    the power of the other modes of the same |k|; elsewhere the spectrum is isotropic."""
    from afno_lite.data import synthetic_field

    f = synthetic_field(16, 16, slope=3.0, seed=0, channels=2000)
    P = (torch.fft.fft2(f.double(), dim=(0, 1)).abs() ** 2).mean(-1)
    column_0 = torch.stack([P[k, 0] / P[0, k] for k in range(1, 5)])     # (k, 0) vs (0, k)
    nyquist = torch.stack([P[k, 8] / P[8, k] for k in range(1, 5)])      # (k, W/2) vs (W/2, k)
    generic = torch.stack([P[k, j] / P[j, k] for k in range(2, 5) for j in range(1, k)])
    assert 0.4 < column_0.mean() < 0.65 and 0.4 < nyquist.mean() < 0.65, (column_0, nyquist)
    assert 0.85 < generic.mean() < 1.15, generic


# --------------------------------------------------------------------------- initial weights
def _spread(t: torch.Tensor) -> tuple[float, float]:
    t = t.detach().double().flatten()
    return t.mean().item(), t.std().item()


@pytest.mark.parametrize("dim", [16, 64])
def test_initial_weights_are_drawn_as_the_docstrings_say(dim):
    """mixers.SpectralConv2d, GlobalFilter and AFNO docstrings: normal entries with mean 0 and
    standard deviation 1/C (FNO) and 0.02 (GFN, AFNO and FastAFNO, biases included), the real
    and imaginary parts drawn independently."""
    torch.manual_seed(0)
    fno, gfn = mixer("fno", dim, modes=(4, 4)).weight, mixer("gfn", dim).weight
    layers = {"fno": (fno, 1.0 / dim, fno[..., 0], fno[..., 1]),        # last axis: real, imaginary
              "gfn": (gfn, 0.02, gfn[..., 0], gfn[..., 1])}
    for name in ("afno", "afno_fast"):
        m = mixer(name, dim, num_blocks=4)
        for p in ("w1", "b1", "w2", "b2"):
            w = getattr(m, p)
            layers[f"{name}.{p}"] = (w, 0.02, w[0], w[1])                 # first axis: real, imaginary
    for name, (w, std, re, im) in layers.items():
        mean, s = _spread(w)
        n = w.numel()
        # a normal sample's mean and std wander by about std/sqrt(n) and std/sqrt(2n)
        assert abs(mean) < 5 * std / n ** 0.5, (name, mean, std)
        assert abs(s / std - 1) < 5 / (2 * n) ** 0.5, (name, s, std)
        # normal, not another law with that spread: 68.27 % within one std (uniform: 57.7 %)
        inside = float((w.detach().abs() < std).double().mean())
        assert abs(inside - 0.6827) < 5 * (0.6827 * 0.3173 / n) ** 0.5, (name, inside)
        # independent parts: their correlation wanders by about 1/sqrt(n/2)
        corr = torch.corrcoef(torch.stack([re.detach().flatten(), im.detach().flatten()]))[0, 1]
        assert abs(float(corr)) < 5 / (n / 2) ** 0.5, (name, float(corr))


def test_afno_without_bias_keeps_zero_biases_that_do_not_train():
    """mixers.AFNO docstring: with ``bias=False`` b1, b2 stay in the module as zeros that never train."""
    m = mixer("afno", 16, num_blocks=4, bias=False)
    assert not m.b1.requires_grad and not m.b2.requires_grad
    assert m.b1.abs().max() == 0 and m.b2.abs().max() == 0


def test_documented_defaults():
    """mixers.SelfAttention: 8 heads by default; mixers.GlobalFilter: a 16 x 16 filter grid."""
    assert mixer("attention", 64).num_heads == 8
    gfn = mixer("gfn", 8)
    assert gfn.grid == (16, 16)
    assert tuple(gfn.weight.shape) == (16, 16 // 2 + 1, 8, 2)
