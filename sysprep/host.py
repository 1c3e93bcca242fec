"""The only door to /proc, /sys and /etc: every read and write of the host goes through a Host."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

from sysprep import durable
from sysprep import procfs
from sysprep.errors import BadInputError
from sysprep.errors import NeedsRootError
from sysprep.processes import ProcessReads

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from sysprep.durable import FileState
    from sysprep.pidns import Level

# sysctl(8) names swap "." and "/" relative to /proc/sys paths ("net.ipv4.conf.eth0/1.rp_filter").
_DOTS_TO_SLASHES = str.maketrans("./", "/.")
_ADDRESS_BITS = re.compile(r"^address sizes.*?(\d+) bits virtual", re.MULTILINE)
_SYSCTL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")


@dataclass(frozen=True)
class Host(ProcessReads):
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
        state = durable.read_state(self.etc_path(path), top)
        missing = tuple(f"/{Path(d).relative_to(top)}" for d in state.missing)
        return state._replace(missing=missing)

    def remove_stale_etc_temps(self, path: str) -> list[Path]:
        """Temp files a killed write of /etc/... left behind, removed."""
        return durable.remove_stale_temps(self.etc_path(path))

    def write_etc(self, path: str, state: FileState) -> None:
        """Make a path under /etc be *state*, atomically and durably."""
        target = self.etc_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        durable.write_state(
            target, state._replace(missing=tuple(map(str, map(self.etc_path, state.missing))))
        )

    # --- systemd, namespaces and the kernel log: the system's own interfaces

    def systemctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run systemctl ARGS; FileNotFoundError where it is not installed."""
        return subprocess.run(
            ["systemctl", *args], capture_output=True, text=True, check=False, timeout=timeout
        )

    def busctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run busctl ARGS (systemd's D-Bus client); a failure to run is a failed result."""
        try:
            return subprocess.run(
                ["busctl", *args], capture_output=True, text=True, check=False, timeout=timeout
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return subprocess.CompletedProcess(["busctl", *args], 1, "", str(error))

    def daemon_reload(self) -> None:
        """Run systemctl daemon-reload: systemd reads the unit files and drop-ins again."""
        done = self.systemctl("daemon-reload")
        if done.returncode != 0:
            raise OSError(0, f"systemctl daemon-reload: {_first_line(done.stderr)}")

    def restart_unit(self, unit: str) -> None:
        """Run systemctl restart UNIT."""
        done = self.systemctl("restart", "--", unit)
        if done.returncode != 0:
            raise OSError(0, f"systemctl restart {unit}: {_first_line(done.stderr)}")

    def pid_namespace_levels(self, pid: int) -> list[Level]:
        """The pid namespaces of *pid* below ours, each with its pid_max (sysprep.pidns).

        Only the running system has namespaces to enter; a tree has none. OSError when they
        cannot be read (setns(2) takes root): never a silent pass.
        """
        if not self.is_live:
            return []
        from sysprep import pidns

        try:
            return pidns.levels(pid)
        except PermissionError as error:
            raise OSError(
                error.errno, "the pid namespaces of the process (root reads them)", "setns"
            ) from None

    def kernel_log(self) -> list[tuple[float, str]]:
        """The kernel log's records, oldest first: (seconds after boot, message).

        /dev/kmsg, root's to read (OSError otherwise); in a tree, a file of its records.
        """
        records = self.read("dev/kmsg").splitlines() if not self.is_live else procfs.read_kmsg()
        return [record for line in records if (record := procfs.parse_kmsg(line))]

    def boot_time(self) -> float:
        """When the host booted, in seconds since the epoch (/proc/stat's btime)."""
        for line in self.read("proc/stat").splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
        raise OSError(0, "no btime in /proc/stat")

    def network_namespace(self) -> AbstractContextManager[Callable[[], None]]:
        """A private network namespace, gone afterwards (sysprep.netns).

        It yields what a child process runs to enter it (a preexec function).
        """
        if not self.is_live:
            raise BadInputError("network namespaces are the running system's, not a tree's")
        from sysprep import netns

        return netns.private_namespace()

    def links(self) -> list[dict[str, object]]:
        """The host's network links over netlink (name, state, MTU, txqueuelen); a tree: none."""
        if not self.is_live:
            return []
        from sysprep import netns

        return netns.links()

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

    def hostname(self) -> str | None:
        """The host's name (kernel.hostname, of this UTS namespace); None when unreadable."""
        try:
            return self.sysctl("kernel.hostname")
        except OSError:
            return None

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

    def cpus(self) -> int:
        """CPUs a program started here may run on (what the JVM and Go size themselves by)."""
        if self.is_live:
            return len(os.sched_getaffinity(0))
        return max(self.read("proc/cpuinfo").count("processor\t:"), 1)

    def possible_cpus(self) -> int:
        """CPUs the kernel may ever bring up (/sys/devices/system/cpu/possible, "0-3,8")."""
        spans = [
            span.strip().partition("-")
            for span in self.read("sys/devices/system/cpu/possible").split(",")
        ]
        return sum(int(last or first) - int(first) + 1 for first, _, last in spans)

    def virtual_address_bits(self) -> int | None:
        """Virtual address bits from /proc/cpuinfo ("address sizes : ..., 48 bits virtual")."""
        match = _ADDRESS_BITS.search(self.read("proc/cpuinfo"))
        return int(match[1]) if match else None

    def slab_object_size(self, cache: str) -> int:
        """Bytes per object of a slab cache (SLUB's /sys/kernel/slab/CACHE/slab_size)."""
        return int(self.read(f"sys/kernel/slab/{cache}/slab_size"))


def _first_line(text: str) -> str:
    """The first line of a tool's message: an error is one line (the rest is its advice)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "no message")
