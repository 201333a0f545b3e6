"""Tests for the pseudo-spectral Navier-Stokes solver (afno_lite.pde)."""
import math

import pytest
import torch

from afno_lite import pde

TWO_PI = 2 * math.pi



def _mode(N, k1, k2, amp=1.0):
    x, y = pde.grid_coordinates(N)
    return amp * torch.cos(TWO_PI * (k1 * x + k2 * y))


@pytest.mark.parametrize("k1,k2", [(1, 0), (2, 3), (-4, 1)])
def test_single_mode_viscous_decay_matches_analytic(k1, k2):
    """Without forcing a single Fourier mode has u . grad w = 0: it decays as exp(-nu |2 pi k|^2 t)
    and its kinetic energy as exp(-2 nu |2 pi k|^2 t)."""
    N, nu, T = 32, 1e-2, 0.7
    w0 = _mode(N, k1, k2, amp=3.0)
    wT = pde.navier_stokes(w0, T=T, nu=nu, dt=0.05, forcing=None)
    k2norm = TWO_PI**2 * (k1**2 + k2**2)
    torch.testing.assert_close(wT, w0 * math.exp(-nu * k2norm * T), rtol=0, atol=1e-12)
    e0, eT = pde.kinetic_energy(w0), pde.kinetic_energy(wT)
    # analytic energy of A cos(2 pi k.x): A^2 / (4 |2 pi k|^2)
    torch.testing.assert_close(e0, torch.tensor(9.0 / (4 * k2norm), dtype=torch.float64), rtol=1e-12, atol=0)
    torch.testing.assert_close(eT / e0, torch.tensor(math.exp(-2 * nu * k2norm * T), dtype=torch.float64),
                               rtol=1e-10, atol=0)


def test_energy_decays_monotonically_without_forcing():
    w0 = pde.gaussian_random_field(2, 32, seed=3)
    traj = pde.navier_stokes(w0, T=0.5, nu=1e-3, dt=1e-2, forcing=None, record=5)
    assert traj.shape == (2, 5, 32, 32)
    e = pde.kinetic_energy(torch.cat([w0[:, None], traj], dim=1))
    assert (e[:, 1:] < e[:, :-1]).all()


def test_laminar_kolmogorov_flow_matches_analytic():
    """From rest, the forcing f(x+y) drives a flow whose advection vanishes identically:
    w(t) = f / (nu |k|^2) (1 - exp(-nu |k|^2 t)) with |k|^2 = 2 (2 pi)^2."""
    N, nu, T = 32, 1e-2, 1.3
    w = pde.navier_stokes(torch.zeros(1, N, N, dtype=torch.float64), T=T, nu=nu, dt=1e-2)
    lam = nu * 2 * TWO_PI**2
    expected = pde.kolmogorov_forcing(N) / lam * (1 - math.exp(-lam * T))
    torch.testing.assert_close(w[0], expected, rtol=0, atol=1e-10)


def test_velocity_of_single_mode_and_sign_convention():
    """w = cos(2 pi (k1 x + k2 y)) -> psi = w / |2 pi k|^2, u = d_y psi, v = -d_x psi."""
    N, k1, k2 = 32, 2, 1
    x, y = pde.grid_coordinates(N)
    ph = TWO_PI * (k1 * x + k2 * y)
    w = torch.cos(ph)
    kk = TWO_PI**2 * (k1**2 + k2**2)
    u, v = pde.velocity(w)
    torch.testing.assert_close(u, -TWO_PI * k2 * torch.sin(ph) / kk, rtol=0, atol=1e-12)
    torch.testing.assert_close(v, TWO_PI * k1 * torch.sin(ph) / kk, rtol=0, atol=1e-12)
    torch.testing.assert_close(pde.stream_function(w), w / kk, rtol=0, atol=1e-12)


def test_velocity_is_divergence_free_and_recovers_vorticity():
    w = pde.gaussian_random_field(3, 64, seed=1)
    u, v = pde.velocity(w)
    scale = w.abs().max()
    assert pde.divergence(u, v).abs().max() < 1e-10 * scale
    # curl(u) = w - mean(w) (the mean vorticity carries no velocity on a torus)
    torch.testing.assert_close(pde.curl(u, v), w - w.mean(dim=(-2, -1), keepdim=True), rtol=0, atol=1e-10)
    # an independent, non-spectral check: second-order central differences
    dx = 1.0 / 64
    div_fd = (torch.roll(u, -1, -2) - torch.roll(u, 1, -2) + torch.roll(v, -1, -1) - torch.roll(v, 1, -1)) / (2 * dx)
    grad_scale = (torch.roll(u, -1, -2) - torch.roll(u, 1, -2)).abs().max() / (2 * dx)
    assert div_fd.abs().max() < 0.05 * grad_scale


