"""What sysprep can change, in one vocabulary: a Setting, a Change of it, a Fix for check.

One class per kind of setting (settings/sysctl.py, rlimit.py, files.py, unit.py) carries
everything about it: its profile table and how an entry of it is read (want), what apply
changes for it (plan), whether the host already meets it (judge), how it reads and writes
itself through the Host (with read-back), how it persists and when that takes effect, and
its JSON and snapshot forms. settings/kinds.py lists the kinds; plan, compliance, profiles,
snapshots and the JSON documents loop over that list, so a new kind is one new class there.
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
    from sysprep.settings.owned import Line
    from sysprep.systemd import Unit

    # Only types, as limits.base.Limit is: a Protocol class built at import costs start-up.
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

        def typed(self, value: Any) -> object:  # noqa: ANN401
            """A value as JSON says it: numbers as numbers, unlimited as null."""
            ...

        def entry(self, before: Any, after: Any) -> dict[str, Any]:  # noqa: ANN401
            """Its snapshot form (SettingKind.from_entry reads it back)."""
            ...

        def document(self, change: Change) -> dict[str, Any] | None:
            """Its entry in `apply --json` (its list: *kind*); None: not listed there."""
            ...

        def persisted(self, change: Change, host: Host) -> tuple[tuple[OwnedFile, Line], ...]:
            """The lines of the owned files that make *change* survive a reboot or a login."""
            ...

        def undo(
            self,
            now: Any,  # noqa: ANN401
            before: Any,  # noqa: ANN401
            after: Any,  # noqa: ANN401
            later: tuple[Change, ...] = (),
        ) -> Undone:
            """What putting back a change (*before* → *after*) means, the setting being *now*.

            *later*: the changes later applies, still applied, made to it, oldest first.
            """
            ...

        def rebase(self, later: Change, before: Any, after: Any) -> Change | None:  # noqa: ANN401
            """*later*, a later apply's change of it, as if *before* → *after* had not been.

            None when *later* did not build on that change.
            """
            ...

    class SettingKind(Protocol):
        """The class of a kind of setting; settings.kinds.KINDS lists them.

        It carries its profile table, its plan, its verdict and its snapshot entries.
        """

        kind: ClassVar[str]  # its list in snapshots and `apply --json`: "sysctls"
        table: ClassVar[str | None]  # its profile table ("sysctl"); None: not in profiles

        @classmethod
        def want(cls, where: str, key: str, value: object, host: Host) -> Want:
            """One entry of its profile table; BadInputError names the file and the key."""
            ...

        @classmethod
        def plan(cls, wants: tuple[Want, ...], situation: Situation) -> Part:
            """What apply changes for *wants* on this host, raise-only unless a want is exact."""
            ...

        @classmethod
        def judge(cls, wants: tuple[Want, ...], situation: Situation) -> tuple[Verdict, ...]:
            """Whether the judged process (or host) already meets each want."""
            ...

        @classmethod
        def from_entry(cls, entry: dict[str, Any], host: Host) -> Change:
            """A recorded change; ValueError, KeyError or TypeError when it is malformed."""
            ...

    class Situation(Protocol):
        """What a kind may ask while planning or judging: the host, the options, the model."""

        host: Host
        pid: int | None  # apply --pid, or the process check judges
        persist: bool
        unit: str | None  # the service named by --unit ("demo.service")

        @property
        def threads(self) -> int:
            """The profile's target: what its "auto" values are sized for."""
            ...

        @property
        def profile_name(self) -> str:
            """The profile's name, for what the plan says."""
            ...

        @property
        def app_user(self) -> str | None:
            """The user the profile's application runs as ([application] user), if it says."""
            ...

        @property
        def service(self) -> Unit | None:
            """The --unit service as systemd resolves it."""
            ...

        @property
        def rlimits(self) -> dict[str, tuple[int | None, int | None]]:
            """The judged process's rlimits (a stopped service's: systemd's); None: unlimited."""
            ...

        @property
        def child_pid_namespace(self) -> bool:
            """True inside a pid namespace with a pid_max of its own (Linux >= 6.14)."""
            ...

        def needed(self, key: str) -> int:
            """What the capacity model says *key* needs for the target ("auto")."""
            ...


AUTO = "auto"  # a profile value sized by the capacity model from the target
# "auto" writes the minimum plus 1 %, rounded up: tasks come and go, and a second apply of
# the same profile must find the host already tuned, not raise by the few tasks since.
_AUTO_ROUND = 4096


