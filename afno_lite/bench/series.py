"""What the benchmark times: the series (a mixer with its keyword arguments, or a reference
such as the FFT floor) and how much tensor memory one call needs.

Explained in chapter "Complexity and scaling" (``07_complexity_and_scaling``).

A series backed by a registered mixer is built with :func:`afno_lite.mixer` from the mixer's
record (:mod:`afno_lite.registry`): its parameter count comes from the record's formula and
its predicted growth from the record's ``growth``. Any registered mixer without a series of its
own can be timed too: :func:`series_for` makes one from the record's ``grid_kw``.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import NamedTuple

import torch

from .. import complexity
from ..registry import SPECS, mixer, spec
from ..spectral import kept_mode_cutoffs

__all__ = ["SCHEMA", "PASSES", "PRECISIONS", "Series", "SERIES", "COMPILED", "COMPILED_TOL", "series_for", "build",
           "compiled_mismatch", "minor_faults", "param_count", "growth", "peak_memory_bytes", "physicsnemo_layer_cls"]


SCHEMA = "afno_lite.bench.scaling/1"
#: What is timed: the forward pass, or the forward and the backward pass.
PASSES = ("fwd", "fwd+bwd")
#: Precisions: float32, or the forward pass under ``torch.autocast(dtype=torch.bfloat16)`` (the
#: backward pass outside it, as in training). Rows without ``precision`` (older results) are fp32.
PRECISIONS = ("fp32", "bf16")


def _no_kw(H: int, W: int) -> dict:
    return {}


class Series(NamedTuple):
    """One timed series. ``SERIES[name][0]`` is its label."""

    label: str
    description: str
    mixer: str | None = None                 # a registered mixer ...
    kw: Callable[[int, int], dict] = _no_kw  # ... built with these keyword arguments on an H x W grid
    build: Callable | None = None            # or a custom builder (C, H, W, device) -> (module, fn, cf)
    compile: dict | None = None              # through afno_lite.fast.compiled(module, **compile)


def _floor(x: torch.Tensor) -> torch.Tensor:
    H, W = x.shape[1], x.shape[2]
    X = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")
    return torch.fft.irfft2(X, s=(H, W), dim=(1, 2), norm="ortho")


def _floor_cf(x: torch.Tensor) -> torch.Tensor:
    H, W = x.shape[-2], x.shape[-1]
    return torch.fft.irfft2(torch.fft.rfft2(x, norm="ortho"), s=(H, W), norm="ortho")


def physicsnemo_layer_cls():
    """NVIDIA's ``AFNO2DLayer`` when ``physicsnemo`` is importable, else ``None``."""
    try:  # optional: NVIDIA's package (not a dependency of afno_lite)
        from physicsnemo.models.afno.afno import AFNO2DLayer
    except Exception:  # noqa: BLE001 -- any import failure means "not available"
        return None
    return AFNO2DLayer


def _nvidia_style(C: int, H: int, W: int, device):
    from ..compat import nvidia_afno2d_forward

    m = mixer("afno", C, num_blocks=8, check_finite=False).to(device)
    return m, (lambda x: nvidia_afno2d_forward(x, m.w1, m.b1, m.w2, m.b2, num_blocks=8)), False


def _physicsnemo(C: int, H: int, W: int, device):
    cls = physicsnemo_layer_cls()
    if cls is None:
        raise RuntimeError("physicsnemo is not importable")
    m = cls(hidden_size=C, num_blocks=8, sparsity_threshold=0.01, hard_thresholding_fraction=1,
            hidden_size_factor=1).to(device)
    return m, m, False


def _kw(**kw) -> Callable[[int, int], dict]:
    return lambda H, W: dict(kw)


