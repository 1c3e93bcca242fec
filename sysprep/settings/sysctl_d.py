"""sysctl.d at boot: the files `sysctl --system` applies, in order, and what each sets.

A drop-in of sysprep's sorts among them by name: what a file before it sets, it must never
lower; what a file after it (or /etc/sysctl.conf) sets wins at boot, and apply says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sysprep.facts import SYSCTL_FILE

if TYPE_CHECKING:
    from sysprep.host import Host

# sysctl.d(5): files from all these directories are applied in order of their names;
# procps' `sysctl --system` applies /etc/sysctl.conf after them all.
_SLASHES_TO_DOTS = str.maketrans("/.", "./")
SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d")


def boot_order(host: Host) -> list[Path]:
    """The files sysctl --system applies at boot, in its order, each once.

    sysctl.d(5): every directory's *.conf sorted by name together, a name in /etc hiding
    the same name further down the list of directories; /etc/sysctl.conf last. A file
    reached twice (Debian's /etc/sysctl.d/99-sysctl.conf links to ../sysctl.conf) counts once.
    """
    by_name: dict[str, Path] = {}
    for directory in SYSCTL_DIRS:
        for path in sorted(_under(host, directory).glob("*.conf")):
            by_name.setdefault(path.name, path)
    ordered = [by_name[name] for name in sorted(by_name)]
    ordered.append(host.etc_path("/etc/sysctl.conf"))
    seen: set[Path] = set()
    unique = []
    for path in ordered:
        real = path.resolve()
        if real not in seen and path.is_file():
            seen.add(real)
            unique.append(path)
    return unique


def settings_in(path: Path) -> dict[str, str]:
    """The sysctls a file sets: key → value; "kernel/pid_max" spells kernel.pid_max too."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    found = {}
    for line in lines:
        key, sep, value = line.partition("=")
        name = key.strip().lstrip("-")  # "-key = value": ignore errors setting it
        if not sep or not name or name.startswith(("#", ";")):
            continue
        if "/" in name:  # procps takes /proc/sys paths too; then dots are part of names
            name = name.translate(_SLASHES_TO_DOTS)
        found[name] = " ".join(value.split())
    return found


def later_overrides(host: Host, keys: set[str]) -> list[str]:
    """Files applied after ours at boot that set one of *keys*: they would win."""
    ours = Path(SYSCTL_FILE.path).name
    return [
        f"{shown(host, path)} sets {name} after {SYSCTL_FILE.path}"
        for path in boot_order(host)
        if path.name > ours or path.name == "sysctl.conf"
        for name in settings_in(path)
        if name in keys and path.name != ours
    ]


def earlier_values(host: Host, key: str) -> list[tuple[Path, int]]:
    """Whole-number values files applied before ours at boot give *key*, with the file."""
    ours = Path(SYSCTL_FILE.path).name
    found = []
    for path in boot_order(host):
        value = settings_in(path).get(key, "")
        if path.name < ours and path.name != "sysctl.conf" and value.lstrip("-").isdigit():
            found.append((path, int(value)))
    return found


def _under(host: Host, directory: str) -> Path:
    """A directory of the host: /etc under its /etc root, the rest under its root."""
    return host.etc_path(directory) if directory.startswith("/etc/") else host.path(directory)


def shown(host: Host, path: Path) -> str:
    """A host path as the host itself names it (/usr/lib/sysctl.d/...)."""
    for root in (host.etc_root, host.root):
        if root is not None and root in path.parents:
            return f"/{path.relative_to(root)}"
    return str(path)
