"""Token mixers: gradients, shapes and dtypes, and the equivalences the book relies on.

Every reference below is written here, in float64, from the equations (not from
``afno_lite``), so a change in the library that breaks the maths makes a test fail.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call

import afno_lite
from afno_lite import AFNO, GlobalFilter, KernelAttention, SelfAttention, SpectralConv2d, mixer
from afno_lite.spectral import kept_mode_mask

F64 = torch.float64

MIXER_NAMES = ["attention", "kernel_attention", "fno", "gfn", "afno"]
SPECTRAL = ["fno", "gfn", "afno"]


def _build(name: str, dim: int, grid: tuple[int, int], **extra) -> torch.nn.Module:
    """A small mixer of each kind that is valid on ``grid``."""
    H, W = grid
    kw = {
        "attention": dict(num_heads=2),
        "kernel_attention": dict(num_heads=2),
        "fno": dict(modes=(H // 2, W // 2)),
        "gfn": dict(grid=(H, W)),
        "afno": dict(num_blocks=2, hidden_factor=2),
    }[name]
    kw.update(extra)
    return mixer(name, dim, **kw)


def _rand_params_(m: torch.nn.Module, scale: float) -> torch.nn.Module:
    """Re-draw every trainable parameter with a larger scale so that ReLU and
    softshrink are genuinely active (0.02-scale weights leave everything below λ)."""
    with torch.no_grad():
        for p in m.parameters():
            if p.requires_grad:
                p.copy_(scale * torch.randn_like(p))
    return m


# ----------------------------------------------------------------------------- gradcheck
@pytest.mark.parametrize("name", MIXER_NAMES)
def test_gradcheck_float64_input_and_parameters(name):
    torch.manual_seed(0)
    grid = (3, 5)  # odd and non-square: row aliasing and the rfft half-axis both matter
    extra = dict(sparsity_threshold=0.05) if name == "afno" else {}
    m = _build(name, 4, grid, **extra).double()
    if name == "afno":
        _rand_params_(m, 0.5)
    x = torch.randn(2, *grid, 4, dtype=F64, requires_grad=True)
    if name == "afno":  # the threshold must both zero some coefficients and pass others
        X = torch.fft.rfft2(x.detach(), dim=(1, 2), norm="ortho").reshape(2, 3, 3, 2, 2)
        o_r, o_i = m.block_mlp(X.real, X.imag)
        o = torch.cat([o_r.flatten(), o_i.flatten()]).abs()
        assert (o <= 0.05).any() and (o > 0.05).any()
    names = [n for n, p in m.named_parameters() if p.requires_grad]
    params = [p.detach().clone().requires_grad_() for n, p in m.named_parameters() if p.requires_grad]
    assert params, "every mixer has trainable parameters"

    def f(x, *ps):
        return functional_call(m, dict(zip(names, ps, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6, rtol=1e-4)


# ----------------------------------------------------------------------------- shapes and dtypes
GRIDS = [(8, 8), (6, 10), (7, 9)]  # square, non-square, odd


@pytest.mark.parametrize("name", MIXER_NAMES)
@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"{g[0]}x{g[1]}")
@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["f32", "f64"])
def test_shape_and_dtype_preserved(name, grid, dtype):
    torch.manual_seed(0)
    m = _build(name, 8, grid).to(dtype)
    x = torch.randn(2, *grid, 8, dtype=dtype)
    y = m(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert torch.isfinite(y).all()
    assert not torch.equal(y, x)  # the mixer does something


@pytest.mark.parametrize("name", SPECTRAL)
def test_spectral_mixers_upcast_float32_parameters_for_float64_input(name):
    torch.manual_seed(0)
    m = _build(name, 8, (6, 10))                       # float32 parameters
    x = torch.randn(1, 6, 10, 8, dtype=F64)
    y = m(x)
    assert y.dtype == F64
    y_ref = _build(name, 8, (6, 10)).double()
    y_ref.load_state_dict({k: v.double() for k, v in m.state_dict().items()})
    torch.testing.assert_close(y, y_ref(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", SPECTRAL)
@pytest.mark.parametrize("module_dtype", [torch.float32, torch.bfloat16], ids=["f32-module", "bf16-module"])
@pytest.mark.parametrize("grid", [(8, 8), (7, 9)], ids=["8x8", "7x9"])
def test_bfloat16_runs_fft_in_float32_and_returns_bfloat16(name, module_dtype, grid, monkeypatch):
    torch.manual_seed(0)
    m = _build(name, 8, grid)
    ref = _build(name, 8, grid)
    ref.load_state_dict(m.state_dict())
    m = m.to(module_dtype)
    seen = []
    real_rfft2, real_irfft2 = torch.fft.rfft2, torch.fft.irfft2

    def rfft2(t, *a, **k):
        seen.append(("rfft2", t.dtype))
        return real_rfft2(t, *a, **k)

    def irfft2(t, *a, **k):
        seen.append(("irfft2", t.dtype))
        return real_irfft2(t, *a, **k)

    monkeypatch.setattr(torch.fft, "rfft2", rfft2)
    monkeypatch.setattr(torch.fft, "irfft2", irfft2)
    x = torch.randn(2, *grid, 8).bfloat16()
    y = m(x)
    assert y.dtype == torch.bfloat16 and y.shape == x.shape
    assert seen == [("rfft2", torch.float32), ("irfft2", torch.complex64)]
    # the same computation in float32 (with the module's possibly rounded weights), rounded once at the end
    ref.load_state_dict({k: v.float() for k, v in m.state_dict().items()})
    monkeypatch.undo()
    y32 = ref(x.float())
    if name == "afno":
        # AFNO rounds the spectral branch to bfloat16 and then adds the bfloat16 residual
        # (two roundings): equal to bfloat16 accuracy
        torch.testing.assert_close(y.float(), y32, rtol=2 ** -7, atol=2 ** -7)
    else:
        assert torch.equal(y, y32.bfloat16())


def test_gfn_interpolates_its_filter_to_other_grids():
    torch.manual_seed(0)
    m = GlobalFilter(4, grid=(8, 8))
    for grid in [(8, 8), (6, 10), (7, 9), (16, 16)]:
        assert m(torch.randn(1, *grid, 4)).shape == (1, *grid, 4)
    # on its own grid the filter is used as stored, not resampled
    torch.testing.assert_close(m.complex_weight(8, 8), torch.view_as_complex(m.weight))


# ----------------------------------------------------------------------------- attention
def _attention_reference(x: torch.Tensor, sd: dict, heads: int) -> torch.Tensor:
    """Definition 1 with explicit loops over heads and tokens, float64."""
    B, H, W, C = x.shape
    d = C // heads
    t = x.reshape(B, H * W, C).double()
    lin = lambda name: t @ sd[f"{name}.weight"].double().T + sd[f"{name}.bias"].double()  # noqa: E731
    q, k, v = lin("q"), lin("k"), lin("v")
    out = torch.zeros(B, H * W, C, dtype=F64)
    for b in range(B):
        for h in range(heads):
            sl = slice(h * d, (h + 1) * d)
            for i in range(H * W):
                s = torch.stack([q[b, i, sl] @ k[b, j, sl] for j in range(H * W)]) / math.sqrt(d)
                kappa = torch.exp(s - s.max())
                kappa = kappa / kappa.sum()
                out[b, i, sl] = (kappa[:, None] * v[b, :, sl]).sum(0)
    y = out @ sd["out.weight"].double().T + sd["out.bias"].double()
    return y.reshape(B, H, W, C)


@pytest.mark.parametrize("grid", [(3, 4), (5, 3)])
def test_attention_equals_kernel_attention_and_definition_1(grid):
    torch.manual_seed(0)
    sa = SelfAttention(8, num_heads=2)
    ka = KernelAttention(8, num_heads=2)
    ka.load_state_dict(sa.state_dict())
    x = torch.randn(2, *grid, 8)
    y_sa, y_ka = sa(x), ka(x)
    torch.testing.assert_close(y_sa, y_ka, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y_ka.double(), _attention_reference(x, sa.state_dict(), 2), rtol=1e-5, atol=1e-5)


def test_attention_kernel_rows_sum_to_one_and_match_softmax():
    torch.manual_seed(1)
    ka = KernelAttention(8, num_heads=4).double()
    x = torch.randn(2, 4, 5, 8, dtype=F64)
    kappa = ka.kernel(x)
    assert kappa.shape == (2, 4, 20, 20)
    assert (kappa >= 0).all()
    torch.testing.assert_close(kappa.sum(-1), torch.ones(2, 4, 20, dtype=F64), rtol=0, atol=1e-12)
    # κ(x_i, x_j) for one head and one (i, j), from the weights
    t = x.reshape(2, 20, 8)
    q = t @ ka.q.weight.T + ka.q.bias
    k = t @ ka.k.weight.T + ka.k.bias
    h, i, j = 1, 3, 17
    sl = slice(2 * h, 2 * h + 2)
    s = (q[0, i, sl] * k[0, :, sl]).sum(-1) / math.sqrt(2)
    torch.testing.assert_close(kappa[0, h, i, j], torch.exp(s[j]) / torch.exp(s).sum())


def test_attention_is_permutation_equivariant_over_tokens():
    # no position information inside the mixer: permuting tokens permutes outputs
    torch.manual_seed(0)
    sa = SelfAttention(8, num_heads=2).double()
    x = torch.randn(1, 4, 6, 8, dtype=F64)
    perm = torch.randperm(24)
    y = sa(x).reshape(1, 24, 8)
    yp = sa(x.reshape(1, 24, 8)[:, perm].reshape(1, 4, 6, 8)).reshape(1, 24, 8)
    torch.testing.assert_close(yp, y[:, perm])


# ----------------------------------------------------------------------------- FFT convolution
def _circular_conv_direct(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Depthwise circular convolution y[i, j, c] = Σ_{a, b} g[a, b, c] x[(i-a) mod H, (j-b) mod W, c]."""
    y = torch.zeros_like(x)
    for a in range(g.shape[0]):
        for b in range(g.shape[1]):
            y = y + g[a, b] * torch.roll(x, shifts=(a, b), dims=(1, 2))
    return y


