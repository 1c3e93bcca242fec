"""`sysprep profiles`: the profiles there are; `profiles show NAME`: one, as it resolves."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from sysprep.render import SCHEMA_VERSION
from sysprep.render import esc
from sysprep.render.layout import Column
from sysprep.render.layout import console
from sysprep.render.layout import print_grid
from sysprep.render.layout import say

if TYPE_CHECKING:
    from sysprep.profile import Line
    from sysprep.profile import Profile


def entry(profile: Profile) -> dict[str, Any]:
    """One profile in the `profiles --json` document."""
    application = profile.application
    return {
        "name": profile.name,
        "description": profile.description,
        "path": str(profile.path),
        "application": application.name if application else None,
        "docs": application.docs if application else None,
    }


def profiles_document(profiles: list[Profile]) -> dict[str, Any]:
    """`profiles --json` (sysprep/schemas/profiles.schema.json)."""
    return {"schema_version": SCHEMA_VERSION, "profiles": [entry(p) for p in profiles]}


def show_document(profile: Profile, lines: list[Line]) -> dict[str, Any]:
    """`profiles show NAME --json`: the profile, and each setting line with its source."""
    document = profiles_document([profile])
    document["profiles"][0]["settings"] = [
        {"table": line.table, "key": line.key, "line": line.text, "source": line.comment,
         "file": line.origin.name}
        for line in lines
    ]  # fmt: skip
    return document


def print_profiles(profiles: list[Profile]) -> None:
    """A row per profile: its name, and what it is for."""
    rows = [[esc(p.name), esc(p.description)] for p in profiles]
    print_grid(console(), None, [Column("profile"), Column("description")], rows)


def print_show(profile: Profile, lines: list[Line]) -> None:
    """The profile's description, then each table's lines, each with the source it cites."""
    out = console()
    say(out, esc(f"{profile.name}: {profile.description}"))
    say(out, esc(f"file: {profile.path}"))
    if profile.application is not None:
        say(out, esc(f"for: {profile.application.name} ({profile.application.docs})"))
    table = None
    for line in lines:
        if line.table != table:
            table = line.table
            say(out, esc(f"\n[{table}]") if table else "")
        say(out, esc(line.text))
        inherited = [] if line.origin == profile.path else [f"(from {line.origin.stem})"]
        said = " ".join(([line.comment] if line.comment else []) + inherited)
        if said:
            say(out, f"[dim]{esc(f'# {said}')}[/]", 4)
