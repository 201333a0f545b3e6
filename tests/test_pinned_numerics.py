"""Numbers a reader or a researcher reads off the library (complexity table, seed rule, metrics, benchmark statistics,
Navier-Stokes solver, offline data, generated scenes), pinned against independent references."""
from __future__ import annotations

import math

import matplotlib
import matplotlib.image as mpimg
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy import stats as sps
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from afno_lite import MixerConfigError, pde
from afno_lite import complexity as cx
from afno_lite.bench import stats
from afno_lite.data import IMAGES, image_crops, load_image, patch_mask, pde_data, synthetic_field
from afno_lite.evidence import mean_std, paired_difference, verdict
from afno_lite.scenes import relation_displacements, relation_scenes, shape_scenes
from afno_lite.train import psnr, relative_l2, ssim


# --------------------------------------------------------------------------- complexity table
def test_complexity_table_fno_keeps_every_mode_of_a_non_square_odd_grid():
    """The table's FNO row is the paper's "N d^2" FNO: one complex d x d matrix per rfft2 mode of the grid. On a 9 x
    7 grid that is 9 * 4 modes; a table that fell back to the mixer's default modes would compare AFNO with some
    other FNO."""
    d, H, W = 4, 9, 7
    rows = {r["mixer"]: r for r in cx.complexity_table(d, (H, W), num_blocks=2, num_heads=2)}
    assert rows["fno"]["params"] == 2 * H * (W // 2 + 1) * d * d


def test_complexity_table_uses_the_given_num_blocks_and_num_heads():
    """The paper's AFNO count (1 + 4/k) d^2 + 4d depends on k; the table must evaluate it at the k the reader chose,
    or the paper column disagrees with the library column beside it. Likewise the attention row is a real layer: a
    head count that does not divide d is refused, not silently replaced by the default."""
    d, k, N = 16, 4, 64
    rows = {r["mixer"]: r for r in cx.complexity_table(d, (8, 8), num_blocks=k)}
    assert rows["afno"]["paper_params_value"] == pytest.approx((1 + 4 / k) * d * d + 4 * d)
    assert rows["afno"]["paper_flops_value"] == pytest.approx(N * d * d / k + N * d * math.log2(N))
    with pytest.raises(MixerConfigError, match="num_heads"):
        cx.complexity_table(16, (4, 4), num_heads=3)


def test_complexity_table_counts_afno_with_the_given_keep_fraction():
    """With keep_fraction < 1, AFNO's block MLP runs on the kept modes only: two layers of four real einsums of 2 K
    k b (b f) flops each, K = the kept rfft modes (lowest |k_H| and k_W). Here H = W = 8, keep_fraction 0.5 keeps
    |k_H| <= 2 (5 rows) and k_W <= 2 (3 columns)."""
    d, k, f, B = 16, 4, 1, 1
    rows = {r["mixer"]: r for r in cx.complexity_table(d, (8, 8), batch=B, num_blocks=k,
                                                        keep_fraction=0.5)}
    K, b = 5 * 3, d // k                  # k_H in -2..2, k_W in 0..2 (of 8 x 5 modes)
    assert rows["afno"]["matmul"] == 16 * B * K * d * b * f


def test_complexity_table_scales_with_batch():
    """Every count of one forward pass is per batch: three images cost three times one image (matmuls and the FFT
    estimate alike), parameters do not change."""
    one = cx.complexity_table(8, (6, 10), batch=1, num_blocks=2)
    three = cx.complexity_table(8, (6, 10), batch=3, num_blocks=2)
    for r1, r3 in zip(one, three, strict=True):
        assert r3["params"] == r1["params"]
        for key in ("matmul", "matmul_real", "elementwise", "fft", "total"):
            assert r3[key] == pytest.approx(3 * r1[key]), (r1["mixer"], key)


# --------------------------------------------------------------------------- the seed rule
def test_two_seed_verdict_speaks_of_seeds_in_the_plural():
    """The verdict sentence is printed in the book as is: with two pairs it says "2 paired seeds" (only a single
    pair is "1 paired seed")."""
    two = verdict(paired_difference([1.0, 2.0], [0.5, 1.0]), "ahead", "behind")
    assert "2 paired seeds:" in two and two.endswith("not enough seeds (n < 3)")
    one = verdict(paired_difference([1.0], [0.5]), "ahead", "behind")
    assert "1 paired seed:" in one


def test_booleans_are_not_numbers_for_the_seed_rule():
    """A flag (True/False) passed where a metric belongs would be averaged as 1/0 and yield a plausible-looking
    interval; it must be refused with the seed named."""
    with pytest.raises(TypeError, match="seed 1"):
        mean_std([0.5, True, 0.7])
    with pytest.raises(TypeError, match="b: seed 0"):
        paired_difference({0: 1.0, 1: 2.0}, {0: False, 1: 1.0})


def test_paired_seeds_come_out_in_a_fixed_order_whatever_the_insertion_order():
    """``Difference.seeds`` is written to results files and printed; two runs that record the same seeds in another
    order (or in another process, where string hashing differs) must report the same tuple."""
    names = [f"run{c}" for c in "hcfadgbe"]
    a = {s: float(i) for i, s in enumerate(names)}
    b = {s: 0.5 * i for i, s in enumerate(reversed(names))}
    assert paired_difference(a, b).seeds == tuple(sorted(names))


def test_mean_std_format_uses_the_requested_digits_for_both_numbers():
    """A table printed with 3 digits must show the spread with 3 digits too (sample std, ddof 1, compared with
    numpy)."""
    xs = [1.23456, 1.3, 1.1]
    assert mean_std(xs).format(3, " dB") == f"{np.mean(xs):.3f} ± {np.std(xs, ddof=1):.3f} dB (3 seeds)"


def test_interval_is_ordered_low_then_high():
    """``Difference.interval`` is read as (low, high) by the plots' error bars: low below the mean, high above it,
    equal to the Student-t interval from scipy."""
    a, b = [3.0, 2.5, 4.0, 3.2], [1.0, 1.5, 1.2, 1.1]
    d = paired_difference(a, b)
    diffs = np.subtract(a, b)
    lo, hi = sps.t.interval(0.95, len(diffs) - 1, loc=diffs.mean(), scale=sps.sem(diffs))
    assert d.interval[0] == pytest.approx(lo, abs=1e-3) and d.interval[1] == pytest.approx(hi, abs=1e-3)
    assert d.interval[0] < d.mean < d.interval[1]


# --------------------------------------------------------------------------- image metrics
def test_psnr_honours_the_data_range_of_8_bit_images():
    """Images in 0..255 are scored with data_range=255: PSNR = 10 log10(255^2 / MSE), the value scikit-image gives;
    using 255 instead of 255^2 would understate every score by ~24 dB."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 1, 16, 12, generator=g, dtype=torch.float64) * 255
    y = (x + 3 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 255)
    ours = psnr(y, x, data_range=255.0)
    for i in range(2):
        ref = peak_signal_noise_ratio(x[i].numpy(), y[i].numpy(), data_range=255.0)
        assert float(ours[i]) == pytest.approx(ref, abs=1e-3)


def test_psnr_of_a_near_perfect_reconstruction_is_not_capped():
    """An error of 1e-5 per pixel is 100 dB (10 log10(1 / 1e-10)); a floor on the MSE above that would flatten the
    top of every PSNR curve."""
    x = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    assert float(psnr(x + 1e-5, x)) == pytest.approx(100.0, abs=1e-6)


def test_ssim_in_float64_agrees_with_scikit_image_to_rounding():
    """float64 images are scored in float64 (the precision a gradcheck or a fine comparison needs): SSIM agrees with
    scikit-image (Gaussian window, sigma 1.5, population covariance) to 1e-9."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 1, 20, 24, generator=g, dtype=torch.float64)
    y = (x + 1e-3 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    ours = ssim(x, y)
    assert ours.dtype == torch.float64
    for i in range(2):
        ref = structural_similarity(x[i, 0].numpy(), y[i, 0].numpy(), gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0)
        assert float(ours[i]) == pytest.approx(ref, abs=1e-9)


def test_ssim_accepts_an_image_exactly_one_window_wide():
    """An 11-pixel side fits the 11 x 11 window once: a valid input, scored like scikit-image, not an error."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 1, 11, 14, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    ref = structural_similarity(x[0, 0].numpy(), y[0, 0].numpy(), gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=1.0)
    assert float(ssim(x, y)[0]) == pytest.approx(ref, abs=1e-6)


def test_ssim_refuses_images_of_different_shapes_instead_of_broadcasting():
    """One prediction against two targets would broadcast into two plausible scores; the shapes must agree."""
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.rand(1, 1, 16, 16), torch.rand(2, 1, 16, 16))


def test_relative_l2_is_normalised_by_the_target():
    """relative L2 = ||pred - target|| / ||target|| per sample (numpy reference): dividing by the prediction's norm
    instead would reward a model that predicts large fields."""
    g = torch.Generator().manual_seed(4)
    t = torch.randn(3, 1, 6, 5, generator=g, dtype=torch.float64)
    p = 2.0 * t + 0.1 * torch.randn(t.shape, generator=g, dtype=torch.float64)
    ref = [np.linalg.norm((p[i] - t[i]).numpy()) / np.linalg.norm(t[i].numpy()) for i in range(3)]
    assert relative_l2(p, t).tolist() == pytest.approx(ref, rel=1e-6)


def test_ssim_of_a_multichannel_image_averages_every_channel():
    """SSIM of a [B, 3, H, W] image is the mean of the per-channel SSIMs (scikit-image, channel by channel): damage
    confined to one channel must lower the score."""
    g = torch.Generator().manual_seed(5)
    x = torch.rand(1, 3, 16, 16, generator=g, dtype=torch.float64)
    y = x.clone()
    y[:, 1:] = (y[:, 1:] + 0.2 * torch.randn(1, 2, 16, 16, generator=g, dtype=torch.float64)).clamp(0, 1)
    ref = np.mean([structural_similarity(x[0, c].numpy(), y[0, c].numpy(), gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, data_range=1.0) for c in range(3)])
    assert float(ssim(x, y)[0]) == pytest.approx(ref, abs=1e-6)


# --------------------------------------------------------------------------- benchmark statistics
def _row(series, N, ms, C=256, B=1, **extra):
    """One benchmark row; ``ms`` a number (median only, as old files) or a list of session medians."""
    row = dict(series=series, mode="fwd+bwd", C=C, B=B, H=int(math.isqrt(N)), W=N // int(math.isqrt(N)), N=N,
               peak_bytes=0, median_ms=float(np.median(ms)), **extra)
    if isinstance(ms, list):
        row["sessions_ms"] = ms
    return row


def test_growth_fits_skip_missing_and_zero_times():
    """A configuration that was skipped or failed is recorded with no time (None) or 0; the growth exponent and the
    N log N fit are taken over the measured points only (numpy polyfit on those points), not broken by log(0)."""
    Ns, ts = [256, 1024, 4096, 16384], [None, 0.0, 3.0, 14.0]
    ref = np.polyfit(np.log(Ns[2:]), np.log(ts[2:]), 1)[0]
    assert stats.fit_slope(Ns, ts) == pytest.approx(ref)
    assert stats.fit_nlogn(Ns, ts)["points"] == 2


def test_nlogn_fit_residual_is_relative_to_the_measured_time():
    """``max_rel_residual`` is the largest |t - fit| / t (numpy least squares on x = N log2 N): a 5 % misfit on a
    100 ms point reads 0.05, not 5 ms."""
    Ns, ts = [1024, 4096, 16384], [10.0, 45.0, 220.0]
    x = np.array([n * math.log2(n) for n in Ns])
    b, a = np.polyfit(x, ts, 1)
    ref = max(abs(t - (a + b * xi)) / t for xi, t in zip(x, ts, strict=True))
    fit = stats.fit_nlogn(Ns, ts)
    assert fit["max_rel_residual"] == pytest.approx(ref, rel=1e-9)
    assert fit["a_ms"] == pytest.approx(a) and fit["b_ns"] == pytest.approx(b * 1e6)


def test_crossover_a_tie_is_not_faster_and_faster_everywhere_is_a_bound():
    """"Stays faster" is strict: equal times at the largest grid give no crossover. Faster at every grid gives the
    smallest measured N as an upper bound ("<="), not an extrapolation."""
    tie = {"results": [_row("afno_fast", 64, 2.0), _row("afno_fast", 256, 2.0),
                       _row("attention_h8", 64, 1.0), _row("attention_h8", 256, 2.0)]}
    assert stats.crossover(tie)["N"] is None
    always = {"results": [_row("afno_fast", 64, 0.5), _row("afno_fast", 256, 0.9),
                          _row("attention_h8", 64, 1.0), _row("attention_h8", 256, 2.0)]}
    assert {k: stats.crossover(always)[k] for k in ("N", "bound")} == {"N": 64, "bound": "<="}


def test_crossover_goal_is_met_at_exactly_128_tokens():
    """The crossover goal reads "from N <= 128": faster from N = 128 on meets it."""
    res = {"results": [_row("afno_fast", 128, 0.5), _row("afno_fast", 512, 1.0),
                       _row("attention_h8", 128, 1.0), _row("attention_h8", 512, 4.0)]}
    co = stats.goal_ratios(res)["crossover_vs_attention_h8"]
    assert co["N"] == 128 and co["met"] is True


def test_rows_of_different_runs_are_compared_by_their_medians():
    """Two rows with different numbers of sessions were not timed together: their ratio is the one ratio of the
    medians, not a pairing of unrelated sessions."""
    num, den = _row("afno_fast", 1024, [1.0, 2.0, 9.0]), _row("fft_floor", 1024, [4.0, 4.0])
    assert stats.session_ratios(num, den) == [pytest.approx(2.0 / 4.0)]


def test_floor_ratio_of_different_runs_uses_the_faster_floor_median():
    """When the rows come from different runs the floor is the layout with the faster median: fast AFNO 2 ms against
    floors of 1 ms and 4 ms reads 2.0, the conservative ratio."""
    res = {"results": [_row("afno_fast", 4096, [2.0, 2.0, 2.0]), _row("fft_floor", 4096, 1.0),
                       _row("fft_floor_cf", 4096, [4.0, 4.0])]}
    fr = stats.best_floor_ratios(res, "afno_fast", "fwd+bwd", 256, 1, 4096)
    assert fr["best"]["median"] == 2.0 and fr["faster_layout"] == ["channels_last"]


def test_a_row_measured_on_the_gpu_counts_as_gpu_even_in_a_cpu_result():
    """A row's own ``device`` wins over the result's: GPU rows merged into a CPU result file must not enter the CPU
    goals (and vice versa)."""
    res = {"machine": {"device": "cpu"}, "results": [_row("afno_fast", 1024, 1.0, device="cuda:0"),
                                                     _row("afno_fast", 4096, 1.0)]}
    assert stats.row_device(res, res["results"][0]) == "cuda:0"
    assert [r["N"] for r in stats.on_cuda(res)["results"]] == [1024]


def test_gpu_floor_goal_is_against_the_channels_first_floor():
    """The GPU goal is "<= 3 x the channels-first floor": when the channels-last floor happens to be faster, the
    ratio reported for the goal is still the one to channels-first (5 / 2.5 = 2)."""
    res = {"results": [_row("afno_fast", 65536, [5.0] * 3, device="cuda:0"),
                       _row("fft_floor", 65536, [1.0] * 3, device="cuda:0"),
                       _row("fft_floor_cf", 65536, [2.5] * 3, device="cuda:0")]}
    g = stats.gpu_goal_ratios(res)["gpu_vs_floor_cf"]
    assert g["ratios"]["fp32 C=256 B=1"][65536]["median"] == pytest.approx(2.0)


# --------------------------------------------------------------------------- generated scenes
def _naive_displacements(size, n_classes, min_dist, margin):
    """relation_displacements re-derived with plain loops: every (dy, dx) with |dy|, |dx| < size/2, Chebyshev length
    >= min_dist, in the sector of its orientation and >= margin from its edges."""
    out = [set() for _ in range(n_classes)]
    for dy in range(-size, size + 1):
        for dx in range(-size, size + 1):
            if abs(dy) >= size / 2 or abs(dx) >= size / 2 or max(abs(dy), abs(dx)) < min_dist:
                continue
            s = (math.atan2(dy, dx) % math.pi) / (math.pi / n_classes)
            if s >= n_classes - 1e-9:
                s = 0.0
            c, frac = int(math.floor(s)), s - math.floor(s)
            if margin <= frac <= 1 - margin:
                out[c].add((dy, dx))
    return out


@pytest.mark.parametrize("size, n_classes, min_dist, margin", [(32, 12, 8, 0.2), (21, 6, 5, 0.1)])
def test_relation_displacements_equal_a_naive_enumeration(size, n_classes, min_dist, margin):
    """The class table is exactly the displacements the module docstring describes, the ones at Chebyshev distance
    exactly ``min_dist`` included (odd and even canvases)."""
    table = relation_displacements(size, n_classes, min_dist, margin)
    ref = _naive_displacements(size, n_classes, min_dist, margin)
    assert [set(map(tuple, a.tolist())) for a in table] == ref
    assert any(max(abs(dy), abs(dx)) == min_dist for a in ref for dy, dx in a)


def test_the_dots_are_added_to_the_noise_not_pasted_over_it():
    """Dot pixels carry the same background noise as every other pixel (value 1 + noise): a noise-free square would
    give the dots away by their zero variance alone."""
    x, _, p = relation_scenes(50, seed=1, noise=0.1, dot=3, return_positions=True)
    r, c = p[:, 0, 0], p[:, 0, 1]
    dots = torch.stack([x[i, 0, (r[i] + a) % 32, (c[i] + b) % 32] for i in range(50) for a, b in np.ndindex(3, 3)])
    assert float((dots - 1.0).std()) == pytest.approx(0.1, rel=0.15)


def test_shape_scenes_reach_max_shapes_and_never_exceed_it():
    """"1 to max_shapes shapes": with the default radius every count from 1 to 3 occurs (the shapes never touch, so
    connected components count them) and none above 3."""
    _, y = shape_scenes(40, size=64, seed=0, max_shapes=3)
    counts = {ndimage.label(y[i].numpy() > 0)[1] for i in range(40)}
    assert counts == {1, 2, 3}


def test_shapes_lie_wholly_inside_the_image():
    """Every shape keeps at least one pixel of background to the image border, so its whole outline (what decides
    its label) is in the picture: the outermost rows and columns are background in every image."""
    _, y = shape_scenes(60, size=32, seed=2, max_shapes=3, radius=(0.15, 0.25))
    border = torch.cat([y[:, 0], y[:, -1], y[:, :, 0], y[:, :, -1]], dim=1)
    assert int(border.max()) == 0 and int((y > 0).sum()) > 0


def test_shape_radius_must_stay_below_half_the_image():
    """A radius of half the image (a shape as wide as the canvas) is refused with the bound in the message, as the
    docstring states (0 < low <= high < 0.5)."""
    with pytest.raises(MixerConfigError, match="radius"):
        shape_scenes(1, size=32, radius=(0.1, 0.5))


# --------------------------------------------------------------------------- Navier-Stokes solver
def test_wavenumbers_are_the_rfft2_half_plane_with_a_positive_nyquist_column():
    """``pde.wavenumbers(N)`` returns 2 pi k in rfft2 order: kx as numpy's fftfreq (Nyquist row at -N/2), ky as rfftfreq
    (last column +N/2). A reader building a spectral derivative from them gets the half-plane numpy and torch
    use."""
    for N in (8, 6):
        kx, ky = pde.wavenumbers(N)
        assert kx.shape == (N, 1) and ky.shape == (1, N // 2 + 1)
        assert kx[:, 0].tolist() == pytest.approx((2 * np.pi * np.fft.fftfreq(N, 1 / N)).tolist())
        assert ky[0].tolist() == pytest.approx((2 * np.pi * np.fft.rfftfreq(N, 1 / N)).tolist())


def test_two_thirds_rule_drops_the_mode_at_exactly_n_over_3():
    """On a grid whose size is a multiple of 3 (N = 12) the 2/3 rule keeps |k| < N/3 = 4 only: mode 4 would alias (4
    + 4 = 8 = -4 mod 12) in the quadratic product. The solver's state has no energy at |k_x| >= 4 or k_y >= 4
    (numpy's fftfreq as reference)."""
    N = 12
    w = pde.navier_stokes(pde.gaussian_random_field(1, N, seed=0), T=0.02, dt=0.01)
    spec = np.abs(np.fft.rfft2(w[0].numpy()))
    outside = (np.abs(np.fft.fftfreq(N, 1 / N))[:, None] >= N / 3) | (np.fft.rfftfreq(N, 1 / N)[None, :] >= N / 3)
    assert spec[outside].max() < 1e-10 * spec.max()
    assert spec[~outside].max() > 1e-3                # the band itself is not empty


def test_kolmogorov_forcing_is_the_fno_benchmark_formula():
    """f(x, y) = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y)) at x_i = i/N, y_j = j/N (Li et al., 2021): the PDE
    chapter's data must be the benchmark's, evaluated here with numpy."""
    N = 8
    x, y = np.meshgrid(np.arange(N) / N, np.arange(N) / N, indexing="ij")
    ref = 0.1 * (np.sin(2 * np.pi * (x + y)) + np.cos(2 * np.pi * (x + y)))
    assert pde.kolmogorov_forcing(N).numpy() == pytest.approx(ref, abs=1e-12)
    assert pde.kolmogorov_forcing(N, amplitude=0.3).numpy() == pytest.approx(3 * ref, abs=1e-12)


def test_random_field_spectrum_follows_the_covariance_operator():
    """The initial vorticity has covariance (-lap + tau^2)^(-alpha): the mean power at |k| = 4 over the mean power
    at |k| = 1 (axis modes, 2 pi k) is ((2 pi 4)^2 + tau^2)^-alpha / ((2 pi)^2 + tau^2)^-alpha; a field with the
    wrong exponent is smoother or rougher than the benchmark's."""
    alpha, tau, N = 2.5, 7.0, 16
    w = pde.gaussian_random_field(60, N, alpha=alpha, tau=tau, seed=0, std=None).numpy()
    P = (np.abs(np.fft.fft2(w)) ** 2).mean(0)
    p1 = np.mean([P[1, 0], P[-1, 0], P[0, 1], P[0, -1]])
    p4 = np.mean([P[4, 0], P[-4, 0], P[0, 4], P[0, -4]])
    ref = (((2 * np.pi * 4) ** 2 + tau**2) / ((2 * np.pi) ** 2 + tau**2)) ** (-alpha)
    assert p4 / p1 == pytest.approx(ref, rel=0.3)


# --------------------------------------------------------------------------- offline images
@pytest.mark.parametrize("name", ["mri", "topography"])
def test_shipped_images_span_the_whole_unit_range(name):
    """The MRI slice is scaled by its maximum and the elevation model min-max: both reach 1 (and the elevation 0),
    so a crop's contrast does not depend on the file's units."""
    a = load_image(name, size=None)
    assert float(a.max()) == pytest.approx(1.0)
    if name == "topography":
        assert float(a.min()) == pytest.approx(0.0)


def test_a_snapshot_lands_exactly_on_t_when_t_is_not_a_multiple_of_dt():
    """T = 0.05 with dt = 0.02: the solver shortens its step so the last one lands on T. A single Fourier mode
    without forcing decays exactly as exp(-nu |2 pi k|^2 t), here 2 pi (1, 2)."""
    N, nu, T = 16, 0.05, 0.05
    x = torch.arange(N, dtype=torch.float64) / N
    w0 = torch.cos(2 * math.pi * (x[:, None] + 2 * x[None, :]))
    wT = pde.navier_stokes(w0, T=T, nu=nu, dt=0.02, forcing=None)
    decay = math.exp(-nu * (2 * math.pi) ** 2 * 5 * T)
    assert wT.numpy() == pytest.approx((decay * w0).numpy(), abs=1e-10)


def test_a_forcing_tensor_is_projected_onto_the_two_thirds_band():
    """A user-given forcing with energy at high wavenumbers must not push the state out of the 2/3 band (the
    Galerkin truncation that keeps the scheme de-aliased)."""
    N = 12
    x = torch.arange(N, dtype=torch.float64) / N
    f = torch.cos(2 * math.pi * 5 * x)[:, None] + torch.cos(2 * math.pi * 4 * x)[None, :]
    w = pde.navier_stokes(torch.zeros(N, N, dtype=torch.float64), T=0.1, dt=0.05, forcing=f)
    assert float(w.abs().max()) < 1e-12


def test_images_are_centre_cropped_gray_means_area_averaged():
    """``load_image(name, size)``: the mean of R, G, B (divided by 255), the centre square, and an area average down
    to ``size`` -- re-derived with numpy from matplotlib's own file."""
    path = f"{matplotlib.get_data_path()}/sample_data/{IMAGES['grace_hopper']}"
    raw = np.asarray(mpimg.imread(path), dtype=np.float64)[..., :3].mean(-1) / 255.0    # 600 x 512
    (H, W), s = raw.shape, min(raw.shape)
    sq = raw[(H - s) // 2:(H - s) // 2 + s, (W - s) // 2:(W - s) // 2 + s]
    ref = sq.reshape(64, s // 64, 64, s // 64).mean(axis=(1, 3))
    assert load_image("grace_hopper", size=64).numpy() == pytest.approx(ref, abs=1e-5)


def test_a_float32_field_is_solved_in_float64():
    """The solver computes in float64 whatever the input: a float32 w0 gives the float64 solution of the same
    values, rounded once to float32 (bit for bit). Curl and divergence likewise return the dtype they were given."""
    w0 = pde.gaussian_random_field(2, 16, seed=1).float()
    a, b = pde.navier_stokes(w0, T=0.1, dt=0.05), pde.navier_stokes(w0.double(), T=0.1, dt=0.05).float()
    assert a.dtype == torch.float32 and torch.equal(a, b)
    u, v = pde.velocity(w0)
    assert pde.curl(u, v).dtype == torch.float32 and pde.divergence(u, v).dtype == torch.float32


def test_raw_random_field_variance_is_the_sum_of_the_kept_mode_variances():
    """With ``std=None`` the field keeps the covariance's own scale: its pointwise variance is sum over the kept
    modes (|k_x|, |k_y| < N/2, k != 0) of tau^(2 alpha - 2) (|2 pi k|^2 + tau^2)^(-alpha), the variance of a real
    field with those mode variances."""
    alpha, tau, N, k = 2.5, 7.0, 16, np.arange(-7, 8)                 # |k| < N/2
    k2 = (2 * np.pi) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2)
    var = np.where(k2 == 0, 0.0, tau ** (2 * alpha - 2) * (k2 + tau**2) ** (-alpha))
    w = pde.gaussian_random_field(60, N, alpha=alpha, tau=tau, seed=0, std=None).numpy()
    assert (w**2).mean() == pytest.approx(var.sum(), rel=0.2)


def test_synthetic_field_power_falls_as_k_to_the_minus_slope_on_a_non_square_grid():
    """``synthetic_field``'s power spectrum is ~ |k|^-slope in integer wavenumbers on an 8 x 32 grid, the same along
    H and W: power at (k_H, k_W) = (0, 4) over (0, 1) is 4^-slope, and (2, 1) and (1, 2), both at |k| = sqrt 5,
    carry the same power (400 channels; modes off the k_W = 0 column)."""
    f = synthetic_field(8, 32, slope=(slope := 3.0), seed=0, channels=400).numpy()
    P = (np.abs(np.fft.fft2(f, axes=(0, 1))) ** 2).mean(-1)
    assert P[0, 4] / P[0, 1] == pytest.approx(4.0**-slope, rel=0.5)      # 64x off if slope were doubled
    assert P[2, 1] / P[1, 2] == pytest.approx(1.0, rel=0.25)
    with pytest.raises(MixerConfigError, match="at least 2 grid points"):    # one point has no variance
        synthetic_field(1, 1)


def test_patch_masks_always_hide_one_square_and_show_one():
    """With 4 squares per image, ratio 0.05 still hides one square (not none) and ratio 0.95 hides three (not all):
    an inpainting example always has something to fill and something to see."""
    for ratio, hidden in ((0.05, 1), (0.95, 3)):
        m = patch_mask(5, size=8, patch=4, ratio=ratio, seed=0)
        assert m.sum(dim=(1, 2, 3)).tolist() == [hidden * 16.0] * 5


def test_procedural_crops_are_the_nearest_count_and_span_zero_to_one():
    """``procedural=0.7`` of 4 crops is round(2.8) = 3 random fields, each mapped min-max onto exactly [0, 1] by an
    affine map: one pixel at 0, one at 1, none clipped (a photograph crop from this zoom never does that)."""
    x = image_crops(4, size=16, seed=0, names=("grace_hopper",), scales=(4,), procedural=0.7)
    assert sum(int((c == 0).sum()) == 1 and int((c == 1).sum()) == 1 and 0 <= float(c.min()) for c in x) == 3


def test_flipped_crops_use_both_axes():
    """With ``flips`` a crop is the image window as is, mirrored left-right, upside down, or both: among 40 crops
    each of the four orientations occurs (each crop located in the zoomed image by exhaustive search)."""
    img = F.avg_pool2d(load_image("mri", size=None)[None, None], 4)[0, 0]       # 64 x 64 zoom
    crops = image_crops(40, size=8, seed=0, names=("mri",), scales=(4,), flips=True)
    windows, seen = img.unfold(0, 8, 1).unfold(1, 8, 1).reshape(-1, 8, 8), set()
    for c in crops[:, 0]:
        hits = [o for o, t in enumerate((c, c.flip(1), c.flip(0), c.flip(0, 1)))
                if ((windows - t).abs().amax(dim=(1, 2)) < 1e-6).any()]
        if len(hits) == 1:
            seen.add(hits[0])
    assert seen == {0, 1, 2, 3}


def test_pde_data_solves_to_the_requested_time():
    """``pde_data(T=...)`` pairs w(0) with w(T) at the T asked for: its target is the solver's field at that time."""
    _, y = pde_data(1, grids=(16,), T=0.1, seed=2, fine=16)[16]
    ref = pde.navier_stokes(pde.gaussian_random_field(1, 16, seed=2), T=0.1, dt=2e-2)
    assert torch.allclose(y[:, 0].double(), ref, atol=1e-6)


def test_train_and_test_crops_draw_independent_random_streams():
    """With one ``seed`` the train and test splits draw from different streams: which slots hold procedural fields
    differs between them (the same stream would repeat every random choice across the splits)."""
    def slots(split):
        x = image_crops(24, size=16, split=split, seed=0, names=("grace_hopper",), scales=(4,), procedural=0.5)
        return [int((c == 0).sum()) == 1 and int((c == 1).sum()) == 1 for c in x]
    assert slots("train") != slots("test") and sum(slots("train")) == sum(slots("test")) == 12
