"""``python -m rfdnn_bridge compare …`` — the same as the ``rfdnn`` command."""

import sys

from .cli import main

sys.exit(main())
