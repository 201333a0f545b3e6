"""Input validation shared by every module (mixers, models, trainer, data, PDE solver, explorers).

The public entry points of those modules check their arguments here so that a reader gets one
clear sentence naming the argument and what was expected, never a deep torch traceback. The
rule for exception types: a wrong *type* (not a tensor, a complex or integer tensor) is a
``TypeError``; a bad value of a hyper-parameter or option is a :class:`MixerConfigError` (or
the trainer's ``ConfigError``, a subclass); a tensor of the wrong shape or with NaN/Inf is a
:class:`MixerInputError`. All of them are ``ValueError`` subclasses except ``TypeError``.
Known departures from the rule:

* :func:`check_image` (the explorers' images) raises :class:`MixerConfigError` for every bad
  image, a non-tensor or an integer tensor included;
* :func:`check_same_dtype` (a mixer's input in another float dtype than its parameters)
  raises :class:`MixerInputError`, where :class:`afno_lite.models.TokenMixerNet` raises
  ``TypeError`` for the same mismatch;
* :mod:`afno_lite.compat` raises its ``NvidiaWeightsError`` (a ``ValueError``) for weights
  that are not real floating tensors and for an ``x`` that is not a rank-4 tensor, and
  ``afno_lite.train.metrics`` a plain ``ValueError`` for tensors of mismatched shapes.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import torch
from numpy import bool_ as np_bool


class MixerInputError(ValueError):
    """Raised when a tensor handed to a token mixer has the wrong shape or values."""


class MixerConfigError(ValueError):
    """Raised when a token mixer is built with invalid hyper-parameters."""


def check_tokens(x, dim: int, name: str = "x", check_finite: bool = True, channels_first: bool = False,
                 owner: str = "the mixer", size_name: str = "dim") -> None:
    """Check that ``x`` is a real floating tensor of shape ``[B, H, W, dim]`` (tokens, channels
    last) or, with ``channels_first=True``, ``[B, dim, H, W]`` (images, as the models take them)."""
    layout = "[B, C, H, W] (channels first)" if channels_first else "[B, H, W, C] (channels last)"
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {layout.split(' (')[0]}, got {type(x).__name__}")
    if x.dim() != 4:
        raise MixerInputError(f"{name} must have rank 4 {layout}, got rank {x.dim()} with shape {tuple(x.shape)}")
    if x.is_complex():
        raise TypeError(f"{name} must be real (a real floating-point tensor: float16/bfloat16/float32/float64), "
                        f"got complex dtype {x.dtype}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}; call {name}.float() first "
                        "(a real floating-point tensor is expected)")
    axis = 1 if channels_first else -1
    if x.shape[axis] != dim:
        where = "in dimension 1" if channels_first else "in its last dimension"
        expected = f"[B, {dim}, H, W]" if channels_first else f"[B, H, W, {dim}]"
        raise MixerInputError(
            f"{name} has {x.shape[axis]} channels {where} but {owner} was built with {size_name}={dim}; "
            f"expected shape {expected}, got {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise MixerInputError(f"{name} has an empty batch or grid dimension: shape {tuple(x.shape)}")
    if check_finite and x.device.type != "meta" and not torch.isfinite(x).all():
        raise MixerInputError(
            f"{name} contains NaN or Inf values; pass finite inputs "
            f"(or build {owner} with check_finite=False to skip this check)"
        )


#: The dtypes ``torch.autocast`` casts to its own dtype before a matmul or convolution (never float64).
_AUTOCAST_CASTS = (torch.float16, torch.bfloat16, torch.float32)


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The autocast dtype when ``torch.autocast`` is enabled for ``device_type``, else ``None``
    (also for a device type autocast does not know, such as ``meta``)."""
    try:
        enabled = torch.is_autocast_enabled(device_type)
    except RuntimeError:        # "unknown device type for autocast": no autocast there
        return None
    if not enabled:
        return None
    return torch.get_autocast_dtype(device_type)


def autocast_reconciles(x: torch.Tensor, dtype: torch.dtype) -> bool:
    """Whether ``torch.autocast``, enabled for ``x``'s device, casts both ``x`` and parameters of
    ``dtype`` to its own dtype before they meet (float16/bfloat16/float32, never float64)."""
    return (x.dtype in _AUTOCAST_CASTS and dtype in _AUTOCAST_CASTS
            and autocast_dtype(x.device.type) is not None)


def check_same_dtype(x: torch.Tensor, dtype: torch.dtype, name: str = "x", owner: str = "the mixer") -> None:
    """Check that ``x`` has the floating dtype of ``owner``'s parameters (layers that
    multiply by their weights directly, such as attention's projections, need it), unless
    ``torch.autocast`` casts both (:func:`autocast_reconciles`)."""
    if x.dtype != dtype and not autocast_reconciles(x, dtype):
        raise MixerInputError(
            f"{name} has dtype {x.dtype} but the parameters of {owner} are {dtype}; expected {name} in {dtype} "
            f"(call {name}.to({dtype}) or convert the module with .to({x.dtype}))"
        )


