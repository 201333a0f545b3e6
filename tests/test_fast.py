"""FastAFNO: same parameters, outputs and gradients as the readable reference ``AFNO``."""
from __future__ import annotations

import itertools

import pytest
import torch

import afno_lite
from afno_lite import MixerInputError
from afno_lite.fast import FastAFNO, autocast_dtype, compiled, to_channels_first, to_channels_last
from afno_lite.mixers import AFNO
from afno_lite.registry import MIXERS

F64 = torch.float64


def _pair(C: int, scale: float = 0.3, **kw) -> tuple[AFNO, FastAFNO]:
    """A reference AFNO with weights large enough that ReLU and softshrink are active,
    and a FastAFNO loaded from its state dict."""
    ref = AFNO(C, **kw)
    with torch.no_grad():
        for p in ref.parameters():
            if p.requires_grad:
                p.normal_(0.0, scale)
    fast = FastAFNO(C, **kw)
    fast.load_state_dict(ref.state_dict())
    return ref, fast


def _outputs_and_grads(m, x, g):
    x = x.detach().clone().requires_grad_(True)
    y = m(x)
    params = [p for p in m.parameters() if p.requires_grad]
    grads = torch.autograd.grad(y, [x, *params], g)
    return y.detach(), grads


GRIDS = [(8, 8), (6, 10), (7, 5), (9, 16)]          # square, non-square, odd, W > H
SWITCHES = list(itertools.product([True, False], ["relu", None], [True, False]))   # bias, activation, residual


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("keep_fraction", [1.0, 0.5, 0.25])
def test_equals_reference_float32_outputs_and_gradients(grid, keep_fraction):
    torch.manual_seed(0)
    H, W = grid
    # half of the bias/activation/residual switches per grid, alternating: all of them over the grids
    switches = [s for j, s in enumerate(SWITCHES) if (j + GRIDS.index(grid)) % 2 == 0]
    for (num_blocks, hidden_factor), (bias, act, res) in zip(
            itertools.cycle([(1, 1), (4, 2), (2, 1), (8, 3)]), switches):
        kw = dict(num_blocks=num_blocks, hidden_factor=hidden_factor, keep_fraction=keep_fraction,
                  sparsity_threshold=0.02, bias=bias, activation=act, residual=res)
        ref, fast = _pair(16, **kw)
        x, g = torch.randn(3, H, W, 16), torch.randn(3, H, W, 16)
        y_ref, g_ref = _outputs_and_grads(ref, x, g)
        y_fast, g_fast = _outputs_and_grads(fast, x, g)
        assert y_fast.dtype == torch.float32 and y_fast.shape == x.shape
        assert (y_fast - y_ref).abs().max() <= 1e-5, kw
        for a, b in zip(g_fast, g_ref, strict=True):  # gradients sum over many modes: 1e-5 of their scale
            assert a.shape == b.shape and (a - b).abs().max() <= 1e-5 * max(1.0, b.abs().max().item()), kw


def test_thresholds_are_active_in_the_comparison():
    """The equality above is not vacuous: softshrink zeroes some coefficients and passes
    others, and ReLU clips some hidden units."""
    torch.manual_seed(0)
    ref, _ = _pair(16, num_blocks=4, sparsity_threshold=0.02)
    x = torch.randn(3, 8, 8, 16)
    X = torch.fft.rfft2(x, dim=(1, 2), norm="ortho").reshape(3, 8, 5, 4, 4)
    o_r, o_i = ref.block_mlp(X.real, X.imag)
    small = (o_r.abs() <= 0.02).float().mean()
    assert 0.01 < small < 0.99
    h = torch.einsum("...bi,bio->...bo", X.real, ref.w1[0]) - torch.einsum("...bi,bio->...bo", X.imag, ref.w1[1])
    assert 0.1 < (h + ref.b1[0] < 0).float().mean() < 0.9


