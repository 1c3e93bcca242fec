"""A file sysprep owns under /etc: written whole and atomically; revert restores its bytes.

The files are facts.OWNED_FILES; one that apply created is removed again on revert.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

from sysprep.errors import BadInputError
from sysprep.facts import owned_file
from sysprep.procfs import FileState
from sysprep.settings import Action
from sysprep.settings import Change

if TYPE_CHECKING:
    from sysprep.facts import OwnedFile
    from sysprep.host import Host


@dataclass(frozen=True)
class FileSetting:
    """One owned file, by its absolute path (/etc/sysctl.d/90-sysprep.conf)."""

    path: str
    kind: ClassVar[str] = "files"

    @property
    def key(self) -> str:
        """The path."""
        return self.path

    @property
    def takes_effect(self) -> str:
        """When what the file says takes effect."""
        owned = owned_file(self.path)
        return owned.takes_effect if owned else "now"

    def read(self, host: Host) -> FileState:
        """Its state under the host's /etc root: bytes, mode and owner, a symlink, or absent.

        BadInputError when something else stands there (a directory): sysprep writes files.
        """
        try:
            return host.read_etc(self.path)
        except IsADirectoryError:
            raise BadInputError(
                f"{self.path} is a directory, not a file sysprep may replace;"
                " move it away, or apply without --persist"
            ) from None

    def write(self, host: Host, value: FileState) -> None:
        """Make it *value*: replaced atomically, a symlink again, or removed.

        A unit or slice drop-in is then loaded: systemctl daemon-reload.
        """
        host.write_etc(self.path, value)
        if self.path.startswith("/etc/systemd/system/") and host.is_live and host.runs_systemd:
            host.daemon_reload()

    def show(self, value: FileState) -> str:
        """Its size, its link, or "absent"."""
        if value.link is not None:
            return f"symlink to {value.link}"
        return "absent" if value.data is None else f"{len(value.data)} bytes"

    def entry(self, before: FileState, after: FileState) -> dict[str, Any]:
        """{"path", "before", "after"} with the bytes in base64 (null: absent).

        Beside them each state's mode, owner, symlink target and missing parent directories.
        """
        return {
            "path": self.path,
            "before": _b64(before.data),
            "after": _b64(after.data),
            "before_state": _meta(before),
            "after_state": _meta(after),
        }

    def document(self, change: Change) -> dict[str, Any] | None:
        """A file apply writes: {"path", "action"} (create or replace)."""
        if not change.changes:
            return None
        return {"path": self.path, "action": change.action.value}

    @classmethod
    def from_entry(cls, entry: dict[str, Any], host: Host) -> Change:  # noqa: ARG003
        """A recorded change; ValueError for a path sysprep does not write, or bad base64."""
        if owned_file(entry["path"]) is None:
            raise ValueError(f"file {entry['path']!r} is not one sysprep writes")
        before = _state(_unb64(entry["before"]), entry.get("before_state"))
        after = _state(_unb64(entry["after"]), entry.get("after_state"))
        return Change(cls(entry["path"]), before, after, Action.REPLACE)

    def persisted(self, value: FileState, host: Host) -> tuple[tuple[OwnedFile, str], ...]:  # noqa: ARG002
        """Nothing: an owned file is itself what persists."""
        return ()

    def change(self, before: FileState, content: bytes) -> Change:
        """Create or replace it with *content*: an existing file keeps its mode and owner.

        Kept when it already says exactly that.
        """
        if before.data is not None:
            after = before._replace(data=content)
        else:
            after = FileState(content, 0o644, os.geteuid(), os.getegid())
        if before == after:
            return Change(self, before, before, Action.KEEP)
        action = Action.REPLACE if before.exists else Action.CREATE
        return Change(self, before, after, action)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    if text is not None and not isinstance(text, str):
        raise TypeError(f"file bytes must be base64 text, not {text!r}")
    return None if text is None else base64.b64decode(text, validate=True)


def _meta(state: FileState) -> dict[str, Any]:
    return {
        "mode": state.mode,
        "uid": state.uid,
        "gid": state.gid,
        "link": state.link,
        "missing": list(state.missing),
    }


def _state(data: bytes | None, meta: object) -> FileState:
    """A recorded state; a snapshot older than metadata says bytes only (0644, root's)."""
    if meta is None:
        return FileState(data, 0o644, 0, 0)
    if not isinstance(meta, dict):
        raise TypeError(f"file state must be an object, not {meta!r}")
    link, missing = meta["link"], meta["missing"]
    numbers = [meta[key] for key in ("mode", "uid", "gid")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
        raise ValueError(f"file state {meta!r} is malformed")
    if link is not None and not isinstance(link, str):
        raise ValueError(f"file state {meta!r} is malformed")
    if not isinstance(missing, list) or not all(
        isinstance(d, str) and (d + "/").startswith("/etc/") and ".." not in d.split("/")
        for d in missing
    ):
        raise ValueError(f"file state {meta!r} names directories outside /etc")
    return FileState(data, numbers[0] & 0o7777, numbers[1], numbers[2], link, tuple(missing))
