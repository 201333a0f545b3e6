"""A tiny ViT-style backbone with a pluggable token mixer.

Patches and the patch embedding are explained in the chapter "Tokens and mixing"; the
network itself (position embedding, pre-norm blocks) is described in "Inpainting with
different token mixers" and used there and in the chapters on ablations (through
:mod:`afno_lite.train`), resolution and PDEs, and classification and segmentation.

Data flow for an image ``x[B, C_in, H, W]`` with patch size ``p`` and token grid
``h = H/p``, ``w = W/p``::

    tokens = Conv2d(C_in, D, kernel=p, stride=p)(x)         # [B, D, h, w] -> [B, h, w, D]
    tokens = tokens + pos_embed (bilinearly resized to h x w when needed; pos_embed="none": no embedding)
    for each block:  t = t + mixer(norm1(t));  t = t + mlp(norm2(t))
    t = norm(t)
    head="image":    Linear(D, p*p*C_out), unpatchify -> [B, C_out, H, W]
    head="classify": mean over tokens, Linear(D, num_classes) -> [B, num_classes]

The mixer is built by name with :func:`afno_lite.mixer`, so every chapter can swap
``attention``, ``fno``, ``gfn`` and ``afno`` one-for-one.

AFNO and the double residual
----------------------------
:class:`afno_lite.AFNO` adds its own input back (``x + bias`` in the paper's
pseudo-code). Inside a block that already computes ``t + mixer(norm1(t))`` this
would add ``norm1(t)`` a second time, so :class:`TokenMixerNet` builds AFNO mixers
with ``residual=False`` unless ``mixer_kw`` says otherwise. (NVIDIA's FourCastNet
and PhysicsNeMo blocks keep both: ``filter(norm1(t)) = spectral + norm1(t)`` and a
``double_skip`` adds ``t`` again; pass ``mixer_kw={"residual": True}`` to mimic
that.) Weights of NVIDIA's spectral layers load into ``model.blocks[i].mixer``
with :func:`afno_lite.compat.load_nvidia_afno_blocks`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    MixerConfigError,
    MixerInputError,
    autocast_reconciles,
    check_bool,
    check_choice,
    check_positive_int,
    check_same_device,
    check_tokens,
)
from .registry import accepted_kwargs, spec
from .registry import mixer as build_mixer

__all__ = ["TokenMixerNet", "Block", "Mlp", "count_parameters", "HEADS", "POS_EMBEDS"]

HEADS = ("image", "classify")
#: ``"learned"``: a learned ``[h, w, D]`` table, resized bilinearly on another grid (it makes the
#: network depend on the grid even when the mixer does not); ``"none"``: no position embedding,
#: so only the mixer (and the patch size) can make the network grid-dependent.
POS_EMBEDS = ("learned", "none")


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``module`` (``sum(p.numel())``); with
    ``trainable_only=True`` only those with ``requires_grad``."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise MixerConfigError(f"{name} must be an integer or a pair (H, W) of positive integers, got {value!r}")
        return check_positive_int(value[0], f"{name}[0]"), check_positive_int(value[1], f"{name}[1]")
    v = check_positive_int(value, name)
    return v, v


def _init_normal_002(t: torch.Tensor) -> torch.Tensor:
    """``N(0, 0.02^2)``: what ViT-style code (and AFNO's) gets from ``trunc_normal_(std=.02)``,
    whose default bounds ``a=-2, b=2`` are absolute, 100 standard deviations out, so nothing
    is truncated. ``normal_`` draws the same values from a seed on every torch release;
    ``trunc_normal_`` does not (torch 2.13 draws ``normal_``'s values, 2.11 other ones)."""
    return nn.init.normal_(t, mean=0.0, std=0.02)


class Mlp(nn.Module):
    """Token-wise two-layer MLP ``fc2(GELU(fc1(x)))`` (same names as FourCastNet's)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block on channels-last tokens ``[B, h, w, D]``:
    ``x = x + mixer(norm1(x)); x = x + mlp(norm2(x))``."""

    def __init__(self, dim: int, token_mixer: nn.Module, mlp_ratio: float = 4.0, norm_eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.mixer = token_mixer
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, max(1, int(round(dim * mlp_ratio))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TokenMixerNet(nn.Module):
    """Tiny ViT-style network: patch embedding, a learned position embedding (or none),
    ``depth`` blocks with the token mixer ``mixer`` and a head.

    Parameters
    ----------
    mixer: name of a registered mixer (:mod:`afno_lite.registry`): ``attention``,
        ``kernel_attention``, ``fno``, ``gfn``, ``afno``, ``afno_fast``, or ``identity`` (no
        token mixing).
    img_size: ``(H, W)`` (or one int) the position embedding is built for; other
        sizes divisible by the patch run too (the embedding is resized), unless the mixer
        forbids the token grid: an ``fno`` mixer needs at least ``2*m_h x 2*m_w`` tokens
        (by default ``(m_h, m_w) = (h//2, w//2)`` of the ``img_size`` token grid).
    patch_size: ``p`` (or ``(p_h, p_w)``), the stride of the patch embedding.
    in_chans: input image channels ``C_in``.
    out_chans: output channels of the image head (default ``in_chans``).
    embed_dim, depth, mlp_ratio: width, number of blocks, MLP hidden width factor.
    head: ``"image"`` (image-to-image) or ``"classify"`` (mean pool + linear).
    num_classes: outputs of the classification head.
    pos_embed: ``"learned"`` (default) or ``"none"`` (see :data:`POS_EMBEDS`).
    mixer_kw: extra keyword arguments for every mixer. Filled in when absent: the record's
        ``grid_kw(h, w)`` (:mod:`afno_lite.registry`: ``grid=(h, w)`` for ``gfn``,
        ``modes=(h//2, w//2)``, every mode of the token grid, for ``fno``);
        ``residual=False`` for mixers that take it (AFNO, see the module docstring);
        ``check_finite=False`` (the network checks its input once).
    check_finite: reject images containing NaN/Inf.

    >>> net = TokenMixerNet("afno", img_size=32, in_chans=3)
    >>> net(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 3, 32, 32])
    """

    def __init__(self, mixer: str = "afno", img_size=(32, 32), patch_size=4, in_chans: int = 3,
                 out_chans: int | None = None, embed_dim: int = 64, depth: int = 4, mlp_ratio: float = 4.0,
                 head: str = "image", num_classes: int = 10, mixer_kw: dict | None = None,
                 check_finite: bool = True, pos_embed: str = "learned"):
        super().__init__()
        spec(mixer)                                # a clear error for an unknown name
        check_choice(head, "head", HEADS)
        self.pos_embed_type = check_choice(pos_embed, "pos_embed", POS_EMBEDS)
        self.img_size = _pair(img_size, "img_size")
        self.patch_size = _pair(patch_size, "patch_size")
        (H, W), (ph, pw) = self.img_size, self.patch_size
        if H % ph or W % pw:
            raise MixerConfigError(
                f"img_size={self.img_size} must be divisible by patch_size={self.patch_size} "
                f"(remainders {H % ph}, {W % pw})"
            )
        self.grid = (H // ph, W // pw)
        self.in_chans = check_positive_int(in_chans, "in_chans")
        self.out_chans = self.in_chans if out_chans is None else check_positive_int(out_chans, "out_chans")
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.depth = check_positive_int(depth, "depth")
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or not math.isfinite(mlp_ratio) \
                or mlp_ratio <= 0:
            raise MixerConfigError(f"mlp_ratio must be a finite number > 0, got {mlp_ratio!r}")
        if mixer_kw is not None and not isinstance(mixer_kw, dict):
            raise MixerConfigError(f"mixer_kw must be a dict of keyword arguments, got {type(mixer_kw).__name__}")
        self.head_type = head
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.mixer_name = mixer
        self.check_finite = check_bool(check_finite, "check_finite")
        self.mixer_kw = self._mixer_kwargs(mixer, dict(mixer_kw or {}))

        D = self.embed_dim
        self.patch_embed = nn.Conv2d(self.in_chans, D, kernel_size=self.patch_size, stride=self.patch_size)
        if self.pos_embed_type == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, *self.grid, D))
            _init_normal_002(self.pos_embed)
        else:
            self.register_parameter("pos_embed", None)
        self.blocks = nn.ModuleList(
            [Block(D, build_mixer(mixer, D, **self.mixer_kw), mlp_ratio) for _ in range(self.depth)]
        )
        self.norm = nn.LayerNorm(D, eps=1e-6)
        if head == "image":
            self.head = nn.Linear(D, ph * pw * self.out_chans)
        else:
            self.head = nn.Linear(D, self.num_classes)
        for blk in self.blocks:
            blk.mlp.apply(self._init_linear)
        self._init_linear(self.head)

    # ------------------------------------------------------------------ construction helpers
    def _mixer_kwargs(self, name: str, kw: dict) -> dict:
        accepted, _ = accepted_kwargs(name)
        for k, v in spec(name).grid_kw(*self.grid).items():
            kw.setdefault(k, v)
        if "residual" in accepted and "residual" not in kw:
            kw["residual"] = False
        if "check_finite" in accepted and "check_finite" not in kw:
            kw["check_finite"] = False
        return kw

    @staticmethod
    def _init_linear(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            _init_normal_002(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def extra_repr(self) -> str:
        return (f"mixer={self.mixer_name!r}, img_size={self.img_size}, patch_size={self.patch_size}, "
                f"grid={self.grid}, head={self.head_type!r}")

    # ------------------------------------------------------------------ position embedding
    def resize_pos_embed(self, grid) -> torch.Tensor:
        """The position embedding ``[1, h', w', D]`` for a token grid ``(h', w')`` (one int: a square):
        the learned ``[1, h, w, D]`` itself when the grid matches, otherwise bilinearly
        interpolated (``align_corners=False``, differentiable); ``None`` without one."""
        gh, gw = _pair(grid, "grid")
        if self.pos_embed is None:
            return None
        if (gh, gw) == self.grid:
            return self.pos_embed
        t = self.pos_embed.permute(0, 3, 1, 2)
        t = F.interpolate(t, size=(gh, gw), mode="bilinear", align_corners=False)
        return t.permute(0, 2, 3, 1)

    def set_img_size(self, img_size) -> None:
        """Make ``img_size`` the model's native size: resize the learned position
        embedding once (e.g. before fine-tuning at a new resolution)."""
        H, W = _pair(img_size, "img_size")
        ph, pw = self.patch_size
        if H % ph or W % pw:
            raise MixerConfigError(f"img_size={(H, W)} must be divisible by patch_size={self.patch_size}")
        if self.pos_embed is not None:
            self.pos_embed = nn.Parameter(self.resize_pos_embed((H // ph, W // pw)).detach().clone())
        self.img_size, self.grid = (H, W), (H // ph, W // pw)

    # ------------------------------------------------------------------ forward
    def _check_input(self, x) -> None:
        """Images ``[B, C_in, H, W]``: checked as channels-first "tokens" by
        :func:`afno_lite._checks.check_tokens` (same messages and exception types as the
        mixers), then the patch divisibility and the dtype of the parameters (which
        ``torch.autocast`` may reconcile: it casts both before the patch embedding)."""
        check_tokens(x, self.in_chans, "x", self.check_finite, channels_first=True, owner="the model",
                     size_name="in_chans")
        H, W = x.shape[-2:]
        ph, pw = self.patch_size
        if H % ph or W % pw:
            raise MixerInputError(
                f"x has spatial size {H}x{W}, which must be non-empty and divisible by "
                f"patch_size={self.patch_size}"
            )
        check_same_device(x, self, "x", "the model")
        dtype = self.patch_embed.weight.dtype
        if x.dtype != dtype and not autocast_reconciles(x, dtype):     # autocast casts both itself
            raise TypeError(f"x has dtype {x.dtype} but the model's parameters are {dtype}; "
                            f"convert one of them (x.to({dtype}) or model.to({x.dtype}))")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised output tokens ``[B, h, w, D]`` for images ``x[B, C_in, H, W]``."""
        self._check_input(x)
        t = self.patch_embed(x).permute(0, 2, 3, 1)               # [B, h, w, D]
        pe = self.resize_pos_embed(t.shape[1:3])
        if pe is not None:
            t = t + pe
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.forward_features(x)
        if self.head_type == "classify":
            return self.head(t.mean(dim=(1, 2)))
        B, h, w, _ = t.shape
        ph, pw = self.patch_size
        y = self.head(t).view(B, h, w, ph, pw, self.out_chans)    # "b h w (p1 p2 c)" as FourCastNet
        return y.permute(0, 5, 1, 3, 2, 4).reshape(B, self.out_chans, h * ph, w * pw)
