"""Trainer for the experiment chapters: ``fit(config) -> results`` and ``python -m afno_lite.train``.

Used in chapters "Inpainting with different token mixers", "Ablations", "Resolution and
PDEs", "Classification and segmentation" and explained in "Scaling out" (torchrun,
DistributedDataParallel, mixed precision).

* Tasks: ``inpainting`` (masked-patch inpainting of grayscale crops, :func:`afno_lite.data.inpainting_data`),
  ``pde`` (Navier-Stokes ``w(0) -> w(T)``, :mod:`afno_lite.pde`), ``classification`` and
  ``segmentation`` (generated scenes, :mod:`afno_lite.scenes`; top-1 and mIoU), all on the same
  tiny :class:`afno_lite.models.TokenMixerNet` backbone with the mixer chosen by name
  (``"identity"`` is the baseline without token mixing).
* ``n_val > 0`` holds the last ``n_val`` training samples out as a validation split, scored
  after every epoch as ``val_*`` metrics (``results["val"]``); the test set is never used to tune.
* Seeded: the same config gives the same weights (bit for bit on one machine); the data come
  from ``data_seed``, the initialisation and the batch order from ``seed``.
* ``device="auto"`` (the default): the GPU when one is present, else the CPU; ``amp="bf16"``
  runs the forward pass under ``torch.autocast`` (the spectral mixers compute their FFTs in
  float32).
* ``out`` gets ``checkpoint.pt`` (model, optimizer, scheduler, epoch, RNG states) after every
  epoch and ``results.json``; ``resume=True`` continues from the checkpoint.
* Runs unchanged under ``torchrun --nproc_per_node=P``: one process per rank,
  DistributedDataParallel (``gloo`` on CPU, ``nccl`` on GPU), a ``DistributedSampler`` that
  splits every global batch of ``batch_size`` samples into ``P`` equal shards, logging,
  evaluation and checkpoints on rank 0 only. Every rank writes the SHA-256 of its final
  weights to ``out/rank<r>.sha256`` so one can check that the replicas stayed identical.

The package, one module per concern: :mod:`~afno_lite.train.config` (the run's configuration
and its validation), :mod:`~afno_lite.train.metrics`, :mod:`~afno_lite.train.tasks` (model,
data, prediction, evaluation), :mod:`~afno_lite.train.diagnostics` (FLOPs, sparsity, weight
digests), :mod:`~afno_lite.train.provenance` (git commit, code hash, atomic writes, RNG states,
array encoding), :mod:`~afno_lite.train.distributed` (device, ``torchrun``, mixed precision),
:mod:`~afno_lite.train.fit` (``fit`` = setup, one epoch, evaluate, checkpoint, finish) and
:mod:`~afno_lite.train.cli` (the command line, generated from :class:`TrainConfig`).

Example::

    python -m afno_lite.train --task inpainting --mixer afno --epochs 3 --out runs/afno
    torchrun --nproc_per_node=2 -m afno_lite.train --task pde --mixer fno --epochs 2 --out runs/fno2
"""
from __future__ import annotations

from .cli import main, parser
from .config import (
    AMP_MODES,
    ARCH_FIELDS,
    DEVICES,
    SCHEDULES,
    TASKS,
    ConfigError,
    TrainConfig,
    as_config,
    validate_config,
)
from .diagnostics import afno_sparsity, model_flops, weights_digest
from .distributed import _launched_by_torchrun, amp_context, dist_env, resolve_device
from .fit import evaluate_epoch, finish, fit, load_model, save_checkpoint, setup, train_one_epoch
from .metrics import confusion_matrix, miou, psnr, relative_l2, ssim, top1
from .provenance import (
    code_hash,
    decode_array,
    encode_array,
    git_commit,
    git_dirty,
    rng_state,
    set_rng_state,
    write_json,
)
from .tasks import build_model, evaluate, make_data, predict

# former private names, kept for code written against the single-module trainer
_git_commit = git_commit
_dist_env = dist_env

__all__ = ["TrainConfig", "ConfigError", "TASKS", "AMP_MODES", "SCHEDULES", "DEVICES", "ARCH_FIELDS", "fit",
           "build_model", "make_data", "evaluate", "predict", "psnr", "ssim", "relative_l2", "top1", "miou",
           "confusion_matrix", "model_flops",
           "afno_sparsity", "weights_digest", "encode_array", "decode_array", "load_model", "main", "parser",
           "validate_config", "as_config", "resolve_device", "dist_env", "amp_context", "git_commit", "git_dirty",
           "code_hash",
           "rng_state", "set_rng_state", "write_json", "setup", "train_one_epoch", "evaluate_epoch",
           "save_checkpoint", "finish", "_launched_by_torchrun"]
