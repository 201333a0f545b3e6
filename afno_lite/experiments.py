"""The full runs behind the experiment chapters: ``python -m afno_lite.experiments GROUP``.

``GROUP`` is ``all``, ``inpainting``, ``ablations`` or ``resolution``. ``make experiments`` runs
``python -m afno_lite.experiments all`` and writes
``notebooks/results/{inpainting,ablations,resolution}.json``, which chapters "Inpainting",
"Ablations" and "Resolution and PDEs" plot. Every file records the command, the seeds, the
git commit, the date and the full configuration of every run; nothing in them is edited by hand.

* ``inpainting``: attention, GFN, FNO and AFNO in the same tiny backbone, three seeds each.
* ``ablations``: AFNO's sparsity threshold, number of blocks, soft vs hard thresholding at
  equal sparsity, adaptive (MLP) vs linear weights, depth; one seed per setting and three for
  the base run (the AFNO runs of ``inpainting``), whose spread is the yardstick for noise.
* ``resolution``: the Navier-Stokes task trained at 32x32, evaluated at 32x32 and zero-shot
  at 64x64, for FNO, AFNO, GFN and attention.

Runs go to ``runs/experiments/<key>/`` (checkpoint + results), ``key`` a hash of the full
configuration: a run whose folder already holds results is reused, also across groups
(``--fresh`` retrains everything). ``--jobs``
runs that many trainings in parallel, one thread each. ``--fast`` shrinks everything to a smoke
test and writes to ``runs/experiments_fast/`` instead of ``notebooks/results/``.
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

__all__ = ["INPAINTING_BASE", "PDE_BASE", "FAST_OVERRIDES", "MIXER_KW", "GROUPS", "plan", "run_group",
           "results_dir", "load_results", "main"]

REPO = Path(__file__).resolve().parents[1]

#: The inpainting setting shared by chapters "Inpainting" and "Ablations": 32x32 grayscale crops,
#: 4x4 patches (an 8x8 token grid), half of the 4x4 squares hidden.
INPAINTING_BASE = dict(task="inpainting", embed_dim=32, depth=4, mlp_ratio=2.0, patch_size=4, img_size=32,
                       epochs=10, batch_size=16, lr=3e-3, weight_decay=0.01, n_train=2048, n_test=256,
                       mask_ratio=0.5, mask_patch=4)

#: The Navier-Stokes setting of chapter "Resolution and PDEs": one token per grid point (patch 1),
#: so every layer except the token mixer acts pointwise and the network can run on any grid.
PDE_BASE = dict(task="pde", embed_dim=32, depth=4, mlp_ratio=2.0, patch_size=1, img_size=32, eval_sizes=(64,),
                epochs=6, batch_size=8, lr=3e-3, weight_decay=0.01, n_train=512, n_test=64, pde_T=1.0,
                pde_nu=1e-3)

#: What ``--fast`` (and the chapters' live runs under AFNO_FAST=1) change.
FAST_OVERRIDES = {"inpainting": dict(epochs=2, n_train=256, n_test=64, depth=2),
                  "pde": dict(epochs=2, n_train=64, n_test=16, depth=2)}

#: Mixer keyword arguments used everywhere (attention: 4 heads of 8 channels).
#: AFNO: the paper's defaults, k = 8 blocks and lambda = 0.01 (ortho FFT).
AFNO_KW = {"sparsity_threshold": 0.01, "num_blocks": 8}
MIXER_KW = {"attention": {"num_heads": 4}, "gfn": {}, "fno": {}, "afno": AFNO_KW}
PDE_MIXER_KW = {"attention": {"num_heads": 4}, "gfn": {}, "fno": {"modes": (8, 8)}, "afno": AFNO_KW}

GROUPS = ("inpainting", "ablations", "resolution")
INPAINT_MIXERS = ("attention", "gfn", "fno", "afno")
INPAINT_SEEDS = (0, 1, 2)
ABLATION_SEEDS = (0,)
LAMBDAS = (0.0, 0.003, 0.01, 0.03, 0.1)
BLOCKS = (1, 2, 4, 8, 16)
DEPTHS = (1, 2, 4)
HARD_KEEP = 0.5          # on the 8x8 token grid: 62.5% of the rfft coefficients are dropped
SOFT_FOR_HARD = 0.03     # the soft threshold whose measured sparsity is closest (see the chapter)


def _cfg(base: dict, fast: bool, **kw) -> dict:
    c = dict(base)
    if fast:
        c.update(FAST_OVERRIDES[base["task"]])
    c.update(kw)
    return c


def plan(group: str, fast: bool = False) -> dict:
    """``{"runs": {name: config}, "series": {...}}`` for one group (nothing is trained)."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS} or 'all', got {group!r}")
    runs: dict = {}
    series: dict = {}
    if group == "inpainting":
        for m in INPAINT_MIXERS:
            for s in INPAINT_SEEDS:
                runs[f"inpaint-{m}-s{s}"] = _cfg(INPAINTING_BASE, fast, mixer=m, mixer_kw=dict(MIXER_KW[m]), seed=s,
                                                  examples=4 if s == 0 else 0)
        series["mixers"] = {m: [f"inpaint-{m}-s{s}" for s in INPAINT_SEEDS] for m in INPAINT_MIXERS}
    elif group == "ablations":
        def afno(name, seed=0, depth=None, examples=0, **mkw):
            kw = dict(AFNO_KW, **mkw)
            extra = {"depth": depth} if depth is not None else {}
            runs[name] = _cfg(INPAINTING_BASE, fast, mixer="afno", mixer_kw=kw, seed=seed, examples=examples, **extra)
            return name

        # the base run and its seeds are the same runs as inpaint-afno-s* (shared folders)
        base = [afno("abl-base", examples=4)] + [afno(f"abl-base-s{s}", seed=s) for s in INPAINT_SEEDS[1:]]
        series["seeds"] = base

        def variant(prefix, **kw):
            """One ablation setting, one run per seed in ABLATION_SEEDS."""
            return [afno(f"{prefix}-s{s}" if s else prefix, seed=s, **kw) for s in ABLATION_SEEDS]

        series["lambda"] = {str(lam): (base if lam == AFNO_KW["sparsity_threshold"] else
                                       variant(f"abl-lambda-{lam}", sparsity_threshold=lam)) for lam in LAMBDAS}
        series["blocks"] = {str(k): (base if k == AFNO_KW["num_blocks"] else variant(f"abl-blocks-{k}", num_blocks=k))
                            for k in BLOCKS}
        depth0 = runs[base[0]]["depth"]
        series["depth"] = {str(d): (base if d == depth0 else variant(f"abl-depth-{d}", depth=d)) for d in DEPTHS}
        series["thresholding"] = {
            "none": series["lambda"]["0.0"],
            "soft": series["lambda"][str(SOFT_FOR_HARD)],
            "hard": variant("abl-hard", sparsity_threshold=0.0, keep_fraction=HARD_KEEP),
        }
        series["adaptive"] = {"mlp": base, "linear": variant("abl-linear", activation=None, bias=False)}
    else:
        for m in ("fno", "afno", "gfn", "attention"):
            runs[f"pde-{m}"] = _cfg(PDE_BASE, fast, mixer=m, mixer_kw=dict(PDE_MIXER_KW[m]), seed=0, examples=2)
        series["mixers"] = [f"pde-{m}" for m in ("fno", "afno", "gfn", "attention")]
    return {"runs": runs, "series": series}


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


