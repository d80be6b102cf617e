"""``python -m nudge``: the command line (see :mod:`nudge.cli`)."""

import sys

from .cli import main

sys.exit(main())
