"""Parameter and FLOP formulas per token mixer, checked against
``torch.utils.flop_counter.FlopCounterMode`` and ``sum(p.numel())`` in the tests.

Explained in the chapter "Complexity and scaling".

Conventions (all counts are for one forward pass of one mixer on ``x[B, H, W, d]``,
``N = H*W`` tokens)
------------------------------------------------------------------------------------
``matmul``
    What ``FlopCounterMode`` reports: ``2*m*n*k`` for every ``[m, k] @ [k, n]``
    product (``mm``, ``addmm``, ``bmm``; an einsum is lowered to ``bmm``). Bias
    additions, activations, softmax, soft-thresholding, indexing are not counted.
    Two facts measured with torch 2.13 on CPU that shape the convention:

    * a **complex** matmul is counted exactly like a real one (``2*m*n*k``),
      although one complex multiply-add costs 8 real flops instead of 2;
    * the fused CPU attention kernel (``_scaled_dot_product_flash_attention_for_cpu``)
      is **not** counted at all; under ``sdpa_kernel(SDPBackend.MATH)`` SDPA lowers to
      two ``bmm`` and ``Q K^T`` and ``A V`` are counted. :func:`measure_flops` uses MATH;
    * when the contracted dimension of an einsum has size 1 (AFNO with block size
      ``b = d/k = 1``, an FNO with ``d = 1``) ``torch.einsum`` uses an elementwise
      multiply instead of ``bmm`` and nothing is counted; the formulas here still
      count ``2*m*n*k`` for those products.

``matmul_real``
    Real floating-point operations of those products: ``matmul`` for real
    products, ``4 * matmul`` for complex ones (only the FNO's complex einsum).
``elementwise``
    Real flops of a mixing product that is not a matmul: GFN's complex filter
    product, 6 real flops (4 mul + 2 add) per complex multiply. 0 for the others.
``fft``
    Analytic estimate (``FlopCounterMode`` does not count FFTs): a complex FFT of
    length ``n`` costs ``5 n log2 n`` flops (radix-2 Cooley-Tukey); a real-input
    ``rfft2``/``irfft2`` of ``N = H*W`` points costs about half, ``2.5 N log2 N``, per
    channel and batch item. A spectral mixer does one ``rfft2`` and one ``irfft2``:
    ``fft = 5 * B * d * N * log2 N``.
``total``
    ``matmul_real + elementwise + fft``.

Formulas (``k`` AFNO blocks, ``b = d/k``, hidden factor ``f``; FNO modes ``(m_h, m_w)``)
-----------------------------------------------------------------------------------
=============  =================================  ==================================================
mixer          parameters                         matmul (FlopCounterMode convention)
=============  =================================  ==================================================
attention      ``4 d^2 + 4 d`` (``4d^2 + d``       ``B (8 N d^2 + 4 N^2 d)``: q, k, v, out projections
               without q/k/v bias)                and ``Q K^T``, ``A V``
fno            ``2 (2 m_h + 1)(m_w + 1) d^2``      ``2 B R M d^2`` complex (``R = min(2m_h+1, H)`` rows,
                                                  ``M = m_w + 1`` columns); ``matmul_real`` = 4x
gfn            ``2 H0 (W0//2 + 1) d``              0 (``elementwise = 6 B H (W//2+1) d``)
afno           ``4 d b f + 2 d f + 2 d``           ``16 B K d b f`` with ``K`` kept rfft modes
               (``= 4 d^2 f / k + 2 d f + 2 d``)   (:func:`afno_lite.spectral.kept_mode_mask`):
                                                  two layers x four real einsums of ``2 K k b (b f)``
afno_fast      as afno (same tensors)             ``4 B K d b f``: one complex ``baddbmm`` per layer;
                                                  ``matmul_real`` = 4x, the same as afno's
=============  =================================  ==================================================

For ``afno_fast`` (registered when :mod:`afno_lite.fast` is imported) with
``keep_fraction < 1`` the FFT along ``H`` is pruned to the kept columns; ``fft`` here
is the full-grid estimate, an upper bound.

:func:`complexity_table` puts these next to the paper's Table 1.
"""
from __future__ import annotations

import inspect
import math

import torch

from ._checks import MixerConfigError, MixerInputError, check_grid, check_positive_int
from .mixers import MIXERS
from .spectral import kept_mode_mask

