"""afno_lite: small, readable, tested token mixers for *AFNO from first principles*.

One interface for every mixer: ``forward(x[B, H, W, C]) -> [B, H, W, C]``.

>>> import torch, afno_lite
>>> m = afno_lite.mixer("afno", 64, num_blocks=8)
>>> m(torch.randn(2, 16, 16, 64)).shape
torch.Size([2, 16, 16, 64])
"""
from . import compat, complexity, data, fast, models, registry, spectral  # noqa: E402
from ._checks import MixerConfigError, MixerInputError
from .mixers import (
    AFNO,
    GlobalFilter,
    KernelAttention,
    SelfAttention,
    SpectralConv2d,
    TokenMixer,
)
from .models import TokenMixerNet, count_parameters  # noqa: E402
from .registry import MIXERS, MixerSpec, mixer, register

__version__ = "0.1.0"

__all__ = [
    "AFNO", "GlobalFilter", "KernelAttention", "SelfAttention", "SpectralConv2d", "TokenMixer",
    "MIXERS", "MixerSpec", "mixer", "register", "registry", "MixerConfigError", "MixerInputError",
    "use_book_style", "seed_everything",
    "default_device", "TokenMixerNet", "count_parameters", "compat", "complexity", "data", "fast", "models", "spectral",
]


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy (if present) and torch."""
    import random

    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass


def default_device():
    """The current GPU as an indexed device (``cuda:0``) when one is present, else ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def use_book_style() -> None:
    """Matplotlib style used by every chapter (imported lazily)."""
    from .plotting import use_book_style as _u

    _u()
