"""A kernel parameter in /proc/sys: written now, persisted in sysctl.d for every boot.

Profiles spell it in [sysctl]: a number, several ("1024 65535"), or "auto" for the values
the capacity model sizes from the target (facts.AUTO_SYSCTLS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

from sysprep.errors import BadInputError
from sysprep.facts import AUTO_SYSCTLS
from sysprep.facts import DEFAULT_MAX_MAP_COUNT
from sysprep.facts import MODE_SYSCTLS
from sysprep.facts import PID_MAX_DEFAULT
from sysprep.facts import PID_MAX_LIMIT
from sysprep.facts import PIDS_PER_CPU_MIN
from sysprep.facts import SYSCTL_BOUNDS
from sysprep.facts import SYSCTL_FILE
from sysprep.settings import AUTO
from sysprep.settings import Action
from sysprep.settings import Change
from sysprep.settings import Fix
from sysprep.settings import Gone
from sysprep.settings import Part
from sysprep.settings import Want
from sysprep.settings import WholeValue
from sysprep.settings import auto_value
from sysprep.settings import only_keys
from sysprep.settings import unjudged
from sysprep.settings import verdict
from sysprep.settings.owned import Line
from sysprep.settings.sysctl_d import earlier_values
from sysprep.settings.sysctl_d import later_overrides
from sysprep.settings.sysctl_d import shown

if TYPE_CHECKING:
    from sysprep.facts import OwnedFile
    from sysprep.host import Host
    from sysprep.settings import Situation
    from sysprep.settings import Verdict

# Any sysctl without bounds of its own: what a long holds.
_LONG = (-(2**63), 2**63 - 1)
PID_MAX = "kernel.pid_max"
_HOSTS_PID_MAX = (
    "inside a pid namespace: its own pid_max shows here, but the host's binds too and cannot"
    " be read from here; judge it on the host, or in a pod with hostPID: true"
)


@dataclass(frozen=True)
class SysctlSetting(WholeValue):
    """One sysctl, by its dotted name; its values are the normalised text of /proc/sys."""

    name: str
    kind: ClassVar[str] = "sysctls"
    table: ClassVar[str | None] = "sysctl"
    takes_effect: ClassVar[str] = "now"  # and at every boot once a drop-in says it

    @property
    def key(self) -> str:
        """The dotted name."""
        return self.name

    @property
    def bounds(self) -> tuple[int, int]:
        """The values the kernel accepts (proc_dointvec_minmax), where sysprep knows them."""
        return SYSCTL_BOUNDS.get(self.name, _LONG)

    def read(self, host: Host) -> str:
        """Its value, whitespace normalised (a tab and a space compare equal)."""
        try:
            return host.sysctl(self.name)
        except FileNotFoundError:
            raise Gone("it no longer exists in /proc/sys") from None

    def write(self, host: Host, value: str) -> None:
        """Write /proc/sys and read it back."""
        host.write_sysctl(self.name, value)

    def show(self, value: str | int) -> str:
        """As /proc/sys says it."""
        return str(value)

    def typed(self, value: str | int) -> object:
        """One whole number as a number; several ("1024 65535") as the text."""
        text = str(value)
        return int(text) if _is_integer(text) else text

    def entry(self, before: str, after: str) -> dict[str, Any]:
        """{"key", "before", "after"}, as snapshots and `apply --json` say it."""
        return {"key": self.name, "before": before, "after": after}

    def document(self, change: Change) -> dict[str, Any]:
        """Every sysctl of the plan, kept ones too: {"key", "before", "after", "action"}."""
        return {**self.entry(change.before, change.after), "action": change.action.value}

    @classmethod
    def from_entry(cls, entry: dict[str, Any], host: Host) -> Change:
        """A recorded change; ValueError for a key outside /proc/sys or a value not text."""
        try:
            host.sysctl_path(entry["key"])  # refuses "..", "/" and other escapes
        except BadInputError:
            raise ValueError(f"key {entry['key']!r} is outside /proc/sys") from None
        if not all(isinstance(entry[k], str) for k in ("key", "before", "after")):
            raise ValueError(f"sysctl entry {entry!r} is malformed")
        return Change(cls(entry["key"]), entry["before"], entry["after"], Action.SET)

    def persisted(self, change: Change, host: Host) -> tuple[tuple[OwnedFile, Line], ...]:  # noqa: ARG002
        """The drop-in line that sets it at boot (sysctl.d(5)); exact where apply sets it so."""
        exact = change.action is Action.SET
        return ((SYSCTL_FILE, Line((self.name,), str(change.after), exact)),)

    def fix(self, value: int, *, where: str = "here") -> Fix:
        """The sysctl -w for now; the drop-in for boot (it sorts after 50-pid-max.conf).

        *where* "host": from inside a container, only the host can set it; the fix says so.
        """
        if where == "host":
            return Fix(
                setting=self.name,
                value=value,
                now=(
                    f"on the host: sysctl -w {self.name}={value} (a container cannot set it;"
                    " on Kubernetes: the node's sysctl configuration or a privileged DaemonSet)"
                ),
                persist=f"on the host: add '{self.name} = {value}' to {SYSCTL_FILE.path}",
                takes_effect="now, for every container of the host",
                where="host",
            )
        return Fix(
            setting=self.name,
            value=value,
            now=f"sysctl -w {self.name}={value}",
            persist=f"add '{self.name} = {value}' to {SYSCTL_FILE.path}",
            takes_effect="now; the drop-in at every boot",
        )

    def fix_within(self, needed: int, *, current: int, reach: int, where: str = "here") -> Fix:
        """The fix for *needed*, as far as the kernel's maximum goes.

        *reach*: the threads (or connections) the sysctl would allow at that maximum. Past
        it, the fix says so and names the most the target can be; a sysctl already at the
        maximum gets no command at all, since it would change nothing.
        """
        highest = self.bounds[1]
        if needed <= highest:
            return self.fix(needed, where=where)
        short = (
            f"{needed:,} is past the kernel's maximum of {highest:,}: lower the target to"
            f" {max(reach, 0):,} or fewer"
        )
        if current >= highest:
            return Fix(
                setting=self.name,
                value=None,
                now=f"none: {self.name} is at the kernel's maximum already; {short}",
                persist=None,
                takes_effect="never: no value is higher",
                where=where,
            )
        raised = self.fix(highest, where=where)
        return raised._replace(now=f"{raised.now} (the maximum); still, {short}")

    @classmethod
    def want(cls, where: str, name: str, value: object, host: Host) -> Want:
        """A profile's `[sysctl]` entry; BadInputError names the file and the key.

        A number, "auto", text of numbers, or a table {value = ..., exact = true}.
        """
        setting = cls(name)
        try:
            proc_path = host.sysctl_path(name)
        except BadInputError:
            raise BadInputError(
                f"{where}: sysctl {name!r} is not a sysctl name (it would leave /proc/sys)"
            ) from None
        if not proc_path.is_file():
            raise BadInputError(f"{where}: sysctl {name!r} does not exist on this kernel")
        try:
            host.sysctl(name)
        except PermissionError:
            raise BadInputError(
                f"{where}: sysctl {name!r} cannot be read (write-only, or root's): sysprep"
                " sets only what it can read back and restore"
            ) from None
        value, exact, own = _options(where, name, value)
        if value == AUTO:
            if name not in AUTO_SYSCTLS:
                raise BadInputError(
                    f'{where}: sysctl {name!r}: "auto" is only for {", ".join(AUTO_SYSCTLS)}'
                )
            return Want(setting, AUTO, exact, pid_namespace=own)
        if isinstance(value, str) and len(value.split()) == 1 and _is_integer(value.strip()):
            value = int(value)  # "65000" is 65000: bounds and raise-only apply to it too
        if isinstance(value, str):  # several numbers, e.g. ip_local_port_range "1024 65535"
            if not value.split() or not all(_is_integer(part) for part in value.split()):
                raise BadInputError(
                    f'{where}: sysctl {name!r} must be a whole number, "auto" or numbers'
                    f' such as "1024 65535", not {value!r}'
                )
            return Want(setting, " ".join(value.split()), exact=True)
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadInputError(
                f'{where}: sysctl {name!r} must be a whole number or "auto", not {value!r}'
            )
        low, high = setting.bounds
        if not low <= value <= high:
            raise BadInputError(
                f"{where}: sysctl {name!r} = {value} is out of range [{low}, {high}]"
            )
        return Want(setting, value, exact or name in MODE_SYSCTLS, pid_namespace=own)

    @classmethod
    def plan(cls, wants: tuple[Want, ...], situation: Situation) -> Part:
        """Each sysctl against the host's value; with --persist, the sysctl.d lines too."""
        changes = tuple(_planned(want, situation) for want in wants)
        if not situation.persist:
            return Part(changes)
        persisted, warnings = _boot_values(wants, changes, situation.host)
        warnings += later_overrides(situation.host, {c.setting.key for c in persisted})
        return Part(changes, tuple(persisted), tuple(warnings))

    @classmethod
    def judge(cls, wants: tuple[Want, ...], situation: Situation) -> tuple[Verdict, ...]:
        """Met when the host's value is at least the profile's, or exactly it if exact.

        For "auto", at least what the capacity model says the target needs.
        """
        verdicts = []
        for want in wants:
            minimum = situation.needed(want.setting.key) if want.value == AUTO else want.value
            own = situation.child_pid_namespace and not want.pid_namespace
            if want.setting.key == PID_MAX and own:
                verdicts.append(unjudged(want.setting, minimum, _HOSTS_PID_MAX))
                continue
            try:
                verdicts.append(verdict(_planned(want, situation), minimum))
            except (Gone, OSError) as error:
                reason = error.reason if isinstance(error, Gone) else str(error)
                verdicts.append(unjudged(want.setting, minimum, f"could not read: {reason}"))
        return tuple(verdicts)

    def change(
        self, before: str, wanted: int | str, *, exact: bool, minimum: int | None = None
    ) -> Change:
        """Raise-only unless *exact*: a value at least *minimum* (default *wanted*) is kept."""
        if isinstance(wanted, str):  # several numbers: exact only
            action = Action.KEEP if before == wanted else Action.SET
        elif exact:
            action = Action.KEEP if before == str(wanted) else Action.SET
        else:
            try:
                current = int(before)
            except ValueError:
                raise BadInputError(f"sysctl {self.name} holds {before!r}, not a number") from None
            action = (
                Action.RAISE if current < (wanted if minimum is None else minimum) else Action.KEEP
            )
        after = before if action is Action.KEEP else str(wanted)
        return Change(self, before, after, action, wanted)