__all__ = ["FORMULA_MIXERS", "PAPER_TABLE_1", "parameter_count", "flops", "fft_flops", "measure_flops",
           "complexity_table"]

FORMULA_MIXERS = ("attention", "kernel_attention", "fno", "gfn", "afno", "afno_fast")

#: Guibas et al. (2021), Table 1 ("Complexity, parameter count, and interpretation"),
#: as printed there: N = hw tokens, d channels, k AFNO blocks; leading-order counts.
PAPER_TABLE_1 = {
    "attention": {"flops": "N^2 d + 3 N d^2", "params": "3 d^2", "interpretation": "graph global conv."},
    "gfn": {"flops": "N d + N d log N", "params": "N d", "interpretation": "depthwise global conv."},
    "fno": {"flops": "N d^2 + N d log N", "params": "N d^2", "interpretation": "global conv."},
    "afno": {"flops": "N d^2 / k + N d log N", "params": "(1 + 4/k) d^2 + 4 d",
             "interpretation": "adaptive global conv."},
}


def _paper_values(name: str, N: int, d: int, k: int) -> tuple[float, float]:
    logN = math.log2(N) if N > 1 else 0.0
    if name == "attention":
        return N * N * d + 3 * N * d * d, 3 * d * d
    if name == "gfn":
        return N * d + N * d * logN, N * d
    if name == "fno":
        return N * d * d + N * d * logN, N * d * d
    return N * d * d / k + N * d * logN, (1 + 4 / k) * d * d + 4 * d


# --------------------------------------------------------------------------- configuration
def _config(name: str, dim: int, grid, kw: dict) -> dict:
    """Validate exactly as the mixer's constructor does (it is built on the ``meta``
    device, which allocates nothing) and return its full keyword configuration."""
    if not isinstance(name, str) or name not in MIXERS:
        raise MixerConfigError(f"unknown mixer name {name!r}; expected one of {sorted(MIXERS)}")
    if name not in FORMULA_MIXERS:
        raise MixerConfigError(f"no complexity formula for mixer {name!r}; formulas exist for {list(FORMULA_MIXERS)}")
    dim = check_positive_int(dim, "dim")
    cls = MIXERS[name]
    sig = inspect.signature(cls).parameters
    accepted = [p for p in sig if p != "dim"]
    unknown = sorted(set(kw) - set(accepted))
    if unknown:
        raise MixerConfigError(f"mixer {name!r} got unknown keyword argument(s) {unknown}; expected some of {accepted}")
    kw = dict(kw)
    if name == "gfn" and grid is not None:
        kw["grid"] = grid
    with torch.device("meta"):
        m = cls(dim, **kw)
    cfg = {p: v.default for p, v in sig.items() if v.default is not inspect.Parameter.empty}
    cfg.update(kw)
    cfg["module"] = m
    return cfg


