"""``python -m conformance``: the ``qmp-conform`` command line, exiting with its status."""

import sys

from conformance.cli import main

sys.exit(main())
