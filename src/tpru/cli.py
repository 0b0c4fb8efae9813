"""The ``tpru`` console script and ``python -m tpru.cli``; the commands are in `tpru.commands`."""

import sys

from tpru.commands import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
