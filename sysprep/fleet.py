"""sysprep fleet: one report across many hosts, from the JSON documents each one wrote.

The documents are `check --json` (and `explain --json`, `watch --json` where they fit), one
per host, as Ansible's fetch or a node agent leaves them: files, or directories of them.
Each is read, reduced to the little the report needs, and let go, so memory grows by a
few fields per host, not by a document. A document that cannot be read is one line of the
report, never its end.
"""

from __future__ import annotations

import calendar
import json
import statistics
import time
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

from sysprep.errors import BadInputError
from sysprep.render import SCHEMA_VERSION

if TYPE_CHECKING:
    from collections.abc import Iterator
    from collections.abc import Sequence
    from pathlib import Path

_MAX_BYTES = 16 << 20  # a check document with every limit and link is a few KiB


class HostCheck(NamedTuple):
    """What the report keeps of one host's check document."""

    host: str
    source: str
    checked_at: float
    ready: bool
    capacity: int | None
    binding: str | None  # the limit that binds (or, not ready, the first unread one)
    current: Any  # its value on the host
    fix_now: str | None  # the command that lifts it, as check gave it
    fix_value: int | None
    profile: tuple[str, bool] | None  # (name, compliant)


class Bad(NamedTuple):
    """A document left out of the report, and why."""

    source: str
    reason: str


@dataclass
class Fleet:
    """Every host's newest document of each kind, and what could not be used."""

    checks: dict[str, HostCheck] = field(default_factory=dict)
    explained: dict[str, tuple[str, str]] = field(default_factory=dict)  # host: (limit, source)
    watched: dict[str, tuple[str, float, str]] = field(default_factory=dict)  # (limit, %, src)
    bad: list[Bad] = field(default_factory=list)
    other_schema: list[tuple[str, object]] = field(default_factory=list)
    superseded: list[tuple[str, str]] = field(default_factory=list)  # (host, older source)


class Group(NamedTuple):
    """The not-ready hosts one limit binds, and the fix that lifts it on all of them."""

    limit: str
    hosts: list[str]
    lowest: Any
    highest: Any
    fix: str | None  # the command of the host that needs the most


@dataclass
class Report:
    """The fleet, judged: fresh hosts ready or not, grouped, stale ones apart."""

    fleet: Fleet
    max_age: float
    now: float
    ready: list[str]
    groups: list[Group]
    stale: list[HostCheck]
    capacities: list[tuple[int, str]]  # (capacity, host) of the fresh hosts, smallest first

    @property
    def all_ready(self) -> bool:
        """Every host has a fresh document, and is ready: fleet's exit status 0."""
        return bool(self.ready) and not self.groups and not self.stale

    @property
    def not_ready(self) -> int:
        """Hosts with a fresh document that are not ready."""
        return sum(len(group.hosts) for group in self.groups)

    def median_capacity(self) -> float | None:
        """The median of the fresh hosts' capacities; None without one."""
        return statistics.median(c for c, _ in self.capacities) if self.capacities else None

    def profiles(self) -> dict[str, tuple[int, int]]:
        """Per profile named in the fresh documents: (hosts compliant, hosts judged)."""
        counts: dict[str, tuple[int, int]] = {}
        for check in self.fleet.checks.values():
            if check.profile is not None and check not in self.stale:
                name, compliant = check.profile
                met, judged = counts.get(name, (0, 0))
                counts[name] = (met + compliant, judged + 1)
        return counts


def read_fleet(paths: Sequence[Path]) -> Fleet:
    """Every document under *paths*; BadInputError when a path does not exist."""
    fleet = Fleet()
    for path, host in _documents(paths):
        _add(fleet, path, host)
    return fleet


def judge(fleet: Fleet, *, max_age: float, now: float | None = None) -> Report:
    """Group the hosts whose document is at most *max_age* seconds old; the rest are stale."""
    now = time.time() if now is None else now
    ready, stale, capacities = [], [], []
    by_limit: dict[str, list[HostCheck]] = {}
    for check in fleet.checks.values():
        if now - check.checked_at > max_age:
            stale.append(check)
            continue
        if check.capacity is not None:
            capacities.append((check.capacity, check.host))
        if check.ready:
            ready.append(check.host)
        else:
            by_limit.setdefault(check.binding or "unknown", []).append(check)
    groups = [_group(limit, checks) for limit, checks in by_limit.items()]
    groups.sort(key=lambda group: (-len(group.hosts), group.limit))
    stale.sort(key=lambda check: check.checked_at)
    return Report(fleet, max_age, now, sorted(ready), groups, stale, sorted(capacities))


def _group(limit: str, checks: list[HostCheck]) -> Group:
    values = [c.current for c in checks if isinstance(c.current, int)]
    needs_most = max(checks, key=lambda c: c.fix_value or 0)
    return Group(
        limit,
        sorted(c.host for c in checks),
        min(values) if values else None,
        max(values) if values else None,
        needs_most.fix_now,
    )


