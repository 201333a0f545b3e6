"""TokenMixerNet: shapes for every mixer and head, position-embedding resizing,
gradient flow, the AFNO residual convention, and clear errors for bad configs."""
import pytest
import torch
import torch.nn.functional as F

import afno_lite
from afno_lite import MixerConfigError, MixerInputError
from afno_lite.models import TokenMixerNet, count_parameters

ALL_MIXERS = ["attention", "kernel_attention", "fno", "gfn", "afno", "afno_fast", "identity"]
SMALL = dict(embed_dim=16, depth=2, mlp_ratio=2.0)


def small_net(name, **kw):
    torch.manual_seed(0)
    mixer_kw = kw.pop("mixer_kw", {})
    if name == "afno":
        mixer_kw = {"num_blocks": 4, **mixer_kw}
    if name in ("attention", "kernel_attention"):
        mixer_kw = {"num_heads": 2, **mixer_kw}
    return TokenMixerNet(name, mixer_kw=mixer_kw, **{**SMALL, **kw})


@pytest.mark.parametrize("name", ALL_MIXERS)
def test_image_head_shape_square_and_nonsquare(name):
    net = small_net(name, img_size=(16, 24), patch_size=4, in_chans=2, out_chans=3)
    assert net.grid == (4, 6)
    y = net(torch.randn(2, 2, 16, 24))
    assert y.shape == (2, 3, 16, 24) and y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", ALL_MIXERS)
def test_classify_head_shape(name):
    net = small_net(name, img_size=16, patch_size=4, in_chans=3, head="classify", num_classes=7)
    y = net(torch.randn(3, 3, 16, 16))
    assert y.shape == (3, 7)


def test_image_head_unpatchify_layout():
    """Output pixel (i*p + a, j*p + b, c) comes from token (i, j), head feature (a, b, c)
    -- FourCastNet's "b h w (p1 p2 c) -> b c (h p1) (w p2)"."""
    net = small_net("gfn", img_size=(8, 12), patch_size=(2, 3), in_chans=1, out_chans=2)
    x = torch.randn(1, 1, 8, 12)
    t = net.forward_features(x)                                 # [1, 4, 4, D]
    feats = net.head(t)                                         # [1, 4, 4, 2*3*2]
    y = net(x)
    i, j, a, b, c = 3, 1, 1, 2, 1
    assert torch.equal(y[0, c, i * 2 + a, j * 3 + b], feats[0, i, j, (a * 3 + b) * 2 + c])


def test_mixers_live_in_blocks_and_get_the_token_grid():
    net = small_net("gfn", img_size=(16, 24), patch_size=4)
    assert [type(b.mixer).__name__ for b in net.blocks] == ["GlobalFilter"] * 2
    assert net.blocks[0].mixer.grid == (4, 6)
    fno = small_net("fno", img_size=(16, 24), patch_size=4)
    assert fno.blocks[0].mixer.modes == (2, 3)                  # every mode of the 4x6 token grid
    fno8 = small_net("fno", img_size=(16, 24), patch_size=4, mixer_kw={"modes": (1, 1)})
    assert fno8.blocks[1].mixer.modes == (1, 1)


def test_afno_inside_blocks_has_no_second_residual():
    net = small_net("afno", img_size=16, patch_size=4)
    assert all(b.mixer.residual is False for b in net.blocks)
    # the block output is x + spectral(norm1(x)) + mlp(...), not x + norm1(x) + ...
    blk = net.blocks[0]
    x = torch.randn(2, 4, 4, 16)
    with torch.no_grad():
        blk.mlp.fc2.weight.zero_()
        blk.mlp.fc2.bias.zero_()
        out = blk(x)
        spectral = blk.mixer(blk.norm1(x))
    torch.testing.assert_close(out, x + spectral)
    opt_in = small_net("afno", img_size=16, patch_size=4, mixer_kw={"residual": True})
    assert all(b.mixer.residual is True for b in opt_in.blocks)


def test_mixers_skip_their_own_finite_check_but_the_net_checks_once():
    net = small_net("afno", img_size=16, patch_size=4)
    assert all(b.mixer.check_finite is False for b in net.blocks)
    x = torch.randn(1, 3, 16, 16)
    x[0, 0, 3, 3] = float("nan")
    with pytest.raises(MixerInputError, match="NaN or Inf"):
        net(x)
    lax = small_net("afno", img_size=16, patch_size=4, check_finite=False)
    assert torch.isnan(lax(x)).any()