def test_time_step_convergence():
    w0 = pde.gaussian_random_field(2, 32, seed=0)
    a = pde.navier_stokes(w0, T=0.5, dt=2e-2)
    b = pde.navier_stokes(w0, T=0.5, dt=1e-2)
    assert ((a - b).norm() / b.norm()) < 1e-6
    # and the flow did change: advection and forcing matter over this horizon
    assert ((b - w0).norm() / w0.norm()) > 0.1


def test_coarse_solve_agrees_with_subsampled_fine_solve():
    """The fields are smooth: solving on 32x32 the subsampled initial condition gives the
    subsampled 64x64 solution up to a small resolution error."""
    w64 = pde.gaussian_random_field(2, 64, seed=5)
    fine = pde.subsample(pde.navier_stokes(w64, T=0.5), 2)
    coarse = pde.navier_stokes(pde.subsample(w64, 2), T=0.5)
    assert ((fine - coarse).norm() / fine.norm()) < 1e-2


def test_random_fields_are_nested_across_grids():
    w32 = pde.gaussian_random_field(2, 32, seed=7, std=None)
    w64 = pde.gaussian_random_field(2, 64, seed=7, std=None)
    F32 = torch.fft.fft2(w32) / 32**2
    F64 = torch.fft.fft2(w64) / 64**2
    idx32 = torch.cat([torch.arange(0, 16), torch.arange(17, 32)])
    idx64 = torch.cat([torch.arange(0, 16), torch.arange(64 - 15, 64)])
    torch.testing.assert_close(F32[:, idx32][:, :, idx32], F64[:, idx64][:, :, idx64], rtol=0, atol=1e-12)
    assert torch.allclose(w64.mean(dim=(-2, -1)), torch.zeros(2, dtype=w64.dtype), atol=1e-12)
    w = pde.gaussian_random_field(4, 32, seed=0)
    torch.testing.assert_close(w.std(dim=(-2, -1)), torch.ones(4, dtype=w.dtype))


def test_pairs_are_consistent_across_resolutions_and_seeded():
    p = pde.navier_stokes_pairs(3, grids=(32, 64), T=0.2, seed=11)
    x64, y64 = p[64]
    x32, y32 = p[32]
    assert x64.shape == y64.shape == (3, 1, 64, 64) and x32.shape == (3, 1, 32, 32)
    assert x64.dtype == torch.float32
    assert torch.equal(x32, x64[..., ::2, ::2]) and torch.equal(y32, y64[..., ::2, ::2])
    q = pde.navier_stokes_pairs(3, grids=(32,), T=0.2, seed=11)
    assert torch.equal(q[32][1], y32)
    r = pde.navier_stokes_pairs(3, grids=(32,), T=0.2, seed=12)
    assert not torch.allclose(r[32][0], x32)


@pytest.mark.parametrize("call,match", [
    (lambda: pde.navier_stokes(torch.zeros(2, 31, 31), T=1.0), "even integer"),
    (lambda: pde.navier_stokes(torch.zeros(2, 32, 16), T=1.0), "square grid"),
    (lambda: pde.navier_stokes(torch.zeros(2, 32, 32), T=-1.0), "T must be"),
    (lambda: pde.navier_stokes(torch.zeros(2, 32, 32), T=1.0, nu=-1e-3), "nu must be"),
    (lambda: pde.navier_stokes(torch.zeros(2, 32, 32), T=1.0, forcing="wind"), "forcing"),
    (lambda: pde.navier_stokes(torch.zeros(2, 32, 32), T=1.0, forcing=torch.zeros(16, 16)), "forcing"),
    (lambda: pde.navier_stokes(torch.zeros(2, 32, 32), T=1.0, record=-1), "record"),
    (lambda: pde.gaussian_random_field(0, 32), "n must be"),
    (lambda: pde.gaussian_random_field(2, 32, std=-1.0), "std must be"),
    (lambda: pde.navier_stokes_pairs(2, grids=(24,), fine=64), "divide"),
    (lambda: pde.subsample(torch.zeros(1, 30, 30), 4), "divisible"),
])
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_integer_tensor_rejected():
    with pytest.raises(TypeError, match="floating-point"):
        pde.velocity(torch.zeros(1, 32, 32, dtype=torch.long))


