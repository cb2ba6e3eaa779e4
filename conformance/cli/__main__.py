"""``python -m conformance.cli``: the ``qmp-conform`` command line."""

import sys

from conformance.cli import main

sys.exit(main())
