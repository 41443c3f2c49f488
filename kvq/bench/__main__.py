"""``python -m kvq.bench``: the same as ``kvq bench``."""

import sys

from .cli import main

sys.exit(main(prog="python -m kvq.bench"))
