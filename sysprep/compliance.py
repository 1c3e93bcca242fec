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
    from sysprep.facts import Rlimit
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


@dataclass(frozen=True)
class AppFailure:
    """A failed item in its application's terms: its check, what was found and is required.

    Then where to set it (for a service, for a login, or on the host), and the check's page.
    """

    application: str
    check: str
    item: str
    found: str
    required: str
    where: tuple[str, ...]
    docs: str

    @property
    def document(self) -> dict[str, object]:
        """The "application" object of a failed setting in `check --profile --json`."""
        return {
            "name": self.application,
            "check": self.check,
            "found": self.found,
            "required": self.required,
            "where": list(self.where),
            "docs": self.docs,
        }


def app_failure(profile: Profile, verdict: Verdict) -> AppFailure | None:
    """*verdict*, failed, as the application the profile is for says it; None otherwise."""
    from sysprep.facts import RLIMITS

    application = profile.application
    check_of = application.checks.get(verdict.item) if application else None
    if application is None or check_of is None or verdict.ok is not False:
        return None
    if verdict.item in RLIMITS:
        where = _rlimit_places(
            profile.name, RLIMITS[verdict.item], verdict.expected, application.user
        )
    else:
        host = (
            f"on the host: sysctl -w {verdict.item}={verdict.shown_expected}; at every boot:"
            f" /etc/sysctl.d/ (sysprep apply {profile.name} --persist does both)"
        )
        where = (host,)
    return AppFailure(application.name, check_of.check, verdict.item, verdict.shown_actual,
                      verdict.shown_expected, where, check_of.docs)  # fmt: skip


def _rlimit_places(
    profile: str, rlimit: Rlimit, expected: object, user: str | None
) -> tuple[str, ...]:
    """Where a service and a login get the rlimit: the unit's Limit*=, limits.d's lines."""
    from sysprep.facts import RLIM_INFINITY
    from sysprep.settings.rlimit import RlimitSetting

    assert isinstance(expected, dict)  # noqa: S101 - an rlimit's verdict is {"soft", "hard"}
    soft, hard = (RLIM_INFINITY if expected[k] is None else expected[k] for k in ("soft", "hard"))
    setting = RlimitSetting(rlimit.name)
    unit, conf = setting.systemd_value, setting.conf_value
    who = user or "USER"
    login = (
        f"'{who} - {rlimit.limits_conf} {conf(soft)}'"
        if soft == hard
        else f"'{who} soft {rlimit.limits_conf} {conf(soft)}' and"
        f" '{who} hard {rlimit.limits_conf} {conf(hard)}'"
    )
    value = unit(soft) if soft == hard else f"{unit(soft)}:{unit(hard)}"
    service = (
        f"for the service: {rlimit.systemd}={value} in its unit's drop-in (sysprep apply"
        f" {profile} --unit NAME); services never read limits.d"
    )
    return (
        service,
        f"for a login as {who}: {login} in /etc/security/limits.d/ ('*' does not match root)",
    )
