"""Complexity formulas against the real thing: ``sum(p.numel())`` of the built mixer and
``torch.utils.flop_counter.FlopCounterMode`` on a real forward pass."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import afno_lite
from afno_lite import MixerConfigError, MixerInputError
from afno_lite import complexity as cx

# (name, dim, grid, batch, kw)
CASES = [
    ("attention", 16, (8, 6), 2, {"num_heads": 4}),
    ("attention", 8, (5, 7), 1, {"num_heads": 2, "qkv_bias": False}),
    ("attention", 32, (4, 4), 3, {}),
    ("kernel_attention", 16, (8, 6), 2, {"num_heads": 4}),
    ("kernel_attention", 8, (3, 5), 1, {"num_heads": 1, "qkv_bias": False}),
    ("fno", 16, (8, 6), 2, {"modes": (2, 3)}),
    ("fno", 8, (9, 7), 1, {"modes": (4, 3)}),          # odd grid, every mode
    ("fno", 8, (16, 16), 2, {}),                        # default modes (8, 8): rows k_H = +-8 alias
    ("fno", 4, (8, 8), 1, {"modes": (0, 0)}),
    ("gfn", 16, (8, 6), 2, {}),
    ("gfn", 8, (9, 7), 1, {}),
    ("afno", 16, (8, 6), 2, {"num_blocks": 4}),
    ("afno", 16, (16, 16), 1, {"num_blocks": 2, "keep_fraction": 0.25}),
    ("afno", 24, (9, 15), 2, {"num_blocks": 3, "hidden_factor": 2, "keep_fraction": 0.5}),
    ("afno", 8, (7, 5), 1, {"num_blocks": 4, "keep_fraction": 0.3, "bias": False}),   # a single kept mode
    ("afno", 16, (12, 20), 3, {"num_blocks": 4, "keep_fraction": 0.75, "activation": None}),
]


def build(name, dim, grid, kw):
    torch.manual_seed(0)
    kw = {**kw, "grid": grid} if name == "gfn" else kw
    return afno_lite.mixer(name, dim, **kw)


def counted(module, x):
    """FlopCounterMode total, with SDPA on its MATH backend (the fused CPU kernel is not counted)."""
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), fc:
        module(x)
    return fc.get_total_flops()


def case_id(case):
    name, dim, grid, batch, kw = case
    return f"{name}-d{dim}-{grid[0]}x{grid[1]}-B{batch}-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_parameter_count_equals_numel(case):
    name, dim, grid, batch, kw = case
    m = build(name, dim, grid, kw)
    assert cx.parameter_count(name, dim, grid, **kw) == sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_matmul_flops_equal_flop_counter(case):
    name, dim, grid, batch, kw = case
    m = build(name, dim, grid, kw)
    x = torch.randn(batch, *grid, dim)
    f = cx.flops(name, dim, grid, batch, **kw)
    measured = counted(m, x)
    assert f["matmul"] == measured
    assert cx.measure_flops(m, x) == measured
    assert f["total"] == f["matmul_real"] + f["elementwise"] + f["fft"]
    if name in ("attention", "kernel_attention"):
        assert f["fft"] == 0 and f["matmul_real"] == f["matmul"] > 0
    else:
        assert f["fft"] == cx.fft_flops(grid, dim, batch) > 0


def test_gfn_has_no_matmul_and_its_product_is_counted_elementwise():
    m = build("gfn", 8, (6, 10), {})
    x = torch.randn(2, 6, 10, 8)
    assert counted(m, x) == 0
    X = torch.fft.rfft2(x, dim=(1, 2))
    f = cx.flops("gfn", 8, (6, 10), 2)
    assert f["elementwise"] == 6 * X.numel()            # one complex multiply (4 mul + 2 add) per mode and channel


def test_complex_matmul_is_counted_like_a_real_one_and_real_flops_are_4x():
    """FlopCounterMode counts a complex [m,k]@[k,n] as 2mnk. The same product written
    in real arithmetic ([m,2k] @ [2k,2n]) is counted 4x that: FNO's matmul_real."""
    torch.manual_seed(0)
    m_, k_, n_ = 5, 6, 7
    a = torch.randn(m_, k_, dtype=torch.complex64)
    w = torch.randn(k_, n_, dtype=torch.complex64)
    with FlopCounterMode(display=False) as fc:
        c = a @ w
    assert fc.get_total_flops() == 2 * m_ * k_ * n_
    a_real = torch.cat([a.real, a.imag], dim=-1)                          # [m, 2k]
    w_real = torch.cat([torch.cat([w.real, w.imag], 1), torch.cat([-w.imag, w.real], 1)], 0)  # [2k, 2n]
    with FlopCounterMode(display=False) as fc_real:
        c_real = a_real @ w_real
    torch.testing.assert_close(torch.complex(c_real[:, :n_], c_real[:, n_:]), c)
    assert fc_real.get_total_flops() == 4 * fc.get_total_flops()
    f = cx.flops("fno", 8, (8, 8), 1, modes=(2, 2))
    assert f["matmul_real"] == 4 * f["matmul"]


