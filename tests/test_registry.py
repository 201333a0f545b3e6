"""One record per mixer: adding a mixer is one class plus one record, and nothing outside the
registry branches on a mixer's name."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import afno_lite
from afno_lite import MixerConfigError, MixerInputError, bench, complexity, registry
from afno_lite.models import TokenMixerNet

PKG = Path(afno_lite.__file__).resolve().parent


class ToyMixer(afno_lite.TokenMixer):
    """Average of the four neighbours on the torus, then one channel-mixing matrix."""

    def __init__(self, dim: int, scale: float = 1.0, check_finite: bool = True):
        super().__init__(dim, check_finite)
        self.scale = scale
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        avg = sum(torch.roll(x, s, d) for s in (1, -1) for d in (1, 2)) / 4
        return self.scale * self.proj(avg)


TOY = registry.MixerSpec(
    "toy", ToyMixer, "toy neighbour average",
    params=lambda m: m.dim * m.dim,
    flops=lambda m, H, W, B: {"matmul": 2 * B * H * W * m.dim * m.dim, "matmul_real": 2 * B * H * W * m.dim * m.dim,
                              "elementwise": 4 * B * H * W * m.dim},
)


@pytest.fixture
def toy():
    registry.register(TOY)
    try:
        yield TOY
    finally:
        registry.unregister("toy")
    assert "toy" not in afno_lite.MIXERS


def test_a_new_mixer_is_one_class_and_one_record(toy):
    assert afno_lite.MIXERS["toy"] is ToyMixer
    # the model
    torch.manual_seed(0)
    net = TokenMixerNet("toy", img_size=16, patch_size=4, in_chans=1, embed_dim=8, depth=2)
    y = net(torch.randn(2, 1, 16, 16))
    y.square().mean().backward()
    assert y.shape == (2, 1, 16, 16) and all(b.mixer.proj.weight.grad is not None for b in net.blocks)
    # the complexity formulas, against the real module and FlopCounterMode
    m = afno_lite.mixer("toy", 8, scale=0.5)
    assert complexity.parameter_count("toy", 8) == sum(p.numel() for p in m.parameters()) == 64
    f = complexity.flops("toy", 8, (6, 5), batch=3)
    assert f["matmul"] == complexity.measure_flops(m, torch.randn(3, 6, 5, 8))
    assert f["fft"] == 0 and f["total"] == f["matmul_real"] + f["elementwise"]
    # the benchmark's tiny mode
    res = bench.run_scaling("tiny", series=["toy", "afno"], passes=["fwd"], time_budget=1000, progress=False)
    got = {(r["series"], r["N"]) for r in res["results"]}
    assert got == {(s, h * w) for s in ("toy", "afno") for h, w in bench.PRESETS["tiny"]["grids"]}
    assert res["series"]["toy"]["label"] == "toy neighbour average"
    assert "toy" in bench.format_table(res)


def test_registry_errors():
    with pytest.raises(MixerConfigError, match="already registered"):
        registry.register(registry.SPECS["afno"])
    with pytest.raises(MixerConfigError, match="unknown mixer name 'nope'"):
        registry.unregister("nope")
    with pytest.raises(MixerConfigError, match="MixerSpec"):
        registry.register("afno")
    with pytest.raises(MixerConfigError, match="nn.Module class"):
        registry.register(registry.MixerSpec("x", int, "x", params=len, flops=len))


def test_every_registered_mixer_has_a_record_with_formulas():
    mixers = {n for n, r in registry.SPECS.items() if r.mixes_tokens}
    assert set(afno_lite.MIXERS) == mixers >= {"attention", "kernel_attention", "fno", "gfn", "afno", "afno_fast"}
    assert set(registry.SPECS) - mixers == {"identity"}           # the one baseline, not a mixer
    for name, rec in registry.SPECS.items():
        assert rec.name == name
        assert (afno_lite.MIXERS[name] is rec.cls) if rec.mixes_tokens else (name not in afno_lite.MIXERS)
        n = complexity.parameter_count(name, 16, **rec.grid_kw(8, 8))
        # a token mixer has parameters; the baseline (``"identity"``) has none
        assert n == 0 and sum(p.numel() for p in rec.cls(16).parameters()) == 0 if not rec.mixes_tokens else n > 0


def test_afno_fast_is_registered_with_the_others_not_by_an_import_side_effect():
    src = (PKG / "fast.py").read_text()
    assert "MIXERS" not in src and "register(" not in src
    assert registry.SPECS["afno_fast"].cls is afno_lite.fast.FastAFNO


def _mixer_names() -> set[str]:
    return set(registry.SPECS)


# a string literal equal to a mixer name compared with ==/!=, tested with in (...)/[...] or startswith
_COMPARE = [
    r"""[=!]=\s*["']({names})["']""",
    r"""["']({names})["']\s*[=!]=""",
    r"""\bin\s*[\(\[\{][^\)\]\}]*["']({names})["']""",
    r"""\.startswith\(\s*["']({names})""",
]


