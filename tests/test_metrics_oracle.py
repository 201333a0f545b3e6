"""The trainer's image metrics against an independent implementation (scikit-image).

``train.ssim`` must equal ``skimage.metrics.structural_similarity`` with the settings of
Wang et al. (2004) -- Gaussian window, sigma 1.5, population covariance, data range 1 -- and
``train.psnr`` must equal ``skimage.metrics.peak_signal_noise_ratio``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from afno_lite import train


def _pairs():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 32, 40, generator=g, dtype=torch.float64)
    for noise in (0.02, 0.1, 0.4):
        y = (x + noise * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
        yield noise, x, y
    # structured images: a smooth ramp and a blurred version of it
    r = torch.linspace(0, 1, 48, dtype=torch.float64)
    ramp = (r[:, None] * r[None, :]).expand(2, 1, 48, 48).clone()
    yield "ramp", ramp, (ramp * 0.8 + 0.1)


@pytest.mark.parametrize("case", list(_pairs()), ids=lambda c: str(c[0]))
def test_ssim_matches_scikit_image(case):
    _, x, y = case
    ours = train.ssim(x, y)
    for i in range(x.shape[0]):
        ref = structural_similarity(x[i, 0].numpy(), y[i, 0].numpy(), gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0)
        assert abs(float(ours[i]) - ref) < 1e-4, (float(ours[i]), ref)


@pytest.mark.parametrize("case", list(_pairs()), ids=lambda c: str(c[0]))
def test_psnr_matches_scikit_image(case):
    _, x, y = case
    ours = train.psnr(y, x)
    for i in range(x.shape[0]):
        ref = peak_signal_noise_ratio(x[i].numpy(), y[i].numpy(), data_range=1.0)
        assert abs(float(ours[i]) - ref) < 1e-4, (float(ours[i]), ref)


def test_the_oracle_tells_a_wrong_constant_apart():
    """The comparison can fail: an SSIM with the wrong stabilising constant (k2 = 0.3)
    differs from scikit-image by far more than the tolerance on a noisy pair."""
    _, x, y = list(_pairs())[2]                       # noise 0.4
    wrong = train.ssim(x, y, k2=0.3)
    ref = structural_similarity(x[0, 0].numpy(), y[0, 0].numpy(), gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=1.0)
    assert abs(float(wrong[0]) - ref) > 1e-2
    assert np.isfinite(ref)
