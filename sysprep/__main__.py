"""`python -m sysprep` runs the command line."""

from __future__ import annotations

from sysprep.cli import main

main()
