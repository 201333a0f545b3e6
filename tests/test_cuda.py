"""GPU tests (marker ``cuda``; skipped with a reason where there is no GPU, as on CI).

Run on a GPU machine with ``bash tests/gpu_check.sh``, which also writes
``notebooks/results/gpu_check.json`` (see ``tests/gpu_check.py``).
"""
from __future__ import annotations

import pytest
import torch
from gpu_check import MIXERS, max_rel_diff, torchrun_one_process

from afno_lite import train

pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def _one_thread():
    """Overrides conftest's one-thread fixture: the CPU references here are large (attention over
    16,384 tokens), and on one thread they alone would take minutes of the GPU machine's time."""
    yield


GRIDS = [(2, 128, 128, 256), (2, 9, 15, 256)]


@pytest.mark.parametrize("B,H,W,C", GRIDS)
@pytest.mark.parametrize("name", MIXERS)
def test_every_mixer_gives_the_cpu_answer_on_the_gpu(name, B, H, W, C):
    d = max_rel_diff(name, B, H, W, C, torch.device("cuda", 0))
    assert d["after"] < 1e-4, f"{name} {H}x{W}: GPU differs from CPU by {d['after']:.2e} (relative)"


@pytest.mark.parametrize("mixer", ["afno", "afno_fast"])
@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_one_epoch_on_cuda(mixer, amp):
    r = train.fit(dict(task="inpainting", mixer=mixer, embed_dim=64, depth=2, patch_size=4, img_size=32,
                       epochs=1, batch_size=16, n_train=64, n_test=16, mask_patch=4, progress=False,
                       amp=amp, device="auto"))
    assert r["device"] == "cuda:0"
    assert torch.isfinite(torch.tensor(r["history"][-1]["train_loss"]))


def test_torchrun_one_process_with_nccl():
    r = torchrun_one_process(torch.device("cuda", 0))
    assert r["returncode"] == 0, r.get("stderr_tail")
    assert (r["backend"], r["device"], r["world_size"]) == ("nccl", "cuda:0", 1)
