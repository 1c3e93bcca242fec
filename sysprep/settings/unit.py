"""A property of a systemd service (TasksMax, LimitNPROC, ...): persisted in its drop-in.

systemd reads a unit's properties from its unit file and drop-ins, so this setting is never
written on its own: its value goes in /etc/systemd/system/UNIT.d/90-sysprep.conf (an owned
file, reverted byte for byte), systemd reloads it, and it takes effect at the service's next
(re)start. Without a unit, TasksMax is the default of every service (DefaultTasksMax, in
system.conf.d) and of every user's slice (user-.slice.d).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

from sysprep.errors import BadInputError
from sysprep.facts import BY_SYSTEMD_PROPERTY
from sysprep.facts import CAP_SYS_RESOURCE
from sysprep.facts import NR_OPEN_MAX
from sysprep.facts import PID_MAX_LIMIT
from sysprep.facts import RLIM_INFINITY
from sysprep.facts import RLIMITS
from sysprep.facts import SYSTEMD_FILE
from sysprep.facts import USER_SLICE_FILE
from sysprep.facts import unit_drop_in
from sysprep.settings import AUTO
from sysprep.settings import Action
from sysprep.settings import Change
from sysprep.settings import Part
from sysprep.settings import Want
from sysprep.settings import WholeValue
from sysprep.settings import auto_value
from sysprep.settings import unjudged
from sysprep.settings import verdict
from sysprep.settings.owned import Line
from sysprep.units import parse_size

if TYPE_CHECKING:
    from sysprep.facts import OwnedFile
    from sysprep.host import Host
    from sysprep.settings import Situation
    from sysprep.settings import Verdict
    from sysprep.systemd import Unit

# The properties a profile's [unit] table may raise; those taking sizes.
PROPERTIES = ("TasksMax", *(rlimit.systemd for rlimit in RLIMITS.values()))
_SIZES = frozenset(rlimit.systemd for rlimit in RLIMITS.values() if rlimit.in_bytes)
# TasksMax: a number; a Limit*=: (soft, hard). None: infinity.
Value = int | None | tuple[int | None, int | None]
# "auto" TasksMax leaves the service this many tasks beside the target's threads.
_OWN_TASKS = 64
# The most the kernel takes: pids.max is below pid_max's most, open files below nr_open's.
_HIGHEST = {"TasksMax": PID_MAX_LIMIT, "LimitNOFILE": NR_OPEN_MAX}


@dataclass(frozen=True)
class UnitSetting(WholeValue):
    """One property of service *unit*; None: every service's default and the user slices."""

    name: str  # TasksMax, LimitNPROC, ...
    unit: str | None = None
    kind: ClassVar[str] = "units"
    table: ClassVar[str | None] = "unit"
    takes_effect: ClassVar[str] = "at the service's next (re)start"

    @property
    def key(self) -> str:
        """The property and its unit ("TasksMax of demo.service"), or the default's name."""
        return f"{self.name} of {self.unit}" if self.unit else f"Default{self.name}"

    def read(self, host: Host) -> Value:
        """The value systemd resolved (unit file, drop-ins, defaults); None: infinity.

        TasksMax is a number; a Limit*= is (soft, hard).
        """
        from sysprep.systemd import read_unit

        if self.unit is None:
            raise BadInputError(f"{self.key} is persisted for every service, not read")
        return self.value_in(read_unit(host, self.unit))

    def value_in(self, unit: Unit) -> Value:
        """Its value in *unit* as systemd resolved it."""
        if self.name == "TasksMax":
            return unit.tasks_max
        return unit.rlimits[BY_SYSTEMD_PROPERTY[self.name].name]

    def write(self, host: Host, value: Value) -> None:  # noqa: ARG002
        """Never on its own: the drop-in that persists it is the change apply makes."""
        raise BadInputError(f"{self.key} is set through its drop-in, not written")

    def show(self, value: Value) -> str:
        """A number or infinity; soft:hard for a Limit*=."""
        if isinstance(value, tuple):
            return ":".join(_shown(v) for v in value)
        return _shown(value)

    def typed(self, value: Value) -> object:
        """A number, or null for infinity; {"soft", "hard"} for a Limit*=."""
        if isinstance(value, tuple):
            return {"soft": value[0], "hard": value[1]}
        return value

    def entry(self, before: Value, after: Value) -> dict[str, Any]:
        """{"unit", "name", "before", "after"}; snapshots keep the drop-in itself instead."""
        return {
            "unit": self.unit,
            "name": self.name,
            "before": _json(before),
            "after": _json(after),
        }

    def document(self, change: Change) -> dict[str, Any] | None:
        """A property its drop-in raises: {"unit", "name", "before", "after", "action"}."""
        return {**self.entry(change.before, change.after), "action": change.action.value}

    @classmethod
    def from_entry(cls, entry: dict[str, Any], host: Host) -> Change:  # noqa: ARG003
        """Never recorded: a snapshot keeps the drop-in that sets it, byte for byte."""
        raise ValueError(f"unit entry {entry!r}: a unit's properties are recorded by its drop-in")

    @classmethod
    def plan(cls, wants: tuple[Want, ...], situation: Situation) -> Part:
        """The drop-ins for the profile's [unit] table, raise-only against what systemd says.

        With --unit, that service's drop-in; else, with --persist, every service's
        DefaultTasksMax and the user slices'. Only where systemd runs.
        """
        host, unit = situation.host, situation.unit
        if not wants:
            if unit is None:
                return Part()
            note = (
                f"--unit {unit}: {situation.profile_name} has no [unit] table, so the unit is"
                " left as it is"
            )
            return Part(warnings=(note,))
        if unit is None and not situation.persist:
            return Part()
        if not (host.is_live and host.runs_systemd):
            if unit is not None:
                _ = situation.service  # says why, in one line
            note = "[unit]: systemd is not running here, so no unit or default was changed"
            return Part(warnings=(note,))
        service = situation.service
        changes = []
        for want in wants:
            setting = cls(_property(want), service.name if service else None)
            before = setting.value_in(service) if service else _default(setting.name, host)
            change = setting.change(before, _wanted(want, situation))
            setting.within_reach(change, host)
            changes.append(change)
        raised = tuple(c for c in changes if c.changes)
        notes = []
        if service is not None and service.running and raised:
            notes.append(
                f"{service.name} is running: its new limits take effect when it restarts"
                f" (`systemctl restart {service.name}`; sysprep restarts nothing unless"
                " --restart)"
            )
        return Part(persisted=raised, warnings=tuple(notes), shown=raised)

    def within_reach(self, change: Change, host: Host) -> None:
        """BadInputError when *change* raises a limit past what systemd can give a service.

        systemd sets the limits of a service it starts with setrlimit(2), from PID 1: past
        PID 1's own hard limit (when it lacks CAP_SYS_RESOURCE), or past fs.nr_open for the
        open files, it sets the closest it can, which can be lower than the unit had.
        """
        if self.name == "TasksMax" or not isinstance(change.after, tuple):
            return
        name = BY_SYSTEMD_PROPERTY[self.name].name
        ceiling = _manager_ceiling(host, name)
        before = change.before if isinstance(change.before, tuple) else (None, None)
        for now, after in zip(before, change.after, strict=True):
            raised = after != now and (after is None or (now is not None and after > now))
            if raised and ceiling is not None and (after is None or after > ceiling):
                shown = "infinity" if after is None else f"{after:,}"
                raise BadInputError(
                    f"[unit] {self.name} = {shown} is more than systemd can give"
                    f" {self.unit or 'a service'} here ({ceiling:,}: {_why(host)});"
                    f" ask for at most {ceiling:,}"
                )

    @classmethod
    def judge(cls, wants: tuple[Want, ...], situation: Situation) -> tuple[Verdict, ...]:
        """The --unit service's properties as systemd resolves them.

        Without --unit, the manager's DefaultTasksMax where systemd runs; anything else
        cannot be judged and is unknown.
        """
        host, service = situation.host, situation.service
        verdicts = []
        for want in wants:
            wanted = _wanted(want, situation)
            name = _property(want)
            if service is not None:
                setting = cls(name, service.name)
                verdicts.append(verdict(setting.change(setting.value_in(service), wanted)))
            elif name == "TasksMax" and host.is_live and host.runs_systemd:
                verdicts.append(verdict(cls(name).change(_default(name, host), wanted)))
            elif name == "TasksMax":
                reason = (
                    "systemd is not running here: no DefaultTasksMax to judge; judge the"
                    " service with --unit where it runs"
                )
                verdicts.append(unjudged(cls(name), wanted, reason))
            else:
                reason = f"a service's {name}: give --unit NAME to judge one"
                verdicts.append(unjudged(cls(name), wanted, reason))
        return tuple(verdicts)

    def persisted(self, change: Change, host: Host) -> tuple[tuple[OwnedFile, Line], ...]:  # noqa: ARG002
        """The drop-in line: the unit's, or every service's default and the user slices'."""
        value = self.show(change.after).replace(",", "")
        if self.unit is not None:
            return ((unit_drop_in(self.unit), Line(("Service", self.name), value)),)
        default = (SYSTEMD_FILE, Line(("Manager", f"Default{self.name}"), value))
        if self.name != "TasksMax":
            return (default,)
        return (default, (USER_SLICE_FILE, Line(("Slice", self.name), value)))

    @classmethod
    def want(cls, where: str, key: str, value: object, host: Host) -> Want:  # noqa: ARG003
        """A profile's `[unit]` entry: a number, a size, "auto" (TasksMax), or "infinity".

        Sizes are for the Limit*= of bytes; "auto" sizes TasksMax from the target.
        """
        if key not in PROPERTIES:
            raise BadInputError(
                f"{where}: unknown unit property {key!r}; expected one of {', '.join(PROPERTIES)}"
            )
        if value == AUTO:
            if key != "TasksMax":
                raise BadInputError(f'{where}: unit.{key}: "auto" is only for TasksMax')
            return Want(cls(key), AUTO)
        if key == "TasksMax":
            return Want(cls(key), _one(where, key, value))
        if isinstance(value, dict):
            unknown = set(value) - {"soft", "hard"}
            if unknown:
                raise BadInputError(f"{where}: unknown key 'unit.{key}.{min(unknown)}'")
            soft, hard = value.get("soft"), value.get("hard", value.get("soft"))
        else:
            soft = hard = value
        pair = (_one(where, key, soft), _one(where, key, hard))
        if pair[1] is not None and (pair[0] is None or pair[0] > pair[1]):
            raise BadInputError(f"{where}: unit.{key}: soft is above hard")
        return Want(cls(key), pair)

    def change(self, before: Value, wanted: Value) -> Change:
        """Raise-only, soft and hard each: a higher value (or infinity) is kept."""
        if isinstance(before, tuple) and isinstance(wanted, tuple):
            after: Value = (_higher(before[0], wanted[0]), _higher(before[1], wanted[1]))
        elif isinstance(wanted, tuple):
            raise BadInputError(f"{self.key}: a soft:hard pair for a single number")
        else:
            after = _higher(before if not isinstance(before, tuple) else None, wanted)
        action = Action.KEEP if after == before else Action.RAISE
        return Change(self, before, after, action, wanted)