# --------------------------------------------------------------------------- position embedding
def test_pos_embed_same_grid_is_the_parameter():
    net = small_net("afno", img_size=16, patch_size=4)
    assert net.resize_pos_embed((4, 4)) is net.pos_embed
    assert net.pos_embed.shape == (1, 4, 4, 16)


def test_pos_embed_resize_is_bilinear_and_constant_preserving():
    net = small_net("afno", img_size=16, patch_size=4)
    with torch.no_grad():
        net.pos_embed.copy_(torch.linspace(-1, 1, 16).view(1, 1, 1, 16).expand(1, 4, 4, 16))
    big = net.resize_pos_embed((8, 6))
    assert big.shape == (1, 8, 6, 16)
    torch.testing.assert_close(big, net.pos_embed[:, :1, :1].expand(1, 8, 6, 16))   # constant stays constant
    # a ramp along h: bilinear (align_corners=False) reproduces numpy-style interpolation
    with torch.no_grad():
        net.pos_embed.copy_(torch.arange(4.0).view(1, 4, 1, 1).expand(1, 4, 4, 16))
    ramp = net.resize_pos_embed((8, 4))[0, :, 0, 0]
    src = (torch.arange(8.0) + 0.5) / 2 - 0.5                   # sample positions on the 4-row grid
    torch.testing.assert_close(ramp, src.clamp(0, 3))


@pytest.mark.parametrize("name", ALL_MIXERS)
def test_runs_at_a_new_resolution(name):
    net = small_net(name, img_size=16, patch_size=4, in_chans=1)
    y = net(torch.randn(1, 1, 32, 24))                          # token grid 8x6 instead of 4x4
    assert y.shape == (1, 1, 32, 24) and torch.isfinite(y).all()


def test_new_resolution_uses_the_resized_embedding():
    net = small_net("afno", img_size=16, patch_size=4, in_chans=1)
    x = torch.randn(1, 1, 32, 32)
    tokens = net.patch_embed(x).permute(0, 2, 3, 1)
    manual = F.interpolate(net.pos_embed.permute(0, 3, 1, 2), size=(8, 8), mode="bilinear",
                           align_corners=False).permute(0, 2, 3, 1)
    t = tokens + manual
    for blk in net.blocks:
        t = blk(t)
    torch.testing.assert_close(net.forward_features(x), net.norm(t))


def test_pos_embed_gets_gradient_at_a_new_resolution():
    net = small_net("gfn", img_size=16, patch_size=4, in_chans=1)
    net(torch.randn(2, 1, 24, 32)).square().mean().backward()
    assert net.pos_embed.grad is not None and net.pos_embed.grad.abs().sum() > 0


def test_resize_pos_embed_takes_a_side_or_a_pair_and_names_bad_grids():
    """``resize_pos_embed(4)`` died with "'int' object is not iterable" where ``img_size`` and
    ``patch_size`` take one int for a square; a bad grid gets the usual message."""
    net = small_net("afno", img_size=16, patch_size=4)
    assert torch.equal(net.resize_pos_embed(8), net.resize_pos_embed((8, 8)))
    assert net.resize_pos_embed(torch.Size([4, 4])) is net.pos_embed
    with pytest.raises(MixerConfigError, match=r"grid must be an integer or a pair \(H, W\) of positive integers"):
        net.resize_pos_embed((4, 4, 4))


