"""The tasks of the experiment chapters, as the trainer sees them: the model of a run, its data
(cached, with an optional validation split carved from the training data), its prediction, its
loss, its test metrics and stored examples.

* ``inpainting`` and ``pde``: explained in "Inpainting with different token mixers" and
  "Resolution and PDEs" (image head, masked MSE / relative L2).
* ``classification`` (:func:`afno_lite.scenes.relation_scenes`): mean-pooled tokens and a linear
  head (``head="classify"``), cross-entropy, ``top1`` accuracy.
* ``segmentation`` (:func:`afno_lite.scenes.shape_scenes`): the image head gives
  ``p*p*K`` numbers per token, unfolded into per-pixel logits ``[B, K, H, W]``; cross-entropy
  over pixels, ``miou`` and ``pixel_acc`` from the confusion matrix of the whole test set.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from .._checks import MixerInputError
from ..data import inpainting_data, pde_data
from ..models import TokenMixerNet
from ..scenes import SHAPES, relation_scenes, shape_scenes
from .config import ConfigError, TrainConfig
from .distributed import amp_context
from .metrics import confusion_matrix, miou, psnr, relative_l2, ssim, top1
from .provenance import atomic_write, encode_array

__all__ = ["build_model", "check_grids", "make_data", "evaluate", "loss", "predict", "examples", "NUM_CLASSES",
           "LABEL_TASKS"]

#: Classes of the labelled tasks: 12 orientation sectors; background + the shapes.
NUM_CLASSES = {"classification": 12, "segmentation": len(SHAPES) + 1}
LABEL_TASKS = tuple(NUM_CLASSES)


def _in_out_chans(task: str) -> tuple[int, int]:
    if task == "inpainting":
        return 2, 1
    return 1, NUM_CLASSES.get(task, 1)


def build_model(cfg: TrainConfig) -> TokenMixerNet:
    """The backbone of a run with the run's mixer: ``head="classify"`` (mean pool + linear) for
    classification, ``head="image"`` otherwise (``K`` output channels = per-pixel logits for
    segmentation)."""
    cin, cout = _in_out_chans(cfg.task)
    head = "classify" if cfg.task == "classification" else "image"
    try:
        return TokenMixerNet(cfg.mixer, img_size=cfg.img_size, patch_size=cfg.patch_size, in_chans=cin,
                             out_chans=cout, embed_dim=cfg.embed_dim, depth=cfg.depth, mlp_ratio=cfg.mlp_ratio,
                             head=head, num_classes=cout, mixer_kw=dict(cfg.mixer_kw), pos_embed=cfg.pos_embed)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cannot build mixer {cfg.mixer!r} with mixer_kw={cfg.mixer_kw}: {e}") from e


def check_grids(cfg: TrainConfig) -> None:
    """Run the run's model on every grid it will see (``img_size``, then each eval size) on the
    ``meta`` device -- shapes only, nothing computed, no random number drawn -- so that a mixer
    that cannot take a grid (an FNO keeping more modes than the grid holds) is a
    :class:`ConfigError` before training, not a crash in the final evaluation."""
    with torch.device("meta"):
        model = build_model(cfg)
        for size in (cfg.img_size, *cfg.eval_sizes):
            try:
                model(torch.zeros(1, _in_out_chans(cfg.task)[0], size, size))
            except MixerInputError as e:
                where = "img_size" if size == cfg.img_size else "eval size"
                raise ConfigError(f"mixer {cfg.mixer!r} cannot run on {where} {size} "
                                  f"(mixer_kw={cfg.mixer_kw}): {e}") from None


_DATA_CACHE: dict = {}


def make_data(cfg: TrainConfig, progress: bool = False) -> dict:
    """``{"train": (x, y[, mask]), "test": {size: (x, y[, mask])}}`` for the run, and
    ``"val": (x, y[, mask])`` when ``cfg.n_val > 0``: the last ``n_val`` of the ``n_train``
    training samples, which are then left out of ``"train"`` (the test set is never touched).

    Cached per process; the Navier-Stokes data are also cached on disk when the environment
    variable ``AFNO_DATA_CACHE`` names a folder (the experiment driver sets it).
    ``progress=True`` shows the Navier-Stokes solver's progress bar while it makes the data
    (the other tasks' data take seconds)."""
    data = _cached_data(cfg, progress)
    if not cfg.n_val:
        return data
    train = data["train"]
    return {**data, "train": tuple(t[:-cfg.n_val] for t in train), "val": tuple(t[-cfg.n_val:] for t in train)}


def _cached_data(cfg: TrainConfig, progress: bool = False) -> dict:
    if cfg.task == "pde" and os.environ.get("AFNO_DATA_CACHE"):
        sizes = (cfg.img_size, *cfg.eval_sizes)
        key = ("pde", cfg.n_train, cfg.n_test, sizes, cfg.pde_T, cfg.pde_nu, cfg.data_seed)
        if key not in _DATA_CACHE:
            folder = Path(os.environ["AFNO_DATA_CACHE"])
            path = folder / f"pde-{hashlib.sha256(repr(key).encode()).hexdigest()[:12]}.pt"
            if path.exists():
                _DATA_CACHE[key] = torch.load(path, weights_only=True)
            else:
                _DATA_CACHE[key] = _make_data(cfg, progress)
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write(path, lambda tmp: torch.save(_DATA_CACHE[key], tmp))
        return _DATA_CACHE[key]
    return _make_data(cfg, progress)


def _scene_data(cfg: TrainConfig) -> dict:
    key = (cfg.task, cfg.n_train, cfg.n_test, cfg.img_size, cfg.data_seed, cfg.eval_sizes)
    if key not in _DATA_CACHE:
        gen = relation_scenes if cfg.task == "classification" else shape_scenes
        test = {s: gen(cfg.n_test, s, "test", cfg.data_seed) for s in (cfg.img_size, *cfg.eval_sizes)}
        _DATA_CACHE[key] = {"train": gen(cfg.n_train, cfg.img_size, "train", cfg.data_seed), "test": test}
    return _DATA_CACHE[key]


def _make_data(cfg: TrainConfig, progress: bool = False) -> dict:
    if cfg.task in LABEL_TASKS:
        return _scene_data(cfg)
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
                          fine=fine, progress=progress and "Navier-Stokes: training pairs")
            te = pde_data(cfg.n_test, grids=sizes, T=cfg.pde_T, nu=cfg.pde_nu, seed=2 * cfg.data_seed + 1, fine=fine,
                          progress=progress and "Navier-Stokes: test pairs")
            _DATA_CACHE[key] = {"train": tr[cfg.img_size], "test": {s: te[s] for s in sizes}}
    return _DATA_CACHE[key]


