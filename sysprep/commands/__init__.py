"""The commands: each takes its options, makes one call, renders the result, returns a status.

cli.py registers them on the typer app and maps errors to exit statuses; nothing here reads
the host or assembles a document: that is the called function's and render's work.
commands/inspect.py has those that only read (check, probe, explain); commands/tune.py
those that change the host (apply, revert) and list what they did (snapshots).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Annotated

import typer

from sysprep.errors import BadInputError
from sysprep.facts import PTHREAD_STACK_MIN
from sysprep.units import format_size
from sysprep.units import parse_size

if TYPE_CHECKING:
    from pathlib import Path

    from sysprep.host import Host

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


@dataclass(frozen=True)
class Context:
    """What every command works on: the host, and where snapshots and the lock live."""

    host: Host
    state_dir: Path


def stack_option(text: str | None) -> int | None:
    """The --stack option in bytes; BadInputError below PTHREAD_STACK_MIN."""
    if text is None:
        return None
    size = parse_size(text)
    if size < PTHREAD_STACK_MIN:
        raise BadInputError(
            f"invalid stack {text!r}: pthread_create refuses stacks below PTHREAD_STACK_MIN"
            f" ({format_size(PTHREAD_STACK_MIN)})"
        )
    return size
