"""Explorers for chapter "Sparsity in the frequency domain" (spectrum and kept fraction,
soft-thresholding sparsity, AFNO blocks), one module per concern:

* :mod:`~afno_lite.explore.compute` -- pure compute functions returning frozen dataclasses
  (``compute_spectrum``, ``compute_sparsity``, ``compute_afno_block``); no ipywidgets import;
* :mod:`~afno_lite.explore.views` -- thin ipywidgets views (``SpectrumExplorer``,
  ``SparsityExplorer``, ``AFNOBlockExplorer``) that call them on every change;
* :mod:`~afno_lite.explore.players` -- kernel-free ``FuncAnimation`` players;
* :mod:`~afno_lite.explore.latency` -- slider-to-figure latency of the views.

``afno_lite.widgets`` re-exports this package's public names (the chapters import it as ``W``).
"""
from __future__ import annotations

from .compute import (
    NORMS,
    SOURCES,
    THRESHOLDINGS,
    AFNOBlockState,
    SparsityState,
    SpectrumState,
    compute_afno_block,
    compute_sparsity,
    compute_spectrum,
    divisors,
    feature_map,
    keep_fraction_options,
    lambda_grid,
    lambda_label,
    lift_to_channels,
    load_source,
    parameter_counts,
    sparsity_curve,
)
from .latency import measure_latency
from .players import keep_fraction_animation_html, sparsity_animation_html
from .views import CONTROL_STYLE, WIDE_SLIDER, AFNOBlockExplorer, SparsityExplorer, SpectrumExplorer

__all__ = [
    "SOURCES", "load_source", "lift_to_channels", "feature_map",
    "SpectrumState", "compute_spectrum", "keep_fraction_options",
    "THRESHOLDINGS", "NORMS", "SparsityState", "compute_sparsity", "lambda_grid", "lambda_label", "sparsity_curve",
    "AFNOBlockState", "compute_afno_block", "divisors", "parameter_counts",
    "SpectrumExplorer", "SparsityExplorer", "AFNOBlockExplorer", "CONTROL_STYLE", "WIDE_SLIDER",
    "sparsity_animation_html", "keep_fraction_animation_html", "measure_latency",
]
