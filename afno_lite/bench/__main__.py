"""``python -m afno_lite.bench`` (see :mod:`afno_lite.bench`)."""
import sys

from .cli import main

sys.exit(main())