def predict(net, x, cfg) -> torch.Tensor:
    """The task's prediction: the network output, plus the input for the residual PDE task."""
    y = net(x).float()
    if cfg.task == "pde" and cfg.pde_residual:
        y = y + x.float()
    return y


def _predict(model, x, amp_ctx, cfg):
    with amp_ctx():
        return predict(model, x, cfg)


@torch.no_grad()
def evaluate(model: nn.Module, cfg: TrainConfig, test: dict, device=None, batch_size: int = 32,
             amp: str = "none") -> dict:
    """Test metrics per grid size of ``test`` (``{size: tensors}``): inpainting -> ``psnr``, ``ssim``
    and ``mse_masked`` of the composite (known pixels kept, missing ones predicted and clipped to
    [0, 1]); pde -> ``rel_l2``; classification -> ``top1`` and ``loss`` (cross-entropy);
    segmentation -> ``miou``, ``pixel_acc`` (from the confusion matrix of all test pixels) and
    ``loss``."""
    model = getattr(model, "module", model)
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    amp_ctx = amp_context(amp, torch.device(device))
    out = {}
    for size, tensors in test.items():
        acc: dict = {}
        conf = 0
        n = tensors[0].shape[0]
        for i in range(0, n, batch_size):
            xb = tensors[0][i:i + batch_size].to(device)
            yb = tensors[1][i:i + batch_size].to(device)
            pred = _predict(model, xb, amp_ctx, cfg)
            if cfg.task in LABEL_TASKS:
                ce = torch.nn.functional.cross_entropy(pred, yb, reduction="none")
                vals = {"loss": ce.reshape(ce.shape[0], -1).mean(1)}
                if cfg.task == "classification":
                    vals["top1"] = top1(pred, yb)
                else:
                    conf = conf + confusion_matrix(pred.argmax(1), yb, NUM_CLASSES[cfg.task])
            elif cfg.task == "inpainting":
                mb = tensors[2][i:i + batch_size].to(device)
                comp = mb * pred.clamp(0, 1) + (1 - mb) * yb
                vals = {"psnr": psnr(comp, yb), "ssim": ssim(comp, yb),
                        "mse_masked": ((comp - yb) ** 2 * mb).flatten(1).sum(1) / mb.flatten(1).sum(1)}
            else:
                vals = {"rel_l2": relative_l2(pred, yb)}
            for k, v in vals.items():
                acc.setdefault(k, []).append(v.cpu())
        out[int(size)] = {k: float(torch.cat(v).mean()) for k, v in acc.items()}
        if cfg.task == "segmentation":
            out[int(size)].update(miou=miou(conf), pixel_acc=float(conf.diagonal().sum() / conf.sum()))
    model.train(was_training)
    return out


def examples(model, cfg, test, k: int, device) -> dict:
    """The first ``k`` test samples of every grid size with the model's prediction, encoded."""
    model = getattr(model, "module", model)
    model.eval()
    out = {}
    with torch.no_grad():
        for size, tensors in test.items():
            x = tensors[0][:k].to(device)
            pred = predict(model, x, cfg).cpu()
            if cfg.task in LABEL_TASKS:    # class indices: a label per image or a label map
                ex = {"input": tensors[0][:k, 0], "target": tensors[1][:k], "prediction": pred.argmax(1)}
            else:
                ex = {"input": tensors[0][:k, 0], "target": tensors[1][:k, 0], "prediction": pred[:, 0]}
            if cfg.task == "inpainting":
                ex["mask"] = tensors[2][:k, 0]
            out[str(size)] = {name: encode_array(t.numpy()) for name, t in ex.items()}
    model.train()
    return out


def loss(pred: torch.Tensor, batch, cfg: TrainConfig) -> torch.Tensor:
    """The training loss: masked MSE for inpainting (``batch = (x, y, mask)``), mean relative L2
    for the PDE task (``batch = (x, y)``), cross-entropy for classification (per image) and
    segmentation (per pixel)."""
    if cfg.task in LABEL_TASKS:
        return torch.nn.functional.cross_entropy(pred, batch[1])
    if cfg.task == "inpainting":
        y, m = batch[1], batch[2]
        return ((pred - y) ** 2 * m).sum() / m.sum()
    return relative_l2(pred, batch[1]).mean()
