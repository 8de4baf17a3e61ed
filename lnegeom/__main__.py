"""``python -m lnegeom validate``."""

import sys

from .cli import main

sys.exit(main())
