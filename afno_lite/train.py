"""Trainer for the experiment chapters: ``fit(config) -> results`` and ``python -m afno_lite.train``.

Used in chapters "Inpainting with different token mixers", "Ablations", "Resolution and
PDEs" and explained in "Scaling out" (torchrun, DistributedDataParallel, mixed precision).

* Tasks: ``inpainting`` (masked-patch inpainting of grayscale crops, :func:`afno_lite.data.inpainting_data`)
  and ``pde`` (Navier-Stokes ``w(0) -> w(T)``, :mod:`afno_lite.pde`), both on the same tiny
  :class:`afno_lite.models.TokenMixerNet` backbone with the mixer chosen by name.
* Seeded: the same config gives the same weights (bit for bit on one machine); the data come
  from ``data_seed``, the initialisation and the batch order from ``seed``.
* CPU by default, the GPU when present (``device="auto"``); ``amp="bf16"`` runs the forward
  pass under ``torch.autocast`` (the spectral mixers compute their FFTs in float32).
* ``out`` gets ``checkpoint.pt`` (model, optimizer, scheduler, epoch, RNG states) after every
  epoch and ``results.json``; ``resume=True`` continues from the checkpoint.
* Runs unchanged under ``torchrun --nproc_per_node=P``: one process per rank,
  DistributedDataParallel (``gloo`` on CPU, ``nccl`` on GPU), a ``DistributedSampler`` that
  splits every global batch of ``batch_size`` samples into ``P`` equal shards, logging,
  evaluation and checkpoints on rank 0 only. Every rank writes the SHA-256 of its final
  weights to ``out/rank<r>.sha256`` so one can check that the replicas stayed identical.

Example::

    python -m afno_lite.train --task inpainting --mixer afno --epochs 3 --out runs/afno
    torchrun --nproc_per_node=2 -m afno_lite.train --task pde --mixer fno --epochs 2 --out runs/fno2
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .complexity import flops as mixer_flops
from .complexity import measure_flops
from .data import inpainting_data, pde_data
from .models import TokenMixerNet, count_parameters
from .registry import MIXERS

__all__ = ["TrainConfig", "ConfigError", "TASKS", "fit", "build_model", "make_data", "evaluate", "psnr", "ssim",
           "model_flops", "afno_sparsity", "weights_digest", "encode_array", "decode_array", "load_model", "main"]

TASKS = ("inpainting", "pde")
AMP_MODES = ("none", "bf16", "fp16")
SCHEDULES = ("cosine", "constant")


class ConfigError(ValueError):
    """A training configuration that cannot run (the message names the field and what was expected)."""


@dataclass
class TrainConfig:
    """Everything that defines a run. Sizes are tiny by default (a laptop CPU runs them in seconds)."""

    task: str = "inpainting"
    mixer: str = "afno"
    mixer_kw: dict = field(default_factory=dict)
    embed_dim: int = 32
    depth: int = 2
    mlp_ratio: float = 2.0
    patch_size: int = 4
    img_size: int = 32               # training image / PDE grid size
    epochs: int = 2
    batch_size: int = 32             # global batch, split over the processes of a torchrun job
    lr: float = 2e-3
    weight_decay: float = 0.01
    schedule: str = "cosine"         # per-step cosine decay to 0 over `epochs`, or "constant"
    seed: int = 0                    # initialisation and batch order
    data_seed: int = 0               # the data set itself
    n_train: int = 512
    n_test: int = 128
    mask_ratio: float = 0.5          # inpainting: fraction of mask_patch x mask_patch squares hidden
    mask_patch: int = 4
    pde_T: float = 1.0               # pde: horizon of w(0) -> w(T)
    pde_nu: float = 1e-3
    pde_residual: bool = True        # pde: predict w(T) = w(0) + net(w(0)) (learn the increment)
    eval_sizes: tuple = ()           # extra grid sizes evaluated zero-shot (pde: e.g. (64,))
    max_steps: int | None = None     # cap on optimizer steps per epoch (smoke tests)
    stop_after: int | None = None    # train at most this many epochs in this invocation (then resume)
    amp: str = "none"
    device: str = "auto"
    threads: int | None = None       # torch.set_num_threads for this process
    out: str | None = None
    resume: bool = False
    progress: bool = True
    examples: int = 0                # store this many test predictions per grid size (float16, base64)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["eval_sizes"] = list(self.eval_sizes)
        return d


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def validate_config(cfg: TrainConfig) -> TrainConfig:
    """Raise :class:`ConfigError` naming the first bad field; return ``cfg`` (with tuples normalised)."""
    if not isinstance(cfg, TrainConfig):
        raise ConfigError(f"config must be a TrainConfig or a dict of its fields, got {type(cfg).__name__}")
    if cfg.task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {cfg.task!r}")
    if not isinstance(cfg.mixer, str) or cfg.mixer not in MIXERS:
        raise ConfigError(f"mixer must be one of {sorted(MIXERS)}, got {cfg.mixer!r}")
    if not isinstance(cfg.mixer_kw, dict):
        raise ConfigError(f"mixer_kw must be a dict of keyword arguments for the mixer, got {cfg.mixer_kw!r}")
    for name in ("embed_dim", "depth", "patch_size", "img_size", "epochs", "batch_size", "n_train", "n_test",
                 "mask_patch"):
        v = getattr(cfg, name)
        if not _is_int(v) or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}")
    for name in ("max_steps", "stop_after", "threads"):
        v = getattr(cfg, name)
        if v is not None and (not _is_int(v) or v < 1):
            raise ConfigError(f"{name} must be a positive integer or None, got {v!r}")
    if not _is_int(cfg.examples) or cfg.examples < 0:
        raise ConfigError(f"examples must be an integer >= 0, got {cfg.examples!r}")
    for name in ("lr", "pde_T", "pde_nu", "mlp_ratio"):
        v = getattr(cfg, name)
        if not _is_num(v) or v <= 0:
            raise ConfigError(f"{name} must be a positive finite number, got {v!r}")
    if not _is_num(cfg.weight_decay) or cfg.weight_decay < 0:
        raise ConfigError(f"weight_decay must be a finite number >= 0, got {cfg.weight_decay!r}")
    if not _is_num(cfg.mask_ratio) or not 0 < cfg.mask_ratio < 1:
        raise ConfigError(f"mask_ratio must be a fraction in (0, 1), got {cfg.mask_ratio!r}")
    for name in ("seed", "data_seed"):
        if not _is_int(getattr(cfg, name)) or getattr(cfg, name) < 0:
            raise ConfigError(f"{name} must be an integer >= 0, got {getattr(cfg, name)!r}")
    if cfg.schedule not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {SCHEDULES}, got {cfg.schedule!r}")
    if cfg.amp not in AMP_MODES:
        raise ConfigError(f"amp must be one of {AMP_MODES}, got {cfg.amp!r}")
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {cfg.device!r}")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was requested but no CUDA device is available; use device='auto' or 'cpu'")
    if cfg.img_size % cfg.patch_size:
        raise ConfigError(f"img_size={cfg.img_size} must be divisible by patch_size={cfg.patch_size}")
    if cfg.task == "inpainting" and cfg.img_size % cfg.mask_patch:
        raise ConfigError(f"img_size={cfg.img_size} must be divisible by mask_patch={cfg.mask_patch}")
    try:
        sizes = tuple(int(s) for s in cfg.eval_sizes)
    except (TypeError, ValueError):
        raise ConfigError(f"eval_sizes must be a sequence of grid sizes, got {cfg.eval_sizes!r}") from None
    for s in sizes:
        if s < 1 or s % cfg.patch_size:
            raise ConfigError(f"every eval size must be a positive multiple of patch_size={cfg.patch_size}, got {s}")
    if cfg.task == "pde":
        for s in (cfg.img_size, *sizes):
            if s % 2 or max(cfg.img_size, *sizes) % s:
                raise ConfigError(f"pde grid sizes must be even and divide the finest one, got img_size="
                                  f"{cfg.img_size}, eval_sizes={sizes}")
    cfg.eval_sizes = sizes
    if cfg.resume and not cfg.out:
        raise ConfigError("resume=True needs out= (the run folder holding checkpoint.pt)")
    for name in ("progress", "resume", "pde_residual"):
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(f"{name} must be a boolean, got {getattr(cfg, name)!r}")
    return cfg


def _as_config(config) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return dataclasses.replace(config, mixer_kw=dict(config.mixer_kw))
    if isinstance(config, dict):
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; valid fields: {sorted(names)}")
        return TrainConfig(**config)
    raise ConfigError(f"config must be a TrainConfig or a dict of its fields, got {type(config).__name__}")


# --------------------------------------------------------------------------- metrics
def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image (dB): ``10 log10(range^2 / MSE)``, inputs ``[B, C, H, W]``."""
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse.clamp_min(1e-12))