#: name -> Series. The order is the round-robin order.
SERIES = {
    "attention_h1": Series("attention, 1 head",
                           "SelfAttention(C, num_heads=1): SDPA with q/k/v/out projections",
                           "attention", _kw(num_heads=1)),
    "attention_h8": Series("attention, 8 heads", "SelfAttention(C, num_heads=8)", "attention", _kw(num_heads=8)),
    "gfn": Series("GFN", "GlobalFilter(C, grid=(H, W)): one complex weight per mode and channel", "gfn",
                  lambda H, W: {"grid": (H, W)}),
    "fno_all": Series("FNO, all modes",
                      "SpectralConv2d(C, modes=(H//2, W//2)): dense C x C complex matrix per mode", "fno",
                      lambda H, W: {"modes": (H // 2, W // 2)}),
    "fno_25": Series("FNO, 25 % modes", "SpectralConv2d(C, modes=kept_mode_cutoffs(H, W, 0.25))", "fno",
                     lambda H, W: {"modes": kept_mode_cutoffs(H, W, 0.25)}),
    "afno": Series("AFNO (reference)", "afno_lite.mixers.AFNO(C, num_blocks=8), the readable reference", "afno",
                   _kw(num_blocks=8)),
    "afno_nvidia_style": Series("AFNO, NVIDIA-style code",
                                "afno_lite.compat.nvidia_afno2d_forward: NVIDIA's AFNO2DLayer einsum code path "
                                "re-implemented line by line (a stand-in, not NVIDIA's package)",
                                "afno", _kw(num_blocks=8), _nvidia_style),
    "afno_physicsnemo": Series("AFNO, physicsnemo AFNO2DLayer", "physicsnemo's AFNO2DLayer (only when importable)",
                               "afno", _kw(num_blocks=8), _physicsnemo),
    "afno_fast": Series("AFNO fast", "afno_lite.fast.FastAFNO(C, num_blocks=8)", "afno_fast", _kw(num_blocks=8)),
    "afno_fast_k25": Series("AFNO fast, keep 25 %", "FastAFNO(C, num_blocks=8, keep_fraction=0.25)", "afno_fast",
                            _kw(num_blocks=8, keep_fraction=0.25)),
    "afno_fast_compiled": Series("AFNO fast, compiled",
                                 "afno_lite.fast.compiled(FastAFNO(C, num_blocks=8)): torch.compile, mode "
                                 "'reduce-overhead' (inductor + CUDA graphs) on CUDA, the default mode elsewhere",
                                 "afno_fast", _kw(num_blocks=8), compile={}),
    "afno_fast_graphs": Series("AFNO fast, CUDA graphs",
                               "afno_lite.fast.compiled(FastAFNO(C, num_blocks=8), backend='cudagraphs'): the eager "
                               "kernels replayed as CUDA graphs (no code generation)",
                               "afno_fast", _kw(num_blocks=8), compile={"backend": "cudagraphs"}),
    "fft_floor": Series("FFT floor", "irfft2(rfft2(x)) over (H, W) of the channels-last tokens",
                        build=lambda C, H, W, device: (None, _floor, False)),
    "fft_floor_cf": Series("FFT floor, channels-first", "irfft2(rfft2(x)) on a contiguous [B, C, H, W] copy",
                           build=lambda C, H, W, device: (None, _floor_cf, True)),
}


def series_for(name: str) -> Series:
    """The series ``name``: one of :data:`SERIES`, or a registered mixer timed with its record's
    ``grid_kw`` (so a newly registered mixer runs through the benchmark with no other change)."""
    if name in SERIES:
        return SERIES[name]
    if name in SPECS:
        r = spec(name)
        return Series(r.label, f"afno_lite.mixer({name!r}, C, **grid_kw(H, W))", name, r.grid_kw)
    raise ValueError(f"unknown series {name!r}; expected one of {list(SERIES)} or a registered mixer "
                     f"{sorted(SPECS)}")


#: Series that go through ``torch.compile`` (not in the CPU runs unless named: compiling costs
#: tens of seconds per grid there).
COMPILED = tuple(n for n, s in SERIES.items() if s.compile is not None)


def build(name: str, C: int, H: int, W: int, device,
          compile_kw: dict | None = None) -> tuple[torch.nn.Module | None, Callable, bool]:
    """(module or None, function of the channels-last input, wants channels-first input).
    ``compile_kw`` overrides the compile options of a compiled series (e.g. a tracing-only
    ``backend`` for a dry run on CPU)."""
    s = series_for(name)
    if s.build is not None:
        return s.build(C, H, W, device)
    m = mixer(s.mixer, C, check_finite=False, **s.kw(H, W)).to(device)
    if s.compile is not None:
        from ..fast import compiled

        return m, compiled(m, **{**s.compile, **(compile_kw or {})}), False
    return m, m, False


#: The largest ``max |compiled - eager| / max |eager|`` (output, and each gradient for ``fwd+bwd``)
#: a compiled series may show before it is timed: float32 rounding and bfloat16 rounding with
#: room for fused kernels that round elsewhere. A compiler that gets the layer wrong is far
#: above either (under torch 2.11 the fast AFNO's parameter gradients were off by 1.0 of their
#: largest entry, before :mod:`afno_lite.fast` avoided the alias that caused it).
COMPILED_TOL = {"fp32": 1e-3, "bf16": 1e-1}


def _rel_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = float(b.detach().abs().max())
    gap = float((a.detach().float() - b.detach().float()).abs().max())
    return gap / scale if scale > 0 else gap


def compiled_mismatch(module: torch.nn.Module, fn: Callable, x: torch.Tensor, g: torch.Tensor, mode: str,
                      precision: str = "fp32", device_type: str = "cpu") -> str | None:
    """Why the compiled ``fn`` is not the eager ``module`` it was made from, or ``None`` when the
    output (and, for ``mode="fwd+bwd"``, the gradients of the input and of every parameter)
    agree within :data:`COMPILED_TOL` on the input ``x`` and output gradient ``g`` (an exception
    is a reason too). Run under the same ``precision`` (autocast) and grad mode as the timed
    call; a compiled series that fails this is not timed (a fast wrong layer is not a result)."""
    low = {"fp32": None, "bf16": torch.bfloat16}[precision]
    params = [p for p in module.parameters() if p.requires_grad]

    def outputs(f) -> list[torch.Tensor]:
        xi = x.detach().clone().requires_grad_(mode == "fwd+bwd")
        with torch.set_grad_enabled(mode == "fwd+bwd"), torch.autocast(device_type, dtype=low or torch.bfloat16,
                                                                        enabled=low is not None):
            y = f(xi)
        out = [y.detach().clone()]   # clone: a CUDA graph's output is overwritten by its next replay
        if mode == "fwd+bwd":
            out += [t.clone() for t in torch.autograd.grad(y, [xi, *params], g.to(y.dtype))]
        return out

    try:
        ref, got = outputs(module), outputs(fn)
    except Exception as exc:  # noqa: BLE001 -- reported as the reason the series is not timed
        return f"compiled check failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    names = ["output"] + (["input gradient"] + [f"gradient of {n}" for n, p in module.named_parameters()
                                                 if p.requires_grad] if mode == "fwd+bwd" else [])
    tol = COMPILED_TOL[precision]
    bad = [(n, gap) for a, b, n in zip(got, ref, names, strict=True) if (gap := _rel_gap(a, b)) > tol]
    if not bad:
        return None
    what, gap = max(bad, key=lambda b: b[1])
    return (f"compiled output differs from the eager layer: {what} off by {gap:.2e} of its largest entry "
            f"({len(bad)} of {len(names)} tensors over the tolerance {tol:g}, {precision}); not timed")


def param_count(name: str, C: int, H: int, W: int) -> int:
    """Parameters of a series from its mixer's formula (nothing is allocated)."""
    s = series_for(name)
    return complexity.parameter_count(s.mixer, C, **s.kw(H, W)) if s.mixer else 0


def growth(name: str) -> float:
    """Exponent of ``N`` in the leading cost of a series (its mixer's record; 1 otherwise)."""
    s = series_for(name)
    return spec(s.mixer).growth if s.mixer else 1.0


# --------------------------------------------------------------------------- memory
class _LiveTensorBytes:
    """Peak bytes of tensor storages created by operators and alive at the same time."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_leaves

        tracker = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in tree_leaves(out):
                    if isinstance(t, torch.Tensor):
                        tracker._track(t)
                return out

        self.mode = _Mode()
        self.live: dict = {}
        self.current = 0
        self.peak = 0

    def _track(self, t: torch.Tensor) -> None:
        st = t.untyped_storage()
        key = (str(st.device), st.data_ptr())
        n = st.nbytes()
        if n and key not in self.live:
            self.live[key] = n
            self.current += n
            self.peak = max(self.peak, self.current)
            weakref.finalize(st, self._free, key)

    def _free(self, key) -> None:
        self.current -= self.live.pop(key, 0)


def minor_faults(fn) -> int | None:
    """Minor page faults of this process while ``fn()`` runs (``getrusage``'s ``ru_minflt``):
    pages the call touched for the first time, i.e. memory the allocator had to take fresh from
    the operating system (each one costs a trap and a zeroed page). ``None`` where the
    ``resource`` module is missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fn()
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)


def peak_memory_bytes(fn, device=None) -> int:
    """Peak tensor memory (bytes) allocated while ``fn()`` runs (see :mod:`afno_lite.bench`)."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    tracker = _LiveTensorBytes()
    with tracker.mode:
        fn()
    return int(tracker.peak)
