"""sysprep: can this Linux host run N threads, what stops it, and how to fix it safely."""

from __future__ import annotations

__version__ = "0.1.0"
