"""check --profile: is the host tuned as a profile says, and what would it hold after it."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
from typing import TYPE_CHECKING
from typing import Any

from sysprep.capacity import Assessment
from sysprep.capacity import check
from sysprep.plan import KEEP
from sysprep.plan import SysctlChange
from sysprep.plan import plan_sysctls

if TYPE_CHECKING:
    from sysprep.host import Host
    from sysprep.limits.base import Target
    from sysprep.limits.base import ThreadCost
    from sysprep.profile import Profile


@dataclass(frozen=True)
class Compliance:
    """Each setting of a profile against the host (raise-only: more than asked is in place)."""

    profile: Profile
    settings: tuple[SysctlChange, ...]
    after: Assessment

    @property
    def compliant(self) -> bool:
        """True when apply would change no sysctl."""
        return all(c.action == KEEP for c in self.settings)

    def document(self) -> dict[str, Any]:
        """The "profile" key of `check --json --profile`."""
        return {
            "name": self.profile.name,
            "compliant": self.compliant,
            "settings": [
                {"key": c.key, "expected": c.wanted, "actual": c.before, "ok": c.action == KEEP}
                for c in self.settings
            ],
            "capacity_after": self.after.capacity,
            "binding_after": self.after.binding.name if self.after.binding else None,
        }


def compliance_of(
    profile: Profile, host: Host, target: Target, cost: ThreadCost | None
) -> Compliance:
    """Compare the host with *profile*, then assess the host as applying it would leave it."""
    settings = plan_sysctls(profile, host)
    tuned = replace(host, overrides={**host.overrides, **{c.key: c.after for c in settings}})
    return Compliance(profile, settings, check(tuned, target, cost=cost))
