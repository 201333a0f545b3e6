"""``python -m afno_lite.bench``: how each token mixer's cost grows with the number of tokens.

The package, one module per concern: :mod:`~afno_lite.bench.series` (what is timed, peak
memory), :mod:`~afno_lite.bench.runner` (the interleaved runs), :mod:`~afno_lite.bench.stats`
(slopes, crossover, goals), :mod:`~afno_lite.bench.report` (JSON, plot, tables),
:mod:`~afno_lite.bench.cli` (the command line).

Explained in chapter "Complexity and scaling" (``07_complexity_and_scaling``), which runs
a small version of the benchmark and plots the shipped full run
(``notebooks/results/bench_scaling.json``).

Sub-commands
------------
``scaling [--quick | --tiny] [--out DIR]``
    Times the forward pass and the forward + backward pass (the two :data:`PASSES`) of every
    series (see :data:`SERIES`; ``--series`` also takes any registered mixer) on grids
    ``8x8 ... 128x128`` (``N = 64 ... 16,384`` tokens), ``C = 64, 256`` channels, batch
    ``B = 1, 8``. Writes ``DIR/bench_scaling.json`` and
    ``DIR/bench_scaling.png`` (log-log time against ``N`` with fitted slopes), prints a
    table and the goal ratios (:func:`goal_ratios`). ``--quick`` (four grids, ``B = 1``)
    runs in under a minute on 2 idle cores; ``--tiny`` is for tests and the chapter.
``nvidia``
    Compares :class:`~afno_lite.fast.FastAFNO` with NVIDIA's ``AFNO2DLayer`` when
    ``physicsnemo`` is importable (weights copied with :mod:`afno_lite.compat`, outputs
    compared, time ratio printed). Always also times the NVIDIA-style stand-in
    :func:`afno_lite.compat.nvidia_afno2d_forward` (their einsum code path re-implemented
    line by line -- not NVIDIA's package).
``widgets``
    Slider-to-figure latency of the explorers (:func:`afno_lite.widgets.measure_latency`)
    against the 150 ms goal.

Method
------
* **Interleaved**: for one configuration (pass, ``C``, ``B``, grid) every series is built,
  warmed up twice, then timed round-robin ``A B C ... A B C ...``; the median over the
  repeats is reported (also the 10 % and 90 % quantiles). Load from other processes then
  hits every series alike.
* **Fair inputs**: all mixers take channels-last tokens ``[B, H, W, C]``, are built with
  ``check_finite=False`` (no input validation pass), and in ``fwd+bwd`` the input requires a
  gradient and every gradient is reset to ``None`` before a call (as ``zero_grad`` does).
* **FFT floor**: ``irfft2(rfft2(x))`` over ``(H, W)`` of the same channels-last tokens
  (``fft_floor``): the least a spectral mixer must do. ``fft_floor_cf`` does the same
  transforms on a contiguous channels-first copy made outside the timed region.
* **Peak memory**: tracemalloc does not see torch's allocations. On CUDA we report
  ``torch.cuda.max_memory_allocated`` minus the memory in use before the call. On CPU
  (torch keeps no allocator statistics there) one extra call runs under a
  ``TorchDispatchMode`` that records the storage of every operator's output and drops it
  when the storage is freed: the peak of those live bytes is the tensor memory of the call
  (activations, saved tensors, temporaries, gradients) -- inputs and parameters that
  existed before the call and scratch space inside kernels (FFT plans, BLAS buffers) are
  not counted.
* **Threads on a busy machine**: with several threads every parallel region waits for its
  slowest thread, and a thread that loses its core to another program stalls the whole call;
  on a machine shared with other work, timings with 2 threads then scatter by 10-100x. Pass
  ``--threads 1`` there (the JSON records the thread count and the load average).
* **Budgets**: before a configuration runs, each series' time per call is predicted from
  its previous grid (``t * (N/N_prev)^p``, ``p = max(g, 1.2)`` with ``g`` the ``growth`` of
  the mixer's record: 2 for attention) and its memory from its parameter count
  (``afno_lite.complexity``) plus the previous peak scaled with ``N^g``; series over
  ``--time-budget`` seconds or ``--memory-budget`` MB are skipped and listed with the reason.
"""
from __future__ import annotations

from .cli import main, run_nvidia, run_widgets
from .report import format_goals, format_table, load_results, plot_scaling, save_results
from .runner import PRESETS, _predict, grid_list, run_scaling
from .series import PASSES, SCHEMA, SERIES, Series, peak_memory_bytes, series_for
from .stats import crossover, fit_slope, goal_ratios, slopes

__all__ = ["SERIES", "Series", "PASSES", "PRESETS", "SCHEMA", "run_scaling", "save_results", "load_results",
           "plot_scaling", "fit_slope", "slopes", "crossover", "goal_ratios", "format_table", "format_goals",
           "peak_memory_bytes", "series_for", "grid_list", "run_nvidia", "run_widgets", "main", "_predict"]