@pytest.mark.parametrize("grid", [(8, 8), (5, 7), (12, 6)])
@pytest.mark.parametrize("keep_fraction", [1.0, 0.5, 0.25])
@pytest.mark.parametrize("switches", SWITCHES[::3] + [SWITCHES[-1]])
def test_equals_reference_float64_to_rounding(grid, keep_fraction, switches):
    bias, act, res = switches
    torch.manual_seed(1)
    ref, fast = _pair(8, num_blocks=2, hidden_factor=2, keep_fraction=keep_fraction, sparsity_threshold=0.05,
                      bias=bias, activation=act, residual=res)
    ref, fast = ref.double(), fast.double()
    x, g = torch.randn(2, *grid, 8, dtype=F64), torch.randn(2, *grid, 8, dtype=F64)
    y_ref, g_ref = _outputs_and_grads(ref, x, g)
    y_fast, g_fast = _outputs_and_grads(fast, x, g)
    torch.testing.assert_close(y_fast, y_ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_fast, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("keep_fraction", [1.0, 0.5])
def test_gradcheck_float64(keep_fraction):
    torch.manual_seed(0)
    _, fast = _pair(4, scale=0.5, num_blocks=2, hidden_factor=2, keep_fraction=keep_fraction,
                    sparsity_threshold=0.05)
    fast = fast.double()
    x = torch.randn(2, 3, 5, 4, dtype=F64, requires_grad=True)
    params = [fast.w1, fast.b1, fast.w2, fast.b2]
    names = ["w1", "b1", "w2", "b2"]

    def f(x, *ps):
        return torch.func.functional_call(fast, dict(zip(names, ps, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("H,W", [(8, 8), (9, 15), (10, 20), (7, 9), (1, 1), (2, 2), (5, 4), (6, 1), (1, 6)])
def test_transforms_with_written_backward_passes_equal_autograd(H, W):
    """FastAFNO's two transforms whose backward passes are written by hand, ``_Rfft2`` and
    ``_ProjectedIrfft2`` (for every number of kept columns, as the pruned path uses them), give
    the outputs and gradients autograd gives for ``rfft2`` and for
    ``irfft2(hermitian_project(.))`` of the zero-padded half-spectrum, in float64; gradcheck too."""
    from afno_lite.fast import _ProjectedIrfft2, _Rfft2
    from afno_lite.spectral import hermitian_project

    g = torch.Generator().manual_seed(H * 100 + W)
    x = torch.randn(2, 3, H, W, dtype=torch.float64, generator=g, requires_grad=True)
    for M in (None, *range(1, W // 2 + 2)):                   # None: every column
        w = torch.randn(2, 3, H, M or W // 2 + 1, dtype=torch.complex128, generator=g)
        outs = []
        for rfft2 in (lambda t: torch.fft.rfft2(t, norm="ortho")[..., :M], lambda t: _Rfft2.apply(t, M)):
            X = rfft2(x)
            loss = (X * w).real.sum() + (X.abs() ** 2).sum()      # a non-linear use of X
            outs.append((X, *torch.autograd.grad(loss, x)))
        for a, b in zip(*outs, strict=True):
            torch.testing.assert_close(b, a, rtol=0, atol=1e-12)
        # gradcheck on one sample and one channel: the transform acts on each alone
        assert torch.autograd.gradcheck(lambda t: _Rfft2.apply(t, M), (x[:1, :1].detach().requires_grad_(),))
    t = torch.randn(2, 3, H, W, dtype=torch.float64, generator=g)
    for M in range(1, W // 2 + 2):
        Y = torch.randn(2, 3, H, M, dtype=torch.complex128, generator=g, requires_grad=True)
        pad = (0, W // 2 + 1 - M)

        def reference(Y):
            P = torch.nn.functional.pad(hermitian_project(Y, W, dims=(-2, -1)), pad)
            return torch.fft.irfft2(P, s=(H, W), norm="ortho")

        outs = []
        for inverse in (reference, lambda Y: _ProjectedIrfft2.apply(Y, W)):
            y = inverse(Y)
            outs.append((y, *torch.autograd.grad((y * t).sum() + (y ** 2).sum(), Y)))
        for a, b in zip(*outs, strict=True):
            torch.testing.assert_close(b, a, rtol=0, atol=1e-12)
        assert torch.autograd.gradcheck(lambda Y: _ProjectedIrfft2.apply(Y, W), (Y[:1, :1].detach().requires_grad_(),))


def test_state_dict_round_trips_both_ways_and_same_parameters():
    ref = AFNO(32, num_blocks=4, hidden_factor=2)
    fast = FastAFNO(32, num_blocks=4, hidden_factor=2)
    assert {k: v.shape for k, v in ref.state_dict().items()} == {k: v.shape for k, v in fast.state_dict().items()}
    assert fast.w1.shape == (2, 4, 8, 16) and fast.b1.shape == (2, 4, 16)
    assert fast.w2.shape == (2, 4, 16, 8) and fast.b2.shape == (2, 4, 8)
    ref.load_state_dict(fast.state_dict())
    for k, v in fast.state_dict().items():
        assert torch.equal(ref.state_dict()[k], v)
    fast2 = FastAFNO(32, num_blocks=4, hidden_factor=2)
    fast2.load_state_dict(ref.state_dict())
    for k, v in ref.state_dict().items():
        assert torch.equal(fast2.state_dict()[k], v)
    assert sum(p.numel() for p in fast.parameters()) == sum(p.numel() for p in ref.parameters())


def test_no_bias_parameters_stay_zero_and_frozen():
    ref, fast = _pair(16, num_blocks=4, bias=False)
    assert not fast.b1.requires_grad and not fast.b2.requires_grad
    assert torch.count_nonzero(fast.b1) == 0
    x = torch.randn(1, 6, 6, 16, requires_grad=True)
    fast(x).sum().backward()
    assert fast.b1.grad is None and fast.w1.grad is not None


@pytest.mark.parametrize("src_cls,dst_cls", [(AFNO, FastAFNO), (FastAFNO, AFNO), (AFNO, AFNO)])
def test_bias_free_layer_refuses_nonzero_biases_from_a_state_dict(src_cls, dst_cls):
    """``bias=False`` promises biases that are zeros and never train; ``load_state_dict`` from a
    layer with biases used to copy them in silently (a frozen non-zero bias: another function),
    where :func:`afno_lite.compat.load_nvidia_afno_layer` refuses the same weights."""
    src = src_cls(16, num_blocks=4)                       # bias=True: non-zero b1, b2
    dst = dst_cls(16, num_blocks=4, bias=False)
    with pytest.raises(afno_lite.MixerConfigError, match=r"built with bias=False but the state dict's "
                                                         r"\['b1', 'b2'\] are non-zero"):
        dst.load_state_dict(src.state_dict())
    assert dst.b1.abs().max() == 0 and dst.b2.abs().max() == 0
    zero = src_cls(16, num_blocks=4, bias=False)          # zero biases load, both ways
    dst.load_state_dict(zero.state_dict())
    src.load_state_dict(dst.state_dict())
    assert not dst.b1.requires_grad and src.b1.requires_grad and src.b1.abs().max() == 0


def test_registry_and_package():
    assert MIXERS["afno_fast"] is FastAFNO
    m = afno_lite.mixer("afno_fast", 32, num_blocks=4, keep_fraction=0.5)
    assert isinstance(m, FastAFNO) and m.keep_fraction == 0.5
    assert m(torch.randn(1, 8, 8, 32)).shape == (1, 8, 8, 32)


def test_bfloat16_input_matches_reference():
    torch.manual_seed(0)
    ref, fast = _pair(16, num_blocks=4, sparsity_threshold=0.02)
    x = torch.randn(2, 8, 6, 16).bfloat16()
    y_fast, y_ref = fast(x), ref(x)
    assert y_fast.dtype == torch.bfloat16
    torch.testing.assert_close(y_fast, y_ref)          # bfloat16 tolerances
    x.requires_grad_(True)
    fast(x).float().sum().backward()
    assert x.grad.dtype == torch.bfloat16 and torch.isfinite(x.grad.float()).all()


def test_bfloat16_module_and_input():
    torch.manual_seed(0)
    ref, fast = _pair(16, num_blocks=4, sparsity_threshold=0.02)
    ref, fast = ref.bfloat16(), fast.bfloat16()
    x = torch.randn(1, 8, 8, 16).bfloat16()
    torch.testing.assert_close(fast(x), ref(x))


def test_float64_input_with_float32_parameters_matches_reference():
    torch.manual_seed(0)
    ref, fast = _pair(8, num_blocks=2, sparsity_threshold=0.02)
    x = torch.randn(1, 6, 7, 8, dtype=F64)
    y = fast(x)
    assert y.dtype == F64
    torch.testing.assert_close(y, ref(x), rtol=1e-12, atol=1e-12)


def test_non_contiguous_input_and_batch():
    torch.manual_seed(0)
    ref, fast = _pair(16, num_blocks=4, sparsity_threshold=0.02)
    big = torch.randn(3, 8, 16, 32)
    x = big[..., ::2].transpose(1, 2)                    # [3, 16, 8, 16], neither contiguous nor channels-last
    assert not x.is_contiguous()
    torch.testing.assert_close(fast(x), ref(x), rtol=1e-5, atol=1e-5)


def test_input_validation_is_inherited():
    fast = FastAFNO(16, num_blocks=4)
    with pytest.raises(MixerInputError, match="channels"):
        fast(torch.randn(1, 8, 8, 12))
    with pytest.raises(MixerInputError, match="NaN"):
        fast(torch.full((1, 4, 4, 16), float("nan")))
    with pytest.raises(afno_lite.MixerConfigError, match="num_blocks"):
        FastAFNO(10, num_blocks=4)


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (3, 64, 64, 64)])   # generic copy and blocked transpose paths
def test_layout_changes_are_exact_and_differentiable(shape):
    x = torch.randn(*shape, dtype=F64)
    xc = to_channels_first(x)
    assert xc.is_contiguous() and torch.equal(xc, x.permute(0, 3, 1, 2))
    back = to_channels_last(xc)
    assert back.is_contiguous() and torch.equal(back, x)
    assert to_channels_first(x, torch.float32).dtype == torch.float32
    x.requires_grad_(True)
    w = torch.randn(shape[0], shape[3], shape[1], shape[2], dtype=F64)
    (to_channels_first(x) * w).sum().backward()
    assert torch.equal(x.grad, w.permute(0, 2, 3, 1))
    if x.numel() < 100:
        assert torch.autograd.gradcheck(lambda t: to_channels_last(to_channels_first(t) * 2), (x,))


# --------------------------------------------------------------------------- autocast (bf16)
BF16 = torch.bfloat16
MATMULS = ("mm", "bmm", "baddbmm", "addmm", "addbmm", "matmul")
FFTS = ("_fft_r2c", "_fft_c2c", "_fft_c2r")


def _ops_and_dtypes(fn) -> list[tuple[str, tuple]]:
    """(aten op name, dtypes of its tensor arguments) of every operator ``fn()`` dispatches, as
    the kernels see them (below autocast, so after its casts)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    seen = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            dts = tuple(t.dtype for t in tree_leaves((args, kwargs or {})) if isinstance(t, torch.Tensor))
            seen.append((func.overloadpacket.__name__, dts))
            return func(*args, **(kwargs or {}))

    with Record():
        fn()
    return seen


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative error in the 2-norm (a bf16 rounding of every entry gives about 2**-9 = 0.002)."""
    return float((a.float() - b.float()).norm() / b.float().norm())


# bf16 keeps 8 significant bits: each rounding is off by at most 2**-9 ~ 0.2 % (relative).
# The bf16 block MLP rounds its input, both weights, the hidden layer and its output: about
# five roundings on the way, partly averaging out in the sums over the b inputs of each
# block, so the MLP output is expected about 0.5 % off in norm (the test allows 1 %); the
# FFTs stay float32 and add nothing noticeable. A float32 MLP is 1e-7 off: well below.
BF16_REL_TOL = 1e-2


@pytest.mark.parametrize("keep_fraction,residual,smooth", [(1.0, False, True), (0.5, False, True),
                                                           (1.0, True, False), (0.5, False, False)])
def test_autocast_bf16_matches_float32_reference_and_gradients_flow(keep_fraction, residual, smooth):
    """``smooth``: no ReLU, no soft-thresholding, so the gradients are smooth functions of the
    weights and follow the same bf16 error budget as the outputs. With ReLU and softshrink, a
    bf16-rounded pre-activation that lands on the other side of 0 or of the threshold switches a
    whole gradient entry on or off: the gradients then differ by a few percent in norm (the
    reference ``AFNO`` run under the same autocast differs from its float32 self as much), and
    the test allows 10 %."""
    torch.manual_seed(0)
    kw = dict(activation=None, sparsity_threshold=0.0) if smooth else dict(sparsity_threshold=0.01)
    ref, fast = _pair(64, scale=0.15, num_blocks=4, keep_fraction=keep_fraction, residual=residual, **kw)
    x, g = torch.randn(2, 12, 10, 64), torch.randn(2, 12, 10, 64)
    y_ref, g_ref = _outputs_and_grads(ref, x, g)                     # float32, no autocast
    with torch.autocast("cpu", dtype=BF16):
        assert autocast_dtype("cpu") == BF16
        y, grads = _outputs_and_grads(fast, x, g)
    assert autocast_dtype("cpu") is None
    assert y.dtype == torch.float32 and y.shape == x.shape            # the output keeps the input dtype
    # (with the residual the input dominates the output: compare the mixer's own part)
    err = _rel(y - x, y_ref - x) if residual else _rel(y, y_ref)
    assert 1e-4 < err < BF16_REL_TOL, err                            # bf16-sized: neither float32 nor broken
    names = ["x", "w1", "b1", "w2", "b2"]
    for name, a, b in zip(names, grads, g_ref, strict=True):
        assert a.dtype == torch.float32 and torch.isfinite(a).all(), name   # float32 master gradients
        assert _rel(a, b) < (BF16_REL_TOL if smooth else 0.1), (name, _rel(a, b))


def test_autocast_bf16_runs_the_block_mlp_matmuls_in_bf16_and_the_ffts_in_float32():
    torch.manual_seed(0)
    _, fast = _pair(32, num_blocks=4, sparsity_threshold=0.01)
    x = torch.randn(1, 8, 8, 32, requires_grad=True)

    def step():
        with torch.autocast("cpu", dtype=BF16):
            y = fast(x)
        y.sum().backward()

    ops = _ops_and_dtypes(step)
    mm = [(n, d) for n, d in ops if n in MATMULS]
    assert len(mm) >= 2 + 4, mm                # two layers forward; their input and weight gradients
    assert all(set(d) == {BF16} for _, d in mm), mm
    fft = [(n, d) for n, d in ops if n in FFTS]
    assert len(fft) >= 4 and all(set(d) <= {torch.float32, torch.complex64} for _, d in fft), fft


def test_without_autocast_the_block_mlp_stays_complex_float32():
    torch.manual_seed(0)
    _, fast = _pair(32, num_blocks=4, sparsity_threshold=0.01)
    x = torch.randn(1, 8, 8, 32)
    mm = [(n, d) for n, d in _ops_and_dtypes(lambda: fast(x)) if n in MATMULS]
    assert [n for n, _ in mm] == ["baddbmm", "baddbmm"] and all(set(d) == {torch.complex64} for _, d in mm)
    with torch.autocast("cpu", dtype=BF16, enabled=False):
        assert autocast_dtype("cpu") is None


def test_autocast_leaves_float64_alone():
    torch.manual_seed(0)
    ref, fast = _pair(8, num_blocks=2, sparsity_threshold=0.02)
    ref, fast = ref.double(), fast.double()
    x = torch.randn(1, 6, 7, 8, dtype=F64)
    with torch.autocast("cpu", dtype=BF16):
        y = fast(x)
    torch.testing.assert_close(y, ref(x), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- compiled path
def _compiled_matches_eager(backend, **kw):
    torch.manual_seed(0)
    _, eager = _pair(16, num_blocks=4, sparsity_threshold=0.02)
    _, other = _pair(16, num_blocks=4, sparsity_threshold=0.02)
    other.load_state_dict(eager.state_dict())
    fn = compiled(other, backend=backend, **kw)
    x, g = torch.randn(2, 8, 6, 16), torch.randn(2, 8, 6, 16)
    y_e, g_e = _outputs_and_grads(eager, x, g)
    for _ in range(2):                         # the second call runs the compiled code without compiling
        y_c, g_c = _outputs_and_grads(fn, x, g)   # the compiled module has the layer's parameters
        torch.testing.assert_close(y_c, y_e, rtol=1e-5, atol=1e-5)
        for a, b in zip(g_c, g_e, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_compiled_path_traces_to_the_eager_layer():
    """dynamo + AOT autograd (no code generation): the whole layer, custom autograd functions
    and complex tensors included, traces into graphs that give the eager outputs and gradients."""
    _compiled_matches_eager("aot_eager")


def _has_cxx() -> bool:
    import shutil

    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


@pytest.mark.slow
@pytest.mark.skipif(not _has_cxx(), reason="torch.compile's default (inductor) mode on CPU needs a C++ compiler")
def test_compiled_default_mode_equals_eager_on_cpu():
    """The path as :func:`afno_lite.fast.compiled` gives it on CPU (inductor, default mode)."""
    _compiled_matches_eager(None)


@pytest.mark.cuda
def test_cuda_matches_cpu():  # pragma: no cover - no GPU on the CI machine
    ref, fast = _pair(16, num_blocks=4, sparsity_threshold=0.02)
    x = torch.randn(2, 8, 8, 16)
    torch.testing.assert_close(fast.cuda()(x.cuda()).cpu(), ref(x), rtol=1e-5, atol=1e-5)
