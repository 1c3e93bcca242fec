"""Files that make a profile survive reboot: sysctl.d, limits.d and a systemd drop-in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sysprep.limits.fixes import RLIMITS as SPELLINGS

if TYPE_CHECKING:
    from sysprep.host import Host
    from sysprep.plan import SysctlChange
    from sysprep.profile import Profile
    from sysprep.profile import RlimitWant

SYSCTL_FILE = "/etc/sysctl.d/90-sysprep.conf"
LIMITS_FILE = "/etc/security/limits.d/90-sysprep.conf"
SYSTEMD_FILE = "/etc/systemd/system.conf.d/90-sysprep.conf"
# sysctl.d(5): files from all these directories are applied in order of their names;
# procps' `sysctl --system` applies /etc/sysctl.conf after them all.
SYSCTL_DIRS = ("etc/sysctl.d", "run/sysctl.d", "usr/local/lib/sysctl.d", "usr/lib/sysctl.d")


@dataclass(frozen=True)
class PersistFile:
    """A file to write: sysctl.d takes effect at boot, limits.d at login, systemd's at reexec."""

    path: str
    content: bytes


def files_for(
    profile: Profile, changes: tuple[SysctlChange, ...], host: Host
) -> list[PersistFile]:
    """The drop-ins for *profile*: the sysctls apply changed, and the profile's rlimits."""
    header = (
        f"# Written by `sysprep apply {profile.name} --persist`; `sysprep revert` removes it.\n"
    )
    files = []
    changed = [c for c in changes if c.after != c.before]
    if changed:
        body = "".join(f"{c.key} = {c.after}\n" for c in changed)
        files.append(PersistFile(SYSCTL_FILE, (header + body).encode()))
    if profile.rlimits:
        body = "".join(_limits_lines(want) for want in profile.rlimits)
        files.append(PersistFile(LIMITS_FILE, (header + body).encode()))
        if host.path("run/systemd/system").is_dir():
            body = "[Manager]\n" + "".join(
                f"Default{SPELLINGS[w.name].systemd}={_systemd_value(w)}\n"
                for w in profile.rlimits
            )
            files.append(PersistFile(SYSTEMD_FILE, (header + body).encode()))
    return files


def later_overrides(host: Host, keys: set[str]) -> list[str]:
    """Files applied after ours at boot that set one of *keys*: they would win."""
    ours = Path(SYSCTL_FILE).name
    found = []
    candidates = [p for d in SYSCTL_DIRS for p in host.path(d).glob("*.conf") if p.name > ours]
    candidates.append(host.path("etc/sysctl.conf"))
    for path in candidates:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            key, sep, _ = line.partition("=")
            name = key.strip().lstrip("-")  # "-key = value": ignore errors setting it
            if sep and name in keys:
                shown = f"/{path.relative_to(host.root)}"
                found.append(f"{shown} sets {name} after {SYSCTL_FILE}")
    return found


def _limits_lines(want: RlimitWant) -> str:
    spelling = SPELLINGS[want.name]

    def shown(value: int | None) -> str:
        if value is None:
            return "unlimited"
        return str(-(-value // 1024)) if spelling.kib else str(value)

    item = spelling.limits_conf
    return f"* soft {item} {shown(want.soft)}\n* hard {item} {shown(want.hard)}\n"


def _systemd_value(want: RlimitWant) -> str:
    def shown(value: int | None) -> str:
        return "infinity" if value is None else str(value)

    return f"{shown(want.soft)}:{shown(want.hard)}"
