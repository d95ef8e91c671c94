"""`python -m kit`: the command line, as the `kit` script runs it."""

import sys

from kit.cli import main

sys.exit(main())
