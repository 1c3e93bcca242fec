"""A file sysprep owns under /etc: written whole and atomically; revert restores its bytes.

The files are facts.OWNED_FILES and the units' drop-ins; one that apply created is removed
again on revert. They are not in profiles: the other kinds' persisted lines make them.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

from sysprep.durable import FileState
from sysprep.errors import BadInputError
from sysprep.facts import owned_file
from sysprep.settings import Action
from sysprep.settings import Change
from sysprep.settings import Part
from sysprep.settings import Undone
from sysprep.settings.owned import HEADER_KEY
from sysprep.settings.owned import Line
from sysprep.settings.owned import changed_lines
from sysprep.settings.owned import merge
from sysprep.settings.owned import unapply

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sysprep.facts import OwnedFile
    from sysprep.host import Host
    from sysprep.settings import Situation
    from sysprep.settings import Verdict
    from sysprep.settings import Want


@dataclass(frozen=True)
class FileSetting:
    """One owned file, by its absolute path (/etc/sysctl.d/90-sysprep.conf)."""

    path: str
    kind: ClassVar[str] = "files"
    table: ClassVar[str | None] = None  # made by the other kinds' persisted lines

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

        BadInputError when something else stands there (a directory), or where a directory
        of its path is something else (a regular file, a dangling symlink): sysprep writes
        files, into directories.
        """
        for parent in PurePosixPath(self.path).parents:
            there = host.etc_path(str(parent))
            if str(parent) != "/" and there.is_symlink() and not there.exists():
                raise BadInputError(
                    f"{parent} is a symlink to nothing; sysprep writes {self.path} only into"
                    " a directory: mend or remove the link, or apply without --persist"
                )
            if there.exists() and not there.is_dir():
                raise BadInputError(
                    f"{parent} is not a directory; sysprep writes {self.path} only into one:"
                    " move it away, or apply without --persist"
                )
        try:
            return host.read_etc(self.path)
        except IsADirectoryError:
            raise BadInputError(
                f"{self.path} is a directory, not a file sysprep may replace;"
                " move it away, or apply without --persist"
            ) from None

    def write(self, host: Host, value: FileState) -> None:
        """Make it *value*: replaced atomically, a symlink again, or removed.

        A systemd file (the manager's defaults, a unit's or the user slices' drop-in) is then
        loaded: systemctl daemon-reload, so that the manager holds what the files say, after
        apply and after revert alike.
        """
        host.write_etc(self.path, value)
        if self._syntax == "systemd" and host.is_live and host.runs_systemd:
            host.daemon_reload()

    def undo(
        self,
        now: FileState,
        before: FileState,
        after: FileState,
        later: tuple[Change, ...] = (),
    ) -> Undone:
        """Back to *before* byte for byte where it is still *after*; else line by line.

        Each line the apply changed goes back where it is still the apply's: what others
        wrote since stays, and so do the lines a later apply (in *later*) changed again;
        any other line changed since is a conflict, named.
        """
        if now == after:
            return Undone(write=True, value=before)
        if now == before:
            return Undone(write=False)
        if not now.exists and not before.exists:  # removed by hand: what apply made is gone
            return Undone(write=True, value=before)  # (its empty directories too)
        syntax = self._syntax
        changed = changed_lines(syntax, before.data, after.data, self.path)
        data, conflicts = unapply(syntax, now.data, changed, self.path)
        taken = {key for t in later for key in changed_lines(
            syntax, t.before.data, t.after.data, self.path)}  # fmt: skip
        conflicts = [key for key in conflicts if key not in taken]
        if conflicts or not changed:
            what = ", ".join("/".join(key) for key in conflicts) or "its mode or owner"
            return Undone(write=False, conflict=f"{self.path}: {what} changed since the apply")
        return Undone(write=True, value=_as(now, before, data))

    def rebase(self, later: Change, before: FileState, after: FileState) -> Change | None:
        """A later apply's change of this file without the lines the change took back."""
        syntax = self._syntax
        changed = changed_lines(syntax, before.data, after.data, self.path)
        new_before = _as(
            later.before, before, unapply(syntax, later.before.data, changed, self.path)[0]
        )
        new_after = _as(
            later.after, before, unapply(syntax, later.after.data, changed, self.path)[0]
        )
        if (new_before, new_after) == (later.before, later.after):
            return None
        return later._replace(before=new_before, after=new_after)

    def lines_changed(self, change: Change) -> list[tuple[str | None, str | None]]:
        """The settings *change* adds or changes: (the line before or None, the line after).

        sysprep's own header comment aside.
        """
        before, after = change.before.data, change.after.data
        changed = changed_lines(self._syntax, before, after, self.path)
        return [edit for key, edit in changed.items() if key != HEADER_KEY]

    @property
    def _syntax(self) -> str:
        owned = owned_file(self.path)
        return owned.syntax if owned else "sysctl"

    def show(self, value: FileState) -> str:
        """Its size (and its mode, when not 0644), its link, or "absent"."""
        if value.link is not None:
            return f"symlink to {value.link}"
        if value.data is None:
            return "absent"
        mode = "" if value.mode == 0o644 else f", mode {value.mode:04o}"  # noqa: PLR2004
        return f"{len(value.data)} bytes{mode}"

    def typed(self, value: FileState) -> object:
        """Its size in bytes, its link, or null when absent."""
        if value.link is not None:
            return value.link
        return None if value.data is None else len(value.data)

    @classmethod
    def want(cls, where: str, key: str, value: object, host: Host) -> Want:  # noqa: ARG003
        """Never: profiles name settings, and these files persist them."""
        raise BadInputError(f"{where}: {key}: files are written by --persist, not named")

    @classmethod
    def plan(cls, wants: tuple[Want, ...], situation: Situation) -> Part:  # noqa: ARG003
        """Nothing of its own: owned_files() writes what the other kinds persist."""
        return Part()

    @classmethod
    def judge(cls, wants: tuple[Want, ...], situation: Situation) -> tuple[Verdict, ...]:  # noqa: ARG003
        """Nothing: the settings the files persist are judged by their own kinds."""
        return ()

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
        """A file apply writes: {"path", "action"} (create or replace), and its "lines".

        Each setting's line it adds or changes: {"before": the old line or null, "after"}.
        """
        if not change.changes:
            return None
        lines = [{"before": old, "after": new} for old, new in self.lines_changed(change)]
        return {"path": self.path, "action": change.action.value, "lines": lines}

    @classmethod
    def from_entry(cls, entry: dict[str, Any], host: Host) -> Change:  # noqa: ARG003
        """A recorded change; ValueError for a path sysprep does not write, or bad base64."""
        if owned_file(entry["path"]) is None:
            raise ValueError(f"file {entry['path']!r} is not one sysprep writes")
        before = _state(_unb64(entry["before"]), entry.get("before_state"))
        after = _state(_unb64(entry["after"]), entry.get("after_state"))
        return Change(cls(entry["path"]), before, after, Action.REPLACE)

    def persisted(self, change: Change, host: Host) -> tuple[tuple[OwnedFile, Line], ...]:  # noqa: ARG002
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


def owned_files(persisted: Sequence[Change], host: Host) -> tuple[Change, ...]:
    """The changes to the owned files that persist each change, one file per kind.

    Each setting says its own lines (Setting.persisted); they are merged into what each
    file holds already (settings.owned): nothing there is lost, a key both name is raised.
    """
    lines: dict[OwnedFile, list[Line]] = {}
    for change in persisted:
        for owned, line in change.setting.persisted(change, host):
            lines.setdefault(owned, []).append(line)
    changes = []
    for owned, wanted in lines.items():
        setting = FileSetting(owned.path)
        before = setting.read(host)
        changes.append(setting.change(before, merge(owned, before.data, wanted)))
    return tuple(changes)


def _as(state: FileState, original: FileState, data: bytes | None) -> FileState:
    """*state* with its bytes now *data*; absent (as *original* was) when None."""
    if data is None:
        return original if not original.exists else FileState(missing=original.missing)
    return state._replace(data=data) if state.exists else original._replace(data=data)


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
