"""The plan: every change a profile asks of this host, built in one place from its readings.

apply walks it, a snapshot records it, rollback and revert walk it backwards, and
`--dry-run`, `check --profile` and the JSON documents all render this same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

from sysprep.capacity import check
from sysprep.errors import BadInputError
from sysprep.facts import AUTO_SYSCTLS
from sysprep.facts import SYSCTL_BOUNDS
from sysprep.facts import SYSCTL_FILE
from sysprep.limits.base import Status
from sysprep.limits.base import Target
from sysprep.persist import earlier_values
from sysprep.persist import later_overrides
from sysprep.persist import owned_files
from sysprep.persist import shown
from sysprep.settings import AUTO
from sysprep.settings import Action
from sysprep.settings import Gone
from sysprep.settings.rlimit import RlimitSetting
from sysprep.settings.sysctl import SysctlSetting
from sysprep.settings.unit import UnitSetting

if TYPE_CHECKING:
    from collections.abc import Callable

    from sysprep.host import Host
    from sysprep.profile import Profile
    from sysprep.settings import Change
    from sysprep.settings import Setting
    from sysprep.settings import Want

# "auto" writes the minimum plus 1 %, rounded up: tasks come and go, and a second apply of
# the same profile must find the host already tuned, not raise by the few tasks since.
_AUTO_ROUND = 4096


@dataclass(frozen=True)
class Plan:
    """The changes for *profile*, in the order apply makes them; KEEP ones included."""

    profile: Profile
    changes: tuple[Change, ...]
    warnings: tuple[str, ...] = ()

    @property
    def to_make(self) -> tuple[Change, ...]:
        """The changes apply writes."""
        return tuple(c for c in self.changes if c.changes)

    @property
    def changed(self) -> bool:
        """True when apply changes (or, dry-run, would change) anything."""
        return bool(self.to_make)

    def of(self, kind: type) -> tuple[Change, ...]:
        """The changes of one kind of setting."""
        return tuple(c for c in self.changes if isinstance(c.setting, kind))


def build_plan(
    profile: Profile,
    host: Host,
    *,
    pid: int | None = None,
    persist: bool = False,
    unit: str | None = None,
) -> Plan:
    """Raise-only by default: a value already higher than asked is kept (a distro's 4194304).

    Sysctls always; a running process's rlimits with *pid* (prlimit); with *persist*, the
    files that make both survive reboot and new logins.
    """
    sysctls = plan_sysctls(profile, host)
    rlimits = profile.wanted(RlimitSetting)
    files: tuple[Change, ...] = ()
    warnings: list[str] = []
    if persist:
        persisted, warnings = _boot_values(sysctls, host)
        logins = [_login_change(want, host) for want in rlimits]
        persisted += [(c.setting, c.after) for c in logins if c.changes]
        files = owned_files(profile.name, persisted, host)
        warnings += later_overrides(host, {c.setting.key for c in sysctls if c.changes})
        if any(c.changes for c in logins):
            warnings.append(
                "limits.d's '*' lines do not apply to root (pam_limits): root's logins keep"
                " their limits; systemd services read only the systemd drop-in"
            )
    services, notes = _unit_files(profile, host, unit, persist=persist)
    files = (*files, *services)
    warnings += notes
    processes: tuple[Change, ...] = ()
    if pid is not None:
        processes = tuple(_rlimit_change(want, pid, host) for want in rlimits)
    elif rlimits and not persist:
        warnings.append("rlimits are applied only with --persist (limits.d) or --pid (prlimit)")
    return Plan(profile, (*sysctls, *files, *processes), tuple(warnings))


def _unit_files(
    profile: Profile, host: Host, unit: str | None, *, persist: bool
) -> tuple[tuple[Change, ...], list[str]]:
    """The drop-ins for the profile's [unit] table, raise-only against what systemd says.

    With *unit*, that service's drop-in; else, with --persist, every service's
    DefaultTasksMax and the user slices'. Only where systemd runs.
    """
    wants = profile.wanted(UnitSetting)
    if not wants and unit is not None:
        return (), [
            f"--unit {unit}: {profile.name} has no [unit] table, so the unit is left as it is"
        ]
    if not wants or (unit is None and not persist):
        return (), []
    if not (host.is_live and host.runs_systemd):
        if unit is not None:
            from sysprep.systemd import read_unit

            read_unit(host, unit)  # says why, in one line
        return (), ["[unit]: systemd is not running here, so no unit or default was changed"]
    from sysprep.systemd import default_tasks_max
    from sysprep.systemd import unit_name

    name = unit_name(unit) if unit else None
    changes = []
    for want in wants:
        setting = UnitSetting(cast("UnitSetting", want.setting).name, name)
        wanted = want.value
        if wanted == AUTO:
            wanted = (
                -(-(profile.threads + profile.threads // 100 + 64) // _AUTO_ROUND) * _AUTO_ROUND
            )
        before = setting.read(host) if name else _default(setting.name, host, default_tasks_max)
        changes.append(setting.change(before, wanted))
    persisted = [(c.setting, c.after) for c in changes if c.changes]
    notes = []
    if name and persisted:
        from sysprep.systemd import read_unit

        if read_unit(host, name).running:
            notes.append(
                f"{name} is running: its new limits take effect when it restarts"
                f" (`systemctl restart {name}`; sysprep restarts nothing unless --restart)"
            )
    return owned_files(profile.name, persisted, host), notes


def _default(name: str, host: Host, default_tasks_max: Callable[[Host], int | None]) -> int | None:
    """What every service gets now: DefaultTasksMax; other defaults are not raised."""
    if name != "TasksMax":
        raise BadInputError(f"[unit] {name} needs --unit: only TasksMax has a default raised")
    return default_tasks_max(host)


def _boot_values(
    sysctls: tuple[Change, ...], host: Host
) -> tuple[list[tuple[Setting, Any]], list[str]]:
    """What the sysctl.d drop-in says: each raised value, or what a file before it sets.

    Where a file applied earlier at boot sets more (50-pid-max.conf's 4194304), the drop-in
    says that: sorting after it, it must never lower it.
    """
    persisted: list[tuple[Setting, Any]] = []
    warnings = []
    for change in (c for c in sysctls if c.changes):
        value = change.after
        if change.action is Action.RAISE:
            for path, earlier in earlier_values(host, change.setting.key):
                if earlier > int(value):
                    value = str(earlier)
                    warnings.append(
                        f"{shown(host, path)} sets {change.setting.key} = {earlier} at boot,"
                        f" before {SYSCTL_FILE.path}: the drop-in keeps {earlier}, not"
                        f" {change.after}"
                    )
        persisted.append((change.setting, value))
    return persisted, warnings


def plan_sysctls(profile: Profile, host: Host) -> tuple[Change, ...]:
    """The profile's sysctls against the host's values (what `check --profile` compares)."""
    wants = profile.wanted(SysctlSetting)
    needed = _auto_values(profile, host) if any(w.value == AUTO for w in wants) else {}
    return tuple(_sysctl_change(want, host, needed) for want in wants)


def _sysctl_change(want: Want, host: Host, needed: dict[str, int]) -> Change:
    setting = cast("SysctlSetting", want.setting)
    before = setting.read(host)
    if want.value != AUTO:
        return setting.change(before, want.value, exact=want.exact)
    minimum = needed[setting.key]
    padded = -(-(minimum + minimum // 100) // _AUTO_ROUND) * _AUTO_ROUND
    wanted = min(padded, SYSCTL_BOUNDS[setting.key][1])
    return setting.change(before, wanted, exact=want.exact, minimum=minimum)


def _login_change(want: Want, host: Host) -> Change:
    """An rlimit for the logins and services started later, against this process's own.

    Raise-only, so a profile never lowers a host's larger default (nproc 96,365 here).
    """
    setting = cast("RlimitSetting", want.setting)
    return setting.change(setting.read(host), want.value)


def _rlimit_change(want: Want, pid: int, host: Host) -> Change:
    try:
        setting = RlimitSetting(want.setting.key, pid).identified(host)
        return setting.change(setting.read(host), want.value)
    except Gone:
        raise BadInputError(f"no process with pid {pid}") from None


def _auto_values(profile: Profile, host: Host) -> dict[str, int]:
    """The values check reports as "needed" for the profile's target.

    BadInputError when one is past what the kernel accepts: never a silent clamp.
    """
    target = Target(
        threads=profile.threads,
        stack_bytes=profile.stack,
        runtime=profile.runtime,
        runtime_from="profile",
    )
    result = check(host, target)
    values = {}
    for reading in result.readings:
        if reading.name in AUTO_SYSCTLS:
            if reading.status is Status.UNKNOWN or reading.needed is None:
                raise BadInputError(f'cannot size {reading.name} ("auto"): {reading.note}')
            highest = SYSCTL_BOUNDS[reading.name][1]
            if reading.needed > highest:
                raise BadInputError(
                    f"{profile.path}: target.threads = {profile.threads:,} needs"
                    f" {reading.name} = {reading.needed:,}, above the kernel's maximum"
                    f" {highest:,}; lower target.threads"
                )
            values[reading.name] = reading.needed
    return values