def test_set_img_size_makes_the_resized_embedding_native():
    net = small_net("attention", img_size=16, patch_size=4, in_chans=1)
    expected = net.resize_pos_embed((6, 8)).detach().clone()
    x = torch.randn(1, 1, 24, 32)
    before = net(x)
    net.set_img_size((24, 32))
    assert net.grid == (6, 8) and net.img_size == (24, 32)
    assert torch.equal(net.pos_embed.data, expected)
    torch.testing.assert_close(net(x), before)
    with pytest.raises(MixerConfigError, match="divisible by patch_size"):
        net.set_img_size((25, 32))


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", ALL_MIXERS)
@pytest.mark.parametrize("head", ["image", "classify"])
def test_gradients_reach_every_parameter(name, head):
    kw = {"mixer_kw": {"sparsity_threshold": 0.0}} if name == "afno" else {}
    net = small_net(name, img_size=16, patch_size=4, in_chans=2, head=head, num_classes=3, **kw)
    x = torch.randn(2, 2, 16, 16, requires_grad=True)
    net(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in net.named_parameters():
        assert p.grad is not None, f"no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"zero gradient for {pname}"


def test_float64_model_and_gradcheck_of_a_tiny_net():
    net = TokenMixerNet("afno", img_size=4, patch_size=2, in_chans=1, embed_dim=4, depth=1,
                        mixer_kw={"num_blocks": 2, "sparsity_threshold": 0.0}).double()
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert net(x).dtype == torch.float64
    assert torch.autograd.gradcheck(net, (x,), eps=1e-6, atol=1e-5)


def test_count_parameters():
    net = small_net("afno", img_size=16, patch_size=4)
    assert count_parameters(net) == sum(p.numel() for p in net.parameters())
    assert count_parameters(net, trainable_only=True) == count_parameters(net)
    nb = small_net("afno", img_size=16, patch_size=4, mixer_kw={"bias": False})
    frozen = sum(b.mixer.b1.numel() + b.mixer.b2.numel() for b in nb.blocks)
    assert count_parameters(nb) - count_parameters(nb, trainable_only=True) == frozen > 0
    # the pieces add up: patch embed + pos embed + blocks + final norm + head
    D, p, C = 16, 4, 3
    pieces = (C * p * p * D + D) + 4 * 4 * D + sum(count_parameters(b) for b in net.blocks) + 2 * D \
        + (D * p * p * C + p * p * C)
    assert count_parameters(net) == pieces
    with pytest.raises(TypeError, match="torch.nn.Module"):
        count_parameters([1, 2])


def test_laptop_defaults():
    net = TokenMixerNet()
    assert (net.embed_dim, net.depth, net.patch_size, net.mixer_name) == (64, 4, (4, 4), "afno")
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)


# --------------------------------------------------------------------------- bad configs and inputs
@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(head="segment"), MixerConfigError, "head must be one of"),
    (dict(mixer="conv"), MixerConfigError, "unknown mixer name 'conv'"),
    (dict(img_size=30, patch_size=4), MixerConfigError, "divisible by patch_size"),
    (dict(img_size=(32, 30)), MixerConfigError, "divisible by patch_size"),
    (dict(img_size=(32, 32, 3)), MixerConfigError, "img_size must be an integer or a pair"),
    (dict(patch_size=0), MixerConfigError, "patch_size must be a positive integer"),
    (dict(in_chans=0), MixerConfigError, "in_chans must be a positive integer"),
    (dict(out_chans=-1), MixerConfigError, "out_chans must be a positive integer"),
    (dict(embed_dim=2.5), MixerConfigError, "embed_dim must be a positive integer"),
    (dict(depth=0), MixerConfigError, "depth must be a positive integer"),
    (dict(num_classes=0), MixerConfigError, "num_classes must be a positive integer"),
    (dict(mlp_ratio=0), MixerConfigError, "mlp_ratio must be a finite number > 0"),
    (dict(mixer_kw=[("num_blocks", 4)]), MixerConfigError, "mixer_kw must be a dict"),
    (dict(embed_dim=20, mixer_kw={"num_blocks": 8}), MixerConfigError, "divisible by num_blocks=8"),
    (dict(mixer_kw={"num_block": 8}), MixerConfigError, "unknown keyword"),
])
def test_bad_config_errors(kwargs, exc, match):
    kwargs = {"mixer": "afno", **kwargs}
    with pytest.raises(exc, match=match):
        TokenMixerNet(**kwargs)


@pytest.mark.parametrize("make_x, exc, match", [
    (lambda: torch.randn(3, 16, 16), MixerInputError, "rank 4 \\[B, C, H, W\\]"),
    (lambda: torch.randn(1, 16, 16, 3), MixerInputError, "in_chans=3"),
    (lambda: torch.randn(1, 1, 16, 16), MixerInputError, "has 1 channels"),
    (lambda: torch.randn(1, 3, 18, 16), MixerInputError, "divisible by patch_size"),
    (lambda: torch.ones(1, 3, 16, 16, dtype=torch.int64), TypeError, "real floating-point"),
    (lambda: torch.randn(1, 3, 16, 16, dtype=torch.complex64), TypeError, "real floating-point"),
    (lambda: torch.randn(1, 3, 16, 16, dtype=torch.float64), TypeError, "parameters are torch.float32"),
    (lambda: torch.full((1, 3, 16, 16), float("inf")), MixerInputError, "NaN or Inf"),
    (lambda: [[1.0]], TypeError, "torch.Tensor"),
])
def test_bad_input_errors(make_x, exc, match):
    net = small_net("afno", img_size=16, patch_size=4)
    with pytest.raises(exc, match=match):
        net(make_x())


