"""Pure planning: a profile and the host's current values in, the changes to make out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sysprep.capacity import check
from sysprep.errors import BadInputError
from sysprep.limits.base import Status
from sysprep.limits.base import Target
from sysprep.profile import AUTO
from sysprep.profile import SYSCTL_BOUNDS

if TYPE_CHECKING:
    from sysprep.host import Host
    from sysprep.profile import Profile
    from sysprep.profile import SysctlWant

RAISE, SET, KEEP = "raise", "set", "keep"
# "auto" writes the minimum plus 1 %, rounded up: tasks come and go, and a second apply of
# the same profile must find the host already tuned, not raise by the few tasks since.
_AUTO_ROUND = 4096


@dataclass(frozen=True)
class SysctlChange:
    """One sysctl: its value now, the value the profile wants, and what apply will do."""

    key: str
    before: str
    wanted: int | str  # the value apply writes
    action: str  # raise (raise-only, below the minimum), set (exact, differs), keep

    @property
    def after(self) -> str:
        """The value the host will hold after apply."""
        return self.before if self.action == KEEP else str(self.wanted)


def plan_sysctls(profile: Profile, host: Host) -> tuple[SysctlChange, ...]:
    """Raise-only by default: a value already higher than asked is kept (a distro's 4194304)."""
    needed = _auto_values(profile, host) if any(w.value == AUTO for w in profile.sysctls) else {}
    return tuple(_change(want, host, needed) for want in profile.sysctls)


def _change(want: SysctlWant, host: Host, needed: dict[str, int]) -> SysctlChange:
    before = host.sysctl(want.key)
    if isinstance(want.value, str) and want.value != AUTO:  # several numbers: exact only
        return SysctlChange(want.key, before, want.value, KEEP if before == want.value else SET)
    minimum = needed[want.key] if want.value == AUTO else int(want.value)
    wanted = minimum
    if want.value == AUTO:
        padded = -(-(minimum + minimum // 100) // _AUTO_ROUND) * _AUTO_ROUND
        wanted = min(padded, SYSCTL_BOUNDS[want.key][1])
    if want.exact:
        action = KEEP if before == str(wanted) else SET
    else:
        try:
            current = int(before)
        except ValueError:
            raise BadInputError(f"sysctl {want.key} holds {before!r}, not a number") from None
        action = RAISE if current < minimum else KEEP
    return SysctlChange(want.key, before, wanted, action)


def _auto_values(profile: Profile, host: Host) -> dict[str, int]:
    """The values check reports as "needed" for the profile's target, within kernel bounds."""
    result = check(host, Target(threads=profile.threads, stack_bytes=profile.stack))
    values = {}
    for reading in result.readings:
        if reading.name in SYSCTL_BOUNDS:
            if reading.status is Status.UNKNOWN or reading.needed is None:
                raise BadInputError(f'cannot size {reading.name} ("auto"): {reading.note}')
            values[reading.name] = min(reading.needed, SYSCTL_BOUNDS[reading.name][1])
    return values
