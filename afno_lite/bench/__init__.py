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
``scaling [--quick | --tiny] [--sessions N] [--out DIR]``
    Times the forward pass and the forward + backward pass (the two :data:`PASSES`) of every
    series (see :data:`SERIES`; ``--series`` also takes any registered mixer) on grids
    ``8x8 ... 128x128`` (``N = 64 ... 16,384`` tokens), ``C = 64, 256`` channels, batch
    ``B = 1, 8``, in ``N`` independent sessions (default 3). Writes ``DIR/bench_scaling.json``
    and ``DIR/bench_scaling.png`` (log-log time against ``N`` with fitted slopes), prints a
    table and the goals with their ranges over the sessions (:func:`goal_ratios`,
    :func:`format_goals`). The shipped full run (``notebooks/results/bench_scaling.json``,
    three sessions) took 36 minutes (2,187 s) on 2 threads of an AMD EPYC, torch 2.13.0+cpu.
    ``--quick`` (four grids up to ``64x64``, ``B = 1``, plus ``B = 8`` at
    ``N = 1024, 4096`` for the fast AFNO, the NVIDIA layer and both floors, which the goals
    need; three sessions) takes about 2 minutes on 2 idle cores (112 s measured on the AMD EPYC
    above, about 37 s per session);
    ``--tiny`` (one session) is for tests and the chapter.