def _options(where: str, name: str, value: object) -> tuple[object, bool, bool]:
    """(value, exact, pid_namespace) of an entry: a bare value, or a table of them."""
    if not isinstance(value, dict):
        return value, False, False
    keys = {"value", "exact", "pid_namespace"} if name == PID_MAX else {"value", "exact"}
    only_keys(where, f"sysctl.{name}.", value, frozenset(keys))
    exact, own = value.get("exact", False), value.get("pid_namespace", False)
    for option, given in (("exact", exact), ("pid_namespace", own)):
        if not isinstance(given, bool):
            raise BadInputError(f"{where}: sysctl {name!r}: {option} must be true or false")
    return value.get("value"), exact, own


def _planned(want: Want, situation: Situation) -> Change:
    """The change *want* asks of the host now; "auto" writes what the target needs, padded."""
    setting = want.setting
    assert isinstance(setting, SysctlSetting)  # noqa: S101 - the [sysctl] table makes these
    before = setting.read(situation.host)
    if want.value != AUTO:
        return setting.change(before, want.value, exact=want.exact)
    minimum = situation.needed(setting.key)
    wanted = min(auto_value(minimum), SYSCTL_BOUNDS[setting.key][1])
    return setting.change(before, wanted, exact=want.exact, minimum=minimum)


