"""`sysprep check`: the table of limits, the capacity, each fix; and its JSON document."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from typing import Any

from sysprep.limits.base import Status
from sysprep.render import SCHEMA_VERSION
from sysprep.render import esc
from sysprep.render import shown
from sysprep.render.layout import Column
from sysprep.render.layout import console
from sysprep.render.layout import print_grid
from sysprep.render.layout import say
from sysprep.units import format_count
from sysprep.units import format_size

if TYPE_CHECKING:
    from sysprep.capacity import Assessment
    from sysprep.compliance import Compliance
    from sysprep.limits.base import Reading
    from sysprep.report import CheckResult
    from sysprep.settings import Verdict

_STATUS_STYLE = {Status.OK: "green", Status.FAILS: "bold red", Status.UNKNOWN: "yellow"}
_NUMERIC = ("current", "in use", "needed", "allows")


def check_document(result: CheckResult) -> dict[str, Any]:
    """The `check --json` document (README "JSON output")."""
    document = assessment_document(result.assessment)
    document["hostname"] = result.hostname
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.checked_at))
    document["checked_at"] = stamp
    environment = result.environment
    document["environment"] = {
        "kind": environment.kind,
        "runtime": environment.runtime,
        "evidence": list(environment.evidence),
        "host_pid": environment.host_pid,
    }
    if result.compliance is not None:
        document["profile"] = compliance_document(result.compliance)
    if result.links is not None:
        document["links"] = result.links
    if result.unit is not None:
        unit = result.unit
        document["unit"] = {
            "name": unit.name,
            "running": unit.running,
            "main_pid": unit.main_pid,
            "uid": unit.uid,
            "slice": unit.slice,
            "tasks_max": unit.tasks_max,
            "tasks_max_source": unit.tasks_max_source,
            "drop_in": unit.drop_in,
        }
    return document


def print_check(result: CheckResult) -> None:
    """The check report, then the profile's compliance when one was given."""
    environment = result.environment
    if environment.in_container:
        runtime = f" ({environment.runtime})" if environment.runtime else ""
        pids = ", in the host's pid namespace (hostPID)" if environment.host_pid else ""
        print(f"in a container{runtime}{pids}: {'; '.join(environment.evidence)}")
    if result.unit is not None:
        unit = result.unit
        how = (
            f"running, pid {unit.main_pid}"
            if unit.running
            else "not running: as systemd starts it"
        )
        print(f"service {unit.name} ({how}); {unit.tasks_max_source}; slice {unit.slice}")
    print_assessment(result.assessment)
    if result.compliance is not None:
        print_compliance(result.compliance)


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
            "runtime": _runtime_document(result),
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


def _runtime_document(result: Assessment) -> dict[str, Any] | None:
    runtime = result.runtime
    if runtime is None or not result.target.threads:
        return None
    return {
        "name": runtime.name,
        "chosen": runtime.chosen,
        "evidence": runtime.evidence,
        "stack_source": (
            "--stack" if result.target.stack_bytes is not None else runtime.default_stack()[1]
        ),
        "own_threads": result.runtime_threads,
        "cgo": runtime.cgo,
    }


def runtime_line(result: Assessment) -> str:
    """The runtime judged, why, and the threads it adds: for the report's first line."""
    runtime = result.runtime
    if runtime is None:
        return ""
    line = f"runtime: {runtime.name} ({runtime.chosen}"
    line += f": {runtime.evidence})" if runtime.evidence else ")"
    if result.runtime_threads:
        line += f"; it starts {result.runtime_threads} threads of its own, counted in use"
    return line


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


def summary_line(result: Assessment) -> str:
    """The capacity line: "can start ~32,461 more threads; binding limit: ..."."""
    binding = result.binding
    unread = [r.name for r in result.unknown if r.unit == "threads"]
    if unread:  # what binds may be the limit that could not be read: never name another
        read = "" if result.capacity is None else f" (at most ~{result.capacity:,} by those read)"
        return f"not known how many more threads{read}: {', '.join(unread)} could not be read"
    if binding is None or result.capacity is None:
        return "no limit that could be read bounds the thread count"
    return (
        f"can start ~{result.capacity:,} more threads; binding limit: "
        f"{binding.name} = {shown(binding.current, in_bytes=binding.in_bytes)}"
    )


