"""`sysprep explain`: which limit most likely refused a thread or a fork, with the evidence.

A program only sees EAGAIN; the kernel's own record is a counter in a cgroup file or a line
in its log, and for the other limits the state now (a limit used up). The evidence, strongest
first: the pids controller's refusals (pids.events on every level of the path, the kernel
log's "fork rejected by pids controller"), then each limit at or near its end now. For a
service, systemd's restart history is quoted beside them.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING
from typing import NamedTuple

from sysprep.capacity import check
from sysprep.limits.base import Status
from sysprep.limits.base import Target

if TYPE_CHECKING:
    from sysprep.host import Host
    from sysprep.limits.base import Reading
    from sysprep.settings import Fix

# The weight of the evidence: the kernel counted refusals, or the limit is used up now.
COUNTED, USED_UP = 2, 1
# A limit with this little room left is where the next thread fails.
_NEAR = 0.01
_REJECTED = re.compile(r"cgroup: fork rejected by pids controller in (\S+)")


class Cause(NamedTuple):
    """A limit that likely refused, how strongly the evidence says so, and the evidence."""

    limit: str
    weight: int  # COUNTED or USED_UP
    evidence: tuple[str, ...]
    fix: Fix | None


class Explanation(NamedTuple):
    """The causes, strongest first; what could not be read; the service's history."""

    causes: tuple[Cause, ...]
    notes: tuple[str, ...]
    history: tuple[str, ...]


def explain(host: Host, *, pid: int | None = None, unit: str | None = None) -> Explanation:
    """Read the evidence for *pid* (or *unit*'s main process, or a new process here)."""
    service = None
    if unit is not None:
        from sysprep.systemd import read_unit

        service = read_unit(host, unit)
        pid = service.main_pid if service.running else None
    if pid is not None:
        host.require_process(pid)
    assessment = check(host, Target(threads=1, pid=pid), unit=service)
    notes: list[str] = []
    causes = _pids_refusals(host, assessment.readings, notes)
    named = {cause.limit for cause in causes}
    causes += [
        Cause(r.name, USED_UP, (_at_the_end(r),), r.fix)
        for r in assessment.readings
        if r.unit == "threads" and _near_the_end(r) and r.name not in named
    ]
    causes.sort(key=lambda cause: -cause.weight)
    history = _history(host, service.name) if service is not None else ()
    return Explanation(tuple(causes), tuple(notes), history)


def _pids_refusals(host: Host, readings: tuple[Reading, ...], notes: list[str]) -> list[Cause]:
    """pids.events on every level, and the kernel log's lines for those levels."""
    from sysprep.limits.cgroup import PidsMax

    pids = next((r for r in readings if r.made_by(PidsMax)), None)
    if pids is None or pids.status is Status.UNKNOWN:
        return []
    evidence = [f"{shown}/pids.events: max {count:,}" for _, shown, count in pids.events if count]
    # The whole path, as the kernel names the cgroup: never another cgroup's lines.
    paths = {cgroup for cgroup, _, _ in pids.events}
    evidence += [line for line, path in _kernel_log(host, notes) if path in paths]
    if not evidence:
        return []
    return [Cause(pids.name, COUNTED, tuple(evidence), pids.fix)]


def _kernel_log(host: Host, notes: list[str]) -> list[tuple[str, str]]:
    """The kernel's "fork rejected by pids controller" lines with their time, and the path."""
    try:
        records = host.kernel_log()
        booted = host.boot_time()
    except OSError as error:
        notes.append(f"the kernel log could not be read ({error.strerror}: root reads /dev/kmsg)")
        return []
    lines = []
    for after_boot, message in records:
        rejected = _REJECTED.search(message)
        if rejected:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(booted + after_boot))
            lines.append((f"kernel log {stamp}: {message}", rejected[1]))
    return lines


def _near_the_end(reading: Reading) -> bool:
    """Room for no more than 1 % of the limit (of a count; 2 threads for bytes) is left."""
    if reading.allows is None or reading.current is None or reading.status is Status.UNKNOWN:
        return False
    room = 2 if reading.in_bytes else max(2, int(reading.current * _NEAR))
    return reading.allows <= room


def _at_the_end(reading: Reading) -> str:
    used = "" if reading.in_use is None else f"{reading.in_use:,} in use of "
    return f"{reading.name}: {used}{reading.current:,}; room for {reading.allows:,} more now"


def _history(host: Host, unit: str) -> tuple[str, ...]:
    from sysprep.systemd import unit_history

    return unit_history(host, unit)
