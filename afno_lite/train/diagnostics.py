"""Diagnostics of a trained model: FLOPs per image, the sparsity AFNO's soft-thresholding
produces, a digest of the weights.

Explained in the chapters "Inpainting with different token mixers" (FLOPs per image),
"Ablations" (sparsity) and "Scaling out" (weight digests of the replicas).
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from ..complexity import flops as mixer_flops
from ..complexity import measure_flops
from ..models import TokenMixerNet

__all__ = ["model_flops", "afno_sparsity", "weights_digest"]


def model_flops(model: TokenMixerNet, img_size: int | None = None) -> dict:
    """Forward FLOPs for ONE image: ``total`` = everything ``FlopCounterMode`` counts outside the
    mixers (patch embedding, MLPs, head) + each mixer's formula total from
    :func:`afno_lite.complexity.flops` (which adds the FFTs and counts complex products in
    real flops). Also returns ``mixers`` (the formula part) and ``fft``."""
    model = getattr(model, "module", model)
    S = img_size or model.img_size[0]
    w = model.patch_embed.weight
    x = torch.zeros(1, model.in_chans, S, S, dtype=w.dtype, device=w.device)   # on the model's device
    seen = []
    hooks = [blk.mixer.register_forward_hook(lambda m, inp, out: seen.append((m, inp[0].detach())))
             for blk in model.blocks]
    try:
        total_measured = measure_flops(model, x)
    finally:
        for h in hooks:
            h.remove()
    mix_measured, mix_formula, fft = 0, 0.0, 0.0
    for m, t in seen:
        mix_measured += measure_flops(m, t)
        kw = {k: v for k, v in model.mixer_kw.items() if k != "grid"}
        f = mixer_flops(model.mixer_name, m.dim, tuple(t.shape[1:3]), 1, **kw)   # every record has formulas
        mix_formula += f["total"]
        fft += f["fft"]
    return {"total": float(total_measured - mix_measured + mix_formula), "mixers": float(mix_formula),
            "fft": float(fft)}


@torch.no_grad()
def afno_sparsity(model: nn.Module, x: torch.Tensor) -> float | None:
    """Fraction of the spectral coefficients that the AFNO mixers of ``model`` output as exactly
    zero on images ``x`` (real and imaginary parts counted separately, as soft-thresholding acts
    on them separately; modes dropped by ``keep_fraction`` count as zeros), averaged over the
    mixers. ``None`` when the model has no AFNO mixer. ``x`` is moved to the model's device."""
    from ..mixers import AFNO

    model = getattr(model, "module", model)
    x = x.to(model.patch_embed.weight.device)   # images from the CPU for a model on the GPU, as evaluate
    inputs = []
    hooks = [blk.mixer.register_forward_hook(lambda m, inp, out: inputs.append((m, inp[0])))
             for blk in model.blocks if isinstance(blk.mixer, AFNO)]
    if not hooks:
        return None
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    fracs = []
    for m, t in inputs:
        B, H, W, C = t.shape
        after = m.spectrum(t.float()).after        # the kept modes after soft-thresholding
        nonzero = int((torch.view_as_real(after) != 0).sum())
        fracs.append(1.0 - nonzero / (2 * B * H * (W // 2 + 1) * C))
    return float(np.mean(fracs))


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of the model's state dict (keys sorted, raw float bytes): equal digests = equal weights."""
    model = getattr(model, "module", model)
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