def check_same_device(x: torch.Tensor, module, name: str = "x", owner: str = "the mixer") -> None:
    """Check that ``x`` is on the device of ``module``'s parameters (none: nothing to check)."""
    p = next(module.parameters(), None)
    if p is not None and x.device != p.device:
        raise MixerInputError(
            f"{name} is on {x.device} but the parameters of {owner} are on {p.device}; move one of them "
            f"({name}.to('{p.device}') or the module's .to('{x.device}'))"
        )


def _is_int(value) -> bool:
    # numbers.Integral accepts Python and NumPy integers; bool is an int subclass but never a count
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_float_dtype(dtype, name: str = "dtype", what: str = "a floating-point torch.dtype or None"):
    """``None`` or a real floating-point ``torch.dtype`` (a string such as ``"float"`` is not one)."""
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise MixerConfigError(f"{name} must be {what}, got {dtype!r}")
    return dtype


def check_bool(value, name: str) -> bool:
    """A switch: ``True`` or ``False`` (a NumPy boolean too), never a string or a number, which
    ``bool()`` would turn into ``True`` whatever they say (``bool("False")``)."""
    if not isinstance(value, (bool, np_bool)):
        raise MixerConfigError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_positive_int(value, name: str, what: str = "a positive integer") -> int:
    if not _is_int(value) or value < 1:
        raise MixerConfigError(f"{name} must be {what}, got {value!r}")
    return int(value)


def check_positive(value, name: str) -> float:
    """A finite real number > 0."""
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise MixerConfigError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_fraction_open(value, name: str) -> float:
    """A real number strictly between 0 and 1."""
    if not _is_real(value) or not math.isfinite(value) or not 0 < value < 1:
        raise MixerConfigError(f"{name} must be a fraction in (0, 1), got {value!r}")
    return float(value)


def divisors(n: int) -> list[int]:
    """Positive divisors of ``n`` (the valid ``num_heads``/``num_blocks`` for ``dim = n``)."""
    n = check_positive_int(n, "n")
    return [d for d in range(1, n + 1) if n % d == 0]


def check_divides(value, dim: int, name: str) -> int:
    """A positive integer that divides ``dim`` (heads, blocks); the error lists the valid ones."""
    value = check_positive_int(value, name)
    if dim % value:
        raise MixerConfigError(f"dim={dim} must be divisible by {name}={value}; valid {name}: {divisors(dim)}")
    return value


def check_choice(value, name: str, choices):
    """``value`` if it is one of ``choices``, else a clear error listing them."""
    if isinstance(value, (list, dict, set)) or value not in choices:
        raise MixerConfigError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_int(value, name: str) -> int:
    """Any integer (a seed): Python or NumPy, never a bool."""
    if not _is_int(value):
        raise MixerConfigError(f"{name} must be an integer, got {value!r}")
    return int(value)


def check_finite(value, name: str) -> float:
    """Any finite real number (never a bool)."""
    if not _is_real(value) or not math.isfinite(value):
        raise MixerConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_nonnegative_int(value, name: str) -> int:
    if not _is_int(value) or value < 0:
        raise MixerConfigError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def check_fraction(value, name: str = "keep_fraction") -> float:
    if not _is_real(value) or not math.isfinite(value) or not (0.0 < value <= 1.0):
        raise MixerConfigError(f"{name} must be a number in (0, 1], got {value!r}")
    return float(value)


def check_nonnegative(value, name: str) -> float:
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        raise MixerConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_tensor(x, name: str = "x") -> None:
    """Check that ``x`` is a torch.Tensor (any shape)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")


def check_grid(grid, name: str = "grid") -> tuple[int, int]:
    if not (isinstance(grid, (tuple, list)) and len(grid) == 2):
        raise MixerConfigError(f"{name} must be a pair (H, W) of positive integers, got {grid!r}")
    return check_positive_int(grid[0], f"{name}[0]"), check_positive_int(grid[1], f"{name}[1]")


def check_modes(modes, name: str = "modes") -> tuple[int, int]:
    """A pair ``(m_h, m_w)`` of integers >= 0 (Fourier modes kept on each axis)."""
    if not (isinstance(modes, (tuple, list)) and len(modes) == 2):
        raise MixerConfigError(f"{name} must be a pair (m_h, m_w) of integers >= 0, got {modes!r}")
    return check_nonnegative_int(modes[0], f"{name}[0]"), check_nonnegative_int(modes[1], f"{name}[1]")


def check_image(x, name: str = "x") -> torch.Tensor:
    """A finite real image ``[H, W]`` (at least 2x2), returned detached as float64 on the CPU
    (the explorers' inputs)."""
    if isinstance(x, torch.Tensor) and (x.is_complex() or not x.is_floating_point()):
        raise MixerConfigError(f"{name} must be a real floating-point tensor of shape [H, W], got dtype {x.dtype} "
                               f"(shape {tuple(x.shape)})")
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise MixerConfigError(f"{name} must be a real floating-point tensor of shape [H, W], got {shape}")
    if min(x.shape) < 2:
        raise MixerConfigError(f"{name} must be at least 2x2, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise MixerConfigError(f"{name} contains NaN or Inf values")
    return x.detach().cpu().double()
