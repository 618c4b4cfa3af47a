"""`python -m workbench.train RUN_DIR`: run the training described by a run folder."""

import sys

from .runner import main

if len(sys.argv) != 2:
    sys.exit("usage: python -m workbench.train RUN_DIR")
sys.exit(main(sys.argv[1]))
