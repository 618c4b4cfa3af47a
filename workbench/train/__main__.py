"""`python -m workbench.train RUN_DIR`: run the training described by a run folder.

`python -m workbench.train --warm EARLY_LOG`: a warm runner (warm.py), told its run folder later.
"""

import sys

if len(sys.argv) == 3 and sys.argv[1] == "--warm":
    from .warm import serve

    sys.exit(serve(sys.argv[2]))
if len(sys.argv) != 2:
    sys.exit("usage: python -m workbench.train RUN_DIR")

from .runner import main  # noqa: E402 - after the usage check, as the warm path imports its own

sys.exit(main(sys.argv[1]))
