"""The capacity model: read every limit, take the smallest headroom, name the binding limit."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

from sysprep.limits.base import Reading
from sysprep.limits.base import Status
from sysprep.limits.base import Target
from sysprep.limits.base import unknown
from sysprep.limits.inspection import Inspection
from sysprep.limits.memory import thread_cost

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sysprep.host import Host
    from sysprep.limits.base import Limit
    from sysprep.limits.cost import ThreadCost
    from sysprep.runtimes import RuntimeUse
    from sysprep.systemd import Unit


class Assessment(NamedTuple):
    """The answer to "can this host run N threads": capacity, the binding limit, every reading."""

    target: Target
    stack_bytes: int
    readings: tuple[Reading, ...]
    capacity: int | None  # more threads the host allows; None: nothing known binds
    binding: Reading | None
    cost: ThreadCost | None
    connections_capacity: int | None = None  # with a connections target
    connections_binding: Reading | None = None
    connection_bytes: int | None = None
    runtime: RuntimeUse | None = None  # always set by check(); None in a hand-made one
    runtime_threads: int = 0  # threads its runtime will add (a program yet to start)
    # The judged process's rlimits no thread count depends on, which applications check
    # (RLIMIT_FSIZE, RLIMIT_MEMLOCK): (soft, hard), None unlimited.
    other_rlimits: tuple[tuple[str, tuple[int | None, int | None]], ...] = ()

    @property
    def unknown(self) -> tuple[Reading, ...]:
        """Limits that could not be read."""
        return tuple(r for r in self.readings if r.status is Status.UNKNOWN)

    @property
    def known_capacity(self) -> int | None:
        """The capacity, where every thread limit was read; None while one was not."""
        unread = any(r.unit == "threads" for r in self.unknown)
        return None if unread else self.capacity

    @property
    def ready(self) -> bool:
        """Ready only when every limit was read and none stops the target."""
        return all(r.status is Status.OK for r in self.readings)


def assess(readings: Sequence[Reading]) -> tuple[int | None, Reading | None]:
    """Capacity is the smallest headroom; the limit that gives it is the binding one.

    Pure: limits that cannot bind (allows None) or could not be read never win.
    """
    bounded = [r for r in readings if r.allows is not None and r.status is not Status.UNKNOWN]
    if not bounded:
        return None, None
    # On a tie, the limit that fails the target comes first, then registry order.
    binding = min(bounded, key=lambda r: (r.allows, r.status is Status.OK))
    return binding.allows, binding


def check(
    host: Host,
    target: Target,
    *,
    limits: Sequence[Limit] | None = None,
    cost: ThreadCost | None = None,
    unit: Unit | None = None,
    known: dict[str, Any] | None = None,
) -> Assessment:
    """Read every limit of *host* for *target* (read-only) and assess them.

    *limits*: these instead of the registry's (watch reads a few); *known*: facts already
    read (Inspection).
    """
    if limits is None:
        from sysprep.limits import ALL_LIMITS  # the registry imports every thread limit

        limits = ALL_LIMITS if target.threads else ()
        if target.connections:
            from sysprep.limits.network import NETWORK_LIMITS

            limits = (*limits, *NETWORK_LIMITS)
    inspection = Inspection(host, target, cost, unit, known=known)
    if target.threads and inspection.child_pid_namespace:
        from sysprep.limits.sysctl import ParentPidMax

        limits = _after(limits, "kernel.pid_max", ParentPidMax())
    runtime = inspection.shape.runtime
    if target.threads and runtime.name == "go":
        from sysprep.limits.runtime import GoMaxThreads

        limits = _after(limits, "vm.max_map_count", GoMaxThreads())
    readings = tuple(_read(limit, inspection) for limit in limits)
    capacity, binding = assess([r for r in readings if r.unit == "threads"])
    connections, connections_binding = assess([r for r in readings if r.unit == "connections"])
    connection_bytes = None
    if target.connections:
        from sysprep.limits.network import connection_cost

        connection_bytes = connection_cost(inspection)
    try:
        stack = inspection.shape.stack_bytes
        per_thread: ThreadCost | None = thread_cost(inspection)
    except (OSError, ValueError, KeyError):
        stack, per_thread = target.stack_bytes or 0, None
    return Assessment(
        target,
        stack,
        readings,
        capacity,
        binding,
        per_thread,
        connections,
        connections_binding,
        connection_bytes,
        runtime,
        _own_threads(inspection) if target.threads else 0,
        _other_rlimits(inspection),
    )


# The rlimits a thread count never depends on, shown for the applications that check them.
_OTHER_RLIMITS = ("RLIMIT_FSIZE", "RLIMIT_MEMLOCK")


def _other_rlimits(
    inspection: Inspection,
) -> tuple[tuple[str, tuple[int | None, int | None]], ...]:
    """The judged process's _OTHER_RLIMITS, those that can be read."""
    try:
        rlimits = inspection.rlimits
    except (OSError, ValueError):
        return ()
    return tuple((name, rlimits[name]) for name in _OTHER_RLIMITS if name in rlimits)


def _after(limits: Sequence[Limit], name: str, limit: Limit) -> tuple[Limit, ...]:
    """*limits* with *limit* after the one named *name* (the README's order), else last."""
    names = [each.name for each in limits]
    at = names.index(name) + 1 if name in names else len(limits)
    return (*limits[:at], limit, *limits[at:])


def _own_threads(inspection: Inspection) -> int:
    """The runtime's own threads, for the report; 0 when the CPUs could not be read.

    The limits that count them then say so, as unknown.
    """
    try:
        return inspection.shape.runtime_threads
    except OSError:
        return 0


def _read(limit: Limit, inspection: Inspection) -> Reading:
    try:
        reading = limit.read(inspection)
    except (OSError, ValueError, KeyError, IndexError) as error:
        reading = unknown(limit.name, error, limit.unit)
    return reading._replace(counts=limit.counts, limit=limit)
