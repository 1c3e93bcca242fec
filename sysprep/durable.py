"""Files written so that a crash leaves the old content or the new, never a mix.

Temp file, fsync, rename, fsync of the directory: the snapshots, the owned files under /etc
and the Prometheus textfile. A FileState is a path as it was (bytes, mode, owner, a symlink,
or absent), so that revert can put it back exactly.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path
from typing import NamedTuple


class FileState(NamedTuple):
    """A path as it is: absent, a regular file (bytes, mode, owner) or a symlink.

    *missing*: for an absent path, its parent directories that did not exist either
    (deepest first): putting "absent" back removes them again, if empty.
    """

    data: bytes | None = None
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    link: str | None = None
    missing: tuple[str, ...] = ()

    @property
    def exists(self) -> bool:
        """True for a file or a symlink."""
        return self.data is not None or self.link is not None


def read_state(path: Path, top: Path) -> FileState:
    """The state of *path*; for an absent one, which parents up to *top* are missing too."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        missing = []
        parent = path.parent
        while parent != top and top in parent.parents and not parent.exists():
            missing.append(str(parent))
            parent = parent.parent
        return FileState(missing=tuple(missing))
    if stat.S_ISLNK(info.st_mode):
        return FileState(link=str(path.readlink()), uid=info.st_uid, gid=info.st_gid)
    mode = stat.S_IMODE(info.st_mode)
    return FileState(path.read_bytes(), mode, info.st_uid, info.st_gid)


def write_state(path: Path, state: FileState) -> None:
    """Make *path* be *state*, atomically: a file or a symlink replaced in one rename."""
    if state.link is not None:
        temp = path.with_name(f".{path.name}.{os.urandom(6).hex()[:8]}")
        temp.symlink_to(state.link)
        os.lchown(temp, state.uid, state.gid)
        temp.replace(path)
        fsync_dir(path.parent)
    elif state.data is None:
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)
        for directory in map(Path, state.missing):  # deepest first
            with contextlib.suppress(OSError):  # not empty: someone else's files are there
                directory.rmdir()
    else:
        write_atomic(path, state.data, mode=state.mode, owner=(state.uid, state.gid))


def write_atomic(
    path: Path,
    data: bytes,
    *,
    mode: int,
    owner: tuple[int, int] | None = None,
    make_parents: bool = True,
) -> None:
    """Replace *path* so that a crash leaves the old content or the new, never a mix.

    *make_parents*: create missing parent directories first (else they must exist).
    """
    import tempfile  # only apply and revert write: keep it off check's import path

    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            if owner is not None and owner != (os.geteuid(), os.getegid()):
                os.fchown(f.fileno(), *owner)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temp files write_atomic left for *path* when killed (.NAME.XXXXXXXX)."""
    stale = re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}")
    removed = []
    if path.parent.is_dir():
        for entry in path.parent.iterdir():
            if stale.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
                entry.unlink()
                removed.append(entry)
    return removed


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in *directory* durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
