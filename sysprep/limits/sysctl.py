"""Host-wide sysctls that bound threads: kernel.threads-max, kernel.pid_max, vm.max_map_count."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sysprep.facts import PID_MAX_LIMIT
from sysprep.facts import RESERVED_PIDS
from sysprep.limits.base import Reading
from sysprep.limits.base import Status
from sysprep.limits.base import measured
from sysprep.runtimes import JVM_MAP_MARGIN
from sysprep.settings import Fix
from sysprep.settings.sysctl import SysctlSetting

if TYPE_CHECKING:
    from sysprep.limits.inspection import Inspection
    from sysprep.pidns import Level


def sysctl_minus_in_use(
    name: str, inspection: Inspection, in_use: int, *, unit: str = "threads"
) -> Reading:
    """A sysctl bounding a count that is partly used already: headroom is the rest.

    The fix raises it to what is in use plus the target, as far as the kernel's maximum.
    """
    limit = inspection.host.sysctl_int(name)
    wanted = inspection.target.threads if unit == "threads" else inspection.target.connections
    needed = in_use + (wanted or 0)
    setting = SysctlSetting(name)
    return measured(
        name,
        inspection.target,
        current=limit,
        in_use=in_use,
        allows=limit - in_use,
        needed=needed,
        fix=setting.fix_within(
            needed,
            current=limit,
            reach=setting.bounds[1] - in_use,
            where=inspection.sysctl_where(name),
        ),
        unit=unit,
    )


class ThreadsMax:
    """kernel.threads-max: clone fails once the tasks of the whole host reach it, root included."""

    name = "kernel.threads-max"
    unit = "threads"
    counts = "threads"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is threads-max minus every task on the host (/proc/loadavg)."""
        in_use = inspection.host.tasks_total() + inspection.shape.runtime_threads
        return sysctl_minus_in_use(self.name, inspection, in_use)