def _documents(paths: Sequence[Path]) -> Iterator[tuple[Path, str]]:
    """(file, host named by its path) of each document under *paths*.

    A file is named by its stem; in a directory, a file one level down or deeper by its
    first directory (Ansible's fetch: DEST/HOST/...), a file directly in it by its stem.
    """
    for path in paths:
        if path.is_dir():
            for found in sorted(path.rglob("*.json")):
                relative = found.relative_to(path).parts
                yield found, relative[0] if len(relative) > 1 else found.stem
        elif path.exists():
            yield path, path.stem
        else:
            raise BadInputError(f"{path}: no such file or directory")


def _add(fleet: Fleet, path: Path, named: str) -> None:
    """Read one document into *fleet*; a bad one is noted, never raised."""
    source = str(path)
    try:
        info = path.stat()
        if info.st_size > _MAX_BYTES:
            fleet.bad.append(Bad(source, f"over {_MAX_BYTES >> 20} MiB: not a sysprep document"))
            return
        document = json.loads(path.read_bytes())
    except OSError as error:
        fleet.bad.append(Bad(source, f"cannot read: {error.strerror}"))
        return
    except (ValueError, RecursionError) as error:
        fleet.bad.append(Bad(source, f"not JSON: {error}"))
        return
    if not isinstance(document, dict):
        fleet.bad.append(Bad(source, f"a JSON {type(document).__name__}, not a document"))
        return
    if document.get("schema_version") != SCHEMA_VERSION:
        fleet.other_schema.append((source, document.get("schema_version")))
        return
    given = document.get("host")  # a field the operator added; else the path names it
    host = given if isinstance(given, str) and given else named
    try:
        if "ready" in document and "limits" in document:
            _add_check(fleet, _check(document, host, source, info.st_mtime))
        elif "causes" in document:
            _add_explained(fleet, document, host, source)
        elif "warn_pct" in document and "limits" in document:
            _add_watched(fleet, document, host, source)
        else:
            fleet.bad.append(Bad(source, "not a check, explain or watch document"))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        fleet.bad.append(Bad(source, f"malformed: {type(error).__name__} {error}"))


def _check(document: dict[str, Any], host: str, source: str, mtime: float) -> HostCheck:
    """The few fields of a check document the report needs; KeyError or TypeError else."""
    ready = document["ready"]
    if not isinstance(ready, bool):
        raise TypeError(f"ready is {ready!r}, not true or false")
    limits = {entry["name"]: entry for entry in document["limits"]}
    binding = document.get("binding")
    if not ready and (binding is None or limits[binding]["status"] == "ok"):
        # Not ready for a limit not read, or one other than the tightest: name that one.
        binding = next(
            (name for name, entry in limits.items() if entry["status"] != "ok"), binding
        )
    entry = limits.get(binding, {}) if binding is not None else {}
    fix = entry.get("fix") or {}
    capacity = document.get("capacity")
    profile = document.get("profile")
    return HostCheck(
        host=host,
        source=source,
        checked_at=_timestamp(document.get("checked_at"), mtime),
        ready=ready,
        capacity=capacity if isinstance(capacity, int) else None,
        binding=binding,
        current=entry.get("current"),
        fix_now=fix.get("now"),
        fix_value=fix.get("value") if isinstance(fix.get("value"), int) else None,
        profile=(str(profile["name"]), bool(profile["compliant"])) if profile else None,
    )


def _timestamp(text: object, mtime: float) -> float:
    """Check's "checked_at" (UTC, ISO 8601), else when the file was written."""
    if isinstance(text, str):
        try:
            return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
        except ValueError:
            pass
    return mtime


def _add_check(fleet: Fleet, check: HostCheck) -> None:
    """The newest check of each host counts; an older one is noted as superseded."""
    known = fleet.checks.get(check.host)
    if known is not None:
        older, check = (known, check) if known.checked_at <= check.checked_at else (check, known)
        fleet.superseded.append((check.host, older.source))
    fleet.checks[check.host] = check


def _add_explained(fleet: Fleet, document: dict[str, Any], host: str, source: str) -> None:
    causes = document["causes"]
    if causes:
        fleet.explained[host] = (str(causes[0]["limit"]), source)


def _add_watched(fleet: Fleet, document: dict[str, Any], host: str, source: str) -> None:
    """The limit with the least headroom, when it is under the watch's --warn."""
    warn = float(document["warn_pct"])
    shares = [(float(e["headroom_pct"]), str(e["limit"])) for e in document["limits"]
              if e["headroom_pct"] is not None]  # fmt: skip
    if shares and min(shares)[0] < warn:
        share, limit = min(shares)
        fleet.watched[host] = (limit, share, source)