@pytest.mark.parametrize("grid", [(8, 8), (6, 7), (5, 8), (9, 5)])
def test_fft_convolution_equals_direct_circular_convolution(grid):
    torch.manual_seed(0)
    H, W = grid
    C = 3
    g_small = torch.randn(3, 2, C, dtype=F64)          # spatial support 3 x 2 per channel
    g = torch.zeros(H, W, C, dtype=F64)
    g[:3, :2] = g_small
    x = torch.randn(2, H, W, C, dtype=F64)
    y_direct = _circular_conv_direct(x, g_small)
    # convolution theorem: with ortho FFTs on x, the filter is the *unnormalised* DFT of g
    G = torch.fft.rfft2(g, dim=(0, 1))
    m = GlobalFilter(C, grid=grid).double()
    with torch.no_grad():
        m.weight.copy_(torch.view_as_real(G))
    torch.testing.assert_close(m(x), y_direct, rtol=1e-10, atol=1e-10)
    # the same with plain rfft2 products (unnormalised forward and inverse)
    y_fft = torch.fft.irfft2(torch.fft.rfft2(x, dim=(1, 2)) * G, s=(H, W), dim=(1, 2))
    torch.testing.assert_close(y_fft, y_direct, rtol=1e-10, atol=1e-10)
    # a wrong (non-circular, zero-padded) convolution differs: the test can tell them apart
    y_lin = torch.zeros_like(x)
    for a in range(3):
        for b in range(2):
            y_lin[:, a:, b:] += g_small[a, b] * x[:, : H - a, : W - b]
    assert (y_lin - y_direct).abs().max() > 1e-3


