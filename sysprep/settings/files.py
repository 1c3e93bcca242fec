"""A file sysprep owns under /etc: written whole and atomically; revert restores its bytes.

The files are facts.OWNED_FILES; one that apply created is removed again on revert.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

from sysprep.facts import OWNED_FILES
from sysprep.settings import Action
from sysprep.settings import Change

if TYPE_CHECKING:
    from sysprep.facts import OwnedFile
    from sysprep.host import Host

Content = bytes | None  # None: the file does not exist


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
        return OWNED_FILES[self.path].takes_effect

    def read(self, host: Host) -> Content:
        """Its bytes under the host's /etc root."""
        return host.read_etc(self.path)

    def write(self, host: Host, value: Content) -> None:
        """Replace it atomically, or remove it for None."""
        host.write_etc(self.path, value)

    def show(self, value: Content) -> str:
        """Its size, or "absent"."""
        return "absent" if value is None else f"{len(value)} bytes"

    def entry(self, before: Content, after: Content) -> dict[str, Any]:
        """{"path", "before", "after"}, the bytes in base64 (null: absent)."""
        return {"path": self.path, "before": _b64(before), "after": _b64(after)}

    def document(self, change: Change) -> dict[str, Any] | None:
        """A file apply writes: {"path", "action"} (create or replace)."""
        if not change.changes:
            return None
        return {"path": self.path, "action": change.action.value}

    @classmethod
    def from_entry(cls, entry: dict[str, Any], host: Host) -> Change:  # noqa: ARG003
        """A recorded change; ValueError for a path sysprep does not write, or bad base64."""
        if entry["path"] not in OWNED_FILES:
            raise ValueError(f"file {entry['path']!r} is not one sysprep writes")
        before, after = _unb64(entry["before"]), _unb64(entry["after"])
        return Change(cls(entry["path"]), before, after, Action.REPLACE)

    def persisted(self, value: Content, host: Host) -> tuple[tuple[OwnedFile, str], ...]:  # noqa: ARG002
        """Nothing: an owned file is itself what persists."""
        return ()

    def change(self, before: Content, after: bytes) -> Change:
        """Create or replace it with *after*; keep it when it already says exactly that."""
        if before == after:
            return Change(self, before, before, Action.KEEP)
        return Change(self, before, after, Action.CREATE if before is None else Action.REPLACE)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    if text is not None and not isinstance(text, str):
        raise TypeError(f"file bytes must be base64 text, not {text!r}")
    return None if text is None else base64.b64decode(text, validate=True)
