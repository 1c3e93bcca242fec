"""Human tables and JSON documents: the only package that imports rich.

render/check.py tells `check`, render/changes.py `apply`, `revert` and `snapshots`,
render/probe.py a probe; this module holds what they share.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from sysprep.units import format_size

SCHEMA_VERSION = 1


def print_json(document: dict[str, Any]) -> None:
    """One JSON document on stdout."""
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


def esc(text: object) -> str:
    """Text from the host or the user, made safe inside rich markup.

    A path with "[/]" in it, a cgroup named "rt2[b]z", a profile's description: printed
    as they are, never read as markup.
    """
    from rich.markup import escape

    return escape(str(text))


def shown(value: int | None, *, in_bytes: bool) -> str:
    """A limit's value: a size for bytes, a count with separators, or "unlimited"."""
    if value is None:
        return "unlimited"
    return format_size(value) if in_bytes else f"{value:,}"