def _gaussian_window(size: int, sigma: float, dtype) -> torch.Tensor:
    t = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity (Wang et al., 2004) per image, ``[B, C, H, W] -> [B]``.

    Gaussian window ``window x window`` with ``sigma``, local means/variances/covariance over
    the window positions that fit inside the image ('valid'), ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2``::

        SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))

    averaged over positions and channels.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"x and y must have the same shape [B, C, H, W], got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"images must be at least window={window} pixels on each side, got {tuple(x.shape[-2:])}")
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    x, y = x.to(dt), y.to(dt)
    C = x.shape[1]
    w = _gaussian_window(window, sigma, dt).to(x.device).expand(C, 1, window, window)

    def filt(t):
        return F.conv2d(t, w, groups=C)

    mx, my = filt(x), filt(y)
    sxx = filt(x * x) - mx * mx
    syy = filt(y * y) - my * my
    sxy = filt(x * y) - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||pred - target|| / ||target||`` per sample."""
    return (pred.float() - target.float()).flatten(1).norm(dim=1) / target.float().flatten(1).norm(dim=1)


# --------------------------------------------------------------------------- model, data, flops
def _in_out_chans(task: str) -> tuple[int, int]:
    return (2, 1) if task == "inpainting" else (1, 1)


def build_model(cfg: TrainConfig) -> TokenMixerNet:
    """The backbone of a run (``head="image"``) with the run's mixer."""
    cin, cout = _in_out_chans(cfg.task)
    try:
        return TokenMixerNet(cfg.mixer, img_size=cfg.img_size, patch_size=cfg.patch_size, in_chans=cin,
                             out_chans=cout, embed_dim=cfg.embed_dim, depth=cfg.depth, mlp_ratio=cfg.mlp_ratio,
                             head="image", mixer_kw=dict(cfg.mixer_kw))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cannot build mixer {cfg.mixer!r} with mixer_kw={cfg.mixer_kw}: {e}") from e