def auto_value(minimum: int) -> int:
    """What "auto" writes for a value that must be at least *minimum*."""
    return -(-(minimum + minimum // 100) // _AUTO_ROUND) * _AUTO_ROUND


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


class Undone(NamedTuple):
    """What putting a change back means now: write *value*, or nothing.

    *conflict* names what someone else changed since: never silently overwritten.
    """

    write: bool
    value: Any = None
    conflict: str = ""


class WholeValue:
    """Reverting a setting whose value is one whole (a sysctl, an rlimit, a property).

    Back to the value before the apply while it still holds the apply's; a later apply that
    started from the apply's value takes over the value from before it (revert in any
    order restores what each apply found).
    """

    if TYPE_CHECKING:

        @property
        def key(self) -> str:
            """How it is shown."""
            ...

        def show(self, value: Any) -> str:  # noqa: ANN401
            """A value as a person reads it."""
            ...

    def undo(
        self,
        now: Any,  # noqa: ANN401
        before: Any,  # noqa: ANN401
        after: Any,  # noqa: ANN401
        later: tuple[Change, ...] = (),
    ) -> Undone:
        """Write *before* back where the setting still holds *after*.

        Where a later apply raised it from *after*, it keeps its value: that apply's revert
        puts back *before* (rebase).
        """
        if now == after:
            return Undone(write=True, value=before)
        if now == before:  # never changed: a crash came before this step
            return Undone(write=False)
        if later and later[0].before == after:
            return Undone(write=False)
        shown = f"{self.key} is {self.show(now)}, apply set {self.show(after)}"
        return Undone(write=False, conflict=shown)

    def rebase(self, later: Change, before: Any, after: Any) -> Change | None:  # noqa: ANN401
        """*later* starting from *before* instead of *after*, where it started from *after*."""
        return later._replace(before=before) if later.before == after else None


class Want(NamedTuple):
    """What a profile asks of one setting: a value (or AUTO), raise-only unless *exact*."""

    setting: Setting
    value: Any
    exact: bool = False
    # The value of sysprep's own pid namespace is meant, not the host's (kernel.pid_max =
    # { value = N, pid_namespace = true }, Linux >= 6.14).
    pid_namespace: bool = False


class Part(NamedTuple):
    """A kind's share of a plan.

    *changes* apply writes (and a snapshot records); *persisted* the changes whose lines the
    owned files say (Setting.persisted); *shown* the changes those files make (a unit's
    property), listed in the plan but never written on their own.
    """

    changes: tuple[Change, ...] = ()
    persisted: tuple[Change, ...] = ()
    warnings: tuple[str, ...] = ()
    shown: tuple[Change, ...] = ()


class Verdict(NamedTuple):
    """One profile item against the judged process or host.

    *expected* and *actual* as JSON says them (numbers as numbers, unlimited as null);
    *ok* None: it could not be judged, and *reason* says why (never a pass).
    """

    key: str
    kind: str  # the kind's list name ("sysctls"), or "target"
    expected: object
    actual: object
    ok: bool | None
    reason: str = ""
    shown_expected: str = ""  # as a person reads them
    shown_actual: str = ""
    item: str = ""  # what is judged, whoever holds it: RLIMIT_NOFILE, vm.max_map_count


def verdict(change: Change, expected: Any = None) -> Verdict:  # noqa: ANN401
    """The verdict of a planned *change*: met when apply would keep the value as it is.

    *expected*: the threshold shown, where it is not the value apply would write (an
    "auto" value is met from its minimum, and written padded).
    """
    setting = change.setting
    if expected is None:
        expected = change.after if change.wanted is None else change.wanted
    return Verdict(
        setting.key,
        setting.kind,
        setting.typed(expected),
        setting.typed(change.before),
        not change.changes,
        "",
        setting.show(expected),
        setting.show(change.before),
        item_of(setting),
    )


def unjudged(setting: Setting, wanted: Any, reason: str) -> Verdict:  # noqa: ANN401
    """A want that could not be judged: unknown, with the reason, never a pass."""
    return Verdict(
        setting.key,
        setting.kind,
        setting.typed(wanted),
        None,
        None,
        reason,
        setting.show(wanted),
        "",
        item_of(setting),
    )


def item_of(setting: Setting) -> str:
    """The thing a setting sets: an rlimit by name, of a pid or a unit's Limit*=; else its key."""
    from sysprep.facts import BY_SYSTEMD_PROPERTY

    name = getattr(setting, "name", setting.key)
    return BY_SYSTEMD_PROPERTY[name].name if name in BY_SYSTEMD_PROPERTY else name


class Fix(NamedTuple):
    """How to lift one limit to *value*: the command for now, the persistent way, and when."""

    setting: str
    value: int | None
    now: str
    persist: str | None
    takes_effect: str
    where: str = "here"  # or "host": from inside a container, only the host can make it
