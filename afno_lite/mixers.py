"""Token mixers with one interface: ``forward(x[B, H, W, C]) -> [B, H, W, C]``.

* :class:`SelfAttention`, :class:`KernelAttention` -- chapter "Self-attention as a
  kernel integral" (the paper's Definition 1 is self-attention; it rewrites it as a
  kernel sum, then a kernel integral).
* :class:`SpectralConv2d` -- chapter "From kernel integrals to Fourier Neural Operators".
* :class:`GlobalFilter` -- chapter "Global filters (GFN) as the diagonal special case".
* :class:`AFNO` -- chapter "AFNO, step by step" (the readable reference; the fast
  path lives in :mod:`afno_lite.fast` and must agree with it).

Build any of them by name with :func:`afno_lite.mixer` (the records of
:mod:`afno_lite.registry`).

"modes" always means Fourier modes here. :class:`SpectralConv2d` takes ``modes=(m_h, m_w)``:
signed rows ``|k_H| <= m_h`` and rfft columns ``0 <= k_W <= m_w``. Li et al.'s
``SpectralConv2d(in, out, modes1, modes2)`` keeps rows ``:modes1`` and ``-modes1:`` and
columns ``:modes2``, i.e. ``-modes1 <= k_H <= modes1 - 1`` and ``k_W <= modes2 - 1``: their
``modes2`` is our ``m_w + 1``; their ``modes1`` keeps one row more on the negative side than
``m_h = modes1 - 1`` (ours is symmetric in ±k_H). neuraloperator's ``n_modes=(n_1, n_2)``
counts modes on the full axes: ``n_1 = 2 m_h + 1`` rows centred on ``k_H = 0`` and
``n_2 // 2 + 1 = m_w + 1`` rfft columns. AFNO's ``keep_fraction`` sets ``(m_h, m_w)`` from
the grid (:func:`afno_lite.spectral.kept_mode_cutoffs`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    MixerConfigError,
    MixerInputError,
    check_bool,
    check_divides,
    check_fraction,
    check_grid,
    check_modes,
    check_nonnegative,
    check_positive_int,
    check_same_device,
    check_same_dtype,
    check_tokens,
)
from .spectral import hermitian_project, kept_mode_cutoffs, kept_rows

__all__ = ["TokenMixer", "NoMixing", "SelfAttention", "KernelAttention", "SpectralConv2d", "GlobalFilter",
           "AFNO", "AFNOSpectrum"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


class TokenMixer(nn.Module):
    """Base class: stores ``dim`` and validates inputs (``check_finite`` may be turned off
    for speed)."""

    def __init__(self, dim: int, check_finite: bool = True):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.check_finite = check_bool(check_finite, "check_finite")

    def _check(self, x: torch.Tensor) -> None:
        check_tokens(x, self.dim, "x", self.check_finite)
        check_same_device(x, self, "x", type(self).__name__)


class NoMixing(TokenMixer):
    """The baseline without token mixing: the identity, ``forward(x) = x`` (no parameters).
    In a block ``t + mixer(norm1(t))`` every token then only sees itself; registered as
    ``"identity"`` in :mod:`afno_lite.registry` (a record with ``mixes_tokens=False``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return x


# --------------------------------------------------------------------------- attention
class SelfAttention(TokenMixer):
    """Multi-head self-attention over all ``H*W`` tokens (``F.scaled_dot_product_attention``).

    ``num_heads`` defaults to 8 and must divide ``dim`` (head width ``dim // num_heads``).
    The four projections are ``nn.Linear`` layers with PyTorch's default initialisation.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, check_finite: bool = True):
        super().__init__(dim, check_finite)
        self.num_heads = check_divides(num_heads, dim, "num_heads")
        self.head_dim = dim // num_heads
        qkv_bias = check_bool(qkv_bias, "qkv_bias")
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.out = nn.Linear(dim, dim)

    def _check(self, x: torch.Tensor) -> None:
        super()._check(x)
        # the projections multiply x by their weights directly: dtypes must agree (unless autocast casts both)
        check_same_dtype(x, self.q.weight.dtype, "x", type(self).__name__)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:  # [B, N, C] -> [B, h, N, d]
        B, N, _ = t.shape
        return t.view(B, N, self.num_heads, self.head_dim).transpose(1, 2)

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values ``[B, heads, N, head_dim]`` for tokens
        ``x[B, H, W, C]``."""
        t = x.reshape(x.shape[0], -1, self.dim)
        return self._heads(self.q(t)), self._heads(self.k(t)), self._heads(self.v(t))

    def _merge(self, o: torch.Tensor, shape) -> torch.Tensor:
        B, H, W, C = shape
        return self.out(o.transpose(1, 2).reshape(B, H * W, C)).view(B, H, W, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        q, k, v = self.qkv(x)
        return self._merge(F.scaled_dot_product_attention(q, k, v), x.shape)


class KernelAttention(SelfAttention):
    """Self-attention (the paper's Definition 1) written as an explicit kernel sum,
    ``y_i = Σ_j κ(x_i, x_j) v_j`` with
    ``κ(x_i, x_j) = exp(q_i·k_j/√d) / Σ_l exp(q_i·k_l/√d)``, computed explicitly.
    Same parameters as :class:`SelfAttention`, so one can be loaded into the other."""

    def _kernel(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        scores = torch.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(self.head_dim)
        return torch.softmax(scores, dim=-1)

    def kernel(self, x: torch.Tensor) -> torch.Tensor:
        """The kernel matrix ``κ[b, head, i, j]`` (each row sums to 1)."""
        self._check(x)
        q, k, _ = self.qkv(x)
        return self._kernel(q, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        q, k, v = self.qkv(x)
        kappa = self._kernel(q, k)
        o = torch.einsum("bhij,bhjd->bhid", kappa, v)  # Σ_j κ(x_i, x_j) v_j
        return self._merge(o, x.shape)


# --------------------------------------------------------------------------- spectral helpers
def _rfft2(x: torch.Tensor) -> torch.Tensor:
    X = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")
    if torch.compiler.is_compiling():
        # torch 2.11's traced rfft2 assumes a contiguous result while the CPU FFT returns
        # channels-first strides, so later views fail at run time ("view size is not
        # compatible"); a real copy makes both agree. Eager code never pays for it.
        X = X.clone(memory_format=torch.contiguous_format)
    return X


def _irfft2(X: torch.Tensor, H: int, W: int) -> torch.Tensor:
    # The self-conjugate columns are made Hermitian explicitly, so the inverse does not
    # depend on what the FFT library does with a non-Hermitian half-spectrum.
    X = hermitian_project(X, W, dims=(1, 2))
    return torch.fft.irfft2(X, s=(H, W), dim=(1, 2), norm="ortho")


def _to_fft_dtype(x: torch.Tensor) -> torch.Tensor:
    # CPU FFTs reject float16/bfloat16 and cuFFT half only supports powers of two:
    # compute spectra in float32 (float64 stays float64, for gradcheck).
    return x.float() if x.dtype in _LOW_PRECISION else x


def _as_complex(w: torch.Tensor, real_dtype: torch.dtype) -> torch.Tensor:
    """``[..., 2]`` real/imaginary weight -> complex tensor in the FFT's precision.
    (``view_as_complex`` rejects bfloat16, so a module converted with ``.bfloat16()``
    still computes its spectral product in float32.)"""
    return torch.view_as_complex(w.to(real_dtype).contiguous())


# --------------------------------------------------------------------------- FNO
class SpectralConv2d(TokenMixer):
    """Discrete Fourier Neural Operator layer: a dense complex ``C x C`` matrix per
    kept mode, ``y = IRFFT2(W_k · RFFT2(x)_k)``.

    ``modes=(m_h, m_w)`` keeps ``|k_H| <= m_h`` (symmetric in ±k_H) and ``0 <= k_W <= m_w``
    (see the module docstring for Li et al.'s ``modes1, modes2`` and neuraloperator's ``n_modes``).
    The weight has shape ``[2*m_h+1, m_w+1, C, C, 2]`` (last axis: real, imaginary),
    indexed by the signed row frequency ``k_H + m_h``; it acts as ``X @ W``.
    The same weights run on any grid with ``H >= 2*m_h`` and ``W >= 2*m_w``.

    Initial weights: real and imaginary parts drawn independently from ``N(0, (1/C)^2)``.
    Li et al.'s code draws them uniformly from ``[0, 1)`` and scales them by
    ``1/(C_in*C_out)``; ours are zero-mean, with the larger spread ``1/C``.
    """

    def __init__(self, dim: int, modes: tuple[int, int] = (8, 8), check_finite: bool = True):
        super().__init__(dim, check_finite)
        self.modes = check_modes(modes)
        m_h, m_w = self.modes
        scale = 1.0 / dim
        self.weight = nn.Parameter(scale * torch.randn(2 * m_h + 1, m_w + 1, dim, dim, 2))

    def _check_grid(self, H: int, W: int) -> None:
        m_h, m_w = self.modes
        if m_h > H // 2 or m_w > W // 2:
            raise MixerInputError(
                f"modes={self.modes} is larger than the input grid {H}x{W} allows "
                f"(at most ({H // 2}, {W // 2})); use a larger grid or fewer modes"
            )

    def complex_weight(self) -> torch.Tensor:
        """The weight as a complex tensor ``[2*m_h+1, m_w+1, C, C]``."""
        w = self.weight
        return _as_complex(w, torch.float32 if w.dtype in _LOW_PRECISION else w.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        B, H, W, C = x.shape
        self._check_grid(H, W)
        dtype = x.dtype
        X = _rfft2(_to_fft_dtype(x))
        m_h, m_w = self.modes
        pos, rows = kept_rows(H, m_h)
        Xk = X[:, rows, : m_w + 1]                                   # [B, R, M, C]
        Wk = _as_complex(self.weight[pos], X.real.dtype)             # [R, M, C, C]
        Yk = torch.einsum("brmi,rmio->brmo", Xk, Wk)
        Y = X.new_zeros(X.shape)
        Y[:, rows, : m_w + 1] = Yk
        return _irfft2(Y, H, W).to(dtype)


# --------------------------------------------------------------------------- GFN
class GlobalFilter(TokenMixer):
    """Global Filter Network layer: one complex multiplier per mode and channel
    (a diagonal FNO), ``y = IRFFT2(K ⊙ RFFT2(x))``.

    The filter has the fixed shape ``[H, W//2+1, C, 2]`` of ``grid=(H, W)``; on a grid whose
    half-plane ``[H, W//2+1]`` differs it is interpolated bilinearly (``align_corners=True``).
    GFNet resizes its filters the same way when fine-tuning at another resolution, but
    bicubically (``F.interpolate(..., mode="bicubic", align_corners=True)`` in its
    ``main_gfnet.py``).

    Initial filter: real and imaginary parts drawn independently from ``N(0, 0.02^2)``, as in
    GFNet's ``GlobalFilter`` (``torch.randn(h, w, dim, 2) * 0.02``). ``grid`` defaults to
    ``(16, 16)``.
    """

    def __init__(self, dim: int, grid: tuple[int, int] = (16, 16),
                 check_finite: bool = True):
        super().__init__(dim, check_finite)
        self.grid = check_grid(grid)
        H, W = self.grid
        self.weight = nn.Parameter(0.02 * torch.randn(H, W // 2 + 1, dim, 2))

    def complex_weight(self, H: int | None = None,
                       W: int | None = None) -> torch.Tensor:
        """The complex filter ``[H, W//2+1, C]``, interpolated when ``[H, W//2+1]`` differs
        from the half-plane of ``grid``."""
        H0, W0 = self.grid
        H, W = H or H0, W or W0
        w = self.weight
        if (H, W // 2 + 1) != (H0, W0 // 2 + 1):
            # GFNet-style resize: interpolate real/imag maps on the frequency grid
            t = w.permute(2, 3, 0, 1).reshape(1, -1, H0, W0 // 2 + 1)
            t = F.interpolate(t, size=(H, W // 2 + 1), mode="bilinear",
                              align_corners=True)
            w = t.reshape(self.dim, 2, H, W // 2 + 1).permute(2, 3, 0, 1)
        return _as_complex(w, torch.float32 if w.dtype in _LOW_PRECISION else w.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        B, H, W, C = x.shape
        dtype = x.dtype
        X = _rfft2(_to_fft_dtype(x))
        # float32/float64 even for a bfloat16 module
        X = X * self.complex_weight(H, W).to(X.dtype)
        return _irfft2(X, H, W).to(dtype)


# --------------------------------------------------------------------------- AFNO
class AFNO(TokenMixer):
    """Adaptive Fourier Neural Operator token mixer (Guibas et al., 2021), the readable
    reference implementation.

    ``bias = x; x = RFFT2(x); x = x.reshape(b, h, w//2+1, k, d/k); x = BlockMLP(x);
    x = x.reshape(b, h, w//2+1, d); x = SoftShrink(x); x = IRFFT2(x); return x + bias``

    Weights follow NVIDIA's reference layout: ``w1 [2, k, b, b*f]``, ``b1 [2, k, b*f]``,
    ``w2 [2, k, b*f, b]``, ``b2 [2, k, b]`` (index 0 real, 1 imaginary), acting as ``x @ W``.

    Parameters
    ----------
    dim: channels ``C``.
    num_blocks: ``k``, number of diagonal blocks (must divide ``dim``).
    hidden_factor: ``f``, hidden width of the block MLP is ``b*f`` with ``b = C/k``.
    sparsity_threshold: ``λ`` of the soft-thresholding (depends on the ``"ortho"`` FFT norm).
    keep_fraction: ``ρ``, mode truncation (the paper's hard thresholding): keep the modes with
        ``|k_H| <= ⌊ρ·⌊H/2⌋⌋`` and ``k_W <= ⌊ρ·⌊W/2⌋⌋`` (see
        :func:`afno_lite.spectral.kept_mode_mask`); 1.0 keeps all.
    bias: learn the MLP biases ``b1``, ``b2``; with ``bias=False`` they stay in the module
        (NVIDIA's layout) as zeros that never train (``load_state_dict`` refuses non-zero ones),
        and the forward pass is the same code.
    activation: ``"relu"`` (applied to real and imaginary parts separately) or ``None``.
    residual: add the input back (``x + bias`` in the pseudo-code).

    Initial ``w1, w2`` (and ``b1, b2`` with ``bias=True``): every entry drawn independently
    from ``N(0, 0.02^2)`` (NVIDIA's ``scale = 0.02``); :class:`afno_lite.fast.FastAFNO`
    inherits this.
    """

    def __init__(self, dim: int, num_blocks: int = 8, hidden_factor: int = 1,
                 sparsity_threshold: float = 0.01, keep_fraction: float = 1.0,
                 bias: bool = True, activation: str | None = "relu", residual: bool = True,
                 check_finite: bool = True):
        super().__init__(dim, check_finite)
        self.num_blocks = check_divides(num_blocks, dim, "num_blocks")
        self.hidden_factor = check_positive_int(hidden_factor, "hidden_factor")
        self.sparsity_threshold = check_nonnegative(sparsity_threshold, "sparsity_threshold")
        self.keep_fraction = check_fraction(keep_fraction)
        if activation not in ("relu", None):
            raise MixerConfigError(f"activation must be 'relu' or None, got {activation!r}")
        self.activation = activation
        self.use_bias = check_bool(bias, "bias")
        self.residual = check_bool(residual, "residual")
        k, b, h = self.num_blocks, dim // num_blocks, (dim // num_blocks) * self.hidden_factor
        self.block_size = b
        scale = 0.02
        self.w1 = nn.Parameter(scale * torch.randn(2, k, b, h))
        self.b1 = nn.Parameter(scale * torch.randn(2, k, h))
        self.w2 = nn.Parameter(scale * torch.randn(2, k, h, b))
        self.b2 = nn.Parameter(scale * torch.randn(2, k, b))
        if not self.use_bias:
            with torch.no_grad():
                self.b1.zero_()
                self.b2.zero_()
            self.b1.requires_grad_(False)
            self.b2.requires_grad_(False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # bias=False promises zero biases: refuse non-zero ones (from a layer built with bias=True)
        # rather than freeze them into another function, as afno_lite.compat does for NVIDIA weights
        if not self.use_bias:
            nonzero = nonzero_biases({k: state_dict.get(prefix + k) for k in ("b1", "b2")})
            if nonzero:
                raise MixerConfigError(
                    f"{type(self).__name__} was built with bias=False but the state dict's {nonzero} are non-zero; "
                    "build it with bias=True to load these weights"
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, num_blocks={self.num_blocks}, hidden_factor={self.hidden_factor}, "
                f"sparsity_threshold={self.sparsity_threshold}, keep_fraction={self.keep_fraction}")

    def _act(self, t: torch.Tensor) -> torch.Tensor:
        return F.relu(t) if self.activation == "relu" else t

    def block_mlp(self, xr: torch.Tensor,
                  xi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two-layer complex block MLP on real/imaginary parts ``[..., k, b]``.
        Computed in the dtype of ``xr`` (float32 after the FFT, or float64), whatever
        the dtype of the parameters."""
        dt = xr.dtype
        w1, b1, w2, b2 = (p.to(dt) for p in (self.w1, self.b1, self.w2, self.b2))
        mm = lambda t, w: torch.einsum("...bi,bio->...bo", t, w)  # noqa: E731
        # (the biases are frozen zeros when bias=False: the same code either way)
        o1r = mm(xr, w1[0]) - mm(xi, w1[1]) + b1[0]
        o1i = mm(xi, w1[0]) + mm(xr, w1[1]) + b1[1]
        o1r, o1i = self._act(o1r), self._act(o1i)
        o2r = mm(o1r, w2[0]) - mm(o1i, w2[1]) + b2[0]
        o2i = mm(o1i, w2[0]) + mm(o1r, w2[1]) + b2[1]
        return o2r, o2i

    def spectrum(self, x: torch.Tensor) -> AFNOSpectrum:
        """The spectrum of ``x`` at the kept modes, before and after soft-thresholding.

        This is the first half of :meth:`forward` (which calls it): ``rfft2``, the
        kept rows and columns, the block MLP, ``softshrink``. The sparsity diagnostics
        and the explorers read ``after`` (``before`` shows what shrinkage removed)."""
        self._check(x)
        x = _to_fft_dtype(x)
        B, H, W, C = x.shape
        X = _rfft2(x).reshape(B, H, W // 2 + 1, self.num_blocks, self.block_size)
        m_h, m_w = kept_mode_cutoffs(H, W, self.keep_fraction)
        _, rows = kept_rows(H, m_h)
        Xk = X[:, rows, : m_w + 1]
        o2r, o2i = self.block_mlp(Xk.real, Xk.imag)
        lam = self.sparsity_threshold
        after = torch.complex(F.softshrink(o2r, lam), F.softshrink(o2i, lam))
        return AFNOSpectrum(torch.complex(o2r, o2i), after, rows, m_w + 1, (H, W))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spectrum(x)                 # checks x
        (H, W), B, C = s.grid, x.shape[0], self.dim
        Y = s.after.new_zeros(B, H, W // 2 + 1, self.num_blocks, self.block_size)
        Y[:, s.rows, : s.cols] = s.after
        y = _irfft2(Y.reshape(B, H, W // 2 + 1, C), H, W).to(x.dtype)
        return y + x if self.residual else y


def nonzero_biases(tensors, prefix: str = "") -> list[str]:
    """``prefix + k`` for each ``k`` of ``"b1", "b2"`` whose tensor in ``tensors`` has a non-zero
    entry (absent, empty and ``meta`` tensors have none): the biases a ``bias=False`` layer must
    refuse to load (here, and in :func:`afno_lite.compat.load_nvidia_afno_layer`)."""
    return [prefix + k for k in ("b1", "b2") if isinstance(t := tensors.get(k), torch.Tensor)
            and t.numel() and t.device.type != "meta" and bool(t.detach().abs().max() > 0)]


class AFNOSpectrum(NamedTuple):
    """What :meth:`AFNO.spectrum` returns: block-MLP outputs ``[B, R, M, k, b]`` at the kept
    modes (``rows`` of the rfft half-plane, columns ``0..cols-1``) on a grid ``(H, W)``."""

    before: torch.Tensor     # complex, before soft-thresholding
    after: torch.Tensor      # complex, after soft-thresholding (what the inverse FFT receives)
    rows: list
    cols: int
    grid: tuple
