"""Rollback snapshots: written atomically before the first change, trusted only if root's."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from sysprep.durable import write_atomic
from sysprep.errors import BadInputError
from sysprep.errors import ConflictError
from sysprep.errors import NeedsRootError
from sysprep.errors import SysprepError
from sysprep.facts import OWNED_FILES
from sysprep.facts import unit_drop_in
from sysprep.settings.kinds import KINDS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sysprep.host import Host
    from sysprep.settings import Change

SCHEMA_VERSION = 1
# A snapshot id: its UTC time to the microsecond, then the profile's name; never a path.
_ID = re.compile(r"\d{8}T\d{6}\.\d{6}-[A-Za-z0-9_][A-Za-z0-9_.-]*")
_MAX_BYTES = 16 << 20  # a snapshot holds at most three small files and a few values
APPLYING, APPLIED, ROLLED_BACK, REVERTED = "applying", "applied", "rolled-back", "reverted"
# An apply writes its record first, while it plans: one killed then leaves "planning" behind.
PLANNING = "planning"
STATES = (PLANNING, APPLYING, APPLIED, ROLLED_BACK, REVERTED)
# A snapshot's own fields; every other one is a kind's list of settings.
_FIELDS = frozenset(
    {"id", "profile", "created", "boot_id", "state", "schema_version", "pid_namespace"}
)


class SnapshotError(SysprepError):
    """A snapshot that cannot be trusted or read; nothing is changed."""

    exit_code = BadInputError.exit_code


@dataclass
class Snapshot:
    """What one apply changes, each setting before and after, in the order apply makes them.

    On disk each kind of setting has its list ("sysctls", "files", "rlimits"), in its own
    snapshot form; the lists follow KINDS, which is the order apply makes the changes. A
    list a snapshot lacks is empty (it was written before that kind existed); a list of a
    kind this sysprep does not know makes the snapshot unreadable: reverting without it
    would leave those settings changed.
    """

    id: str
    profile: str
    created: float
    boot_id: str
    state: str = APPLYING
    changes: tuple[Change, ...] = ()
    # The pid namespace apply ran in (its inode): kernel.pid_max there is that namespace's
    # own on Linux >= 6.14, and only a revert in the same one writes the same sysctl.
    pid_namespace: int | None = None

    @classmethod
    def new(cls, profile: str, host: Host, changes: tuple[Change, ...]) -> Snapshot:
        """A snapshot of *changes*; its id sorts by time, so the last apply is the last id."""
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{now % 1:.6f}"[1:]
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", profile).lstrip(".") or "profile"
        return cls(
            f"{stamp}-{name}", profile, now, _boot_id(host), APPLYING, changes,
            host.namespace("pid"),
        )  # fmt: skip

    def document(self) -> dict[str, Any]:
        """The JSON form."""
        data: dict[str, Any] = {
            "id": self.id,
            "profile": self.profile,
            "created": self.created,
            "boot_id": self.boot_id,
            "state": self.state,
            "schema_version": SCHEMA_VERSION,
            "pid_namespace": self.pid_namespace,
        }
        for kind in KINDS:
            data[kind.kind] = [
                c.setting.entry(c.before, c.after)
                for c in self.changes
                if c.setting.kind == kind.kind
            ]
        return data

    @property
    def when(self) -> str:
        """When the apply began, in local time."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created))

    def forget(self, state_dir: Path) -> None:
        """Remove the record of an apply that changed nothing."""
        (snapshots_dir(state_dir) / f"{self.id}.json").unlink(missing_ok=True)

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
        if info.st_size > _MAX_BYTES:
            raise SnapshotError(f"{path}: over {_MAX_BYTES >> 20} MiB: not a sysprep snapshot")
        try:
            snapshot = cls._from_document(json.loads(path.read_bytes()), host)
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            reason = "nested too deeply" if isinstance(error, RecursionError) else error
            raise SnapshotError(f"{path}: not a sysprep snapshot: {reason}") from None
        if snapshot.id != path.stem or not _ID.fullmatch(snapshot.id):
            raise SnapshotError(
                f"{path}: not a sysprep snapshot: its id {snapshot.id!r} is not its file name"
            )
        return snapshot

    @classmethod
    def _from_document(cls, data: object, host: Host) -> Snapshot:
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}"
            )
        if data["state"] not in STATES:
            raise ValueError(f"unknown state {data['state']!r}")
        unknown = set(data) - _FIELDS - {kind.kind for kind in KINDS}
        if unknown:
            raise ValueError(f"settings of a kind this sysprep does not know: {min(unknown)!r}")
        lists = [(kind, data.get(kind.kind, [])) for kind in KINDS]
        if not all(isinstance(entries, list) for _, entries in lists):
            raise TypeError("a kind's settings must be a list")
        changes = tuple(
            kind.from_entry(entry, host) for kind, entries in lists for entry in entries
        )
        namespace = data.get("pid_namespace")  # absent from older snapshots
        if namespace is not None and type(namespace) is not int:  # not a bool either
            raise TypeError(f"pid_namespace {namespace!r} is not a namespace's inode")
        return cls(
            str(data["id"]),
            str(data["profile"]),
            float(data["created"]),
            str(data["boot_id"]),
            data["state"],
            changes,
            namespace,
        )


