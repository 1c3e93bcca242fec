"""What a limit reads (Inspection), what it reports (Reading) and how to lift it (Fix)."""

from __future__ import annotations

import re
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING
from typing import NamedTuple

from sysprep.environment import INIT_PID_NS
from sysprep.environment import INIT_USER_NS
from sysprep.environment import detect
from sysprep.environment import sysctl_where
from sysprep.facts import ARCH_STACK_DEFAULT
from sysprep.facts import CAP_SYS_ADMIN
from sysprep.facts import CAP_SYS_RESOURCE
from sysprep.facts import PID_MAX_PER_NAMESPACE
from sysprep.facts import PTHREAD_STACK_MIN
from sysprep.units import MIB

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Protocol

    from sysprep.environment import Environment
    from sysprep.host import Host
    from sysprep.limits.cost import ThreadCost
    from sysprep.pidns import Level
    from sysprep.runtimes import RuntimeUse
    from sysprep.settings import Fix
    from sysprep.systemd import Unit

    # Only a type: check calls read() on whatever the registry holds; building a Protocol
    # class at import would cost `sysprep check` its start-up time.
    class Limit(Protocol):
        """A limit on thread (or connection) count: reads itself, never changes anything."""

        name: str
        unit: str  # what its `allows` counts: threads or connections
        in_bytes: bool  # its current, in use and needed values are bytes (else counts)

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
    """One limit on one host: its value, what is in use, and how many more threads it allows."""

    name: str
    status: Status
    current: int | None = None  # None: unlimited (or unknown, see status)
    in_use: int | None = None
    allows: int | None = None  # more threads this limit allows; None: it cannot bind
    needed: int | None = None  # the value this limit needs for the target
    fix: Fix | None = None
    note: str = ""
    unit: str = "threads"  # what `allows` counts: threads or connections
    in_bytes: bool = False  # current, in use and needed are bytes (the limit's in_bytes)


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
) -> Reading:
    """A Reading whose status follows from *allows*; the fix is kept only when it is needed."""
    wanted = target.connections or 0 if unit == "connections" else target.threads
    ok = allows is None or allows >= wanted
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
    )


def unknown(name: str, error: Exception, unit: str = "threads") -> Reading:
    """A limit that could not be read; it makes the host "not ready" until it can be."""
    reason = f"{error.strerror}: {error.filename}" if isinstance(error, OSError) else str(error)
    return Reading(name, Status.UNKNOWN, note=f"could not read: {reason}", unit=unit)


