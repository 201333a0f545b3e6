"""``fit(config) -> results``: one training run made of named steps -- :func:`setup`,
:func:`train_one_epoch`, :func:`evaluate_epoch`, :func:`save_checkpoint`, :func:`finish`.

Explained in the chapters "Inpainting with different token mixers" (a run) and "Scaling out"
(the same steps under ``torchrun``: one process per rank, DistributedDataParallel, a
``DistributedSampler`` that splits every global batch into equal shards, evaluation and
checkpoints on rank 0 only).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..models import TokenMixerNet, count_parameters
from .config import ARCH_FIELDS, ConfigError, TrainConfig, as_config, validate_config
from .diagnostics import afno_sparsity, model_flops, weights_digest
from .distributed import _launched_by_torchrun, amp_context, dist_env, resolve_device, sum_over_ranks
from .provenance import atomic_write, code_hash, git_commit, git_dirty, rng_state, set_rng_state, write_json
from .tasks import build_model, check_grids, evaluate, examples, loss, make_data, predict

__all__ = ["fit", "load_model", "setup", "train_one_epoch", "evaluate_epoch", "save_checkpoint", "finish"]


@dataclass
class Run:
    """The state of one run between its steps."""

    cfg: TrainConfig
    world: int
    rank: int
    distributed: bool
    device: torch.device
    out: Path | None
    commit: str
    created_group: bool = False
    data: dict = field(default_factory=dict)
    model: TokenMixerNet | None = None
    net: torch.nn.Module | None = None
    opt: object = None
    sched: object = None
    sampler: object = None
    loader: object = None
    steps_per_epoch: int = 0
    start_epoch: int = 0
    history: list = field(default_factory=list)
    scaler: object = None
    n_params: int = 0
    flops: dict = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def ckpt_path(self) -> Path | None:
        return self.out / "checkpoint.pt" if self.out is not None else None


def _start(cfg: TrainConfig) -> Run:
    """Process group, device, threads, output folder."""
    import torch.distributed as dist

    commit = git_commit()          # the code this run starts from
    world, rank, local = dist_env()
    # A torchrun launch uses a process group even with one process (so nccl/gloo are exercised).
    distributed = world > 1 or _launched_by_torchrun()
    device, backend = resolve_device(cfg.device, local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    run = Run(cfg, world, rank, distributed, device, Path(cfg.out) if cfg.out else None, commit)
    if distributed and not dist.is_initialized():
        dist.init_process_group(backend=backend)
        run.created_group = True
    return run


def _check_run(run: Run) -> None:
    cfg = run.cfg
    if cfg.amp == "fp16" and run.device.type != "cuda":
        raise ConfigError("amp='fp16' needs a CUDA device here (the trainer scales the fp16 loss "
                          "with a CUDA GradScaler); use amp='bf16' on the CPU")
    if cfg.batch_size % run.world:
        raise ConfigError(f"batch_size={cfg.batch_size} must be divisible by the number of processes ({run.world})")
    check_grids(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if run.out is not None and run.is_main:
        try:
            run.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"out={str(run.out)!r} cannot be created as a folder: "
                              f"{e.strerror}") from e
        probe = run.out / f".write-test.{os.getpid()}"   # before training, not at the first checkpoint
        try:
            probe.touch()
            probe.unlink()
        except OSError as e:
            raise ConfigError(f"out={str(run.out)!r} cannot be written (checkpoint.pt, results.json): "
                              f"{e.strerror}") from e


def _schedule(cfg: TrainConfig, total_steps: int):
    if cfg.schedule == "cosine":
        return lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))
    return lambda s: 1.0


def _resume(run: Run) -> None:
    cfg, path = run.cfg, run.ckpt_path
    if not path.exists():
        raise ConfigError(f"resume=True but there is no checkpoint at {path}; run once without resume")
    # onto the CPU: the RNG states must stay CPU byte tensors (torch.set_rng_state refuses
    # others); load_state_dict copies the weights and optimizer state to the run's device
    ck = torch.load(path, map_location="cpu", weights_only=True)
    # compared as JSON: mixer_kw={"modes": (2, 2)} from Python is [2, 2] from the command line
    old = json.loads(json.dumps({**TrainConfig().to_dict(), **ck["config"]}))   # fields added since: defaults
    new = json.loads(json.dumps(cfg.to_dict()))
    diff = [k for k in ARCH_FIELDS if old.get(k) != new.get(k)]
    if diff:
        raise ConfigError(f"cannot resume: the checkpoint was made with different {diff} "
                          f"(checkpoint: { {k: old.get(k) for k in diff} }, now: { {k: new.get(k) for k in diff} })")
    run.model.load_state_dict(ck["model"])
    run.opt.load_state_dict(ck["optimizer"])
    run.sched.load_state_dict(ck["scheduler"])
    run.start_epoch, run.history = ck["epoch"], ck["history"]
    set_rng_state(ck["rng"])
    if run.start_epoch >= cfg.epochs and run.is_main and cfg.progress:
        print(f"checkpoint already has {run.start_epoch} epochs >= epochs={cfg.epochs}; nothing to train")


def setup(run: Run) -> Run:
    """Seeds, data, model, optimizer, learning-rate schedule, sharded loader; resume if asked."""
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    cfg = run.cfg
    _check_run(run)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    run.data = make_data(cfg, progress=cfg.progress and run.is_main)
    run.model = build_model(cfg).to(run.device)
    run.n_params = count_parameters(run.model)
    run.flops = model_flops(run.model)
    run.opt = torch.optim.AdamW(run.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ds = TensorDataset(*run.data["train"])
    run.sampler = DistributedSampler(ds, num_replicas=run.world, rank=run.rank, shuffle=True, seed=cfg.seed,
                                     drop_last=True)
    run.loader = DataLoader(ds, batch_size=cfg.batch_size // run.world, sampler=run.sampler, drop_last=True)
    run.steps_per_epoch = len(run.loader) if cfg.max_steps is None else min(len(run.loader), cfg.max_steps)
    if run.steps_per_epoch < 1:
        n = f"n_train - n_val = {len(ds)} training samples give" if cfg.n_val else f"n_train={cfg.n_train} gives"
        raise ConfigError(f"{n} no full batch of batch_size={cfg.batch_size}; lower batch_size or raise n_train")
    total = run.steps_per_epoch * cfg.epochs
    run.sched = torch.optim.lr_scheduler.LambdaLR(run.opt, _schedule(cfg, total))
    if cfg.resume:
        _resume(run)
    ids = [run.device.index] if run.device.type == "cuda" else None
    run.net = DDP(run.model, device_ids=ids) if run.distributed else run.model
    run.scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
    return run


def train_one_epoch(run: Run, epoch: int) -> tuple[float, float]:
    """One pass over the (sharded) training set; returns the mean loss over all ranks and the seconds."""
    from tqdm import tqdm

    cfg, amp_ctx = run.cfg, amp_context(run.cfg.amp, run.device)
    run.sampler.set_epoch(epoch)
    run.net.train()
    t0 = time.perf_counter()
    loss_sum, n_steps = 0.0, 0
    bar = tqdm(run.loader, total=run.steps_per_epoch, desc=f"{cfg.mixer} epoch {epoch + 1}/{cfg.epochs}",
               disable=not (cfg.progress and run.is_main), leave=False, mininterval=1.0, file=sys.stderr)
    for step, batch in enumerate(bar):
        if step >= run.steps_per_epoch:
            break
        batch = [b.to(run.device) for b in batch]
        with amp_ctx():
            pred = predict(run.net, batch[0], cfg)
        value = loss(pred.float(), batch, cfg)
        run.opt.zero_grad(set_to_none=True)
        if run.scaler is not None:
            run.scaler.scale(value).backward()
            run.scaler.step(run.opt)
            run.scaler.update()
        else:
            value.backward()
            run.opt.step()
        run.sched.step()
        lv = value.detach().item()
        loss_sum, n_steps = loss_sum + lv, n_steps + 1
        bar.set_postfix(loss=f"{lv:.4g}", refresh=False)
    bar.close()
    train_time = time.perf_counter() - t0
    totals = sum_over_ranks([loss_sum, n_steps], run.device, run.distributed)
    return float(totals[0] / totals[1]), train_time


def evaluate_epoch(run: Run, epoch: int, train_loss: float, train_time: float) -> None:
    """Test metrics at the training size on rank 0 -- and ``val_*`` metrics on the validation split
    when there is one -- appended to the history (shared with every rank)."""
    import torch.distributed as dist

    cfg = run.cfg
    if run.is_main:
        t1 = time.perf_counter()
        metrics = evaluate(run.model, cfg, {cfg.img_size: run.data["test"][cfg.img_size]}, run.device, amp=cfg.amp)
        rec = {"epoch": epoch + 1, "train_loss": train_loss, "epoch_time_s": train_time,
               "eval_time_s": time.perf_counter() - t1, "test": {str(k): v for k, v in metrics.items()}}
        msg = ", ".join(f"{k} {v:.4g}" for k, v in metrics[cfg.img_size].items())
        if "val" in run.data:
            val = evaluate(run.model, cfg, {cfg.img_size: run.data["val"]}, run.device, amp=cfg.amp)
            rec["val"] = {f"val_{k}": v for k, v in val[cfg.img_size].items()}
            msg += ", " + ", ".join(f"{k} {v:.4g}" for k, v in rec["val"].items())
        run.history.append(rec)
        if cfg.progress:
            print(f"[{cfg.mixer}] epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss:.4g}, test {msg}, "
                  f"{train_time:.1f} s", flush=True)
    if run.distributed:
        obj = [run.history]
        dist.broadcast_object_list(obj, src=0)
        run.history = obj[0]


def save_checkpoint(run: Run, epoch: int) -> None:
    """Model, optimizer, scheduler, epoch, history and RNG states on rank 0, written atomically."""
    if run.ckpt_path is None or not run.is_main:
        return
    state = {"model": run.model.state_dict(), "optimizer": run.opt.state_dict(),
             "scheduler": run.sched.state_dict(), "epoch": epoch + 1, "history": run.history,
             "rng": rng_state(), "config": run.cfg.to_dict(), "world_size": run.world}
    atomic_write(run.ckpt_path, lambda tmp: torch.save(state, tmp))


def _final_metrics(run: Run) -> tuple[dict, str, list]:
    import torch.distributed as dist

    final = [None]
    if run.is_main:   # the other grid sizes (zero-shot) are evaluated once, at the end
        final[0] = {str(k): v for k, v in evaluate(run.model, run.cfg, run.data["test"], run.device,
                                                   amp=run.cfg.amp).items()}
    if run.distributed:
        dist.broadcast_object_list(final, src=0)
    digest = weights_digest(run.model)
    digests = [digest]
    if run.distributed:
        digests = [None] * run.world
        dist.all_gather_object(digests, digest)
    if run.out is not None and run.distributed:
        (run.out / f"rank{run.rank}.sha256").write_text(digest + "\n")
    return final[0], digest, digests


def finish(run: Run, command: str | None, wall_time_s: float) -> dict:
    """The results dict (config, provenance, history, final metrics, diagnostics), written on rank 0."""
    import torch.distributed as dist

    cfg, device, history = run.cfg, run.device, run.history
    final, digest, digests = _final_metrics(run)
    results = {
        "config": cfg.to_dict(),
        "command": command if command is not None else " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "seed": cfg.seed, "git_commit": run.commit, "git_dirty": git_dirty(), "code_hash": code_hash(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__, "platform": platform.platform(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "backend": dist.get_backend() if run.distributed else None,
        "world_size": run.world, "threads": torch.get_num_threads(),
        "params": int(run.n_params), "flops_per_image": run.flops,
        "epochs_done": len(history), "history": history, "final": final,
        "val": history[-1].get("val") if history else None,   # validation split of the last epoch
        "mean_epoch_time_s": float(np.mean([h["epoch_time_s"] for h in history])) if history else None,
        "wall_time_s": wall_time_s,
        "weights_sha256": digest, "rank_digests": digests, "ranks_in_sync": len(set(digests)) == 1,
    }
    if run.is_main:
        results["afno_sparsity"] = afno_sparsity(run.model, run.data["test"][cfg.img_size][0][:64].to(device))
        if cfg.examples:
            results["examples"] = examples(run.model, cfg, run.data["test"], cfg.examples, device)
        if run.out is not None:
            write_json(run.out / "results.json", results)
    if run.distributed:
        dist.barrier()
    return results


def fit(config, return_model: bool = False, command: str | None = None):
    """Train one run and return its results dict (and the trained model if ``return_model``).

    ``config`` is a :class:`TrainConfig` or a dict of its fields. Under ``torchrun`` (with any
    number of processes) or whenever ``WORLD_SIZE > 1``, the process group is initialised here
    unless it already exists (and destroyed at the end if it was created here).
    """
    import torch.distributed as dist

    cfg = validate_config(as_config(config))
    run = _start(cfg)
    try:
        setup(run)
        t_run = time.perf_counter()
        done = 0
        for epoch in range(run.start_epoch, cfg.epochs):
            if cfg.stop_after is not None and done >= cfg.stop_after:
                break
            train_loss, train_time = train_one_epoch(run, epoch)
            evaluate_epoch(run, epoch, train_loss, train_time)
            save_checkpoint(run, epoch)
            done += 1
        results = finish(run, command, time.perf_counter() - t_run)
    finally:
        if run.created_group and dist.is_initialized():
            dist.destroy_process_group()
    return (results, run.model) if return_model else results


def load_model(run_dir) -> tuple[TokenMixerNet, TrainConfig]:
    """Rebuild the trained model of a run folder from its ``checkpoint.pt`` (``FileNotFoundError``
    naming ``run_dir`` when there is none)."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"run_dir={str(run_dir)!r} holds no checkpoint.pt; a run "
                                f"writes one after every epoch when trained with out=run_dir")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    c = dict(ck["config"])
    c["eval_sizes"] = tuple(c.get("eval_sizes", ()))
    cfg = TrainConfig(**c)
    model = build_model(cfg)
    model.load_state_dict(ck["model"])
    return model, cfg
