"""The explorers under their historical name: ``from afno_lite import widgets as W``.

A thin re-export of :mod:`afno_lite.explore` (compute | views | players | latency), kept so
that chapter "Sparsity in the frequency domain" and readers' notebooks keep working.
"""
from __future__ import annotations

from .explore import *  # noqa: F401,F403
from .explore import __all__  # noqa: F401
