"""The exact commands that lift a limit: now, and persistently, and when each takes effect."""

from __future__ import annotations

from typing import NamedTuple

from sysprep.limits.base import Fix

SYSCTL_DROP_IN = "/etc/sysctl.d/90-sysprep.conf"
LIMITS_DROP_IN = "/etc/security/limits.d/90-sysprep.conf"


class RlimitSpelling(NamedTuple):
    """How ulimit, prlimit, limits.conf and systemd spell one rlimit, and in which unit."""

    ulimit: str
    prlimit: str
    limits_conf: str
    systemd: str
    kib: bool  # ulimit and limits.conf count this one in KiB


RLIMITS = {
    "RLIMIT_NPROC": RlimitSpelling("-u", "--nproc", "nproc", "LimitNPROC", kib=False),
    "RLIMIT_STACK": RlimitSpelling("-s", "--stack", "stack", "LimitSTACK", kib=True),
    "RLIMIT_AS": RlimitSpelling("-v", "--as", "as", "LimitAS", kib=True),
    "RLIMIT_DATA": RlimitSpelling("-d", "--data", "data", "LimitDATA", kib=True),
    "RLIMIT_NOFILE": RlimitSpelling("-n", "--nofile", "nofile", "LimitNOFILE", kib=False),
}


def sysctl_fix(key: str, value: int) -> Fix:
    """Sysctl -w now; a sysctl.d drop-in for boot (it sorts after systemd's 50-pid-max.conf)."""
    return Fix(
        setting=key,
        value=value,
        now=f"sysctl -w {key}={value}",
        persist=f"add '{key} = {value}' to {SYSCTL_DROP_IN}",
        takes_effect="now; the drop-in at every boot",
    )


def rlimit_fix(name: str, value: int, pid: int | None) -> Fix:
    """Prlimit for a running pid, ulimit for a new one; limits.d and systemd to persist.

    systemd services do not read limits.conf: they have no PAM session.
    """
    spelling = RLIMITS[name]
    shown = -(-value // 1024) if spelling.kib else value
    if pid is not None:
        now = f"prlimit --pid {pid} {spelling.prlimit}={value}"
        when = f"now for pid {pid}"
    else:
        now = f"ulimit {spelling.ulimit} {shown} (in the shell that starts the program)"
        when = "now for programs started from that shell"
    return Fix(
        setting=name,
        value=value,
        now=now,
        persist=(
            f"add '* - {spelling.limits_conf} {shown}' to {LIMITS_DROP_IN};"
            f" for a systemd service: {spelling.systemd}={value} in a drop-in"
        ),
        takes_effect=f"{when}; limits.d at next login; systemd at service restart",
    )
