"""Tests for the trainer (afno_lite.train): metrics, seeding, resume, torchrun/DDP, bad configs."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from afno_lite import experiments, train
from afno_lite.complexity import measure_flops
from afno_lite.train import tasks

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).with_name("torchrun")

TINY = dict(task="inpainting", mixer="afno", embed_dim=16, depth=1, mlp_ratio=1.0, patch_size=4, img_size=16,
            epochs=2, batch_size=8, n_train=32, n_test=8, mask_patch=4, progress=False,
            mixer_kw={"num_blocks": 4})



# --------------------------------------------------------------------------- metrics
def _naive_ssim(x: np.ndarray, y: np.ndarray, win=11, sigma=1.5, L=1.0) -> float:
    """Wang et al. (2004) written as loops over window positions (float64)."""
    t = np.arange(win) - (win - 1) / 2
    g = np.exp(-t**2 / (2 * sigma**2))
    w = np.outer(g, g)
    w /= w.sum()
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    vals = []
    for i in range(x.shape[0] - win + 1):
        for j in range(x.shape[1] - win + 1):
            a, b = x[i:i + win, j:j + win], y[i:i + win, j:j + win]
            mx, my = (w * a).sum(), (w * b).sum()
            vx, vy = (w * (a - mx) ** 2).sum(), (w * (b - my) ** 2).sum()
            cxy = (w * (a - mx) * (b - my)).sum()
            vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(vals))


def test_ssim_matches_naive_loops_and_identity():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 16, 18, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(3, 1, 16, 18, generator=g, dtype=torch.float64)).clamp(0, 1)
    s = train.ssim(x, y)
    for i in range(3):
        assert float(s[i]) == pytest.approx(_naive_ssim(x[i, 0].numpy(), y[i, 0].numpy()), rel=1e-10)
    torch.testing.assert_close(train.ssim(x, x), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(train.ssim(y, x), s)            # symmetric
    assert (s < 1).all()
    noisier = (x + 0.3 * torch.randn(3, 1, 16, 18, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert (train.ssim(x, noisier) < s).all()
    # two channels: the mean of the per-channel values
    xy = torch.cat([x, y], 1)
    torch.testing.assert_close(train.ssim(xy, torch.cat([y, y], 1)), (s + 1) / 2)


def test_example_arrays_round_trip_through_json():
    a = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4)
    d = json.loads(json.dumps(train.encode_array(a)))
    b = train.decode_array(d)
    assert b.shape == (2, 3, 4) and b.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3)


def test_psnr_known_value_and_ssim_errors():
    x = torch.zeros(2, 1, 12, 12)
    y = torch.full_like(x, 0.1)                              # MSE = 0.01 -> 20 dB
    torch.testing.assert_close(train.psnr(y, x), torch.full((2,), 20.0))
    with pytest.raises(ValueError, match="same shape"):
        train.ssim(x, y[:, :, :10])
    with pytest.raises(ValueError, match="window=11"):
        train.ssim(x[..., :8, :8], y[..., :8, :8])


# --------------------------------------------------------------------------- seeding, resume
def test_fit_is_seeded_and_records_provenance(tmp_path):
    a = train.fit(dict(TINY, out=str(tmp_path / "a")))
    b = train.fit(TINY)
    c = train.fit(dict(TINY, seed=1))
    assert a["weights_sha256"] == b["weights_sha256"] != c["weights_sha256"]
    assert a["epochs_done"] == 2 and len(a["history"]) == 2
    for key in ("command", "seed", "git_commit", "git_dirty", "code_hash", "date", "config", "params",
                "flops_per_image", "mean_epoch_time_s"):
        assert key in a
    on_disk = json.loads((tmp_path / "a" / "results.json").read_text())
    assert on_disk["weights_sha256"] == a["weights_sha256"]
    assert on_disk["config"]["mixer_kw"] == {"num_blocks": 4}
    m = a["final"]["16"]
    assert set(m) == {"psnr", "ssim", "mse_masked"} and all(math.isfinite(v) for v in m.values())


def test_resume_continues_exactly(tmp_path):
    """2 epochs in one go == 1 epoch, stop, resume for the 2nd (same weights, bit for bit)."""
    full = train.fit(dict(TINY, out=str(tmp_path / "full")))
    part = train.fit(dict(TINY, out=str(tmp_path / "part"), stop_after=1))
    assert part["epochs_done"] == 1 and part["weights_sha256"] != full["weights_sha256"]
    ck = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)   # plain tensors and values
    assert ck["epoch"] == 1 and {"model", "optimizer", "scheduler", "rng", "config"} <= set(ck)
    resumed = train.fit(dict(TINY, out=str(tmp_path / "part"), resume=True))
    assert resumed["epochs_done"] == 2
    assert resumed["weights_sha256"] == full["weights_sha256"]
    model, cfg = train.load_model(tmp_path / "part")
    assert train.weights_digest(model) == full["weights_sha256"] and cfg.mixer == "afno"
    with pytest.raises(train.ConfigError, match="different"):
        train.fit(dict(TINY, out=str(tmp_path / "part"), resume=True, embed_dim=8))
    with pytest.raises(train.ConfigError, match="no checkpoint"):
        train.fit(dict(TINY, out=str(tmp_path / "nothing"), resume=True))


class _Payload:
    """An object whose unpickling would run code (what a crafted checkpoint carries)."""

    def __reduce__(self):
        return (print, ("code ran while loading a checkpoint",))


def test_a_crafted_checkpoint_is_refused(tmp_path):
    """Checkpoints load with weights_only=True: a pickled callable is rejected, not run."""
    part = tmp_path / "part"
    train.fit(dict(TINY, out=str(part), stop_after=1))
    ck = torch.load(part / "checkpoint.pt", weights_only=True)
    ck["extra"] = _Payload()
    torch.save(ck, part / "checkpoint.pt")
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        train.fit(dict(TINY, out=str(part), resume=True))
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        train.load_model(part)


# --------------------------------------------------------------------------- torchrun / DDP
def _cli_args(out: Path) -> list[str]:
    return ["-m", "afno_lite.train", "--task", "inpainting", "--mixer", "afno", "--mixer-kw", '{"num_blocks": 4}',
            "--embed-dim", "16", "--depth", "1", "--mlp-ratio", "1", "--img-size", "16", "--epochs", "1",
            "--max-steps", "3", "--batch-size", "8", "--n-train", "32", "--n-test", "8", "--no-progress",
            "--out", str(out)]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("WORLD_SIZE", None)
    return env


@pytest.mark.slow
def test_torchrun_two_processes_keep_identical_weights_equal_to_one_process(tmp_path):
    if not TORCHRUN.exists():
        pytest.skip(f"torchrun not found next to {sys.executable}")
    ddp = tmp_path / "ddp"
    r = subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node=2", *_cli_args(ddp)], cwd=tmp_path,
                       env=_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    d0 = (ddp / "rank0.sha256").read_text().strip()
    d1 = (ddp / "rank1.sha256").read_text().strip()
    res = json.loads((ddp / "results.json").read_text())
    assert d0 == d1 == res["weights_sha256"]
    assert res["world_size"] == 2 and res["ranks_in_sync"] and res["rank_digests"] == [d0, d1]
    # the same global batches in one process give the same weights up to float rounding:
    # each rank sees half of every batch and DDP averages the gradients
    single = tmp_path / "single"
    r = subprocess.run([sys.executable, *_cli_args(single)], cwd=tmp_path, env=_env(), capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    a = torch.load(ddp / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(single / "checkpoint.pt", weights_only=False)["model"]
    assert json.loads((single / "results.json").read_text())["world_size"] == 1
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)
    assert not (single / "rank0.sha256").exists()


# --------------------------------------------------------------------------- other tasks and modes
def test_pde_task_evaluates_zero_shot_on_a_finer_grid():
    res, model = train.fit(dict(task="pde", mixer="fno", mixer_kw={"modes": (4, 4)}, embed_dim=8, depth=1,
                                patch_size=1, img_size=16, eval_sizes=(32,), epochs=1, batch_size=4, n_train=8,
                                n_test=4, pde_T=0.2, progress=False, examples=2), return_model=True)
    assert set(res["final"]) == {"16", "32"}
    assert all(0 < v["rel_l2"] < 10 for v in res["final"].values())
    ex = res["examples"]
    assert train.decode_array(ex["16"]["prediction"]).shape == (2, 16, 16)
    assert train.decode_array(ex["32"]["target"]).shape == (2, 32, 32)
    assert res["afno_sparsity"] is None
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 1, 32, 32)


def test_bf16_autocast_trains_on_cpu():
    res = train.fit(dict(TINY, amp="bf16", epochs=1, max_steps=2))
    assert math.isfinite(res["history"][0]["train_loss"])


def test_model_flops_and_afno_sparsity():
    cfg = train.TrainConfig(**dict(TINY, mixer="attention", mixer_kw={"num_heads": 2}))
    model = train.build_model(cfg)
    f = train.model_flops(model)
    # the attention formula counts exactly what FlopCounterMode counts
    assert f["total"] == measure_flops(model, torch.zeros(1, 2, 16, 16)) and f["fft"] == 0
    assert train.afno_sparsity(model, torch.zeros(1, 2, 16, 16)) is None
    afno = train.build_model(train.TrainConfig(**dict(TINY, mixer_kw={"num_blocks": 4})))
    fa = train.model_flops(afno)
    assert fa["fft"] > 0 and fa["total"] > fa["mixers"] >= fa["fft"]
    x = torch.rand(4, 2, 32, 32)
    hard = train.build_model(train.TrainConfig(**dict(TINY, img_size=32, mixer_kw={
        "num_blocks": 4, "sparsity_threshold": 0.0, "keep_fraction": 0.5})))
    # 8x8 token grid, keep |k_H| <= 2 and k_W <= 2: 5 x 3 of 8 x 5 modes -> 62.5% zeros
    assert train.afno_sparsity(hard, x) == pytest.approx(0.625)
    dead = train.build_model(train.TrainConfig(**dict(TINY, img_size=32, mixer_kw={
        "num_blocks": 4, "sparsity_threshold": 10.0})))
    assert train.afno_sparsity(dead, x) == 1.0


# --------------------------------------------------------------------------- bad configs
@pytest.mark.parametrize("change,match", [
    (dict(task="detection"), "task must be one of"),
    (dict(mixer="conv"), "mixer must be one of"),
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(batch_size=-4), "batch_size must be a positive integer"),
    (dict(lr=0.0), "lr must be a positive"),
    (dict(lr=float("nan")), "lr must be a positive"),
    (dict(mask_ratio=1.0), "mask_ratio"),
    (dict(img_size=18), "divisible by patch_size"),
    (dict(eval_sizes=(30,)), "multiple of patch_size"),
    (dict(amp="fp8"), "amp must be one of"),
    (dict(amp="fp16"), "needs a CUDA device"),
    (dict(schedule="step"), "schedule must be one of"),
    (dict(mixer_kw={"num_blocks": 5}), "cannot build mixer 'afno'"),
    (dict(mixer_kw={"heads": 2}), "cannot build mixer"),
    (dict(resume=True), "needs out="),
    (dict(max_steps=0), "max_steps must be"),
    (dict(n_train=4), "no full batch"),
    (dict(nonsense=1), "unknown config field"),
])
def test_bad_configs_raise_clear_errors(change, match):
    with pytest.raises(train.ConfigError, match=match):
        train.fit(dict(TINY, **change))


def test_cli_reports_bad_config_without_traceback(capsys):
    assert train.main(["--task", "detection", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "task must be one of" in err and "Traceback" not in err
    assert train.main(["--mixer-kw", "{not json", "--no-progress"]) == 2
    assert "--mixer-kw must be a JSON object" in capsys.readouterr().err


# --------------------------------------------------------------------------- experiment plans
def test_experiment_plans_share_identical_runs_and_validate():
    lrs = {"attention": 1e-3, "gfn": 3e-3, "fno": 1e-2, "afno": 1e-2}
    cls_lrs = {"attention": 3e-4, "gfn": 1e-3, "fno": 1e-3, "afno": 3e-3, "identity": 3e-4}
    inp, abl, res, cls, seg = (experiments.plan(g, lrs=cls_lrs if g == "classification" else lrs)
                               for g in experiments.GROUPS)
    key = experiments.run_key
    # the ablation base runs are the first three inpainting AFNO seeds: trained once
    assert [key(abl["runs"][n]) for n in abl["series"]["seeds"]] == \
        [key(inp["runs"][n]) for n in inp["series"]["mixers"]["afno"][:3]]
    # each mixer's seed-0 run at its selected rate is the sweep run at that rate (trained once)
    for m, lr in lrs.items():
        sweep = inp["runs"][inp["series"]["sweep"][m][f"{lr:g}"]]
        assert key(sweep) == key(inp["runs"][f"inpaint-{m}-s0"]) and sweep["lr"] == lr
        assert all(inp["runs"][n]["lr"] == lr for n in inp["series"]["mixers"][m])
    # the one-block AFNO of the ablations is the parameter-matched variant
    assert [key(abl["runs"][n]) for n in abl["series"]["blocks"]["1"]] == \
        [key(inp["runs"][n]) for n in inp["series"]["matched"]["afno-k1"]]
    assert all(abl["runs"][n]["lr"] == lrs["afno"] for n in abl["runs"])
    assert key(abl["runs"]["abl-hard-s0"]) != key(abl["runs"]["abl-base-s0"])
    # the seed rule: five seeds for the headline comparison, three for every other setting
    assert all(len(v) == 5 for v in inp["series"]["mixers"].values())
    for p in (abl, res, cls, seg):
        for path, v in experiments.setting_runs(p["series"]):
            assert len(v) >= 3 or path.startswith("sweep "), (path, v)   # a sweep rate: selection only
    assert set(res["series"]["mixers"]) == {"learned", "none"}
    for p in (inp, abl, res, cls, seg):
        for cfg in p["runs"].values():
            train.validate_config(train.TrainConfig(**cfg))           # every planned run is a valid config
    # the data the headline runs learn from: a 16x16 token grid, a validation split for the sweep
    c = inp["runs"]["inpaint-afno-s0"]
    assert (c["img_size"] // c["patch_size"], c["n_val"] > 0) == (16, True)
    fast = experiments.plan("inpainting", fast=True)["runs"]["inpaint-afno-s0"]
    assert fast["epochs"] < c["epochs"]
    assert all(c["eval_sizes"] == (64,) for c in res["runs"].values())
    # the miniatures of the paper's other experiments: >= 10 classes and >= 5k training
    # images; a segmentation grid of at least 32x32 tokens
    c = cls["runs"]["cls-afno-s0"]
    assert c["n_train"] - c["n_val"] >= 5000 and tasks.NUM_CLASSES["classification"] >= 10
    assert "cls-identity-s0" in cls["runs"]
    for m, lr in cls_lrs.items():   # classification: each mixer at its own swept rate, seed 0 shared
        sweep = cls["runs"][cls["series"]["sweep"][m][f"{lr:g}"]]
        assert key(sweep) == key(cls["runs"][f"cls-{m}-s0"]) and sweep["lr"] == lr
        assert all(cls["runs"][n]["lr"] == lr for n in cls["series"]["settings"][m])
    assert set(cls["series"]["sweep"]["afno"]) == {f"{lr:g}" for lr in experiments.CLS_LRS}
    with pytest.raises(ValueError, match="missing"):
        experiments.plan("classification", lrs=lrs)   # no rate for the network without mixing
    c = seg["runs"]["seg-afno-25-s0"]
    assert c["img_size"] // c["patch_size"] >= 32 and c["mixer_kw"]["keep_fraction"] == 0.25
    with pytest.raises(ValueError, match="group must be"):
        experiments.plan("detection")
    with pytest.raises(ValueError, match="missing"):
        experiments.plan("inpainting", lrs={"afno": 1e-3})


def test_run_cache_key_changes_with_the_library_code():
    """A cached run is reused only by the same configuration AND the same afno_lite sources."""
    cfg = experiments.plan("inpainting")["runs"]["inpaint-afno-s0"]
    key = experiments.run_key
    assert key(cfg, code="aaaa") == key(dict(cfg), code="aaaa")
    assert key(cfg, code="aaaa") != key(cfg, code="bbbb")
    assert key(cfg) == key(cfg, code=train.code_hash())


def test_cli_options_are_generated_from_the_config_dataclass():
    import dataclasses

    p = train.parser()
    flags = {s for a in p._actions for s in a.option_strings}
    for f in dataclasses.fields(train.TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        assert flag in flags or "--no-" + flag[2:] in flags, f.name
    args = vars(p.parse_args(["--img-size", "16", "--eval-sizes", "32", "64", "--no-progress", "--resume",
                              "--max-steps", "3", "--pde-T", "0.5"]))
    assert set(args) == {f.name for f in dataclasses.fields(train.TrainConfig)}
    assert (args["img_size"], args["eval_sizes"], args["progress"], args["resume"]) == (16, [32, 64], False, True)
    assert (args["max_steps"], args["pde_T"], args["threads"], args["lr"]) == (3, 0.5, None, train.TrainConfig().lr)


def test_code_hash_changes_with_the_code_and_atomic_writes_leave_no_temp(tmp_path, monkeypatch):
    from afno_lite.train import provenance

    pkg = tmp_path / "afno_lite"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    monkeypatch.setattr(provenance, "_PACKAGE", pkg)
    h1 = provenance.code_hash()
    assert h1 == provenance.code_hash() and len(h1) == 16
    (pkg / "sub" / "b.py").write_text("y = 3\n")
    assert provenance.code_hash() != h1
    out = provenance.write_json(tmp_path / "r.json", {"a": [1, 2]})
    assert json.loads(out.read_text()) == {"a": [1, 2]} and sorted(p.name for p in tmp_path.iterdir()) == [
        "afno_lite", "r.json"]


def test_pos_embed_option_reaches_the_model_and_is_validated():
    res, model = train.fit(dict(TINY, epochs=1, pos_embed="none"), return_model=True)
    assert model.pos_embed is None and res["config"]["pos_embed"] == "none"
    with pytest.raises(train.ConfigError, match="pos_embed"):
        train.fit(dict(TINY, pos_embed="rope"))
    assert train.parser().parse_args(["--pos-embed", "none"]).pos_embed == "none"


def test_training_a_group_shows_one_progress_bar_over_its_runs(monkeypatch, tmp_path, capsys):
    """``make experiments`` runs for hours: a bar over the runs says how many are done; runs
    sharing a configuration train once and every name still gets its result."""
    trained = []

    def fake_train_one(task):
        trained.append(task[0])
        return task[0], {"final": task[0]}

    monkeypatch.setattr(experiments, "_train_one", fake_train_one)
    cfg = dict(task="inpainting", mixer="afno", epochs=1)
    runs = {"a": cfg, "b": dict(cfg, seed=1), "a-again": dict(cfg)}
    done, keys = experiments._train_all(runs, tmp_path, False, "cmd", 1, "code")
    assert len(trained) == 2 and keys["a"] == keys["a-again"] != keys["b"]
    assert set(done) == set(runs) and done["b"] == {"final": "b"}
    err = capsys.readouterr().err
    assert "[experiments] runs" in err and "2/2" in err


def test_a_groups_wall_time_includes_its_step_cost_measurement(monkeypatch, tmp_path):
    """The segmentation group's step costs are measured after its trainings: its recorded wall
    time must count them (it did not: the cost ran after the clock was read)."""
    clock = {"t": 0.0}
    monkeypatch.setattr(experiments.time, "perf_counter", lambda: clock["t"])

    def fake_train_all(runs, *args):
        clock["t"] += 10.0
        return {n: {} for n in runs}, {n: "key" for n in runs}

    def fake_costs(group, fast):
        clock["t"] += 100.0
        return {"grids": {}}

    monkeypatch.setattr(experiments, "_train_all", fake_train_all)
    monkeypatch.setattr(experiments, "_costs", fake_costs)
    doc = experiments.run_group("segmentation", fast=True, out_dir=tmp_path, run_root=tmp_path)
    assert doc["wall_time_s"] == 110.0 and doc["cost"] == {"grids": {}}


def test_pde_training_shows_the_solver_bar_while_it_makes_its_data(capsys):
    """A pde run is silent for as long as the solver makes its pairs unless the bar shows."""
    cfg = dict(task="pde", mixer="fno", mixer_kw={"modes": (2, 2)}, embed_dim=4, depth=1,
               patch_size=1, img_size=8, epochs=1, batch_size=4, n_train=4, n_test=2,
               pde_T=0.14, max_steps=1)
    train.fit(dict(cfg, data_seed=11, progress=False))
    assert "Navier-Stokes" not in capsys.readouterr().err
    train.fit(dict(cfg, data_seed=12))
    err = capsys.readouterr().err
    assert "Navier-Stokes: training pairs" in err and "Navier-Stokes: test pairs" in err


# --------------------------------------------------------------------------- found by probing (regressions)
def test_a_grid_the_mixer_cannot_run_is_refused_before_training(tmp_path, capsys):
    """FNO keeps every mode of the 8x8 training grid; a zero-shot eval grid of 4x4 tokens cannot
    hold them. The run trained and then crashed in the final evaluation (no results.json)."""
    cfg = dict(TINY, mixer="fno", mixer_kw={}, img_size=32, eval_sizes=(16,), epochs=1, max_steps=1,
               out=str(tmp_path / "run"))
    with pytest.raises(train.ConfigError, match=r"eval size 16.*modes"):
        train.fit(cfg)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    argv = ["--mixer", "fno", "--mixer-kw", '{"modes": [4, 4]}', "--img-size", "16", "--embed-dim", "8",
            "--depth", "1", "--epochs", "1", "--batch-size", "8", "--n-train", "8", "--n-test", "4", "--no-progress"]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert "img_size 16" in err and "modes=(4, 4)" in err and "Traceback" not in err


def test_out_as_a_path_object_writes_results_and_resumes(tmp_path):
    """``out`` may be an os.PathLike (the validation says so): results.json was never written
    (a PosixPath is not JSON) and the checkpoint's config did not load with weights_only."""
    part = tmp_path / "part"
    res = train.fit(dict(TINY, out=part, stop_after=1))
    assert res["config"]["out"] == str(part)
    assert json.loads((part / "results.json").read_text())["epochs_done"] == 1
    assert train.fit(dict(TINY, out=part, resume=True))["epochs_done"] == 2


