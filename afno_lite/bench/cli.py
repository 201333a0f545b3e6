"""``python -m afno_lite.bench``: the command line (sub-commands ``scaling``, ``nvidia``,
``widgets``; see :mod:`afno_lite.bench`).

Explained in chapter "Complexity and scaling" (``07_complexity_and_scaling``).
"""
from __future__ import annotations

import argparse
import statistics
import sys

import torch

from ..registry import SPECS, mixer
from ..timing import call_seconds
from .estimate import estimate_seconds
from .report import format_goals, format_table, save_results
from .runner import PASSES, PRECISIONS, grid_list, run_scaling
from .series import SERIES, physicsnemo_layer_cls

__all__ = ["run_nvidia", "run_widgets", "main"]

_DESCRIPTION = "``python -m afno_lite.bench``: how each token mixer's cost grows with the number of tokens."


def run_nvidia(grids=((32, 32), (64, 64), (128, 128)), channels: int = 256, batches=(1, 8), repeats: int = 7,
               device=None, out=print) -> dict:
    """Fast AFNO against NVIDIA's ``AFNO2DLayer`` (when importable) and the NVIDIA-style
    stand-in, same weights, fwd+bwd, interleaved; prints output differences and ratios."""
    from ..compat import load_nvidia_afno_layer, nvidia_afno2d_forward, nvidia_afno_layer_state

    device = torch.device(device) if device is not None else torch.device("cpu")
    cls = physicsnemo_layer_cls()
    if cls is None:
        out("physicsnemo is not importable (NVIDIA's AFNO2DLayer comes with `pip install nvidia-physicsnemo`): "
            "skipping the comparison with NVIDIA's package.")
    out("Timing the NVIDIA-style stand-in afno_lite.compat.nvidia_afno2d_forward instead/as well: their einsum "
        "code path re-implemented line by line in afno_lite (not NVIDIA's package).")
    report = {"physicsnemo": cls is not None, "rows": []}
    for B in batches:
        for H, W in grids:
            torch.manual_seed(0)
            fast = mixer("afno_fast", channels, num_blocks=8, check_finite=False).to(device)
            with torch.no_grad():  # weights large enough for ReLU and softshrink to matter
                for p in fast.parameters():
                    p.normal_(0, 0.2)
            fns = {"afno_fast": fast,
                   "nvidia_style": lambda x: nvidia_afno2d_forward(x, fast.w1, fast.b1, fast.w2, fast.b2, 8)}
            if cls is not None:
                layer = cls(hidden_size=channels, num_blocks=8, sparsity_threshold=0.01,
                            hard_thresholding_fraction=1, hidden_size_factor=1).to(device)
                layer.load_state_dict(nvidia_afno_layer_state(fast), strict=False)   # afno_lite -> NVIDIA
                back = load_nvidia_afno_layer(mixer("afno_fast", channels, num_blocks=8).to(device),
                                              layer.state_dict())
                if any(not torch.equal(getattr(back, k), getattr(fast, k)) for k in ("w1", "b1", "w2", "b2")):
                    raise RuntimeError("weights did not survive the round trip through AFNO2DLayer")
                fns["physicsnemo"] = layer
            x = torch.randn(B, H, W, channels, device=device, requires_grad=True)
            g = torch.randn_like(x)
            with torch.no_grad():
                y = fast(x)
                diffs = {k: float((f(x) - y).abs().max()) for k, f in fns.items() if f is not fast}
            times = {k: [] for k in fns}
            for _ in range(repeats + 1):
                for k, f in fns.items():
                    for p in fast.parameters():
                        p.grad = None
                    x.grad = None
                    times[k].append(call_seconds(lambda f=f: f(x).backward(g)))
            med = {k: statistics.median(v[1:]) * 1e3 for k, v in times.items()}
            row = dict(B=B, H=H, W=W, C=channels, median_ms=med, max_abs_diff=diffs,
                       ratio_vs_nvidia_style=med["afno_fast"] / med["nvidia_style"])
            if "physicsnemo" in med:
                row["ratio_vs_physicsnemo"] = med["afno_fast"] / med["physicsnemo"]
            report["rows"].append(row)
            txt = ", ".join(f"{k} {v:.2f} ms" for k, v in med.items())
            rat = f"fast/nvidia-style {row['ratio_vs_nvidia_style']:.2f}"
            if "ratio_vs_physicsnemo" in row:
                rat += f", fast/physicsnemo {row['ratio_vs_physicsnemo']:.2f}"
            out(f"B={B} {H}x{W} C={channels} fwd+bwd: {txt}; {rat}; max |diff| {diffs}")
    return report


def run_widgets(n: int = 10, size: int = 64, goal_ms: float = 150.0, out=print) -> dict:
    """Median slider-to-figure latency of each explorer against ``goal_ms``."""
    from ..explore import measure_latency

    lat = measure_latency(n=n, size=size)
    for name, d in lat.items():
        ok = d["median_ms"] <= goal_ms
        out(f"{name:>14}: median {d['median_ms']:7.1f} ms, p90 {d['p90_ms']:7.1f} ms over n={d['n']} "
            f"({'meets' if ok else 'misses'} the {goal_ms:.0f} ms goal)")
    return lat