_DATA_CACHE: dict = {}


def make_data(cfg: TrainConfig) -> dict:
    """``{"train": (x, y[, mask]), "test": {size: (x, y[, mask])}}`` for the run.

    Cached per process; the Navier-Stokes data are also cached on disk when the environment
    variable ``AFNO_DATA_CACHE`` names a folder (the experiment driver sets it)."""
    if cfg.task == "pde" and os.environ.get("AFNO_DATA_CACHE"):
        sizes = (cfg.img_size, *cfg.eval_sizes)
        key = ("pde", cfg.n_train, cfg.n_test, sizes, cfg.pde_T, cfg.pde_nu, cfg.data_seed)
        if key not in _DATA_CACHE:
            folder = Path(os.environ["AFNO_DATA_CACHE"])
            path = folder / f"pde-{hashlib.sha256(repr(key).encode()).hexdigest()[:12]}.pt"
            if path.exists():
                _DATA_CACHE[key] = torch.load(path, weights_only=True)
            else:
                _DATA_CACHE[key] = _make_data(cfg)
                folder.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                torch.save(_DATA_CACHE[key], tmp)
                os.replace(tmp, path)
        return _DATA_CACHE[key]
    return _make_data(cfg)


def _make_data(cfg: TrainConfig) -> dict:
    if cfg.task == "inpainting":
        key = ("inpainting", cfg.n_train, cfg.n_test, cfg.img_size, cfg.mask_patch, cfg.mask_ratio, cfg.data_seed,
               cfg.eval_sizes)
        if key not in _DATA_CACHE:
            tr = inpainting_data(cfg.n_train, cfg.img_size, cfg.mask_patch, cfg.mask_ratio, "train", cfg.data_seed)
            test = {}
            for s in (cfg.img_size, *cfg.eval_sizes):
                te = inpainting_data(cfg.n_test, s, cfg.mask_patch, cfg.mask_ratio, "test", cfg.data_seed)
                test[s] = (te["x"], te["target"], te["mask"])
            _DATA_CACHE[key] = {"train": (tr["x"], tr["target"], tr["mask"]), "test": test}
    else:
        sizes = (cfg.img_size, *cfg.eval_sizes)
        fine = max(max(sizes), 64)
        key = ("pde", cfg.n_train, cfg.n_test, sizes, cfg.pde_T, cfg.pde_nu, cfg.data_seed)
        if key not in _DATA_CACHE:
            tr = pde_data(cfg.n_train, grids=(cfg.img_size,), T=cfg.pde_T, nu=cfg.pde_nu, seed=2 * cfg.data_seed,
                          fine=fine)
            te = pde_data(cfg.n_test, grids=sizes, T=cfg.pde_T, nu=cfg.pde_nu, seed=2 * cfg.data_seed + 1, fine=fine)
            _DATA_CACHE[key] = {"train": tr[cfg.img_size], "test": {s: te[s] for s in sizes}}
    return _DATA_CACHE[key]


