"""A kernel parameter in /proc/sys: written now, persisted in sysctl.d for every boot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

from sysprep.errors import BadInputError
from sysprep.facts import AUTO_SYSCTLS
from sysprep.facts import SYSCTL_BOUNDS
from sysprep.facts import SYSCTL_FILE
from sysprep.settings import AUTO
from sysprep.settings import Action
from sysprep.settings import Change
from sysprep.settings import Fix
from sysprep.settings import Gone
from sysprep.settings import Want
from sysprep.settings import only_keys

if TYPE_CHECKING:
    from sysprep.facts import OwnedFile
    from sysprep.host import Host

# Any sysctl without bounds of its own: what a long holds.
_LONG = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class SysctlSetting:
    """One sysctl, by its dotted name; its values are the normalised text of /proc/sys."""

    name: str
    kind: ClassVar[str] = "sysctls"
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

    def show(self, value: str) -> str:
        """As /proc/sys says it."""
        return value

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

    def persisted(self, value: str, host: Host) -> tuple[tuple[OwnedFile, str], ...]:  # noqa: ARG002
        """The drop-in line that sets it at boot (sysctl.d(5))."""
        return ((SYSCTL_FILE, f"{self.name} = {value}\n"),)

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
        exact = False
        if isinstance(value, dict):
            only_keys(where, f"sysctl.{name}.", value, frozenset({"value", "exact"}))
            exact = value.get("exact", False)
            if not isinstance(exact, bool):
                raise BadInputError(f"{where}: sysctl {name!r}: exact must be true or false")
            value = value.get("value")
        if value == AUTO:
            if name not in AUTO_SYSCTLS:
                raise BadInputError(
                    f'{where}: sysctl {name!r}: "auto" is only for {", ".join(AUTO_SYSCTLS)}'
                )
            return Want(setting, AUTO, exact)
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
        return Want(setting, value, exact)

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


def _is_integer(text: str) -> bool:
    return text.lstrip("-").isdigit() and text.count("-") <= 1 and text.isascii()