# --------------------------------------------------------------------------- the nonlinear term
def _two_mode(N):
    """w = cos 2 pi x + cos 4 pi y: two wavenumber magnitudes, so u . grad w does not vanish.
    psi = cos 2 pi x / (2 pi)^2 + cos 4 pi y / (4 pi)^2, u = d_y psi = -sin 4 pi y / (4 pi),
    v = -d_x psi = sin 2 pi x / (2 pi), and u . grad w = -1.5 sin 2 pi x sin 4 pi y."""
    x, y = pde.grid_coordinates(N)
    w = torch.cos(TWO_PI * x) + torch.cos(2 * TWO_PI * y)
    return w, -1.5 * torch.sin(TWO_PI * x) * torch.sin(2 * TWO_PI * y)


def test_advection_of_a_two_mode_field_matches_analytic():
    w, expected = _two_mode(32)
    torch.testing.assert_close(pde.advection(w), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(pde.advection(w, dealias=False), expected, rtol=0, atol=1e-12)
    # a single wavenumber magnitude is the degenerate case: u . grad w = 0
    assert pde.advection(_mode(32, 2, 1)).abs().max() < 1e-12


def test_one_short_step_follows_the_analytic_right_hand_side():
    """dw/dt = -u . grad w (no viscosity, no forcing): one step of length h moves w by
    h * 1.5 sin 2 pi x sin 4 pi y to first order in h."""
    w, adv = _two_mode(32)
    h = 1e-4
    w_h = pde.navier_stokes(w, T=h, nu=0.0, dt=h, forcing=None)
    torch.testing.assert_close((w_h - w) / h, -adv, rtol=0, atol=1e-3)


def _enstrophy(w):
    return 0.5 * (w.double() ** 2).mean(dim=(-2, -1))


def test_inviscid_run_conserves_energy_and_enstrophy_to_the_scheme_accuracy():
    """Without viscosity and forcing the 2/3-truncated system conserves energy and enstrophy
    exactly in continuous time; RK4 drifts by O(h^4) per unit time (checked: halving the step
    shrinks the drift by more than 10x)."""
    w0 = pde.gaussian_random_field(2, 32, seed=4)
    drifts = []
    for dt in (2e-2, 1e-2):
        wT = pde.navier_stokes(w0, T=1.0, nu=0.0, dt=dt, forcing=None)
        w0_band = pde.navier_stokes(w0, T=1e-12, nu=0.0, dt=1e-12, forcing=None)  # projected start
        e0, eT = pde.kinetic_energy(w0_band), pde.kinetic_energy(wT)
        z0, zT = _enstrophy(w0_band), _enstrophy(wT)
        drifts.append(max(float(((eT - e0) / e0).abs().max()), float(((zT - z0) / z0).abs().max())))
        # the flow really evolved (advection is not a no-op)
        assert float((wT - w0_band).norm() / w0_band.norm()) > 0.1
    assert drifts[1] < 1e-6, drifts
    assert drifts[0] / drifts[1] > 10, drifts


def test_state_stays_in_the_two_thirds_band():
    w0 = pde.gaussian_random_field(1, 32, seed=2)       # has energy outside the band at t = 0
    mask = pde._dealias_mask(32)
    W0 = torch.fft.rfft2(w0)
    assert float(W0[..., ~mask].abs().max()) > 1e-6
    W = torch.fft.rfft2(pde.navier_stokes(w0, T=0.2, nu=1e-3, dt=1e-2))
    assert float(W[..., ~mask].abs().max()) < 1e-12 * float(W.abs().max())


def test_solver_shows_a_progress_bar_over_its_steps_only_when_asked(capsys):
    """Making the PDE data is the trainer's slowest silent step (tens of seconds at the
    defaults, minutes with fine evaluation grids): the solver can show a bar over its steps."""
    w0 = pde.gaussian_random_field(2, 16, seed=0)
    quiet = pde.navier_stokes(w0, T=0.1, dt=0.02)
    assert capsys.readouterr().err == ""
    shown = pde.navier_stokes(w0, T=0.1, dt=0.02, progress="solving")
    err = capsys.readouterr().err
    assert "solving" in err and "/5" in err
    assert torch.equal(quiet, shown)                     # the bar changes nothing computed
    with pytest.raises(pde.MixerConfigError, match="progress must be True, False or a label"):
        pde.navier_stokes(w0, T=0.1, progress=1)
