"""Human tables and JSON documents; the only module that imports rich."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING
from typing import Any

from sysprep.facts import PROBES
from sysprep.limits.base import Status
from sysprep.units import format_count
from sysprep.units import format_size

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator

    from rich.console import Console

    from sysprep.apply import ApplyResult
    from sysprep.capacity import Assessment
    from sysprep.compliance import Compliance
    from sysprep.limits.base import Reading
    from sysprep.snapshot import Snapshot

SCHEMA_VERSION = 1
# Limits whose values are bytes; the rest are counts.
_BYTES = frozenset(
    {
        "memory (connections)",
        "RLIMIT_STACK",
        "RLIMIT_AS",
        "RLIMIT_DATA",
        "memory",
        "memory.max",
        "CommitLimit",
        "address-space",
    }
)
_SNAPSHOT_TABLE_EXTRA = 40
_STATUS_STYLE = {Status.OK: "green", Status.FAILS: "bold red", Status.UNKNOWN: "yellow"}


def assessment_document(result: Assessment) -> dict[str, Any]:
    """The `check --json` document (README "JSON output")."""
    cost = result.cost
    return {
        "schema_version": SCHEMA_VERSION,
        "ready": result.ready,
        "target": {
            "threads": result.target.threads,
            "stack_bytes": result.stack_bytes,
            "pid": result.target.pid,
        },
        "capacity": result.capacity,
        "binding": result.binding.name if result.binding else None,
        "limits": [_reading_document(r) for r in result.readings],
        "per_thread_bytes": cost.total if cost else None,
        "per_thread": ({"total": cost.total, **cost._asdict()} if cost else None),
        "connections": (
            {
                "target": result.target.connections,
                "sources": result.target.sources,
                "capacity": result.connections_capacity,
                "binding": result.connections_binding.name if result.connections_binding else None,
                "per_connection_bytes": result.connection_bytes,
            }
            if result.target.connections
            else None
        ),
    }


def _reading_document(reading: Reading) -> dict[str, Any]:
    return {
        "name": reading.name,
        "status": reading.status.value,
        "current": reading.current,
        "in_use": reading.in_use,
        "allows": reading.allows,
        "needed": reading.needed,
        "fix": reading.fix._asdict() if reading.fix else None,
        "note": reading.note,
        "unit": reading.unit,
    }


def print_json(document: dict[str, Any]) -> None:
    """One JSON document on stdout."""
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


def summary_line(result: Assessment) -> str:
    """The capacity line: "can start ~32,461 more threads; binding limit: ..."."""
    binding = result.binding
    if binding is None or result.capacity is None:
        return "no limit that could be read bounds the thread count"
    return (
        f"can start ~{result.capacity:,} more threads; binding limit: "
        f"{binding.name} = {_value(binding.name, binding.current)}"
    )


def print_assessment(result: Assessment) -> None:
    """The check report: a table of limits, the capacity line, then each fix in full."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    wants = _wants(result)
    table = Table(title=f"Can this host run {' and '.join(wants)}?", title_justify="left")
    numeric = ("current", "in use", "needed", "allows")
    for column in ("limit", *numeric, "status"):
        table.add_column(column, justify="right" if column in numeric else "left")
    for r in result.readings:
        read = r.status is not Status.UNKNOWN
        table.add_row(
            r.name,
            _value(r.name, r.current) if read else "?",
            _value(r.name, r.in_use) if r.in_use is not None else "",
            _value(r.name, r.needed) if r.needed is not None and r.fix else "",
            format_count(r.allows) if read else "?",
            f"[{_STATUS_STYLE[r.status]}]{r.status.value}[/]",
        )
    console.print(table)
    for line in _capacity_lines(result):
        console.print(line, style="bold")
    cost = result.cost
    if cost is not None and result.target.threads:
        how = "measured" if cost.measured else "estimated; --calibrate measures it"
        console.print(
            f"memory per thread: {format_size(cost.total)} ({how}): kernel stack"
            f" {format_size(cost.kernel_stack)}, page tables {format_size(cost.page_tables)},"
            f" slab {format_size(cost.slab)}, user pages {format_size(cost.rss)}"
        )
    failing = [r for r in result.readings if r.fix is not None]
    if failing:
        console.print(f"\nTo run {' and '.join(wants)}:")
    for line in (line for r in failing for line in _fix_lines(r)):
        console.print(line)
    for r in result.unknown:
        console.print(f"[yellow]unknown[/]: {r.name}: {r.note}")
    notes = [r for r in result.readings if r.status is Status.OK and r.note]
    if notes:
        console.print("\nnotes:", style="dim")
    for r in notes:
        console.print(f"  {r.name}: {r.note}", style="dim")
    verdict = "[green]ready[/]" if result.ready else "[bold red]not ready[/]"
    console.print(f"\n{verdict} for {' and '.join(wants)}")