class PidMax:
    """kernel.pid_max: every thread takes a pid number, handed out from [300, pid_max)."""

    name = "kernel.pid_max"
    unit = "threads"
    counts = "threads"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is the pid numbers in [300, pid_max) that no task holds.

        Counted from the kernel's own task total, not by listing every thread (5 µs each):
        less the few pids below 300, and less the processes at or above a lowered pid_max.
        A thread above it whose leader is below still counts: the estimate errs safe.
        Tasks hidden from us (hidepid) are counted in the range.
        """
        if inspection.child_pid_namespace:
            return _in_namespace(self.name, inspection)
        limit = inspection.host.sysctl_int(self.name)
        host = inspection.host
        early = host.pids_taken(1, RESERVED_PIDS)
        held_anywhere = host.tasks_total() - early + inspection.shape.runtime_threads
        above = host.threads_of_processes_from(limit) if limit < PID_MAX_LIMIT else 0
        in_use = held_anywhere - above
        note = _in_use_note(early, above)
        needed = RESERVED_PIDS + held_anywhere + inspection.target.threads
        reach = PID_MAX_LIMIT - RESERVED_PIDS - held_anywhere
        reading = measured(
            self.name,
            inspection.target,
            current=limit,
            in_use=in_use,
            allows=limit - RESERVED_PIDS - in_use,
            room=limit - RESERVED_PIDS - in_use,  # the pids below 300 are never handed out
            needed=needed,
            fix=SysctlSetting(self.name).fix_within(
                needed, current=limit, reach=reach, where=inspection.sysctl_where(self.name)
            ),
            note=note,
        )
        return _tightest_level(reading, inspection) if inspection.pid_levels else reading


def _in_use_note(early: int, above: int) -> str:
    """Why pid_max's "in use" is below threads-max's: tasks whose pids it never hands out."""
    parts = []
    if early:
        parts.append(f"{early:,} tasks hold pids below {RESERVED_PIDS} (kernel threads)")
    if above:
        parts.append(f"{above:,} threads hold pids at or above it")
    if not parts:
        return ""
    return f"in use counts pids in [{RESERVED_PIDS}, pid_max): {'; '.join(parts)}"


def _level_allows(level: Level, threads: int) -> tuple[int, int]:
    """More threads a pid namespace level allows, and the pid_max *threads* more need there.

    Its allocator's rule: on the first pass (ns_last_pid < 300) every number above the last;
    after, the numbers in [300, pid_max) no task holds.
    """
    if level.last_pid < RESERVED_PIDS:
        return level.pid_max - 1 - level.last_pid, level.last_pid + 1 + threads
    held = level.tasks - level.early
    return level.pid_max - RESERVED_PIDS - held, RESERVED_PIDS + held + threads


def _tightest_level(host_level: Reading, inspection: Inspection) -> Reading:
    """--pid of a process in pid namespaces below ours: each level binds too (Linux 6.14+).

    The reading is the tightest level's; the note says which, and what the host's allows.
    """
    threads = inspection.target.threads
    worst = min(inspection.pid_levels, key=lambda level: _level_allows(level, threads)[0])
    allows, needed = _level_allows(worst, threads)
    if host_level.allows is not None and host_level.allows <= allows:
        levels = ", ".join(f"{level.pid_max:,}" for level in inspection.pid_levels)
        return host_level._replace(
            note=f"the host's binds; the pid namespaces' own pid_max: {levels}"
        )
    where = f"pid namespace {worst.inode} (level {worst.depth} of {len(inspection.pid_levels)})"
    return measured(
        host_level.name,
        inspection.target,
        current=worst.pid_max,
        in_use=worst.tasks,
        allows=allows,
        room=allows,
        needed=needed,
        fix=Fix(
            setting=f"kernel.pid_max of {where}",
            value=min(needed, PID_MAX_LIMIT),
            now=(
                f"nsenter --target {worst.member} --pid sh -c"
                f" 'echo {min(needed, PID_MAX_LIMIT)} > /proc/sys/kernel/pid_max'"
            ),
            persist="set it where the pid namespace is made (the container's start-up)",
            takes_effect="now",
        ),
        note=f"{where}: its own pid_max binds; the host's allows {host_level.allows:,}",
    )


def _in_namespace(name: str, inspection: Inspection) -> Reading:
    """pid_max of this pid namespace: its own tasks, and its allocator's own rule.

    /proc/loadavg counts the whole host's tasks; here only this namespace's hold its pids.
    While fewer than 300 pids were ever handed out (ns_last_pid < 300) the allocator has not
    wrapped, and it hands out every number above the last, those below 300 included
    (kernel/pid.c alloc_pid); after that, the host's rule.
    """
    host = inspection.host
    limit = host.sysctl_int(name)
    last = host.sysctl_int("kernel.ns_last_pid")
    tasks = host.threads_of_processes_from(1)  # this namespace's, and those below it
    if last < RESERVED_PIDS:  # few tasks, so listing their tids costs nothing
        above = (
            sum(1 for tid in host.thread_ids() if tid > last) + inspection.shape.runtime_threads
        )
        allows, needed = limit - 1 - last - above, last + 1 + above + inspection.target.threads
    else:
        held = tasks - host.pids_taken(1, RESERVED_PIDS) + inspection.shape.runtime_threads
        beyond = host.threads_of_processes_from(limit) if limit < PID_MAX_LIMIT else 0
        allows = limit - RESERVED_PIDS - (held - beyond)
        needed = RESERVED_PIDS + held + inspection.target.threads
    return measured(
        name,
        inspection.target,
        current=limit,
        in_use=tasks,
        allows=allows,
        room=allows,
        needed=needed,
        fix=SysctlSetting(name).fix(min(needed, PID_MAX_LIMIT)),
        note="this pid namespace's own (Linux >= 6.14); its parents' pid_max bind too",
    )


class ParentPidMax:
    """kernel.pid_max of the parent pid namespaces: each thread takes a pid at every level."""

    name = "kernel.pid_max (parent namespaces)"
    unit = "threads"
    counts = "threads"

    def read(self, inspection: Inspection) -> Reading:  # noqa: ARG002 - nothing to read
        """Unknown from inside: neither the host's pid_max nor its pids in use show here."""
        return Reading(
            self.name,
            Status.UNKNOWN,
            note=(
                "cannot be read from inside a pid namespace: run `sysprep check --pid PID`"
                " on the host, where kernel.pid_max and its tasks are the parent level's"
            ),
        )


class MaxMapCount:
    """vm.max_map_count: mappings per process; each thread stack adds 1 or 2."""

    name = "vm.max_map_count"
    unit = "threads"
    counts = "mappings"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is the mappings left in the judged process over mappings per thread.

        Without --pid, the process is a small one of the judged runtime, as it starts.
        """
        limit = inspection.host.sysctl_int(self.name)
        runtime = inspection.shape.runtime
        in_use = runtime.baseline_maps() if inspection.target.pid is None else inspection.mappings
        per_thread = inspection.shape.maps_per_thread
        needed = in_use + per_thread * inspection.target.threads
        note = f"{per_thread} mappings per thread"
        if runtime.name == "jvm":
            needed += JVM_MAP_MARGIN
            note += f"; the fix leaves the JVM {JVM_MAP_MARGIN:,} more for its heap and files"
        if runtime.at_map_limit():
            note += f"; {runtime.at_map_limit()}"
        return measured(
            self.name,
            inspection.target,
            current=limit,
            in_use=in_use,
            allows=(limit - in_use) // per_thread if per_thread else None,
            needed=needed,
            fix=SysctlSetting(self.name).fix_within(
                needed,
                current=limit,
                reach=(SysctlSetting(self.name).bounds[1] - in_use) // max(per_thread, 1),
                where=inspection.sysctl_where(self.name),
            ),
            note=note,
        )