def _unwritable_folder(tmp_path) -> Path:
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o555)
        return d
    for d in (Path("/sys/kernel"), Path("/proc/self")):   # root writes anywhere chmod allows
        try:
            (d / ".afno-probe").touch()
        except OSError:
            if d.is_dir():
                return d
        else:
            (d / ".afno-probe").unlink()
    pytest.skip("no folder this user cannot write to")


def test_an_unwritable_out_folder_is_refused_before_training(tmp_path):
    """The run trained an epoch and then died in torch.save with a deep RuntimeError."""
    d = _unwritable_folder(tmp_path)
    with pytest.raises(train.ConfigError, match="out=.*cannot be written"):
        train.fit(dict(TINY, out=str(d), epochs=1, max_steps=1))


def test_resume_accepts_a_list_where_the_checkpoint_has_a_tuple(tmp_path):
    """A run started from Python with ``modes=(2, 2)`` resumes from the command line, where JSON
    gives ``[2, 2]``: the same configuration, not a different one."""
    out = tmp_path / "run"
    cfg = dict(TINY, mixer="fno", mixer_kw={"modes": (2, 2)}, out=str(out))
    full = train.fit(dict(cfg, out=str(tmp_path / "full")))
    train.fit(dict(cfg, stop_after=1))
    resumed = train.fit(dict(cfg, mixer_kw={"modes": [2, 2]}, resume=True))
    assert resumed["weights_sha256"] == full["weights_sha256"]


