"""The full runs behind the experiment chapters: ``python -m afno_lite.experiments GROUP``.

``GROUP`` is ``all`` or one of :data:`GROUPS`. ``make experiments`` runs
``python -m afno_lite.experiments all`` (the groups of :data:`SHIPPED`) and writes
``notebooks/results/<group>.json``, which chapters "Inpainting", "Ablations", "Resolution
and PDEs" and "Classification and segmentation" plot. Every file records the command, the seeds, the
git commit, whether the tree was dirty, the hash of the ``afno_lite`` sources, the date and the
full configuration of every run; nothing in them is edited by hand.

The seed rule (:mod:`afno_lite.evidence`, book section "How we measure") decides the seeds:

* ``inpainting``: 64x64 images, 4x4 patches (a 16x16 token grid). First a learning-rate sweep
  (:data:`LRS`, seed 0) per mixer, scored on a validation split carved from the training
  images (``n_val``; never the test set); then attention, GFN, FNO and AFNO at their own best
  rate, five seeds each (the headline comparison), and two parameter-matched variants
  (:data:`MATCHED`), three seeds each.
* ``ablations``: AFNO's sparsity threshold, number of blocks, depth, the paper's hard
  thresholding (keep 35 % of the low modes) against soft thresholding and the full AFNO, and
  adaptive (MLP) vs linear weights; three seeds per setting, at AFNO's selected rate. The base
  runs are the AFNO runs of ``inpainting`` (shared folders).
* ``resolution``: the Navier-Stokes task trained at 32x32, evaluated at 32x32 and zero-shot
  at 64x64, for FNO, AFNO, GFN and attention, each with the learned position embedding and
  without one (the control: then only the mixer sees positions); three seeds each.
* ``classification``: the relation scenes (:func:`afno_lite.scenes.relation_scenes`), 8x8
  tokens; attention, GFN, FNO, AFNO and the network without token mixing; first a
  learning-rate sweep (:data:`CLS_LRS`, seed 0, scored by validation top-1) per mixer, then
  each at its own best rate, three seeds each.
* ``segmentation``: the shape scenes (:func:`afno_lite.scenes.shape_scenes`) on a 32x32
  token grid; AFNO keeping 100 %, 35 % and 25 % of the modes, GFN, FNO and attention; three
  seeds each; then the time and peak memory of one training step at 32x32, 64x64 and 128x128
  tokens (:mod:`afno_lite.bench.stepcost`; predicted, and labelled so, where over budget).

Runs go to ``runs/experiments/<key>/`` (checkpoint + results), ``key`` a hash of the full
configuration and of the ``afno_lite`` sources: a run whose folder already holds results is
reused, also across groups, and a change to the library never reuses a run made by other code
(``--fresh`` retrains everything). ``--jobs`` runs that many trainings in parallel, one thread
each. ``--fast`` shrinks everything to a smoke test and writes to ``runs/experiments_fast/``
instead of ``notebooks/results/``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

__all__ = ["INPAINTING_BASE", "PDE_BASE", "FAST_OVERRIDES", "MIXER_KW", "GROUPS", "SHIPPED", "LRS", "CLS_LRS",
           "MATCHED", "plan", "setting_runs", "select_lrs", "run_group", "results_dir", "load_results", "main"]

REPO = Path(__file__).resolve().parents[1]

#: The inpainting setting shared by chapters "Inpainting" and "Ablations": 64x64 grayscale crops,
#: 4x4 patches (a 16x16 token grid, a 16x9 rfft half-plane), half of the 4x4 squares hidden.
#: 1,024 training images after carving out the 128 validation images of the learning-rate sweep.
INPAINTING_BASE = dict(task="inpainting", embed_dim=32, depth=4, mlp_ratio=2.0, patch_size=4, img_size=64,
                       epochs=8, batch_size=16, lr=3e-3, weight_decay=0.01, n_train=1152, n_val=128, n_test=256,
                       mask_ratio=0.5, mask_patch=4)

#: The Navier-Stokes setting of chapter "Resolution and PDEs": one token per grid point (patch 1),
#: so every layer except the token mixer (and the position embedding, when there is one) acts
#: pointwise and the network can run on any grid.
PDE_BASE = dict(task="pde", embed_dim=32, depth=4, mlp_ratio=2.0, patch_size=1, img_size=32, eval_sizes=(64,),
                epochs=6, batch_size=8, lr=3e-3, weight_decay=0.01, n_train=256, n_test=64, pde_T=1.0,
                pde_nu=1e-3)

#: What ``--fast`` (and the chapters' live runs under AFNO_FAST=1) change: two epochs, depth 2,
#: n_train of 64 to 448, 32x32 images for inpainting (8x8 tokens) and segmentation (16x16).
FAST_OVERRIDES = {"inpainting": dict(epochs=2, img_size=32, n_train=320, n_val=64, n_test=64, depth=2),
                  "pde": dict(epochs=2, n_train=64, n_test=16, depth=2),
                  "classification": dict(epochs=2, n_train=448, n_val=64, n_test=128, depth=2),
                  "segmentation": dict(epochs=2, img_size=32, n_train=64, n_test=32, depth=2)}

#: Mixer keyword arguments used everywhere (attention: 4 heads of 8 channels).
#: AFNO: NVIDIA's AFNO2D defaults, num_blocks=8 and sparsity_threshold=0.01 (ortho FFT).
AFNO_KW = {"sparsity_threshold": 0.01, "num_blocks": 8}
MIXER_KW = {"attention": {"num_heads": 4}, "gfn": {}, "fno": {}, "afno": AFNO_KW}
PDE_MIXER_KW = {"attention": {"num_heads": 4}, "gfn": {}, "fno": {"modes": (8, 8)}, "afno": AFNO_KW}

#: The classification miniature (:func:`afno_lite.scenes.relation_scenes`): 32x32 images, 4x4
#: patches (8x8 tokens), 12 classes, 5,120 training images after the 256 validation images.
#: Each mixer trains at the rate its own sweep over :data:`CLS_LRS` selected (seed 0, validation
#: top-1); ``lr`` here is only the default of a run planned without a sweep.
CLS_BASE = dict(task="classification", embed_dim=32, depth=4, mlp_ratio=2.0, patch_size=4, img_size=32, epochs=15,
                batch_size=16, lr=1e-3, weight_decay=0.01, n_train=5376, n_val=256, n_test=1024)
#: The classification sweep: every mixer at each rate, seed 0, scored by validation top-1.
CLS_LRS = (3e-4, 1e-3, 3e-3)
CLS_MIXERS = ("attention", "gfn", "fno", "afno", "identity")
#: The segmentation miniature (:func:`afno_lite.scenes.shape_scenes`): 64x64 images, 2x2 patches,
#: a 32x32 token grid (1,024 tokens). One rate for every setting (no sweep: at 1,024 tokens
#: attention's runs dominate the cost of the group; a limitation, stated in the chapter).
SEG_BASE = dict(task="segmentation", embed_dim=32, depth=4, mlp_ratio=2.0, patch_size=2, img_size=64, epochs=8,
                batch_size=16, lr=3e-3, weight_decay=0.01, n_train=384, n_test=128)
#: The segmentation settings: AFNO keeping 100 %, 35 % and 25 % of the modes (the paper's
#: AFNO-100 % / AFNO-25 % and its 35 % ablation), GFN, FNO (8x8 modes) and attention.
SEG_SETTINGS = {"afno-100": ("afno", AFNO_KW), "afno-35": ("afno", dict(AFNO_KW, keep_fraction=0.35)),
                "afno-25": ("afno", dict(AFNO_KW, keep_fraction=0.25)), "gfn": ("gfn", {}),
                "fno": ("fno", {"modes": (8, 8)}), "attention": ("attention", {"num_heads": 4})}
#: Step time and memory of the segmentation model are measured on these token grids (sides).
COST_GRIDS = (32, 64, 128)
COST_SETTINGS = ("afno-100", "afno-25", "attention")

GROUPS = ("inpainting", "ablations", "resolution", "classification", "segmentation")
#: What ``all`` (``make experiments``) runs: every group; the chapters read each one's file.
SHIPPED = GROUPS
INPAINT_MIXERS = ("attention", "gfn", "fno", "afno")
HEADLINE_SEEDS = (0, 1, 2, 3, 4)   # the headline comparison: five seeds (the seed rule)
SEEDS = (0, 1, 2)                  # every other setting: three
#: The learning-rate sweep: every mixer at each rate, seed 0, scored by validation PSNR.
LRS = (1e-3, 3e-3, 1e-2, 3e-2)
SWEEP_SEED = 0
#: Parameter-matched variants beside the defaults: ``name -> (mixer, mixer_kw, matched to)``.
#: AFNO with one block has exactly attention's parameter count; no FNO matches GFN's: FNO
#: keeping 2x1 modes (|k_x| <= 2, k_y <= 1) has 1.7x as many in the whole network (FNO's
#: default keeps every mode and has 20x more).
MATCHED = {"afno-k1": ("afno", {"sparsity_threshold": 0.01, "num_blocks": 1}, "attention"),
           "fno-m2x1": ("fno", {"modes": (2, 1)}, "gfn")}
LAMBDAS = (0.0, 0.01, 0.03, 0.1)
BLOCKS = (1, 4, 8, 16)
DEPTHS = (2, 4)
HARD_KEEP = 0.35         # the paper's hard-thresholding ablation: keep 35 % of the low modes
POS_EMBEDS = ("learned", "none")


def _cfg(base: dict, fast: bool, **kw) -> dict:
    c = dict(base)
    if fast:
        c.update(FAST_OVERRIDES[base["task"]])
    c.update(kw)
    return c


def _lr_key(lr: float) -> str:
    return f"{lr:g}"


#: The learning-rate sweep each group's rates come from (the ablations use inpainting's).
SWEEP_OF = {"inpainting": "inpainting", "ablations": "inpainting", "classification": "classification"}


def _sweep(group: str) -> tuple:
    """``(base config, mixers, rates, score)`` of the learning-rate sweep of ``group``."""
    if group not in SWEEP_OF:
        raise ValueError(f"group must be one of {tuple(SWEEP_OF)} (a sweep's group), got {group!r}")
    if SWEEP_OF[group] == "classification":
        return CLS_BASE, CLS_MIXERS, CLS_LRS, "val_top1"
    return INPAINTING_BASE, INPAINT_MIXERS, LRS, "val_psnr"


def _sweep_runs(fast: bool, group: str = "inpainting") -> dict:
    base, mixers, rates, _ = _sweep(group)
    return {f"sweep-{m}-lr{_lr_key(lr)}": _cfg(base, fast, mixer=m, mixer_kw=dict(MIXER_KW.get(m, {})), seed=SWEEP_SEED,
                                               lr=lr, examples=4)
            for m in mixers for lr in rates}


def _sweep_series(group: str) -> dict:
    _, mixers, rates, _ = _sweep(group)
    return {m: {_lr_key(lr): f"sweep-{m}-lr{_lr_key(lr)}" for lr in rates} for m in mixers}


def _check_lrs(lrs, group: str = "inpainting") -> dict:
    base, mixers, _, _ = _sweep(group)
    if lrs is not None and not isinstance(lrs, dict):
        raise TypeError(f"lrs: expected a dict {{mixer: learning rate}} or None, got {lrs!r}")
    lrs = {m: base["lr"] for m in mixers} if lrs is None else dict(lrs)
    missing = [m for m in mixers if m not in lrs]
    if missing:
        raise ValueError(f"lrs: expected a learning rate for every mixer {mixers}, missing {missing}")
    return lrs


def _plan_inpainting(fast: bool, lrs: dict, runs: dict, series: dict) -> None:
    runs.update(_sweep_runs(fast))
    series["sweep"] = _sweep_series("inpainting")
    for m in INPAINT_MIXERS:
        for s in HEADLINE_SEEDS:
            runs[f"inpaint-{m}-s{s}"] = _cfg(INPAINTING_BASE, fast, mixer=m, mixer_kw=dict(MIXER_KW[m]), seed=s,
                                              lr=lrs[m], examples=4 if s == SWEEP_SEED else 0)
    series["mixers"] = {m: [f"inpaint-{m}-s{s}" for s in HEADLINE_SEEDS] for m in INPAINT_MIXERS}
    series["matched"] = {}
    for name, (m, kw, _) in MATCHED.items():
        for s in SEEDS:
            runs[f"inpaint-{name}-s{s}"] = _cfg(INPAINTING_BASE, fast, mixer=m, mixer_kw=dict(kw), seed=s,
                                                 lr=lrs[m], examples=4 if s == SWEEP_SEED else 0)
        series["matched"][name] = [f"inpaint-{name}-s{s}" for s in SEEDS]


def _plan_ablations(fast: bool, lr: float, runs: dict, series: dict) -> None:
    def afno(name, seed=0, depth=None, **mkw):
        extra = {"depth": depth} if depth is not None else {}
        runs[name] = _cfg(INPAINTING_BASE, fast, mixer="afno", mixer_kw=dict(AFNO_KW, **mkw), seed=seed, lr=lr,
                          examples=4 if seed == SWEEP_SEED else 0, **extra)
        return name

    # the base runs are the first three seeds of inpaint-afno-s* (shared folders)
    base = [afno(f"abl-base-s{s}", seed=s) for s in SEEDS]
    series["seeds"] = base

    def variant(prefix, **kw):
        """One ablation setting, one run per seed in SEEDS."""
        return [afno(f"{prefix}-s{s}", seed=s, **kw) for s in SEEDS]

    series["lambda"] = {str(lam): (base if lam == AFNO_KW["sparsity_threshold"] else
                                   variant(f"abl-lambda-{lam}", sparsity_threshold=lam)) for lam in LAMBDAS}
    series["blocks"] = {str(k): (base if k == AFNO_KW["num_blocks"] else variant(f"abl-blocks-{k}", num_blocks=k))
                        for k in BLOCKS}
    depth0 = runs[base[0]]["depth"]
    series["depth"] = {str(d): (base if d == depth0 else variant(f"abl-depth-{d}", depth=d)) for d in DEPTHS}
    series["thresholding"] = {
        "full": series["lambda"]["0.0"],
        "soft": base,
        "hard": variant("abl-hard", sparsity_threshold=0.0, keep_fraction=HARD_KEEP),
    }
    series["adaptive"] = {"mlp": base, "linear": variant("abl-linear", activation=None, bias=False)}


def plan(group: str, fast: bool = False, lrs: dict | None = None) -> dict:
    """``{"runs": {name: config}, "series": {...}}`` for one group (nothing is trained).

    ``lrs``: the learning rate of each mixer (``{mixer: lr}``, the result of :func:`select_lrs`)
    of the inpainting (and the ablations, which use AFNO's) or the classification group; default
    the base config's ``lr`` for all."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    lrs = _check_lrs(lrs, SWEEP_OF.get(group, "inpainting"))
    runs: dict = {}
    series: dict = {}
    if group == "inpainting":
        _plan_inpainting(fast, lrs, runs, series)
    elif group == "ablations":
        _plan_ablations(fast, lrs["afno"], runs, series)
    elif group in ("classification", "segmentation"):
        if group == "classification":
            settings = {m: (m, MIXER_KW.get(m, {})) for m in CLS_MIXERS}
            base, prefix = CLS_BASE, "cls"
            runs.update(_sweep_runs(fast, group))
            series["sweep"] = _sweep_series(group)
        else:
            settings, base, prefix = SEG_SETTINGS, SEG_BASE, "seg"
        series["settings"] = {}
        for name, (m, kw) in settings.items():
            series["settings"][name] = [f"{prefix}-{name}-s{s}" for s in SEEDS]
            lr = {"lr": lrs[name]} if group == "classification" else {}
            for s_ in SEEDS:
                runs[f"{prefix}-{name}-s{s_}"] = _cfg(base, fast, mixer=m, mixer_kw=dict(kw), seed=s_,
                                                    examples=4 if s_ == 0 else 0, **lr)
    else:
        series["mixers"] = {pos: {} for pos in POS_EMBEDS}
        for pos in POS_EMBEDS:
            for m in ("fno", "afno", "gfn", "attention"):
                names = [f"pde-{m}-{pos}-s{s}" for s in SEEDS]
                for s, name in zip(SEEDS, names, strict=True):
                    runs[name] = _cfg(PDE_BASE, fast, mixer=m, mixer_kw=dict(PDE_MIXER_KW[m]), seed=s, pos_embed=pos,
                                      examples=2 if s == 0 else 0)
                series["mixers"][pos][m] = names
    return {"runs": runs, "series": series}


def setting_runs(series, path: str = ""):
    """``(path, [run names])`` for every setting of a (nested) ``series`` of a plan or results
    file; a single name (a sweep run) is a setting of one run."""
    if isinstance(series, str):
        yield path, [series]
    elif isinstance(series, list):
        yield path, series
    else:
        for key, sub in series.items():
            yield from setting_runs(sub, f"{path} {key}".strip())


def results_dir() -> Path:
    """``notebooks/results`` of this repository."""
    return REPO / "notebooks" / "results"


def load_results(name: str, folder=None) -> dict:
    """Read ``<name>.json`` from ``folder`` (default :func:`results_dir`)."""
    p = Path(folder or results_dir()) / f"{name}.json"
    return json.loads(p.read_text())


def _norm(obj):
    return json.loads(json.dumps(obj, sort_keys=True))


def run_key(cfg: dict, code: str | None = None) -> str:
    """Folder name of a run: a hash of its full configuration (defaults filled in) and of the
    ``afno_lite`` sources (``code``, default :func:`~afno_lite.train.provenance.code_hash`), so
    that identical runs in two groups share one folder and train once, and a change to the
    library never reuses a run made by other code."""
    import hashlib

    from .train import TrainConfig
    from .train.provenance import code_hash

    full = TrainConfig(**cfg).to_dict()
    comparable = {k: v for k, v in full.items() if k not in ("out", "progress", "threads", "resume", "stop_after")}
    comparable["afno_lite_code"] = code if code is not None else code_hash()
    return hashlib.sha256(json.dumps(_norm(comparable), sort_keys=True).encode()).hexdigest()[:12]


def _train_one(args) -> tuple[str, dict]:
    name, cfg, key, run_root, fresh, command = args
    import torch

    from .train import fit

    torch.set_num_threads(1)
    out = Path(run_root) / key
    res_path = out / "results.json"
    if not fresh and res_path.exists():
        print(f"[experiments] {name}: reusing {res_path}", flush=True)
        return name, json.loads(res_path.read_text())
    t = time.perf_counter()
    res = fit(dict(cfg, out=str(out), progress=False, threads=1), command=command)
    print(f"[experiments] {name}: {time.perf_counter() - t:.0f} s, final {res['final']}", flush=True)
    return name, res


def _compact(res: dict) -> dict:
    keep = ("config", "command", "seed", "git_commit", "git_dirty", "code_hash", "date", "torch", "platform",
            "device", "world_size", "threads", "params", "flops_per_image", "epochs_done", "history", "final",
            "mean_epoch_time_s", "wall_time_s", "weights_sha256", "afno_sparsity", "examples")
    return {k: res[k] for k in keep if k in res}


def _baselines(group: str, fast: bool) -> dict:
    """Reference numbers that need no training (identity predictor for the PDE task)."""
    if group != "resolution":
        return {}
    from .train import TrainConfig, make_data, relative_l2, validate_config

    c = dict(_cfg(PDE_BASE, fast, mixer="fno"))
    c["eval_sizes"] = tuple(c["eval_sizes"])
    cfg = validate_config(TrainConfig(**c))
    test = make_data(cfg)["test"]
    return {"identity_rel_l2": {str(s): float(relative_l2(x, y).mean()) for s, (x, y) in test.items()}}


_TRAINED: set = set()   # run keys trained or reused in this process (see --fresh)


def _costs(group: str, fast: bool) -> dict:
    """Segmentation: time and peak memory of one training step (batch 1) per setting of
    :data:`COST_SETTINGS` on the grids :data:`COST_GRIDS` (:mod:`afno_lite.bench.stepcost`),
    measured in this process on one thread (as the trainings run) after they have finished."""
    if group != "segmentation":
        return {}
    import torch

    from .bench.stepcost import grid_costs
    from .timing import one_thread

    grids = COST_GRIDS[:2] if fast else COST_GRIDS
    out = {}
    with one_thread():   # as the training runs: one thread, steadier on a shared machine
        for name in COST_SETTINGS:
            m, kw = SEG_SETTINGS[name]
            cfg = _cfg(SEG_BASE, fast, mixer=m, mixer_kw=dict(kw))
            out[name] = grid_costs(cfg, grids=tuple(g // 4 if fast else g for g in grids), budget_s=30.0,
                                   repeats=5)
        threads = torch.get_num_threads()
    return {"threads": threads, "batch": 1, "grids": out}


def _train_all(runs: dict, run_root: Path, fresh: bool, command: str, jobs: int, code: str) -> tuple[dict, dict]:
    """Train (or reuse) every run of ``runs``; ``({name: result}, {name: run key})``."""
    keys = {name: run_key(cfg, code) for name, cfg in runs.items()}   # hash the sources once
    tasks, seen = [], set()
    for name, cfg in runs.items():
        if keys[name] not in seen:
            seen.add(keys[name])
            # --fresh retrains a run once per invocation, not once per group that shares it
            tasks.append((name, cfg, keys[name], str(run_root), fresh and keys[name] not in _TRAINED, command))
    # the slowest runs first (PDE, then mixers whose cost grows fastest), so that the workers finish together
    from .registry import spec

    tasks.sort(key=lambda t: (t[1]["task"] != "pde", -spec(t[1].get("mixer", "afno")).growth))
    import contextlib
    import multiprocessing as mp

    from tqdm import tqdm

    parallel = jobs > 1 and len(tasks) > 1   # one bar over the runs, each run prints a line when done
    with mp.get_context("spawn").Pool(min(jobs, len(tasks))) if parallel else contextlib.nullcontext() as pool:
        it = pool.imap_unordered(_train_one, tasks, chunksize=1) if parallel else map(_train_one, tasks)
        done = dict(tqdm(it, total=len(tasks), desc="[experiments] runs", unit="run", file=sys.stderr))
    by_key = {keys[n]: r for n, r in done.items()}
    _TRAINED.update(by_key)
    return {name: by_key[keys[name]] for name in runs}, keys


def _val_score(res: dict, metric: str = "val_psnr") -> float:
    """The validation score after the last epoch (the sweep's score; never the test set)."""
    return float(res["history"][-1]["val"][metric])


def select_lrs(fast: bool = False, jobs: int = 2, fresh: bool = False, run_root=None,
               command: str = "python -m afno_lite.experiments inpainting",
               code: str | None = None, group: str = "inpainting") -> tuple[dict, dict]:
    """Train (or reuse) the learning-rate sweep of ``group`` (``inpainting``: :data:`LRS`, scored
    by validation PSNR; ``classification``: :data:`CLS_LRS`, validation top-1) and pick each
    mixer's rate: the best score of seed 0 (the lower rate on a tie). Returns
    ``({mixer: lr}, selection record)``. ``code``: the hash of the ``afno_lite`` sources when the
    caller has taken it already."""
    from .train.provenance import code_hash

    _, mixers, rates, metric = _sweep(group)
    run_root = Path(run_root or _run_root(fast))
    done, _ = _train_all(_sweep_runs(fast, group), run_root, fresh, command, jobs, code or code_hash())
    selection, lrs = {}, {}
    for m in mixers:
        scores = {_lr_key(lr): _val_score(done[f"sweep-{m}-lr{_lr_key(lr)}"], metric) for lr in rates}
        best = max(rates, key=lambda lr: scores[_lr_key(lr)])   # max keeps the first (lowest) rate on a tie
        lrs[m] = best
        selection[m] = {"metric": metric, "seed": SWEEP_SEED, metric: scores, "best_lr": best}
    return lrs, selection


def _run_root(fast: bool) -> Path:
    return REPO / "runs" / ("experiments_fast" if fast else "experiments")


def run_group(group: str, fast: bool = False, jobs: int = 2, fresh: bool = False, out_dir=None,
              run_root=None) -> dict:
    """Train (or reuse) every run of ``group`` and write ``<out_dir>/<group>.json``."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    from .train.provenance import code_hash, folder, git_commit, git_dirty, write_json

    run_root = Path(run_root or _run_root(fast))
    out_dir = folder(out_dir or (run_root if fast else results_dir()), "out_dir")
    os.environ.setdefault("AFNO_DATA_CACHE", str(run_root / "data_cache"))
    command = f"python -m afno_lite.experiments {group}" + (" --fast" if fast else "")

    commit, dirty, code = git_commit(), git_dirty(), code_hash()
    t0 = time.perf_counter()
    sweep_group = SWEEP_OF.get(group)
    lrs, selection = (select_lrs(fast, jobs, fresh, run_root, command, code, sweep_group) if sweep_group
                      else (None, {}))
    p = plan(group, fast, lrs)
    done, keys = _train_all(p["runs"], run_root, fresh, command, jobs, code)
    cost = _costs(group, fast)   # measured after the trainings; part of the group's wall time
    doc = {
        "group": group,
        "command": command,
        "fast": fast,
        "seeds": sorted({c["seed"] for c in p["runs"].values()}),
        "git_commit": commit,
        "git_dirty": dirty,
        "code_hash": code,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "jobs": jobs,
        "wall_time_s": time.perf_counter() - t0,
        "selection": selection,
        "series": p["series"],
        "baselines": _baselines(group, fast),
        "cost": cost,
        "runs": {name: dict(_compact(done[name]), run_key=keys[name]) for name in p["runs"]},
    }
    path = write_json(out_dir / f"{group}.json", doc)
    print(f"[experiments] wrote {path} ({doc['wall_time_s']:.0f} s)", flush=True)
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m afno_lite.experiments", description=__doc__.split("\n\n")[0])
    ap.add_argument("group", choices=(*GROUPS, "all"), help="the group to run; all: every group")
    ap.add_argument("--fast", action="store_true", help="smoke-test sizes; writes to runs/experiments_fast/")
    ap.add_argument("--jobs", type=int, default=2, help="trainings in parallel, one thread each")
    ap.add_argument("--fresh", action="store_true", help="retrain even when a run folder holds matching results")
    ap.add_argument("--out-dir", default=None, help="where the <group>.json files go "
                    "(default notebooks/results/, with --fast runs/experiments_fast/)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        print("error: --jobs must be >= 1", file=sys.stderr)
        return 2
    from .train.provenance import folder

    try:
        if args.out_dir:
            folder(args.out_dir, "--out-dir")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    groups = SHIPPED if args.group == "all" else (args.group,)
    t0 = time.perf_counter()
    for g in groups:
        run_group(g, fast=args.fast, jobs=args.jobs, fresh=args.fresh, out_dir=args.out_dir)
    print(f"[experiments] all done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
