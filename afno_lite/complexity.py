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
    Three facts measured with torch 2.13 on CPU that shape the convention:

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
    products, ``4 * matmul`` for complex ones (the FNO's complex einsum and the two
    complex ``baddbmm`` of ``afno_fast``).
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

The formulas themselves live in each mixer's record (:mod:`afno_lite.registry`); this module
adds the FFT estimate and checks arguments. For ``afno_fast`` with
``keep_fraction < 1`` the FFT along ``H`` is pruned to the kept columns; ``fft`` here
is the full-grid estimate, an upper bound.

:func:`complexity_table` puts these next to the paper's Table 1.
"""
from __future__ import annotations

import math

import torch

from ._checks import MixerConfigError, check_grid, check_positive_int
from .registry import SPECS, accepted_kwargs, spec

__all__ = ["PAPER_TABLE_1", "parameter_count", "flops", "fft_flops", "measure_flops",
           "complexity_table"]

#: Guibas et al. (2021), Table 1 ("Complexity, parameter count, and interpretation"),
#: as printed there: N = hw tokens, d channels, k AFNO blocks; leading-order counts.
PAPER_TABLE_1 = {
    "attention": {"flops": "N^2 d + 3 N d^2", "params": "3 d^2", "interpretation": "graph global conv."},
    "gfn": {"flops": "N d + N d log N", "params": "N d", "interpretation": "depthwise global conv."},
    "fno": {"flops": "N d^2 + N d log N", "params": "N d^2", "interpretation": "global conv."},
    "afno": {"flops": "N d^2 / k + N d log N", "params": "(1 + 4/k) d^2 + 4 d",
             "interpretation": "adaptive global conv."},
}


#: The leading-order values of those formulas, ``(flops, params)`` as functions of ``N, d, k``
#: (``log`` read as ``log2``).
_PAPER_VALUES = {
    "attention": lambda N, d, k, logN: (N * N * d + 3 * N * d * d, 3 * d * d),
    "gfn": lambda N, d, k, logN: (N * d + N * d * logN, N * d),
    "fno": lambda N, d, k, logN: (N * d * d + N * d * logN, N * d * d),
    "afno": lambda N, d, k, logN: (N * d * d / k + N * d * logN, (1 + 4 / k) * d * d + 4 * d),
}


def _paper_values(name: str, N: int, d: int, k: int) -> tuple[float, float]:
    return _PAPER_VALUES[name](N, d, k, math.log2(N) if N > 1 else 0.0)


# --------------------------------------------------------------------------- configuration
def _module(name: str, dim: int, grid, kw: dict) -> torch.nn.Module:
    """The mixer ``name`` built on the ``meta`` device (shapes only, nothing allocated), which
    validates ``kw`` exactly as the constructor does. ``grid`` fills in a ``grid=`` argument
    (a filter grid) when the constructor takes one and ``kw`` lacks it."""
    record = spec(name)
    dim = check_positive_int(dim, "dim")
    accepted, _ = accepted_kwargs(name)
    unknown = sorted(set(kw) - set(accepted))
    if unknown:
        raise MixerConfigError(f"mixer {name!r} got unknown keyword argument(s) {unknown}; expected some of {accepted}")
    kw = dict(kw)
    if grid is not None and "grid" in accepted and "grid" not in kw:
        kw["grid"] = grid
    with torch.device("meta"):
        return record.cls(dim, **kw)


def parameter_count(name: str, dim: int, grid=None, **kw) -> int:
    """Number of parameters of ``afno_lite.mixer(name, dim, **kw)`` from its formula
    (``grid`` is the filter grid of ``gfn``; unused by the others)."""
    return int(spec(name).params(_module(name, dim, grid, kw)))


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
    record = spec(name)
    out = {"matmul": 0, "matmul_real": 0, "elementwise": 0, **record.flops(_module(name, dim, (H, W), kw), H, W, B)}
    out["fft"] = fft_flops((H, W), dim, B) if record.spectral else 0.0
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
        "fno": {"modes": tuple(fno_modes)} if fno_modes is not None else SPECS["fno"].grid_kw(H, W),
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