def _fix_lines(reading: Reading) -> list[str]:
    """How to lift one failing limit: now, persistently, when, and why."""
    fix = reading.fix
    if fix is None:
        return []
    lines = [f"  [bold]{reading.name}[/]: {fix.now}"]
    if fix.persist:
        lines.append(f"    persist: {fix.persist}")
    lines.append(f"    takes effect: {fix.takes_effect}")
    if reading.note:
        lines.append(f"    note: {reading.note}")
    return lines


def _wants(result: Assessment) -> list[str]:
    """What the check was asked: "1,000,000 threads of 8 MiB stack", "N connections"."""
    wants = []
    if result.target.threads:
        stack = format_size(result.stack_bytes)
        wants.append(f"{result.target.threads:,} threads of {stack} stack")
    if result.target.connections:
        wants.append(f"{result.target.connections:,} connections")
    return wants


def _capacity_lines(result: Assessment) -> list[str]:
    """One capacity line per thing judged."""
    lines = [summary_line(result)] if result.target.threads else []
    binding, capacity = result.connections_binding, result.connections_capacity
    if result.target.connections and binding is not None and capacity is not None:
        lines.append(
            f"can hold ~{capacity:,} more connections; binding limit:"
            f" {binding.name} = {_value(binding.name, binding.current)}"
        )
    return lines


def _value(name: str, value: int | None) -> str:
    if value is None:
        return "unlimited"
    return format_size(value) if name in _BYTES else f"{value:,}"


