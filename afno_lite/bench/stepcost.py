"""Time and peak memory of one training step of a whole model, and how they grow with the grid.

Used by the segmentation experiment (:mod:`afno_lite.experiments`, chapter "Classification and
segmentation"): one forward + backward of the segmentation network (batch 1, cross-entropy
on random labels) at several token grids, per mixer setting. A grid whose predicted cost is
over the budget is not run: its time is *predicted* from the largest measured grid times the
ratio of the model's FLOPs (:func:`afno_lite.train.model_flops`), its memory from that grid's
peak scaled with the growth *measured* between the last two measured grids (a fused attention
kernel keeps attention's memory linear in the tokens although its time is quadratic; with a
single measured grid, the mixer's growth exponent: 2 for attention, 1 for the spectral mixers),
and the record says ``"measured": false`` and how it was predicted.

Peak memory is the tensor memory of the step (:func:`afno_lite.bench.peak_memory_bytes`: on
CUDA the allocator's peak, on CPU the live bytes of every operator's output).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_positive, check_positive_int
from ..registry import spec
from ..timing import median_seconds
from .series import peak_memory_bytes

__all__ = ["step_cost", "grid_costs"]


def _step(cfg: dict, tokens: int, device):
    """The model of ``cfg`` on a ``tokens x tokens`` grid and a closure running one step."""
    from ..train import TrainConfig, build_model, validate_config

    c = dict(cfg, img_size=tokens * cfg["patch_size"], eval_sizes=(), progress=False)
    tc = validate_config(TrainConfig(**c))
    model = build_model(tc).to(device)
    if tc.task != "segmentation":
        raise ValueError(f"cfg: step costs are measured for task='segmentation', got task={tc.task!r}")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, model.in_chans, tc.img_size, tc.img_size, generator=g).to(device)
    y = torch.randint(0, model.out_chans, (1, tc.img_size, tc.img_size), generator=g).to(device)

    def step():
        for p in model.parameters():
            p.grad = None
        out = model(x)
        F.cross_entropy(out, y).backward()

    return model, tc, step


def step_cost(cfg: dict, tokens: int, device="cpu", repeats: int = 3) -> dict:
    """Median seconds (over ``repeats`` after one warm-up) and peak tensor bytes of one
    forward + backward of the model of ``cfg`` at ``tokens x tokens`` tokens, batch 1."""
    from ..train import model_flops

    tokens, repeats = check_positive_int(tokens, "tokens"), check_positive_int(repeats, "repeats")
    device = torch.device(device)
    model, tc, step = _step(cfg, tokens, device)
    seconds = median_seconds(step, repeats=repeats, warmup=1)
    peak = peak_memory_bytes(step, device)
    return {"tokens": tokens * tokens, "grid": [tokens, tokens], "measured": True, "step_s": seconds,
            "peak_bytes": peak, "flops": model_flops(model, tc.img_size)["total"], "device": str(device),
            "threads": torch.get_num_threads()}


def _memory_growth(cfg: dict, rows: list) -> tuple[float, str]:
    """The exponent ``p`` of ``peak ~ tokens^p`` for a prediction, and where it comes from: the
    last two measured grids when there are two, else the mixer's growth exponent."""
    measured = [r for r in rows if r["measured"] and r["peak_bytes"] > 0]
    if len(measured) >= 2:
        a, b = measured[-2], measured[-1]
        return (math.log(b["peak_bytes"] / a["peak_bytes"]) / math.log(b["tokens"] / a["tokens"]),
                "measured growth")
    return float(spec(cfg["mixer"]).growth), "the mixer's growth exponent"


def grid_costs(cfg: dict, grids=(32, 64, 128), device="cpu", budget_s: float = 20.0, repeats: int = 3) -> list:
    """:func:`step_cost` at every grid side in ``grids`` (increasing), measured while the
    prediction from the previous grid stays under ``budget_s`` seconds per step, predicted
    (and labelled so) after that."""
    from ..train import TrainConfig, build_model, model_flops, validate_config

    budget_s = check_positive(budget_s, "budget_s")
    out: list = []
    for side in sorted(check_positive_int(s, "grids[i]") for s in grids):
        if out:
            last = out[-1]
            tc = validate_config(TrainConfig(**dict(cfg, img_size=side * cfg["patch_size"], progress=False)))
            flops = model_flops(build_model(tc), tc.img_size)["total"]
            predicted = last["step_s"] * flops / last["flops"]
            if predicted > budget_s or not last["measured"]:
                m_exp, why = _memory_growth(cfg, out)
                ratio = (side * side / last["tokens"]) ** m_exp
                out.append({"tokens": side * side, "grid": [side, side], "measured": False,
                            "step_s": predicted, "peak_bytes": int(last["peak_bytes"] * ratio), "flops": flops,
                            "device": last["device"], "threads": last["threads"], "memory_exponent": m_exp,
                            "predicted_from": f"{last['grid'][0]}x{last['grid'][1]}: time x FLOP ratio, "
                                              f"memory x (token ratio)^{m_exp:.2f} ({why})"})
                continue
        out.append(step_cost(cfg, side, device, repeats))
    return out
