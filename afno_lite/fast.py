"""Fast AFNO: the same maths and parameters as :class:`afno_lite.mixers.AFNO`, laid out for speed.

Explained in chapter "Complexity and scaling" (``07_complexity_and_scaling``), which
measures it against the readable reference, attention and the bare FFT.

What changes with respect to the reference (and what does not)
---------------------------------------------------------------
* The parameters are the same tensors ``w1 [2, k, b, b*f]``, ``b1 [2, k, b*f]``,
  ``w2 [2, k, b*f, b]``, ``b2 [2, k, b]`` (NVIDIA's layout): :class:`FastAFNO` subclasses
  :class:`~afno_lite.mixers.AFNO` and only replaces ``forward``, so ``load_state_dict``
  works both ways and the outputs agree to float32 rounding.
* FFTs run on a contiguous channels-first copy ``[B, C, H, W]``: FFTs along strided
  (channels-last) axes cost more. In the shipped CPU benchmark
  (``notebooks/results/bench_scaling.json``: AMD EPYC, 2 threads, torch 2.13.0+cpu) the
  channels-last FFT floor took 1.7-2.4x the channels-first one at ``C = 256``, ``N >= 4096``,
  forward + backward (1.2-1.7x for the forward pass alone, ``C = 64, 256``, ``B = 1, 8``).
  The two layout changes (in and out) use a blocked 2-D transpose on CPU for float32/float64
  slices of at least 3,600 elements (see :func:`_transpose_2d`), in the forward and in the
  backward pass.
* Each complex block matrix ``W = W_r + i W_i`` (acting as ``x @ W``) is, on the real and
  imaginary parts stacked as ``[x_r, x_i]``, the real matrix ``[[W_r, W_i], [-W_i, W_r]]``:
  the four real products the reference computes. On the channels-first spectrum the complex
  numbers themselves are the operands, so each layer is ONE batched complex matmul
  (``baddbmm``, bias fused), batched over samples and blocks: no real/imaginary split, no
  ``einsum`` re-layout, no copies between the two layers.
* With ``keep_fraction < 1`` only the kept columns go through the FFT along ``H`` (a pruned
  2-D FFT: the dropped columns would be zeroed anyway) and the MLP only sees kept modes.
* ReLU acts on real and imaginary parts separately, softshrink too: both are applied to
  ``view_as_real`` of the complex activations, as in the reference.
* The inverse transform is split into ``ifft`` along ``H`` and ``irfft`` along ``W``, so that the
  projection of the self-conjugate columns (which every spectral layer here applies, see
  :func:`afno_lite.spectral.hermitian_project`) is one write of their real part
  (:func:`afno_lite.spectral.hermitian_project_after_ifft_`) instead of a copy of the spectrum.
  Both transforms have hand-written backward passes (:class:`_Rfft2`, :class:`_ProjectedIrfft2`,
  on the pruned path too): the adjoint of each is one transform the other way, where PyTorch's backward of ``rfft2``
  zero-pads the gradient to the full ``H x W`` spectrum, and autograd would record a copy for
  every step of the projection. Both are tested against autograd in float64; chapter 7 and
  ``python -m afno_lite.bench`` measure what they save.

Mixed precision (``torch.autocast``)
------------------------------------
Autocast does not touch complex tensors (there are no complex bf16 matmuls), so the complex
``baddbmm`` above would stay float32 under ``torch.autocast``. When autocast is enabled for the
input's device and the FFTs run in float32, :class:`FastAFNO` therefore runs the block MLP on
real tensors in the autocast dtype: the spectrum of each block is laid out as ``[2b, modes]``
(real and imaginary part of each channel on adjacent rows, one copy that also casts), each layer
is ONE batched real matmul with a ``[2 out, 2 in]`` matrix (``2bf x 2b`` in the first layer,
``2b x 2bf`` in the second) made of one ``2 x 2`` block ``[[w_r, -w_i], [w_i, w_r]]`` per channel
pair (the same four real products per complex product as the complex matmul), ReLU and
softshrink act on those real rows, and the result goes back to a float32 complex spectrum
(one copy) before the inverse FFT. The FFTs stay float32, as the reference keeps them; the
output keeps the input's dtype. Outside autocast nothing changes.

Launch overhead
---------------
On a GPU a small layer is bound by kernel launches, not by arithmetic. :func:`compiled` returns
the layer through ``torch.compile`` (``mode="reduce-overhead"``, i.e. CUDA graphs, on CUDA; the
default mode elsewhere): an opt-in path with the same outputs and gradients.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import MixerInputError, autocast_dtype, check_float_dtype, check_tensor
from .mixers import _LOW_PRECISION, AFNO
from .spectral import hermitian_project_after_ifft_, kept_mode_cutoffs, kept_rows

__all__ = ["FastAFNO", "to_channels_first", "to_channels_last", "compiled", "autocast_dtype"]

# Below this many elements per 2-D slice the blocked transpose brings nothing.
_MIN_BLOCKED = 60 * 60


def _transpose_2d(src: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """``src`` viewed as ``[n, rows, cols]`` -> contiguous ``[n, cols, rows]``.

    On CPU, ``Tensor.copy_`` of a plain 2-D transpose is called once per leading index, instead
    of the generic strided copy a 4-D ``permute(...).contiguous()`` uses. Measured on a shared
    2-core CPU (torch 2.13.0+cpu; ``[B, H, W, C]`` from ``[1, 16, 16, 64]`` to
    ``[8, 64, 64, 256]``; three noisy runs): 1.0-8x as fast for ``[C, H*W] -> [H*W, C]``
    (mostly 1.5-4.5x), but 0.5-2.6x for ``[H*W, C] -> [C, H*W]`` (0.8-1.5x for most shapes:
    no dependable gain in that direction).
    Elsewhere (CUDA), for float16/bfloat16 and below ``_MIN_BLOCKED`` elements per slice the
    generic copy is used."""
    n = src.numel() // (rows * cols)
    s = src.reshape(n, rows, cols)
    if src.device.type != "cpu" or rows * cols < _MIN_BLOCKED or src.dtype in _LOW_PRECISION:
        return s.transpose(1, 2).contiguous()
    out = torch.empty((n, cols, rows), dtype=src.dtype, device=src.device)
    for i in range(n):
        out[i].copy_(s[i].t())
    return out


class _ToChannelsFirst(torch.autograd.Function):
    """``[B, H, W, C] -> [B, C, H, W]`` contiguous (optionally cast), blocked transpose both ways."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        B, H, W, C = x.shape
        ctx.in_dtype = x.dtype
        y = _transpose_2d(x.to(dtype), H * W, C)
        return y.view(B, C, H, W)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        B, C, H, W = g.shape
        gx = _transpose_2d(g, C, H * W).view(B, H, W, C)
        return gx.to(ctx.in_dtype), None


