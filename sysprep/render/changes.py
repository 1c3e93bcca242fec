"""What apply plans and does, what revert put back, and the snapshots: tables and JSON."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING
from typing import Any

from sysprep.render import SCHEMA_VERSION
from sysprep.render import esc
from sysprep.render import print_json
from sysprep.render.layout import Column
from sysprep.render.layout import console
from sysprep.render.layout import print_grid
from sysprep.render.layout import say
from sysprep.render.probe import print_probe
from sysprep.settings.files import FileSetting
from sysprep.settings.kinds import KINDS

if TYPE_CHECKING:
    from rich.console import Console

    from sysprep.apply import ApplyResult
    from sysprep.plan import Plan
    from sysprep.revert import RevertResult
    from sysprep.snapshot import Scan


def apply_document(result: ApplyResult) -> dict[str, Any]:
    """The `apply --json` document: the plan, kind by kind, and what was done."""
    plan = result.plan
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "profile": plan.profile.name,
        "dry_run": result.dry_run,
        "changed": result.changed,
    }
    for kind in KINDS:
        entries = []
        for change in plan.of(kind):
            entry = change.setting.document(change)
            if entry is not None and change.setting.key in plan.where:
                entry["where"] = plan.where[change.setting.key]
            if entry is not None:
                entries.append(entry)
        document[kind.kind] = entries
    document["warnings"] = list(plan.warnings)
    document["snapshot"] = result.snapshot.id if result.snapshot else None
    document["probes"] = [p.document for p in result.probes]
    return document


def print_apply(result: ApplyResult) -> None:
    """The plan as a table, then what was done and when each change takes effect."""
    plan = result.plan
    out = console()
    title = esc(f"{plan.profile.name}: {plan.profile.description}")
    print_grid(out, title, _PLAN_COLUMNS, _plan_rows(plan))
    for c in plan.to_make:
        if isinstance(c.setting, FileSetting):  # the exact lines it adds or changes
            say(out, esc(f"{c.setting.key}:"))
            for old, new in c.setting.lines_changed(c):
                line = f"+ {esc(new)}" if old is None else f"~ {esc(old)}  →  {esc(new)}"
                say(out, line, 2)
    for warning in plan.warnings:
        say(out, f"[yellow]warning[/]: {esc(warning)}")
    if not result.changed:
        say(out, "nothing to change: the host already meets this profile")
    elif result.dry_run:
        say(out, "dry run: nothing was changed")
    else:
        snapshot = result.snapshot.id if result.snapshot else "?"
        say(out, f"applied; snapshot {esc(snapshot)}; `sysprep revert` undoes it")
    by_when: dict[str, list[str]] = {}
    for c in plan.to_make:
        by_when.setdefault(c.setting.takes_effect, []).append(c.setting.key)
    for when, keys in by_when.items():
        say(out, esc(f"takes effect {when}: {', '.join(keys)}"))
    for probe in result.probes:
        print_probe(probe.document)


# How the plan table says where a setting takes effect, when it is not only here.
_WHERE = {"node": " (on the node)", "pid namespace": " (this pid namespace's own)"}


_PLAN_COLUMNS = (Column("setting"), Column("now"), Column("profile"), Column("action"))


def _plan_rows(plan: Plan) -> list[list[str]]:
    """Each setting of the plan: now, what the profile asks, and what apply does."""
    rows = []
    for c in (*plan.changes, *plan.shown):
        setting = c.setting
        wanted = setting.show(c.after) if c.wanted is None else setting.show(c.wanted)
        action = c.action.value if c.changes else "keep (already enough)"
        if c in plan.shown:
            action += " (in its drop-in)"
        key = setting.key + _WHERE.get(plan.where.get(setting.key, ""), "")
        rows.append([esc(key), esc(setting.show(c.before)), esc(wanted), action])
    return rows


def revert_document(result: RevertResult) -> dict[str, Any]:
    """The `revert --json` document; "failed" lists what could not be put back, and why."""
    return {
        "schema_version": SCHEMA_VERSION,
        "snapshot": result.snapshot.id,
        "profile": result.snapshot.profile,
        "created": result.snapshot.created,
        "restored": result.restored,
        "handed_over": result.handed,
        "failed": [{"key": key, "reason": reason} for key, reason in result.failed],
    }


def print_revert(result: RevertResult) -> None:
    """What was put back; on stderr, each setting that could not be, with the reason."""
    what = ", ".join(result.restored) if result.restored else "nothing was still changed"
    snapshot = result.snapshot
    if result.handed:
        what += (
            f"; kept, as a later apply changed them again (its revert now puts back what"
            f" {snapshot.profile} found): {', '.join(result.handed)}"
        )
    applied = f"{snapshot.profile}, applied {snapshot.when} (snapshot {snapshot.id})"
    if not result.failed:
        print(f"reverted {applied}: {what}")
        return
    print(f"partly reverted {applied}: {what}")
    for key, reason in result.failed:
        print(f"sysprep: could not restore {key}: {reason}", file=sys.stderr)
    print(
        f"sysprep: snapshot {snapshot.id} stays {snapshot.state}: mend the cause, then run"
        " `sysprep revert` again",
        file=sys.stderr,
    )


def print_snapshots(scan: Scan, *, as_json: bool, given: Console | None = None) -> None:
    """The snapshots, oldest first; an id is never cut: it is what `sysprep revert ID` takes.

    A pipe gets one tab-separated line per snapshot; a terminal a table whose other columns
    fold first.
    """
    import time

    rows: list[dict[str, Any]] = [
        {
            "id": s.id,
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.created)),
            "profile": s.profile,
            "state": s.state,
            "changes": [c.setting.key for c in s.changes],
        }
        for s in scan.found
    ]
    rejected = [{"file": str(path), "reason": reason} for path, reason in scan.rejected]
    if as_json:
        print_json({"schema_version": SCHEMA_VERSION, "snapshots": rows, "rejected": rejected})
        return
    out = given or console()
    if not out.is_terminal:
        for row in rows:
            fields = (row["id"], row["created"], row["profile"], row["state"], row["changes"])
            cells = (*fields[:4], ", ".join(fields[4]))
            out.file.write("\t".join(map(_tsv, cells)) + "\n")
        _print_rejected(rejected)
        return
    table = [
        [esc(row["id"]), esc(row["created"]), esc(row["profile"]), esc(row["state"]),
         esc(", ".join(row["changes"]))]
        for row in rows
    ]  # fmt: skip
    print_grid(out, None, _SNAPSHOT_COLUMNS, table)
    _print_rejected(rejected)


_SNAPSHOT_COLUMNS = tuple(map(Column, ("id", "created", "profile", "state", "changes")))


def _tsv(cell: str) -> str:
    """A cell of a tab-separated line, its own tabs and newlines escaped as C escapes them.

    A profile's file name may hold one: it never breaks the line.
    """
    return cell.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _print_rejected(rejected: list[dict[str, str]]) -> None:
    """Each untrusted snapshot file, on stderr: it is not listed, and why."""
    for entry in rejected:
        print(f"sysprep: rejected {entry['file']}: {entry['reason']}", file=sys.stderr)
