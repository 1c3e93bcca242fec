"""What a limit is asked (Target) and what it reports (Reading): the model every view shows.

check renders its readings as a table and JSON, watch as their movement over time, explain
as evidence, the Prometheus textfile as metrics: one set of readings, many views. What a
limit reads is limits/inspection.py; what one thread takes, limits/shape.py.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING
from typing import NamedTuple

if TYPE_CHECKING:
    from typing import Protocol

    from sysprep.limits.inspection import Inspection
    from sysprep.settings import Fix

    # Only a type: check calls read() on whatever the registry holds; building a Protocol
    # class at import would cost `sysprep check` its start-up time.
    class Limit(Protocol):
        """A limit on thread (or connection) count: reads itself, never changes anything."""

        name: str
        unit: str  # what its `allows` counts: threads or connections
        counts: str  # what its current and in-use values count: threads, mappings, bytes...

        def read(self, inspection: Inspection) -> Reading:
            """Current value, in use, threads allowed, and the fix when it stops the target."""
            ...


class Status(str, Enum):
    """ok: allows the target; fails: stops it; unknown: could not be read (never a pass)."""

    OK = "ok"
    FAILS = "fails"
    UNKNOWN = "unknown"


class Target(NamedTuple):
    """What the host must do: threads in process *pid*, and TCP connections.

    *connections* are accepted by the process (a server), or opened from *sources* source
    addresses to one destination (a load generator).
    """

    threads: int  # 0: only connections are judged
    stack_bytes: int | None = None  # None: what glibc picks from RLIMIT_STACK
    pid: int | None = None  # None: a new process started by the caller
    connections: int | None = None
    sources: int | None = None  # None: the process accepts them (a server)
    runtime: str | None = None  # c, jvm, rust, go; None: recognised in the pid, else c
    runtime_from: str = "--runtime"  # or "profile": where *runtime* was given


class Reading(NamedTuple):
    """One limit on one host: its value, what is in use, and how many more threads it allows.

    *current*, *in_use*, *needed* and *room* are in the limit's own units (*counts*: threads,
    mappings, fds, bytes...); *allows* in threads, or connections (*unit*).
    """

    name: str
    status: Status
    current: int | None = None  # None: unlimited (or unknown, see status)
    in_use: int | None = None
    allows: int | None = None  # more threads this limit allows; None: it cannot bind
    needed: int | None = None  # the value this limit needs for the target
    fix: Fix | None = None
    note: str = ""
    unit: str = "threads"  # what `allows` counts: threads or connections
    counts: str = "threads"  # what current, in use, needed and room count (the limit's)
    room: int | None = None  # what is left before it binds; None: it cannot bind, or unknown
    # Each level of the judged process's pids cgroup: its path in the hierarchy (as the
    # kernel log names it), where it is here, and the forks it already refused (pids.events).
    events: tuple[tuple[str, str, int], ...] = ()
    limit: Limit | None = None  # the limit that made this reading (set by capacity.check)

    @property
    def in_bytes(self) -> bool:
        """True when current, in use and needed are bytes."""
        return self.counts == "bytes"

    @property
    def ratio(self) -> float | None:
        """The share of the limit still free, 0 to 1; None where it cannot bind or is unknown."""
        if self.room is None or self.in_use is None or self.status is Status.UNKNOWN:
            return None
        total = self.room + self.in_use
        return None if total <= 0 else min(max(self.room / total, 0.0), 1.0)

    def made_by(self, kind: type) -> bool:
        """True when a limit of class *kind* made this reading (lookups by object, not name)."""
        return isinstance(self.limit, kind)


def unbounded(name: str, target: Target, note: str, *, unit: str = "threads") -> Reading:
    """A limit with nothing to bind on this host (not set, not loaded): ok, *note* says why."""
    return measured(name, target, current=None, in_use=None, allows=None, note=note, unit=unit)


def measured(
    name: str,
    target: Target,
    *,
    current: int | None,
    in_use: int | None,
    allows: int | None,
    needed: int | None = None,
    fix: Fix | None = None,
    note: str = "",
    unit: str = "threads",
    room: int | None = None,
    events: tuple[tuple[str, str, int], ...] = (),
) -> Reading:
    """A Reading whose status follows from *allows*; the fix is kept only when it is needed.

    *room* (what is left, in the limit's units) defaults to current - in use, where the
    limit can bind.
    """
    wanted = target.connections or 0 if unit == "connections" else target.threads
    ok = allows is None or allows >= wanted
    if room is None and None not in (allows, current, in_use):
        room = current - in_use  # type: ignore[operator]
    return Reading(
        name,
        Status.OK if ok else Status.FAILS,
        current=current,
        in_use=in_use,
        allows=None if allows is None else max(allows, 0),
        needed=needed,
        fix=None if ok else fix,
        note=note,
        unit=unit,
        room=None if room is None or allows is None else max(room, 0),
        events=events,
    )


def unknown(name: str, error: Exception, unit: str = "threads") -> Reading:
    """A limit that could not be read; it makes the host "not ready" until it can be."""
    return Reading(name, Status.UNKNOWN, note=f"could not read: {reason_of(error)}", unit=unit)


def reason_of(error: Exception) -> str:
    """Why a read failed, in words: "Permission denied: /proc/1/maps"; never "None: None"."""
    if isinstance(error, OSError):
        words = error.strerror or type(error).__name__
        return f"{words}: {error.filename}" if error.filename else words
    return str(error) or type(error).__name__
