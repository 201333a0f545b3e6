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
from afno_lite.fast import compiled, to_channels_first, to_channels_last
from afno_lite.spectral import (
    energy_fraction,
    fno_mode_mask,
    frequency_grid,
    hard_threshold,
    hard_threshold_to_fraction,
    hermitian_project,
    kept_mode_mask,
    kept_rows,
    nvidia_kept_mode_mask,
    rfft_multiplicity,
    soft_threshold,
    soft_threshold_magnitude,
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
    # an integer 0/1 mask indexed rows 0 and 1 and returned a "fraction" above 1
    ("energy mask of integers", lambda: energy_fraction(torch.ones(8, 8), torch.ones(8, 5, dtype=torch.int64)),
     TypeError, r"mask must be a boolean tensor \(torch.bool\), got dtype torch.int64"),
    ("energy of an empty tensor", lambda: spectrum_energy(torch.ones(0, 4)), MixerConfigError,
     r"x must not be empty, got shape \(0, 4\)"),
    ("soft threshold of integers", lambda: soft_threshold(torch.arange(4), 1.0), TypeError,
     r"z must be a floating-point or complex tensor, got dtype torch.int64"),
    ("magnitude shrinkage of integers", lambda: soft_threshold_magnitude(torch.arange(4), 1.0), TypeError,
     r"z must be a floating-point or complex tensor, got dtype torch.int64"),
    ("multiplicity H 0", lambda: rfft_multiplicity(0, 4), MixerConfigError, r"H must be a positive integer, got 0"),
    ("multiplicity W float", lambda: rfft_multiplicity(4, 2.5), MixerConfigError,
     r"W must be a positive integer, got 2.5"),
    ("Hermitian projection with a float axis", lambda: hermitian_project(torch.ones(3, 3, dtype=torch.complex64), 4,
                                                                          dims=(0, 1.0)),
     MixerConfigError, r"dims=\(0, 1.0\) must name two different axes of a rank-2 tensor"),
    ("kept rows with a float m_h", lambda: kept_rows(8, 2.0), MixerConfigError,
     r"m_h must be an integer >= 0, got 2.0"),
    # --- the fast path's public helpers
    ("channels-first of a rank-3 tensor", lambda: to_channels_first(_x(2, 3, 4)), MixerInputError,
     r"x must have rank 4 \[B, H, W, C\], got shape \(2, 3, 4\)"),
    ("channels-last of a list", lambda: to_channels_last([1.0]), TypeError, r"y must be a torch.Tensor, got list"),
    ("channels-first to a string dtype", lambda: to_channels_first(_x(1, 2, 2, 2), "float"), MixerConfigError,
     r"dtype must be a floating-point torch.dtype or None, got 'float'"),
    ("compiled of a non-module", lambda: compiled(3), TypeError, r"module must be a torch.nn.Module, got int"),
    # --- a spectrum asked for directly, not through forward
    ("AFNO spectrum of a rank-3 tensor", lambda: AFNO(8, num_blocks=2).spectrum(_x(4, 4, 8)), MixerInputError,
     r"x must have rank 4 \[B, H, W, C\].*got rank 3"),
    ("AFNO spectrum with too few channels", lambda: AFNO(8, num_blocks=2).spectrum(_x(1, 4, 4, 6)), MixerInputError,
     r"x has 6 channels .*dim=8"),
    # --- switches: a string is not a boolean (bool("no") is True)
    ("bias as a string", lambda: AFNO(8, num_blocks=2, bias="no"), MixerConfigError,
     r"bias must be True or False, got 'no'"),
    ("residual as a string", lambda: mixer("afno_fast", 8, num_blocks=2, residual="False"), MixerConfigError,
     r"residual must be True or False, got 'False'"),
    ("check_finite as a string", lambda: mixer("fno", 8, check_finite="no"), MixerConfigError,
     r"check_finite must be True or False, got 'no'"),
    ("qkv_bias as None", lambda: SelfAttention(8, num_heads=2, qkv_bias=None), MixerConfigError,
     r"qkv_bias must be True or False, got None"),
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


def test_numpy_scalars_are_accepted_by_the_spectral_helpers():
    """``kept_rows`` said "m_h must be an integer >= 0, got np.int64(2)" and
    ``hard_threshold_to_fraction`` rejected ``np.float32(0.5)``, where every other size and
    fraction accepts NumPy scalars (and the switches NumPy booleans)."""
    assert kept_rows(np.int64(8), np.int64(2)) == kept_rows(8, 2)
    z = torch.arange(1.0, 5.0)
    assert torch.equal(hard_threshold_to_fraction(z, np.float32(0.5)), hard_threshold_to_fraction(z, 0.5))
    assert AFNO(8, num_blocks=2, bias=np.bool_(False), residual=np.False_).residual is False


# --------------------------------------------------------------------------- trainer, data, solver
def _cfg(**change):
    """Validate a tiny run's configuration with ``change`` (nothing is trained)."""
    from afno_lite import train

    base = dict(task="inpainting", mixer="afno", embed_dim=8, depth=1, img_size=16, patch_size=4,
                n_train=8, n_test=4, batch_size=4, epochs=1, progress=False,
                mixer_kw={"num_blocks": 2})
    return train.validate_config(train.as_config(dict(base, **change)))


def _tc(**change):
    from afno_lite import train

    return train.as_config(train.TrainConfig(**change))


def _data():
    from afno_lite import data

    return data


def _pde():
    from afno_lite import pde

    return pde


def _compute():
    from afno_lite.explore import compute

    return compute


def _players():
    from afno_lite.explore import players

    return players


def _plotting():
    from afno_lite import plotting

    return plotting


_IMG = torch.rand(8, 8, dtype=torch.float64)
_HERE = __file__

MORE_CASES = [
    # --- a run's configuration: raised by the validation, before any data or step
    ("TrainConfig with a list as mixer_kw", lambda: _tc(mixer_kw=[1]), MixerConfigError,
     r"mixer_kw must be a dict of keyword arguments for the mixer, got \[1\]"),
    ("out a number", lambda: _cfg(out=5), MixerConfigError,
     r"out must be a folder path .* or None, got 5"),
    ("out empty", lambda: _cfg(out=""), MixerConfigError,
     r"out must be a folder path .* or None, got ''"),
    ("out an existing file", lambda: _cfg(out=_HERE), MixerConfigError,
     r"out must be a folder for checkpoint.pt and results.json, but .* is not one"),
    ("out inside a file", lambda: _cfg(out=_HERE + "/run"), MixerConfigError,
     r"is not one \(its parent .*test_bad_inputs.py' is a file\)"),
    ("eval_sizes a string", lambda: _cfg(eval_sizes="64"), MixerConfigError,
     r"eval_sizes must be a sequence of grid sizes \(integers\), got '64'"),
    ("eval_sizes with a float", lambda: _cfg(eval_sizes=(32.5,)), MixerConfigError,
     r"eval_sizes must hold integer grid sizes, got 32.5"),
    ("inpainting eval size off the mask grid", lambda: _cfg(mask_patch=8, eval_sizes=(36,)),
     MixerConfigError, r"inpainting sizes must be multiples of mask_patch=8 .*got 36"),
    ("inpainting image below the SSIM window", lambda: _cfg(img_size=8), MixerConfigError,
     r"inpainting sizes .* >= 11 \(the SSIM window\), got 8"),
    ("inpainting image of one mask square", lambda: _cfg(mask_patch=16), MixerConfigError,
     r"holding at least 2 mask squares"),
    ("pde grid not dividing the solver's", lambda: _cfg(task="pde", img_size=24, patch_size=1),
     MixerConfigError, r"pde grid sizes must be even, >= 4, <= 256 and divide .* = 64"),
    ("pde grid beyond the solver", lambda: _cfg(task="pde", img_size=512), MixerConfigError,
     r"pde grid sizes must be .*<= 256"),
    ("device cuda:7", lambda: _cfg(device="cuda:7"), MixerConfigError,
     r"device must be .*, got 'cuda:7' \(for GPU 7: set CUDA_VISIBLE_DEVICES=7"),
    # --- offline data
    ("load_image size pair with a zero", lambda: _data().load_image(size=(0, 5)),
     MixerConfigError, r"size\[0\] must be a positive integer, got 0"),
    ("load_image float size", lambda: _data().load_image(size=8.0), MixerConfigError,
     r"size must be a positive int, a pair \(H, W\) of them or None, got 8.0"),
    ("synthetic field without rows", lambda: _data().synthetic_field(0, 8), MixerConfigError,
     r"H must be a positive integer, got 0"),
    ("synthetic field of 0 channels", lambda: _data().synthetic_field(8, 8, channels=0),
     MixerConfigError, r"channels must be a positive integer or None, got 0"),
    ("synthetic field NaN slope", lambda: _data().synthetic_field(8, 8, slope=NAN),
     MixerConfigError, r"slope must be a finite number, got nan"),
    ("synthetic field string seed", lambda: _data().synthetic_field(8, 8, seed="a"),
     MixerConfigError, r"seed must be an integer, got 'a'"),
    ("crops of one scale as an int", lambda: _data().image_crops(2, 8, scales=2),
     MixerConfigError, r"scales must be a non-empty sequence of positive integers, got 2"),
    ("crops of one name as a string", lambda: _data().image_crops(2, 8, names="mri"),
     MixerConfigError, r"names must be a non-empty sequence of names from .*, got 'mri'"),
    ("crops string seed", lambda: _data().image_crops(2, 8, seed="a"), MixerConfigError,
     r"seed must be an integer, got 'a'"),
    ("mask of a single square", lambda: _data().patch_mask(2, 4, 4), MixerConfigError,
     r"size=4 must be divisible by patch=4 into at least 2 squares per side"),
    ("mask string seed", lambda: _data().patch_mask(2, 8, 4, seed="a"), MixerConfigError,
     r"seed must be an integer, got 'a'"),
    # --- the Navier-Stokes solver
    ("pairs on one grid as an int", lambda: _pde().navier_stokes_pairs(1, grids=64),
     MixerConfigError, r"grids must be a non-empty sequence of grid sizes, got 64"),
    ("pairs on no grid", lambda: _pde().navier_stokes_pairs(1, grids=()), MixerConfigError,
     r"grids must be a non-empty sequence of grid sizes, got \(\)"),
    ("pairs as integers",
     lambda: _pde().navier_stokes_pairs(1, grids=(8,), fine=8, dtype=torch.int64),
     MixerConfigError, r"dtype must be a floating-point torch.dtype, got torch.int64"),
    ("random field tau 0", lambda: _pde().gaussian_random_field(1, 8, tau=0), MixerConfigError,
     r"tau must be a positive finite number, got 0"),
    ("random field NaN alpha", lambda: _pde().gaussian_random_field(1, 8, alpha=NAN),
     MixerConfigError, r"alpha must be a positive finite number, got nan"),
    ("random field string seed", lambda: _pde().gaussian_random_field(1, 8, seed="a"),
     MixerConfigError, r"seed must be an integer, got 'a'"),
    ("solver from a NaN field", lambda: _pde().navier_stokes(torch.full((8, 8), NAN), 0.1),
     MixerConfigError, r"w0 contains NaN or Inf values"),
    ("subsample a list", lambda: _pde().subsample([[1.0]], 1), TypeError,
     r"w must be a torch.Tensor, got list"),
    ("divergence of two grids",
     lambda: _pde().divergence(torch.zeros(8, 8), torch.zeros(16, 16)),
     MixerConfigError, r"u and v must have the same shape, got \(8, 8\) and \(16, 16\)"),
    ("forcing NaN amplitude", lambda: _pde().kolmogorov_forcing(8, NAN), MixerConfigError,
     r"amplitude must be a finite number, got nan"),
    # --- generated scenes and the explorers
    ("scenes string seed",
     lambda: __import__("afno_lite.scenes").scenes.shape_scenes(2, 16, seed="a"),
     MixerConfigError, r"seed must be an integer >= 0, got 'a'"),
    ("sparsity curve of one threshold", lambda: _compute().sparsity_curve(_IMG, 5),
     MixerConfigError, r"lambdas must be a sequence of thresholds >= 0, got 5"),
    ("feature map of 0 channels", lambda: _compute().feature_map(_IMG, dim=0),
     MixerConfigError, r"dim must be a positive integer, got 0"),
    ("lifted tokens string seed", lambda: _compute().lift_to_channels(_IMG, 4, seed="a"),
     MixerConfigError, r"seed must be an integer, got 'a'"),
    ("lambda grid from True", lambda: _compute().lambda_grid(_IMG, lowest=True),
     MixerConfigError, r"lowest must be a positive finite number, got True"),
    ("player at 0 frames per second",
     lambda: _players().keep_fraction_animation_html(_IMG, fps=0),
     MixerConfigError, r"fps must be a positive finite number, got 0"),
    ("player at dpi 0", lambda: _players().sparsity_animation_html(_IMG, dpi=0),
     MixerConfigError, r"dpi must be a positive finite number, got 0"),
    # --- seeding and plotting
    ("seed -1", lambda: afno_lite.seed_everything(-1), MixerConfigError,
     r"seed must be an integer >= 0, got -1"),
    ("seed beyond NumPy's range", lambda: afno_lite.seed_everything(2**32), MixerConfigError,
     r"seed must be an integer in \[0, 2\*\*32\), got 4294967296"),
    ("plot a NumPy mask", lambda: _plotting().plot_mask(np.ones((4, 3), dtype=bool)), TypeError,
     r"mask must be a torch.Tensor, got ndarray"),
    ("plot a 1-D spectrum", lambda: _plotting().plot_spectrum(torch.ones(4)), MixerConfigError,
     r"X must be a 2-D tensor \[H, W//2\+1\], got shape \(4,\)"),
    ("player HTML of no animation", lambda: _plotting().offline_jshtml(None), TypeError,
     r"anim must be a matplotlib Animation \(e.g. FuncAnimation\), got NoneType"),
]


@pytest.mark.parametrize("call,exc,match", [c[1:] for c in MORE_CASES],
                         ids=[c[0] for c in MORE_CASES])
def test_trainer_data_solver_and_explorers_reject_bad_input(call, exc, match):
    with pytest.raises(exc, match=match) as excinfo:
        call()
    _assert_raised_by_afno_lite(excinfo)


def test_a_pde_run_without_eval_sizes_validates():
    # max(img_size) over no eval sizes was a TypeError inside the validation
    assert _cfg(task="pde", img_size=32, patch_size=1).eval_sizes == ()


@pytest.mark.parametrize("argv,match", [
    (["--mixer-kw", "[1, 2]"], r"--mixer-kw must be a JSON object such as .*, got \[1, 2\]"),
    (["--out", _HERE], r"out must be a folder for checkpoint.pt"),
    (["--img-size", "512"], r"no image region of the 'train' split is at least 512x512"),
    (["--task", "pde", "--patch-size", "1", "--img-size", "24"], r"pde grid sizes must be even"),
], ids=["mixer-kw a list", "out a file", "crops too large", "pde grid off the solver's"])
def test_train_cli_reports_bad_input_in_one_line(argv, match, capsys):
    import re

    from afno_lite import train

    small = ["--epochs", "1", "--n-train", "8", "--n-test", "4", "--batch-size", "4",
             "--no-progress"]
    assert train.main(argv + small) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and re.search(match, err), err


def test_load_model_names_the_run_folder_without_a_checkpoint(tmp_path):
    from afno_lite import train

    with pytest.raises(FileNotFoundError, match=r"run_dir=.* holds no checkpoint.pt"):
        train.load_model(tmp_path)


def test_experiments_reject_bad_input_before_training(monkeypatch, capsys):
    from afno_lite import experiments

    def no_training(*args, **kwargs):
        raise AssertionError("trained although the input was bad")

    monkeypatch.setattr(experiments, "_train_all", no_training)
    sweeps = r"\('inpainting', 'ablations', 'classification'\)"
    with pytest.raises(ValueError, match=rf"group must be one of {sweeps} .*, got 'resolution'"):
        experiments.select_lrs(group="resolution")
    with pytest.raises(TypeError, match=r"lrs: expected a dict \{mixer: learning rate\} or None"):
        experiments.plan("inpainting", lrs=5)
    with pytest.raises(ValueError, match=r"out_dir must be a folder, but .* cannot be one"):
        experiments.run_group("inpainting", fast=True, out_dir=_HERE)
    assert experiments.main(["inpainting", "--fast", "--out-dir", _HERE]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out-dir must be a folder") and "Traceback" not in err


# --------------------------------------------------------------------------- device mismatch
@pytest.mark.parametrize("name", ["attention", "kernel_attention", "fno", "gfn", "afno", "afno_fast"])
def test_a_mixer_names_the_devices_of_input_and_weights(name):
    """An input on another device than the weights (the meta device stands in for a GPU) gets a
    MixerInputError naming both devices, not a RuntimeError from deep inside the layer."""
    m = afno_lite.mixer(name, 8, **{**MIXER_KW, "afno_fast": MIXER_KW["afno"]}[name]).to("meta")
    with pytest.raises(MixerInputError, match=r"x is on cpu but the parameters of \w+ are on meta"):
        m(_x(1, 6, 6, 8))


def test_the_model_names_the_devices_of_images_and_weights():
    from afno_lite.models import TokenMixerNet

    net = TokenMixerNet("afno", img_size=16, patch_size=4, in_chans=1, embed_dim=8, depth=1).to("meta")
    with pytest.raises(MixerInputError, match="x is on cpu but the parameters of the model are on meta"):
        net(torch.randn(1, 1, 16, 16))
