"""Same answer on every device.

* Every spectral mixer hands the inverse FFT a half-spectrum whose self-conjugate columns
  (``k_W = 0`` and, for even ``W``, ``k_W = W/2``) are Hermitian along ``k_H``; the inverse is
  then defined by the maths, not by what an FFT library does with the other half.
* ``spectral.hermitian_project`` is that projection: ½(z + conj(z reversed along H)).
* With it, every spectral mixer gives the same output under emulated inverse FFTs that read
  those columns differently (from their upper or their lower rows); without it they disagree.
* The trainer resolves devices the way ``torch.cuda.set_device`` and ``torchrun`` need.

The GPU half (CPU-vs-GPU outputs, a CUDA epoch, torchrun with nccl) is in ``tests/test_cuda.py``
(marker ``cuda``) and ``tests/gpu_check.py``.
"""
from __future__ import annotations

import sys

import pytest
import torch

import afno_lite
from afno_lite import spectral, train
from afno_lite._checks import MixerConfigError

SPECTRAL_MIXERS = ["fno", "gfn", "afno", "afno_fast"]
GRIDS = [(8, 8), (9, 15), (10, 20), (16, 16)]
C = 16


def _build(name: str, H: int, W: int, keep_fraction: float = 1.0) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "fno":
        kw = {"modes": (min(3, H // 2), min(3, W // 2))}
    elif name == "gfn":
        kw = {"grid": (H, W)}
    else:
        kw = {"num_blocks": 4, "keep_fraction": keep_fraction}
    m = afno_lite.mixer(name, C, **kw)
    with torch.no_grad():  # push the block MLP / complex weights far from anything Hermitian
        for p in m.parameters():
            p.mul_(50.0)
    return m


def _self_conjugate_defects(m: torch.nn.Module, x: torch.Tensor, monkeypatch) -> list[float]:
    """Run ``m(x)`` with ``torch.fft.irfft2``/``irfft`` wrapped; return, for every call, how far
    the spectrum it received is from Hermitian on its self-conjugate columns (relative)."""
    seen: list[float] = []
    real_irfft2, real_irfft = torch.fft.irfft2, torch.fft.irfft

    def irfft2(X, s=None, dim=(-2, -1), norm=None):
        W = s[-1] if s is not None else 2 * (X.shape[dim[-1]] - 1)
        seen.append(spectral.hermitian_defect(X, W, dims=dim))
        return real_irfft2(X, s=s, dim=dim, norm=norm)

    def irfft(X, n=None, dim=-1, norm=None):
        # a 1-D inverse along W: its self-conjugate entries must be real
        W = n if n is not None else 2 * (X.shape[dim] - 1)
        cols = spectral.self_conjugate_columns(W, X.shape[dim])
        scale = float(X.abs().max()) or 1.0
        seen.append(max(float(X.narrow(dim, c, 1).imag.abs().max()) for c in cols) / scale)
        return real_irfft(X, n=n, dim=dim, norm=norm)

    monkeypatch.setattr(torch.fft, "irfft2", irfft2)
    monkeypatch.setattr(torch.fft, "irfft", irfft)
    with torch.no_grad():
        m(x)
    monkeypatch.undo()
    assert seen, f"{type(m).__name__} never called irfft2/irfft"
    return seen


def _cases():
    for name in SPECTRAL_MIXERS:
        for H, W in GRIDS:
            yield name, H, W, 1.0
            if name.startswith("afno"):
                yield name, H, W, 0.5   # kept-mode path (pruned FFT in afno_fast)


@pytest.mark.parametrize("name,H,W,keep", list(_cases()))
def test_inverse_fft_receives_hermitian_self_conjugate_columns(name, H, W, keep, monkeypatch):
    m = _build(name, H, W, keep)
    x = torch.randn(2, H, W, C, generator=torch.Generator().manual_seed(1))
    defects = _self_conjugate_defects(m, x, monkeypatch)
    assert max(defects) < 1e-6, f"{name} {H}x{W} keep={keep}: non-Hermitian by {max(defects):.2e}"


def _without_projection(monkeypatch):
    """Replace ``hermitian_project`` (on a spectrum) and ``hermitian_project_after_ifft_`` (on a
    spectrum already inverse-transformed along ``k_H``) by the identity wherever afno_lite bound
    the names."""
    identities = {"hermitian_project": lambda X, W, dims=(1, 2): X,
                  "hermitian_project_after_ifft_": lambda Z, W, dim=-1: Z}
    patched = set()
    for mod_name, mod in list(sys.modules.items()):
        for name, identity in identities.items():
            if mod_name.startswith("afno_lite") and hasattr(mod, name):
                monkeypatch.setattr(mod, name, identity)
                patched.add(name)
    assert patched == set(identities), f"no afno_lite module uses {set(identities) - patched}"


@pytest.mark.parametrize("name", SPECTRAL_MIXERS)
def test_the_hermitian_check_fails_without_the_projection(name, monkeypatch):
    """The check above can fail: with the projection removed, every spectral mixer hands
    the inverse FFT a clearly non-Hermitian column."""
    H, W = 9, 15
    m = _build(name, H, W)
    x = torch.randn(2, H, W, C, generator=torch.Generator().manual_seed(1))
    _without_projection(monkeypatch)
    assert max(_self_conjugate_defects(m, x, monkeypatch)) > 1e-2


@pytest.mark.parametrize("name", SPECTRAL_MIXERS)
def test_projection_changes_nothing_on_cpu(name, monkeypatch):
    """CPU FFTs already use the Hermitian part: outputs with and without the explicit
    projection agree to 1e-6 (relative)."""
    for H, W in GRIDS:
        m = _build(name, H, W)
        x = torch.randn(2, H, W, C, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            y = m(x)
        with monkeypatch.context() as mp:
            _without_projection(mp)
            with torch.no_grad():
                y0 = m(x)
        assert float((y - y0).abs().max() / y0.abs().max()) < 1e-6


def _completion_from_rows(X: torch.Tensor, W: int, dims, upper: bool) -> torch.Tensor:
    """Another valid way for an inverse real FFT to read a self-conjugate column: trust one half
    of its rows (``k_H >= 0`` when ``upper``, else ``k_H <= 0``) and mirror it onto the other
    half; a self-mirrored row (``k_H = 0``, and ``H/2`` for even ``H``) keeps its real part.
    On a Hermitian column this is the column itself, like the Hermitian part."""
    h, w = (d % X.dim() for d in dims)
    H = X.shape[h]
    r = torch.arange(H)
    signed = torch.where(r <= H // 2, r, r - H)              # k_H of each row
    if H % 2 == 0:
        signed[H // 2] = H // 2 if upper else -(H // 2)
    shape = [1] * X.dim()
    shape[h] = H
    keep = ((signed >= 0) if upper else (signed <= 0)).view(shape)
    self_mirror = (r == (-r) % H).view(shape)
    out = X.clone()
    for c in spectral.self_conjugate_columns(W, X.shape[w]):
        z = X.narrow(w, c, 1)
        mirrored = spectral._mirror_rows(z, h).conj()          # row k_H <- conj of row -k_H
        filled = torch.where(keep, z, mirrored)
        filled = torch.where(self_mirror, filled.real.to(z.dtype), filled)
        out.narrow(w, c, 1).copy_(filled)
    return out


@pytest.mark.parametrize("H,W", GRIDS + [(7, 6)])
def test_emulated_completions_are_valid_inverse_ffts(H, W):
    """Both completions leave the spectrum of a real signal unchanged (so each is a correct
    inverse real FFT) but read a non-Hermitian column differently from each other."""
    x = torch.randn(2, H, W, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(H))
    X = torch.fft.rfft2(x, dim=(1, 2))
    Z = torch.randn(X.shape, dtype=X.dtype, generator=torch.Generator().manual_seed(W))
    up, low = (_completion_from_rows(Z, W, (1, 2), u) for u in (True, False))
    for upper in (True, False):
        torch.testing.assert_close(_completion_from_rows(X, W, (1, 2), upper), X, rtol=0, atol=1e-12)
    for P in (up, low):
        assert spectral.hermitian_defect(P, W, dims=(1, 2)) < 1e-12
    assert float((up - low).abs().max()) > 0.1


def _reading_imaginary_parts(X: torch.Tensor, W: int, dim: int, sign: float) -> torch.Tensor:
    """Another valid way for a 1-D inverse real FFT to read its self-conjugate entries: ``z`` as
    ``Re z + sign * Im z``. A valid input has real entries there, read as themselves."""
    out = X.clone()
    for c in spectral.self_conjugate_columns(W, X.shape[dim]):
        z = out.select(dim, c)
        z.copy_(z.real + sign * z.imag)
    return out


def _outputs_under_two_backends(m: torch.nn.Module, x: torch.Tensor, mp) -> list[torch.Tensor]:
    """``m(x)`` with ``torch.fft.irfft2``/``irfft`` as shipped, then emulating two other inverse
    real FFTs: the 2-D one completes the self-conjugate columns from their upper or their lower
    rows, the 1-D one (a 2-D inverse split into ``ifft`` along ``k_H`` and ``irfft`` along
    ``k_W``) reads the imaginary part of the self-conjugate entries with a + or a - sign."""
    real_irfft2, real_irfft = torch.fft.irfft2, torch.fft.irfft
    outs = []
    for upper in (None, True, False):
        def irfft2(X, s=None, dim=(-2, -1), norm=None, upper=upper):
            W = s[-1] if s is not None else 2 * (X.shape[dim[-1]] - 1)
            Xc = X if upper is None else _completion_from_rows(X, W, dim, upper)
            return real_irfft2(Xc, s=s, dim=dim, norm=norm)

        def irfft(X, n=None, dim=-1, norm=None, upper=upper):
            W = n if n is not None else 2 * (X.shape[dim] - 1)
            Xc = X if upper is None else _reading_imaginary_parts(X, W, dim, 1.0 if upper else -1.0)
            return real_irfft(Xc, n=n, dim=dim, norm=norm)

        mp.setattr(torch.fft, "irfft2", irfft2)
        mp.setattr(torch.fft, "irfft", irfft)
        with torch.no_grad():
            outs.append(m(x))
    mp.setattr(torch.fft, "irfft2", real_irfft2)
    mp.setattr(torch.fft, "irfft", real_irfft)
    return outs


@pytest.mark.parametrize("name,keep", [(n, 1.0) for n in SPECTRAL_MIXERS] + [("afno", 0.5), ("afno_fast", 0.5)])
def test_same_output_under_emulated_fft_backends(name, keep, monkeypatch):
    """The layer is one function whatever the inverse FFT does with non-Hermitian columns:
    under two emulated backends that complete those columns differently (trust the upper or
    the lower rows, where the CPU takes the Hermitian part; a split 2-D inverse: read the
    imaginary parts of the 1-D self-conjugate entries), every spectral mixer gives the
    same output to 1e-6 (relative), with every mode kept and (AFNO) with half of them (the
    pruned path of afno_fast). Without the projection the emulated backends disagree."""
    for H, W in GRIDS:
        m = _build(name, H, W, keep)
        x = torch.randn(2, H, W, C, generator=torch.Generator().manual_seed(3))
        with monkeypatch.context() as mp:
            y, y_up, y_low = _outputs_under_two_backends(m, x, mp)
        for other in (y_up, y_low):
            gap = float((other - y).abs().max() / y.abs().max())
            assert gap < 1e-6, f"{name} {H}x{W}: backends differ by {gap:.2e}"
        with monkeypatch.context() as mp:
            _without_projection(mp)
            y0, y0_up, y0_low = _outputs_under_two_backends(m, x, mp)
        gap0 = float(max((o - y0).abs().max() for o in (y0_up, y0_low)) / y0.abs().max())
        assert gap0 > 1e-2, f"{name} {H}x{W}: the emulated backends should differ without it"


# --------------------------------------------------------------------------- the helper itself
def _naive_project(X: torch.Tensor, W: int) -> torch.Tensor:
    """Loops over rows: column c <- ½(X[r, c] + conj X[(-r) mod H, c]) for c in {0, W/2}."""
    out = X.clone()
    H = X.shape[1]
    cols = [0] + ([W // 2] if W % 2 == 0 else [])
    for c in [c for c in cols if c < X.shape[2]]:
        for r in range(H):
            out[:, r, c] = 0.5 * (X[:, r, c] + X[:, (-r) % H, c].conj())
    return out


@pytest.mark.parametrize("H,W", [(1, 1), (2, 2), (5, 4), (8, 8), (9, 15), (10, 20), (7, 1)])
def test_hermitian_project_matches_loops_and_is_idempotent(H, W):
    g = torch.Generator().manual_seed(H * 100 + W)
    X = torch.randn(3, H, W // 2 + 1, 4, dtype=torch.complex128, generator=g)
    P = spectral.hermitian_project(X, W, dims=(1, 2))
    torch.testing.assert_close(P, _naive_project(X, W), rtol=0, atol=1e-15)
    torch.testing.assert_close(spectral.hermitian_project(P, W, dims=(1, 2)), P, rtol=0, atol=1e-15)
    assert spectral.hermitian_defect(P, W, dims=(1, 2)) < 1e-15
    # the other columns are untouched
    other = [c for c in range(W // 2 + 1) if c not in spectral.self_conjugate_columns(W)]
    torch.testing.assert_close(P[:, :, other], X[:, :, other], rtol=0, atol=0)


@pytest.mark.parametrize("H,W", [(1, 1), (2, 2), (5, 4), (8, 8), (9, 15), (10, 20), (6, 1)])
def test_projection_after_the_inverse_along_h_is_the_real_part_of_those_columns(H, W):
    """``hermitian_project_after_ifft_`` (in place, on a spectrum inverse-transformed along
    ``k_H``) gives what ``ifft`` along ``k_H`` of ``hermitian_project`` gives, for every number
    of held columns; the random input is far from Hermitian, so doing nothing fails."""
    g = torch.Generator().manual_seed(H * 100 + W)
    for M in range(1, W // 2 + 2):
        X = torch.randn(3, 4, H, M, dtype=torch.complex128, generator=g)
        via_spectrum = torch.fft.ifft(spectral.hermitian_project(X, W, dims=(-2, -1)), dim=-2, norm="ortho")
        Z = torch.fft.ifft(X, dim=-2, norm="ortho")
        assert spectral.hermitian_project_after_ifft_(Z, W) is Z
        torch.testing.assert_close(Z, via_spectrum, rtol=0, atol=1e-14)
    Z = torch.fft.ifft(X, dim=-2, norm="ortho").transpose(-1, -2).contiguous()     # k_W on axis -2
    torch.testing.assert_close(spectral.hermitian_project_after_ifft_(Z, W, dim=-2).transpose(-1, -2),
                               via_spectrum, rtol=0, atol=1e-14)
    with pytest.raises(TypeError, match="complex"):
        spectral.hermitian_project_after_ifft_(torch.zeros(2, 3), 4)


def test_hermitian_project_leaves_a_real_signals_spectrum_unchanged():
    x = torch.randn(2, 9, 14, 3, dtype=torch.float64)
    X = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")
    assert spectral.hermitian_defect(X, 14, dims=(1, 2)) < 1e-14
    torch.testing.assert_close(spectral.hermitian_project(X, 14, dims=(1, 2)), X, rtol=0, atol=1e-14)


def test_cpu_inverse_fft_uses_the_hermitian_part():
    """What the CPU does implicitly is exactly the projection (so projecting changes nothing here)."""
    for H, W in [(8, 8), (9, 15), (128, 128)]:
        X = torch.randn(2, H, W // 2 + 1, 8, dtype=torch.complex128)
        a = torch.fft.irfft2(X, s=(H, W), dim=(1, 2), norm="ortho")
        b = torch.fft.irfft2(spectral.hermitian_project(X, W, dims=(1, 2)), s=(H, W), dim=(1, 2), norm="ortho")
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_hermitian_project_channels_first_and_truncated_columns():
    """FastAFNO's layout ``[B, C, H, M]`` with ``M < W//2 + 1`` kept columns: only ``k_W = 0``
    is held (``W/2 = 10`` is not), so only column 0 changes."""
    X = torch.randn(2, 3, 10, 4, dtype=torch.complex128)
    P = spectral.hermitian_project(X, 20, dims=(-2, -1))
    ref = _naive_project(X.permute(0, 2, 3, 1), 20)  # column 0 is the same for any W
    torch.testing.assert_close(P[..., 1:], X[..., 1:], rtol=0, atol=0)
    torch.testing.assert_close(P[..., :1], ref.permute(0, 3, 1, 2)[..., :1], rtol=0, atol=1e-15)
    assert spectral.self_conjugate_columns(20, 4) == [0]
    assert spectral.self_conjugate_columns(20) == [0, 10]
    assert spectral.self_conjugate_columns(15) == [0]


def test_hermitian_project_gradcheck():
    X = torch.randn(1, 5, 4, 2, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: spectral.hermitian_project(t, 6, dims=(1, 2)), (X,))


@pytest.mark.parametrize("bad,dims,exc", [
    (torch.randn(2, 4, 3), (1, 2), TypeError),                   # real, not a spectrum
    ("spectrum", (1, 2), TypeError),
    (torch.randn(2, 4, 3, dtype=torch.complex64), (1, 1), MixerConfigError),
    (torch.randn(2, 4, 3, dtype=torch.complex64), (1, 5), MixerConfigError),
    (torch.randn(2, 4, 3, dtype=torch.complex64), 1, MixerConfigError),
])
def test_hermitian_project_bad_inputs(bad, dims, exc):
    with pytest.raises(exc, match="dims|complex"):
        spectral.hermitian_project(bad, 4, dims=dims)


# --------------------------------------------------------------------------- trainer devices
def test_resolve_device_always_indexes_cuda():
    dev, backend = train.resolve_device("cuda", 0, cuda_available=True, cuda_count=1)
    assert (dev.type, dev.index, backend) == ("cuda", 0, "nccl")
    dev, backend = train.resolve_device("auto", 1, cuda_available=True, cuda_count=2)
    assert (dev.type, dev.index, backend) == ("cuda", 1, "nccl")
    dev, backend = train.resolve_device("auto", 0, cuda_available=False)
    assert (dev.type, backend) == ("cpu", "gloo")
    dev, backend = train.resolve_device("cpu", 3, cuda_available=True, cuda_count=1)
    assert (dev.type, backend) == ("cpu", "gloo")


@pytest.mark.parametrize("req,local,avail,count,match", [
    ("cuda", 0, False, 0, "no CUDA device"),
    ("cuda", 2, True, 2, "LOCAL_RANK=2"),
    ("gpu", 0, True, 1, "device must be"),
])
def test_resolve_device_errors(req, local, avail, count, match):
    with pytest.raises(train.ConfigError, match=match):
        train.resolve_device(req, local, cuda_available=avail, cuda_count=count)


TINY = dict(task="inpainting", mixer="afno", embed_dim=16, depth=1, mlp_ratio=1.0, patch_size=4, img_size=16,
            epochs=1, max_steps=2, batch_size=8, n_train=16, n_test=8, mask_patch=4, progress=False,
            mixer_kw={"num_blocks": 4})


class _Stop(Exception):
    pass


def test_fit_hands_set_device_an_indexed_device(monkeypatch):
    """On a (pretended) GPU machine, ``device='auto'`` reaches ``torch.cuda.set_device`` as
    ``cuda:0``: the bare ``'cuda'`` is what crashed there."""
    got = []

    def set_device(d):
        got.append(d)
        raise _Stop

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    for req in ("auto", "cuda"):
        with pytest.raises(_Stop):
            train.fit(dict(TINY, device=req))
    assert len(got) == 2
    for d in got:
        assert isinstance(d, torch.device) and d.type == "cuda" and d.index == 0


def test_single_process_torchrun_environment_uses_a_process_group(monkeypatch):
    """What ``torchrun --nproc_per_node=1`` sets up: one process, a gloo group on the CPU."""
    import torch.distributed as dist

    for k, v in {"TORCHELASTIC_RUN_ID": "test", "WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0",
                 "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29581"}.items():
        monkeypatch.setenv(k, v)
    res = train.fit(dict(TINY, device="cpu"))
    assert res["backend"] == "gloo" and res["world_size"] == 1 and res["ranks_in_sync"]
    assert not dist.is_initialized()           # the group fit created is destroyed again


@pytest.mark.parametrize("mixer", ["afno", "attention"])
def test_model_flops_probes_the_model_on_its_own_device(mixer):
    """``fit`` counts FLOPs after moving the model to its device, so the probe image must be
    made there: a CPU probe stopped every ``fit`` on a GPU. The meta device stands in for it."""
    kw = {"num_blocks": 4} if mixer == "afno" else {"num_heads": 2}
    model = train.build_model(train.TrainConfig(**dict(TINY, mixer=mixer, mixer_kw=kw)))
    on_cpu = train.model_flops(model)
    assert train.model_flops(model.to("meta")) == on_cpu and on_cpu["total"] > 0


def test_sum_over_ranks_reduces_on_the_device_it_is_given(monkeypatch):
    """nccl reduces CUDA tensors only: ``distributed.sum_over_ranks`` hands ``all_reduce`` a
    tensor on the device it is given (the meta device stands in for a GPU) and sums over the
    ranks; one process runs no collective."""
    import torch.distributed as dist

    from afno_lite.train.distributed import sum_over_ranks

    seen = []

    def all_reduce(t):                 # two ranks holding the same totals
        seen.append(t.device)
        t.mul_(2)

    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    sum_over_ranks([1.5, 3.0], torch.device("meta"), distributed=True)
    totals = sum_over_ranks([1.5, 3.0], torch.device("cpu"), distributed=True)
    assert seen == [torch.device("meta"), torch.device("cpu")]
    assert totals.tolist() == [3.0, 6.0] and totals.dtype == torch.float64
    assert sum_over_ranks([1.5, 3.0], torch.device("cpu"), distributed=False).tolist() == [1.5, 3.0]
    assert len(seen) == 2             # one process: no collective


def test_an_epoch_sums_its_loss_on_the_runs_device(monkeypatch):
    """``fit`` hands ``sum_over_ranks`` the run's device, not a fixed one: the run is given the
    device ``cpu:0``, which computes on the CPU but does not compare equal to ``cpu``."""
    import importlib

    fit_mod = importlib.import_module("afno_lite.train.fit")   # the module, not train.fit the function
    seen, real = [], fit_mod.sum_over_ranks

    def record(values, device, distributed):
        seen.append(device)
        return real(values, device, distributed)

    monkeypatch.setattr(fit_mod, "resolve_device", lambda requested, local_rank=0: (torch.device("cpu", 0), "gloo"))
    monkeypatch.setattr(fit_mod, "sum_over_ranks", record)
    res = train.fit(dict(TINY, device="cpu"))
    assert res["epochs_done"] == 1 and seen == [torch.device("cpu", 0)]


def test_default_device_is_indexed_when_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    d = afno_lite.default_device()
    assert d.type == "cuda" and d.index == 0


# --------------------------------------------------------------------------- the GPU check, on the CPU
def test_gpu_check_measures_run_on_the_cpu():
    """``tests/gpu_check.py`` (run on a GPU by ``tests/gpu_check.sh``) works end to end on the
    CPU: there the FFT library takes the Hermitian part, so the raw and the projected inverse
    agree with float64 to float32 rounding, and a mixer on "both devices" agrees exactly."""
    import gpu_check  # tests/ is on sys.path, as for tests/test_cuda.py

    cpu = torch.device("cpu")
    fft = gpu_check.irfft2_vs_cpu(cpu, tiny=True)
    assert fft["raw"] < 1e-6 and fft["projected"] < 1e-6
    d = gpu_check.max_rel_diff("afno_fast", 2, 9, 15, 16, cpu)
    assert d["before"] == d["after"] == 0.0 and d["max_abs_y"] > 0
    # "before" really runs every spectral mixer without its projection (whichever helper it uses)
    for name in gpu_check.MIXERS:
        used = gpu_check.max_rel_diff(name, 1, 8, 8, 16, cpu)["projection_used"]
        assert used == (name in SPECTRAL_MIXERS), name


@pytest.mark.filterwarnings("ignore:.*copying from a non-meta parameter")  # the meta stand-in
def test_resume_restores_the_cpu_random_states_on_a_gpu_run(tmp_path):
    """``resume=True`` on a GPU: the checkpoint's random-number states must reach
    ``torch.set_rng_state`` as CPU byte tensors whatever the run's device, so the checkpoint is
    read onto the CPU (loading the model and optimizer copies them to the device). Loaded onto
    the run's device, the resume stopped with "RNG state must be a torch.ByteTensor". The meta
    device stands in for the GPU."""
    from afno_lite.train.fit import Run, setup

    cfg = dict(TINY, device="cpu", out=str(tmp_path))
    train.fit(cfg)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["rng"]["torch"]
    torch.manual_seed(12345)                      # anything else
    run = Run(train.validate_config(train.as_config(dict(cfg, resume=True))), 1, 0, False,
              torch.device("meta"), tmp_path, "test")
    setup(run)
    assert run.start_epoch == 1 and len(run.history) == 1
    assert all(p.device.type == "meta" for p in run.model.parameters())
    assert torch.equal(torch.get_rng_state(), saved)


def test_afno_sparsity_moves_the_images_to_the_models_device():
    """``afno_sparsity(model, x)`` with the model ``fit`` returns on a GPU and images from the CPU
    (as ``evaluate`` takes them): the images go to the model's device. The meta device stands in
    for the GPU; the patch embedding's input is looked at, then the call is stopped (nothing on
    the meta device can be counted)."""
    model = train.build_model(train.TrainConfig(**TINY)).to("meta")
    seen = []

    def look(mod, args):
        seen.append(args[0].device)
        raise _Stop

    model.patch_embed.register_forward_pre_hook(look)
    with pytest.raises(_Stop):
        train.afno_sparsity(model, torch.zeros(2, 2, 16, 16))
    assert seen == [torch.device("meta")]


def test_spectral_energies_stay_on_the_inputs_device():
    """``spectrum_energy`` and ``radial_energy_profile`` build their Parseval weights and rings
    on the input's device (the meta device stands in for a GPU): weights built on the CPU
    stopped both on a GPU tensor."""
    x = torch.randn(2, 8, 12, 3)
    e = spectral.spectrum_energy(x)
    on_meta = spectral.spectrum_energy(x.to("meta"))
    assert on_meta.device.type == "meta" and on_meta.shape == e.shape
    radii, prof = spectral.radial_energy_profile(x)
    radii_m, prof_m = spectral.radial_energy_profile(x.to("meta"))
    assert radii_m.device.type == prof_m.device.type == "meta"
    assert radii_m.shape == radii.shape and prof_m.shape == prof.shape


@pytest.mark.parametrize("task", ["inpainting", "pde", "classification", "segmentation"])
@pytest.mark.parametrize("name", ["attention", "kernel_attention", "fno", "gfn", "afno", "afno_fast", "identity"])
def test_every_model_runs_forward_and_backward_on_another_device(name, task):
    """A trainer model of every mixer and task, moved to the meta device (standing in for a
    GPU), computes the task's loss on a training batch and its gradients there: no tensor on
    the way is made on the CPU."""
    from afno_lite.train import tasks

    kw = {"fno": {"modes": (2, 2)}, "afno": {"num_blocks": 4}, "afno_fast": {"num_blocks": 4},
          "attention": {"num_heads": 2}, "kernel_attention": {"num_heads": 2}}.get(name, {})
    size = 32 if task in ("classification", "segmentation") else 16   # relation scenes need 32
    cfg = train.TrainConfig(**dict(TINY, task=task, mixer=name, mixer_kw=kw, img_size=size))
    batch = [t[:2].to("meta") for t in tasks.make_data(cfg)["train"]]
    model = train.build_model(cfg).to("meta")
    out = tasks.predict(model, batch[0], cfg)
    tasks.loss(out.float(), batch, cfg).backward()
    assert out.device.type == "meta"
    assert all(p.grad is not None and p.grad.device.type == "meta"
               for p in model.parameters() if p.requires_grad)