class _ToChannelsLast(torch.autograd.Function):
    """``[B, C, H, W] -> [B, H, W, C]`` contiguous (optionally cast), blocked transpose both ways."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        B, C, H, W = y.shape
        ctx.in_dtype = y.dtype
        out = _transpose_2d(y, C, H * W).view(B, H, W, C)
        # No no-op ``.to``: torch 2.11's torch.compile routes the gradient of a Function whose
        # output is an alias of one of its intermediates to the wrong slot (wrong gradients,
        # silently; pytorch/pytorch#180642). Eager autograd is unaffected.
        return out if out.dtype == dtype else out.to(dtype)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        B, H, W, C = g.shape
        gy = _transpose_2d(g.to(ctx.in_dtype), H * W, C).view(B, C, H, W)
        return gy, None


def _paired_columns(W: int, n_cols: int) -> slice:
    """The rfft columns that stand for two modes of the full spectrum, ``k_W`` and ``-k_W``:
    ``1 .. ceil(W/2) - 1`` (neither ``k_W = 0`` nor the Nyquist column ``W/2`` of an even ``W``)."""
    return slice(1, min((W + 1) // 2, n_cols))


def _projected_inverse(Z: torch.Tensor, W: int) -> torch.Tensor:
    """``irfft2(hermitian_project(Z))`` (ortho) over the last two axes, ``Z`` holding the first
    ``M <= W//2 + 1`` columns: ``ifft`` along ``k_H``, the projection as the real part of the
    self-conjugate columns (:func:`~afno_lite.spectral.hermitian_project_after_ifft_`), then
    ``irfft`` along ``k_W``, which zero-pads the missing columns."""
    Z = torch.fft.ifft(Z, dim=-2, norm="ortho")
    return torch.fft.irfft(hermitian_project_after_ifft_(Z, W), n=W, dim=-1, norm="ortho")


def _rfft2_kept(x: torch.Tensor, M: int) -> torch.Tensor:
    """``rfft2(x, norm="ortho")[..., :M]``: for ``M < W//2 + 1`` only the kept columns go through
    the FFT along ``H``."""
    if M == x.shape[-1] // 2 + 1:
        return torch.fft.rfft2(x, norm="ortho")
    return torch.fft.fft(torch.fft.rfft(x, dim=-1, norm="ortho")[..., :M], dim=-2, norm="ortho")


class _Rfft2(torch.autograd.Function):
    """``rfft2(x, norm="ortho")[..., :M]`` over the last two axes (all ``W//2 + 1`` columns when
    ``M`` is ``None``; for ``M`` fewer, only the kept columns go through the FFT along ``H``);
    the backward pass is ONE projected inverse real FFT.

    PyTorch's backward of ``rfft2`` zero-pads the gradient to the full ``H x W`` spectrum and
    runs a complex FFT on it. The same adjoint is the inverse real FFT of the gradient with its
    paired columns (:func:`_paired_columns`) halved, because the inverse counts each of them
    twice, and with its self-conjugate columns projected: the gradient of a real input is real,
    so on those columns the adjoint is the real part of the inverse along ``k_H``
    (:func:`~afno_lite.spectral.hermitian_project_after_ifft_`), which also keeps it independent
    of the FFT library. Tested against PyTorch's backward in float64 (``tests/test_fast.py``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, M: int | None = None) -> torch.Tensor:
        ctx.W = x.shape[-1]
        return _rfft2_kept(x, x.shape[-1] // 2 + 1 if M is None else M)

    @staticmethod
    def backward(ctx, G: torch.Tensor):
        W = ctx.W
        Z = torch.fft.ifft(G, dim=-2, norm="ortho")          # a new tensor: scaled in place
        Z[..., _paired_columns(W, Z.shape[-1])] *= 0.5
        Z = hermitian_project_after_ifft_(Z, W)
        return torch.fft.irfft(Z, n=W, dim=-1, norm="ortho"), None    # irfft zero-pads to W//2+1


class _ProjectedIrfft2(torch.autograd.Function):
    """:func:`_projected_inverse`; the backward pass is ONE forward real FFT.

    The projection is an orthogonal projection (its own adjoint), and the adjoint of the inverse
    real FFT is the forward one with the paired columns doubled; a forward real FFT of a real
    gradient is already Hermitian on the self-conjugate columns, so the backward pass needs no
    projection, and none of the copies that autograd records for the forward's steps.
    Tested against autograd in float64 (``tests/test_fast.py``)."""

    @staticmethod
    def forward(ctx, Z: torch.Tensor, W: int) -> torch.Tensor:
        ctx.M = Z.shape[-1]
        return _projected_inverse(Z, W)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        M, W = ctx.M, g.shape[-1]
        G = _rfft2_kept(g, M)
        G[..., _paired_columns(W, M)] *= 2.0
        return G, None


def _check_layout_args(t, dtype, name: str, layout: str) -> None:
    check_tensor(t, name)
    if t.dim() != 4:
        raise MixerInputError(f"{name} must have rank 4 {layout}, got shape {tuple(t.shape)}")
    check_float_dtype(dtype)


def to_channels_first(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``[B, H, W, C]`` -> contiguous ``[B, C, H, W]`` (cast to ``dtype``), differentiable."""
    _check_layout_args(x, dtype, "x", "[B, H, W, C]")
    return _ToChannelsFirst.apply(x, dtype or x.dtype)


def to_channels_last(y: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``[B, C, H, W]`` -> contiguous ``[B, H, W, C]`` (cast to ``dtype``), differentiable."""
    _check_layout_args(y, dtype, "y", "[B, C, H, W]")
    return _ToChannelsLast.apply(y, dtype or y.dtype)


def _complex_weight(w: torch.Tensor, real_dtype: torch.dtype) -> torch.Tensor:
    """NVIDIA-layout ``[2, k, i, o]`` (acting as ``x @ W``) -> complex ``[k, o, i]`` acting as
    ``W^T @ X`` on a channels-first spectrum ``X [k, i, modes]``."""
    w = w.to(real_dtype)
    return torch.complex(w[0], w[1]).transpose(1, 2)


def _complex_bias(b: torch.Tensor, real_dtype: torch.dtype) -> torch.Tensor:
    """``[2, k, o]`` -> complex ``[k, o, 1]`` (broadcast over modes)."""
    b = b.to(real_dtype)
    return torch.complex(b[0], b[1]).unsqueeze(-1)


def _per_batch(t: torch.Tensor, B: int) -> torch.Tensor:
    """``[k, ...]`` -> ``[B*k, ...]`` (the same block weights for every sample)."""
    return t if B == 1 else t.expand(B, *t.shape).reshape(B * t.shape[0], *t.shape[1:])


def _real_pair_weight(w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """NVIDIA-layout ``[2, k, i, o]`` -> real ``[k, 2o, 2i]`` in ``dtype``, acting on channels-first
    rows ``(channel, re/im)``: ``[[W_r, -W_i], [W_i, W_r]]`` (transposed) for each channel pair."""
    wr, wi = w[0].transpose(1, 2), w[1].transpose(1, 2)                      # [k, o, i]
    m = torch.stack([torch.stack([wr, -wi], dim=-1), torch.stack([wi, wr], dim=-1)], dim=2)   # [k, o, 2, i, 2]
    k, o, _, i, _ = m.shape
    return m.reshape(k, 2 * o, 2 * i).to(dtype)


def _real_pair_bias(b: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``[2, k, o]`` -> real ``[k, 2o, 1]`` in ``dtype`` (rows ``(channel, re/im)``)."""
    k, o = b.shape[1], b.shape[2]
    return b.permute(1, 2, 0).reshape(k, 2 * o, 1).to(dtype)


class FastAFNO(AFNO):
    """AFNO token mixer, same parameters and outputs as :class:`afno_lite.mixers.AFNO`
    (see that class for the arguments), computed with channels-first FFTs and one batched
    complex matmul per layer. Registered as ``"afno_fast"`` in :mod:`afno_lite.registry`.

    >>> import torch
    >>> from afno_lite.mixers import AFNO
    >>> ref = AFNO(64, num_blocks=8); fast = FastAFNO(64, num_blocks=8)
    >>> _ = fast.load_state_dict(ref.state_dict())
    >>> x = torch.randn(2, 16, 12, 64)
    >>> bool((fast(x) - ref(x)).abs().max() < 1e-5)
    True
    """

    def _mlp_low_precision(self, X: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """:meth:`_mlp` with the matmuls in ``dtype`` (the autocast dtype) on real tensors: the
        float32 spectrum ``[B, C, R, M]`` goes to ``[B*k, 2b, R*M]`` rows ``(channel, re/im)``
        in ``dtype`` (one copy), through two real ``baddbmm`` with the ``2b x 2b`` pair
        matrices, and back to a float32 complex spectrum (one copy)."""
        B, C, R, M = X.shape
        k, b = self.num_blocks, self.block_size
        L = R * M
        Xr = torch.view_as_real(X).reshape(B * k, b, L, 2).transpose(-1, -2)            # [B*k, b, 2, L] view
        Xr = Xr.to(dtype=dtype, memory_format=torch.contiguous_format).view(B * k, 2 * b, L)
        W1 = _per_batch(_real_pair_weight(self.w1, dtype), B)
        W2 = _per_batch(_real_pair_weight(self.w2, dtype), B)
        h = torch.baddbmm(_per_batch(_real_pair_bias(self.b1, dtype), B), W1, Xr)
        if self.activation == "relu":  # on real and imaginary parts separately
            h = F.relu(h)
        o = torch.baddbmm(_per_batch(_real_pair_bias(self.b2, dtype), B), W2, h)
        o = F.softshrink(o, self.sparsity_threshold)
        o = o.view(B * k, b, 2, L).transpose(-1, -2).to(dtype=X.real.dtype, memory_format=torch.contiguous_format)
        return torch.view_as_complex(o).view(B, C, R, M)

    def _mlp(self, X: torch.Tensor) -> torch.Tensor:
        """Block MLP + softshrink on a channels-first complex spectrum ``[B, C, R, M]``."""
        if X.real.dtype == torch.float32 and (low := autocast_dtype(X.device.type)) is not None:
            return self._mlp_low_precision(X, low)
        B, C, R, M = X.shape
        k = self.num_blocks
        rdt = X.real.dtype
        Xb = X.reshape(B * k, self.block_size, R * M)
        W1 = _per_batch(_complex_weight(self.w1, rdt), B)
        W2 = _per_batch(_complex_weight(self.w2, rdt), B)
        # biases fused (frozen zeros when bias=False: the same code either way)
        h = torch.baddbmm(_per_batch(_complex_bias(self.b1, rdt), B), W1, Xb)
        if self.activation == "relu":  # on real and imaginary parts separately
            h = torch.view_as_complex(F.relu(torch.view_as_real(h)))
        o = torch.baddbmm(_per_batch(_complex_bias(self.b2, rdt), B), W2, h)
        o = F.softshrink(torch.view_as_real(o), self.sparsity_threshold)
        return torch.view_as_complex(o).view(B, C, R, M)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        B, H, W, C = x.shape
        dtype = x.dtype
        fft_dtype = torch.float32 if dtype in _LOW_PRECISION else dtype
        xc = to_channels_first(x, fft_dtype)                         # [B, C, H, W]
        m_h, m_w = kept_mode_cutoffs(H, W, self.keep_fraction)
        M = m_w + 1                                                  # kept columns 0..m_w
        X = _Rfft2.apply(xc, M)              # [B, C, H, M]; pruned: FFT along H of kept columns
        _, rows = kept_rows(H, m_h)  # k_H = 0..m_h, -m_h..-1
        if len(rows) < H:
            o = self._mlp(X[..., rows, :])
            Y = o.new_zeros(B, C, H, M)
            Y[..., rows, :] = o
        else:
            Y = self._mlp(X)
        # backend-independent inverse: the self-conjugate columns are projected (see
        # afno_lite.spectral.hermitian_project); irfft zero-pads the columns not kept
        y = _ProjectedIrfft2.apply(Y, W)
        y = to_channels_last(y, dtype)
        return y + x if self.residual else y


def compiled(module: torch.nn.Module, mode: str | None = None, backend: str | None = None, **kw):
    """``module`` through ``torch.compile``: an opt-in path against launch overhead, with the
    same outputs and gradients as the eager module (tested in ``tests/test_fast.py``).

    ``mode`` defaults to ``"reduce-overhead"`` (CUDA graphs, with inductor's fused kernels) when
    the module's parameters are on a CUDA device and to the default mode elsewhere; ``backend``
    (e.g. ``"cudagraphs"``: CUDA graphs of the eager kernels, no code generation, or
    ``"aot_eager"``: tracing only) is passed to ``torch.compile`` and then ``mode`` is not.
    Shapes are static (``dynamic=False``): each grid gets its own graph, and dynamo's
    ``recompile_limit`` (a process-wide setting: graphs kept per compiled function) is raised
    from its default of 8 to 64 when lower, so that a sweep over grids and precisions does not
    fall back to eager (dynamo only logs a warning when it does). Other keyword arguments go to
    ``torch.compile``.

    >>> import torch
    >>> layer = FastAFNO(32, num_blocks=4)
    >>> fast_layer = compiled(layer)          # compiles on its first call
    """
    import torch._dynamo.config as dcfg

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")

    for name in ("recompile_limit", "cache_size_limit"):
        if getattr(dcfg, name, 64) < 64:
            setattr(dcfg, name, 64)
    kw.setdefault("dynamic", False)
    if backend is not None:
        return torch.compile(module, backend=backend, **kw)
    if mode is None:
        p = next(module.parameters(), None)
        mode = "reduce-overhead" if p is not None and p.device.type == "cuda" else "default"
    return torch.compile(module, mode=mode, **kw)
