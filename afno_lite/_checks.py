"""Input validation shared by every mixer.

Every public entry point checks its arguments here so that a reader gets one
clear sentence naming the argument and what was expected, never a deep torch
traceback.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import torch


class MixerInputError(ValueError):
    """Raised when a tensor handed to a token mixer has the wrong shape or values."""


class MixerConfigError(ValueError):
    """Raised when a token mixer is built with invalid hyper-parameters."""


def check_tokens(x, dim: int, name: str = "x", check_finite: bool = True) -> None:
    """Check that ``x`` is a real floating tensor of shape ``[B, H, W, dim]``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape [B, H, W, C], got {type(x).__name__}")
    if x.dim() != 4:
        raise MixerInputError(
            f"{name} must have rank 4 [B, H, W, C] (channels last), got rank {x.dim()} "
            f"with shape {tuple(x.shape)}"
        )
    if x.is_complex():
        raise TypeError(f"{name} must be real (float16/bfloat16/float32/float64), got complex dtype {x.dtype}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}; call x.float() first")
    if x.shape[-1] != dim:
        raise MixerInputError(
            f"{name} has {x.shape[-1]} channels in its last dimension but the mixer was built "
            f"with dim={dim}; expected shape [B, H, W, {dim}], got {tuple(x.shape)}"
        )
    if min(x.shape[:3]) < 1:
        raise MixerInputError(f"{name} has an empty batch or grid dimension: shape {tuple(x.shape)}")
    if check_finite and x.device.type != "meta" and not torch.isfinite(x).all():
        raise MixerInputError(
            f"{name} contains NaN or Inf values; pass finite inputs "
            "(or build the mixer with check_finite=False to skip this check)"
        )


def check_same_dtype(x: torch.Tensor, dtype: torch.dtype, name: str = "x", owner: str = "the mixer") -> None:
    """Check that ``x`` has the floating dtype of ``owner``'s parameters (layers that
    multiply by their weights directly, such as attention's projections, need it)."""
    if x.dtype != dtype:
        raise MixerInputError(
            f"{name} has dtype {x.dtype} but the parameters of {owner} are {dtype}; expected {name} in {dtype} "
            f"(call {name}.to({dtype}) or convert the module with .to({x.dtype}))"
        )


def _is_int(value) -> bool:
    # numbers.Integral accepts Python and NumPy integers; bool is an int subclass but never a count
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_positive_int(value, name: str) -> int:
    if not _is_int(value) or value < 1:
        raise MixerConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


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