def test_fft_is_not_counted_and_the_estimate_is_5_n_log2_n():
    x = torch.randn(1, 8, 8, 1)
    with FlopCounterMode(display=False) as fc:
        torch.fft.irfft2(torch.fft.rfft2(x, dim=(1, 2)), s=(8, 8), dim=(1, 2))
    assert fc.get_total_flops() == 0
    assert cx.fft_flops((8, 8), channels=1) == 2 * 2.5 * 64 * 6 == 1920
    assert cx.fft_flops((8, 8), channels=3, batch=2) == 6 * 1920
    assert cx.fft_flops((1, 1), channels=4) == 0
    assert cx.fft_flops((9, 15), 2) == pytest.approx(5 * 2 * 135 * math.log2(135))


def test_fused_cpu_attention_is_not_counted_but_math_sdpa_is():
    """Why measure_flops forces the MATH backend (torch 2.13, CPU)."""
    q = k = v = torch.randn(2, 3, 10, 4)
    with FlopCounterMode(display=False) as fused:
        F.scaled_dot_product_attention(q, k, v)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as math_:
        F.scaled_dot_product_attention(q, k, v)
    assert fused.get_total_flops() == 0
    assert math_.get_total_flops() == 2 * (2 * 2 * 3 * 10 * 10 * 4)   # Q K^T and A V


def test_afno_flops_follow_the_kept_mode_mask():
    full = cx.flops("afno", 16, (16, 16), 1, num_blocks=4)
    quarter = cx.flops("afno", 16, (16, 16), 1, num_blocks=4, keep_fraction=0.25)
    kept = int(afno_lite.spectral.kept_mode_mask(16, 16, 0.25).sum())
    assert kept == 5 * 3                                   # |k_H| <= 2 (5 rows) x k_W <= 2 (3 columns)
    assert quarter["matmul"] * (16 * 9) == full["matmul"] * kept
    assert quarter["fft"] == full["fft"]                   # the FFTs still cover the whole grid


def test_size_one_contractions_are_not_counted_by_flop_counter():
    """Block size b = 1: the first layer's einsums contract over a size-1 axis, which
    torch.einsum computes as an elementwise product; FlopCounterMode sees no matmul.
    With hidden_factor=2 the second layer contracts over 2 and is counted (half the total)."""
    x = torch.randn(1, 6, 6, 4)
    for f, counted_share in ((1, 0), (2, 1)):
        m = build("afno", 4, (6, 6), {"num_blocks": 4, "hidden_factor": f})
        formula = cx.flops("afno", 4, (6, 6), 1, num_blocks=4, hidden_factor=f)["matmul"]
        assert formula == 16 * (6 * 4) * 4 * 1 * f
        assert counted(m, x) * 2 == formula * counted_share


def test_afno_costs_2_over_k_of_a_full_fno():
    """Two complex block layers with f=1 versus one dense complex matrix per mode."""
    for k in (1, 2, 4, 8):
        afno = cx.flops("afno", 32, (8, 8), 1, num_blocks=k)
        fno = cx.flops("fno", 32, (8, 8), 1, modes=(4, 4))
        assert afno["matmul_real"] * k == 2 * fno["matmul_real"]