def _code(line: str) -> str:
    """The code of a line without its comment, ``for x in (...)`` loops masked (not comparisons)."""
    return re.sub(r"\bfor\s+[\w, ()]+?\s+in\b", "for _ IN", line.split("#", 1)[0])


def test_no_string_comparison_against_mixer_names_outside_the_registry():
    names = "|".join(sorted(map(re.escape, _mixer_names()), key=len, reverse=True))
    patterns = [re.compile(p.replace("{names}", names)) for p in _COMPARE]
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        if path.name == "registry.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if any(p.search(_code(line)) for p in patterns):
                offenders.append(f"{path.relative_to(PKG)}:{i}: {line.strip()}")
    assert not offenders, "branching on mixer names (use the record in afno_lite.registry):\n" + "\n".join(offenders)


def test_the_name_check_catches_a_comparison():
    names = "|".join(sorted(_mixer_names()))
    patterns = [re.compile(p.replace("{names}", names)) for p in _COMPARE]
    for bad in ('if name == "fno":', "if 'afno' != name:", 'if m in ("attention", "gfn"):',
                'name.startswith("afno")'):
        assert any(p.search(_code(bad)) for p in patterns), bad
    for fine in ('kw = {"fno": 1}', 'for m in ("fno", "afno"):', 'x = [f(m) for m in ("gfn", "fno")]'):
        assert not any(p.search(_code(fine)) for p in patterns), fine


def test_the_no_mixing_baseline_is_the_identity_registered_like_the_others():
    """Registered with the records at import (no side effect of importing the trainer), and
    kept out of the list of token mixers."""
    m = afno_lite.mixer("identity", 8)
    assert "identity" not in afno_lite.MIXERS and "identity" in registry.SPECS
    x = torch.randn(2, 3, 5, 8)
    assert torch.equal(m(x), x) and registry.spec("identity").params(m) == 0
    assert complexity.flops("identity", 8, (3, 5))["total"] == 0
    with pytest.raises(MixerInputError, match="x"):
        m(torch.randn(2, 3, 5, 7))


def test_register_rejects_a_record_that_would_break_the_registry():
    """A non-string name used to be accepted; afterwards every unknown-name error (which lists
    ``sorted(SPECS)``) and ``unregister`` itself died with "'<' not supported between 'int' and
    'str'", so the bad record could not even be removed."""
    params, flops = TOY.params, TOY.flops
    bad = [
        (registry.MixerSpec(3, ToyMixer, "toy", params, flops), r"MixerSpec.name must be a non-empty string, got 3$"),
        (registry.MixerSpec("", ToyMixer, "toy", params, flops), r"MixerSpec.name must be a non-empty string"),
        (registry.MixerSpec("toy2", ToyMixer, "toy", None, flops), r"MixerSpec.params must be callable, got None"),
        (registry.MixerSpec("toy2", ToyMixer, "toy", TOY.params, 0), r"MixerSpec.flops must be callable, got 0"),
    ]
    try:
        for record, match in bad:
            with pytest.raises(MixerConfigError, match=match):
                registry.register(record)
    finally:  # never leave a bad record behind for the other tests
        for name in [n for n in registry.SPECS if n in (3, "", "toy2")]:
            registry.SPECS.pop(name)
    assert set(registry.SPECS) >= {"afno", "identity"} and all(isinstance(n, str) for n in registry.SPECS)
    with pytest.raises(MixerConfigError, match="unknown mixer name 3; expected one of"):
        afno_lite.mixer(3, 8)
