"""Rollback snapshots: written atomically before the first change, trusted only if root's."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from sysprep.errors import BadInputError
from sysprep.errors import ConflictError
from sysprep.errors import NeedsRootError
from sysprep.errors import SysprepError
from sysprep.procfs import write_atomic
from sysprep.settings.kinds import KINDS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sysprep.host import Host
    from sysprep.settings import Change

SCHEMA_VERSION = 1
APPLYING, APPLIED, ROLLED_BACK, REVERTED = "applying", "applied", "rolled-back", "reverted"
STATES = (APPLYING, APPLIED, ROLLED_BACK, REVERTED)


class SnapshotError(SysprepError):
    """A snapshot that cannot be trusted or read; nothing is changed."""

    exit_code = BadInputError.exit_code


@dataclass
class Snapshot:
    """What one apply changes, each setting before and after, in the order apply makes them.

    On disk each kind of setting has its list ("sysctls", "files", "rlimits"), in its own
    snapshot form; the lists follow KINDS, which is the order apply makes the changes.
    """

    id: str
    profile: str
    created: float
    boot_id: str
    state: str = APPLYING
    changes: tuple[Change, ...] = ()

    @classmethod
    def new(cls, profile: str, host: Host, changes: tuple[Change, ...]) -> Snapshot:
        """A snapshot of *changes*; its id sorts by time, so the last apply is the last id."""
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{now % 1:.6f}"[1:]
        return cls(f"{stamp}-{profile}", profile, now, _boot_id(host), APPLYING, changes)

    def document(self) -> dict[str, Any]:
        """The JSON form."""
        data: dict[str, Any] = {
            "id": self.id,
            "profile": self.profile,
            "created": self.created,
            "boot_id": self.boot_id,
            "state": self.state,
            "schema_version": SCHEMA_VERSION,
        }
        for kind in KINDS:
            data[kind.kind] = [
                c.setting.entry(c.before, c.after)
                for c in self.changes
                if c.setting.kind == kind.kind
            ]
        return data

    def save(self, state_dir: Path) -> Path:
        """Write atomically and durably: temp file, fsync, rename, fsync the directory."""
        directory = snapshots_dir(state_dir)
        path = directory / f"{self.id}.json"
        write_atomic(path, json.dumps(self.document(), indent=1).encode(), mode=0o600)
        return path

    @classmethod
    def load(cls, path: Path, host: Host) -> Snapshot:
        """Read a snapshot only if its restorer owns it, nobody else may write it, and it is sane.

        The restorer is root on a real host (revert needs root), the caller on a test tree.
        """
        try:
            info = path.lstat()
        except FileNotFoundError:
            raise SnapshotError(f"no snapshot {path}") from None
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
            raise SnapshotError(f"{path}: refusing a snapshot that is a symlink or not a file")
        owner = 0 if host.is_live else os.geteuid()
        if info.st_uid != owner:
            who = "root" if owner == 0 else f"uid {owner}"
            raise SnapshotError(
                f"{path}: refusing a snapshot not owned by {who} (uid {info.st_uid})"
            )
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise SnapshotError(f"{path}: refusing a snapshot writable by group or others")
        try:
            data = json.loads(path.read_bytes())
            return cls._from_document(data, host)
        except (ValueError, KeyError, TypeError) as error:
            raise SnapshotError(f"{path}: not a sysprep snapshot: {error}") from None

    @classmethod
    def _from_document(cls, data: dict[str, Any], host: Host) -> Snapshot:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}"
            )
        if data["state"] not in STATES:
            raise ValueError(f"unknown state {data['state']!r}")
        changes = tuple(
            kind.from_entry(entry, host) for kind in KINDS for entry in data[kind.kind]
        )
        return cls(
            str(data["id"]),
            str(data["profile"]),
            float(data["created"]),
            str(data["boot_id"]),
            data["state"],
            changes,
        )


def snapshots_dir(state_dir: Path) -> Path:
    """state_dir/snapshots, created root-only (0700) if missing."""
    directory = state_dir / "snapshots"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    return directory


def all_snapshots(state_dir: Path, host: Host) -> list[Snapshot]:
    """Every snapshot, oldest first; an untrusted file stops the listing with its reason."""
    directory = state_dir / "snapshots"
    try:
        paths = sorted(path for path in directory.iterdir() if path.suffix == ".json")
    except FileNotFoundError:
        return []
    except PermissionError:
        raise NeedsRootError(
            f"the snapshots in {directory} are root's (mode 0700); run sysprep as root (sudo)"
        ) from None
    return [Snapshot.load(path, host) for path in paths]


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """One apply or revert at a time (flock: released by the kernel if sysprep dies)."""
    snapshots_dir(state_dir)
    fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConflictError(
                f"another sysprep apply or revert is running ({state_dir / 'lock'} is held);"
                " wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)


def _boot_id(host: Host) -> str:
    try:
        return host.read("proc/sys/kernel/random/boot_id").strip()
    except OSError:
        return "unknown"
