"""The only door to /proc, /sys and /etc: every read of the host goes through a Host."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import NamedTuple

from sysprep.errors import BadInputError
from sysprep.errors import NeedsRootError

# sysctl(8) names swap "." and "/" relative to /proc/sys paths ("net.ipv4.conf.eth0/1.rp_filter").
_DOTS_TO_SLASHES = str.maketrans("./", "/.")
_SYSCTL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")

# /proc/PID/limits row titles, by the names getrlimit(2) gives them.
_LIMIT_TITLES = {
    "Max stack size": "RLIMIT_STACK",
    "Max processes": "RLIMIT_NPROC",
    "Max address space": "RLIMIT_AS",
    "Max data size": "RLIMIT_DATA",
    "Max open files": "RLIMIT_NOFILE",
}


# /proc/PID/maps is read in blocks this large; the last _MAPS_TAIL bytes hold its last lines.
_MAPS_BLOCK = 1 << 20
_MAPS_TAIL = 16384  # two lines, each at most PATH_MAX and the fields


class Mount(NamedTuple):
    """One line of /proc/PID/mountinfo (proc(5))."""

    root: str
    mount_point: str
    fstype: str
    super_options: frozenset[str]


class CgroupEntry(NamedTuple):
    """One line of /proc/PID/cgroup: hierarchy id, controllers, path (v2: id 0, none)."""

    hierarchy: int
    controllers: frozenset[str]
    path: str


class MapsSummary(NamedTuple):
    """What /proc/PID/maps says about a process's address space."""

    mappings: int  # compared with vm.max_map_count
    highest_end: int  # end of the highest mapping, near the top of user space