def model_flops(model: TokenMixerNet, img_size: int | None = None) -> dict:
    """Forward FLOPs for ONE image: ``total`` = everything ``FlopCounterMode`` counts outside the
    mixers (patch embedding, MLPs, head) + each mixer's formula total from
    :func:`afno_lite.complexity.flops` (which adds the FFTs and counts complex products in
    real flops). Also returns ``mixers`` (the formula part) and ``fft``."""
    model = getattr(model, "module", model)
    S = img_size or model.img_size[0]
    x = torch.zeros(1, model.in_chans, S, S, dtype=model.patch_embed.weight.dtype)
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
    mixers. ``None`` when the model has no AFNO mixer."""
    from .mixers import AFNO

    model = getattr(model, "module", model)
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


# --------------------------------------------------------------------------- evaluation
def _forward(net, x, cfg) -> torch.Tensor:
    """The task's prediction: the network output, plus the input for the residual PDE task."""
    y = net(x).float()
    if cfg.task == "pde" and cfg.pde_residual:
        y = y + x.float()
    return y


def _predict(model, x, amp_ctx, cfg):
    with amp_ctx():
        return _forward(model, x, cfg)


@torch.no_grad()
def evaluate(model: nn.Module, cfg: TrainConfig, test: dict, device=None, batch_size: int = 32,
             amp: str = "none") -> dict:
    """Test metrics per grid size of ``test`` (``{size: tensors}``): inpainting -> ``psnr``, ``ssim``
    and ``mse_masked`` of the composite (known pixels kept, missing ones predicted and clipped to
    [0, 1]); pde -> ``rel_l2``."""
    model = getattr(model, "module", model)
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    amp_ctx = _amp_context(amp, torch.device(device))
    out = {}
    for size, tensors in test.items():
        acc: dict = {}
        n = tensors[0].shape[0]
        for i in range(0, n, batch_size):
            xb = tensors[0][i:i + batch_size].to(device)
            yb = tensors[1][i:i + batch_size].to(device)
            pred = _predict(model, xb, amp_ctx, cfg)
            if cfg.task == "inpainting":
                mb = tensors[2][i:i + batch_size].to(device)
                comp = mb * pred.clamp(0, 1) + (1 - mb) * yb
                vals = {"psnr": psnr(comp, yb), "ssim": ssim(comp, yb),
                        "mse_masked": ((comp - yb) ** 2 * mb).flatten(1).sum(1) / mb.flatten(1).sum(1)}
            else:
                vals = {"rel_l2": relative_l2(pred, yb)}
            for k, v in vals.items():
                acc.setdefault(k, []).append(v.cpu())
        out[int(size)] = {k: float(torch.cat(v).mean()) for k, v in acc.items()}
    model.train(was_training)
    return out


