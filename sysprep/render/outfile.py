"""Files other programs collect from a directory: textfiles, NFD's features.d.

node_exporter reads *.prom files, Node Feature Discovery its features.d: each file is
written whole (temp file, rename) so a reader never sees half, and only where that cannot
replace something else.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NamedTuple

from sysprep.durable import write_atomic
from sysprep.errors import BadInputError

# Where no such file may go: the kernel's own files, and devices.
_SPECIAL = ("/proc", "/sys", "/dev")


class OutputFile(NamedTuple):
    """The option that names such a file, and what it should name instead of a wrong one."""

    option: str  # "--prometheus"
    fix: str  # "name a file in node_exporter's textfile directory"

    def check(self, path: Path) -> None:
        """BadInputError unless the file may be written at *path*.

        Only a new file, or a regular file of the caller's own (one link, not a symlink), in
        an existing directory the caller may write, outside /proc, /sys and /dev: the file
        is replaced by a rename, which would put a regular file where a device, a FIFO, a
        socket or a symlink stood. Parent directories are never created.
        """
        named, fix = f"{self.option} {path}", self.fix
        parent = Path(os.path.realpath(path.parent))
        if any(parent == Path(top) or Path(top) in parent.parents for top in _SPECIAL):
            raise BadInputError(f"{named}: under {parent}, not a file for it; {fix}")
        if not parent.is_dir():
            raise BadInputError(f"{named}: no directory {path.parent}; {fix}")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise BadInputError(f"{named}: {path.parent} is not writable here; {fix}")
        try:
            info = path.lstat()
        except FileNotFoundError:
            return
        what = _kind(info.st_mode)
        if what:
            raise BadInputError(f"{named}: refusing to replace {what}; {fix}")
        if info.st_uid != os.geteuid():
            raise BadInputError(f"{named}: refusing to replace uid {info.st_uid}'s file; {fix}")
        if info.st_nlink > 1:
            raise BadInputError(f"{named}: refusing a file with other links; {fix}")

    def write(self, path: Path, text: str) -> None:
        """Write *text* to *path* atomically, once check() allows it."""
        self.check(path)
        write_atomic(path, text.encode(), mode=0o644, make_parents=False)


def _kind(mode: int) -> str:
    """What a non-regular file is ("a symlink", "a device"); "" for a regular file."""
    kinds = (
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "")