@dataclass(frozen=True)
class Host:
    """Files of one Linux host, rooted at *root* ("/" in production, a temp tree in tests)."""

    root: Path = Path("/")
    # glibc is the one fact no file holds; None asks this process's libc (confstr(3)).
    glibc: str | None = field(default=None)
    # Sysctl values to report instead of the files': the host as a plan would leave it.
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def is_live(self) -> bool:
        """True when this is the running system, where threads can be started to measure."""
        return self.root == Path("/")

    def path(self, relative: str) -> Path:
        """The host path for "proc/meminfo" and the like."""
        return self.root / relative.lstrip("/")

    def read(self, relative: str) -> str:
        """Text of one file; OSError when it is missing or unreadable."""
        return self.path(relative).read_text()

    # --- sysctl

    def sysctl_path(self, key: str) -> Path:
        """/proc/sys path of a sysctl key; BadInputError for a key that would escape /proc/sys."""
        bad = not key or not _SYSCTL_CHARS.issuperset(key) or key[0] in "./-"
        if bad or ".." in key.split("/") or "//" in key:
            raise BadInputError(
                f"invalid sysctl name {key!r}: use dotted names like vm.max_map_count"
            )
        return self.path("proc/sys") / key.translate(_DOTS_TO_SLASHES)

    def sysctl(self, key: str) -> str:
        """Value of a sysctl with whitespace normalised (a tab and a space compare equal)."""
        if key in self.overrides:
            return self.overrides[key]
        return " ".join(self.sysctl_path(key).read_text().split())

    def sysctl_int(self, key: str) -> int:
        """Value of a sysctl that holds one integer."""
        return int(self.sysctl(key))

    # --- system-wide counters

    def meminfo(self) -> dict[str, int]:
        """/proc/meminfo in bytes ("kB" there means KiB)."""
        info: dict[str, int] = {}
        for line in self.read("proc/meminfo").splitlines():
            name, _, rest = line.partition(":")
            fields = rest.split()
            if fields:
                info[name] = int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
        return info

    def tasks_total(self) -> int:
        """Every task with a pid, kernel threads included: 4th field of /proc/loadavg ("2/78")."""
        return int(self.read("proc/loadavg").split()[3].partition("/")[2])

    def kernel_release(self) -> str:
        """Kernel release, e.g. "6.18.44"."""
        return self.sysctl("kernel.osrelease")

    def arch(self) -> str:
        """Machine architecture as uname -m prints it."""
        try:
            return self.sysctl("kernel.arch")
        except OSError:  # kernel.arch is missing on old kernels
            return os.uname().machine if self.is_live else "unknown"

    def glibc_version(self) -> str | None:
        """Glibc version of this system ("2.36"), or None on another libc."""
        if self.glibc is not None or not self.is_live:
            return self.glibc
        try:
            text = os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36"
        except (ValueError, OSError):  # not a glibc system
            return None
        name, _, version = text.partition(" ")
        return version if name == "glibc" else None

    def page_size(self) -> int:
        """Base page size, from the first KernelPageSize line of /proc/self/smaps."""
        with self.path("proc/self/smaps").open() as smaps:
            for line in smaps:
                if line.startswith("KernelPageSize:"):
                    return int(line.split()[1]) * 1024
        raise OSError("no KernelPageSize in /proc/self/smaps")

    def virtual_address_bits(self) -> int | None:
        """Virtual address bits from /proc/cpuinfo ("address sizes : ..., 48 bits virtual")."""
        for line in self.read("proc/cpuinfo").splitlines():
            if line.startswith("address sizes"):
                match = re.search(r"(\d+) bits virtual", line)
                return int(match[1]) if match else None
        return None

    def slab_object_size(self, cache: str) -> int:
        """Bytes per object of a slab cache (SLUB's /sys/kernel/slab/CACHE/slab_size)."""
        return int(self.read(f"sys/kernel/slab/{cache}/slab_size"))

    # --- processes ("self" or a pid)

    def pids(self) -> list[int]:
        """Pids of every process visible in /proc."""
        return [int(entry.name) for entry in self.path("proc").iterdir() if entry.name.isdigit()]

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
                raise NeedsRootError(
                    f"cannot read /proc/{pid}/{name}: permission denied;"
                    f" run sysprep as root or as the owner of pid {pid}"
                ) from None

    def status(self, pid: int | str) -> dict[str, str]:
        """/proc/PID/status as name → raw value."""
        result: dict[str, str] = {}
        for line in self.read(f"proc/{pid}/status").splitlines():
            name, _, value = line.partition(":")
            result[name] = value.strip()
        return result

    def pids_taken(self, low: int, high: int) -> int:
        """Pid numbers in [low, high) that a task holds.

        /proc/N resolves a thread id too, though readdir lists only thread-group leaders: one
        stat per number, so keep the range short (the pids below 300 are taken at boot).
        """
        proc = self.path("proc")
        return sum(1 for number in range(low, high) if (proc / str(number)).exists())

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

    def rlimits(self, pid: int | str) -> dict[str, tuple[int | None, int | None]]:
        """Soft and hard limits from /proc/PID/limits; None is unlimited.

        The file is world-readable, where prlimit(2) on another pid needs privilege.
        """
        lines = self.read(f"proc/{pid}/limits").splitlines()
        result: dict[str, tuple[int | None, int | None]] = {}
        for line in lines[1:]:
            for title, name in _LIMIT_TITLES.items():
                if line.startswith(title):
                    soft, hard = line[len(title) :].split()[:2]
                    result[name] = (_limit_value(soft), _limit_value(hard))
        return result

    def maps(self, pid: int | str) -> MapsSummary:
        """How many mappings a process has, and where the highest one ends.

        A process with a million threads has two million lines: they are counted in large
        blocks, and only the last lines (maps is sorted by address) are parsed.
        """
        count = 0
        tail = b""
        with self.path(f"proc/{pid}/maps").open("rb") as maps:
            while block := maps.read(_MAPS_BLOCK):
                count += block.count(b"\n")
                tail = (tail + block)[-_MAPS_TAIL:]
        highest = 0
        for line in tail.splitlines()[-2:]:
            # [vsyscall] sits in the kernel half on x86_64; it says nothing about user space.
            if b"-" in line and not line.rstrip().endswith(b"[vsyscall]"):
                highest = max(highest, int(line.split(b"-", 1)[1].split(b" ", 1)[0], 16))
        return MapsSummary(count, highest)

    def cgroups(self, pid: int | str) -> list[CgroupEntry]:
        """Lines of /proc/PID/cgroup; paths are relative to the reader's cgroup namespace."""
        entries = []
        for line in self.read(f"proc/{pid}/cgroup").splitlines():
            hierarchy, controllers, path = line.split(":", 2)
            names = frozenset(name for name in controllers.split(",") if name)
            entries.append(CgroupEntry(int(hierarchy), names, path))
        return entries

    def mounts(self) -> list[Mount]:
        """Mounts as this process sees them (/proc/self/mountinfo)."""
        mounts = []
        for line in self.read("proc/self/mountinfo").splitlines():
            before, _, after = line.partition(" - ")
            fields, tail = before.split(), after.split()
            mounts.append(
                Mount(
                    root=_unescape(fields[3]),
                    mount_point=_unescape(fields[4]),
                    fstype=tail[0],
                    super_options=frozenset(tail[2].split(",")) if tail[2:] else frozenset(),
                )
            )
        return mounts

    def cgroup_levels(self, pid: int | str, controller: str) -> list[Path] | None:
        """Directories of a process's *controller* cgroup, leaf first; None if not enabled.

        The walk stops below the hierarchy root, which has no limit files.
        """
        entries = self.cgroups(pid)
        mounts = self.mounts()
        found = _find_v1(entries, mounts, controller) or self._find_v2(entries, mounts, controller)
        if found is None:
            return None
        mount, path = found
        # Inside a cgroup namespace the mount root and the path can share a prefix.
        if mount.root != "/" and path.startswith(mount.root):
            path = path[len(mount.root) :]
        top = self.path(mount.mount_point)
        level = top / path.strip("/") if path.strip("/") else top
        levels = []
        while level != top and top in level.parents:
            levels.append(level)
            level = level.parent
        return levels

    def _find_v2(
        self, entries: list[CgroupEntry], mounts: list[Mount], controller: str
    ) -> tuple[Mount, str] | None:
        unified = next((e for e in entries if e.hierarchy == 0), None)
        mount = next((m for m in mounts if m.fstype == "cgroup2"), None)
        if unified is None or mount is None:
            return None
        enabled = self.path(mount.mount_point).joinpath("cgroup.controllers").read_text().split()
        return (mount, unified.path) if controller in enabled else None


def _find_v1(
    entries: list[CgroupEntry], mounts: list[Mount], controller: str
) -> tuple[Mount, str] | None:
    """A v1 hierarchy with the controller wins over v2 (hybrid hosts mount both)."""
    entry = next((e for e in entries if controller in e.controllers), None)
    mount = next(
        (m for m in mounts if m.fstype == "cgroup" and controller in m.super_options), None
    )
    return (mount, entry.path) if entry is not None and mount is not None else None


def _limit_value(text: str) -> int | None:
    return None if text == "unlimited" else int(text)


def _unescape(text: str) -> str:
    r"""Mountinfo escapes space, tab, newline and backslash as octal (\040)."""
    if "\\" not in text:
        return text
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)
