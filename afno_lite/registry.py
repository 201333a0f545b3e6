"""One record per token mixer: everything the rest of the library needs to know about it.

Explained in the chapter "Tokens and mixing" (one interface, mixers built by name) and used
by "Complexity and scaling" (the formulas) and the experiment chapters.

A :class:`MixerSpec` holds the class, the keyword arguments that fit a token grid, the
parameter and FLOP formulas and how the cost grows with the number of tokens. The modules
``models``, ``complexity``, ``bench``, ``experiments`` and ``train`` read these records and
never branch on a mixer's name, so a new mixer is one ``nn.Module`` class plus one
:func:`register` call::

    register(MixerSpec("my_mixer", MyMixer, "my mixer", params=..., flops=...))

FLOP formulas follow the conventions of :mod:`afno_lite.complexity` (``matmul`` as
``FlopCounterMode`` counts it, ``matmul_real`` in real flops, ``elementwise``); the FFT
estimate is added there for records with ``spectral=True``.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from torch import nn

from ._checks import MixerConfigError, MixerInputError
from .fast import FastAFNO
from .mixers import AFNO, GlobalFilter, KernelAttention, NoMixing, SelfAttention, SpectralConv2d, TokenMixer
from .spectral import kept_mode_mask, kept_rows

__all__ = ["MixerSpec", "SPECS", "MIXERS", "register", "unregister", "spec", "mixer", "accepted_kwargs"]


def _no_kw(H: int, W: int) -> dict:
    return {}


@dataclass(frozen=True)
class MixerSpec:
    """The record of one token mixer.

    ``params(module) -> int`` and ``flops(module, H, W, B) -> {"matmul", "matmul_real",
    "elementwise"}`` read the hyper-parameters from a module built on the ``meta`` device
    (shapes only). ``grid_kw(H, W)`` gives the keyword arguments that make the mixer fit an
    ``H x W`` token grid (a filter grid, every Fourier mode); :class:`~afno_lite.models.TokenMixerNet`
    and the benchmark fill them in when absent. ``growth`` is the exponent of ``N = H*W`` in the
    leading cost (2 for attention's ``N^2``), used to predict run times and memory.
    ``mixes_tokens=False`` marks a baseline that is not a token mixer (``"identity"``): it is
    built by :func:`mixer` like the others but not listed in ``afno_lite.MIXERS``.
    """

    name: str
    cls: type
    label: str
    params: Callable[[nn.Module], int]
    flops: Callable[[nn.Module, int, int, int], dict]
    grid_kw: Callable[[int, int], dict] = _no_kw
    spectral: bool = False
    growth: float = 1.0
    mixes_tokens: bool = True


class _Classes(Mapping):
    """Read-only ``name -> class`` view of the registered token mixers (``afno_lite.MIXERS``;
    baselines with ``mixes_tokens=False`` are in :data:`SPECS` only)."""

    def _names(self) -> list[str]:
        return [n for n, r in SPECS.items() if r.mixes_tokens]

    def __getitem__(self, name: str) -> type:
        if name not in self._names():
            raise KeyError(name)
        return SPECS[name].cls

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return repr({k: v.__name__ for k, v in self.items()})


SPECS: dict[str, MixerSpec] = {}
MIXERS: Mapping[str, type] = _Classes()


def register(record: MixerSpec, replace: bool = False) -> MixerSpec:
    """Add a mixer to the registry (``replace=True`` to overwrite a record of the same name)."""
    if not isinstance(record, MixerSpec):
        raise MixerConfigError(f"register expects a MixerSpec, got {type(record).__name__}")
    if not isinstance(record.name, str) or not record.name:
        # a non-string name would break every later error message that sorts the names
        raise MixerConfigError(f"MixerSpec.name must be a non-empty string, got {record.name!r}")
    if not (isinstance(record.cls, type) and issubclass(record.cls, nn.Module)):
        raise MixerConfigError(f"MixerSpec.cls must be an nn.Module class, got {record.cls!r}")
    for field in ("params", "flops", "grid_kw"):
        if not callable(getattr(record, field)):
            raise MixerConfigError(f"MixerSpec.{field} must be callable, got {getattr(record, field)!r}")
    if record.name in SPECS and not replace:
        raise MixerConfigError(f"a mixer named {record.name!r} is already registered (pass replace=True)")
    SPECS[record.name] = record
    return record


def unregister(name: str) -> None:
    """Remove a mixer from the registry (tests register toy mixers and remove them again)."""
    SPECS.pop(spec(name).name)


def spec(name: str) -> MixerSpec:
    """The record of the mixer ``name``; a clear error naming the registered ones otherwise."""
    if not isinstance(name, str) or name not in SPECS:
        raise MixerConfigError(f"unknown mixer name {name!r}; expected one of {sorted(SPECS)}")
    return SPECS[name]


def accepted_kwargs(name: str) -> tuple[list[str], bool]:
    """Keyword arguments the constructor of ``name`` takes besides ``dim`` (and whether it
    takes ``**kwargs``)."""
    params = inspect.signature(spec(name).cls).parameters
    accepted = [p for p in params if p != "dim"]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return accepted, takes_any


def mixer(name: str, dim: int, **kw) -> TokenMixer:
    """Build a token mixer by name: ``attention``, ``kernel_attention``, ``fno``, ``gfn``,
    ``afno``, ``afno_fast``, the baseline ``identity`` (no token mixing), and any mixer added
    with :func:`register`.

    >>> m = mixer("afno", 64, num_blocks=4)
    """
    cls = spec(name).cls
    accepted, takes_any = accepted_kwargs(name)
    unknown = sorted(set(kw) - set(accepted))
    if unknown and not takes_any:
        raise MixerConfigError(
            f"mixer {name!r} got unknown keyword argument(s) {unknown}; expected some of {accepted}"
        )
    return cls(dim, **kw)


# --------------------------------------------------------------------------- formulas
def _flops(matmul: int, matmul_real: int | None = None, elementwise: int = 0) -> dict:
    return {"matmul": matmul, "matmul_real": matmul if matmul_real is None else matmul_real,
            "elementwise": elementwise}


def _attention_params(m: SelfAttention) -> int:
    d = m.dim
    return 4 * d * d + (3 * d if m.q.bias is not None else 0) + d


def _attention_flops(m: SelfAttention, H: int, W: int, B: int) -> dict:
    d, N = m.dim, H * W
    return _flops(B * (8 * N * d * d + 4 * N * N * d))   # q, k, v, out projections; Q K^T and A V


def _fno_params(m: SpectralConv2d) -> int:
    m_h, m_w = m.modes
    return 2 * (2 * m_h + 1) * (m_w + 1) * m.dim * m.dim


def _fno_flops(m: SpectralConv2d, H: int, W: int, B: int) -> dict:
    m_h, m_w = m.modes
    if m_h > H // 2 or m_w > W // 2:
        raise MixerInputError(
            f"modes={(m_h, m_w)} is larger than the grid {H}x{W} allows (at most ({H // 2}, {W // 2}))"
        )
    R, M = len(kept_rows(H, m_h)[1]), m_w + 1
    matmul = 2 * B * R * M * m.dim * m.dim                  # complex einsum, counted like a real one
    return _flops(matmul, 4 * matmul)


def _gfn_params(m: GlobalFilter) -> int:
    H0, W0 = m.grid
    return 2 * H0 * (W0 // 2 + 1) * m.dim


def _gfn_flops(m: GlobalFilter, H: int, W: int, B: int) -> dict:
    return _flops(0, 0, 6 * B * H * (W // 2 + 1) * m.dim)   # 4 mul + 2 add per complex product


def _afno_params(m: AFNO) -> int:
    d, f, b = m.dim, m.hidden_factor, m.block_size
    return 4 * d * b * f + 2 * d * f + 2 * d       # w1 + w2, b1, b2 (b1/b2 exist even with bias=False)


def _afno_real_flops(m: AFNO, H: int, W: int, B: int) -> int:
    kept = int(kept_mode_mask(H, W, m.keep_fraction).sum())
    return 16 * B * kept * m.dim * m.block_size * m.hidden_factor


def _afno_flops(m: AFNO, H: int, W: int, B: int) -> dict:
    return _flops(_afno_real_flops(m, H, W, B))            # 8 real einsums


def _afno_fast_flops(m: FastAFNO, H: int, W: int, B: int) -> dict:
    real = _afno_real_flops(m, H, W, B)
    return _flops(real // 4, real)                          # 2 complex baddbmm, counted as real ones


def _fno_grid_kw(H: int, W: int) -> dict:
    return {"modes": (H // 2, W // 2)}                      # every mode of the grid


def _gfn_grid_kw(H: int, W: int) -> dict:
    return {"grid": (H, W)}


for _record in (
    MixerSpec("attention", SelfAttention, "attention", _attention_params, _attention_flops, growth=2.0),
    MixerSpec("kernel_attention", KernelAttention, "attention as a kernel sum", _attention_params,
              _attention_flops, growth=2.0),
    MixerSpec("fno", SpectralConv2d, "FNO", _fno_params, _fno_flops, _fno_grid_kw, spectral=True),
    MixerSpec("gfn", GlobalFilter, "GFN", _gfn_params, _gfn_flops, _gfn_grid_kw, spectral=True),
    MixerSpec("afno", AFNO, "AFNO", _afno_params, _afno_flops, spectral=True),
    MixerSpec("afno_fast", FastAFNO, "AFNO fast", _afno_params, _afno_fast_flops, spectral=True),
):
    register(_record)
del _record


#: The baseline that is not a token mixer: no token mixing at all (``forward(x) = x``).
register(MixerSpec("identity", NoMixing, "no token mixing", lambda m: 0, lambda m, H, W, B: _flops(0),
                   mixes_tokens=False))
