"""The Host's reads of processes: status, rlimits, mappings, cgroups, namespaces.

A mixin of sysprep.host.Host, apart only to keep each file short: it reads through the
Host's own path() and read(), so a tree host (tests) serves it too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
from typing import TYPE_CHECKING

from sysprep import procfs
from sysprep.errors import BadInputError
from sysprep.errors import NeedsRootError
from sysprep.facts import CAPABILITIES
from sysprep.facts import RLIM_INFINITY
from sysprep.facts import RLIMITS

if TYPE_CHECKING:
    from pathlib import Path

    from sysprep.procfs import CgroupDir
    from sysprep.procfs import CgroupEntry
    from sysprep.procfs import MapsSummary
    from sysprep.procfs import Mount


class ProcessReads:
    """Reads of processes ("self" or a pid) and of what they live in."""

    if TYPE_CHECKING:  # provided by Host

        @property
        def is_live(self) -> bool:
            """True on the running system."""
            ...

        def path(self, relative: str) -> Path:
            """The host path of "proc/..."."""
            ...

        def read(self, relative: str) -> str:
            """Text of one file."""
            ...

    def pids(self) -> list[int]:
        """Pids of every process visible in /proc."""
        return [int(entry.name) for entry in self.path("proc").iterdir() if entry.name.isdigit()]

    def namespace(self, kind: str, pid: int | str = "self") -> int | None:
        """The inode of a process's *kind* namespace ("pid", "cgroup"); None if unreadable."""
        try:
            link = str(self.path(f"proc/{pid}/ns/{kind}").readlink())  # "pid:[4026531836]"
        except OSError:
            return None
        return int(link.partition("[")[2].rstrip("]") or 0) or None

    def kernel_uid(self, uid: int) -> int | None:
        """The kernel's uid behind *uid*, a uid as this reader sees it; None: not mapped.

        /proc shows uids in the reader's user namespace; its /proc/self/uid_map maps them.
        """
        try:
            lines = self.read("proc/self/uid_map").splitlines()
        except OSError:  # a tree without it, or no user namespaces: the same uids
            return uid
        for line in lines:
            inside, outside, count = (int(field) for field in line.split())
            if inside <= uid < inside + count:
                return outside + uid - inside
        return None

    def environ(self, pid: int | str) -> dict[str, str]:
        """A process's environment as it started (its owner's or root's to read)."""
        raw = self.path(f"proc/{pid}/environ").read_bytes()
        pairs = (item.partition(b"=") for item in raw.split(b"\0") if b"=" in item)
        return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}

    def init_environment(self) -> dict[str, str]:
        """PID 1's environment (root's to read); empty when it cannot be read."""
        try:
            return self.environ(1)
        except OSError:
            return {}

    def cmdline(self, pid: int | str) -> list[str]:
        """A process's argv (empty for a kernel thread or a zombie)."""
        args = self.path(f"proc/{pid}/cmdline").read_bytes().split(b"\0")
        if args[-1] == b"":  # a NUL ends each argument, unless the program rewrote them
            args.pop()
        return [arg.decode(errors="replace") for arg in args]

    def exe_name(self, pid: int | str) -> str:
        """The path of a process's executable; "" when it cannot be read (root reads others')."""
        try:
            return str(self.path(f"proc/{pid}/exe").readlink())
        except OSError:
            return ""

    def proc_sys_read_only(self) -> bool:
        """True when /proc/sys is mounted read-only here (as container runtimes do)."""
        try:
            mounts = self.mounts()
        except OSError:
            return False
        covering = [m for m in mounts if "/proc/sys".startswith(m.mount_point.rstrip("/") + "/")]
        covering += [m for m in mounts if m.mount_point == "/proc/sys"]
        return bool(covering) and "ro" in max(covering, key=lambda m: len(m.mount_point)).options

    def require_process(self, pid: int) -> None:
        """BadInputError unless *pid* is a process whose /proc files this user may read."""
        if pid <= 0:
            raise BadInputError(f"invalid pid {pid}: must be a process id greater than zero")
        for name in ("status", "limits", "maps", "cgroup"):
            try:
                with self.path(f"proc/{pid}/{name}").open("rb") as f:
                    f.read(1)  # maps of a million threads is 70 MB: one byte proves access
            except FileNotFoundError:  # noqa: PERF203 - four files, once per run
                raise BadInputError(f"no process with pid {pid}") from None
            except PermissionError:
                if os.geteuid() == 0:  # a root with fewer capabilities than the process
                    raise NeedsRootError(
                        f"cannot read /proc/{pid}/{name}: permission denied; {self._lacking(pid)}"
                        f": run sysprep as a root with every capability pid {pid} holds, or as"
                        " its owner"
                    ) from None
                raise NeedsRootError(
                    f"cannot read /proc/{pid}/{name}: permission denied;"
                    f" run sysprep as root or as the owner of pid {pid}"
                ) from None
        status = self.status(pid)
        if status.get("Kthread") == "1":  # Linux 6.4+ says so in status
            raise BadInputError(
                f"pid {pid} is a kernel thread: it has no user limits to judge or raise"
            )
        if status.get("State", "").startswith("Z"):
            raise BadInputError(
                f"pid {pid} is a zombie: it has exited (its parent has not reaped it yet);"
                " nothing runs there to judge"
            )

    def _lacking(self, pid: int) -> str:
        """Which capabilities *pid* holds that this root lacks, as one phrase.

        Reading another process's maps takes them (ptrace(2)'s access mode).
        """
        try:
            theirs = int(self.status(pid)["CapPrm"], 16)
            ours = int(self.status("self")["CapEff"], 16)
        except (OSError, KeyError, ValueError):
            return "this root lacks a capability the process holds"
        missing = [
            f"CAP_{name}" for bit, name in enumerate(CAPABILITIES) if theirs & ~ours & (1 << bit)
        ]
        if not missing:
            return "this root may not trace it (CAP_SYS_PTRACE, or a security module)"
        return f"pid {pid} holds {', '.join(missing)}, which this root lacks"

    def status(self, pid: int | str) -> dict[str, str]:
        """/proc/PID/status as name → raw value."""
        return procfs.parse_status(self.read(f"proc/{pid}/status"))

    def process_start(self, pid: int) -> int:
        """When *pid* started, in clock ticks after boot: with the pid, who the process is."""
        return procfs.parse_start_time(self.read(f"proc/{pid}/stat"))

    def pids_taken(self, low: int, high: int) -> int:
        """Pid numbers in [low, high) that a task holds.

        /proc/N resolves a thread id too, though readdir lists only thread-group leaders: one
        stat per number, so keep the range short (the pids below 300 are taken at boot).
        """
        proc = self.path("proc")
        return sum(1 for number in range(low, high) if (proc / str(number)).exists())

    def thread_ids(self) -> list[int]:
        """Every thread id in /proc/*/task: for small pid namespaces only.

        One directory listing per process: on a busy host that is 5 µs a thread.
        """
        tids = []
        for pid in self.pids():
            with contextlib.suppress(OSError):  # exited while we looked
                tids += [int(t.name) for t in self.path(f"proc/{pid}/task").iterdir()]
        return tids

    def threads_of_processes_from(self, first_pid: int) -> int:
        """Tasks of the processes whose pid is *first_pid* or above (their Threads: counts).

        Their other threads were created later, so they sit above too unless pids wrapped.
        """
        total = 0
        for pid in self.pids():
            if pid >= first_pid:
                try:
                    total += int(self.status(pid)["Threads"])
                except (OSError, KeyError):  # exited while we looked, or a bare thread dir
                    continue
        return total

    def fds(self, pid: int | str) -> list[str]:
        """Open file descriptors of a process (names in /proc/PID/fd)."""
        return [entry.name for entry in self.path(f"proc/{pid}/fd").iterdir()]

    def rlimit(self, pid: int | str, name: str) -> tuple[int, int]:
        """(soft, hard) of one rlimit as getrlimit(2) gives it: RLIM_INFINITY for unlimited."""
        soft, hard = self.rlimits(pid)[name]
        return (
            RLIM_INFINITY if soft is None else soft,
            RLIM_INFINITY if hard is None else hard,
        )

    def set_rlimit(self, pid: int, name: str, limits: tuple[int, int]) -> None:
        """prlimit(2) a running process's rlimit, then read it back.

        A tree has no kernel: there its /proc/PID/limits row stands in for prlimit(2).
        """
        soft, hard = limits
        try:
            if self.is_live:
                resource.prlimit(pid, RLIMITS[name].resource, (soft, hard))
            else:
                path = self.path(f"proc/{pid}/limits")
                path.write_text(procfs.with_limits_row(path.read_text(), name, limits))
        except PermissionError as error:
            what = f"prlimit {name}={soft}:{hard} of pid {pid}"
            raise OSError(error.errno, f"{what}: {error.strerror}") from None
        now = self.rlimit(pid, name)
        if now != (soft, hard):
            raise OSError(0, f"{name} of pid {pid} reads back {now} after setting {limits}")

    def rlimits(self, pid: int | str) -> dict[str, tuple[int | None, int | None]]:
        """Soft and hard limits from /proc/PID/limits; None is unlimited.

        The file is world-readable, where prlimit(2) on another pid needs privilege.
        """
        return procfs.parse_limits(self.read(f"proc/{pid}/limits"))

    def maps(self, pid: int | str) -> MapsSummary:
        """How many mappings a process has, and where the highest one ends."""
        with self.path(f"proc/{pid}/maps").open("rb") as maps:
            return procfs.summarize_maps(maps)

    def cgroups(self, pid: int | str) -> list[CgroupEntry]:
        """Lines of /proc/PID/cgroup; paths are relative to the reader's cgroup namespace."""
        return procfs.parse_cgroup(self.read(f"proc/{pid}/cgroup"))

    def mounts(self) -> list[Mount]:
        """Mounts as this process sees them (/proc/self/mountinfo)."""
        return procfs.parse_mountinfo(self.read("proc/self/mountinfo"))

    def cgroup_levels(
        self, pid: int | str, controller: str, path: str | None = None
    ) -> list[CgroupDir] | None:
        """Directories of a process's *controller* cgroup, leaf first; None if not enabled.

        *path*: another cgroup of the same hierarchy instead (a stopped service's slice).
        Of the mounts of the hierarchy, the one showing the most of the path is read: in a
        pod with the host's /sys/fs/cgroup mounted too, the pod's levels above the
        container's. OSError when no mount here shows the path.
        """
        found = procfs.hierarchy(self.cgroups(pid), self.mounts(), controller)
        if found is None:
            return None
        own, mounts = found
        path = path or own
        if mounts[0].fstype == "cgroup2":
            top = self.path(mounts[0].mount_point)
            if controller not in top.joinpath("cgroup.controllers").read_text().split():
                return None
        # Mounts reaching above the reader's cgroup namespace first, then the shortest roots.
        for mount in sorted(mounts, key=lambda m: (_levels_up(m.root) == 0, len(m.root))):
            levels = self._levels_in(mount, path, pid)
            if levels is not None:
                return levels
        raise OSError(
            errno.ENOENT, f"{controller} cgroup {path} is not under any mount of it here"
        )

    def _levels_in(self, mount: Mount, path: str, pid: int | str) -> list[CgroupDir] | None:
        """The levels of *path* this mount shows; None when it shows none of them."""
        top = self.path(mount.mount_point)
        up = _levels_up(mount.root)
        if not up:
            return procfs.cgroup_dirs(top, mount, path)
        where = self._namespace_root(top, up, path, pid)
        if where is None:
            return None
        return procfs.cgroup_dirs(top, mount._replace(root="/"), f"/{where}{path}".rstrip("/"))

    def _namespace_root(self, top: Path, depth: int, path: str, pid: int | str) -> str | None:
        """Where the reader's cgroup namespace starts, seen from a mount made outside it.

        Such a mount's root reads "/../.." (mountinfo): the namespace's root is that many
        levels below the mount's top, and it is the directory there under which *path*
        holds the process (cgroup.procs lists it). None when no directory does.
        """
        number = self.status(pid)["Pid"]
        relative = path.strip("/")
        for candidate in top.glob("/".join(["*"] * depth)):
            procs = candidate.joinpath(relative, "cgroup.procs")
            with contextlib.suppress(OSError):
                if number in procs.read_text().split():
                    return str(candidate.relative_to(top))
        return None


def _levels_up(root: str) -> int:
    """How far above the reader's cgroup namespace a cgroup mount's root is ("/../..": 2).

    0 for a root inside the namespace, and for one in another branch ("/../other"): a
    sibling's subtree shows none of the namespace's own levels.
    """
    parts = root.strip("/").split("/")
    return len(parts) if set(parts) == {".."} else 0
