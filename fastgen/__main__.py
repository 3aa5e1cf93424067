"""``python -m fastgen ...``: the same as the ``fastgen`` command."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
