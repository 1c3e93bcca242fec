"""Parse and format sizes and counts the way operators write them."""

from __future__ import annotations

import re

from sysprep.errors import BadInputError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
TIB = 1024 * GIB

_SUFFIXES = {"": 1, "K": KIB, "M": MIB, "G": GIB, "T": TIB}
_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in "256K", "8M", "8MiB", "2g" or "4096"; binary multiples, as ulimit and glibc."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise BadInputError(
            f"invalid size {text!r}: use a number of bytes with an optional K, M, G or T suffix"
            " (e.g. 256K, 8M)"
        )
    size = int(match[1]) * _SUFFIXES[match[2].upper()]
    if size <= 0:
        raise BadInputError(f"invalid size {text!r}: must be greater than zero")
    return size


def parse_count(text: str, *, what: str) -> int:
    """A positive count, accepting "1000000", "1_000_000" and "1,000,000"."""
    cleaned = text.strip().replace("_", "").replace(",", "")
    # isdigit() alone takes "²" and other Unicode digits, which int() refuses.
    if not (cleaned.isascii() and cleaned.isdigit()) or int(cleaned) <= 0:
        raise BadInputError(f"invalid {what} {text!r}: must be a whole number greater than zero")
    return int(cleaned)


def format_size(size: int) -> str:
    """Size with the largest unit that keeps the number ≥ 1: "8 MiB", "1.5 GiB"."""
    for unit, factor in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"


def format_count(count: int | None) -> str:
    """Count with separators, "1,000,000"; "unlimited" for None."""
    return "unlimited" if count is None else f"{count:,}"


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)?", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, *, what: str, low: float, high: float) -> float:
    """Seconds in "90", "90s", "5m", "1h" or "7d", from *low* to *high*; BadInputError else."""
    match = _DURATION.fullmatch(text.strip())
    seconds = float(match[1]) * _SECONDS[(match[2] or "").lower()] if match else None
    if seconds is None or not low <= seconds <= high:
        raise BadInputError(
            f"invalid {what} {text!r}: seconds, or a number with s, m, h or d (e.g. 5m), from"
            f" {low:g} s to {high / 3600:g} h"
        )
    return seconds