class Inspection:
    """What one check reads: the host, the judged process and the target; each fact read once.

    Without a pid, the judged process is a new one the caller starts, and sysprep stands in
    for it: same rlimits and cgroup, and a Python's size (a little more than a C program's:
    those limits err safe). Its mappings are those a program of the judged runtime holds at
    start, and its runtime's own threads count as in use (runtimes.RuntimeUse).
    """

    def __init__(
        self, host: Host, target: Target, cost: ThreadCost | None = None, unit: Unit | None = None
    ) -> None:
        self.host = host
        self.target = target
        # A systemd service judged as it will run: not running, systemd's values stand in
        # for the process's (its rlimits, its uid, its slice); running, target.pid is its own.
        self.unit = unit
        self.unit_stopped = unit is not None and not unit.running
        # Per-thread and per-connection memory: --calibrate's measure, else estimated on first
        # use (memory.thread_cost, network.connection_cost) and kept: several limits need them.
        self.thread_cost: ThreadCost | None = cost
        self.connection_bytes: int | None = None
        self.proc: int | str = target.pid if target.pid is not None else "self"

    @cached_property
    def status(self) -> dict[str, str]:
        """/proc/PID/status of the judged process."""
        return self.host.status(self.proc)

    @cached_property
    def rlimits(self) -> dict[str, tuple[int | None, int | None]]:
        """Soft and hard rlimits of the judged process (a stopped service's: systemd's)."""
        if self.unit is not None and self.unit_stopped:
            return {**self.host.rlimits(self.proc), **self.unit.rlimits}
        return self.host.rlimits(self.proc)

    def cgroup_levels(self, controller: str) -> list[Path] | None:
        """The judged process's *controller* cgroup levels; a stopped service's slice's."""
        if self.unit is not None and self.unit_stopped:
            from sysprep.systemd import slice_path

            return self.host.cgroup_levels(self.proc, controller, slice_path(self.unit.slice))
        return self.host.cgroup_levels(self.proc, controller)

    @cached_property
    def real_uid(self) -> int:
        """Real uid: RLIMIT_NPROC counts threads per real uid (a stopped service's User=)."""
        if self.unit is not None and self.unit_stopped:
            return self.unit.uid
        return int(self.status["Uid"].split()[0])

    @cached_property
    def pid_levels(self) -> list[Level]:
        """The pid namespaces of the --pid process below ours, each with its pid_max.

        Only on the live host, for a kernel (>= 6.14) where each has a pid_max of its own.
        OSError when they cannot be read (it takes root): never a silent pass.
        """
        if self.target.pid is None or not self.host.is_live:
            return []
        if _version(self.host.kernel_release()) < PID_MAX_PER_NAMESPACE:
            return []
        own = self.host.namespace("pid")
        if self.host.namespace("pid", self.target.pid) == own:
            return []
        from sysprep.pidns import levels

        try:
            return levels(self.target.pid)
        except PermissionError as error:
            raise OSError(
                error.errno, "the pid namespaces of the process (root reads them)", "setns"
            ) from None

    @cached_property
    def environment(self) -> Environment:
        """Where this check runs: on a host, or in a container."""
        return detect(self.host)

    def sysctl_where(self, name: str) -> str:
        """Where sysctl *name* can be set from here: "here", or only on the "host"."""
        return sysctl_where(name, self.environment, own_pid_namespace=self.child_pid_namespace)

    @cached_property
    def namespaced(self) -> bool:
        """True when the judged process runs in a pid or user namespace but the initial ones."""
        pid_ns, user_ns = (
            self.host.namespace("pid", self.proc),
            self.host.namespace("user", self.proc),
        )
        return pid_ns not in (None, INIT_PID_NS) or user_ns not in (None, INIT_USER_NS)

    @cached_property
    def nproc_exempt(self) -> bool:
        """Global root, CAP_SYS_RESOURCE or CAP_SYS_ADMIN skip RLIMIT_NPROC (kernel/fork.c).

        Global: uid 0 and capabilities of the initial user namespace only; root of a
        user-namespaced container is counted like anyone.
        """
        user_ns = self.host.namespace("user", self.proc)
        if user_ns not in (None, INIT_USER_NS):
            return False
        if self.unit_stopped:  # systemd starts it with no capabilities unless it says so
            return self.real_uid == 0
        caps = int(self.status["CapEff"], 16)
        return self.real_uid == 0 or bool(caps & (1 << CAP_SYS_RESOURCE | 1 << CAP_SYS_ADMIN))

    @cached_property
    def child_pid_namespace(self) -> bool:
        """True when the judged process is in this reader's own child pid namespace.

        Only on a kernel (>= 6.14) that gives each pid namespace its own pid_max.
        """
        own = self.host.namespace("pid")
        if own is None or own == INIT_PID_NS:
            return False
        if _version(self.host.kernel_release()) < PID_MAX_PER_NAMESPACE:
            return False
        return self.target.pid is None or self.host.namespace("pid", self.target.pid) == own

    @cached_property
    def tasks_by_uid(self) -> dict[int, int]:
        """Tasks (threads included) per real uid, from /proc/*/status; read only when needed."""
        by_uid: dict[int, int] = {}
        for pid in self.host.pids():
            try:
                status = self.host.status(pid)
                uid, threads = int(status["Uid"].split()[0]), int(status["Threads"])
            except (OSError, KeyError):  # the process exited while we looked
                continue
            by_uid[uid] = by_uid.get(uid, 0) + threads
        return by_uid

    @cached_property
    def open_fds(self) -> int:
        """File descriptors the judged process holds (/proc/PID/fd)."""
        return len(self.host.fds(self.proc))

    @cached_property
    def page_size(self) -> int:
        """Base page size; also glibc's default guard size."""
        return self.host.page_size()

    @cached_property
    def arch(self) -> str:
        """Machine architecture (uname -m)."""
        return self.host.arch()

    @cached_property
    def runtime(self) -> RuntimeUse:
        """The runtime judged (C, JVM, Rust, Go): given, or recognised in the program.

        The program is the --pid process, or the stopped --unit's ExecStart.
        """
        from sysprep import runtimes

        target, program = self.target, None
        if target.pid is not None:
            program = runtimes.running_program(self.host, target.pid)
        elif self.unit is not None and self.unit_stopped:
            program = self.unit.program(self.host)
        return runtimes.choose(self.host, target.runtime, target.runtime_from, program)

    @cached_property
    def runtime_threads(self) -> int:
        """Threads the runtime of a program yet to start will add beside its main thread.

        A running process's (--pid) are already counted in what it uses.
        """
        if self.target.pid is not None or not self.runtime.starts_threads:
            return 0
        return self.runtime.own_threads(self.host.cpus())

    @cached_property
    def stack_bytes(self) -> int:
        """Thread stack: --stack, else the runtime's (C: glibc's, from RLIMIT_STACK).

        glibc's rule is pthread_early_init.h's.
        """
        size = self.target.stack_bytes
        if size is None:
            size = self.runtime.default_stack()[0]
        if size is None:
            soft = self.rlimits["RLIMIT_STACK"][0]
            size = ARCH_STACK_DEFAULT.get(self.arch, 2 * MIB) if soft is None else soft
        size = max(size, PTHREAD_STACK_MIN)
        return -(-size // self.page_size) * self.page_size

    @cached_property
    def guard_bytes(self) -> int:
        """Address space mapped per thread and never written: its guard pages.

        glibc's guard page (since 2.27), and the runtime's own (Rust's signal-stack guard);
        none for a JVM (its guard zones are inside the stack) or pure Go.
        """
        return self.runtime.guard_bytes(self.page_size)

    @cached_property
    def glibc_maps_per_thread(self) -> int:
        """Mappings per glibc thread stack: 2 (stack + PROT_NONE guard), or 1 with madvise guards.

        glibc ≥ 2.42 installs the guard with MADV_GUARD_INSTALL where Linux ≥ 6.13 has it.
        """
        glibc = _version(self.host.glibc_version())
        kernel = _version(self.host.kernel_release())
        return 1 if glibc >= (2, 42) and kernel >= (6, 13) else 2

    @cached_property
    def maps_per_thread(self) -> int:
        """Mappings one thread adds in the judged runtime."""
        return self.runtime.maps_per_thread(self.glibc_maps_per_thread)

    @cached_property
    def mapped_per_thread(self) -> int:
        """Address space one thread maps: its stack, guards and the runtime's signal stack."""
        return self.stack_bytes + self.guard_bytes + self.runtime.signal_stack()

    @cached_property
    def committed_per_thread(self) -> int:
        """Bytes of a thread charged as writable (Committed_AS, RLIMIT_DATA).

        The stack and the runtime's signal stack; for C, also glibc's guard when glibc maps
        it writable and fences it with madvise.
        """
        guard = self.guard_bytes if self.maps_per_thread == 1 and self.runtime.name == "c" else 0
        return self.stack_bytes + self.runtime.signal_stack() + guard

    @cached_property
    def meminfo(self) -> dict[str, int]:
        """/proc/meminfo in bytes."""
        return self.host.meminfo()

    def vm_bytes(self, field: str) -> int:
        """A "VmSize: 1234 kB" style field of the judged process's status, in bytes."""
        return int(self.status[field].split()[0]) * 1024


def _version(text: str | None) -> tuple[int, ...]:
    """(6, 18) from "6.18.44-fc", () when unknown (compares below every version)."""
    match = re.match(r"(\d+)\.(\d+)", text or "")
    return (int(match[1]), int(match[2])) if match else ()
