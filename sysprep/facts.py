"""Fixed facts, each in one table: rlimits, kernel maxima, the files sysprep owns, the probes."""

from __future__ import annotations

import re
import resource
from typing import NamedTuple


class Rlimit(NamedTuple):
    """One rlimit as getrlimit(2), /proc/PID/limits, profiles, ulimit, limits.conf, systemd say it.

    *in_bytes*: its values are bytes, which ulimit and limits.conf count in KiB.
    """

    name: str
    resource: int
    title: str
    profile: str
    ulimit: str
    prlimit: str
    limits_conf: str
    systemd: str
    in_bytes: bool


# Each rlimit sysprep reads or sets, in every spelling: getrlimit(2), /proc/PID/limits'
# title, a profile's key, ulimit(1), prlimit(1), limits.conf(5), systemd.exec(5).
RLIMITS: dict[str, Rlimit] = {
    r.name: r
    for r in (
        Rlimit("RLIMIT_STACK", resource.RLIMIT_STACK, "Max stack size", "stack", "-s",
               "--stack", "stack", "LimitSTACK", in_bytes=True),
        Rlimit("RLIMIT_NPROC", resource.RLIMIT_NPROC, "Max processes", "nproc", "-u",
               "--nproc", "nproc", "LimitNPROC", in_bytes=False),
        Rlimit("RLIMIT_AS", resource.RLIMIT_AS, "Max address space", "as", "-v",
               "--as", "as", "LimitAS", in_bytes=True),
        Rlimit("RLIMIT_DATA", resource.RLIMIT_DATA, "Max data size", "data", "-d",
               "--data", "data", "LimitDATA", in_bytes=True),
        Rlimit("RLIMIT_NOFILE", resource.RLIMIT_NOFILE, "Max open files", "nofile", "-n",
               "--nofile", "nofile", "LimitNOFILE", in_bytes=False),
        Rlimit("RLIMIT_MEMLOCK", resource.RLIMIT_MEMLOCK, "Max locked memory", "memlock", "-l",
               "--memlock", "memlock", "LimitMEMLOCK", in_bytes=True),
        Rlimit("RLIMIT_FSIZE", resource.RLIMIT_FSIZE, "Max file size", "fsize", "-f",
               "--fsize", "fsize", "LimitFSIZE", in_bytes=True),
    )
}  # fmt: skip
# The rlimit a systemd property sets: LimitNPROC is RLIMIT_NPROC.
BY_SYSTEMD_PROPERTY = {rlimit.systemd: rlimit for rlimit in RLIMITS.values()}
# The rlimit a profile's key names: nofile is RLIMIT_NOFILE.
BY_PROFILE_KEY = {rlimit.profile: rlimit for rlimit in RLIMITS.values()}
RLIM_INFINITY = resource.RLIM_INFINITY

# glibc's ARCH_STACK_DEFAULT_SIZE: the thread stack when RLIMIT_STACK is unlimited
# (sysdeps/<arch>/nptl/pthreaddef.h).
ARCH_STACK_DEFAULT = {
    "x86_64": 2 << 20,
    "aarch64": 2 << 20,
    "arm": 2 << 20,
    "riscv64": 2 << 20,
    "s390x": 2 << 20,
    "ppc64": 4 << 20,
    "ppc64le": 4 << 20,
    "sparc64": 4 << 20,
    "alpha": 4 << 20,
    "parisc64": 8 << 20,
}
PTHREAD_STACK_MIN = 16384  # glibc's, x86_64
# After pid numbers wrap, the kernel hands out pids from 300 up (RESERVED_PIDS, kernel/pid.c).
RESERVED_PIDS = 300
# kernel.pid_max is per pid namespace from Linux 6.14 (kernel/pid.c, 7863dcc72d0f).
PID_MAX_PER_NAMESPACE = (6, 14)
# capability(7) numbers: either one lifts RLIMIT_NPROC (kernel/fork.c).
CAP_SYS_ADMIN = 21
CAP_SYS_RESOURCE = 24
# capability(7)'s names, by number (include/uapi/linux/capability.h).
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip
# FUTEX_TID_MASK: the kernel refuses larger threads-max with EINVAL (kernel/fork.c).
THREADS_MAX_LIMIT = 0x3FFFFFFF
# The kernel's defaults, which every boot sets again: vm.max_map_count (DEFAULT_MAX_MAP_COUNT,
# include/linux/mm.h); kernel.pid_max, PID_MAX_DEFAULT or PIDS_PER_CPU_MIN per possible CPU,
# whichever is more (include/linux/threads.h, kernel/pid.c).
DEFAULT_MAX_MAP_COUNT = 65530
PID_MAX_DEFAULT = 32768
PIDS_PER_CPU_MIN = 1024
# PID_MAX_LIMIT on 64-bit (include/linux/threads.h).
PID_MAX_LIMIT = 4 * 1024 * 1024
# sysctl_nr_open_max on 64-bit (fs/file.c): no RLIMIT_NOFILE can pass it.
NR_OPEN_MAX = 2147483584
# Bounds the kernel enforces on writes (proc_dointvec_minmax), checked before anything is
# written; the capacity model never asks for more.
SYSCTL_BOUNDS: dict[str, tuple[int, int]] = {
    "kernel.threads-max": (1, THREADS_MAX_LIMIT),
    "kernel.pid_max": (301, PID_MAX_LIMIT),
    "vm.max_map_count": (0, 2**31 - 1),
    "fs.nr_open": (64, NR_OPEN_MAX),  # BITS_PER_LONG at least
}
# Sysctls whose value is a mode, not an amount: a profile's value is set exactly, never
# "raised" (vm.overcommit_memory 2 is not "more" than 0).
MODE_SYSCTLS = frozenset(
    {
        "vm.overcommit_memory",
        "vm.panic_on_oom",
        "vm.zone_reclaim_mode",
        "kernel.randomize_va_space",
        "kernel.panic_on_oops",
        "net.ipv4.ip_forward",
        "net.ipv4.tcp_tw_reuse",
        "net.ipv4.tcp_timestamps",
        "net.ipv4.tcp_sack",
        "net.ipv4.tcp_syncookies",
        "net.core.default_qdisc",
        "net.ipv4.tcp_congestion_control",
    }
)
# The sysctls the capacity model sizes from a target ("auto" in a profile).
AUTO_SYSCTLS = ("kernel.threads-max", "kernel.pid_max", "vm.max_map_count")