``scaling --gpu [--tiny] [--device cuda] [--name NAME] [--deadline S]``
    The GPU preset (``"gpu"``): forward + backward, ``C = 256, 768``, ``B = 1, 8``, grids
    ``32x32 ... 256x256`` (``N = 1,024 ... 65,536``), both **precisions** (``fp32``, and ``bf16``:
    the forward pass under ``torch.autocast(dtype=torch.bfloat16)``; every row records its
    ``precision``, rows without one are fp32), three sessions, on ``--device`` (default
    ``cuda``). Series: the fast AFNO eager and through :func:`afno_lite.fast.compiled`
    (``afno_fast_compiled``: ``torch.compile`` mode ``reduce-overhead``, CUDA graphs;
    ``afno_fast_graphs``: CUDA graphs of the eager kernels, ``backend="cudagraphs"``; both only
    at ``C = 256, B = 1, N <= 16,384``, where the plateau goal needs them: every grid and
    precision compiles anew; each is checked against its eager layer, output and gradients,
    and one that differs is listed in ``skipped`` with the gap, not timed: see
    :func:`~afno_lite.bench.series.compiled_mismatch`), the NVIDIA layer (physicsnemo
    when importable, else the stand-in, labelled), 8-head attention
    (``scaled_dot_product_attention``: flash attention under bf16 where available) and both FFT
    floors. It prints an estimate of its wall time
    (:func:`~afno_lite.bench.estimate.estimate_seconds`: about 4-5 minutes for one H200, from a
    cost model, not a measurement) and starts no configuration after ``deadline_s`` (270 s;
    the JSON's ``deadline`` says where it stopped). Writes ``bench_scaling_gpu.json`` and ``.png``
    (the name is automatic on CUDA; ``--name`` sets it) with the device name and the torch and
    CUDA versions (``device_name``, ``torch``, ``cuda``, ``machine``). ``--gpu --device cpu
    --tiny`` is a dry run of the same code in seconds (tiny shapes; the compiled series only
    trace, with ``backend="aot_eager"``). On the GPU machine, ``bash tests/gpu_bench.sh`` runs it
    into ``$OUT`` (see that script's header).
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
* **Clock and threads**: every call is timed with ``torch.utils.benchmark``'s ``timer``
  (``time.perf_counter``, with the accelerator synchronised before and after a call on CUDA);
  torch runs on an explicit number of threads (``torch.get_num_threads()``, set with
  ``--threads``), recorded in the JSON (``threads``, ``machine.threads``, ``method.timing``).
* **Sessions**: the whole run is repeated ``--sessions`` times (default 3; ``sessions=`` in
  :func:`run_scaling`). Each session is a complete pass over every configuration with freshly
  built modules and fresh inputs, so sessions are separated in time by a whole pass and a
  disturbance of the machine rarely hits one configuration in every session. Skipping decisions
  (budgets) are taken in the first session and reused; peak memory is measured in the first.
  Each row keeps ``median_ms`` (now the median of the per-session medians), ``p10_ms``,
  ``p90_ms`` and ``min_ms`` (over all calls of all sessions), and adds ``sessions_ms`` (the
  per-session medians, in session order), ``spread`` (``p90 / p10`` over all its calls),
  ``session_spreads``, ``remeasured`` (sessions in which its configuration was timed again) and
  ``unstable``.
* **Spread rule**: within a session, when some series of a configuration has ``p90 / p10 > 2``
  (:data:`~afno_lite.bench.runner.SPREAD_LIMIT`) over its calls, the configuration is timed once
  more (one more interleaved block of every series; it replaces the first). A series still above
  2 gets ``unstable: true``; tables and goals mark it with ``!``.
* **Ratios with their spread**: a ratio between two series is computed per session (the ratio of
  their session medians, timed interleaved in that session) and reported as
  ``{"median", "min", "max", "n"}`` over the sessions; a goal is met on the median ratio, and
  ``met_every_session`` says whether every session met it. Results written before sessions
  existed count as one session (``n = 1``).
* **Interleaved**: for one configuration (pass, ``C``, ``B``, grid) every series is built,
  warmed up twice, then timed round-robin ``A B C ... A B C ...``; the median over the
  repeats is reported (also the 10 % and 90 % quantiles). Load from other processes then
  hits every series alike.
* **Fair inputs**: all mixers take channels-last tokens ``[B, H, W, C]``, are built with
  ``check_finite=False`` (no input validation pass), and in ``fwd+bwd`` the input requires a
  gradient and every gradient is reset to ``None`` before a call (as ``zero_grad`` does).
* **FFT floor**: ``irfft2(rfft2(x))`` over ``(H, W)`` of the same channels-last tokens
  (``fft_floor``): the least a spectral mixer must do. ``fft_floor_cf`` does the same
  transforms on a contiguous channels-first copy made outside the timed region. The goals
  compare with the **best floor**, the faster of the two layouts in each session, and report
  the ratios to both layouts. In the shipped CPU run the channels-first floor was the faster
  one in every session of every goal configuration (``C = 256``, ``N >= 4096``, fwd+bwd),
  where the channels-last floor took 1.7-2.4x as long (medians; 1.6-2.7x in single sessions).
* **Growth**: :func:`slopes` fits the raw log-log exponent and, over the same large-``N`` range,
  ``t = a + b N log2 N`` by least squares in closed form (:func:`fit_nlogn`: ``a_ms`` the fixed
  cost per call, ``b_ns`` the nanoseconds per unit of ``N log2 N``, and the largest relative
  residual). A fixed cost flattens the log-log exponent below 1; it does not bend ``b``.
* **Peak memory**: tracemalloc does not see torch's allocations. On CUDA we report
  ``torch.cuda.max_memory_allocated`` minus the memory in use before the call (not for the
  compiled series: a CUDA graph's memory is its pool, allocated when it is recorded). On CPU
  (torch keeps no allocator statistics there) one extra call runs under a
  ``TorchDispatchMode`` that records the storage of every operator's output and drops it
  when the storage is freed: the peak of those live bytes is the tensor memory of the call
  (activations, saved tensors, temporaries, gradients) -- inputs and parameters that
  existed before the call and scratch space inside kernels (FFT plans, BLAS buffers) are
  not counted.
* **Page faults**: one more untimed call per row counts the process's minor page faults
  (``minor_faults``): memory the call took fresh from the operating system. glibc serves an
  allocation above its mmap threshold (128 kB at first, raised automatically to at most
  32 MB) with a fresh mapping that it returns on free, so a call whose tensors exceed 32 MB
  pays one fault per 4 kB page it writes, on every call; what a fault costs depends on the
  machine (more in a virtual machine), one reason why large CPU rows differ between machines.
* **Provenance**: ``code`` records the git commit, whether ``afno_lite/`` had uncommitted
  changes and the hash of its source (:func:`afno_lite.train.provenance.code_hash`): which
  code was timed.
* **Threads on a busy machine**: with several threads every parallel region waits for its
  slowest thread, and a thread that loses its core to another program stalls the whole call;
  on a machine shared with other work, small calls with 2 threads can then take 10-1000x as
  long as on one (measured on a shared 2-core machine, load average 2-4, torch 2.13.0+cpu:
  the ``--tiny`` medians were 0.04-4.3 ms per call on one thread, 34-850 ms on two, 28-1,200x
  per row). Pass ``--threads 1`` there (the JSON records the thread count and the load
  average).
* **Budgets**: before a configuration runs, each series' time per call is predicted from
  its previous grid (``t * (N/N_prev)^p``, ``p = max(g, 1.2)`` with ``g`` the ``growth`` of
  the mixer's record: 2 for attention); its memory is checked twice, as its parameters (and
  their gradients in fwd+bwd) at 4 bytes each from the formula of ``afno_lite.complexity``,
  and as the previous peak scaled with ``N^g``; series over ``--time-budget`` seconds or
  ``--memory-budget`` MB are skipped and listed with the reason.

Goals (CPU, :func:`goal_ratios`; C = 256, forward + backward)
-------------------------------------------------------------
* ``vs_nvidia``: fast AFNO / the NVIDIA layer <= 0.5 at every ``N >= 1024``, ``B = 1`` and
  ``B = 8``, on the grids where NVIDIA's layer keeps every mode (grids with ``W//2 > H//2``,
  such as ``32x64``, are left out and listed: it computes another function there). The NVIDIA
  layer is physicsnemo's ``AFNO2DLayer`` when it is importable, else the NVIDIA-style
  stand-in, labelled as such.
* ``vs_fft_floor``: fast AFNO / the best floor <= 2.0 at every ``N >= 4096`` (``B = 1``, and
  ``B = 8`` where measured).
* ``growth_exponent`` and ``crossover_vs_attention_h8``: information, with the thresholds of an
  earlier goal (exponent <= 1.15, crossover ``N <= 128``).

Goals (GPU, :func:`~afno_lite.bench.stats.gpu_goal_ratios`; only rows measured on CUDA)
----------------------------------------------------------------------------------------
* ``gpu_vs_nvidia``: fast AFNO / the NVIDIA layer <= 0.5 at every ``N >= 4096``, fp32 and bf16,
  ``C = 256, 768``, ``B = 1, 8``.
* ``gpu_plateau``: the compiled fast AFNO at ``B = 1``, ``C = 256``, every ``N <= 16,384``:
  median <= 1 ms per forward + backward call, fp32 and bf16 (the eager times printed beside).
* ``gpu_vs_floor_cf``: fast AFNO / the channels-first FFT floor <= 3 at ``N = 65,536``, in every
  precision, ``C`` and ``B`` (both layouts and the faster one reported).
* ``gpu_crossover_vs_attention_h8``: information, per precision.

The CPU goals are computed from the rows not measured on CUDA, the GPU goals from the CUDA rows.
A goal whose configurations the run did not measure says "not measured" (``met: None``).
"""
from __future__ import annotations

from .cli import main, run_nvidia, run_widgets
from .estimate import estimate_seconds
from .report import default_name, format_goals, format_table, load_results, plot_scaling, save_results
from .runner import GPU_SERIES, PRESETS, SPREAD_LIMIT, _predict, grid_list, run_scaling
from .series import COMPILED, PASSES, PRECISIONS, SCHEMA, SERIES, Series, peak_memory_bytes, series_for
from .stats import (
    best_floor_ratios,
    crossover,
    fit_nlogn,
    fit_slope,
    goal_ratios,
    gpu_goal_ratios,
    ratio_summary,
    session_ratios,
    slopes,
)

__all__ = ["SERIES", "Series", "PASSES", "PRESETS", "SCHEMA", "SPREAD_LIMIT", "run_scaling", "save_results",
           "load_results", "plot_scaling", "fit_slope", "fit_nlogn", "slopes", "crossover", "goal_ratios",
           "session_ratios", "ratio_summary", "best_floor_ratios", "format_table", "format_goals",
           "peak_memory_bytes", "series_for", "grid_list", "run_nvidia", "run_widgets", "main", "_predict",
           "PRECISIONS", "COMPILED", "GPU_SERIES", "gpu_goal_ratios", "estimate_seconds", "default_name"]