# ----------------------------------------------------------------------------- GFN = diagonal FNO
def _fno_from_gfn(gfn: GlobalFilter) -> SpectralConv2d:
    """An FNO on the whole grid whose C x C weight at every mode is diag(GFN filter)."""
    H, W = gfn.grid
    C = gfn.dim
    m_h, m_w = H // 2, W // 2
    fno = SpectralConv2d(C, modes=(m_h, m_w)).to(gfn.weight.dtype)
    K = gfn.complex_weight()                                  # [H, W//2+1, C]
    w = torch.zeros(2 * m_h + 1, m_w + 1, C, C, dtype=K.dtype)
    for i, k in enumerate(range(-m_h, m_h + 1)):
        # even H: k = -H/2 and k = +H/2 are the same grid row (Nyquist); both slots get the
        # same diagonal, so the result does not depend on which slot the layer reads
        w[i] = torch.diag_embed(K[k % H])
    with torch.no_grad():
        fno.weight.copy_(torch.view_as_real(w))
    return fno


@pytest.mark.parametrize("grid", [(8, 6), (8, 8), (7, 9), (6, 11)])
def test_gfn_equals_fno_with_diagonal_weights(grid):
    torch.manual_seed(0)
    gfn = GlobalFilter(4, grid=grid).double()
    _rand_params_(gfn, 1.0)
    fno = _fno_from_gfn(gfn)
    x = torch.randn(2, *grid, 4, dtype=F64)
    torch.testing.assert_close(fno(x), gfn(x), rtol=1e-10, atol=1e-10)
    # and a non-diagonal FNO weight is not a GFN: the equivalence is not vacuous
    with torch.no_grad():
        fno.weight[..., 0, 1, :] += 0.5
    assert (fno(x) - gfn(x)).abs().max() > 1e-3


