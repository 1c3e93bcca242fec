"""`sysprep fleet`: the report across hosts, as text and as its JSON document."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from sysprep.render import SCHEMA_VERSION

if TYPE_CHECKING:
    from sysprep.fleet import Report

_SHOWN_HOSTS = 8  # per group in the text; the JSON lists them all


def fleet_document(report: Report) -> dict[str, Any]:
    """The `fleet --json` document (schemas/fleet.schema.json)."""
    fleet = report.fleet
    smallest = report.capacities[0] if report.capacities else None
    return {
        "schema_version": SCHEMA_VERSION,
        "hosts": len(fleet.checks),
        "ready": report.ready,
        "not_ready": [
            {
                "limit": g.limit,
                "hosts": g.hosts,
                "lowest": g.lowest,
                "highest": g.highest,
                "fix": g.fix,
            }
            for g in report.groups
        ],
        "capacity": {
            "smallest": smallest[0] if smallest else None,
            "smallest_host": smallest[1] if smallest else None,
            "median": report.median_capacity(),
        },
        "profiles": [
            {"name": name, "compliant": met, "judged": judged}
            for name, (met, judged) in sorted(report.profiles().items())
        ],
        "stale": [
            {"host": c.host, "source": c.source, "age_seconds": round(report.now - c.checked_at)}
            for c in report.stale
        ],
        "explained": _by_limit({h: e[0] for h, e in fleet.explained.items()}),
        "watched": _by_limit({h: w[0] for h, w in fleet.watched.items()}),
        "other_schema": [{"source": s, "schema_version": v} for s, v in fleet.other_schema],
        "superseded": [{"host": h, "source": s} for h, s in fleet.superseded],
        "bad": [{"source": b.source, "reason": b.reason} for b in fleet.bad],
    }


def print_fleet(report: Report) -> None:
    """The report: the counts, the groups with their fix, capacity, compliance, and the rest."""
    fleet = report.fleet
    print(
        f"{len(fleet.checks):,} hosts: {len(report.ready):,} ready, {report.not_ready:,} not"
        f" ready, {len(report.stale):,} stale (checked over {_age(report.max_age)} ago)"
    )
    if report.groups:
        print("not ready, by the limit that binds:")
    for group in report.groups:
        values = "" if group.lowest is None else f" = {group.lowest:,}"
        if group.highest is not None and group.highest != group.lowest:
            values += f" to {group.highest:,}"
        fix = f" → {group.fix}" if group.fix else ""
        print(f"  {_hosts(len(group.hosts))}: {group.limit}{values}{fix}")
        print(f"    {_names(group.hosts)}")
    if report.capacities:
        capacity, host = report.capacities[0]
        median = report.median_capacity() or 0
        print(f"capacity: smallest {capacity:,} ({host}), median {median:,.0f} threads")
    for name, (met, judged) in sorted(report.profiles().items()):
        print(f"profile {name}: {met:,} of {_hosts(judged)} compliant")
    for title, by_limit in (
        ("explained failures", {h: e[0] for h, e in fleet.explained.items()}),
        ("headroom under watch's --warn", {h: w[0] for h, w in fleet.watched.items()}),
    ):
        for entry in _by_limit(by_limit):
            print(f"{title}: {_hosts(len(entry['hosts']))}: {entry['limit']}")
            print(f"    {_names(entry['hosts'])}")
    for check in report.stale:
        age = _age(report.now - check.checked_at)
        print(f"stale: {check.host} ({check.source}), checked {age} ago")
    for source, version in fleet.other_schema:
        print(f"other schema: {source}: schema_version {version!r}, not {SCHEMA_VERSION}")
    for host, source in fleet.superseded:
        print(f"superseded: {source}: an older document of {host}")
    for bad in fleet.bad:
        print(f"left out: {bad.source}: {bad.reason}")


def _by_limit(hosts: dict[str, str]) -> list[dict[str, Any]]:
    groups: dict[str, list[str]] = {}
    for host, limit in hosts.items():
        groups.setdefault(limit, []).append(host)
    ordered = sorted(groups.items(), key=lambda group: (-len(group[1]), group[0]))
    return [{"limit": limit, "hosts": sorted(names)} for limit, names in ordered]


def _hosts(count: int) -> str:
    return f"{count:,} host" + ("" if count == 1 else "s")


def _names(hosts: list[str]) -> str:
    more = len(hosts) - _SHOWN_HOSTS
    return ", ".join(hosts[:_SHOWN_HOSTS]) + (f" (and {more:,} more)" if more > 0 else "")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