class OwnedFile(NamedTuple):
    """A file sysprep writes with --persist, and when what it says takes effect."""

    path: str
    syntax: str  # how its lines are written and keyed: sysctl, limits or systemd (settings.owned)
    takes_effect: str


SYSCTL_FILE = OwnedFile("/etc/sysctl.d/90-sysprep.conf", "sysctl", "at every boot")
LIMITS_FILE = OwnedFile("/etc/security/limits.d/90-sysprep.conf", "limits", "at next login")
# sysprep runs systemctl daemon-reload after writing either: the manager re-reads its
# defaults then (DefaultTasksMax, DefaultLimit*=), for the services it starts after.
SYSTEMD_FILE = OwnedFile(
    "/etc/systemd/system.conf.d/90-sysprep.conf",
    "systemd",
    "now (sysprep reloads systemd), for services started from then on",
)
USER_SLICE_FILE = OwnedFile(
    "/etc/systemd/system/user-.slice.d/90-sysprep.conf",
    "systemd",
    "now (sysprep reloads systemd), for every user's slice",
)
# The fixed files sysprep writes; with unit_drop_in's, the only ones: a snapshot naming any
# other path is refused.
OWNED_FILES: dict[str, OwnedFile] = {
    f.path: f for f in (SYSCTL_FILE, LIMITS_FILE, SYSTEMD_FILE, USER_SLICE_FILE)
}
# The services sysprep tunes: a unit name (systemd.unit(5): letters, digits, ":-_.\\@", at
# most 255 characters) ending in .service, never starting with "-" (an option) or ".".
# Only a service runs a program and keeps its resource settings in [Service]: a socket's,
# timer's or path's are its service's; a slice's and a scope's are set otherwise.
SERVICE_NAME = re.compile(r"(?=.{1,255}$)[A-Za-z0-9:_\\@][A-Za-z0-9:_.\\@-]*\.service")
_UNIT_DROP_IN = re.compile(r"/etc/systemd/system/(.+)\.d/90-sysprep\.conf")


def unit_drop_in(unit: str) -> OwnedFile:
    """The drop-in sysprep owns for service *unit* (systemd.unit(5)).

    ValueError for anything but a service's name: what is written here must be what a
    snapshot may name, and the other way round (owned_file).
    """
    if not SERVICE_NAME.fullmatch(unit):
        raise ValueError(f"{unit!r} is not the name of a service")
    return OwnedFile(
        f"/etc/systemd/system/{unit}.d/90-sysprep.conf",
        "systemd",
        "at the service's next (re)start",
    )


def owned_file(path: str) -> OwnedFile | None:
    """The owned file at *path*, or None when sysprep does not write there."""
    if path in OWNED_FILES:
        return OWNED_FILES[path]
    match = _UNIT_DROP_IN.fullmatch(path)
    if match is None or not SERVICE_NAME.fullmatch(match[1]):
        return None
    return unit_drop_in(match[1])


class Probe(NamedTuple):
    """A probe in probes/: what it holds (for rendering) and what may stop it (stopped_by).

    Every name in *stops* is a limit name `sysprep check` reports, or one of SPECIAL_STOPS.
    """

    name: str
    holds: str  # plural: "threads"
    one: str  # singular: "thread"
    stops: frozenset[str]
    options: tuple[str, ...] = ()  # what it takes besides --count: "stack", "mode", ...
    max_count: int = 2**31 - 1  # the most any host could hold (a bound for --count)


# stopped_by values that are not limits check reports.
SPECIAL_STOPS = frozenset({"signal", "unknown"})
PROBES: dict[str, Probe] = {
    p.name: p
    for p in (
        Probe(
            "threads",
            "threads",
            "thread",
            frozenset(
                {
                    "RLIMIT_AS",
                    "RLIMIT_DATA",
                    "vm.max_map_count",
                    "CommitLimit",
                    "RLIMIT_NPROC",
                    "kernel.threads-max",
                    "pids.max",
                    "kernel.pid_max",
                    "memory",
                    "signal",
                    "unknown",
                }
            ),
            ("stack", "mode"),
            THREADS_MAX_LIMIT,
        ),
        Probe(
            "maps",
            "mappings",
            "mapping",
            frozenset({"vm.max_map_count", "memory", "signal", "unknown"}),
        ),
        Probe(
            "connections",
            "connections",
            "connection",
            frozenset(
                {
                    "RLIMIT_NOFILE",
                    "fs.file-max",
                    "net.ipv4.ip_local_port_range",
                    "memory",
                    "signal",
                    "unknown",
                }
            ),
            ("server", "sources"),
            2**30,  # fs.nr_open's own maximum, per server process
        ),
    )
}