@pytest.mark.parametrize("dim, grid, batch, kw", [
    (16, (8, 6), 2, {"num_blocks": 4}),
    (24, (9, 15), 2, {"num_blocks": 3, "hidden_factor": 2, "keep_fraction": 0.5}),
    (4, (6, 6), 1, {"num_blocks": 4}),                     # b = 1: a bmm all the same
])
def test_fast_afno_counts_complex_matmuls(dim, grid, batch, kw):
    pytest.importorskip("afno_lite.fast")
    m = build("afno_fast", dim, grid, kw)
    f = cx.flops("afno_fast", dim, grid, batch, **kw)
    ref = cx.flops("afno", dim, grid, batch, **kw)
    assert counted(m, torch.randn(batch, *grid, dim)) == f["matmul"]
    assert f["matmul_real"] == 4 * f["matmul"] == ref["matmul_real"]
    assert cx.parameter_count("afno_fast", dim, grid, **kw) == sum(p.numel() for p in m.parameters())


# --------------------------------------------------------------------------- the paper's table
def test_complexity_table_rows():
    d, grid, k = 64, (16, 16), 8
    rows = {r["mixer"]: r for r in cx.complexity_table(d, grid, num_blocks=k)}
    assert list(rows) == ["attention", "gfn", "fno", "afno"]
    N = 256
    for name, r in rows.items():
        kw = {"num_heads": 8} if name == "attention" else {"modes": (8, 8)} if name == "fno" else \
            {"num_blocks": k, "hidden_factor": 1, "keep_fraction": 1.0} if name == "afno" else {}
        assert r["params"] == cx.parameter_count(name, d, grid, **kw)
        assert r["params"] == sum(p.numel() for p in build(name, d, grid, kw).parameters())
        assert r["total"] == r["matmul_real"] + r["elementwise"] + r["fft"]
        assert r["paper_flops"] == cx.PAPER_TABLE_1[name]["flops"]
    assert rows["attention"]["paper_params_value"] == 3 * d * d
    assert rows["attention"]["params"] == 4 * d * d + 4 * d             # 4 projections with biases
    assert rows["gfn"]["params"] == 2 * 16 * 9 * d                       # ~ N d real numbers x 2 (complex)
    assert rows["fno"]["paper_params_value"] == N * d * d
    # the paper's AFNO count (1 + 4/k) d^2 + 4d has one d^2 more than the layer's tensors
    assert rows["afno"]["params"] == 4 * d * d // k + 4 * d == rows["afno"]["paper_params_value"] - d * d
    assert rows["attention"]["paper_flops_value"] == N * N * d + 3 * N * d * d
    assert rows["afno"]["paper_flops_value"] == pytest.approx(N * d * d / k + N * d * math.log2(N))


# --------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("call, exc, match", [
    (lambda: cx.parameter_count("conv", 8), MixerConfigError, "unknown mixer name 'conv'"),
    (lambda: cx.flops("afno", 8, (8, 8), num_block=2), MixerConfigError, "unknown keyword argument"),
    (lambda: cx.flops("afno", 10, (8, 8), num_blocks=4), MixerConfigError, "divisible by num_blocks=4"),
    (lambda: cx.flops("fno", 8, (8, 8)), MixerInputError, r"modes=\(8, 8\) is larger than the grid 8x8"),
    (lambda: cx.flops("gfn", 8, (8,)), MixerConfigError, "grid must be a pair"),
    (lambda: cx.flops("gfn", 8, (8, 8), batch=0), MixerConfigError, "batch must be a positive integer"),
    (lambda: cx.parameter_count("afno", 0), MixerConfigError, "dim must be a positive integer"),
    (lambda: cx.parameter_count("afno", 8, keep_fraction=1.5), MixerConfigError, r"keep_fraction must be .*\(0, 1\]"),
    (lambda: cx.fft_flops((8, 8), channels=0), MixerConfigError, "channels must be a positive integer"),
])
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_unregistered_mixer_has_no_formula():
    with pytest.raises(MixerConfigError, match="unknown mixer name 'afno_variant'"):
        cx.flops("afno_variant", 8, (8, 8))
    with pytest.raises(TypeError):                      # the registry view is read-only
        afno_lite.MIXERS["afno_variant"] = afno_lite.AFNO
