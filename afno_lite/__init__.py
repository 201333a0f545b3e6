"""afno_lite: small, readable, tested token mixers for *AFNO from first principles*.

One interface for every mixer: ``forward(x[B, H, W, C]) -> [B, H, W, C]``.

>>> import torch, afno_lite
>>> m = afno_lite.mixer("afno", 64, num_blocks=8)
>>> m(torch.randn(2, 16, 16, 64)).shape
torch.Size([2, 16, 16, 64])

Layers: a module imports only from lower layers (modules of one sub-package may import each
other; ``tests/test_layout.py`` parses every import and checks this table and that there is
no cycle)::

    0  _checks evidence                    validation shared by every module; the seed rule
    1  timing spectral pde plotting        one way to time a call; frequency grids; PDE; style
    2  mixers data scenes                  the token mixers; offline data; generated scenes
    3  fast                                FastAFNO (same parameters as mixers.AFNO)
    4  registry                            one record per mixer
    5  complexity models compat            formulas; the backbone; NVIDIA weights
    6  explore train                       explorers; the trainer
    7  bench widgets                       the benchmark (and step costs); explorers' old name
    8  experiments                         the full runs behind the experiment chapters
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
    """Seed Python, NumPy (if present) and torch with an integer in ``[0, 2**32)`` (NumPy's range;
    anything else is a :class:`MixerConfigError` before any generator is touched)."""
    import random

    import torch

    from ._checks import check_nonnegative_int

    seed = check_nonnegative_int(seed, "seed")
    if seed >= 2**32:
        raise MixerConfigError(f"seed must be an integer in [0, 2**32), got {seed!r}")

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