def encode_array(a) -> dict:
    """A float array as ``{"shape", "dtype": "float16", "b64"}`` (compact JSON; ~3 significant digits)."""
    import base64

    a = np.ascontiguousarray(np.asarray(a, dtype=np.float16))
    return {"shape": list(a.shape), "dtype": "float16", "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_array(d: dict) -> np.ndarray:
    """Inverse of :func:`encode_array` (returns float32)."""
    import base64

    return np.frombuffer(base64.b64decode(d["b64"]), dtype=d["dtype"]).reshape(d["shape"]).astype(np.float32)


def _examples(model, cfg, test, k: int, device) -> dict:
    """The first ``k`` test samples of every grid size with the model's prediction, encoded."""
    model = getattr(model, "module", model)
    model.eval()
    out = {}
    with torch.no_grad():
        for size, tensors in test.items():
            x = tensors[0][:k].to(device)
            pred = _forward(model, x, cfg).cpu()
            ex = {"input": tensors[0][:k, 0], "target": tensors[1][:k, 0], "prediction": pred[:, 0]}
            if cfg.task == "inpainting":
                ex["mask"] = tensors[2][:k, 0]
            out[str(size)] = {name: encode_array(t.numpy()) for name, t in ex.items()}
    model.train()
    return out


# --------------------------------------------------------------------------- distributed helpers
def _dist_env() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def _launched_by_torchrun() -> bool:
    """``torchrun`` sets ``TORCHELASTIC_RUN_ID`` (and ``WORLD_SIZE``) in every process it starts."""
    return "TORCHELASTIC_RUN_ID" in os.environ and "WORLD_SIZE" in os.environ


def resolve_device(requested: str, local_rank: int = 0, cuda_available: bool | None = None,
                   cuda_count: int | None = None) -> tuple[torch.device, str]:
    """The device this process trains on and the matching process-group backend.

    * ``"auto"``: CUDA when a GPU is present, else the CPU.
    * ``"cuda"``: GPU ``local_rank`` (``LOCAL_RANK`` under ``torchrun``, 0 otherwise) — always an
      **indexed** device such as ``cuda:0``, which is what ``torch.cuda.set_device`` requires
      (the bare ``"cuda"`` is rejected there); backend ``"nccl"``.
    * ``"cpu"``: the CPU; backend ``"gloo"``.
    """
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if requested not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {requested!r}")
    kind = ("cuda" if cuda_available else "cpu") if requested == "auto" else requested
    if kind == "cpu":
        return torch.device("cpu"), "gloo"
    if not cuda_available:
        raise ConfigError("device='cuda' was requested but no CUDA device is available; use device='auto' or 'cpu'")
    if cuda_count is None:
        cuda_count = torch.cuda.device_count()
    if not 0 <= local_rank < cuda_count:
        raise ConfigError(
            f"this process has LOCAL_RANK={local_rank} but only {cuda_count} CUDA device(s) are visible; "
            f"start at most {cuda_count} processes per node"
        )
    return torch.device("cuda", local_rank), "nccl"


def _amp_context(amp: str, device: torch.device):
    if amp == "none":
        return lambda: torch.autocast(device_type=device.type, enabled=False)
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[1]
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _rng_state() -> dict:
    st = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


_ARCH_FIELDS = ("task", "mixer", "mixer_kw", "embed_dim", "depth", "mlp_ratio", "patch_size", "img_size",
                "batch_size", "n_train", "n_test", "mask_ratio", "mask_patch", "pde_T", "pde_nu", "seed",
                "data_seed", "schedule", "lr", "weight_decay", "pde_residual")


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=False))
    os.replace(tmp, path)


