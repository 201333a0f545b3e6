"""The configuration of a training run: :class:`TrainConfig`, its validation and
:class:`ConfigError`.

Explained in the chapters "Inpainting with different token mixers" (what a run is) and
"Scaling out" (the same run under ``torchrun``). The command line of ``python -m afno_lite.train``
is generated from this dataclass (:mod:`afno_lite.train.cli`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import asdict, dataclass, field
from numbers import Integral
from pathlib import Path

import torch

from .._checks import (
    MixerConfigError,
    check_choice,
    check_fraction_open,
    check_nonnegative,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
)
from ..models import POS_EMBEDS
from ..registry import SPECS
from ..scenes import relation_displacements

__all__ = ["TrainConfig", "ConfigError", "TASKS", "AMP_MODES", "SCHEDULES", "DEVICES", "HELP", "validate_config",
           "as_config", "ARCH_FIELDS"]


TASKS = ("inpainting", "pde", "classification", "segmentation")
AMP_MODES = ("none", "bf16", "fp16")
SCHEDULES = ("cosine", "constant")
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(MixerConfigError):
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
    pos_embed: str = "learned"       # or "none": no position embedding (a control for resolution transfer)
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
    n_val: int = 0                   # validation samples carved from the n_train training samples (never the test set)
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


#: Help of the command-line options that need more than their name (the others are generated).
HELP = {
    "task": f"one of {TASKS}",
    "n_val": "validation samples held out of the n_train training samples (reported as val_* metrics)",
    "pos_embed": "position embedding: " + " or ".join(POS_EMBEDS) + " (none: only the mixer sees positions)",
    "mixer": "a registered mixer: " + ", ".join(sorted(SPECS)) + " (identity: no token mixing)",
    "mixer_kw": 'JSON dict of mixer keyword arguments, e.g. \'{"num_blocks": 4}\'',
    "eval_sizes": "extra grid sizes evaluated zero-shot",
    "schedule": f"one of {SCHEDULES}",
    "amp": f"one of {AMP_MODES}",
    "device": "auto (the GPU when one is present, else the CPU), cpu or cuda",
    "out": "run folder for checkpoint.pt and results.json (created if missing)",
    "resume": "continue from OUT/checkpoint.pt",
    "progress": "no progress bars, per-epoch lines or final summary line",
}

#: Fields a checkpoint must share with the config that resumes it.
ARCH_FIELDS = ("task", "mixer", "mixer_kw", "embed_dim", "depth", "mlp_ratio", "pos_embed", "patch_size", "img_size",
               "batch_size", "n_train", "n_test", "mask_ratio", "mask_patch", "pde_T", "pde_nu", "seed",
               "data_seed", "schedule", "lr", "weight_decay", "pde_residual", "n_val")


@contextlib.contextmanager
def _as_config_errors():
    """The shared validators of :mod:`afno_lite._checks` raise ``MixerConfigError``; a run's
    configuration raises its subclass :class:`ConfigError` with the same message."""
    try:
        yield
    except ConfigError:
        raise
    except MixerConfigError as e:
        raise ConfigError(str(e)) from None


def _check_numbers(cfg: TrainConfig) -> None:
    for name in ("embed_dim", "depth", "patch_size", "img_size", "epochs", "batch_size", "n_train", "n_test",
                 "mask_patch"):
        check_positive_int(getattr(cfg, name), name)
    for name in ("max_steps", "stop_after", "threads"):
        if getattr(cfg, name) is not None:
            check_positive_int(getattr(cfg, name), name, "a positive integer or None")
    check_nonnegative_int(cfg.examples, "examples")
    check_nonnegative_int(cfg.n_val, "n_val")
    if cfg.n_val >= cfg.n_train:
        raise ConfigError(f"n_val={cfg.n_val} must be smaller than n_train={cfg.n_train} (it is carved from it)")
    for name in ("lr", "pde_T", "pde_nu", "mlp_ratio"):
        check_positive(getattr(cfg, name), name)
    check_nonnegative(cfg.weight_decay, "weight_decay")
    check_fraction_open(cfg.mask_ratio, "mask_ratio")
    for name in ("seed", "data_seed"):
        check_nonnegative_int(getattr(cfg, name), name)


#: Smallest inpainting image: SSIM's 11x11 window must fit (:func:`~afno_lite.train.metrics.ssim`).
MIN_INPAINTING_SIZE = 11
#: The Navier-Stokes data are solved on a grid of at least this side and subsampled
#: (:func:`afno_lite.train.tasks.make_data`); the solver's initial fields stop at 256x256.
PDE_MIN_FINE, PDE_MAX_SIZE = 64, 256


def _eval_sizes(cfg: TrainConfig) -> tuple:
    sizes = cfg.eval_sizes
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ConfigError(f"eval_sizes must be a sequence of grid sizes (integers), got {sizes!r}")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, Integral):
            raise ConfigError(f"eval_sizes must hold integer grid sizes, got {s!r} in {sizes!r}")
    return tuple(int(s) for s in sizes)


def _check_task_sizes(cfg: TrainConfig, sizes: tuple) -> None:
    if cfg.task == "inpainting":
        for s in (cfg.img_size, *sizes):
            if s % cfg.mask_patch or s // cfg.mask_patch < 2 or s < MIN_INPAINTING_SIZE:
                raise ConfigError(
                    f"inpainting sizes must be multiples of mask_patch={cfg.mask_patch} holding "
                    f"at least 2 mask squares per side, and >= {MIN_INPAINTING_SIZE} (the SSIM "
                    f"window), got {s}")
    if cfg.task == "segmentation" and min((cfg.img_size, *sizes)) < 16:
        raise ConfigError(f"segmentation scenes need img_size (and eval sizes) >= 16, got img_size={cfg.img_size}, "
                          f"eval_sizes={sizes}")
    if cfg.task == "classification":
        for s in (cfg.img_size, *sizes):
            try:
                relation_displacements(s)
            except MixerConfigError as e:
                raise ConfigError(f"img_size={s} cannot hold the classification scenes: {e}") from None
    if cfg.task == "pde":
        fine = max(cfg.img_size, *sizes, PDE_MIN_FINE)
        for s in (cfg.img_size, *sizes):
            if s % 2 or s < 4 or fine % s or fine > PDE_MAX_SIZE:
                raise ConfigError(
                    f"pde grid sizes must be even, >= 4, <= {PDE_MAX_SIZE} and divide the solver's "
                    f"grid max({PDE_MIN_FINE}, sizes) = {fine}, got img_size={cfg.img_size}, "
                    f"eval_sizes={sizes}")


def _check_sizes(cfg: TrainConfig) -> tuple:
    if cfg.img_size % cfg.patch_size:
        raise ConfigError(f"img_size={cfg.img_size} must be divisible by patch_size={cfg.patch_size}")
    sizes = _eval_sizes(cfg)
    for s in sizes:
        if s < 1 or s % cfg.patch_size:
            raise ConfigError(f"every eval size must be a positive multiple of patch_size={cfg.patch_size}, got {s}")
    _check_task_sizes(cfg, sizes)
    return sizes


def _check_out(out) -> str | None:
    """``out`` is ``None`` or a folder path that exists as a folder or can be created; returned as
    a ``str`` (the config is written to JSON and to checkpoints loaded with ``weights_only``)."""
    if out is None:
        return None
    if isinstance(out, os.PathLike):
        out = os.fspath(out)
    if not isinstance(out, str) or not out:
        raise ConfigError(f"out must be a folder path (str or os.PathLike) or None, got {out!r}")
    path = Path(out)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                where = "" if p == path else f" (its parent {str(p)!r} is a file)"
                raise ConfigError(f"out must be a folder for checkpoint.pt and results.json, but "
                                  f"{str(out)!r} is not one{where}")
            break
    return out


def validate_config(cfg: TrainConfig) -> TrainConfig:
    """Raise :class:`ConfigError` naming the first bad field; return ``cfg`` (``eval_sizes`` as a
    tuple of ints, ``out`` as a ``str``)."""
    if not isinstance(cfg, TrainConfig):
        raise ConfigError(f"config must be a TrainConfig or a dict of its fields, got {type(cfg).__name__}")
    with _as_config_errors():
        check_choice(cfg.task, "task", TASKS)
        if not isinstance(cfg.mixer, str) or cfg.mixer not in SPECS:
            raise ConfigError(f"mixer must be one of {sorted(SPECS)}, got {cfg.mixer!r}")
        if not isinstance(cfg.mixer_kw, dict):
            raise ConfigError(f"mixer_kw must be a dict of keyword arguments for the mixer, got {cfg.mixer_kw!r}")
        _check_numbers(cfg)
        check_choice(cfg.schedule, "schedule", SCHEDULES)
        check_choice(cfg.pos_embed, "pos_embed", POS_EMBEDS)
        check_choice(cfg.amp, "amp", AMP_MODES)
        if cfg.device not in DEVICES:
            hint = ""
            if isinstance(cfg.device, str) and cfg.device.startswith("cuda:"):
                i = cfg.device[5:]
                hint = f" (for GPU {i}: set CUDA_VISIBLE_DEVICES={i} and use device='cuda')"
            raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {cfg.device!r}{hint}")
    cfg.out = _check_out(cfg.out)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was requested but no CUDA device is available; use device='auto' or 'cpu'")
    cfg.eval_sizes = _check_sizes(cfg)
    if cfg.resume and not cfg.out:
        raise ConfigError("resume=True needs out= (the run folder holding checkpoint.pt)")
    for name in ("progress", "resume", "pde_residual"):
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(f"{name} must be a boolean, got {getattr(cfg, name)!r}")
    return cfg


def as_config(config) -> TrainConfig:
    """A copy of ``config`` (a :class:`TrainConfig` or a dict of its fields) as a :class:`TrainConfig`."""
    if isinstance(config, TrainConfig):
        if not isinstance(config.mixer_kw, dict):
            raise ConfigError(f"mixer_kw must be a dict of keyword arguments for the mixer, "
                              f"got {config.mixer_kw!r}")
        return dataclasses.replace(config, mixer_kw=dict(config.mixer_kw))
    if isinstance(config, dict):
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; valid fields: {sorted(names)}")
        return TrainConfig(**config)
    raise ConfigError(f"config must be a TrainConfig or a dict of its fields, got {type(config).__name__}")