def run_group(group: str, fast: bool = False, jobs: int = 2, fresh: bool = False, out_dir=None,
              run_root=None) -> dict:
    """Train (or reuse) every run of ``group`` and write ``<out_dir>/<group>.json``."""
    p = plan(group, fast)
    run_root = Path(run_root or (REPO / "runs" / ("experiments_fast" if fast else "experiments")))
    out_dir = Path(out_dir or (run_root if fast else results_dir()))
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AFNO_DATA_CACHE", str(run_root / "data_cache"))
    command = f"python -m afno_lite.experiments {group}" + (" --fast" if fast else "")
    from .train.provenance import code_hash, git_commit, git_dirty, write_json

    commit, dirty, code = git_commit(), git_dirty(), code_hash()
    t0 = time.perf_counter()
    keys = {name: run_key(cfg, code) for name, cfg in p["runs"].items()}   # hash the sources once
    tasks, seen = [], set()
    for name, cfg in p["runs"].items():
        if keys[name] not in seen:
            seen.add(keys[name])
            tasks.append((name, cfg, keys[name], str(run_root), fresh, command))
    # the slowest runs first (PDE, then mixers whose cost grows fastest), so that the workers finish together
    from .registry import spec

    tasks.sort(key=lambda t: (t[1]["task"] != "pde", -spec(t[1].get("mixer", "afno")).growth))
    if jobs > 1 and len(tasks) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(jobs, len(tasks))) as pool:
            done = dict(pool.map(_train_one, tasks, chunksize=1))
    else:
        done = dict(_train_one(t) for t in tasks)
    by_key = {keys[n]: r for n, r in done.items()}

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
        "series": p["series"],
        "baselines": _baselines(group, fast),
        "runs": {name: dict(_compact(by_key[keys[name]]), run_key=keys[name]) for name in p["runs"]},
    }
    path = write_json(out_dir / f"{group}.json", doc)
    print(f"[experiments] wrote {path} ({doc['wall_time_s']:.0f} s)", flush=True)
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m afno_lite.experiments", description=__doc__.split("\n\n")[0])
    ap.add_argument("group", choices=(*GROUPS, "all"))
    ap.add_argument("--fast", action="store_true", help="smoke-test sizes; writes to runs/experiments_fast/")
    ap.add_argument("--jobs", type=int, default=2, help="trainings in parallel (one thread each)")
    ap.add_argument("--fresh", action="store_true", help="retrain even when a run folder holds matching results")
    ap.add_argument("--out-dir", default=None, help="where the <group>.json files go")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        print("error: --jobs must be >= 1", file=sys.stderr)
        return 2
    groups = GROUPS if args.group == "all" else (args.group,)
    t0 = time.perf_counter()
    for g in groups:
        run_group(g, fast=args.fast, jobs=args.jobs, fresh=args.fresh, out_dir=args.out_dir)
    print(f"[experiments] all done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
