"""The owned files that make a profile survive reboot and new logins, and what would beat them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from sysprep.facts import SYSCTL_FILE
from sysprep.settings.files import FileSetting

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sysprep.facts import OwnedFile
    from sysprep.host import Host
    from sysprep.settings import Change
    from sysprep.settings import Setting

# sysctl.d(5): files from all these directories are applied in order of their names;
# procps' `sysctl --system` applies /etc/sysctl.conf after them all.
SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d")


def owned_files(
    profile: str, persisted: Sequence[tuple[Setting, Any]], host: Host
) -> tuple[Change, ...]:
    """The changes to the owned files that persist each (setting, value), one file per kind.

    Each setting says its own lines (Setting.persisted); a file holds a header, its
    preamble and their lines, in the order given.
    """
    header = f"# Written by `sysprep apply {profile} --persist`; `sysprep revert` removes it.\n"
    lines: dict[OwnedFile, list[str]] = {}
    for setting, value in persisted:
        for owned, line in setting.persisted(value, host):
            lines.setdefault(owned, []).append(line)
    changes = []
    for owned, body in lines.items():
        setting = FileSetting(owned.path)
        content = (header + owned.preamble + "".join(body)).encode()
        changes.append(setting.change(setting.read(host), content))
    return tuple(changes)


def later_overrides(host: Host, keys: set[str]) -> list[str]:
    """Files applied after ours at boot that set one of *keys*: they would win."""
    ours = Path(SYSCTL_FILE.path).name
    candidates = [
        path
        for directory in SYSCTL_DIRS
        for path in _under(host, directory).glob("*.conf")
        if path.name > ours
    ]
    candidates.append(host.etc_path("/etc/sysctl.conf"))
    found = []
    for path in candidates:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            key, sep, _ = line.partition("=")
            name = key.strip().lstrip("-")  # "-key = value": ignore errors setting it
            if sep and name in keys:
                found.append(f"{_shown(host, path)} sets {name} after {SYSCTL_FILE.path}")
    return found


def _under(host: Host, directory: str) -> Path:
    """A directory of the host: /etc under its /etc root, the rest under its root."""
    return host.etc_path(directory) if directory.startswith("/etc/") else host.path(directory)


def _shown(host: Host, path: Path) -> str:
    for root in (host.etc_root, host.root):
        if root is not None and root in path.parents:
            return f"/{path.relative_to(root)}"
    return str(path)
