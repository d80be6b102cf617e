"""``python -m nudge``: the command line (see :mod:`nudge.production.cli`)."""

import sys

from .production.cli import main

sys.exit(main())