# --------------------------------------------------------------------------- training
def fit(config, return_model: bool = False, command: str | None = None):
    """Train one run and return its results dict (and the trained model if ``return_model``).

    ``config`` is a :class:`TrainConfig` or a dict of its fields. Under ``torchrun`` (``WORLD_SIZE > 1``)
    the process group is initialised here (and destroyed at the end if it was created here).
    """
    cfg = validate_config(_as_config(config))
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
    from tqdm import tqdm

    commit = _git_commit()          # the code this run starts from
    world, rank, local = _dist_env()
    # A torchrun launch uses a process group even with one process (so nccl/gloo are exercised).
    distributed = world > 1 or _launched_by_torchrun()
    created_group = False
    device, backend = resolve_device(cfg.device, local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if distributed and not dist.is_initialized():
        dist.init_process_group(backend=backend)
        created_group = True
    if cfg.amp == "fp16" and device.type != "cuda":
        raise ConfigError("amp='fp16' needs a CUDA device (CPU autocast supports bf16); use amp='bf16' on CPU")
    if cfg.batch_size % world:
        raise ConfigError(f"batch_size={cfg.batch_size} must be divisible by the number of processes ({world})")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    is_main = rank == 0
    out = Path(cfg.out) if cfg.out else None
    if out is not None and is_main:
        out.mkdir(parents=True, exist_ok=True)

    try:
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        data = make_data(cfg)
        model = build_model(cfg).to(device)
        n_params = count_parameters(model)
        flops = model_flops(model)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

        ds = TensorDataset(*data["train"])
        per_rank = cfg.batch_size // world
        sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=True)
        loader = DataLoader(ds, batch_size=per_rank, sampler=sampler, drop_last=True)
        steps_per_epoch = len(loader) if cfg.max_steps is None else min(len(loader), cfg.max_steps)
        if steps_per_epoch < 1:
            raise ConfigError(f"n_train={cfg.n_train} gives no full batch of batch_size={cfg.batch_size}; "
                              f"lower batch_size or raise n_train")
        total_steps = steps_per_epoch * cfg.epochs
        if cfg.schedule == "cosine":
            lam = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))  # noqa: E731
        else:
            lam = lambda s: 1.0  # noqa: E731
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)

        start_epoch, history = 0, []
        ckpt_path = out / "checkpoint.pt" if out is not None else None
        if cfg.resume:
            if not ckpt_path.exists():
                raise ConfigError(f"resume=True but there is no checkpoint at {ckpt_path}; run once without resume")
            ck = torch.load(ckpt_path, map_location=device, weights_only=False)
            old = ck["config"]
            diff = [k for k in _ARCH_FIELDS if old.get(k) != cfg.to_dict().get(k)]
            if diff:
                raise ConfigError(f"cannot resume: the checkpoint was made with different {diff} "
                                  f"({ {k: old.get(k) for k in diff} })")
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            start_epoch, history = ck["epoch"], ck["history"]
            _set_rng_state(ck["rng"])
            if start_epoch >= cfg.epochs and is_main and cfg.progress:
                print(f"checkpoint already has {start_epoch} epochs >= epochs={cfg.epochs}; nothing to train")

        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None) if distributed else model
        amp_ctx = _amp_context(cfg.amp, device)
        scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None

        def loss_fn(pred, batch):
            if cfg.task == "inpainting":
                y, m = batch[1], batch[2]
                return ((pred - y) ** 2 * m).sum() / m.sum()
            return relative_l2(pred, batch[1]).mean()

        t_run = time.perf_counter()
        epochs_this_call = 0
        for epoch in range(start_epoch, cfg.epochs):
            if cfg.stop_after is not None and epochs_this_call >= cfg.stop_after:
                break
            sampler.set_epoch(epoch)
            net.train()
            t0 = time.perf_counter()
            loss_sum = torch.zeros(2, dtype=torch.float64)
            bar = tqdm(loader, total=steps_per_epoch, desc=f"{cfg.mixer} epoch {epoch + 1}/{cfg.epochs}",
                       disable=not (cfg.progress and is_main), leave=False, mininterval=1.0, file=sys.stderr)
            for step, batch in enumerate(bar):
                if step >= steps_per_epoch:
                    break
                batch = [b.to(device) for b in batch]
                with amp_ctx():
                    pred = _forward(net, batch[0], cfg)
                loss = loss_fn(pred.float(), batch)
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    opt.step()
                sched.step()
                lv = loss.detach().item()
                loss_sum += torch.tensor([lv, 1.0], dtype=torch.float64)
                bar.set_postfix(loss=f"{lv:.4g}", refresh=False)
            bar.close()
            train_time = time.perf_counter() - t0
            if distributed:
                dist.all_reduce(loss_sum)
            train_loss = float(loss_sum[0] / loss_sum[1])
            metrics = [None]
            if is_main:
                t1 = time.perf_counter()
                metrics[0] = evaluate(model, cfg, {cfg.img_size: data["test"][cfg.img_size]}, device, amp=cfg.amp)
                eval_time = time.perf_counter() - t1
                rec = {"epoch": epoch + 1, "train_loss": train_loss, "epoch_time_s": train_time,
                       "eval_time_s": eval_time, "test": {str(k): v for k, v in metrics[0].items()}}
                history.append(rec)
                if cfg.progress:
                    main_metric = metrics[0][cfg.img_size]
                    msg = ", ".join(f"{k} {v:.4g}" for k, v in main_metric.items())
                    print(f"[{cfg.mixer}] epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss:.4g}, test {msg}, "
                          f"{train_time:.1f} s", flush=True)
                if ckpt_path is not None:
                    tmp = ckpt_path.with_suffix(".pt.tmp")
                    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                                "scheduler": sched.state_dict(), "epoch": epoch + 1, "history": history,
                                "rng": _rng_state(), "config": cfg.to_dict(), "world_size": world}, tmp)
                    os.replace(tmp, ckpt_path)
            if distributed:
                dist.broadcast_object_list(metrics, src=0)
                obj = [history]
                dist.broadcast_object_list(obj, src=0)
                history = obj[0]
            epochs_this_call += 1

        # the final evaluation adds the other grid sizes (zero-shot), which can be expensive
        final = [None]
        if is_main:
            final[0] = {str(k): v for k, v in evaluate(model, cfg, data["test"], device, amp=cfg.amp).items()}
        if distributed:
            dist.broadcast_object_list(final, src=0)
        final = final[0]
        digest = weights_digest(model)
        digests = [digest]
        if distributed:
            digests = [None] * world
            dist.all_gather_object(digests, digest)
        if out is not None and distributed:
            (out / f"rank{rank}.sha256").write_text(digest + "\n")
        results = {
            "config": cfg.to_dict(),
            "command": command if command is not None else " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "seed": cfg.seed,
            "git_commit": commit,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__,
            "platform": platform.platform(),
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
            "backend": dist.get_backend() if distributed else None,
            "world_size": world,
            "threads": torch.get_num_threads(),
            "params": int(n_params),
            "flops_per_image": flops,
            "epochs_done": len(history),
            "history": history,
            "final": final,
            "mean_epoch_time_s": float(np.mean([h["epoch_time_s"] for h in history])) if history else None,
            "wall_time_s": time.perf_counter() - t_run,
            "weights_sha256": digest,
            "rank_digests": digests,
            "ranks_in_sync": len(set(digests)) == 1,
        }
        if is_main:
            results["afno_sparsity"] = afno_sparsity(model, data["test"][cfg.img_size][0][:64].to(device))
        if cfg.examples and is_main:
            results["examples"] = _examples(model, cfg, data["test"], cfg.examples, device)
        if out is not None and is_main:
            _write_json(out / "results.json", results)
        if distributed:
            dist.barrier()
    finally:
        if created_group and dist.is_initialized():
            dist.destroy_process_group()
    return (results, model) if return_model else results