def test_fno_nyquist_row_uses_the_first_of_two_aliased_slots():
    # On an even grid with m_h = H/2, the signed rows -H/2 and +H/2 are one grid row.
    # SpectralConv2d documents that the first slot (k = -H/2, index 0) acts on it and the
    # other (k = +H/2, index 2*m_h) is unused.
    torch.manual_seed(0)
    fno = SpectralConv2d(2, modes=(4, 2)).double()
    x = torch.randn(1, 8, 6, 2, dtype=F64)
    fno(x).pow(2).sum().backward()
    g = fno.weight.grad
    assert g[0].abs().sum() > 0          # k = -4 (the Nyquist row)
    assert g[8].abs().sum() == 0         # k = +4 (aliased duplicate, ignored)
    assert (g[1:8].abs().sum(dim=(1, 2, 3, 4)) > 0).all()


# ----------------------------------------------------------------------------- AFNO reference
def _afno_reference(x: torch.Tensor, m: AFNO, mask: torch.Tensor | None = None) -> torch.Tensor:
    """AFNO written from its definition (chapter "AFNO, step by step") in complex float64:
    rfft2 (ortho) -> per-mode complex block MLP (ReLU on real and imaginary parts separately) -> softshrink on real and
    imaginary parts -> zero outside ``mask`` -> irfft2(s=(H, W)) -> + x."""
    B, H, W, C = x.shape
    k, b = m.num_blocks, m.block_size
    cplx = lambda p: torch.complex(p[0].double(), p[1].double())  # noqa: E731
    W1, B1, W2, B2 = cplx(m.w1), cplx(m.b1), cplx(m.w2), cplx(m.b2)
    if not m.use_bias:
        B1, B2 = torch.zeros_like(B1), torch.zeros_like(B2)
    X = torch.fft.rfft2(x.double(), dim=(1, 2), norm="ortho").reshape(B, H, W // 2 + 1, k, b)
    h = torch.einsum("...kb,kbo->...ko", X, W1) + B1
    if m.activation == "relu":
        h = torch.complex(torch.relu(h.real), torch.relu(h.imag))
    o = torch.einsum("...kh,kho->...ko", h, W2) + B2
    lam = m.sparsity_threshold
    shrink = lambda t: torch.sign(t) * torch.clamp(t.abs() - lam, min=0)  # noqa: E731
    o = torch.complex(shrink(o.real), shrink(o.imag)).reshape(B, H, W // 2 + 1, C)
    if mask is not None:
        o = o * mask[None, :, :, None]
    y = torch.fft.irfft2(o, s=(H, W), dim=(1, 2), norm="ortho")
    return y + x if m.residual else y


@pytest.mark.parametrize("grid", [(9, 15), (8, 8), (6, 11), (15, 9)])
def test_afno_keep_fraction_one_touches_every_mode(grid):
    torch.manual_seed(0)
    H, W = grid
    m = AFNO(8, num_blocks=2, hidden_factor=2, sparsity_threshold=0.05, keep_fraction=1.0).double()
    _rand_params_(m, 0.3)
    x = torch.randn(2, H, W, 8, dtype=F64)
    y = m(x)
    torch.testing.assert_close(y, _afno_reference(x, m), rtol=1e-10, atol=1e-10)
    # every mode carries output: with biases, MLP(X_k) != 0 at each (k_H, k_W)
    Y = torch.fft.rfft2(y - x, dim=(1, 2), norm="ortho")
    assert (Y.abs().amax(dim=(0, 3)) > 1e-6).all()
    # the threshold really acted (some coefficients shrunk to exactly zero in the reference)
    X = torch.fft.rfft2(x, dim=(1, 2), norm="ortho").reshape(2, H, W // 2 + 1, 2, 4)
    o_r, _ = m.block_mlp(X.real, X.imag)
    assert (o_r.abs() <= 0.05).any() and (o_r.abs() > 0.05).any()
    # dropping one mode changes the answer: the comparison can detect an untouched mode
    mask = torch.ones(H, W // 2 + 1, dtype=torch.bool)
    mask[H // 2, W // 2] = False
    assert (y - _afno_reference(x, m, mask)).abs().max() > 1e-6


@pytest.mark.parametrize("grid,frac", [((16, 16), 0.25), ((9, 15), 0.5), ((12, 7), 0.6), ((10, 10), 0.75)])
def test_afno_keep_fraction_below_one_is_zero_outside_kept_mode_mask(grid, frac):
    torch.manual_seed(0)
    H, W = grid
    m = AFNO(8, num_blocks=4, sparsity_threshold=0.01, keep_fraction=frac).double()
    _rand_params_(m, 0.3)
    x = torch.randn(2, H, W, 8, dtype=F64)
    y = m(x)
    mask = kept_mode_mask(H, W, frac)
    assert 0 < mask.sum() < mask.numel()
    Y = torch.fft.rfft2(y - x, dim=(1, 2), norm="ortho").abs().amax(dim=(0, 3))
    assert Y[~mask].max() < 1e-12                         # nothing outside the kept modes
    assert (Y[mask] > 1e-6).all()                         # every kept mode is used
    torch.testing.assert_close(y, _afno_reference(x, m, mask), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("grid", [(8, 8), (7, 10)])
@pytest.mark.parametrize("hidden_factor", [1, 2])
def test_linear_afno_equals_fno_with_one_shared_weight(grid, hidden_factor):
    torch.manual_seed(0)
    H, W = grid
    C = 6
    afno = AFNO(C, num_blocks=1, hidden_factor=hidden_factor, sparsity_threshold=0.0,
                bias=False, activation=None, residual=True).double()
    _rand_params_(afno, 0.3)
    # x @ W1 @ W2 with W = (w1r + i w1i)(w2r + i w2i): one complex C x C matrix for all modes
    Wc = torch.complex(afno.w1[0, 0], afno.w1[1, 0]) @ torch.complex(afno.w2[0, 0], afno.w2[1, 0])
    m_h, m_w = H // 2, W // 2                                  # every mode of the grid
    fno = SpectralConv2d(C, modes=(m_h, m_w)).double()
    with torch.no_grad():
        fno.weight.copy_(torch.view_as_real(Wc.detach().expand(2 * m_h + 1, m_w + 1, C, C)))
    x = torch.randn(2, H, W, C, dtype=F64)
    torch.testing.assert_close(afno(x), x + fno(x), rtol=1e-10, atol=1e-10)
    # without the residual the spectral branch alone is the FNO
    afno.residual = False
    torch.testing.assert_close(afno(x), fno(x), rtol=1e-10, atol=1e-10)
    # the order matters (x @ W, not W @ x): the transposed weight gives another operator
    with torch.no_grad():
        fno.weight.copy_(torch.view_as_real(Wc.detach().T.expand(2 * m_h + 1, m_w + 1, C, C)))
    assert (afno(x) - fno(x)).abs().max() > 1e-3


def test_afno_block_diagonal_structure():
    # with k blocks, output channels of block j depend only on input channels of block j
    torch.manual_seed(0)
    m = AFNO(8, num_blocks=4, residual=False, sparsity_threshold=0.0).double()
    _rand_params_(m, 0.3)
    x = torch.randn(1, 6, 6, 8, dtype=F64, requires_grad=True)
    y = m(x)
    jac = torch.stack([torch.autograd.grad(y[..., c].sum(), x, retain_graph=True)[0].abs().sum(dim=(0, 1, 2))
                       for c in range(8)])                   # [out_channel, in_channel]
    block = torch.arange(8) // 2
    same = block[:, None] == block[None, :]
    assert (jac[~same] == 0).all() and (jac[same] > 0).all()


def test_afno_default_hyper_parameters_and_weight_layout():
    m = AFNO(64)
    assert (m.num_blocks, m.hidden_factor, m.sparsity_threshold, m.keep_fraction) == (8, 1, 0.01, 1.0)
    assert m.w1.shape == (2, 8, 8, 8) and m.b1.shape == (2, 8, 8)
    assert m.w2.shape == (2, 8, 8, 8) and m.b2.shape == (2, 8, 8)
    m2 = AFNO(64, num_blocks=4, hidden_factor=3)
    assert m2.w1.shape == (2, 4, 16, 48) and m2.b1.shape == (2, 4, 48)
    assert m2.w2.shape == (2, 4, 48, 16) and m2.b2.shape == (2, 4, 16)
    assert 0.015 < float(m2.w1.detach().std()) < 0.025                   # 0.02 * randn


def test_registry_builds_every_mixer_by_name():
    for name in MIXER_NAMES:
        m = _build(name, 8, (6, 6))
        assert isinstance(m, afno_lite.TokenMixer) and isinstance(m, afno_lite.MIXERS[name])


# ----------------------------------------------------------------------------- resolution
# A band-limited field f(s) = Σ_{|k| <= 3} a_k e^{2πi k·s} sampled on an N x N grid has
# ortho-normalised rfft2 coefficients X_k = N a_k (N = sqrt(H W)) for its own modes and 0
# elsewhere. So, when the grid doubles:
# * FNO (linear): Y_k = W_k X_k = N W_k a_k and the ortho irfft2 divides by N again, so the
#   output is the same function of s: out_64[::2, ::2] == out_32 up to round-off.
# * AFNO without biases: the block MLP is positively homogeneous (ReLU(N t) = N ReLU(t)), and
#   softshrink(N z, λ) = N softshrink(z, λ/N). The output is the same function of s only if
#   λ grows with N (λ_64 = 2 λ_32). The residual x is already the same function of s.
# * AFNO with a fixed λ > 0 shrinks relatively less on the finer grid, and the biases put
#   MLP(0) = W2 ReLU(b1) + b2 on *every* kept mode, a grid-dependent pattern: both are genuine
#   resolution dependences of AFNO's definition, asserted below rather than hidden.
def _band_limited(N: int, C: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    s = torch.arange(N, dtype=F64) / N
    sh, sw = s[:, None], s[None, :]
    x = torch.zeros(1, N, N, C, dtype=F64)
    for kh in range(-3, 4):
        for kw in range(0, 4):
            amp = torch.randn(C, generator=g, dtype=F64)
            phase = 2 * math.pi * torch.rand(C, generator=g, dtype=F64)
            x[0] += amp * torch.cos(2 * math.pi * (kh * sh + kw * sw)[..., None] + phase)
    return x


def test_band_limited_input_is_the_same_function_on_both_grids():
    x32, x64 = _band_limited(32, 4), _band_limited(64, 4)
    torch.testing.assert_close(x64[:, ::2, ::2], x32, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype,tol", [(F64, 1e-10), (torch.float32, 1e-5)], ids=["f64", "f32"])
def test_fno_same_weights_consistent_across_resolutions(dtype, tol):
    torch.manual_seed(0)
    fno = SpectralConv2d(4, modes=(6, 6)).to(dtype)
    x32, x64 = _band_limited(32, 4).to(dtype), _band_limited(64, 4).to(dtype)
    y32, y64 = fno(x32), fno(x64)
    assert y32.shape == (1, 32, 32, 4) and y64.shape == (1, 64, 64, 4)
    assert y32.abs().max() > 0.1
    torch.testing.assert_close(y64[:, ::2, ::2], y32, rtol=tol, atol=tol)


def test_afno_same_weights_consistent_across_resolutions_when_lambda_scales_with_grid():
    torch.manual_seed(0)
    lam32 = 0.3
    m = AFNO(8, num_blocks=2, hidden_factor=2, sparsity_threshold=lam32, bias=False, keep_fraction=0.5).double()
    _rand_params_(m, 0.5)
    x32, x64 = _band_limited(32, 8), _band_limited(64, 8)
    y32 = m(x32)
    # the threshold is active on the coarse grid: some coefficients are shrunk to zero, some pass
    X = torch.fft.rfft2(x32, dim=(1, 2), norm="ortho").reshape(1, 32, 17, 2, 4)[:, [0, 1, 2, 3, -3, -2, -1], :4]
    o_r, o_i = m.block_mlp(X.real, X.imag)
    o = torch.cat([o_r.flatten(), o_i.flatten()]).abs()
    assert (o <= lam32).any() and (o > lam32).any()
    m.sparsity_threshold = lam32 * 64 / 32                  # λ ∝ sqrt(H W) under the ortho norm
    y64 = m(x64)
    torch.testing.assert_close(y64[:, ::2, ::2], y32, rtol=1e-10, atol=1e-10)
    # with λ = 0 no scaling is needed
    m.sparsity_threshold = 0.0
    torch.testing.assert_close(m(x64)[:, ::2, ::2], m(x32), rtol=1e-10, atol=1e-10)


def test_afno_fixed_lambda_or_biases_make_outputs_resolution_dependent():
    torch.manual_seed(0)
    m = AFNO(8, num_blocks=2, hidden_factor=2, sparsity_threshold=0.3, bias=False).double()
    _rand_params_(m, 0.5)
    x32, x64 = _band_limited(32, 8), _band_limited(64, 8)
    # the same λ on both grids: the finer grid is shrunk relatively less
    gap_lambda = (m(x64)[:, ::2, ::2] - m(x32)).abs().max()
    assert gap_lambda > 1e-2
    # biases: MLP(0) != 0 fills every kept mode, also those the input does not have
    mb = AFNO(8, num_blocks=2, hidden_factor=2, sparsity_threshold=0.0, bias=True).double()
    _rand_params_(mb, 0.5)
    gap_bias = (mb(x64)[:, ::2, ::2] - mb(x32)).abs().max()
    assert gap_bias > 1e-2


# ----------------------------------------------------------------------------- AFNO core
@pytest.mark.parametrize("H", range(1, 13))
def test_kept_rows_are_the_signed_rows_and_the_negative_alias_wins(H):
    from afno_lite.spectral import frequency_grid, kept_rows

    kh = frequency_grid(H, 4)[0].flatten()
    for m_h in range(H // 2 + 1):
        slots, rows = kept_rows(H, m_h)
        assert rows == sorted(rows) and len(set(rows)) == len(rows) == min(2 * m_h + 1, H)
        assert set(rows) == {r for r in range(H) if abs(int(kh[r])) <= m_h or r == (-m_h) % H}
        for s, r in zip(slots, rows, strict=True):
            assert (s - m_h) % H == r                       # slot s holds k_H = s - m_h
            assert s == min(i for i in range(2 * m_h + 1) if (i - m_h) % H == r)


@pytest.mark.parametrize("grid,frac", [((8, 8), 1.0), ((9, 12), 0.5), ((16, 10), 0.25)])
def test_afno_spectrum_before_and_after_shrinkage_is_what_forward_inverts(grid, frac):
    from afno_lite.spectral import soft_threshold

    torch.manual_seed(0)
    m = _rand_params_(AFNO(8, num_blocks=2, sparsity_threshold=0.3, keep_fraction=frac), 0.5).double()
    x = torch.randn(2, *grid, 8, dtype=F64)
    s = m.spectrum(x)
    torch.testing.assert_close(s.after, soft_threshold(s.before, 0.3))
    assert 0 < int((s.after == 0).sum()) < s.after.numel()         # shrinkage is active
    H, W = grid
    Y = torch.zeros(2, H, W // 2 + 1, 2, 4, dtype=s.after.dtype)
    Y[:, s.rows, : s.cols] = s.after
    Y = afno_lite.spectral.hermitian_project(Y.reshape(2, H, W // 2 + 1, 8), W)
    y = torch.fft.irfft2(Y, s=(H, W), dim=(1, 2), norm="ortho")
    torch.testing.assert_close(m(x), y + x)


def test_bias_false_is_the_bias_model_with_frozen_zero_biases():
    torch.manual_seed(0)
    a = _rand_params_(AFNO(8, num_blocks=2, bias=False, sparsity_threshold=0.0), 0.5)
    b = AFNO(8, num_blocks=2, bias=True, sparsity_threshold=0.0)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 6, 6, 8)
    assert float(a.b1.abs().max()) == 0 and not a.b1.requires_grad and not a.b2.requires_grad
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


# ----------------------------------------------------------------------------- torch.compile
@pytest.mark.parametrize("name", MIXER_NAMES)
def test_every_mixer_traces_under_torch_compile_to_its_eager_outputs_and_gradients(name):
    """dynamo + AOT autograd (``backend="aot_eager"``: tracing, no code generation) must give
    the eager layer. Under torch 2.11 the traced ``rfft2`` of a channels-last input assumed a
    contiguous result that the CPU FFT does not return, and compiling FNO and AFNO failed with
    "view size is not compatible" until ``_rfft2`` copies its result while compiling."""
    torch.manual_seed(0)
    m = _rand_params_(_build(name, 16, (8, 6)), 0.3)
    x, g = torch.randn(2, 8, 6, 16), torch.randn(2, 8, 6, 16)
    params = [p for p in m.parameters() if p.requires_grad]

    def outputs(f):
        xi = x.clone().requires_grad_(True)
        y = f(xi)
        return [y.detach(), *torch.autograd.grad(y, [xi, *params], g)]

    for got, want in zip(outputs(torch.compile(m, backend="aot_eager", dynamic=False)), outputs(m), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- autocast
@pytest.mark.parametrize("name", ["attention", "kernel_attention"])
def test_attention_takes_the_autocast_dtype_under_autocast(name):
    """Under ``torch.autocast`` a layer's bfloat16 output is a valid input for the next layer
    (``nn.Linear`` casts both operands); attention refused it ("x has dtype torch.bfloat16 but
    the parameters ... are torch.float32"), so two attention mixers could not be stacked. Outside
    autocast, and for float64 (which autocast never casts), the dtype check stays."""
    torch.manual_seed(0)
    a, b = _build(name, 8, (3, 4)), _build(name, 8, (3, 4))
    x = torch.randn(2, 3, 4, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = a(x)
        assert h.dtype == torch.bfloat16
        y = b(h)
    torch.testing.assert_close(y.float(), b(a(x)), atol=0.05, rtol=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(afno_lite.MixerInputError, match="float64"):
        a(x.double())
    with pytest.raises(afno_lite.MixerInputError, match="x has dtype torch.bfloat16"):
        a(x.bfloat16())
