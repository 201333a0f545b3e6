"""The labelled tasks of the trainer (classification, segmentation): top-1 and mIoU against
loops, the validation split, the baseline without token mixing, runs through ``fit`` and the
command line, and clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from afno_lite import train
from afno_lite.models import TokenMixerNet
from afno_lite.train.metrics import confusion_matrix, iou_per_class, miou, top1
from afno_lite.train.tasks import NUM_CLASSES

CLS = dict(task="classification", mixer="gfn", embed_dim=16, depth=1, mlp_ratio=1.0, patch_size=4, img_size=24,
           epochs=1, batch_size=16, n_train=48, n_val=16, n_test=16, progress=False)
SEG = dict(CLS, task="segmentation", mixer="afno", img_size=16, mixer_kw={"num_blocks": 4})


# --------------------------------------------------------------------------- metrics
def test_top1_matches_a_loop_and_breaks_ties_towards_the_lowest_class():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 7, generator=g)
    target = torch.randint(0, 7, (50,), generator=g)
    naive = []
    for i in range(50):
        best = 0
        for k in range(7):
            if logits[i, k] > logits[i, best]:
                best = k
        naive.append(float(best == target[i]))
    assert top1(logits, target).tolist() == naive
    assert top1(torch.zeros(2, 3), torch.tensor([0, 1])).tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="logits must be"):
        top1(torch.zeros(2, 3), torch.zeros(3, dtype=torch.int64))


def _naive_iou(pred: np.ndarray, target: np.ndarray, k: int) -> list:
    out = []
    for c in range(k):
        inter = union = 0
        for p, t in zip(pred.ravel(), target.ravel(), strict=True):
            inter += (p == c) and (t == c)
            union += (p == c) or (t == c)
        out.append(inter / union if union else float("nan"))
    return out


def test_confusion_matrix_and_iou_match_loops():
    g = torch.Generator().manual_seed(1)
    pred = torch.randint(0, 5, (3, 6, 7), generator=g)
    target = torch.randint(0, 5, (3, 6, 7), generator=g)
    conf = confusion_matrix(pred, target, 5)
    naive = np.zeros((5, 5), dtype=np.int64)
    for p, t in zip(pred.flatten().tolist(), target.flatten().tolist(), strict=True):
        naive[t, p] += 1
    np.testing.assert_array_equal(conf.numpy(), naive)
    np.testing.assert_allclose(iou_per_class(conf).numpy(), _naive_iou(pred.numpy(), target.numpy(), 5))
    assert miou(conf) == pytest.approx(np.mean(_naive_iou(pred.numpy(), target.numpy(), 5)))


def test_miou_leaves_out_absent_classes_and_counts_false_positives():
    target = torch.tensor([[0, 0, 1, 1]])
    assert miou(confusion_matrix(target, target, 4)) == 1.0          # classes 2 and 3 absent: left out
    iou = iou_per_class(confusion_matrix(target, target, 4))
    assert iou[:2].tolist() == [1.0, 1.0] and torch.isnan(iou[2:]).all()
    pred = torch.tensor([[0, 0, 1, 3]])                               # class 3 predicted, never present
    iou = iou_per_class(confusion_matrix(pred, target, 4))
    assert iou[0] == 1.0 and iou[1] == 0.5 and iou[3] == 0.0 and torch.isnan(iou[2])
    assert miou(confusion_matrix(pred, target, 4)) == pytest.approx(1.5 / 3)
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(torch.tensor([4]), torch.tensor([0]), 4)
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 4)
    with pytest.raises(ValueError, match="empty"):
        miou(torch.zeros(3, 3, dtype=torch.int64))


# --------------------------------------------------------------------------- the baseline
def _logits(net, img):
    with torch.no_grad():
        return net(img[None, None])[0]


@pytest.mark.parametrize("mixer", ["identity", "gfn"])
def test_without_token_mixing_the_classifier_adds_up_patches(mixer):
    """Two dots in different patches: without token mixing the logits are a sum of per-patch
    terms, so the interaction ``f(AB) - f(A) - f(B) + f(0)`` vanishes (the class of a relation
    between the dots is out of reach); a global mixer couples the patches."""
    torch.manual_seed(0)
    net = TokenMixerNet(mixer, img_size=32, patch_size=4, in_chans=1, embed_dim=16, depth=2, head="classify",
                        num_classes=12).double().eval()
    empty = torch.zeros(32, 32, dtype=torch.float64)
    a, b = empty.clone(), empty.clone()
    a[5:7, 5:7] = 1.0
    b[21:23, 13:15] = 1.0
    inter = _logits(net, a + b) - _logits(net, a) - _logits(net, b) + _logits(net, empty)
    scale = (_logits(net, a + b) - _logits(net, empty)).abs().max()
    if mixer == "identity":
        assert inter.abs().max() < 1e-12 * scale
    else:
        assert inter.abs().max() > 1e-3 * scale


# --------------------------------------------------------------------------- runs
def test_classification_runs_one_epoch_with_a_validation_split():
    res = train.fit(dict(CLS, examples=2))
    final = res["final"]["24"]
    assert set(final) == {"top1", "loss"} and 0 <= final["top1"] <= 1 and final["loss"] > 0
    assert set(res["val"]) == {"val_top1", "val_loss"} and res["history"][0]["val"] == res["val"]
    ex = res["examples"]["24"]
    assert train.decode_array(ex["input"]).shape == (2, 24, 24)
    labels = train.decode_array(ex["prediction"])
    assert labels.shape == (2,) and set(labels.tolist()) <= set(range(NUM_CLASSES["classification"]))
    again = train.fit(dict(CLS, examples=2))
    assert again["weights_sha256"] == res["weights_sha256"]


@pytest.mark.parametrize("mixer", ["afno", "identity"])
def test_segmentation_runs_one_epoch_and_scores_miou_over_all_test_pixels(mixer):
    cfg = dict(SEG, mixer=mixer, mixer_kw=SEG["mixer_kw"] if mixer == "afno" else {})
    res, model = train.fit(cfg, return_model=True)
    final = res["final"]["16"]
    assert set(final) == {"miou", "pixel_acc", "loss"} and set(res["val"]) == {"val_miou", "val_pixel_acc",
                                                                               "val_loss"}
    x, y = train.make_data(train.TrainConfig(**cfg))["test"][16]
    with torch.no_grad():
        pred = model(x).argmax(1)
    assert final["miou"] == pytest.approx(np.nanmean(_naive_iou(pred.numpy(), y.numpy(), 5)), rel=1e-9)
    assert final["pixel_acc"] == pytest.approx(float((pred == y).double().mean()), rel=1e-9)
    if mixer == "identity":
        assert res["params"] < train.fit(SEG)["params"] and res["flops_per_image"]["mixers"] == 0


def test_the_validation_split_is_carved_from_the_training_data_only():
    cfg = train.TrainConfig(**dict(CLS, n_val=0))
    full = train.make_data(cfg)
    split = train.make_data(train.TrainConfig(**CLS))
    assert torch.equal(split["train"][0], full["train"][0][:32]) and torch.equal(split["val"][0],
                                                                                 full["train"][0][32:])
    assert torch.equal(split["val"][1], full["train"][1][32:])
    assert torch.equal(split["test"][24][0], full["test"][24][0]) and "val" not in full


def test_the_command_line_runs_both_tasks(capsys):
    for task, size in (("classification", "24"), ("segmentation", "16")):
        argv = ["--task", task, "--mixer", "identity", "--img-size", size, "--embed-dim", "8", "--depth", "1",
                "--epochs", "1", "--batch-size", "16", "--n-train", "32", "--n-val", "8", "--n-test", "8",
                "--max-steps", "1"]
        assert train.main(argv) == 0
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert ("top1" if task == "classification" else "miou") in out["final"][size]
    assert "classification" in train.parser().format_help()


@pytest.mark.parametrize("change, match", [
    (dict(n_val=48), "n_val=48 must be smaller than n_train=48"),
    (dict(n_val=-1), "n_val must be an integer >= 0"),
    (dict(img_size=16), "img_size=16 cannot hold the classification scenes"),
    (dict(eval_sizes=(16,)), "img_size=16 cannot hold"),
    (dict(task="segmentation", img_size=12, patch_size=4), "segmentation scenes need img_size"),
    (dict(mixer="nothing"), "mixer must be one of"),
    (dict(n_val=40), "no full batch"),
])
def test_bad_label_task_configs_name_the_field(change, match):
    with pytest.raises(train.ConfigError, match=match):
        train.fit(dict(CLS, **change))
