"""Parsers of /proc text, and the kernel log's records: the pure half of the Host's door."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING
from typing import NamedTuple

from sysprep.facts import RLIM_INFINITY
from sysprep.facts import RLIMITS

if TYPE_CHECKING:
    from pathlib import Path
    from typing import BinaryIO

# /proc/PID/maps is read in blocks this large; the last _MAPS_TAIL bytes hold its last lines.
_MAPS_BLOCK = 1 << 20
_MAPS_TAIL = 16384  # two lines, each at most PATH_MAX and the fields
# /proc/PID/limits row titles, by the names getrlimit(2) gives them.
_LIMIT_TITLES = {rlimit.title: rlimit.name for rlimit in RLIMITS.values()}


class Mount(NamedTuple):
    """One line of /proc/PID/mountinfo (proc(5))."""

    root: str
    mount_point: str
    fstype: str
    super_options: frozenset[str]
    options: frozenset[str] = frozenset()  # the mount's own: "ro" or "rw", nosuid, ...


class CgroupEntry(NamedTuple):
    """One line of /proc/PID/cgroup: hierarchy id, controllers, path (v2: id 0, none)."""

    hierarchy: int
    controllers: frozenset[str]
    path: str


class MapsSummary(NamedTuple):
    """What /proc/PID/maps says about a process's address space."""

    mappings: int  # compared with vm.max_map_count
    highest_end: int  # end of the highest mapping, near the top of user space


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo in bytes ("kB" there means KiB); counts (HugePages_*) as they are."""
    info: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if fields:
            info[name] = int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    return info


def parse_status(text: str) -> dict[str, str]:
    """/proc/PID/status as name → raw value."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        result[name] = value.strip()
    return result


def parse_start_time(text: str) -> int:
    """Field 22 of /proc/PID/stat, starttime; the name in field 2 may hold spaces and ")"."""
    return int(text[text.rindex(")") + 2 :].split()[19])


def parse_limits(text: str) -> dict[str, tuple[int | None, int | None]]:
    """/proc/PID/limits as name → (soft, hard); None is unlimited."""
    result: dict[str, tuple[int | None, int | None]] = {}
    for line in text.splitlines()[1:]:
        for title, name in _LIMIT_TITLES.items():
            if line.startswith(title):
                soft, hard = line[len(title) :].split()[:2]
                result[name] = (_limit_value(soft), _limit_value(hard))
    return result


def with_limits_row(text: str, name: str, limits: tuple[int, int]) -> str:
    """/proc/PID/limits text with one row's soft and hard values replaced.

    RLIM_INFINITY is shown as "unlimited", and the columns stay where the kernel puts them.
    """
    title = RLIMITS[name].title
    soft, hard = ("unlimited" if v == RLIM_INFINITY else str(v) for v in limits)
    lines = [
        f"{title:<26}{soft:<21}{hard:<21}{line[68:]}" if line.startswith(title) else line
        for line in text.splitlines()
    ]
    return "\n".join(lines) + "\n"


def summarize_maps(maps: BinaryIO) -> MapsSummary:
    """Mappings in a /proc/PID/maps file, and the end of the highest one.

    A process with a million threads has two million lines: they are counted in large
    blocks, and only the last lines (maps is sorted by address) are parsed.
    """
    count = 0
    tail = b""
    while block := maps.read(_MAPS_BLOCK):
        count += block.count(b"\n")
        tail = (tail + block)[-_MAPS_TAIL:]
    highest = 0
    for line in tail.splitlines()[-2:]:
        # [vsyscall] sits in the kernel half on x86_64; it says nothing about user space.
        if b"-" in line and not line.rstrip().endswith(b"[vsyscall]"):
            highest = max(highest, int(line.split(b"-", 1)[1].split(b" ", 1)[0], 16))
    return MapsSummary(count, highest)


class CgroupDir(NamedTuple):
    """One level of a cgroup path: its directory here, and its path in the hierarchy."""

    path: Path  # /sys/fs/cgroup/pids/system.slice/x.service
    cgroup: str  # /system.slice/x.service, as the kernel log names it
    # The top of what is mounted here, below the hierarchy's root: a container's own cgroup,
    # whose parents (the pod's, the host's) exist but cannot be read from here.
    hidden_above: bool = False