def print_assessment(result: Assessment) -> None:
    """The check report: a table of limits, the capacity line, then each fix in full."""
    out = console()
    wants = _wants(result)
    if result.target.threads and result.runtime is not None:
        say(out, f"[dim]{esc(runtime_line(result))}[/]")
    columns = [Column("limit"), *(Column(name, numeric=True) for name in _NUMERIC),
               Column("status")]  # fmt: skip
    rows = []
    for r in result.readings:
        read = r.status is not Status.UNKNOWN
        rows.append([
            esc(r.name),
            shown(r.current, in_bytes=r.in_bytes) if read else "?",
            shown(r.in_use, in_bytes=r.in_bytes) if r.in_use is not None else "",
            shown(r.needed, in_bytes=r.in_bytes) if r.needed is not None and r.fix else "",
            _allows(r) if read else "?",
            f"[{_STATUS_STYLE[r.status]}]{r.status.value}[/]",
        ])  # fmt: skip
    print_grid(out, esc(f"Can this host run {' and '.join(wants)}?"), columns, rows)
    for line in _capacity_lines(result):
        say(out, f"[bold]{esc(line)}[/]")
    cost = result.cost
    if cost is not None and result.target.threads:
        how = "measured" if cost.measured else "estimated; --calibrate measures it"
        say(
            out,
            f"memory per thread: {format_size(cost.total)} ({how}): kernel stack"
            f" {format_size(cost.kernel_stack)}, page tables {format_size(cost.page_tables)},"
            f" slab {format_size(cost.slab)}, user pages {format_size(cost.rss)}",
        )
    failing = [r for r in result.readings if r.fix is not None]
    if failing:
        say(out, esc(f"\nTo run {' and '.join(wants)}:"))
    for r in failing:
        for indent, line in _fix_lines(r):
            say(out, line, indent)
    for r in result.unknown:
        say(out, f"[yellow]unknown[/]: {esc(r.name)}: {esc(r.note)}")
    notes = [r for r in result.readings if r.status is Status.OK and r.note]
    if notes or result.other_rlimits:
        say(out, "\n[dim]notes:[/]")
    for r in notes:
        say(out, f"[dim]{esc(r.name)}: {esc(r.note)}[/]", 2)
    if result.other_rlimits:
        other = ", ".join(
            f"{name} {'unlimited' if soft is None else format_size(soft)}"
            for name, (soft, _) in result.other_rlimits
        )
        say(out, f"[dim]{esc(other)}: no thread count depends on them; applications check"
                 " them (sysprep profiles)[/]", 2)  # fmt: skip
    verdict = "[green]ready[/]" if result.ready else "[bold red]not ready[/]"
    say(out, f"\n{verdict} for {esc(' and '.join(wants))}")


def _allows(reading: Reading) -> str:
    """What a limit allows: a count, "unlimited" where it bounds nothing, or "—".

    "—" where it is not a count: a backlog that fails bounds bursts of new clients, not
    the connections held.
    """
    if reading.allows is None and reading.status is Status.FAILS:
        return "—"
    return format_count(reading.allows)


def _fix_lines(reading: Reading) -> list[tuple[int, str]]:
    """How to lift one failing limit (indent, markup): now, persistently, when, and why."""
    fix = reading.fix
    if fix is None:
        return []
    lines = [(2, f"[bold]{esc(reading.name)}[/]: {esc(fix.now)}")]
    if fix.persist:
        lines.append((4, f"persist: {esc(fix.persist)}"))
    lines.append((4, f"takes effect: {esc(fix.takes_effect)}"))
    if reading.note:
        lines.append((4, f"note: {esc(reading.note)}"))
    return lines


