"""`sysprep watch`: a running process's headroom on every limit, as it moves.

Cheap enough to run every second beside a process with 100,000 threads: the kernel's own
counts (Threads:, /proc/loadavg, pids.current, the fd directory) and psutil for the process;
never a walk over its threads. Its mappings are counted every MAPS_EVERY seconds, and in
between estimated from its new threads (mappings per thread stack).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from typing import NamedTuple

from sysprep.facts import RESERVED_PIDS

if TYPE_CHECKING:
    from sysprep.host import Host

MAPS_EVERY = 10.0  # seconds between two real counts of a big process's mappings


class Row(NamedTuple):
    """One limit now: what it allows, what is used, in what."""

    limit: str
    used: int
    limit_value: int | None  # None: unlimited
    counts: str  # threads, mappings, fds, bytes

    @property
    def headroom(self) -> int | None:
        """What is left; None when unlimited."""
        return None if self.limit_value is None else self.limit_value - self.used

    @property
    def headroom_pct(self) -> float | None:
        """What is left, in % of the limit."""
        if self.limit_value is None or self.limit_value <= 0:
            return None
        return 100.0 * max(self.limit_value - self.used, 0) / self.limit_value


class Sample(NamedTuple):
    """Every row at one moment."""

    at: float
    rows: tuple[Row, ...]


class Trend(NamedTuple):
    """A row with how fast it moves and how long it lasts at that pace."""

    row: Row
    per_second: float | None
    seconds_left: float | None


class Watcher:
    """Samples one process (or the shell's next one) again and again."""

    def __init__(self, host: Host, pid: int) -> None:
        import psutil  # only watch needs it: off check's import path

        self.host = host
        self.pid = pid
        self.process = psutil.Process(pid)
        self._maps: tuple[float, int, int] | None = None  # when, mappings, threads then

    def sample(self) -> Sample:
        """Every limit's use now."""
        host, process = self.host, self.process
        threads = process.num_threads()
        tasks = host.tasks_total()
        rows = [
            Row("kernel.threads-max", tasks, host.sysctl_int("kernel.threads-max"), "threads"),
            Row(
                "kernel.pid_max",
                tasks - host.pids_taken(1, RESERVED_PIDS),
                host.sysctl_int("kernel.pid_max") - RESERVED_PIDS,
                "threads",
            ),
        ]
        rows += self._pids_rows()
        soft_nproc = process.rlimit(_resource("RLIMIT_NPROC"))[0]
        uid = process.uids().real
        if soft_nproc >= 0 and uid != 0:
            rows.append(Row("RLIMIT_NPROC", _tasks_of(host, uid), soft_nproc, "threads"))
        rows.append(
            Row(
                "vm.max_map_count",
                self._mappings(threads),
                host.sysctl_int("vm.max_map_count"),
                "mappings",
            )
        )
        soft_nofile = process.rlimit(_resource("RLIMIT_NOFILE"))[0]
        rows.append(
            Row(
                "RLIMIT_NOFILE", process.num_fds(), None if soft_nofile < 0 else soft_nofile, "fds"
            )
        )
        meminfo = host.meminfo()
        rows.append(
            Row(
                "memory",
                meminfo["MemTotal"] - meminfo["MemAvailable"],
                meminfo["MemTotal"],
                "bytes",
            )
        )
        return Sample(time.monotonic(), tuple(rows))

    def _pids_rows(self) -> list[Row]:
        levels = self.host.cgroup_levels(self.pid, "pids") or []
        tightest: Row | None = None
        for level in levels:
            try:
                text = (level / "pids.max").read_text().strip()
                current = int((level / "pids.current").read_text())
            except OSError:  # a level without the controller has no limit
                continue
            if text == "max":
                continue
            row = Row("pids.max", current, int(text), "threads")
            if tightest is None or (row.headroom or 0) < (tightest.headroom or 0):
                tightest = row
        return [tightest] if tightest else []

    def _mappings(self, threads: int) -> int:
        """Counted every MAPS_EVERY seconds; in between, 2 more per new thread stack."""
        now = time.monotonic()
        if self._maps is None or now - self._maps[0] >= MAPS_EVERY:
            self._maps = (now, self.host.maps(self.pid).mappings, threads)
        _, counted, threads_then = self._maps
        return counted + 2 * (threads - threads_then)


def trends(before: Sample | None, now: Sample) -> list[Trend]:
    """Each row with its rate since *before* and the seconds left at that rate."""
    previous = {row.limit: row for row in before.rows} if before else {}
    result = []
    for row in now.rows:
        old = previous.get(row.limit)
        if before is None or old is None or now.at <= before.at:
            result.append(Trend(row, None, None))
            continue
        rate = (row.used - old.used) / (now.at - before.at)
        left = row.headroom / rate if rate > 0 and row.headroom is not None else None
        result.append(Trend(row, rate, left))
    return result


def warnings(sample: Sample, warn_pct: float) -> list[Row]:
    """The rows with less headroom than *warn_pct* % of their limit."""
    return [r for r in sample.rows if r.headroom_pct is not None and r.headroom_pct < warn_pct]


def _tasks_of(host: Host, uid: int) -> int:
    total = 0
    for pid in host.pids():
        try:
            status = host.status(pid)
            if int(status["Uid"].split()[0]) == uid:
                total += int(status["Threads"])
        except (OSError, KeyError, ValueError):  # noqa: PERF203 - exited while we looked
            continue
    return total


def _resource(name: str) -> int:
    import psutil

    return int(getattr(psutil, name))
