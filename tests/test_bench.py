"""The scaling benchmark runs, writes valid JSON/PNG and computes its summaries correctly.
No timing is asserted: only structure, skipping logic and the arithmetic of the summaries."""
from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from afno_lite import bench

ROOT = Path(__file__).resolve().parents[1]
RESULT_KEYS = {"series", "mode", "C", "B", "H", "W", "N", "repeats", "median_ms", "p10_ms", "p90_ms", "min_ms",
               "peak_bytes", "peak_mb", "sessions_ms", "spread", "session_spreads", "remeasured", "unstable",
               "precision", "device", "first_call_s"}
TOP_KEYS = {"schema", "command", "argv", "date", "preset", "machine", "torch", "threads", "settings", "method",
            "series", "results", "skipped", "elapsed_s", "slopes", "goals", "device", "device_name", "cuda",
            "deadline"}


def test_tiny_run_from_the_command_line_writes_json_png_and_table(tmp_path):
    series = ["attention_h8", "afno", "afno_fast", "fft_floor"]
    cmd = [sys.executable, "-m", "afno_lite.bench", "scaling", "--tiny", "--out", str(tmp_path), "--no-progress",
           "--time-budget", "1000", "--series", *series]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "bench_scaling.json").read_text())
    assert TOP_KEYS <= set(data)
    assert data["schema"] == bench.SCHEMA and data["preset"] == "tiny"
    assert data["torch"] == torch.__version__ and data["threads"] >= 1
    assert {"cpu", "cpu_count", "platform", "load_average_start", "libc", "allocator_env"} <= set(data["machine"])
    assert "scaling --tiny" in data["command"]
    assert set(data["series"]) == set(series)
    # every (series, mode, grid) of the tiny preset is measured exactly once (nothing skipped with this budget)
    expected = {(s, m, h * w) for s in series for m in bench.PASSES for h, w in bench.PRESETS["tiny"]["grids"]}
    got = [(r["series"], r["mode"], r["N"]) for r in data["results"]]
    assert sorted(got) == sorted(expected) and data["skipped"] == []
    assert data["settings"]["sessions"] == 1 and "sessions" in data["method"] and "threads" in data["method"]["timing"]
    for r in data["results"]:
        assert RESULT_KEYS <= set(r)
        assert r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] and r["min_ms"] <= r["median_ms"]
        assert r["sessions_ms"] == [r["median_ms"]] and r["spread"] == pytest.approx(r["p90_ms"] / r["p10_ms"])
        assert isinstance(r["unstable"], bool)
        assert r["repeats"] >= bench.PRESETS["tiny"]["min_repeats"] and r["peak_bytes"] >= 0
        assert isinstance(r["minor_faults"], int) and r["minor_faults"] >= 0
    # which code was timed: the commit, whether afno_lite had uncommitted changes, and its hash
    from afno_lite.train.provenance import code_hash
    assert data["code"]["code_hash"] == code_hash()
    assert data["code"]["git_commit"] == "unknown" or len(data["code"]["git_commit"]) == 40
    assert data["code"]["git_dirty"] in (True, False, None)
    # a mixer's forward + backward holds more tensors than its forward alone
    peak = {(r["series"], r["mode"], r["N"]): r["peak_bytes"] for r in data["results"]}
    assert peak[("afno_fast", "fwd+bwd", 256)] > peak[("afno_fast", "fwd", 256)] > 0
    assert (tmp_path / "bench_scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "median ms per call" in proc.stdout and "Goals" in proc.stdout
    assert "afno_fast" in proc.stdout


def test_minor_faults_count_memory_taken_fresh_from_the_system():
    """64 MB is above glibc's largest mmap threshold (32 MB): each such tensor is mapped fresh
    and every 4 kB page it writes is one minor fault; a call that allocates nothing has none."""
    big = bench.series.minor_faults(lambda: torch.empty(2**24).fill_(1.0))
    assert big >= 2**24 * 4 // 4096 // 2          # at least half of the 16,384 pages
    y = torch.empty(2**16)
    assert bench.series.minor_faults(lambda: y.fill_(2.0)) < 64


def test_budgets_skip_and_say_why():
    res = bench.run_scaling("tiny", grids=[(8, 8), (16, 16)], channels=[32], series=["fno_all", "afno_fast"],
                            modes=["fwd"], memory_budget=0.2, time_budget=1000, progress=False)
    # FNO with all modes: 2*9*5*32*32 parameters = 0.35 MB of float32 > 0.2 MB, before anything is built
    reasons = {(s["series"], s["N"]): s["reason"] for s in res["skipped"]}
    assert reasons[("fno_all", 64)] == "parameters alone need 0.352 MB > memory budget 0.2 MB"
    assert reasons[("fno_all", 256)] == "skipped at a smaller grid"
    assert {r["series"] for r in res["results"]} == {"afno_fast"}
    res = bench.run_scaling("tiny", grids=[(8, 8), (16, 16)], channels=[32], series=["afno_fast"],
                            modes=["fwd"], time_budget=1e-9, progress=False)
    assert res["results"] == []                                # the warm-up call is over 2 x budget
    assert res["skipped"][0]["N"] == 64 and "one call took" in res["skipped"][0]["reason"]
    assert res["skipped"][1] == dict(series="afno_fast", mode="fwd", C=32, B=1, H=16, W=16, N=256, precision="fp32",
                                     reason="skipped at a smaller grid")
    # predictions from the previous grid: attention grows as N^2 (time and memory), the rest as N^1.2 / N
    prev = dict(N=1024, median_ms=20.0, min_ms=10.0, peak_bytes=1000)
    t, mem = bench._predict(prev, "attention_h8", 4096)
    assert t == pytest.approx(0.16) and mem == 16000
    t, mem = bench._predict(prev, "afno_fast", 4096)
    assert t == pytest.approx(0.01 * 4**1.2) and mem == 4000
    assert bench._predict(None, "afno", 64) == (None, None)


def test_bad_arguments_are_named(capsys):
    with pytest.raises(ValueError, match="preset"):
        bench.run_scaling("huge")
    with pytest.raises(ValueError, match="sessions must be an integer >= 1"):
        bench.run_scaling("tiny", sessions=0, progress=False)
    with pytest.raises(SystemExit):
        bench.main(["scaling", "--tiny", "--sessions", "0"])
    err = capsys.readouterr().err
    assert "--sessions" in err and ">= 1" in err
    with pytest.raises(ValueError, match="unknown series"):
        bench.run_scaling("tiny", series=["afno_slow"], progress=False)
    with pytest.raises(ValueError, match="grids"):
        bench.run_scaling("tiny", grids=["1x8"], progress=False)
    with pytest.raises(SystemExit):
        bench.main(["scaling", "--tiny", "--quick"])


def test_peak_memory_counts_live_tensors_only():
    n = 1 << 18                       # 1 MiB of float32

    def two_in_sequence():
        a = torch.ones(n)
        del a
        b = torch.ones(n)
        return b

    def two_at_once():
        a, b = torch.ones(n), torch.ones(n)
        return a + b                  # three alive at the peak

    assert bench.peak_memory_bytes(two_in_sequence) == 4 * n
    assert bench.peak_memory_bytes(two_at_once) == 3 * 4 * n
    w = torch.randn(64, 64, requires_grad=True)
    x = torch.randn(128, 64)
    # forward output + ReLU output (saved) + gradient flowing back: at least the weight's gradient
    assert bench.peak_memory_bytes(lambda: (x @ w).relu().sum().backward()) >= 4 * (128 * 64 + 64 * 64)


def _synthetic(ts: dict, B: int = 1, C: int = 256, **extra) -> dict:
    """A result at fwd+bwd, ``C`` channels, batch ``B`` with given times {series: {N: ms}}: a
    number is a median as results written before sessions had it (no ``sessions_ms``), a list the
    per-session medians; ``extra`` (e.g. ``precision``, ``device``) goes into every row."""
    rows = []
    for s, d in ts.items():
        for N, t in d.items():
            row = dict(series=s, mode="fwd+bwd", C=C, B=B, H=int(math.isqrt(N)), W=N // int(math.isqrt(N)), N=N,
                       median_ms=statistics.median(t) if isinstance(t, list) else t, peak_bytes=0, **extra)
            if isinstance(t, list):
                row["sessions_ms"] = t
            rows.append(row)
    return {"schema": bench.SCHEMA, "results": rows, "skipped": []}


def test_slopes_crossover_and_goal_ratios_arithmetic():
    Ns = [64, 256, 1024, 4096, 16384]
    res = _synthetic({
        "afno_fast": {N: 0.01 * N**1.1 for N in Ns},
        "attention_h8": {N: 1e-4 * N**2 for N in Ns},
        "fft_floor": {N: 0.005 * N**1.1 for N in Ns},
        "afno_nvidia_style": {N: 0.02 * N**1.1 for N in Ns},
    })
    assert bench.fit_slope(Ns, [N**1.5 for N in Ns]) == pytest.approx(1.5)
    assert bench.fit_slope([4], [1.0]) is None
    # 0.01 N^1.1 = 1e-4 N^2  <=>  N = 100^(1/0.9) ~ 167: between the grids 64 and 256
    co = bench.crossover(res)
    assert co["between"] == [64, 256] and co["N"] == round(100 ** (1 / 0.9))
    g = bench.goal_ratios(res)
    assert g["vs_fft_floor"]["value"] == pytest.approx(2.0) and g["vs_fft_floor"]["met"] is True
    one = {"median": 0.5, "min": 0.5, "max": 0.5, "n": 1}
    assert g["vs_nvidia"]["B1"] == {1024: one, 4096: one, 16384: one} and "stand-in" in g["vs_nvidia"]["note"]
    # B=8 was not measured: the goal is not decided, and says so
    assert g["vs_nvidia"]["met"] is None and g["vs_nvidia"]["not_measured"] == ["B=8"]
    assert g["vs_nvidia"]["met_where_measured"] is True
    assert g["growth_exponent"]["afno_fast_C256"] == pytest.approx(1.1, abs=1e-3)
    assert g["growth_exponent"]["attention_h8_C256"] == pytest.approx(2.0, abs=1e-3)
    assert g["crossover_vs_attention_h8"]["met"] is False           # ~167 > 128
    slow = _synthetic({"afno_fast": {64: 2.0, 256: 1.0}, "attention_h8": {64: 1.0, 256: 2.0}})
    assert bench.crossover(slow)["N"] == 128                         # log-midpoint
    never = _synthetic({"afno_fast": {64: 2.0, 256: 3.0}, "attention_h8": {64: 1.0, 256: 2.0}})
    assert bench.crossover(never)["N"] is None
    text = bench.format_goals(res)
    assert "2.00" in text and "stand-in" in text and "B=8 not measured" in text
    assert "not measured" in bench.format_goals(_synthetic({}))


def test_goal_ratios_are_computed_per_session_and_summarised():
    # session by session: 1/2, 3/2, 2/8 -> median 0.5, range [0.25, 1.5]; the ratio of the
    # medians (2/2 = 1) would hide that the two series were timed together in each session
    res = _synthetic({"afno_fast": {1024: [1.0, 3.0, 2.0]}, "afno_nvidia_style": {1024: [2.0, 2.0, 8.0]}})
    res["results"] += _synthetic({"afno_fast": {1024: [0.4, 0.4, 0.4]},
                                  "afno_nvidia_style": {1024: [1.0, 1.0, 1.0]}}, B=8)["results"]
    assert bench.session_ratios(*res["results"][:2]) == [0.5, 1.5, 0.25]
    v = bench.goal_ratios(res)["vs_nvidia"]
    assert v["B1"] == {1024: {"median": 0.5, "min": 0.25, "max": 1.5, "n": 3}}
    assert v["B8"] == {1024: {"median": 0.4, "min": 0.4, "max": 0.4, "n": 3}}
    assert v["met"] is True and v["met_every_session"] is False and v["not_measured"] == []
    assert v["limit"] == 0.5 and v["B1_max"] == 0.5
    text = bench.format_goals(res)
    assert "N=1024: 0.50 [0.25, 1.50] (n=3)" in text and "every session: no" in text
    assert bench.ratio_summary([]) is None
    assert bench.ratio_summary([3.0, 1.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 2}


def test_nvidia_goal_leaves_out_grids_where_nvidia_computes_less():
    """On a grid with W > H NVIDIA's layer keeps only the columns k_W <= H/2 (another function,
    half the MLP work): that ratio is not like for like and must not decide the goal."""
    same = {1024: [1.0] * 3, 4096: [1.0] * 3}
    res = _synthetic({"afno_fast": same, "afno_nvidia_style": {N: [2.5] * 3 for N in same}})
    for s, t in (("afno_fast", 1.0), ("afno_nvidia_style", 1.2)):          # 32 x 64: ratio 0.83
        res["results"].append(dict(series=s, mode="fwd+bwd", C=256, B=1, H=32, W=64, N=2048, median_ms=t,
                                   sessions_ms=[t] * 3, peak_bytes=0))
    v = bench.goal_ratios(res)["vs_nvidia"]
    assert list(v["B1"]) == [1024, 4096] and v["excluded"] == {"B=1": [2048]}
    assert v["met_where_measured"] is True and v["B1_max"] == 0.4
    text = bench.format_goals(res)
    assert "left out: B=1 N=2048" in text and "k_W <= H/2" in text and "N=2048:" not in text


def test_floor_goal_uses_the_faster_layout_in_each_session():
    res = _synthetic({"afno_fast": {4096: [4.0, 4.0, 4.0]},
                      "fft_floor": {4096: [1.0, 4.0, 3.0]},        # channels-last: fastest in session 1 only
                      "fft_floor_cf": {4096: [2.0, 2.0, 2.0]}})
    f = bench.goal_ratios(res)["vs_fft_floor"]
    d = f["B1"][4096]
    assert d["faster_layout"] == ["channels_last", "channels_first", "channels_first"]
    assert d["best_sessions"] == [4.0, 2.0, 2.0]
    assert d["best"] == {"median": 2.0, "min": 2.0, "max": 4.0, "n": 3}
    assert d["channels_first"] == {"median": 2.0, "min": 2.0, "max": 2.0, "n": 3}
    assert d["channels_last"]["median"] == pytest.approx(1.333) and d["channels_last"]["max"] == 4.0
    assert f["value"] == 2.0 and f["vs_channels_first_floor"] == 2.0
    assert f["met"] is True and f["met_every_session"] is False          # median 2.0 <= 2.0; session 1 at 4.0
    # from medians alone (a result written before sessions): the faster median, both layouts reported
    old = _synthetic({"afno_fast": {1024: 1.0, 4096: 3.0}, "fft_floor": {4096: 3.0}, "fft_floor_cf": {4096: 1.0}})
    f = bench.goal_ratios(old)["vs_fft_floor"]
    assert list(f["B1"]) == [4096]                                       # N >= 4096 only
    assert f["B1"][4096]["best"]["median"] == 3.0 and f["B1"][4096]["faster_layout"] == ["channels_first"]
    assert f["vs_channels_last_floor"] == 1.0 and f["met"] is False
    assert "faster floor: channels-first" in bench.format_goals(old)


def test_old_result_files_give_goals_with_one_session(tmp_path):
    """A result written before sessions (no sessions_ms, goals in the old form) still gives the
    current goals, each ratio from n = 1 session."""
    Ns = [1024, 4096]
    res = _synthetic({"afno_fast": {N: 1.0 * N for N in Ns}, "afno_nvidia_style": {N: 2.5 * N for N in Ns},
                      "fft_floor": {N: 0.8 * N for N in Ns}, "fft_floor_cf": {N: 0.4 * N for N in Ns}})
    res["results"] += _synthetic({"afno_fast": {N: 1.0 * N for N in Ns},
                                  "afno_nvidia_style": {N: 2.0 * N for N in Ns}}, B=8)["results"]
    res["goals"] = {"vs_nvidia": {"B1": {"1024": 0.4}, "met": True}, "vs_fft_floor": {"value": 1.25, "met": True}}
    (tmp_path / "bench_scaling.json").write_text(json.dumps(res))
    old = bench.load_results(tmp_path / "bench_scaling.json")
    g = bench.goal_ratios(old)
    assert g["vs_nvidia"]["B1"][1024] == {"median": 0.4, "min": 0.4, "max": 0.4, "n": 1}
    assert all(s["n"] == 1 for B in (1, 8) for s in g["vs_nvidia"][f"B{B}"].values())
    assert g["vs_nvidia"]["met"] is True and g["vs_nvidia"]["met_every_session"] is True
    assert g["vs_fft_floor"]["B1"][4096]["best"] == {"median": 2.5, "min": 2.5, "max": 2.5, "n": 1}
    assert g["vs_fft_floor"]["met"] is False
    text = bench.format_goals(old)                 # recomputed, not the stale goals stored in the file
    assert "0.40 (n=1)" in text and "2.50 (n=1)" in text and "NOT met" in text
    assert bench.slopes(old)[0]["nlogn_b_ns"] is not None


def test_fit_nlogn_recovers_fixed_cost_and_slope():
    Ns = [1024, 2048, 4096, 8192, 16384]
    ts = [0.5 + 3e-6 * N * math.log2(N) for N in Ns]       # ms: 0.5 ms fixed, 3 ns per N log2 N
    fit = bench.fit_nlogn(Ns, ts)
    assert fit["a_ms"] == pytest.approx(0.5, rel=1e-9) and fit["b_ns"] == pytest.approx(3.0, rel=1e-9)
    assert fit["max_rel_residual"] < 1e-9 and fit["points"] == 5
    # the log-log exponent of the same data is pulled below 1.1 by the fixed cost
    assert bench.fit_slope(Ns, ts) < 1.08
    noisy = bench.fit_nlogn(Ns, [t * (1.2 if i == 2 else 1) for i, t in enumerate(ts)])
    assert 0.05 < noisy["max_rel_residual"] < 0.2
    assert bench.fit_nlogn([4096], [1.0]) is None and bench.fit_nlogn([4096, 4096], [1.0, 2.0]) is None
    res = _synthetic({"afno_fast": dict(zip([64, 256, *Ns], [0.51, 0.52, *ts], strict=True))})
    (row,) = bench.slopes(res)
    assert row["nlogn_a_ms"] == pytest.approx(0.5) and row["nlogn_b_ns"] == pytest.approx(3.0)  # N >= 1024 only
    ge = bench.goal_ratios(res)["growth_exponent"]
    assert ge["afno_fast_C256_nlogn"]["b_ns"] == pytest.approx(3.0) and ge["informational"] is True
    assert "largest residual 0 %, 5 points" in bench.format_goals(res)


def test_a_two_point_or_negative_intercept_nlogn_fit_is_labelled_as_such():
    """Two points fit a line exactly (a residual of 0 says nothing), and a negative fixed cost
    means t = a + b N log2 N does not describe the points: the goals text says both."""
    res = _synthetic({"afno_fast": {1024: 1.0, 4096: 6.0}})   # steeper than N log N: a < 0
    fit = bench.goal_ratios(res)["growth_exponent"]["afno_fast_C256_nlogn"]
    assert fit["points"] == 2 and fit["a_ms"] < 0
    text = bench.format_goals(res)
    assert "2 points: an exact fit" in text and "negative fixed cost" in text
    assert "largest residual" not in text


def _fake_blocks(monkeypatch, scatter):
    """Replace the interleaved timing: ``scatter(name, block)`` says whether a series' calls in the
    ``block``-th timed block scatter by 10x (1 ms and 10 ms) or are steady (1 ms)."""
    from afno_lite.bench import runner

    blocks = []

    def fake(calls, repeats):
        blocks.append(list(calls))
        k = len(blocks) - 1
        return {n: [1e-3 * (10 if scatter(n, k) and i % 2 else 1) for i in range(repeats)] for n in calls}

    monkeypatch.setattr(runner, "interleaved_seconds", fake)
    return blocks


def test_scattered_series_is_remeasured_then_flagged_steady_one_is_not(monkeypatch):
    kw = dict(grids=[(8, 8)], channels=[16], series=["afno_fast", "fft_floor"], passes=["fwd"], time_budget=1000,
              measure_memory=False, progress=False)
    blocks = _fake_blocks(monkeypatch, lambda n, k: n == "afno_fast")
    res = bench.run_scaling("tiny", **kw)
    assert blocks == [["afno_fast", "fft_floor"]] * 2                  # timed, then re-measured once, together
    row = {r["series"]: r for r in res["results"]}
    assert row["afno_fast"]["unstable"] is True and row["afno_fast"]["session_spreads"] == [10.0]
    assert row["fft_floor"]["unstable"] is False and row["fft_floor"]["spread"] == 1.0
    assert row["afno_fast"]["remeasured"] == 1 and row["afno_fast"]["repeats"] == 3   # the re-measure replaces
    assert "!" in bench.format_table(res)
    # scattered in the first block only: re-measured, not flagged
    blocks = _fake_blocks(monkeypatch, lambda n, k: n == "afno_fast" and k == 0)
    res = bench.run_scaling("tiny", **kw)
    assert len(blocks) == 2 and not any(r["unstable"] for r in res["results"])
    assert "!" not in bench.format_table(res)
    # steady: timed once
    blocks = _fake_blocks(monkeypatch, lambda n, k: False)
    res = bench.run_scaling("tiny", **kw)
    assert len(blocks) == 1 and all(r["remeasured"] == 0 and not r["unstable"] for r in res["results"])


def test_sessions_repeat_every_configuration_and_reuse_the_first_skips(monkeypatch):
    blocks = _fake_blocks(monkeypatch, lambda n, k: False)
    res = bench.run_scaling("tiny", grids=[(8, 8), (16, 16)], channels=[32], series=["fno_all", "afno_fast"],
                            passes=["fwd"], memory_budget=0.2, time_budget=1000, sessions=3, measure_memory=False,
                            progress=False)
    # fno_all is skipped once per grid (decided in the first session), afno_fast timed in every session
    assert [(s["series"], s["N"]) for s in res["skipped"]] == [("fno_all", 64), ("fno_all", 256)]
    assert blocks == [["afno_fast"]] * 6 and res["settings"]["sessions"] == 3
    for r in res["results"]:
        assert len(r["sessions_ms"]) == 3 and r["median_ms"] == statistics.median(r["sessions_ms"])
        assert 3 * 2 <= r["repeats"] <= 3 * 3                          # tiny: 2 to 3 calls per session
    assert bench.goal_ratios(res)["vs_nvidia"]["met"] is None


def test_quick_preset_adds_batch_8_goal_configurations(monkeypatch):
    from afno_lite.bench import runner

    seen = []
    monkeypatch.setattr(runner, "_run_config", lambda cfg, names, key, state, *a: seen.append((key, names, a[-1]))
                        or len(names))
    res = bench.run_scaling("quick", progress=False)
    assert res["settings"]["sessions"] == 3 and {s for *_, s in seen} == {0, 1, 2}
    b8 = [(key, names) for key, names, s in seen if key[2] == 8 and s == 0]
    assert [key for key, _ in b8] == [("fwd+bwd", 256, 8, (32, 32), "fp32"), ("fwd+bwd", 256, 8, (64, 64), "fp32")]
    assert all(set(names) <= set(runner.GOAL_SERIES) and "afno_fast" in names and "fft_floor_cf" in names
               for _, names in b8)
    assert "afno_nvidia_style" in b8[0][1] or "afno_physicsnemo" in b8[0][1]
    # the CPU presets: fp32 only, and no compiled series unless named
    assert {key[4] for key, *_ in seen} == {"fp32"}
    assert not any(set(names) & set(bench.COMPILED) for _, names, _ in seen)
    seen.clear()
    bench.run_scaling("quick", passes=["fwd+bwd"], sessions=1, progress=False)   # a chosen subset: no extras
    assert {key[2] for key, *_ in seen} == {1} and {s for *_, s in seen} == {0}


def test_nvidia_stand_in_agrees_with_fast_afno(capsys):
    rep = bench.run_nvidia(grids=[(8, 8)], channels=16, batches=[1], repeats=1)
    out = capsys.readouterr().out
    row = rep["rows"][0]
    assert row["max_abs_diff"]["nvidia_style"] < 1e-5
    if not rep["physicsnemo"]:
        assert "physicsnemo is not importable" in out
    assert "stand-in" in out and row["ratio_vs_nvidia_style"] > 0


def test_plot_and_table_from_a_result():
    import matplotlib

    matplotlib.use("Agg")
    res = _synthetic({"afno_fast": {64: 1.0, 1024: 4.0, 4096: 20.0}, "attention_h8": {64: 0.5, 1024: 30.0}})
    res["skipped"] = [dict(series="attention_h8", mode="fwd+bwd", C=256, B=1, H=64, W=64, N=4096, reason="x")]
    fig = bench.plot_scaling(res)                               # one panel: slopes in the legend
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "AFNO fast (slope 1.16)" in labels                    # log(20/4)/log(4), over N >= 1024
    res["results"] += [dict(r, B=8) for r in res["results"]]
    fig = bench.plot_scaling(res)                               # two panels: a shared legend
    assert len(fig.axes) == 2 and len(fig.legends) == 1
    table = bench.format_table(res)
    assert "skip" in table and "64x64" in table
    with pytest.raises(ValueError, match="no measurements"):
        bench.plot_scaling(res, C=64)


def test_widgets_subcommand_prints_each_explorer_against_the_goal(capsys, monkeypatch):
    """The only test that runs ``measure_latency`` (through the command line)."""
    from afno_lite.bench import cli

    seen = []
    monkeypatch.setattr(cli, "run_widgets", lambda **kw: seen.append(bench.run_widgets(**kw)))
    assert bench.main(["widgets", "--n", "2", "--size", "32"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "150 ms goal" in ln]
    assert len(lines) == 3 and all("median" in ln and "p90" in ln for ln in lines)
    (out,) = seen
    assert set(out) == {"spectrum", "sparsity", "afno_blocks"}
    for row in out.values():
        assert set(row) == {"median_ms", "p90_ms", "n"}
        assert row["n"] == 2 and 0 < row["median_ms"] <= row["p90_ms"]


# --------------------------------------------------------------------------- step costs
def test_step_costs_are_measured_then_predicted_and_labelled():
    from afno_lite.bench.stepcost import grid_costs, step_cost

    cfg = dict(task="segmentation", mixer="attention", mixer_kw={"num_heads": 2}, embed_dim=8, depth=1,
               mlp_ratio=1.0, patch_size=2)
    one = step_cost(cfg, 8, repeats=1)
    assert one["measured"] and one["tokens"] == 64 and one["step_s"] > 0 and one["peak_bytes"] > 0
    # attention's scores alone, [1, heads, N, N] float32, are part of the step's tensors
    assert one["peak_bytes"] >= 2 * 64 * 64 * 4
    # a budget no grid can meet: the first grid is measured, the next ones predicted and labelled
    rows = grid_costs(cfg, grids=(8, 16, 32), budget_s=1e-9, repeats=1)
    assert [r["measured"] for r in rows] == [True, False, False]
    assert all("predicted_from" in r for r in rows[1:])
    # predicted memory grows with the mixer's exponent (2 for attention): x16 per doubling of the side
    assert rows[1]["peak_bytes"] == int(rows[0]["peak_bytes"] * 16)
    assert rows[2]["flops"] > rows[1]["flops"] > rows[0]["flops"]
    with pytest.raises(ValueError, match="task='segmentation'"):
        step_cost(dict(cfg, task="inpainting"), 8)


# --------------------------------------------------------------------------- GPU preset
def test_gpu_preset_dry_run_on_cpu_from_the_command_line(tmp_path):
    """``scaling --gpu --device cpu --tiny``: the GPU preset's code on tiny shapes (structure only)."""
    cmd = [sys.executable, "-m", "afno_lite.bench", "scaling", "--gpu", "--device", "cpu", "--tiny", "--out",
           str(tmp_path), "--no-progress", "--name", "bench_scaling_gpu", "--threads", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "bench_scaling_gpu.json").read_text())
    assert (tmp_path / "bench_scaling_gpu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert TOP_KEYS <= set(data) and data["preset"] == "gpu_tiny" and data["device"] == "cpu"
    assert data["torch"] == torch.__version__ and data["cuda"] == torch.version.cuda and data["device_name"]
    assert data["deadline"] is None and data["settings"]["precisions"] == ["fp32", "bf16"]
    nvidia = "afno_physicsnemo" if data["machine"]["physicsnemo"] else "afno_nvidia_style"
    expected = {"attention_h8", nvidia, "afno_fast", "afno_fast_compiled", "afno_fast_graphs", "fft_floor",
                "fft_floor_cf"}
    assert set(data["series"]) == expected
    rows = data["results"]
    assert data["skipped"] == [], data["skipped"]
    for r in rows:
        assert RESULT_KEYS <= set(r) and r["device"] == "cpu" and r["mode"] == "fwd+bwd"
        assert r["first_call_s"] > 0 and r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert (r["peak_bytes"] is None) == (r["series"] in bench.COMPILED)
    got = {(r["series"], r["precision"], r["B"], r["N"]) for r in rows}
    eager = expected - set(bench.COMPILED)
    want = {(s, p, B, N) for s in eager for p in ("fp32", "bf16") for B in (1, 2) for N in (64, 256)}
    want |= {(s, p, 1, 64) for s in bench.COMPILED for p in ("fp32", "bf16")}   # the preset's "only" rule
    assert got == want
    out = proc.stdout
    assert "GPU preset 'gpu_tiny' on cpu: estimated about" in out
    assert "bf16" in out and "GPU goals" in out and "not evaluated: no rows measured on a CUDA device" in out


def test_gpu_preset_is_sized_for_five_minutes():
    est = bench.estimate_seconds("gpu")
    assert est["seconds"] <= 300 and est["deadline_s"] <= 280
    cfg = bench.PRESETS["gpu"]
    assert cfg["channels"] == [256, 768] and cfg["batches"] == [1, 8] and cfg["precisions"] == ["fp32", "bf16"]
    assert max(h * w for h, w in cfg["grids"]) == 65536 and cfg["sessions"] >= 3 and cfg["modes"] == ["fwd+bwd"]


def test_deadline_stops_the_run_and_says_so():
    res = bench.run_scaling("tiny", channels=[16], series=["afno_fast"], passes=["fwd"], deadline_s=0.0,
                            progress=False)
    assert res["results"] == [] and res["deadline"]["stopped_in_session"] == 1
    assert [s["N"] for s in res["skipped"]] == [64, 256]
    assert all("deadline" in s["reason"] and s["precision"] == "fp32" for s in res["skipped"])


def test_a_failing_series_is_skipped_with_its_error(monkeypatch):
    from afno_lite.bench import runner

    real = runner.build

    def build(name, *a, **kw):
        if name == "fft_floor":
            raise RuntimeError("no such kernel")
        return real(name, *a, **kw)

    monkeypatch.setattr(runner, "build", build)
    res = bench.run_scaling("tiny", grids=[(8, 8)], channels=[16], series=["afno_fast", "fft_floor"],
                            passes=["fwd"], precisions=["fp32", "bf16"], measure_memory=False, progress=False)
    assert {(r["series"], r["precision"]) for r in res["results"]} == {("afno_fast", "fp32"), ("afno_fast", "bf16")}
    assert [s["reason"] for s in res["skipped"]] == ["failed: RuntimeError: no such kernel"] * 2
    assert "bf16" in bench.format_table(res)


def _gpu_synthetic() -> dict:
    """A CUDA result: the fast AFNO at 0.4 x the stand-in and 2.5 x the channels-first floor everywhere,
    the compiled path at 0.8 ms on the plateau, except bf16 C=768 B=8 where the AFNO ratio is 0.6."""
    rows = []
    Ns = [1024, 4096, 16384, 65536]
    for p in ("fp32", "bf16"):
        for C in (256, 768):
            for B in (1, 8):
                f = 0.6 if (p, C, B) == ("bf16", 768, 8) else 0.4
                ts = {"afno_fast": {N: [2.0, 2.5, 3.0] for N in Ns},
                      "afno_nvidia_style": {N: [2.0 / f, 2.5 / f, 3.0 / f] for N in Ns},
                      "fft_floor_cf": {65536: [0.8, 1.0, 1.2]}, "fft_floor": {65536: [2.0, 2.0, 2.0]},
                      "attention_h8": {1024: [1.0] * 3, 4096: [5.0] * 3, 16384: [10.0] * 3, 65536: [100.0] * 3}}
                if (C, B) == (256, 1):
                    ts["afno_fast_compiled"] = {N: [0.7, 0.8, 0.9] for N in Ns}
                rows += _synthetic(ts, B=B, C=C, precision=p, device="cuda:0")["results"]
    return {"schema": bench.SCHEMA, "results": rows, "skipped": [], "device": "cuda", "preset": "gpu"}


def test_gpu_goals_from_cuda_rows_only():
    res = _gpu_synthetic()
    g = bench.goal_ratios(res)
    v = g["gpu_vs_nvidia"]
    assert v["evaluated"] and v["not_measured"] == [] and "stand-in" in v["note"]
    assert list(v["ratios"]["fp32 C=256 B=1"]) == [4096, 65536 // 4, 65536]          # N >= 4096 only
    assert v["ratios"]["fp32 C=256 B=1"][4096] == {"median": 0.4, "min": 0.4, "max": 0.4, "n": 3}
    assert v["ratios"]["bf16 C=768 B=8"][65536]["median"] == 0.6 and v["met"] is False
    pl = g["gpu_plateau"]
    assert pl["series"] == "afno_fast_compiled" and list(pl["times_ms"]) == ["fp32 C=256 B=1", "bf16 C=256 B=1"]
    assert pl["times_ms"]["fp32 C=256 B=1"] == {N: {"median": 0.8, "min": 0.7, "max": 0.9, "n": 3}
                                                for N in (1024, 4096, 16384)}          # N <= 16384 only
    assert pl["met"] is True and pl["met_every_session"] is True
    assert pl["eager_ms"]["bf16 C=256 B=1"][1024]["median"] == 2.5
    fl = g["gpu_vs_floor_cf"]
    assert fl["ratios"]["fp32 C=256 B=1"] == {65536: {"median": 2.5, "min": 2.5, "max": 2.5, "n": 3}}
    assert fl["met"] is True and fl["floors"]["bf16 C=768 B=8"]["faster_layout"] == ["channels_first"] * 3
    assert g["gpu_crossover_vs_attention_h8"]["fp32"]["between"] == [1024, 4096]
    # the CPU goals do not read CUDA rows; the CPU results give no GPU goals
    assert g["vs_nvidia"]["met"] is None and g["vs_nvidia"]["B1"] == {}
    cpu = bench.goal_ratios(_synthetic({"afno_fast": {4096: 1.0}, "afno_nvidia_style": {4096: 2.0}}))
    assert cpu["gpu_vs_nvidia"]["evaluated"] is False and cpu["gpu_vs_nvidia"]["met"] is None
    assert cpu["vs_nvidia"]["B1"][4096]["median"] == 0.5
    text = bench.format_goals(res)
    assert "GPU goals" in text and "Goals (fwd+bwd, C=256" not in text
    assert "fast AFNO / AFNO, NVIDIA-style code [bf16 C=768 B=8]: N=4096: 0.60 [0.60, 0.60] (n=3)" in text
    assert "AFNO fast, compiled [fp32 C=256 B=1]: N=1024: 0.8 [0.7, 0.9] ms (n=3)" in text
    assert "goal <= 0.5 at every N >= 4096: NOT met" in text and "goal <= 1.0 ms" in text
    assert "goal <= 3.0 x the channels-first floor at N = 65536: met" in text
    assert "GPU goals" not in bench.format_goals(_synthetic({"afno_fast": {4096: 1.0}}))


def test_gpu_rows_table_and_plot_by_precision():
    import matplotlib

    matplotlib.use("Agg")
    res = _gpu_synthetic()
    table = bench.format_table(res)
    assert "fwd+bwd, C=256, B=1, fp32" in table and "fwd+bwd, C=768, B=8, bf16" in table
    fig = bench.plot_scaling(res, C=256, B=1)
    assert [ax.get_title() for ax in fig.axes] == ["fwd+bwd, C=256, B=1, fp32", "fwd+bwd, C=256, B=1, bf16"]
    fig = bench.plot_scaling(res, C=256, B=1, prec="bf16")
    assert len(fig.axes) == 1
    sl = {(r["series"], r["C"], r["B"], r["precision"]) for r in bench.slopes(res)}
    assert ("afno_fast", 768, 8, "bf16") in sl and ("afno_fast", 768, 8, "fp32") in sl
    assert bench.default_name(res) == "bench_scaling_gpu" and bench.default_name({"device": "cpu"}) == "bench_scaling"


def test_gpu_bench_script_fails_loudly_without_cuda(tmp_path):
    if torch.cuda.is_available():  # pragma: no cover - only on a GPU machine
        pytest.skip("a CUDA device is present: the script would run the real benchmark")
    env = {k: v for k, v in __import__("os").environ.items() if k != "GPU_BENCH_ALLOW_CPU"}
    env.update(OUT=str(tmp_path), PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(ROOT / "tests" / "gpu_bench.sh")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 3 and "no CUDA device" in proc.stderr and "GPU_BENCH_ALLOW_CPU=1" in proc.stderr


def test_gpu_scripts_keep_a_dry_run_away_from_the_shipped_results(tmp_path):
    """tests/gpu_env.sh's result_dir: $OUT when set; without it the GPU default on a GPU, and
    build/gpu_dry_run (ignored by git) for a CPU dry run, never notebooks/results."""
    def result_dir(on_gpu: int, out: str | None) -> str:
        env = {k: v for k, v in __import__("os").environ.items() if k != "OUT"}
        if out is not None:
            env["OUT"] = out
        cmd = f"source {ROOT / 'tests' / 'gpu_env.sh'}; result_dir gpu_check.sh notebooks/results {on_gpu}"
        proc = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert result_dir(0, None) == "build/gpu_dry_run" and (tmp_path / "build" / "gpu_dry_run").is_dir()
    assert result_dir(1, None) == "notebooks/results"
    assert result_dir(0, str(tmp_path / "o")) == result_dir(1, str(tmp_path / "o")) == str(tmp_path / "o")


def test_every_eager_series_builds_and_runs_on_the_benchmarks_device():
    """Each series the GPU preset times (the compiled ones aside) is built on the device it is
    handed and runs forward and backward there: the meta device stands in for the GPU, so a
    tensor made on the CPU on the way would stop it. physicsnemo's layer only when importable."""
    from afno_lite.bench import series as S

    for name in S.SERIES:
        if name in S.COMPILED or (name == "afno_physicsnemo" and S.physicsnemo_layer_cls() is None):
            continue
        _, fn, channels_first = S.build(name, 32, 16, 12, "meta")
        x = torch.randn(2, 16, 12, 32, device="meta", requires_grad=True)
        y = fn(x.permute(0, 3, 1, 2).contiguous() if channels_first else x)
        y.float().sum().backward()
        assert y.device.type == x.grad.device.type == "meta", name


# --------------------------------------------------------------------------- compiled series checked first
class _GradTimes(torch.autograd.Function):
    """Identity forward, gradient scaled: right output, wrong gradients (what torch 2.11's compiler
    did to the fast AFNO before ``to_channels_last`` stopped returning an alias)."""

    @staticmethod
    def forward(ctx, y, k):
        ctx.k = k
        return y.clone()

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_compiled_mismatch_passes_the_traced_layer_and_names_what_a_wrong_one_gets_wrong(precision):
    from afno_lite.bench.series import COMPILED_TOL, compiled_mismatch
    from afno_lite.fast import FastAFNO, compiled

    torch.manual_seed(0)
    m = FastAFNO(16, num_blocks=4)
    x, g = torch.randn(1, 8, 6, 16), torch.randn(1, 8, 6, 16)
    args = (x, g, "fwd+bwd", precision, "cpu")
    assert compiled_mismatch(m, compiled(m, backend="aot_eager"), *args) is None
    assert compiled_mismatch(m, m, x, g, "fwd", precision, "cpu") is None
    off = 3 * COMPILED_TOL[precision]
    why = compiled_mismatch(m, lambda t: m(t) * (1 + off), *args)
    assert why.startswith("compiled output differs from the eager layer: ") and "not timed" in why
    assert f"(6 of 6 tensors over the tolerance {COMPILED_TOL[precision]:g}, {precision})" in why
    why = compiled_mismatch(m, lambda t: _GradTimes.apply(m(t), 1.5), *args)
    # the output right, every gradient half as large again: the five gradients are named, not the output
    assert "off by 5.0" in why and f"(5 of 6 tensors over the tolerance {COMPILED_TOL[precision]:g}" in why
    # forward only: a wrong gradient is not looked at, a wrong output is
    assert compiled_mismatch(m, lambda t: _GradTimes.apply(m(t), 1.5), x, g, "fwd", precision, "cpu") is None
    assert "output off by" in compiled_mismatch(m, lambda t: m(t) * (1 + off), x, g, "fwd", precision, "cpu")
    within = compiled_mismatch(m, lambda t: m(t) * (1 + COMPILED_TOL[precision] / 3), *args)
    assert within is None

    def broken(t):
        raise RuntimeError("no kernel")

    assert compiled_mismatch(m, broken, *args) == "compiled check failed: RuntimeError: no kernel"


def test_a_compiled_series_that_is_not_the_eager_layer_is_skipped_not_timed(monkeypatch):
    """The benchmark checks a compiled series against its eager layer before its times count."""
    from afno_lite.bench import runner

    blocks = _fake_blocks(monkeypatch, lambda n, k: False)
    real_build = runner.build

    def build(name, C, H, W, device, compile_kw=None):
        if name != "afno_fast_compiled":
            return real_build(name, C, H, W, device, compile_kw)
        m, _, cf = real_build("afno_fast", C, H, W, device)     # no compiling in a unit test
        return m, (lambda t: _GradTimes.apply(m(t), wrong)), cf

    monkeypatch.setattr(runner, "build", build)
    kw = dict(grids=[(8, 8)], channels=[16], series=["afno_fast", "afno_fast_compiled"], passes=["fwd+bwd"],
              time_budget=1000, measure_memory=False, progress=False, sessions=2)
    wrong = 1.0
    res = bench.run_scaling("tiny", **kw)
    assert {r["series"] for r in res["results"]} == {"afno_fast", "afno_fast_compiled"} and res["skipped"] == []
    wrong = 2.0
    res = bench.run_scaling("tiny", **kw)
    assert [r["series"] for r in res["results"]] == ["afno_fast"]
    (skip,) = res["skipped"]
    assert skip["series"] == "afno_fast_compiled" and "off by 1.00e+00 of its largest entry" in skip["reason"]
    assert "(5 of 6 tensors over the tolerance 0.001, fp32); not timed" in skip["reason"]
    # checked after the first session's timing (whose first call compiles), then dropped for good
    assert blocks[-2:] == [["afno_fast", "afno_fast_compiled"], ["afno_fast"]]
