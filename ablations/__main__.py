"""``python -m ablations`` is the ``ablate`` command."""

import sys

from ablations.engine.cli import main

sys.exit(main())
