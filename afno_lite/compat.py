"""NVIDIA reference AFNO weights <-> ``afno_lite``.

Explained in the chapter "AFNO, step by step" (section on the reference code).

NVIDIA's spectral layers -- FourCastNet's ``AFNO2D`` and PhysicsNeMo's
``AFNO2DLayer`` -- store four tensors with the same layout as
:class:`afno_lite.AFNO` (``k`` blocks of size ``b``, hidden factor ``f``; index 0
real, 1 imaginary; acting as ``x @ W``)::

    w1 [2, k, b, b*f]    b1 [2, k, b*f]    w2 [2, k, b*f, b]    b2 [2, k, b]

In their full models the layer is the attribute ``filter`` of ``blocks[i]``, so a
state dict has keys ``blocks.{i}.filter.w1`` etc., with a ``module.`` prefix when
saved from ``DistributedDataParallel`` (``_orig_mod.`` from ``torch.compile``), and
FourCastNet checkpoints wrap the state dict as ``{"model_state": ...}``.
:class:`afno_lite.models.TokenMixerNet` keeps its mixer at ``blocks[i].mixer``, so
``blocks.{i}.filter.*`` maps onto ``model.blocks[i].mixer``.

Same weights, (almost) same function
------------------------------------
:func:`nvidia_afno2d_forward` reproduces the reference forward pass line by line.
With copied weights it equals :class:`afno_lite.AFNO` to float32 rounding at
``keep_fraction = 1`` whenever ``W//2 <= H//2`` (square grids, ``W < H``, and ``W = H + 1``
for even ``H``), on CPU FFTs (see :func:`afno_lite.spectral.hermitian_project` for why the
backend matters). It differs

* for ``hard_thresholding_fraction < 1``: the reference keeps the rows
  ``total-kept : total+kept`` with ``total = H//2 + 1`` -- a band around the
  **Nyquist** row -- where ``afno_lite`` keeps the lowest ``|k_H|``;
* for ``W//2 > H//2`` (``W > H`` except ``W = H + 1`` for even ``H``): the reference keeps
  only the rfft columns ``:kept`` with ``kept <= H//2 + 1``, silently dropping columns
  ``>= H//2 + 1``;
* in precision: the reference computes the spectral path in float32 even for
  float64 input (``x.float()``); ``afno_lite`` keeps float64.

(:func:`afno_lite.spectral.nvidia_kept_mode_mask` draws the reference's mode set.)

Reference code, pinned (``repository@commit/path``)
---------------------------------------------------
* FourCastNet ``AFNO2D``:
  ``NVlabs/FourCastNet@7595ba67ae6157e153b6f9ec76ca13938aeff600/networks/afnonet.py``
* PhysicsNeMo ``AFNO2DLayer`` (repository ``NVIDIA/modulus``, now ``NVIDIA/physicsnemo``):
  ``NVIDIA/modulus@8a4fcec42290589f0635f4ad049ff337b2ff1c5a/physicsnemo/models/afno/afno.py``
* AFNO-transformer ``AFNO2D`` (the paper's vision code; kept count from ``N = H*W``):
  ``NVlabs/AFNO-transformer@c3271a2d3cd5917ede03fcade6398054e48a9373/afno/afno2d.py``
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_float_dtype, check_fraction, check_nonnegative, check_positive_int
from .mixers import nonzero_biases

__all__ = [
    "NvidiaWeightsError",
    "LoadReport",
    "unwrap_state_dict",
    "afno_layers",
    "load_nvidia_afno_layer",
    "nvidia_afno_layer_state",
    "load_nvidia_afno_blocks",
    "to_nvidia_state_dict",
    "nvidia_afno2d_forward",
    "nvidia_layer_forward",
]

KEYS = ("w1", "b1", "w2", "b2")
_PREFIXES = ("module.", "_orig_mod.")
_FILTER_KEY = re.compile(r"^blocks\.(\d+)\.filter\.(w1|b1|w2|b2)$")


class NvidiaWeightsError(ValueError):
    """Raised when reference weights do not fit an ``afno_lite`` layer or model."""


@dataclass
class LoadReport:
    """What :func:`load_nvidia_afno_blocks` did."""

    num_layers: int = 0
    loaded: list[str] = field(default_factory=list)    # state-dict keys copied (prefixes stripped)
    ignored: list[str] = field(default_factory=list)   # keys that are not ``blocks.i.filter.*``

    def __str__(self) -> str:
        return (f"loaded {len(self.loaded)} tensors into {self.num_layers} AFNO layers; "
                f"ignored {len(self.ignored)} other keys")


# --------------------------------------------------------------------------- state-dict plumbing
def unwrap_state_dict(obj) -> dict[str, torch.Tensor]:
    """A plain ``{key: tensor}`` dict: unwraps ``{"model_state": ...}`` (FourCastNet
    checkpoints) or ``{"state_dict": ...}``, and strips ``module.`` / ``_orig_mod.``
    prefixes (DistributedDataParallel, torch.compile)."""
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise NvidiaWeightsError(f"state_dict must be a mapping of names to tensors, got {type(obj).__name__}")
    for wrapper in ("model_state", "state_dict"):
        if wrapper in obj and isinstance(obj[wrapper], Mapping):
            obj = obj[wrapper]
            break
    out = {}
    for key, value in obj.items():
        k = _strip_wrappers(str(key))
        if k in out:
            raise NvidiaWeightsError(f"two entries map to the key {k!r} once prefixes are stripped")
        out[k] = value
    return out


def _strip_wrappers(key: str) -> str:
    """``key`` without its leading ``module.`` / ``_orig_mod.`` prefixes, in any order."""
    stripped = True
    while stripped:
        stripped = False
        for p in _PREFIXES:
            if key.startswith(p):
                key, stripped = key[len(p):], True
    return key


def _is_afno_like(m) -> bool:
    return isinstance(m, nn.Module) and all(isinstance(getattr(m, k, None), torch.Tensor) for k in KEYS)


def afno_layers(model) -> list[nn.Module]:
    """The AFNO layers of ``model``, in order: the layer itself, the items of a
    list / ``nn.ModuleList``, or ``model.blocks[i].mixer`` (``afno_lite``) /
    ``model.blocks[i].filter`` (NVIDIA naming)."""
    if _is_afno_like(model):
        return [model]
    if isinstance(model, (list, tuple, nn.ModuleList)):
        items, where = list(model), "item"
    elif isinstance(getattr(model, "blocks", None), (list, tuple, nn.ModuleList)):
        items, where = [], "blocks"
        for i, blk in enumerate(model.blocks):
            layer = getattr(blk, "mixer", None)
            if layer is None:
                layer = getattr(blk, "filter", None)
            if layer is None:
                raise NvidiaWeightsError(f"model.blocks[{i}] has neither a 'mixer' nor a 'filter' attribute")
            items.append(layer)
    else:
        raise NvidiaWeightsError(
            "expected an AFNO layer, a list of AFNO layers or a model with .blocks[i].mixer, "
            f"got {type(model).__name__}"
        )
    for i, layer in enumerate(items):
        if not _is_afno_like(layer):
            what = f"model.blocks[{i}].mixer" if where == "blocks" else f"item {i}"
            raise NvidiaWeightsError(
                f"{what} is a {type(layer).__name__}, not an AFNO layer with w1, b1, w2, b2 "
                "(build the model with mixer='afno')"
            )
    if not items:
        raise NvidiaWeightsError("no AFNO layers found (empty list or model without blocks)")
    return items


def _describe(shape_w1) -> str:
    _, k, b, h = shape_w1
    f = f"{h // b}" if b and h % b == 0 else f"{h}/{b} (not an integer)"
    return f"num_blocks={k}, block_size={b}, hidden_size_factor={f} (hidden_size={k * b})"


def _check_shapes(layer: nn.Module, tensors: Mapping[str, torch.Tensor], prefix: str) -> None:
    expected = {k: tuple(getattr(layer, k).shape) for k in KEYS}
    for k in KEYS:
        t = tensors[k]
        if not isinstance(t, torch.Tensor):
            raise NvidiaWeightsError(f"{prefix}{k} must be a tensor, got {type(t).__name__}")
        if t.is_complex() or not t.is_floating_point():
            raise NvidiaWeightsError(f"{prefix}{k} must be a real floating tensor, got dtype {t.dtype}")
    found_w1 = tuple(tensors["w1"].shape)
    for k in KEYS:
        got = tuple(tensors[k].shape)
        if got != expected[k]:
            found = (f"the checkpoint's w1 {found_w1} means {_describe(found_w1)}"
                     if len(found_w1) == 4 else f"the checkpoint's w1 has shape {found_w1}")
            raise NvidiaWeightsError(
                f"{prefix}{k} has shape {got} but the layer expects {expected[k]}: the layer has "
                f"{_describe(expected['w1'])}, {found}; build the layer with matching num_blocks "
                "and hidden_factor"
            )


# --------------------------------------------------------------------------- one layer
def load_nvidia_afno_layer(layer: nn.Module, state_dict, prefix: str = "") -> nn.Module:
    """Copy the reference tensors ``{prefix}w1, b1, w2, b2`` into ``layer`` (an
    :class:`afno_lite.AFNO`), exactly (cast to the layer's dtype/device). Returns ``layer``.

    >>> # layer = afno_lite.AFNO(768, num_blocks=8)
    >>> # load_nvidia_afno_layer(layer, ckpt["model_state"], prefix="module.blocks.0.filter.")
    """
    if not _is_afno_like(layer):
        raise NvidiaWeightsError(f"layer must be an AFNO layer with w1, b1, w2, b2, got {type(layer).__name__}")
    if not isinstance(prefix, str):
        raise NvidiaWeightsError(f"prefix must be a string such as 'blocks.0.filter.', got {prefix!r}")
    sd = unwrap_state_dict(state_dict)
    prefix = _strip_wrappers(prefix)           # stripped from the keys: strip them here too
    missing = [prefix + k for k in KEYS if prefix + k not in sd]
    if missing:
        near = sorted(k for k in sd if k.rsplit(".", 1)[-1] in KEYS)[:8]
        raise NvidiaWeightsError(
            f"missing key(s) {missing} in the state dict; keys ending in w1/b1/w2/b2 that exist: {near}"
            + (" (did you mean another prefix?)" if near else "")
        )
    tensors = {k: sd[prefix + k] for k in KEYS}
    _check_shapes(layer, tensors, prefix)
    if getattr(layer, "use_bias", True) is False:
        nonzero = nonzero_biases(tensors, prefix)
        if nonzero:
            raise NvidiaWeightsError(
                f"the layer was built with bias=False but {nonzero} are non-zero; build it with bias=True"
            )
    with torch.no_grad():
        for k in KEYS:
            getattr(layer, k).copy_(tensors[k])
    return layer


def nvidia_afno_layer_state(layer: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """The layer's tensors under the reference names ``{prefix}w1, b1, w2, b2``
    (detached copies; the layout is already NVIDIA's)."""
    if not _is_afno_like(layer):
        raise NvidiaWeightsError(f"layer must be an AFNO layer with w1, b1, w2, b2, got {type(layer).__name__}")
    return {prefix + k: getattr(layer, k).detach().clone() for k in KEYS}


# --------------------------------------------------------------------------- full models
def load_nvidia_afno_blocks(model, state_dict, strict: bool = True) -> LoadReport:
    """Load the ``blocks.{i}.filter.{w1,b1,w2,b2}`` tensors of a FourCastNet /
    PhysicsNeMo state dict (or checkpoint) into the AFNO layers of ``model``
    (``model.blocks[i].mixer`` of a :class:`~afno_lite.models.TokenMixerNet`, or a
    list of :class:`~afno_lite.AFNO`). Other keys (patch embedding, norms, MLPs,
    head) are listed in ``report.ignored``.

    With ``strict=True`` the number of filters in the state dict must equal the
    number of AFNO layers; otherwise the first ``min(n, m)`` are loaded.
    """
    layers = afno_layers(model)
    sd = unwrap_state_dict(state_dict)
    found: dict[int, dict[str, str]] = {}
    ignored = []
    for key in sd:
        m = _FILTER_KEY.match(key)
        if m:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = key
        else:
            ignored.append(key)
    if not found:
        raise NvidiaWeightsError(
            "no keys of the form 'blocks.<i>.filter.w1' (with b1, w2, b2) in the state dict; "
            f"first keys found: {list(sd)[:8]}"
        )
    indices = sorted(found)
    if indices != list(range(len(indices))):
        raise NvidiaWeightsError(f"filter blocks must be numbered 0..n-1, found block indices {indices}")
    for i in indices:
        missing = [f"blocks.{i}.filter.{k}" for k in KEYS if k not in found[i]]
        if missing:
            raise NvidiaWeightsError(f"missing key(s) {missing} in the state dict")
    if strict and len(indices) != len(layers):
        raise NvidiaWeightsError(
            f"the state dict has {len(indices)} AFNO filters (blocks.0 .. blocks.{len(indices) - 1}) but the "
            f"model has {len(layers)} AFNO layers; build the model with depth={len(indices)} "
            "or pass strict=False to load the first min(n, m)"
        )
    report = LoadReport(num_layers=min(len(indices), len(layers)), ignored=ignored)
    for i in range(report.num_layers):
        load_nvidia_afno_layer(layers[i], sd, prefix=f"blocks.{i}.filter.")
        report.loaded += [f"blocks.{i}.filter.{k}" for k in KEYS]
    return report


def to_nvidia_state_dict(model) -> dict[str, torch.Tensor]:
    """``{"blocks.{i}.filter.w1": ..., ...}`` for the AFNO layers of ``model`` (the
    keys FourCastNet / PhysicsNeMo use), detached copies."""
    out = {}
    for i, layer in enumerate(afno_layers(model)):
        out.update(nvidia_afno_layer_state(layer, prefix=f"blocks.{i}.filter."))
    return out


# --------------------------------------------------------------------------- the reference forward
def nvidia_afno2d_forward(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                          b2: torch.Tensor, num_blocks: int, sparsity_threshold: float = 0.01,
                          hard_thresholding_fraction: float = 1.0, hidden_size_factor: int = 1,
                          compute_dtype: torch.dtype | None = torch.float32) -> torch.Tensor:
    """FourCastNet ``AFNO2D.forward`` / PhysicsNeMo ``AFNO2DLayer.forward``, reproduced
    line by line, for ``x[B, H, W, C]`` (channels last).

    ``compute_dtype=torch.float32`` is the reference's ``x.float()`` (even for float64
    input); ``compute_dtype=None`` keeps the input dtype (for float64 comparisons).
    The weights are cast to the compute dtype.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise NvidiaWeightsError(f"x must be a tensor [B, H, W, C] (channels last), got {shape}")
    if x.is_complex() or not x.is_floating_point():
        raise TypeError(f"x must be a real floating tensor, got dtype {x.dtype}")
    k = check_positive_int(num_blocks, "num_blocks")
    f = check_positive_int(hidden_size_factor, "hidden_size_factor")
    lam = check_nonnegative(sparsity_threshold, "sparsity_threshold")
    frac = check_fraction(hard_thresholding_fraction, "hard_thresholding_fraction")
    check_float_dtype(compute_dtype, "compute_dtype", "a real floating-point torch.dtype or None")
    B, H, W, C = x.shape
    if C % k:
        raise NvidiaWeightsError(f"x has C={C} channels, which must be divisible by num_blocks={k}")
    bs = C // k
    expected = {"w1": (2, k, bs, bs * f), "b1": (2, k, bs * f), "w2": (2, k, bs * f, bs), "b2": (2, k, bs)}
    for name, t in zip(KEYS, (w1, b1, w2, b2), strict=True):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != expected[name]:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise NvidiaWeightsError(
                f"{name} has shape {got} but C={C}, num_blocks={k}, hidden_size_factor={f} "
                f"need {expected[name]}"
            )

    # ---- the reference, line by line --------------------------------------------------
    bias = x
    dtype = x.dtype
    cdt = x.dtype if compute_dtype is None else compute_dtype
    x = x.to(cdt)                                                         # x = x.float()
    w1, b1, w2, b2 = (t.to(device=x.device, dtype=cdt) for t in (w1, b1, w2, b2))
    x = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")
    x = x.reshape(B, H, W // 2 + 1, k, bs)
    o1_real = torch.zeros([B, H, W // 2 + 1, k, bs * f], device=x.device, dtype=cdt)
    o1_imag = torch.zeros([B, H, W // 2 + 1, k, bs * f], device=x.device, dtype=cdt)
    o2_real = torch.zeros(x.shape, device=x.device, dtype=cdt)
    o2_imag = torch.zeros(x.shape, device=x.device, dtype=cdt)

    total_modes = H // 2 + 1
    kept_modes = int(total_modes * frac)
    rows = slice(total_modes - kept_modes, total_modes + kept_modes)     # a band around the Nyquist row
    cols = slice(None, kept_modes)                                        # drops columns >= H//2+1 if W > H
    mm = lambda t, w: torch.einsum("...bi,bio->...bo", t, w)  # noqa: E731

    xs = x[:, rows, cols]
    o1_real[:, rows, cols] = F.relu(mm(xs.real, w1[0]) - mm(xs.imag, w1[1]) + b1[0])
    o1_imag[:, rows, cols] = F.relu(mm(xs.imag, w1[0]) + mm(xs.real, w1[1]) + b1[1])
    o2_real[:, rows, cols] = (mm(o1_real[:, rows, cols], w2[0]) - mm(o1_imag[:, rows, cols], w2[1]) + b2[0])
    o2_imag[:, rows, cols] = (mm(o1_imag[:, rows, cols], w2[0]) + mm(o1_real[:, rows, cols], w2[1]) + b2[1])

    x = torch.stack([o2_real, o2_imag], dim=-1)
    x = F.softshrink(x, lambd=lam)
    x = torch.view_as_complex(x)
    x = x.reshape(B, H, W // 2 + 1, C)
    x = torch.fft.irfft2(x, s=(H, W), dim=(1, 2), norm="ortho")
    x = x.type(dtype)
    return x + bias


def nvidia_layer_forward(layer: nn.Module, x: torch.Tensor,
                         compute_dtype: torch.dtype | None = torch.float32) -> torch.Tensor:
    """What NVIDIA's reference layer would compute with this :class:`afno_lite.AFNO`'s
    weights and hyper-parameters (``keep_fraction`` read as ``hard_thresholding_fraction``).
    The reference always adds its input back, whatever ``layer.residual`` says."""
    if not _is_afno_like(layer):
        raise NvidiaWeightsError(f"layer must be an AFNO layer with w1, b1, w2, b2, got {type(layer).__name__}")
    if getattr(layer, "activation", "relu") != "relu":
        raise NvidiaWeightsError(
            f"the reference layer always applies ReLU; this layer has activation={layer.activation!r}"
        )
    _, k, b, h = layer.w1.shape
    return nvidia_afno2d_forward(
        x, layer.w1, layer.b1, layer.w2, layer.b2, num_blocks=k,
        sparsity_threshold=getattr(layer, "sparsity_threshold", 0.01),
        hard_thresholding_fraction=getattr(layer, "keep_fraction", 1.0),
        hidden_size_factor=h // b, compute_dtype=compute_dtype,
    )
