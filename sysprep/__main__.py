"""`python -m sysprep` and the `sysprep` console script."""

from __future__ import annotations

import sys
from typing import NoReturn


def main() -> NoReturn:
    """Run the command line; a Ctrl-C while it is still importing is one line too, exit 130."""
    try:
        from sysprep.cli import run
    except KeyboardInterrupt:
        sys.stderr.write("sysprep: interrupted\n")
        sys.exit(130)
    sys.exit(run())


if __name__ == "__main__":
    main()
