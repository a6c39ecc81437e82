"""``python -m assyst_nodes`` is the ``assyst-nodes`` command."""

import sys

from .cli import main

sys.exit(main())