def _manager_ceiling(host: Host, name: str) -> int | None:
    """The most of rlimit *name* systemd (PID 1) can give a service; None: no bound."""
    ceiling = None
    if not _pid1_may_raise(host):
        hard = host.rlimit(1, name)[1]
        ceiling = None if hard == RLIM_INFINITY else hard
    if name == "RLIMIT_NOFILE":
        nr_open = host.sysctl_int("fs.nr_open")
        ceiling = nr_open if ceiling is None else min(ceiling, nr_open)
    return ceiling


def _pid1_may_raise(host: Host) -> bool:
    """True when PID 1 holds CAP_SYS_RESOURCE: it may raise a hard limit past its own."""
    try:
        return bool(int(host.status(1)["CapEff"], 16) & (1 << CAP_SYS_RESOURCE))
    except (OSError, KeyError, ValueError):
        return True


def _why(host: Host) -> str:
    if _pid1_may_raise(host):
        return "fs.nr_open"
    return "PID 1's own hard limit, and it lacks CAP_SYS_RESOURCE"


def _property(want: Want) -> str:
    """The property a [unit] entry names (TasksMax, LimitNOFILE)."""
    setting = want.setting
    assert isinstance(setting, UnitSetting)  # noqa: S101 - the [unit] table makes these
    return setting.name