def snapshots_dir(state_dir: Path) -> Path:
    """state_dir/snapshots, created root-only (0700) if missing."""
    directory = state_dir / "snapshots"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    return directory


@dataclass(frozen=True)
class Scan:
    """The snapshots of a state directory, oldest first, and the files refused, with why."""

    directory: Path
    found: list[Snapshot]
    rejected: list[tuple[Path, str]]

    def newest_file(self) -> Path | None:
        """The last snapshot file by name (names sort by time), trusted or not."""
        paths = [path for path, _ in self.rejected]
        paths += [self.directory / f"{snapshot.id}.json" for snapshot in self.found]
        return max(paths, default=None)


def scan_snapshots(state_dir: Path, host: Host) -> Scan:
    """Every snapshot file: read if trusted, else set apart with its reason.

    One untrusted file must not keep `sysprep snapshots` or `sysprep revert ID` from the rest.
    """
    directory = state_dir / "snapshots"
    try:
        paths = sorted(path for path in directory.iterdir() if path.suffix == ".json")
    except FileNotFoundError:
        paths = []
    except PermissionError:
        raise NeedsRootError(
            f"the snapshots in {directory} are root's (mode 0700); run sysprep as root (sudo)"
        ) from None
    found, rejected = [], []
    for path in paths:
        try:
            found.append(Snapshot.load(path, host))
        except SnapshotError as error:  # noqa: PERF203 - a handful of files
            rejected.append((path, str(error).removeprefix(f"{path}: ")))
    return Scan(directory, found, rejected)


def all_snapshots(state_dir: Path, host: Host) -> list[Snapshot]:
    """The trusted snapshots, oldest first."""
    return scan_snapshots(state_dir, host).found


@contextlib.contextmanager
def locked(state_dir: Path, host: Host) -> Iterator[None]:
    """One apply or revert at a time (flock: released by the kernel if sysprep dies).

    Once it holds the lock, it removes the temp files a killed apply or revert left: no
    other sysprep can be writing them.
    """
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
        for path in snapshots_dir(state_dir).glob(".*.json.*"):
            path.unlink()
        units = host.etc_path("/etc/systemd/system").glob("*.service.d")
        drop_ins = [unit_drop_in(path.name.removesuffix(".d")).path for path in units]
        for owned in (*OWNED_FILES, *drop_ins):
            host.remove_stale_etc_temps(owned)
        yield
    finally:
        os.close(fd)


def _boot_id(host: Host) -> str:
    try:
        return host.read("proc/sys/kernel/random/boot_id").strip()
    except OSError:
        return "unknown"
