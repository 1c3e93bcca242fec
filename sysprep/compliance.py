"""check --profile: is the host tuned as a profile says, and what would it hold after it."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
from typing import TYPE_CHECKING

from sysprep.capacity import Assessment
from sysprep.capacity import check
from sysprep.plan import plan_sysctls

if TYPE_CHECKING:
    from sysprep.host import Host
    from sysprep.limits.base import Target
    from sysprep.limits.cost import ThreadCost
    from sysprep.profile import Profile
    from sysprep.settings import Change


@dataclass(frozen=True)
class Compliance:
    """Each setting of a profile against the host (raise-only: more than asked is in place)."""

    profile: Profile
    settings: tuple[Change, ...]  # the plan's sysctl changes: KEEP is in place
    after: Assessment

    @property
    def compliant(self) -> bool:
        """True when apply would change no sysctl."""
        return not any(c.changes for c in self.settings)


def compliance_of(
    profile: Profile, host: Host, target: Target, cost: ThreadCost | None
) -> Compliance:
    """Compare the host with *profile*, then assess the host as applying it would leave it."""
    settings = plan_sysctls(profile, host)
    after = {c.setting.key: c.after for c in settings}
    tuned = replace(host, overrides={**host.overrides, **after})
    return Compliance(profile, settings, check(tuned, target, cost=cost))