def test_the_cli_records_the_command_it_ran(tmp_path):
    """results.json recorded the caller's sys.argv ("__main__.py ...", or pytest's) instead of
    the command, with the JSON of --mixer-kw unquoted: it could not be run again."""
    import shlex

    argv = ["--mixer-kw", '{"num_blocks": 4}', "--embed-dim", "16", "--depth", "1", "--img-size", "16",
            "--epochs", "1", "--max-steps", "1", "--batch-size", "8", "--n-train", "8", "--n-test", "4",
            "--no-progress", "--out", str(tmp_path / "run")]
    assert train.main(argv) == 0
    command = json.loads((tmp_path / "run" / "results.json").read_text())["command"]
    assert command == "python -m afno_lite.train " + shlex.join(argv)
    assert shlex.split(command)[3:] == argv


def test_no_full_batch_error_counts_the_validation_split():
    """n_train=16 holds two batches of 8, but n_val=12 leaves 4 training samples: the message
    blamed n_train alone."""
    with pytest.raises(train.ConfigError, match=r"n_train - n_val = 4 training samples"):
        train.fit(dict(TINY, n_train=16, n_val=12))


def test_metrics_refuse_mismatched_shapes_and_bad_windows():
    """psnr and relative_l2 broadcast a batch of 1 over the other (or failed deep in torch);
    ssim(window=0) failed in conv2d."""
    x, y = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    for metric in (train.psnr, train.relative_l2):
        with pytest.raises(ValueError, match="same shape"):
            metric(x, y[:1])
        with pytest.raises(ValueError, match="same shape"):
            metric(x, y[:, :, :8])
    for window in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="window"):
            train.ssim(x, y, window=window)


def test_plan_and_run_group_do_not_offer_all():
    """Only the command line takes 'all'; the functions' errors said it was accepted."""
    for f in (experiments.plan, experiments.run_group):
        with pytest.raises(ValueError, match="group must be one of") as e:
            f("all")
        assert "'all'" not in str(e.value).split("got")[0]