def parameter_count(name: str, dim: int, grid=None, **kw) -> int:
    """Number of parameters of ``afno_lite.mixer(name, dim, **kw)`` from its formula
    (``grid`` is the filter grid of ``gfn``; unused by the others)."""
    cfg = _config(name, dim, grid, kw)
    d = dim
    if name in ("attention", "kernel_attention"):
        return 4 * d * d + (3 * d if cfg["qkv_bias"] else 0) + d
    if name == "fno":
        m_h, m_w = cfg["module"].modes
        return 2 * (2 * m_h + 1) * (m_w + 1) * d * d
    if name == "gfn":
        H0, W0 = cfg["module"].grid
        return 2 * H0 * (W0 // 2 + 1) * d
    k, f = cfg["module"].num_blocks, cfg["module"].hidden_factor
    b = d // k
    return 4 * d * b * f + 2 * d * f + 2 * d       # w1 + w2, b1, b2 (b1/b2 exist even with bias=False)


def fft_flops(grid, channels: int, batch: int = 1) -> float:
    """Analytic cost of one ``rfft2`` plus one ``irfft2`` over ``grid=(H, W)`` for
    ``batch * channels`` signals: ``2 * 2.5 * N * log2(N)`` each, ``N = H*W``."""
    H, W = check_grid(grid)
    n = H * W
    c = check_positive_int(channels, "channels") * check_positive_int(batch, "batch")
    return 5.0 * c * n * math.log2(n) if n > 1 else 0.0


def flops(name: str, dim: int, grid, batch: int = 1, **kw) -> dict:
    """FLOPs of one forward pass of ``afno_lite.mixer(name, dim, **kw)`` on
    ``x[batch, H, W, dim]`` with ``grid=(H, W)``: a dict with ``matmul``,
    ``matmul_real``, ``elementwise``, ``fft`` and ``total`` (see the module docstring
    for what each one counts)."""
    H, W = check_grid(grid)
    B = check_positive_int(batch, "batch")
    cfg = _config(name, dim, (H, W), kw)
    d, N = dim, H * W
    out = {"matmul": 0, "matmul_real": 0, "elementwise": 0, "fft": 0.0}
    if name in ("attention", "kernel_attention"):
        out["matmul"] = out["matmul_real"] = B * (8 * N * d * d + 4 * N * N * d)
    elif name == "fno":
        m_h, m_w = cfg["module"].modes
        if m_h > H // 2 or m_w > W // 2:
            raise MixerInputError(
                f"modes={(m_h, m_w)} is larger than the grid {H}x{W} allows (at most ({H // 2}, {W // 2}))"
            )
        R, M = min(2 * m_h + 1, H), m_w + 1
        out["matmul"] = 2 * B * R * M * d * d
        out["matmul_real"] = 4 * out["matmul"]
        out["fft"] = fft_flops((H, W), d, B)
    elif name == "gfn":
        out["elementwise"] = 6 * B * H * (W // 2 + 1) * d
        out["fft"] = fft_flops((H, W), d, B)
    else:
        m = cfg["module"]
        kept = int(kept_mode_mask(H, W, m.keep_fraction).sum())
        b = d // m.num_blocks
        out["matmul_real"] = 16 * B * kept * d * b * m.hidden_factor
        # afno: 8 real einsums; afno_fast: 2 complex baddbmm, counted as real ones (1/4 of the real flops)
        out["matmul"] = out["matmul_real"] if name == "afno" else out["matmul_real"] // 4
        out["fft"] = fft_flops((H, W), d, B)
    out["total"] = out["matmul_real"] + out["elementwise"] + out["fft"]
    return out


def measure_flops(module: torch.nn.Module, x: torch.Tensor) -> int:
    """``FlopCounterMode`` total of one forward pass (no grad), with SDPA forced onto
    its MATH backend so that ``Q K^T`` and ``A V`` are counted on CPU."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        module(x)
    return counter.get_total_flops()


def complexity_table(dim: int, grid, batch: int = 1, num_blocks: int = 8, hidden_factor: int = 1,
                     keep_fraction: float = 1.0, num_heads: int = 8, fno_modes=None) -> list[dict]:
    """Rows for the paper's Table 1 (attention, GFN, FNO, AFNO) at one size: the
    paper's formulas (strings and leading-order values, ``log`` read as ``log2``)
    beside this library's exact counts.

    FNO keeps every mode of the grid unless ``fno_modes`` is given (the paper's
    ``N d^2`` parameters assume that). Keys per row: ``mixer``, ``paper_flops``,
    ``paper_params``, ``interpretation``, ``paper_flops_value``,
    ``paper_params_value``, ``params``, ``matmul``, ``matmul_real``, ``elementwise``,
    ``fft``, ``total``.
    """
    H, W = check_grid(grid)
    kws = {
        "attention": {"num_heads": num_heads},
        "gfn": {},
        "fno": {"modes": tuple(fno_modes) if fno_modes is not None else (H // 2, W // 2)},
        "afno": {"num_blocks": num_blocks, "hidden_factor": hidden_factor, "keep_fraction": keep_fraction},
    }
    rows = []
    for name, kw in kws.items():
        paper_f, paper_p = _paper_values(name, H * W, dim, num_blocks)
        row = {"mixer": name, "paper_flops": PAPER_TABLE_1[name]["flops"],
               "paper_params": PAPER_TABLE_1[name]["params"],
               "interpretation": PAPER_TABLE_1[name]["interpretation"],
               "paper_flops_value": paper_f, "paper_params_value": paper_p,
               "params": parameter_count(name, dim, (H, W), **kw)}
        row.update(flops(name, dim, (H, W), batch, **kw))
        rows.append(row)
    return rows
