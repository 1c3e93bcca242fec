"""What one check reads of the host and the judged process, each fact once, on first use."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING
from typing import Any

from sysprep.environment import INIT_PID_NS
from sysprep.environment import INIT_USER_NS
from sysprep.environment import detect
from sysprep.environment import sysctl_where
from sysprep.facts import CAP_SYS_ADMIN
from sysprep.facts import CAP_SYS_RESOURCE
from sysprep.facts import PID_MAX_PER_NAMESPACE
from sysprep.limits.shape import ThreadShape
from sysprep.procfs import parse_version

if TYPE_CHECKING:
    from sysprep.environment import Environment
    from sysprep.host import Host
    from sysprep.limits.base import Target
    from sysprep.limits.cost import ThreadCost
    from sysprep.pidns import Level
    from sysprep.procfs import CgroupDir
    from sysprep.systemd import Unit


class Inspection:
    """What one check reads: the host, the judged process and the target; each fact read once.

    Without a pid, the judged process is a new one the caller starts, and sysprep stands in
    for it: same rlimits and cgroup, and a Python's size (a little more than a C program's:
    those limits err safe). Its mappings are those a program of the judged runtime holds at
    start, and its runtime's own threads count as in use (*shape*: what one thread takes).

    *known*: facts another view has already read, by name ("runtime", "mappings"): watch
    keeps the runtime it recognised, and between two real counts estimates the mappings.
    """

    def __init__(
        self,
        host: Host,
        target: Target,
        cost: ThreadCost | None = None,
        unit: Unit | None = None,
        *,
        known: dict[str, Any] | None = None,
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
        self.shape = ThreadShape(self)
        for name, value in (known or {}).items():
            owner = self.shape if name in vars(ThreadShape) else self
            setattr(owner, name, value)  # a cached_property's value, stored as if read

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

    @cached_property
    def mappings(self) -> int:
        """Mappings the judged process holds (/proc/PID/maps)."""
        return self.host.maps(self.proc).mappings

    def cgroup_levels(self, controller: str) -> list[CgroupDir] | None:
        """The judged process's *controller* cgroup levels; a stopped service's slice's."""
        if self.unit is not None and self.unit_stopped:
            from sysprep.systemd import slice_path

            return self.host.cgroup_levels(self.proc, controller, slice_path(self.unit.slice))
        return self.host.cgroup_levels(self.proc, controller)

    @cached_property
    def real_uid(self) -> int | None:
        """Real uid: RLIMIT_NPROC counts threads per real uid (a stopped service's User=).

        None: a stopped service's dynamic user, made when it starts, with no task yet.
        """
        if self.unit is not None and self.unit_stopped:
            return self.unit.uid
        return int(self.status["Uid"].split()[0])

    @cached_property
    def pid_levels(self) -> list[Level]:
        """The pid namespaces of the --pid process below ours, each with its pid_max.

        Only for a kernel (>= 6.14) where each has a pid_max of its own. OSError when they
        cannot be read (it takes root): never a silent pass.
        """
        if self.target.pid is None or not self.per_namespace_pid_max:
            return []
        if self.host.namespace("pid", self.target.pid) == self.host.namespace("pid"):
            return []
        return self.host.pid_namespace_levels(self.target.pid)

    @cached_property
    def per_namespace_pid_max(self) -> bool:
        """True on a kernel (>= 6.14) that gives each pid namespace its own pid_max."""
        return parse_version(self.host.kernel_release()) >= PID_MAX_PER_NAMESPACE

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

        Global: the kernel's uid 0 (INIT_USER), which root of a user namespace mapped from
        the host's root is too, or a capability of the initial user namespace; root of a
        user-namespaced container mapped from another uid is counted like anyone.
        """
        if self.unit_stopped:  # systemd starts it with no capabilities unless it says so
            return self.real_uid == 0
        if self.real_uid is not None and self.host.kernel_uid(self.real_uid) == 0:
            return True
        user_ns = self.host.namespace("user", self.proc)
        if user_ns not in (None, INIT_USER_NS):
            return False  # its capabilities are its namespace's, not the kernel's
        caps = int(self.status["CapEff"], 16)
        return bool(caps & (1 << CAP_SYS_RESOURCE | 1 << CAP_SYS_ADMIN))

    @cached_property
    def may_raise_hard(self) -> bool:
        """True when this reader may raise a hard rlimit: CAP_SYS_RESOURCE, effective."""
        try:
            return bool(int(self.host.status("self")["CapEff"], 16) & (1 << CAP_SYS_RESOURCE))
        except (OSError, KeyError, ValueError):
            return os.geteuid() == 0

    @cached_property
    def child_pid_namespace(self) -> bool:
        """True when the judged process is in this reader's own child pid namespace.

        Only on a kernel (>= 6.14) that gives each pid namespace its own pid_max.
        """
        own = self.host.namespace("pid")
        if own is None or own == INIT_PID_NS or not self.per_namespace_pid_max:
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
    def meminfo(self) -> dict[str, int]:
        """/proc/meminfo in bytes."""
        return self.host.meminfo()

    def vm_bytes(self, field: str) -> int:
        """A "VmSize: 1234 kB" style field of the judged process's status, in bytes."""
        return int(self.status[field].split()[0]) * 1024