def _boot_values(
    wants: tuple[Want, ...], changes: tuple[Change, ...], host: Host
) -> tuple[list[Change], list[str]]:
    """What the sysctl.d drop-in says: the value after apply, or what a file before it sets.

    A value the host holds already is persisted as it is where the boot would not set it
    again (raised by hand, or by an apply without --persist): not a kernel default, nor one
    a file applied earlier at boot sets. Where such a file sets more (50-pid-max.conf's
    4194304), the drop-in says that: sorting after it, it must never lower it.
    """
    persisted: list[Change] = []
    warnings = []
    for want, change in zip(wants, changes, strict=True):
        if want.exact or not isinstance(change.wanted, int):  # a mode or a tuple: as asked
            persisted.append(change._replace(after=str(change.wanted), action=Action.SET))
            continue
        value = change.after
        earlier = earlier_values(host, change.setting.key)
        if not change.changes and (
            any(number >= change.wanted for _, number in earlier)
            or _kernel_default(host, change.setting.key, int(change.before))
        ):
            continue  # the boot sets it again
        for path, number in earlier:
            if number > int(value):
                value = str(number)
                warnings.append(
                    f"{shown(host, path)} sets {change.setting.key} = {number} at boot,"
                    f" before {SYSCTL_FILE.path}: the drop-in keeps {number}, not"
                    f" {change.after}"
                )
        persisted.append(change._replace(after=value))
    return persisted, warnings


def _kernel_default(host: Host, key: str, value: int) -> bool:
    """True when *value* may be the kernel's default for *key* here: every boot sets it again.

    A sysctl whose default sysprep cannot tell is assumed to hold it.

    vm.max_map_count and kernel.pid_max: facts.py's defaults; kernel.threads-max: RAM /
    (8 x THREAD_SIZE), within 2 % (kernel/fork.c).
    """
    if key == "vm.max_map_count":
        return value == DEFAULT_MAX_MAP_COUNT
    try:
        if key == "kernel.pid_max":
            try:
                cpus = host.possible_cpus()
            except FileNotFoundError:
                return value == PID_MAX_DEFAULT
            return value == min(max(PID_MAX_DEFAULT, PIDS_PER_CPU_MIN * cpus), PID_MAX_LIMIT)
        if key == "kernel.threads-max":
            thread_size = 16384 if host.page_size() == 4096 else 65536  # noqa: PLR2004
            default = host.meminfo()["MemTotal"] // (8 * thread_size)
            return abs(value - default) <= default // 50
    except (OSError, KeyError, ValueError):
        return True
    return True


def _is_integer(text: str) -> bool:
    return text.lstrip("-").isdigit() and text.count("-") <= 1 and text.isascii()
