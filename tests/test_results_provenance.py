"""The shipped experiment results (``notebooks/results/*.json``) against the seed rule and
their provenance: one code hash per file, the learning rates the sweep selected, no smoke runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from afno_lite import evidence, experiments

RESULTS = Path(__file__).resolve().parents[1] / "notebooks" / "results"


def _doc(group: str) -> dict:
    path = RESULTS / f"{group}.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make experiments`")
    return json.loads(path.read_text())


@pytest.mark.parametrize("group", experiments.SHIPPED)
def test_every_run_of_a_results_file_shares_one_code_hash(group):
    doc = _doc(group)
    assert not doc["fast"] and doc["command"].startswith(f"python -m afno_lite.experiments {group}")
    assert isinstance(doc["git_dirty"], bool) and len(doc["code_hash"]) == 16
    hashes = {name: r.get("code_hash") for name, r in doc["runs"].items()}
    stale = {n: h for n, h in hashes.items() if h != doc["code_hash"]}
    assert not stale, f"{group}.json mixes runs of other code: {stale}"


@pytest.mark.parametrize("group", experiments.SHIPPED)
def test_every_setting_of_a_results_file_meets_the_seed_rule(group):
    doc = _doc(group)
    for _, names in experiments.setting_runs(doc["series"]):
        seeds = [doc["runs"][n]["seed"] for n in names if not n.startswith("sweep-")]
        if seeds:
            assert len(set(seeds)) == len(seeds) >= evidence.MIN_SEEDS, (group, names)
    if group == "inpainting":
        for names in doc["series"]["mixers"].values():
            assert len({doc["runs"][n]["seed"] for n in names}) >= evidence.HEADLINE_SEEDS


@pytest.mark.parametrize("group, runs_of", [("inpainting", "mixers"), ("classification", "settings")])
def test_each_mixer_runs_at_the_rate_its_sweep_selected_on_the_validation_split(group, runs_of):
    doc = _doc(group)
    assert set(doc["selection"]) == set(doc["series"]["sweep"]) == set(doc["series"][runs_of])
    for m, sel in doc["selection"].items():
        metric = sel["metric"]
        assert metric.startswith("val_")   # scored on the validation split, never the test set
        scores = {lr: doc["runs"][n]["history"][-1]["val"][metric] for lr, n in doc["series"]["sweep"][m].items()}
        assert scores == pytest.approx(sel[metric])
        best = max(scores, key=scores.get)   # the lowest rate on a tie, as select_lrs picks
        assert float(best) == sel["best_lr"]
        assert {doc["runs"][n]["config"]["lr"] for n in doc["series"][runs_of][m]} == {sel["best_lr"]}
    if group == "inpainting":
        abl = _doc("ablations")
        assert {r["config"]["lr"] for r in abl["runs"].values()} == {doc["selection"]["afno"]["best_lr"]}
