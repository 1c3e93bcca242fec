"""Rollback snapshots: written atomically before the first change, trusted only if root's."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import stat
import tempfile
import time
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from sysprep.errors import BadInputError
from sysprep.errors import ConflictError
from sysprep.errors import NeedsRootError
from sysprep.errors import SysprepError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sysprep.host import Host

SCHEMA_VERSION = 1
# The only files sysprep writes; a snapshot naming any other path is refused.
OWNED_FILES = (
    "/etc/sysctl.d/90-sysprep.conf",
    "/etc/security/limits.d/90-sysprep.conf",
    "/etc/systemd/system.conf.d/90-sysprep.conf",
)
APPLYING, APPLIED, ROLLED_BACK, REVERTED = "applying", "applied", "rolled-back", "reverted"
STATES = (APPLYING, APPLIED, ROLLED_BACK, REVERTED)


class SnapshotError(SysprepError):
    """A snapshot that cannot be trusted or read; nothing is changed."""

    exit_code = BadInputError.exit_code


@dataclass
class FileState:
    """A file sysprep owns: its bytes before apply (None: it did not exist) and after."""

    path: str
    before: bytes | None
    after: bytes


@dataclass
class Snapshot:
    """What one apply changes: sysctls, rlimits of a pid, and files, each before and after."""

    id: str
    profile: str
    created: float
    boot_id: str
    state: str = APPLYING
    sysctls: list[dict[str, str]] = field(default_factory=list)  # key, before, after
    rlimits: list[dict[str, Any]] = field(default_factory=list)  # pid, name, before, after
    files: list[FileState] = field(default_factory=list)

    @classmethod
    def new(cls, profile: str, host: Host) -> Snapshot:
        """An empty snapshot; its id sorts by time, so the last apply is the last id."""
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{now % 1:.6f}"[1:]
        return cls(f"{stamp}-{profile}", profile, now, _boot_id(host))

    def document(self) -> dict[str, Any]:
        """The JSON form: file bytes in base64."""
        data = asdict(self)
        data["schema_version"] = SCHEMA_VERSION
        data["files"] = [
            {"path": f.path, "before": _b64(f.before), "after": _b64(f.after)} for f in self.files
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
        """Read a snapshot only if root owns it, nobody else may write it, and it is sane."""
        try:
            info = path.lstat()
        except FileNotFoundError:
            raise SnapshotError(f"no snapshot {path}") from None
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
            raise SnapshotError(f"{path}: refusing a snapshot that is a symlink or not a file")
        if info.st_uid != 0:
            raise SnapshotError(
                f"{path}: refusing a snapshot not owned by root (uid {info.st_uid})"
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
        for entry in data["sysctls"]:
            try:
                host.sysctl_path(entry["key"])  # refuses "..", "/" and other escapes
            except BadInputError:
                raise ValueError(f"key {entry['key']!r} is outside /proc/sys") from None
            if not all(isinstance(entry[k], str) for k in ("key", "before", "after")):
                raise ValueError(f"sysctl entry {entry!r} is malformed")
        for entry in data["files"]:
            if entry["path"] not in OWNED_FILES:
                raise ValueError(f"file {entry['path']!r} is not one sysprep writes")
        for entry in data["rlimits"]:
            if not isinstance(entry["pid"], int) or not str(entry["name"]).startswith("RLIMIT_"):
                raise ValueError(f"rlimit entry {entry!r} is malformed")
        files = [
            FileState(f["path"], _unb64(f["before"]), _unb64(f["after"]) or b"")
            for f in data["files"]
        ]
        return cls(
            str(data["id"]),
            str(data["profile"]),
            float(data["created"]),
            str(data["boot_id"]),
            data["state"],
            list(data["sysctls"]),
            list(data["rlimits"]),
            files,
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


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace *path* so that a crash leaves the old content or the new, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in *directory* durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _boot_id(host: Host) -> str:
    try:
        return host.read("proc/sys/kernel/random/boot_id").strip()
    except OSError:
        return "unknown"


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text, validate=True)
