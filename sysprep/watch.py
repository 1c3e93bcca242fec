"""`sysprep watch`: a running process's headroom on every limit, as it moves.

A view of check's own model: each refresh reads the same limits (limits/) through the same
Inspection, so watch and `check --pid` show the same current value and the same in-use count
at the same moment; watch adds the rate and the time left. Cheap enough to run every second
beside a process with 100,000 threads: the kernel's own counts (Threads:, /proc/loadavg,
pids.current, the fd directory), never a walk over its threads. Its mappings are counted
every MAPS_EVERY seconds and in between estimated from its new threads; its runtime is
recognised once.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

from sysprep.capacity import check
from sysprep.errors import BadInputError
from sysprep.errors import GoneError
from sysprep.limits.base import Status
from sysprep.limits.base import Target
from sysprep.limits.cgroup import PidsMax
from sysprep.limits.memory import MemAvailable
from sysprep.limits.memory import MemoryCgroup
from sysprep.limits.network import Nofile
from sysprep.limits.rlimit import Nproc
from sysprep.limits.sysctl import MaxMapCount
from sysprep.limits.sysctl import PidMax
from sysprep.limits.sysctl import ThreadsMax

if TYPE_CHECKING:
    from sysprep.host import Host
    from sysprep.limits.base import Reading
    from sysprep.runtimes import RuntimeUse

MAPS_EVERY = 10.0  # seconds between two real counts of a big process's mappings
DAY = 86400.0  # the longest --interval: a refresh a day
# The limits a running process uses up as it grows: its threads, mappings, fds and memory.
# check adds kernel.pid_max of the parent namespaces and Go's own limit where they apply.
WATCHED = (
    ThreadsMax(),
    PidMax(),
    PidsMax(),
    Nproc(),
    MaxMapCount(),
    Nofile(),
    MemAvailable(),
    MemoryCgroup(),
)


class Sample(NamedTuple):
    """Every watched limit's reading at one moment, of process *pid*.

    *note*: a line to show with it (the service's main pid changed since the last sample).
    """

    at: float
    readings: tuple[Reading, ...]
    pid: int = 0
    note: str = ""

    @property
    def shown(self) -> tuple[Reading, ...]:
        """The readings with a use to follow: read, and counting something in use."""
        return tuple(
            r for r in self.readings if r.status is not Status.UNKNOWN and r.in_use is not None
        )

    @property
    def unknown(self) -> tuple[Reading, ...]:
        """The limits that could not be read, each with its reason."""
        return tuple(r for r in self.readings if r.status is Status.UNKNOWN)


class Trend(NamedTuple):
    """A reading with how fast its use moves and how long its room lasts at that pace."""

    reading: Reading
    per_second: float | None
    seconds_left: float | None


class Watcher:
    """Samples one running process again and again; a service's, whatever its main pid is.

    With *unit*, a restarted service is followed to its new main pid; a process that has
    exited, with no service to follow, is a GoneError (one line, exit 1).
    """

    def __init__(self, host: Host, pid: int, unit: str | None = None) -> None:
        self.host = host
        self.unit = unit
        self._follow(pid)

    @property
    def label(self) -> str:
        """What the Prometheus lines say of it: its service, or ""."""
        return self.unit or ""

    def _follow(self, pid: int) -> None:
        self.pid = pid
        self.started = self.host.process_start(pid)
        self._runtime: RuntimeUse | None = None
        self._maps: tuple[float, int, int] | None = None  # when, mappings, threads then

    def _alive(self) -> bool:
        """True while the process at our pid is still the one we watch (not reused)."""
        try:
            state = self.host.status(self.pid).get("State", "")
            return self.host.process_start(self.pid) == self.started and not state.startswith("Z")
        except OSError:
            return False

    def _next_pid(self) -> str:
        """Follow the service to its new main pid; the line saying so. GoneError if none."""
        gone = f"pid {self.pid} has exited"
        if self.unit is not None:
            from sysprep.systemd import read_unit

            service = read_unit(self.host, self.unit)
            if service.running and service.main_pid is not None:
                old, pid = self.pid, service.main_pid
                self._follow(pid)
                return f"{service.name}: pid {old} has exited; following its main pid {pid}"
            raise GoneError(f"{gone}: {service.name} is not running; nothing left to watch")
        raise GoneError(f"{gone}: nothing left to watch")

    def sample(self) -> Sample:
        """Every watched limit now, as check reads it."""
        note = "" if self._alive() else self._next_pid()
        now = time.monotonic()
        known: dict[str, Any] = {}
        if self._runtime is not None:
            known["runtime"] = self._runtime
            known["mappings"] = self._mappings(now, self._runtime)
        target = Target(threads=1, pid=self.pid, connections=1)
        assessment = check(self.host, target, limits=WATCHED, known=known)
        self._runtime = assessment.runtime
        if self._maps is None and self._runtime is not None:  # counted by this first read
            self._remember_maps(now, assessment.readings)
        return Sample(now, assessment.readings, self.pid, note)

    def _mappings(self, now: float, runtime: RuntimeUse) -> int:
        """Counted every MAPS_EVERY seconds; in between, the new threads' mappings added."""
        threads = int(self.host.status(self.pid)["Threads"])
        if self._maps is None or now - self._maps[0] >= MAPS_EVERY:
            self._maps = (now, self.host.maps(self.pid).mappings, threads)
        _, counted, threads_then = self._maps
        per_thread = runtime.maps_per_thread(2)  # glibc's worst case between two counts
        return counted + per_thread * (threads - threads_then)

    def _remember_maps(self, now: float, readings: tuple[Reading, ...]) -> None:
        maps = next((r for r in readings if r.made_by(MaxMapCount)), None)
        if maps is not None and maps.in_use is not None:
            self._maps = (now, maps.in_use, int(self.host.status(self.pid)["Threads"]))


def watcher_for(
    host: Host, *, pid: int | None, unit: str | None, interval: float, warn: float
) -> Watcher:
    """A Watcher of --pid or of --unit's main pid; BadInputError for options it cannot use."""
    if (pid is None) == (unit is None):
        raise BadInputError("watch needs one of --pid or --unit")
    if not math.isfinite(interval) or interval > DAY:
        raise BadInputError(f"invalid --interval {interval}: seconds, from 0.1 to {DAY:,.0f}")
    if not math.isfinite(warn):
        raise BadInputError(f"invalid --warn {warn}: a percentage from 0 to 100")
    name = None
    if unit is not None:
        from sysprep.systemd import read_unit

        service = read_unit(host, unit)
        if not service.running or service.main_pid is None:
            raise BadInputError(f"{service.name} is not running: nothing to watch")
        pid, name = service.main_pid, service.name
    assert pid is not None  # noqa: S101 - one of the two was given
    host.require_process(pid)
    return Watcher(host, pid, name)


def trends(before: Sample | None, now: Sample) -> list[Trend]:
    """Each shown reading with its rate since *before* and the seconds left at that rate."""
    previous = {_identity(r): r for r in before.shown} if before else {}
    result = []
    for reading in now.shown:
        old = previous.get(_identity(reading))
        if before is None or old is None or old.in_use is None or now.at <= before.at:
            result.append(Trend(reading, None, None))
            continue
        rate = ((reading.in_use or 0) - old.in_use) / (now.at - before.at)
        room = reading.room
        left = room / rate if rate > 0 and room is not None else None
        result.append(Trend(reading, rate, left))
    return result


def warnings(sample: Sample, warn_pct: float) -> list[Reading]:
    """The readings with less room than *warn_pct* % of their limit."""
    return [r for r in sample.shown if r.ratio is not None and 100 * r.ratio < warn_pct]


def _identity(reading: Reading) -> tuple[type, str]:
    """The same limit in two samples: by its class (and name, for several of one class)."""
    return type(reading.limit), reading.name
