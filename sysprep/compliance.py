"""check --profile: does the judged process meet every item of a profile, and what after it.

Every kind of setting judges its own table (settings/kinds.py): the sysctls on the host; the
rlimits of the judged process (this shell's next program, --pid's, or --unit's as systemd
resolves it); the [unit] table against --unit's service. Then the profile's target: the
threads (and connections) it must hold. An item that cannot be judged is unknown, with its
reason, and the host is not compliant: never a silent pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
from typing import TYPE_CHECKING

from sysprep.capacity import check
from sysprep.limits.base import Status
from sysprep.plan import Situation
from sysprep.settings import Verdict
from sysprep.settings.kinds import KINDS
from sysprep.settings.sysctl import SysctlSetting

if TYPE_CHECKING:
    from sysprep.capacity import Assessment
    from sysprep.host import Host
    from sysprep.limits.base import Reading
    from sysprep.limits.cost import ThreadCost
    from sysprep.profile import Profile
    from sysprep.systemd import Unit


@dataclass(frozen=True)
class Compliance:
    """Each item of a profile against the judged process, and the host as apply would leave it."""

    profile: Profile
    verdicts: tuple[Verdict, ...]
    after: Assessment  # the host with the profile's sysctls applied

    @property
    def compliant(self) -> bool:
        """True when every item was judged and is met."""
        return all(v.ok is True for v in self.verdicts)


def compliance_of(
    profile: Profile,
    host: Host,
    assessment: Assessment,
    cost: ThreadCost | None = None,
    service: Unit | None = None,
) -> Compliance:
    """Judge *profile* for the process *assessment* judged.

    Then assess the host as applying the profile's sysctls would leave it.
    """
    target = assessment.target
    situation = Situation(
        profile, host, pid=target.pid, unit=service.name if service else None,
        known_service=service,
    )  # fmt: skip
    verdicts = [v for kind in KINDS for v in kind.judge(profile.wanted(kind), situation)]
    verdicts += _target_verdicts(assessment)
    sysctls = SysctlSetting.plan(profile.wanted(SysctlSetting), situation).changes
    tuned = replace(
        host, overrides={**host.overrides, **{c.setting.key: c.after for c in sysctls}}
    )
    after = check(tuned, target, cost=cost, unit=service)
    return Compliance(profile, tuple(verdicts), after)


def _target_verdicts(assessment: Assessment) -> list[Verdict]:
    """The target's threads and connections against what the host allows now."""
    target, readings = assessment.target, assessment.readings
    verdicts = []
    if target.threads:
        verdicts.append(
            _target(
                "target.threads",
                target.threads,
                assessment.capacity,
                [r for r in readings if r.unit == "threads"],
            )
        )
    if target.connections:
        verdicts.append(
            _target(
                "target.connections",
                target.connections,
                assessment.connections_capacity,
                [r for r in readings if r.unit == "connections"],
            )
        )
    return verdicts


def _target(key: str, wanted: int, capacity: int | None, readings: list[Reading]) -> Verdict:
    """Met when every limit on it was read and allows it; *capacity*: what they allow now."""
    shown = "no limit binds" if capacity is None else f"{capacity:,} more"
    unread = [r.name for r in readings if r.status is Status.UNKNOWN]
    if unread:
        reason = f"could not read {', '.join(unread)}"
        return Verdict(key, "target", wanted, capacity, None, reason, f"{wanted:,}", shown)
    ok = all(r.status is Status.OK for r in readings)
    return Verdict(key, "target", wanted, capacity, ok, "", f"{wanted:,}", shown)