# --------------------------------------------------------------------------- command line
def _at_least_one(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {n}")
    return n


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m afno_lite.bench", description=_DESCRIPTION)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("scaling", help="time every mixer against the number of tokens; JSON + PNG + table")
    size = s.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="4 grids, B=1 (B=8 for the goals), 3 sessions: about 2 minutes on 2 idle cores")
    size.add_argument("--tiny", action="store_true", help="2 grids, C=32: a few seconds (tests, chapter)")
    s.add_argument("--gpu", action="store_true",
                   help="the GPU preset: C=256 and 768, B=1 and 8, grids 32x32..256x256, fp32 and bf16 autocast, "
                        "compiled paths; device cuda by default; with --tiny a dry run in seconds (any device)")
    s.add_argument("--precisions", nargs="+", choices=PRECISIONS, help="fp32 and/or bf16 (autocast)")
    s.add_argument("--deadline", type=float, metavar="S", help="start no configuration after S seconds")
    s.add_argument("--name", help="output file stem (default bench_scaling, or bench_scaling_gpu on CUDA)")
    s.add_argument("--sessions", type=_at_least_one, metavar="N",
                   help="independent repeats of the whole run (default 3; 1 with --tiny)")
    s.add_argument("--out", default="bench_results", help="output folder (default: ./bench_results)")
    s.add_argument("--grids", nargs="+", metavar="HxW", help="override the grids, e.g. 16x16 32x64")
    s.add_argument("--channels", nargs="+", type=int, metavar="C", help="override the channel counts")
    s.add_argument("--batches", nargs="+", type=int, metavar="B", help="override the batch sizes")
    s.add_argument("--passes", "--modes", dest="passes", nargs="+", choices=PASSES,
                   help="fwd and/or fwd+bwd (--modes is the former name)")
    s.add_argument("--series", nargs="+", choices=list(SERIES) + sorted(set(SPECS) - set(SERIES)), metavar="NAME",
                   help=f"subset of series: {', '.join(SERIES)}")
    s.add_argument("--time-budget", type=float, metavar="S", help="skip series predicted slower (s per call)")
    s.add_argument("--memory-budget", type=float, metavar="MB", help="skip series predicted larger (MB)")
    s.add_argument("--threads", type=int,
                   help="torch.set_num_threads (default: torch's choice); use 1 on a machine busy with other work")
    s.add_argument("--device", default=None, help="cpu or cuda (default: cpu)")
    s.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    s.add_argument("--no-memory", action="store_true", help="skip the peak-memory call")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    n = sub.add_parser("nvidia", help="fast AFNO vs NVIDIA's AFNO2DLayer (if importable) and the NVIDIA-style code")
    n.add_argument("--repeats", type=int, default=7)
    n.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    n.add_argument("--channels", type=int, default=256)
    n.add_argument("--grids", nargs="+", default=["32x32", "64x64", "128x128"], metavar="HxW")
    n.add_argument("--threads", type=int)
    w = sub.add_parser("widgets", help="slider-to-figure latency of the explorers vs the 150 ms goal")
    w.add_argument("--n", type=int, default=10, help="slider changes per explorer")
    w.add_argument("--size", type=int, default=64)
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    cmdline = "python -m afno_lite.bench " + " ".join(sys.argv[1:] if argv is None else list(argv))
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    if args.command == "widgets":
        run_widgets(n=args.n, size=args.size)
        return 0
    if args.command == "nvidia":
        run_nvidia(grids=grid_list(args.grids), channels=args.channels, batches=args.batches,
                   repeats=args.repeats)
        return 0
    if args.gpu:
        if args.quick:
            _parser().error("--gpu takes --tiny or nothing, not --quick")
        preset = "gpu_tiny" if args.tiny else "gpu"
        device = args.device or "cuda"
        if device.startswith("cuda") and not torch.cuda.is_available():
            _parser().error("--gpu: no CUDA device here; use --gpu --device cpu --tiny for a dry run")
        est = estimate_seconds(preset)
        print(f"GPU preset {preset!r} on {device}: estimated about {est['seconds']} s on one H200 (of which "
              f"compilation {est['compile_seconds']} s; a model from earlier H200 measurements, not a measurement); "
              f"no configuration starts after {est['deadline_s']} s", flush=True)
    else:
        preset = "tiny" if args.tiny else "quick" if args.quick else "full"
        device = args.device
    result = run_scaling(preset, grids=args.grids, channels=args.channels, batches=args.batches,
                         passes=args.passes, series=args.series, device=device, precisions=args.precisions,
                         time_budget=args.time_budget, memory_budget=args.memory_budget, deadline_s=args.deadline,
                         sessions=args.sessions, measure_memory=not args.no_memory, progress=not args.no_progress,
                         command=cmdline)
    paths = save_results(result, args.out, plot=not args.no_plot, name=args.name)
    print(format_table(result))
    unstable = [r for r in result["results"] if r.get("unstable")]
    if unstable:
        print(f"\n! unstable: p90/p10 > 2 in some session even after a re-measure ({len(unstable)} rows)")
    if result["skipped"]:
        print("\nSkipped:")
        for s in result["skipped"]:
            print(f"  {s['mode']:>7} {s.get('precision', 'fp32')} C={s['C']:<3} B={s['B']} {s['H']}x{s['W']:<4} "
                  f"{s['series']:>18}: {s['reason']}")
    if result.get("deadline"):
        d = result["deadline"]
        print(f"\n! deadline {d['deadline_s']:g} s reached in session {d['stopped_in_session']}/{d['sessions']}: "
              f"{d['configs_left_in_session']} of {d['configs_per_session']} configurations not run in that session")
    print()
    print(format_goals(result))
    load = result["machine"].get("load_average_start"), result["machine"].get("load_average_end")
    dev = result["device"] + (f" ({result['device_name']}, CUDA {result['cuda']})" if result["device"] != "cpu" else "")
    print(f"\n{result['elapsed_s']:.0f} s, {result['settings']['sessions']} sessions, torch {result['torch']}, "
          f"device {dev}, {result['threads']} threads, "
          f"load average start/end {load[0]} / {load[1]}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0

