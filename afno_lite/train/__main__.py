"""``python -m afno_lite.train`` (see :mod:`afno_lite.train`)."""
import sys

from .cli import main

sys.exit(main())