def cgroup_dirs(top: Path, mount: Mount, path: str) -> list[CgroupDir] | None:
    """Directories of cgroup *path* in hierarchy *mount* (at *top*), leaf first.

    *path* (/proc/PID/cgroup) and the mount's root (mountinfo) are both relative to the
    reader's cgroup namespace. A container sees its own cgroup mounted as the top (root: its
    cgroup's path, or "/" of its cgroup namespace): the top is then a level like any other,
    with the container's limits, and the last one visible. Only a hierarchy's root, which
    has no limit files, is left out. None: *path* is not under this mount.
    """
    root = mount.root.rstrip("/")
    if path != mount.root and not path.startswith(root + "/"):
        return None
    level = top.joinpath(path[len(root) :].strip("/"))
    levels = []
    while level != top:
        levels.append(CgroupDir(level, f"{root}/{level.relative_to(top)}"))
        level = level.parent
    if not is_hierarchy_root(top, mount.fstype):
        levels.append(CgroupDir(top, root or "/", hidden_above=True))
    return levels


def is_hierarchy_root(directory: Path, fstype: str) -> bool:
    """True for the root of a cgroup hierarchy, told by its files.

    In v1 only the root has release_agent (cgroup-v1.rst); in v2 only the root lacks
    cgroup.type (cgroup-v2.rst).
    """
    if fstype == "cgroup":
        return directory.joinpath("release_agent").exists()
    return not directory.joinpath("cgroup.type").exists()


def parse_cgroup(text: str) -> list[CgroupEntry]:
    """Lines of /proc/PID/cgroup: "hierarchy:controllers:path"."""
    entries = []
    for line in text.splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        names = frozenset(name for name in controllers.split(",") if name)
        entries.append(CgroupEntry(int(hierarchy), names, path))
    return entries


def parse_mountinfo(text: str) -> list[Mount]:
    """Lines of /proc/PID/mountinfo (proc(5))."""
    mounts = []
    for line in text.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        mounts.append(
            Mount(
                root=_unescape(fields[3]),
                mount_point=_unescape(fields[4]),
                fstype=tail[0],
                super_options=frozenset(tail[2].split(",")) if tail[2:] else frozenset(),
                options=frozenset(fields[5].split(",")) if fields[5:] else frozenset(),
            )
        )
    return mounts


def hierarchy(
    entries: list[CgroupEntry], mounts: list[Mount], controller: str
) -> tuple[str, list[Mount]] | None:
    """The process's path in the hierarchy with *controller*, and the mounts that show it.

    A v1 hierarchy with the controller wins over v2 (hybrid hosts mount both); else v2's,
    whose controllers the caller checks. Of mounts stacked on one mount point only the last
    is visible (a pod's hostPath of the host's /sys/fs/cgroup over the runtime's own).
    """
    entry = next((e for e in entries if controller in e.controllers), None)
    if entry is not None:
        shown = [m for m in mounts if m.fstype == "cgroup" and controller in m.super_options]
    else:
        entry = next((e for e in entries if e.hierarchy == 0), None)
        shown = [m for m in mounts if m.fstype == "cgroup2"]
    visible = list({m.mount_point: m for m in shown}.values())
    return (entry.path, visible) if entry is not None and visible else None


def _limit_value(text: str) -> int | None:
    return None if text == "unlimited" else int(text)


def _unescape(text: str) -> str:
    r"""Mountinfo escapes space, tab, newline and backslash as octal (\040)."""
    if "\\" not in text:
        return text
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)


def parse_version(text: str | None) -> tuple[int, ...]:
    """(6, 18) from a release such as "6.18.44-fc"; () when unknown (below every version)."""
    match = re.match(r"(\d+)\.(\d+)", text or "")
    return (int(match[1]), int(match[2])) if match else ()


def read_kmsg() -> list[str]:
    """Every record /dev/kmsg still holds, without waiting for new ones (root's to read)."""
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    records = []
    try:
        while True:
            try:
                records.append(os.read(fd, 8192).decode(errors="replace"))
            except BlockingIOError:  # noqa: PERF203 - nothing more to read
                break
            except OSError:  # a record overwritten while we read: go on
                continue
    finally:
        os.close(fd)
    return records


def parse_kmsg(record: str) -> tuple[float, str] | None:
    """(seconds after boot, message) of a /dev/kmsg record "PRI,SEQ,USEC,FLAGS;MESSAGE".

    None for a continuation line (" KEY=VALUE") or anything else.
    """
    header, sep, message = record.partition(";")
    fields = header.split(",")
    if not sep or len(fields) < 3 or not fields[2].isdigit():  # noqa: PLR2004 - PRI,SEQ,USEC
        return None
    return int(fields[2]) / 1e6, message.split("\n", 1)[0].strip()
