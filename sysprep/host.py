"""The only door to /proc, /sys and /etc: every read and write of the host goes through a Host."""

from __future__ import annotations

import contextlib
import os
import re
import resource
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

from sysprep import procfs
from sysprep.errors import BadInputError
from sysprep.errors import NeedsRootError
from sysprep.facts import RLIM_INFINITY
from sysprep.facts import RLIMITS

if TYPE_CHECKING:
    from sysprep.procfs import CgroupEntry
    from sysprep.procfs import FileState
    from sysprep.procfs import MapsSummary
    from sysprep.procfs import Mount

# sysctl(8) names swap "." and "/" relative to /proc/sys paths ("net.ipv4.conf.eth0/1.rp_filter").
_DOTS_TO_SLASHES = str.maketrans("./", "/.")
_ADDRESS_BITS = re.compile(r"^address sizes.*?(\d+) bits virtual", re.MULTILINE)
_SYSCTL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")


@dataclass(frozen=True)
class Host:
    """Files of one Linux host, rooted at *root* ("/" in production, a temp tree in tests)."""

    root: Path = Path("/")
    # Where /etc is read and written: the root's own unless given (tests: a temp tree).
    etc_root: Path | None = None
    # glibc is the one fact no file holds; None asks this process's libc (confstr(3)).
    glibc: str | None = field(default=None)
    # Sysctl values to report instead of the files': the host as a plan would leave it.
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def is_live(self) -> bool:
        """True when this is the running system, where threads can be started to measure."""
        return self.root == Path("/")

    @property
    def runs_systemd(self) -> bool:
        """True when systemd is PID 1 (sd_booted(3): /run/systemd/system exists)."""
        return self.path("run/systemd/system").is_dir()

    def require_writable(self, command: str) -> None:
        """NeedsRootError unless this caller may change the host: root on the live system.

        A tree (tests) is the caller's own files: anyone may change it.
        """
        if self.is_live and os.geteuid() != 0:
            raise NeedsRootError(
                f"{command} changes kernel settings and /etc; run it as root (sudo)"
            )

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
        # "vm..max_map_count" would be vm//max_map_count: an alias that dodges every rule.
        if bad or "" in key.split(".") or ".." in key.split("/") or "//" in key:
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

    def write_sysctl(self, key: str, value: str) -> None:
        """Write /proc/sys directly (sysctl(8) can exit 0 on failure), then read it back."""
        path = self.sysctl_path(key)
        try:
            with path.open("w") as f:
                f.write(f"{value}\n")
        except OSError as error:
            raise OSError(error.errno, f"writing {key} = {value}: {error.strerror}") from None
        now = self.sysctl(key)
        if now != value:
            raise OSError(0, f"{key} reads back {now!r} after writing {value!r}")

    # --- files under /etc

    def etc_path(self, path: str) -> Path:
        """Where /etc/... lives on this host."""
        return (self.etc_root or self.root) / path.lstrip("/")

    def read_etc(self, path: str) -> FileState:
        """A path under /etc as it is: its bytes, mode and owner, a symlink, or absent."""
        top = self.etc_path("/")
        state = procfs.read_state(self.etc_path(path), top)
        missing = tuple(f"/{Path(d).relative_to(top)}" for d in state.missing)
        return state._replace(missing=missing)

    def remove_stale_etc_temps(self, path: str) -> list[Path]:
        """Temp files a killed write of /etc/... left behind, removed."""
        return procfs.remove_stale_temps(self.etc_path(path))

    def write_etc(self, path: str, state: FileState) -> None:
        """Make a path under /etc be *state*, atomically and durably."""
        target = self.etc_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        procfs.write_state(
            target, state._replace(missing=tuple(map(str, map(self.etc_path, state.missing))))
        )

    # --- system-wide counters

    def meminfo(self) -> dict[str, int]:
        """/proc/meminfo in bytes ("kB" there means KiB)."""
        return procfs.parse_meminfo(self.read("proc/meminfo"))

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
        match = _ADDRESS_BITS.search(self.read("proc/cpuinfo"))
        return int(match[1]) if match else None

    def slab_object_size(self, cache: str) -> int:
        """Bytes per object of a slab cache (SLUB's /sys/kernel/slab/CACHE/slab_size)."""
        return int(self.read(f"sys/kernel/slab/{cache}/slab_size"))

    # --- processes ("self" or a pid)

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

    def init_environment(self) -> dict[str, str]:
        """PID 1's environment (root's to read); empty when it cannot be read."""
        try:
            raw = self.path("proc/1/environ").read_bytes()
        except OSError:
            return {}
        pairs = (item.partition(b"=") for item in raw.split(b"\0") if b"=" in item)
        return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}

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
                raise NeedsRootError(
                    f"cannot read /proc/{pid}/{name}: permission denied;"
                    f" run sysprep as root or as the owner of pid {pid}"
                ) from None
        if self.status(pid).get("Kthread") == "1":  # Linux 6.4+ says so in status
            raise BadInputError(
                f"pid {pid} is a kernel thread: it has no user limits to judge or raise"
            )

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

    def cgroup_levels(self, pid: int | str, controller: str) -> list[Path] | None:
        """Directories of a process's *controller* cgroup, leaf first; None if not enabled.

        The walk stops below the hierarchy root, which has no limit files.
        """
        entries = self.cgroups(pid)
        mounts = self.mounts()
        found = procfs.find_v1(entries, mounts, controller) or self._find_v2(
            entries, mounts, controller
        )
        if found is None:
            return None
        mount, path = found
        return procfs.cgroup_dirs(self.path(mount.mount_point), mount, path)

    def _find_v2(
        self, entries: list[CgroupEntry], mounts: list[Mount], controller: str
    ) -> tuple[Mount, str] | None:
        unified = next((e for e in entries if e.hierarchy == 0), None)
        mount = next((m for m in mounts if m.fstype == "cgroup2"), None)
        if unified is None or mount is None:
            return None
        enabled = self.path(mount.mount_point).joinpath("cgroup.controllers").read_text().split()
        return (mount, unified.path) if controller in enabled else None
