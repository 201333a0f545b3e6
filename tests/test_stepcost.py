"""Predicted step costs follow the measured memory growth (no timing is asserted)."""
from __future__ import annotations

import math

import pytest

from afno_lite.bench import stepcost


def _flops(cfg: dict, side: int) -> int:
    from afno_lite.train import TrainConfig, build_model, model_flops, validate_config

    tc = validate_config(TrainConfig(**dict(cfg, img_size=side * cfg["patch_size"], progress=False)))
    return model_flops(build_model(tc), tc.img_size)["total"]


def _fake_cost(peaks: dict):
    """step_cost with made-up peaks; its time is 1 ms per GFLOP (so predictions are exact)."""
    def fake(cfg, side, device="cpu", repeats=3):
        f = _flops(cfg, side)
        return {"tokens": side * side, "grid": [side, side], "measured": True, "step_s": 1e-12 * f,
                "peak_bytes": peaks[side], "flops": f, "device": "cpu", "threads": 1}
    return fake


def test_predicted_memory_follows_the_growth_of_the_last_two_measured_grids(monkeypatch):
    """Attention through a fused kernel: time grows like N^2 but memory like N. A prediction
    must extrapolate the memory that was measured, not the mixer's time exponent."""
    cfg = dict(task="segmentation", mixer="attention", mixer_kw={"num_heads": 2}, embed_dim=8, depth=1,
               mlp_ratio=1.0, patch_size=2)
    monkeypatch.setattr(stepcost, "step_cost", _fake_cost({8: 1000, 16: 4000}))
    # a budget between the step at side 8 and the one predicted at side 16
    budget = 1e-12 * (_flops(cfg, 16) + _flops(cfg, 32)) / 2
    rows = stepcost.grid_costs(cfg, grids=(8, 16, 32), budget_s=budget)
    assert [r["measured"] for r in rows] == [True, True, False]
    assert rows[2]["memory_exponent"] == pytest.approx(1.0)
    assert rows[2]["peak_bytes"] == 16000                      # x4 tokens -> x4 memory, not x16
    assert "measured growth" in rows[2]["predicted_from"]
    # one measured grid only: the mixer's exponent (2 for attention), said so
    monkeypatch.setattr(stepcost, "step_cost", _fake_cost({8: 1000}))
    rows = stepcost.grid_costs(cfg, grids=(8, 16), budget_s=1e-9)
    assert rows[1]["peak_bytes"] == 16000 and rows[1]["memory_exponent"] == 2.0
    assert "growth exponent" in rows[1]["predicted_from"]
    assert math.isclose(rows[1]["step_s"], rows[0]["step_s"] * rows[1]["flops"] / rows[0]["flops"])
