"""Bad input gets one clear error, raised by ``afno_lite`` itself, that names the argument
and what was expected -- never a deep torch traceback.

Each case asserts the exception type, a message naming the argument and the expectation,
and that the innermost frame of the traceback is inside the ``afno_lite`` package.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import afno_lite
from afno_lite import AFNO, GlobalFilter, KernelAttention, MixerConfigError, MixerInputError, SelfAttention, mixer
from afno_lite.spectral import (
    energy_fraction,
    fno_mode_mask,
    frequency_grid,
    hard_threshold,
    hard_threshold_to_fraction,
    kept_mode_mask,
    nvidia_kept_mode_mask,
    soft_threshold,
    spectrum_energy,
)

PACKAGE_DIR = Path(afno_lite.__file__).resolve().parent
NAN = float("nan")
INF = float("inf")



def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


def _fno():
    return mixer("fno", 8, modes=(4, 4))


# (id, call, exception type, regex that must be found in the message)
CASES = [
    # --- tensors handed to a mixer
    ("rank-3 input", lambda: AFNO(8, num_blocks=2)(_x(4, 4, 8)), MixerInputError,
     r"x must have rank 4 \[B, H, W, C\].*got rank 3"),
    ("rank-5 input", lambda: AFNO(8, num_blocks=2)(_x(1, 2, 4, 4, 8)), MixerInputError,
     r"x must have rank 4 .*got rank 5"),
    ("wrong channel count", lambda: AFNO(8, num_blocks=2)(_x(1, 4, 4, 6)), MixerInputError,
     r"x has 6 channels .*dim=8; expected shape \[B, H, W, 8\]"),
    ("channels-first input", lambda: AFNO(8, num_blocks=2)(_x(1, 8, 4, 4)), MixerInputError,
     r"x has 4 channels .*dim=8"),
    ("integer dtype", lambda: AFNO(8, num_blocks=2)(torch.ones(1, 4, 4, 8, dtype=torch.int64)), TypeError,
     r"x must be a floating-point tensor, got dtype torch.int64"),
    ("bool dtype", lambda: _fno()(torch.ones(1, 8, 8, 8, dtype=torch.bool)), TypeError,
     r"x must be a floating-point tensor, got dtype torch.bool"),
    ("complex input", lambda: AFNO(8, num_blocks=2)(_x(1, 4, 4, 8, dtype=torch.complex64)), TypeError,
     r"x must be real .*got complex dtype torch.complex64"),
    ("non-tensor input (numpy)", lambda: AFNO(8, num_blocks=2)(np.zeros((1, 4, 4, 8), dtype=np.float32)), TypeError,
     r"x must be a torch.Tensor of shape \[B, H, W, C\], got ndarray"),
    ("non-tensor input (list)", lambda: _fno()([[1.0]]), TypeError, r"x must be a torch.Tensor .*got list"),
    ("empty batch", lambda: AFNO(8, num_blocks=2)(_x(0, 4, 4, 8)), MixerInputError,
     r"x has an empty batch or grid dimension: shape \(0, 4, 4, 8\)"),
    ("empty grid", lambda: _fno()(_x(1, 0, 8, 8)), MixerInputError, r"x has an empty batch or grid dimension"),
    ("NaN input", lambda: AFNO(8, num_blocks=2)(torch.full((1, 4, 4, 8), NAN)), MixerInputError,
     r"x contains NaN or Inf values.*check_finite=False"),
    ("Inf input", lambda: _fno()(torch.full((1, 8, 8, 8), INF)), MixerInputError, r"x contains NaN or Inf values"),
    ("attention dtype mismatch", lambda: SelfAttention(8, num_heads=2)(_x(1, 3, 3, 8, dtype=torch.float64)),
     MixerInputError, r"x has dtype torch.float64 but the parameters of SelfAttention are torch.float32"),
    ("kernel of a rank-2 tensor", lambda: KernelAttention(8, num_heads=2).kernel(_x(9, 8)), MixerInputError,
     r"x must have rank 4"),
    ("FNO modes larger than grid", lambda: _fno()(_x(1, 6, 10, 8)), MixerInputError,
     r"modes=\(4, 4\) is larger than the input grid 6x10 allows \(at most \(3, 5\)\)"),
    # --- hyper-parameters
    ("unknown mixer name", lambda: mixer("transformer", 8), MixerConfigError,
     r"unknown mixer name 'transformer'; expected one of \['afno', .*'attention', 'fno', 'gfn', .*'kernel_attention'"),
    ("mixer name not a string", lambda: mixer(None, 8), MixerConfigError, r"unknown mixer name None; expected one of"),
    ("unknown keyword for a mixer", lambda: mixer("attention", 8, heads=2), MixerConfigError,
     r"mixer 'attention' got unknown keyword argument\(s\) \['heads'\]; expected some of \['num_heads'"),
    ("dim 0", lambda: mixer("afno", 0), MixerConfigError, r"dim must be a positive integer, got 0"),
    ("dim float", lambda: mixer("gfn", 8.0), MixerConfigError, r"dim must be a positive integer, got 8.0"),
    ("dim not divisible by num_blocks", lambda: AFNO(10, num_blocks=4), MixerConfigError,
     r"dim=10 must be divisible by num_blocks=4; valid num_blocks: \[1, 2, 5, 10\]"),
    ("num_blocks 0", lambda: AFNO(8, num_blocks=0), MixerConfigError, r"num_blocks must be a positive integer, got 0"),
    ("bool passed as num_blocks", lambda: AFNO(8, num_blocks=True), MixerConfigError,
     r"num_blocks must be a positive integer, got True"),
    ("hidden_factor 0", lambda: AFNO(8, num_blocks=2, hidden_factor=0), MixerConfigError,
     r"hidden_factor must be a positive integer, got 0"),
    ("hidden_factor float", lambda: AFNO(8, num_blocks=2, hidden_factor=1.5), MixerConfigError,
     r"hidden_factor must be a positive integer, got 1.5"),
    ("lambda < 0", lambda: AFNO(8, num_blocks=2, sparsity_threshold=-0.1), MixerConfigError,
     r"sparsity_threshold must be a finite number >= 0, got -0.1"),
    ("NaN lambda", lambda: AFNO(8, num_blocks=2, sparsity_threshold=NAN), MixerConfigError,
     r"sparsity_threshold must be a finite number >= 0, got nan"),
    ("Inf lambda", lambda: AFNO(8, num_blocks=2, sparsity_threshold=INF), MixerConfigError,
     r"sparsity_threshold must be a finite number >= 0, got inf"),
    ("lambda as string", lambda: AFNO(8, num_blocks=2, sparsity_threshold="0.01"), MixerConfigError,
     r"sparsity_threshold must be a finite number >= 0, got '0.01'"),
    ("keep_fraction 0", lambda: AFNO(8, num_blocks=2, keep_fraction=0), MixerConfigError,
     r"keep_fraction must be a number in \(0, 1\], got 0"),
    ("keep_fraction 1.5", lambda: AFNO(8, num_blocks=2, keep_fraction=1.5), MixerConfigError,
     r"keep_fraction must be a number in \(0, 1\], got 1.5"),
    ("keep_fraction -0.1", lambda: AFNO(8, num_blocks=2, keep_fraction=-0.1), MixerConfigError,
     r"keep_fraction must be a number in \(0, 1\], got -0.1"),
    ("keep_fraction NaN", lambda: AFNO(8, num_blocks=2, keep_fraction=NAN), MixerConfigError,
     r"keep_fraction must be a number in \(0, 1\], got nan"),
    ("keep_fraction True", lambda: AFNO(8, num_blocks=2, keep_fraction=True), MixerConfigError,
     r"keep_fraction must be a number in \(0, 1\], got True"),
    ("unknown activation", lambda: AFNO(8, num_blocks=2, activation="gelu"), MixerConfigError,
     r"activation must be 'relu' or None, got 'gelu'"),
    ("num_heads not dividing dim", lambda: SelfAttention(10, num_heads=4), MixerConfigError,
     r"dim=10 must be divisible by num_heads=4; valid num_heads: \[1, 2, 5, 10\]"),
    ("num_heads 0", lambda: mixer("kernel_attention", 8, num_heads=0), MixerConfigError,
     r"num_heads must be a positive integer, got 0"),
    ("negative modes", lambda: mixer("fno", 8, modes=(2, -1)), MixerConfigError,
     r"modes\[1\] must be an integer >= 0, got -1"),
    ("modes not a pair", lambda: mixer("fno", 8, modes=8), MixerConfigError,
     r"modes must be a pair \(m_h, m_w\) of integers >= 0, got 8"),
    ("float modes", lambda: mixer("fno", 8, modes=(2.5, 2)), MixerConfigError,
     r"modes\[0\] must be an integer >= 0, got 2.5"),
    ("gfn grid with a zero", lambda: GlobalFilter(8, grid=(0, 8)), MixerConfigError,
     r"grid\[0\] must be a positive integer, got 0"),
    ("gfn grid not a pair", lambda: mixer("gfn", 8, grid=16), MixerConfigError,
     r"grid must be a pair \(H, W\) of positive integers, got 16"),
    ("gfn grid of three", lambda: mixer("gfn", 8, grid=(8, 8, 8)), MixerConfigError,
     r"grid must be a pair \(H, W\)"),
    # --- spectral helpers
    ("mask keep_fraction 0", lambda: kept_mode_mask(16, 16, 0.0), MixerConfigError,
     r"keep_fraction must be a number in \(0, 1\], got 0.0"),
    ("mask H 0", lambda: kept_mode_mask(0, 16, 0.5), MixerConfigError, r"H must be a positive integer, got 0"),
    ("frequency grid W negative", lambda: frequency_grid(8, -2), MixerConfigError,
     r"W must be a positive integer, got -2"),
    ("NVIDIA mask unknown variant", lambda: nvidia_kept_mode_mask(8, 8, 0.5, variant="physicsnemo2"),
     MixerConfigError, r"variant must be 'fourcastnet' or 'afno_transformer', got 'physicsnemo2'"),
    ("FNO mask modes too large", lambda: fno_mode_mask(8, 8, (5, 2)), MixerConfigError,
     r"modes=\(5, 2\) is larger than the grid 8x8 allows \(at most \(4, 4\)\)"),
    ("soft threshold lambda < 0", lambda: soft_threshold(torch.ones(3), -1.0), MixerConfigError,
     r"lambd must be a finite number >= 0, got -1.0"),
    ("hard threshold NaN lambda", lambda: hard_threshold(torch.ones(3), NAN), MixerConfigError,
     r"lambd must be a finite number >= 0, got nan"),
    ("soft threshold of a list", lambda: soft_threshold([1.0, 2.0], 0.1), TypeError,
     r"z must be a torch.Tensor, got list"),
    ("keep fraction of entries 1.5", lambda: hard_threshold_to_fraction(torch.ones(4), 1.5), MixerConfigError,
     r"keep must be a fraction in \[0, 1\], got 1.5"),
    ("energy of an integer tensor", lambda: spectrum_energy(torch.ones(4, 4, dtype=torch.int32)), TypeError,
     r"x must be a real floating-point torch.Tensor, got dtype torch.int32"),
    ("energy of a 1-D tensor", lambda: spectrum_energy(torch.ones(8), channels_last=False), MixerConfigError,
     r"x must have at least 2 dimensions \[H, W\], got shape \(8,\)"),
    ("energy of a rank-5 channels-last tensor", lambda: spectrum_energy(torch.ones(1, 1, 4, 4, 2)),
     MixerConfigError, r"x must be \[H, W\], \[H, W, C\] or \[B, H, W, C\], got shape \(1, 1, 4, 4, 2\)"),
    ("energy mask of the wrong shape", lambda: energy_fraction(torch.ones(8, 8), torch.ones(8, 8, dtype=torch.bool)),
     MixerConfigError, r"mask must have shape \(8, 5\), got \(8, 8\)"),
]


def _assert_raised_by_afno_lite(excinfo) -> None:
    innermost = Path(str(excinfo.traceback[-1].path)).resolve()
    assert PACKAGE_DIR in innermost.parents, f"raised deep inside {innermost}, not by afno_lite"


@pytest.mark.parametrize("call,exc,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(call, exc, match):
    with pytest.raises(exc, match=match) as excinfo:
        call()
    _assert_raised_by_afno_lite(excinfo)


def test_our_errors_are_value_errors():
    # callers can catch the standard exception type
    assert issubclass(MixerConfigError, ValueError) and issubclass(MixerInputError, ValueError)


MIXER_KW = {
    "attention": dict(num_heads=2),
    "kernel_attention": dict(num_heads=2),
    "fno": dict(modes=(2, 2)),
    "gfn": dict(grid=(6, 6)),
    "afno": dict(num_blocks=2),
}
BAD_TOKENS = [
    ("rank 3", lambda: _x(6, 6, 8), MixerInputError, r"x must have rank 4"),
    ("6 channels", lambda: _x(1, 6, 6, 6), MixerInputError, r"x has 6 channels .*dim=8"),
    ("int32", lambda: torch.ones(1, 6, 6, 8, dtype=torch.int32), TypeError, r"x must be a floating-point tensor"),
    ("complex128", lambda: _x(1, 6, 6, 8, dtype=torch.complex128), TypeError, r"x must be real"),
    ("numpy", lambda: np.ones((1, 6, 6, 8)), TypeError, r"x must be a torch.Tensor"),
    ("empty batch", lambda: _x(0, 6, 6, 8), MixerInputError, r"x has an empty batch or grid dimension"),
    ("NaN", lambda: torch.full((1, 6, 6, 8), NAN), MixerInputError, r"x contains NaN or Inf values"),
]


@pytest.mark.parametrize("name", list(MIXER_KW))
@pytest.mark.parametrize("make,exc,match", [b[1:] for b in BAD_TOKENS], ids=[b[0] for b in BAD_TOKENS])
def test_every_mixer_rejects_bad_tokens_itself(name, make, exc, match):
    m = mixer(name, 8, **MIXER_KW[name])
    with pytest.raises(exc, match=match) as excinfo:
        m(make())
    _assert_raised_by_afno_lite(excinfo)


@pytest.mark.parametrize("name", list(MIXER_KW))
def test_check_finite_false_skips_the_finiteness_check(name):
    x = torch.randn(1, 6, 6, 8)
    x[0, 2, 3, 1] = NAN
    strict = mixer(name, 8, **MIXER_KW[name])
    with pytest.raises(MixerInputError, match="NaN or Inf"):
        strict(x)
    lax = mixer(name, 8, check_finite=False, **MIXER_KW[name])
    y = lax(x)                                    # no error; the NaN propagates through the mixer
    assert y.shape == x.shape and torch.isnan(y).any()


def test_numpy_integers_are_accepted_as_sizes():
    m = AFNO(np.int64(8), num_blocks=np.int32(2), hidden_factor=np.int64(2))
    assert (m.dim, m.num_blocks, m.hidden_factor) == (8, 2, 2)
    assert m(torch.randn(1, 4, 4, 8)).shape == (1, 4, 4, 8)