def _wants(result: Assessment) -> list[str]:
    """What the check was asked: "1,000,000 threads of 8 MiB stack", "N connections"."""
    wants = []
    if result.target.threads:
        stack = format_size(result.stack_bytes)
        runtime = f" ({result.runtime.name})" if result.runtime is not None else ""
        wants.append(f"{result.target.threads:,} threads of {stack} stack{runtime}")
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
            f" {binding.name} = {shown(binding.current, in_bytes=binding.in_bytes)}"
        )
    return lines


def compliance_document(compliance: Compliance) -> dict[str, Any]:
    """The "profile" key of `check --json --profile`: every item, its verdict, and after."""
    after = compliance.after
    return {
        "name": compliance.profile.name,
        "compliant": compliance.compliant,
        "settings": [
            {
                "key": v.key,
                "kind": v.kind,
                "expected": v.expected,
                "actual": v.actual,
                "ok": v.ok is True,
                "status": _VERDICT_STATUS[v.ok],
                "reason": v.reason,
                "application": _app_document(compliance, v),
            }
            for v in compliance.verdicts
        ],
        "capacity_after": after.known_capacity,
        "binding_after": after.binding.name if after.binding and after.known_capacity else None,
    }


def _app_document(compliance: Compliance, verdict: Verdict) -> dict[str, object] | None:
    """A failed item in its application's terms (sysprep.compliance.app_failure), or null."""
    from sysprep.compliance import app_failure

    failure = app_failure(compliance.profile, verdict)
    return None if failure is None else failure.document


def print_compliance(compliance: Compliance) -> None:
    """Each profile item: expected, actual, in place or not (or unknown, and why).

    Then each failed item in its application's terms, the capacity after apply, the verdict.
    """
    from sysprep.compliance import app_failure

    out = console()
    name = esc(compliance.profile.name)
    rows = []
    for v in compliance.verdicts:
        status = _VERDICT_STATUS[v.ok]
        rows.append([
            esc(v.key),
            esc(v.shown_expected),
            esc(v.shown_actual) if v.ok is not None else "?",
            f"[{_VERDICT_STYLE[status]}]{_VERDICT_WORD[status]}[/]",
        ])  # fmt: skip
    columns = [Column("setting"), Column("expected (at least)"), Column("actual"),
               Column("in place")]  # fmt: skip
    print_grid(out, f"\nprofile {name}", columns, rows)
    for v in compliance.verdicts:
        if v.reason:
            say(out, f"[yellow]unknown[/]: {esc(v.key)}: {esc(v.reason)}")
    for failure in filter(None, (app_failure(compliance.profile, v) for v in compliance.verdicts)):
        say(
            out,
            esc(
                f"{failure.application}'s {failure.check} fails: {failure.item} is"
                f" {failure.found}, it requires {failure.required}"
            ),
        )
        for line in (*failure.where, failure.docs):
            say(out, esc(line), 2)
    after = compliance.after
    if after.known_capacity is None and after.unknown:
        unread = ", ".join(r.name for r in after.unknown)
        say(out, f"after `sysprep apply {name}`: not known while {esc(unread)} cannot be read")
    elif after.binding is not None and after.capacity is not None:
        say(
            out,
            f"after `sysprep apply {name}`: can start ~{after.capacity:,}"
            f" more threads; binding limit: {esc(after.binding.name)}",
        )
    failing = [v for v in compliance.verdicts if v.ok is not True]
    if compliance.compliant:
        say(out, f"[green]compliant[/] with {name}")
    else:
        say(
            out,
            f"[bold red]not compliant[/] with {name}:"
            f" {len(failing)} of {len(compliance.verdicts)} items not met or not known",
        )


# A verdict's ok (None: could not be judged) as JSON's status, and as the table says it.
_VERDICT_STATUS = {True: "ok", False: "fails", None: "unknown"}
_VERDICT_WORD = {"ok": "yes", "fails": "no", "unknown": "unknown"}
_VERDICT_STYLE = {"ok": "green", "fails": "bold red", "unknown": "yellow"}