def _wanted(want: Want, situation: Situation) -> Value:
    """The profile's value; "auto" TasksMax: the target's threads and the service's own."""
    if want.value == AUTO:
        return auto_value(situation.threads + _OWN_TASKS)
    return want.value  # type: ignore[no-any-return]


def _default(name: str, host: Host) -> int | None:
    """What every service gets now: DefaultTasksMax; other defaults are not raised."""
    from sysprep.systemd import default_tasks_max

    if name != "TasksMax":
        raise BadInputError(f"[unit] {name} needs --unit: only TasksMax has a default raised")
    return default_tasks_max(host)


def _higher(now: int | None, wanted: int | None) -> int | None:
    if now is None or wanted is None:
        return None
    return max(now, wanted)


def _one(where: str, key: str, value: object) -> int | None:
    """One value of a [unit] entry: a number (quoted or not), a size, or infinity (None).

    Bounded as the kernel bounds it: TasksMax by pid_max's most (PID_MAX_LIMIT), the
    open files by fs.nr_open's, any other limit below RLIM_INFINITY.
    """
    if value in ("infinity", "unlimited"):
        return None
    if key in _SIZES and isinstance(value, str) and not value.isdigit():
        try:
            value = parse_size(value)
        except BadInputError as error:
            raise BadInputError(f"{where}: unit.{key}: {error}") from None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)  # "65536" is 65536, as elsewhere in profiles
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BadInputError(
            f'{where}: unit.{key} must be a whole number greater than zero, or "infinity"'
        )
    highest = _HIGHEST.get(key, 2**63 - 1)
    if value > highest:
        raise BadInputError(f"{where}: unit.{key} = {value} is out of range [1, {highest}]")
    return value


def _shown(value: int | None) -> str:
    return "infinity" if value is None else f"{value:,}"


def _json(value: Value) -> object:
    return list(value) if isinstance(value, tuple) else value
