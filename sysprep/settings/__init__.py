"""What sysprep can change, in one vocabulary: a Setting, a Change of it, a Fix for check.

One class per kind of setting (settings/sysctl.py, rlimit.py, files.py) knows its key, how to
read and write it through the Host (with read-back), how a profile spells it, how it persists
and when that takes effect, and its JSON and snapshot forms. KINDS lists them in the order
apply changes them; a new kind is one new class, added there.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

from sysprep.errors import BadInputError

if TYPE_CHECKING:
    from typing import ClassVar
    from typing import Protocol

    from sysprep.facts import OwnedFile
    from sysprep.host import Host

    # Only a type, as limits.base.Limit is: a Protocol class built at import costs start-up.
    class Setting(Protocol):
        """A writable knob of the host."""

        kind: ClassVar[str]  # its list in a snapshot and in `apply --json`: "sysctls"

        @property
        def key(self) -> str:
            """How it is shown: "vm.max_map_count", "RLIMIT_NPROC of pid 42"."""
            ...

        @property
        def takes_effect(self) -> str:
            """When a write of it takes effect: "now", "at next login", ..."""
            ...

        def read(self, host: Host) -> Any:  # noqa: ANN401 - each kind has its own value type
            """Its value now; Gone when the setting no longer exists."""
            ...

        def write(self, host: Host, value: Any) -> None:  # noqa: ANN401
            """Set it, and read it back: OSError when the host refuses or reads back another."""
            ...

        def show(self, value: Any) -> str:  # noqa: ANN401
            """A value as a person reads it."""
            ...

        def entry(self, before: Any, after: Any) -> dict[str, Any]:  # noqa: ANN401
            """Its snapshot form (SettingKind.from_entry reads it back)."""
            ...

        def document(self, change: Change) -> dict[str, Any] | None:
            """Its entry in `apply --json` (its list: *kind*); None: not listed there."""
            ...

        def persisted(
            self,
            value: Any,  # noqa: ANN401
            host: Host,
        ) -> tuple[tuple[OwnedFile, str], ...]:
            """The lines of the owned files that make *value* survive a reboot or a login."""
            ...

    class SettingKind(Protocol):
        """The class of a kind of setting: reads its snapshot entries back."""

        kind: ClassVar[str]

        @classmethod
        def from_entry(cls, entry: dict[str, Any], host: Host) -> Change:
            """A recorded change; ValueError, KeyError or TypeError when it is malformed."""
            ...


AUTO = "auto"  # a profile value sized by the capacity model from the target


def only_keys(where: str, prefix: str, table: dict[str, Any], allowed: frozenset[str]) -> None:
    """BadInputError naming the first key of a profile's *table* that is not *allowed*."""
    for key in table:
        if key not in allowed:
            hint = f"; expected one of {', '.join(sorted(allowed))}"
            raise BadInputError(f"{where}: unknown key '{prefix}{key}'{hint}")


class Gone(Exception):  # noqa: N818 - it says what happened to the setting, not an error
    """A setting that no longer exists: its interface, module or process is gone.

    *benign*: nothing to restore (a process that exited took its limits along).
    *drift*: something else now stands where it was (a pid reused by another process).
    """

    def __init__(self, reason: str, *, benign: bool = False, drift: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.benign = benign
        self.drift = drift


class Action(str, Enum):
    """What apply does to one setting."""

    RAISE = "raise"  # raise-only: below what the profile asks
    SET = "set"  # exact: differs from what the profile asks
    KEEP = "keep"  # already in place (or higher): left alone
    CREATE = "create"  # an owned file that does not exist yet
    REPLACE = "replace"  # an owned file whose bytes differ


class Change(NamedTuple):
    """One setting: its value before, after apply, and the value the profile asked for."""

    setting: Setting
    before: Any
    after: Any
    action: Action
    wanted: Any = None  # the profile's value as shown in a plan; None: *after*

    @property
    def changes(self) -> bool:
        """True when apply writes this setting."""
        return self.action is not Action.KEEP


class Want(NamedTuple):
    """What a profile asks of one setting: a value (or AUTO), raise-only unless *exact*."""

    setting: Setting
    value: Any
    exact: bool = False


class Fix(NamedTuple):
    """How to lift one limit to *value*: the command for now, the persistent way, and when."""

    setting: str
    value: int | None
    now: str
    persist: str | None
    takes_effect: str
    where: str = "here"  # or "host": from inside a container, only the host can make it