@contextmanager
def probe_progress(name: str, target: int) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar (count, rate, ETA) while a probe runs, on a terminal only."""
    from rich.console import Console
    from rich.progress import BarColumn
    from rich.progress import MofNCompleteColumn
    from rich.progress import Progress
    from rich.progress import TaskProgressColumn
    from rich.progress import TextColumn
    from rich.progress import TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (
        TextColumn(f"{name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(name, total=target, rate="")

        def update(created: int, total: int) -> None:
            speed = progress.tasks[0].speed
            rate = f"{speed:,.0f}/s" if speed else ""
            progress.update(task, completed=created, total=total, rate=rate)

        yield update


def print_probe(document: dict[str, Any]) -> None:
    """What a probe held, how fast, what each thread cost, and what stopped it."""
    from rich.console import Console

    console = Console(highlight=False)
    probe = PROBES[document["probe"]]
    held, target = document["held"], document["target"]
    rate = document.get("create_rate")
    console.print(
        f"[bold]{held:,}[/] of {target:,} {probe.holds} alive at once"
        f" ({document.get('created', held):,} created in {document['create_seconds']:.2f} s"
        + (f", {rate:,}/s" if rate else "")
        + ")"
    )
    stopped = document.get("stopped_by")
    if stopped:
        console.print(
            f"stopped by: [bold red]{stopped}[/]"
            + (f" ({document['errno']})" if document.get("errno") else "")
        )
    costs = document.get(f"per_{probe.one}_bytes") or {}
    if costs:
        parts = ", ".join(
            f"{key.replace('_', ' ')} {format_size(max(value, 0))}" for key, value in costs.items()
        )
        console.print(f"per {probe.one}: {parts}")
    if document.get("oom_kills"):
        console.print(f"[bold red]the OOM killer fired {document['oom_kills']} time(s)[/]")


def apply_document(result: ApplyResult) -> dict[str, Any]:
    """The `apply --json` document: the plan, and what was done."""
    return {
        "schema_version": SCHEMA_VERSION,
        "profile": result.profile.name,
        "dry_run": result.dry_run,
        "changed": result.changed,
        "sysctls": [
            {"key": c.key, "before": c.before, "after": c.after, "action": c.action}
            for c in result.sysctls
        ],
        "files": [
            {"path": f.path, "action": "create" if f.before is None else "replace"}
            for f in result.files
        ],
        "rlimits": result.rlimits,
        "warnings": result.warnings,
        "snapshot": result.snapshot.id if result.snapshot else None,
        "probes": [p.document for p in result.probes],
    }


def print_apply(result: ApplyResult) -> None:
    """The plan as a table, then what was done and when each change takes effect."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(
        title=f"{result.profile.name}: {result.profile.description}", title_justify="left"
    )
    for column in ("setting", "now", "profile", "action"):
        table.add_column(column)
    for c in result.sysctls:
        table.add_row(
            c.key,
            c.before,
            str(c.wanted),
            c.action if c.action != "keep" else "keep (already enough)",
        )
    for f in result.files:
        table.add_row(
            f.path,
            "absent" if f.before is None else "differs",
            "sysprep's",
            "create" if f.before is None else "replace",
        )
    for r in result.rlimits:
        table.add_row(
            f"{r['name']} of pid {r['pid']}", str(r["before"]), str(r["after"]), "prlimit"
        )
    console.print(table)
    for warning in result.warnings:
        console.print(f"[yellow]warning[/]: {warning}")
    if not result.changed:
        console.print("nothing to change: the host already meets this profile")
    elif result.dry_run:
        console.print("dry run: nothing was changed")
    else:
        snapshot = result.snapshot.id if result.snapshot else "?"
        console.print(f"applied; snapshot {snapshot}; `sysprep revert` undoes it")
        console.print(
            "sysctls take effect now"
            + (
                "; sysctl.d at every boot; limits.d at next login; systemd defaults after"
                " daemon-reexec"
                if result.files
                else ""
            )
        )
    for probe in result.probes:
        print_probe(probe.document)


def print_snapshots(
    snapshots: list[Snapshot], *, as_json: bool, console: Console | None = None
) -> None:
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
            "changes": [e["key"] for e in s.sysctls]
            + [f.path for f in s.files]
            + [f"{e['name']} of pid {e['pid']}" for e in s.rlimits],
        }
        for s in snapshots
    ]
    if as_json:
        print_json({"schema_version": SCHEMA_VERSION, "snapshots": rows})
        return
    from rich.console import Console
    from rich.table import Table

    console = console or Console(highlight=False)
    widest = max((len(row["id"]) for row in rows), default=2)
    # The table needs the whole id, borders, and a little room for each other column.
    if not console.is_terminal or console.width < widest + _SNAPSHOT_TABLE_EXTRA:
        for row in rows:
            fields = (row["id"], row["created"], row["profile"], row["state"], row["changes"])
            console.file.write("\t".join((*fields[:4], ", ".join(fields[4]))) + "\n")
        return
    table = Table()
    table.add_column("id", no_wrap=True, min_width=widest)
    for column in ("created", "profile", "state", "changes"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["id"], row["created"], row["profile"], row["state"], ", ".join(row["changes"])
        )
    console.print(table)


def print_compliance(compliance: Compliance) -> None:
    """Each profile setting: expected, actual, in place or not; then capacity after apply."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"\nprofile {compliance.profile.name}", title_justify="left")
    for column in ("setting", "expected (at least)", "actual", "in place"):
        table.add_column(column)
    for c in compliance.settings:
        ok = c.action == "keep"
        table.add_row(c.key, str(c.wanted), c.before, "[green]yes[/]" if ok else "[bold red]no[/]")
    console.print(table)
    after = compliance.after
    if after.binding is not None and after.capacity is not None:
        console.print(
            f"after `sysprep apply {compliance.profile.name}`: can start ~{after.capacity:,}"
            f" more threads; binding limit: {after.binding.name}"
        )