def test_registry_mixers_are_all_covered():
    """Every registered mixer (afno_fast included) runs through the tests above."""
    assert set(afno_lite.MIXERS) <= set(ALL_MIXERS)


# --------------------------------------------------------------------------- position embedding
@pytest.mark.parametrize("mixer", ["gfn", "attention"])
def test_without_position_embedding_the_network_commutes_with_patch_shifts(mixer):
    """pos_embed="none": only the mixer sees positions. GFN and attention commute with circular
    shifts of the token grid, so the whole network commutes with shifts by whole patches; the
    learned embedding breaks that (the control chapter 10 needs)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    shift = lambda t: torch.roll(t, shifts=(4, 8), dims=(-2, -1))  # noqa: E731 (one and two patches)
    outs = {}
    for pe in ("none", "learned"):
        torch.manual_seed(1)
        net = TokenMixerNet(mixer, img_size=32, patch_size=4, in_chans=3, embed_dim=16, depth=2,
                            pos_embed=pe).double().eval()
        with torch.no_grad():
            outs[pe] = float((net(shift(x)) - shift(net(x))).abs().max())
    assert outs["none"] < 1e-10 and outs["learned"] > 1e-4, outs


def test_no_position_embedding_has_no_parameter_and_runs_on_other_grids():
    a = TokenMixerNet("afno", img_size=32, patch_size=4, embed_dim=16, depth=1, pos_embed="none")
    b = TokenMixerNet("afno", img_size=32, patch_size=4, embed_dim=16, depth=1)
    assert a.pos_embed is None and a.resize_pos_embed((16, 16)) is None
    assert count_parameters(b) - count_parameters(a) == 8 * 8 * 16
    assert a(torch.randn(1, 3, 64, 48)).shape == (1, 3, 64, 48)
    a.set_img_size(64)
    assert a.grid == (16, 16) and a.pos_embed is None
    with pytest.raises(MixerConfigError, match="pos_embed"):
        TokenMixerNet("afno", pos_embed="sinusoidal")


def test_seeded_initial_weights_do_not_depend_on_torchs_trunc_normal(monkeypatch):
    """The position embedding and the Linear weights are ``N(0, 0.02^2)`` drawn with
    ``normal_``, whose values from a seed torch keeps across releases. ``trunc_normal_``
    changed its algorithm (torch 2.11 and 2.13 draw different values from one seed), and with
    ViT's bounds (``±2`` at ``std=0.02``: 100 standard deviations) it truncates nothing, so
    the network does not call it: a different ``trunc_normal_`` leaves the weights unchanged."""
    def build():
        torch.manual_seed(0)
        return TokenMixerNet(mixer="afno", img_size=(16, 16), patch_size=4, embed_dim=32, depth=2)

    want = build().state_dict()

    def other_trunc_normal_(t, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
        with torch.no_grad():   # torch 2.11's method: inverse CDF of a uniform draw
            return t.uniform_(-1 + 1e-7, 1 - 1e-7).erfinv_().mul_(std * 2**0.5).add_(mean).clamp_(a, b)

    monkeypatch.setattr(torch.nn.init, "trunc_normal_", other_trunc_normal_)
    got = build().state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)
    w = torch.cat([want[k].flatten() for k in want if k.startswith("blocks.") and "mlp" in k and
                   k.endswith("weight")] + [want["head.weight"].flatten(), want["pos_embed"].flatten()])
    assert abs(float(w.mean())) < 0.001 and abs(float(w.std()) - 0.02) < 0.001      # N(0, 0.02^2)


def test_autocast_dtype_images_are_accepted_under_autocast():
    """Under ``torch.autocast`` the patch embedding casts its operands itself, so images in the
    autocast dtype are valid input; the network refused them with a dtype TypeError."""
    net = small_net("attention", img_size=16, patch_size=4, in_chans=2)
    x = torch.randn(2, 2, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(x.bfloat16())
        y32 = net(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y.float(), y32.float(), atol=0.1, rtol=0.1)
    with pytest.raises(TypeError, match="x has dtype torch.bfloat16"):
        net(x.bfloat16())
