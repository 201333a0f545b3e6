"""NVIDIA reference AFNO weights <-> afno_lite: exact round trips, FourCastNet-style
checkpoints, the reference forward pass (equal on square grids at keep_fraction=1,
different -- exactly by the mode sets -- elsewhere), and clear errors."""
import pytest
import torch
import torch.nn.functional as F

import afno_lite
from afno_lite import compat
from afno_lite.compat import NvidiaWeightsError
from afno_lite.models import TokenMixerNet
from afno_lite.spectral import kept_mode_mask, nvidia_kept_mode_mask

KEYS = ("w1", "b1", "w2", "b2")


def nvidia_tensors(dim, k, f=1, seed=0, dtype=torch.float32):
    """Random tensors in the reference layout (init 0.02*randn, as AFNO2D does)."""
    g = torch.Generator().manual_seed(seed)
    b = dim // k
    shapes = {"w1": (2, k, b, b * f), "b1": (2, k, b * f), "w2": (2, k, b * f, b), "b2": (2, k, b)}
    return {n: 0.02 * torch.randn(*s, generator=g, dtype=dtype) for n, s in shapes.items()}


def fourcastnet_checkpoint(depth=2, dim=32, k=8, f=1, img=(16, 16), patch=4, in_chans=2, out_chans=2):
    """A checkpoint shaped like FourCastNet's: DDP ``module.`` keys, wrapped in
    ``{"model_state": ...}`` next to optimizer state and counters."""
    g = torch.Generator().manual_seed(1)
    n_patches = (img[0] // patch) * (img[1] // patch)
    sd = {
        "patch_embed.proj.weight": torch.randn(dim, in_chans, patch, patch, generator=g),
        "patch_embed.proj.bias": torch.randn(dim, generator=g),
        "pos_embed": torch.randn(1, n_patches, dim, generator=g),
        "head.weight": torch.randn(out_chans * patch * patch, dim, generator=g),
    }
    for i in range(depth):
        sd[f"blocks.{i}.norm1.weight"] = torch.ones(dim)
        sd[f"blocks.{i}.norm1.bias"] = torch.zeros(dim)
        for n, t in nvidia_tensors(dim, k, f, seed=10 + i).items():
            sd[f"blocks.{i}.filter.{n}"] = t
        sd[f"blocks.{i}.norm2.weight"] = torch.ones(dim)
        sd[f"blocks.{i}.norm2.bias"] = torch.zeros(dim)
        sd[f"blocks.{i}.mlp.fc1.weight"] = torch.randn(4 * dim, dim, generator=g)
        sd[f"blocks.{i}.mlp.fc1.bias"] = torch.zeros(4 * dim)
        sd[f"blocks.{i}.mlp.fc2.weight"] = torch.randn(dim, 4 * dim, generator=g)
        sd[f"blocks.{i}.mlp.fc2.bias"] = torch.zeros(dim)
    return {"model_state": {"module." + key: v for key, v in sd.items()},
            "optimizer_state_dict": {"state": {}, "param_groups": []}, "iters": 1200, "epoch": 3}, sd


def afno_net(depth=2, dim=32, k=8, f=1, **kw):
    torch.manual_seed(5)
    return TokenMixerNet("afno", img_size=16, patch_size=4, in_chans=2, embed_dim=dim, depth=depth,
                         mixer_kw={"num_blocks": k, "hidden_factor": f, **kw})


# --------------------------------------------------------------------------- round trips
def test_layer_round_trip_is_exact():
    torch.manual_seed(0)
    a = afno_lite.AFNO(32, num_blocks=4, hidden_factor=2)
    state = compat.nvidia_afno_layer_state(a)
    assert sorted(state) == sorted(KEYS)
    assert state["w1"].shape == (2, 4, 8, 16) and state["b2"].shape == (2, 4, 8)
    torch.manual_seed(1)
    b = afno_lite.AFNO(32, num_blocks=4, hidden_factor=2)
    assert not torch.equal(a.w1, b.w1)
    compat.load_nvidia_afno_layer(b, state)
    back = compat.nvidia_afno_layer_state(b)
    for k in KEYS:
        assert torch.equal(back[k], state[k]) and torch.equal(getattr(b, k), getattr(a, k))
    x = torch.randn(2, 8, 8, 32)
    assert torch.equal(a(x), b(x))
    # the exported state is a copy, not a view of the live parameters
    with torch.no_grad():
        b.w1.add_(1.0)
    assert torch.equal(state["w1"], a.w1)


def test_layer_prefix_with_and_without_ddp_prefix():
    torch.manual_seed(0)
    src = afno_lite.AFNO(16, num_blocks=2)
    sd = compat.nvidia_afno_layer_state(src, prefix="module.blocks.3.filter.")
    for prefix in ("blocks.3.filter.", "module.blocks.3.filter."):
        dst = afno_lite.AFNO(16, num_blocks=2)
        compat.load_nvidia_afno_layer(dst, sd, prefix=prefix)
        assert all(torch.equal(getattr(dst, k), getattr(src, k)) for k in KEYS)


def test_model_round_trip_is_exact():
    net = afno_net(depth=3, dim=16, k=4)
    sd = compat.to_nvidia_state_dict(net)
    assert sorted(sd) == sorted(f"blocks.{i}.filter.{k}" for i in range(3) for k in KEYS)
    torch.manual_seed(99)
    fresh = afno_net(depth=3, dim=16, k=4)
    with torch.no_grad():
        for blk in fresh.blocks:
            blk.mixer.w1.mul_(3)
    report = compat.load_nvidia_afno_blocks(fresh, sd)
    assert report.num_layers == 3 and len(report.loaded) == 12 and report.ignored == []
    sd2 = compat.to_nvidia_state_dict(fresh)
    assert all(torch.equal(sd[k], sd2[k]) for k in sd)
    t = torch.randn(2, 4, 4, 16)
    for a, b in zip(net.blocks, fresh.blocks, strict=True):
        assert torch.equal(a.mixer(t), b.mixer(t))


def test_list_of_layers_and_float64_layers():
    torch.manual_seed(0)
    layers = [afno_lite.AFNO(8, num_blocks=2) for _ in range(2)]
    sd = compat.to_nvidia_state_dict(layers)
    dst = torch.nn.ModuleList([afno_lite.AFNO(8, num_blocks=2).double() for _ in range(2)])
    compat.load_nvidia_afno_blocks(dst, sd)
    for a, b in zip(layers, dst, strict=True):
        assert b.w1.dtype == torch.float64
        assert torch.equal(b.w1.float(), a.w1)          # float32 -> float64 -> float32 is exact
    back = compat.to_nvidia_state_dict(dst)
    assert all(torch.equal(back[k].float(), sd[k]) for k in sd)


# --------------------------------------------------------------------------- FourCastNet checkpoints
def test_load_fourcastnet_checkpoint_into_token_mixer_net(tmp_path):
    ckpt, plain = fourcastnet_checkpoint(depth=2, dim=32, k=8)
    path = tmp_path / "ckpt.tar"
    torch.save(ckpt, path)
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    net = afno_net(depth=2, dim=32, k=8)
    report = compat.load_nvidia_afno_blocks(net, loaded)
    assert report.num_layers == 2
    assert sorted(report.loaded) == sorted(f"blocks.{i}.filter.{k}" for i in range(2) for k in KEYS)
    assert sorted(report.ignored) == sorted(k for k in plain if ".filter." not in k)
    for i in range(2):
        for k in KEYS:
            assert torch.equal(getattr(net.blocks[i].mixer, k), plain[f"blocks.{i}.filter.{k}"])
    assert "loaded 8 tensors into 2 AFNO layers" in str(report)
    # the loaded mixer computes the reference spectral path (it has no residual of its own)
    t = torch.randn(1, 4, 4, 32)
    ref = compat.nvidia_afno2d_forward(t, *(plain[f"blocks.1.filter.{k}"] for k in KEYS), num_blocks=8)
    assert (net.blocks[1].mixer(t) + t - ref).abs().max() <= 1e-5


def test_physicsnemo_style_plain_and_compiled_state_dicts():
    _, plain = fourcastnet_checkpoint(depth=2, dim=16, k=4)
    for sd in (plain, {"_orig_mod." + k: v for k, v in plain.items()}, {"state_dict": plain}):
        net = afno_net(depth=2, dim=16, k=4)
        compat.load_nvidia_afno_blocks(net, sd)
        assert torch.equal(net.blocks[0].mixer.b2, plain["blocks.0.filter.b2"])


def test_unwrap_state_dict():
    t = torch.zeros(1)
    assert compat.unwrap_state_dict({"model_state": {"module.a.b": t}, "epoch": 1}) == {"a.b": t}
    assert list(compat.unwrap_state_dict({"module._orig_mod.x": t})) == ["x"]
    with pytest.raises(NvidiaWeightsError, match="two entries map to the key 'x'"):
        compat.unwrap_state_dict({"module.x": t, "x": t})
    with pytest.raises(NvidiaWeightsError, match="must be a mapping"):
        compat.unwrap_state_dict([("x", t)])


# --------------------------------------------------------------------------- bad weights
def test_missing_key_is_named():
    ckpt, _ = fourcastnet_checkpoint(depth=2, dim=16, k=4)
    del ckpt["model_state"]["module.blocks.1.filter.w2"]
    with pytest.raises(NvidiaWeightsError, match=r"missing key\(s\) \['blocks.1.filter.w2'\]"):
        compat.load_nvidia_afno_blocks(afno_net(depth=2, dim=16, k=4), ckpt)


def test_wrong_prefix_gets_a_hint():
    sd = compat.nvidia_afno_layer_state(afno_lite.AFNO(16, num_blocks=2), prefix="blocks.0.filter.")
    with pytest.raises(NvidiaWeightsError, match="blocks.0.filter.w1.*another prefix"):
        compat.load_nvidia_afno_layer(afno_lite.AFNO(16, num_blocks=2), sd, prefix="blocks.0.spectral.")


def test_mismatched_num_blocks_says_expected_and_found():
    ckpt, _ = fourcastnet_checkpoint(depth=2, dim=32, k=8)
    net = afno_net(depth=2, dim=32, k=4)
    with pytest.raises(NvidiaWeightsError) as e:
        compat.load_nvidia_afno_blocks(net, ckpt)
    msg = str(e.value)
    assert "blocks.0.filter.w1 has shape (2, 8, 4, 4)" in msg and "expects (2, 4, 8, 8)" in msg
    assert "layer has num_blocks=4, block_size=8" in msg and "means num_blocks=8, block_size=4" in msg


def test_mismatched_hidden_factor_says_expected_and_found():
    ckpt, _ = fourcastnet_checkpoint(depth=1, dim=16, k=4, f=2)
    with pytest.raises(NvidiaWeightsError, match="hidden_size_factor=1 .*hidden_size_factor=2"):
        compat.load_nvidia_afno_blocks(afno_net(depth=1, dim=16, k=4, f=1), ckpt)


def test_depth_mismatch_strict_and_lenient():
    ckpt, plain = fourcastnet_checkpoint(depth=3, dim=16, k=4)
    net = afno_net(depth=2, dim=16, k=4)
    with pytest.raises(NvidiaWeightsError, match="has 3 AFNO filters .* model has 2 AFNO layers"):
        compat.load_nvidia_afno_blocks(net, ckpt)
    report = compat.load_nvidia_afno_blocks(net, ckpt, strict=False)
    assert report.num_layers == 2
    assert torch.equal(net.blocks[1].mixer.w1, plain["blocks.1.filter.w1"])


@pytest.mark.parametrize("mutate, match", [
    (lambda sd: {k: v for k, v in sd.items() if ".filter." not in k}, "no keys of the form 'blocks.<i>.filter.w1'"),
    (lambda sd: {k.replace("blocks.1.", "blocks.2."): v for k, v in sd.items()}, r"numbered 0..n-1, .*\[0, 2\]"),
    (lambda sd: {**sd, "blocks.0.filter.w1": sd["blocks.0.filter.w1"].to(torch.complex64)}, "real floating"),
    (lambda sd: {**sd, "blocks.0.filter.b1": sd["blocks.0.filter.b1"][:, :, :2]}, r"b1 has shape \(2, 4, 2\)"),
])
def test_malformed_state_dicts(mutate, match):
    _, plain = fourcastnet_checkpoint(depth=2, dim=16, k=4)
    with pytest.raises(NvidiaWeightsError, match=match):
        compat.load_nvidia_afno_blocks(afno_net(depth=2, dim=16, k=4), mutate(plain))


def test_non_afno_targets_are_rejected():
    _, plain = fourcastnet_checkpoint(depth=2, dim=16, k=4)
    gfn_net = TokenMixerNet("gfn", img_size=16, patch_size=4, embed_dim=16, depth=2)
    with pytest.raises(NvidiaWeightsError, match=r"model.blocks\[0\].mixer is a GlobalFilter, not an AFNO"):
        compat.load_nvidia_afno_blocks(gfn_net, plain)
    with pytest.raises(NvidiaWeightsError, match="expected an AFNO layer"):
        compat.load_nvidia_afno_blocks(torch.nn.Linear(2, 2), plain)
    with pytest.raises(NvidiaWeightsError, match="no AFNO layers"):
        compat.to_nvidia_state_dict([])
    with pytest.raises(NvidiaWeightsError, match="layer must be an AFNO layer"):
        compat.load_nvidia_afno_layer(afno_lite.GlobalFilter(16), plain, prefix="blocks.0.filter.")


def test_bias_free_layer_refuses_nonzero_biases_but_takes_zero_ones():
    src = nvidia_tensors(16, 4)
    layer = afno_lite.AFNO(16, num_blocks=4, bias=False)
    with pytest.raises(NvidiaWeightsError, match="bias=False but .*b1"):
        compat.load_nvidia_afno_layer(layer, src)
    src["b1"].zero_()
    src["b2"].zero_()
    compat.load_nvidia_afno_layer(layer, src)
    assert torch.equal(layer.w2, src["w2"])


# --------------------------------------------------------------------------- the reference forward
def masked_afno(x, t, mask, lam):
    """Independent complex-arithmetic AFNO (float64) applied on the rfft modes in ``mask``:
    rfft2 -> complex block MLP -> softshrink re/im -> zero outside mask -> irfft2 -> + x."""
    B, H, W, C = x.shape
    k, b = t["w1"].shape[1], t["w1"].shape[2]
    cx = lambda w: torch.complex(w[0].double(), w[1].double())  # noqa: E731
    X = torch.fft.rfft2(x.double(), dim=(1, 2), norm="ortho").reshape(B, H, W // 2 + 1, k, b)
    h = torch.einsum("...ki,kio->...ko", X, cx(t["w1"])) + cx(t["b1"])
    h = torch.complex(F.relu(h.real), F.relu(h.imag))
    y = torch.einsum("...ki,kio->...ko", h, cx(t["w2"])) + cx(t["b2"])
    y = torch.complex(F.softshrink(y.real, lam), F.softshrink(y.imag, lam))
    y = y.reshape(B, H, W // 2 + 1, C) * mask.view(1, H, W // 2 + 1, 1)
    return torch.fft.irfft2(y, s=(H, W), dim=(1, 2), norm="ortho") + x.double()


def pair(dim, k, f=1, keep=1.0, lam=0.01, seed=0):
    torch.manual_seed(seed)
    layer = afno_lite.AFNO(dim, num_blocks=k, hidden_factor=f, keep_fraction=keep, sparsity_threshold=lam)
    return layer, compat.nvidia_afno_layer_state(layer)


@pytest.mark.parametrize("H, W", [(8, 8), (9, 9), (16, 16), (12, 6), (7, 5)])
@pytest.mark.parametrize("f", [1, 2])
def test_reference_equals_afno_lite_at_keep_fraction_one_when_w_le_h(H, W, f):
    layer, t = pair(16, 4, f)
    x = torch.randn(2, H, W, 16)
    ref = compat.nvidia_afno2d_forward(x, *(t[k] for k in KEYS), num_blocks=4, hidden_size_factor=f)
    assert ref.shape == x.shape and ref.dtype == x.dtype
    assert (layer(x) - ref).abs().max() <= 1e-5
    assert (compat.nvidia_layer_forward(layer, x) - ref).abs().max() == 0
    assert torch.equal(nvidia_kept_mode_mask(H, W, 1.0), kept_mode_mask(H, W, 1.0))


@pytest.mark.parametrize("H, W, keep", [(6, 12, 1.0), (8, 16, 1.0), (16, 16, 0.5), (16, 16, 0.25), (12, 12, 0.5)])
def test_reference_differs_exactly_by_its_mode_set(H, W, keep):
    layer, t = pair(16, 4, keep=keep, lam=0.0)
    with torch.no_grad():                      # a visible spectral path: larger second-layer weights
        layer.w2.mul_(50)
    t = compat.nvidia_afno_layer_state(layer)
    x = torch.randn(2, H, W, 16)
    ours = layer(x)
    ref = compat.nvidia_afno2d_forward(x, *(t[k] for k in KEYS), num_blocks=4,
                                       sparsity_threshold=0.0, hard_thresholding_fraction=keep)
    mask_ours, mask_ref = kept_mode_mask(H, W, keep), nvidia_kept_mode_mask(H, W, keep)
    assert not torch.equal(mask_ours, mask_ref)
    # each implementation is the same block MLP restricted to its own mode set ...
    torch.testing.assert_close(ours.double(), masked_afno(x, t, mask_ours, 0.0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ref.double(), masked_afno(x, t, mask_ref, 0.0), atol=1e-5, rtol=1e-5)
    # ... and the mode sets differ enough to change the output visibly
    assert (ours - ref).abs().max() > 1e-2


def test_reference_band_sits_at_the_nyquist_row():
    """For keep_fraction < 1 the reference keeps rows around H/2 (the highest |k_H|),
    afno_lite keeps the lowest |k_H|; at W > H the reference drops the high columns."""
    kh = torch.round(torch.fft.fftfreq(16) * 16).abs()
    ref_rows = nvidia_kept_mode_mask(16, 16, 0.5).any(dim=1)
    ours_rows = kept_mode_mask(16, 16, 0.5).any(dim=1)
    assert kh[ref_rows].min() >= 4 and kh[ref_rows].max() == 8
    assert kh[ours_rows].max() == 4 and kh[ours_rows].min() == 0
    wide = nvidia_kept_mode_mask(6, 12, 1.0)
    assert wide[:, :4].all() and not wide[:, 4:].any()


def test_float64_reference_and_the_float32_cast():
    layer, _ = pair(16, 4)
    layer = layer.double()
    t = compat.nvidia_afno_layer_state(layer)
    x = torch.randn(2, 10, 10, 16, dtype=torch.float64)
    ours = layer(x)
    assert ours.dtype == torch.float64
    exact = compat.nvidia_afno2d_forward(x, *(t[k] for k in KEYS), num_blocks=4, compute_dtype=None)
    assert exact.dtype == torch.float64 and (ours - exact).abs().max() <= 1e-12
    # the reference itself casts to float32 (x.float()): float64 in, float64 out, float32 accuracy
    as_ref = compat.nvidia_layer_forward(layer, x)
    assert as_ref.dtype == torch.float64
    err = (as_ref - exact).abs().max()
    assert 1e-10 < err < 1e-5


def test_reference_forward_argument_errors():
    t = nvidia_tensors(16, 4)
    x = torch.randn(1, 8, 8, 16)
    args = [t[k] for k in KEYS]
    with pytest.raises(NvidiaWeightsError, match=r"w1 has shape \(2, 4, 4, 4\) but C=16, num_blocks=2"):
        compat.nvidia_afno2d_forward(x, *args, num_blocks=2)
    with pytest.raises(NvidiaWeightsError, match="divisible by num_blocks=3"):
        compat.nvidia_afno2d_forward(torch.randn(1, 8, 8, 16), *args, num_blocks=3)
    with pytest.raises(NvidiaWeightsError, match=r"\[B, H, W, C\]"):
        compat.nvidia_afno2d_forward(torch.randn(8, 8, 16), *args, num_blocks=4)
    with pytest.raises(TypeError, match="real floating"):
        compat.nvidia_afno2d_forward(x.to(torch.complex64), *args, num_blocks=4)
    with pytest.raises(afno_lite.MixerConfigError, match="hard_thresholding_fraction"):
        compat.nvidia_afno2d_forward(x, *args, num_blocks=4, hard_thresholding_fraction=0)
    with pytest.raises(NvidiaWeightsError, match="always applies ReLU"):
        compat.nvidia_layer_forward(afno_lite.AFNO(16, num_blocks=4, activation=None), x)
    # a compute dtype that is not a floating torch.dtype died deep in torch ("Expected one of cpu, cuda, ...
    # device type at start of device string: float", "expected scalar type Float but found Int")
    for bad in ("float", torch.int32, torch.complex64):
        with pytest.raises(afno_lite.MixerConfigError,
                           match=r"compute_dtype must be a real floating-point torch.dtype or None, got"):
            compat.nvidia_afno2d_forward(x, *args, num_blocks=4, compute_dtype=bad)


def test_fourcastnet_checkpoint_into_a_fast_afno_net():
    pytest.importorskip("afno_lite.fast")
    ckpt, plain = fourcastnet_checkpoint(depth=2, dim=32, k=8)
    net = TokenMixerNet("afno_fast", img_size=16, patch_size=4, in_chans=2, embed_dim=32, depth=2,
                        mixer_kw={"num_blocks": 8})
    assert compat.load_nvidia_afno_blocks(net, ckpt).num_layers == 2
    t = torch.randn(2, 4, 4, 32)
    ref = compat.nvidia_afno2d_forward(t, *(plain[f"blocks.0.filter.{k}"] for k in KEYS), num_blocks=8)
    assert (net.blocks[0].mixer(t) + t - ref).abs().max() <= 1e-5
    assert sorted(compat.to_nvidia_state_dict(net)) == sorted(f"blocks.{i}.filter.{k}" for i in range(2) for k in KEYS)