def load_model(run_dir) -> tuple[TokenMixerNet, TrainConfig]:
    """Rebuild the trained model of a run folder from its ``checkpoint.pt``."""
    ck = torch.load(Path(run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
    c = dict(ck["config"])
    c["eval_sizes"] = tuple(c.get("eval_sizes", ()))
    cfg = TrainConfig(**c)
    model = build_model(cfg)
    model.load_state_dict(ck["model"])
    return model, cfg


# --------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m afno_lite.train",
                                description="Train a tiny TokenMixerNet on inpainting or the Navier-Stokes task.")
    p.add_argument("--task", default=d.task, help=f"one of {TASKS}")
    p.add_argument("--mixer", default=d.mixer, help=f"one of {sorted(MIXERS)}")
    p.add_argument("--mixer-kw", default="{}", help='JSON dict of mixer keyword arguments, e.g. \'{"num_blocks": 4}\'')
    for name in ("embed_dim", "depth", "patch_size", "img_size", "epochs", "batch_size", "seed", "data_seed",
                 "n_train", "n_test", "mask_patch", "examples"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    for name in ("mlp_ratio", "lr", "weight_decay", "mask_ratio", "pde_T", "pde_nu"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    for name in ("max_steps", "stop_after", "threads"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    p.add_argument("--eval-sizes", type=int, nargs="*", default=[], help="extra grid sizes evaluated zero-shot")
    p.add_argument("--schedule", default=d.schedule, help=f"one of {SCHEDULES}")
    p.add_argument("--amp", default=d.amp, help=f"one of {AMP_MODES}")
    p.add_argument("--device", default=d.device, help="auto, cpu or cuda")
    p.add_argument("--out", default=None, help="run folder for checkpoint.pt and results.json")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or per-epoch lines")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        mixer_kw = json.loads(args.mixer_kw)
    except json.JSONDecodeError as e:
        print(f"error: --mixer-kw must be a JSON object: {e}", file=sys.stderr)
        return 2
    kw = {k: v for k, v in vars(args).items() if k not in ("mixer_kw", "no_progress", "eval_sizes")}
    try:
        cfg = TrainConfig(mixer_kw=mixer_kw, eval_sizes=tuple(args.eval_sizes), progress=not args.no_progress, **kw)
        res = fit(cfg)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if _dist_env()[1] == 0 and cfg.progress:
        print(json.dumps({"final": res["final"], "params": res["params"], "weights_sha256": res["weights_sha256"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
