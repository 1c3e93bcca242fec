"""The plan: every change a profile asks of this host, built in one place from its readings.

Each kind of setting plans its own share (settings/kinds.py); the owned files then say what
they persist. apply walks the plan, a snapshot records it, rollback and revert walk it
backwards, and `--dry-run` and the JSON documents render it.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from functools import cached_property
from typing import TYPE_CHECKING

from sysprep.capacity import check
from sysprep.errors import BadInputError
from sysprep.facts import AUTO_SYSCTLS
from sysprep.facts import SYSCTL_BOUNDS
from sysprep.limits.base import Status
from sysprep.limits.base import Target
from sysprep.settings.files import owned_files
from sysprep.settings.kinds import KINDS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sysprep.host import Host
    from sysprep.profile import Profile
    from sysprep.settings import Change
    from sysprep.systemd import Unit


@dataclass(frozen=True)
class Plan:
    """The changes for *profile*, in the order apply makes them; KEEP ones included.

    *shown*: the changes the owned files make (a unit's properties), listed, never written.
    """

    profile: Profile
    changes: tuple[Change, ...]
    warnings: tuple[str, ...] = ()
    shown: tuple[Change, ...] = ()
    # From inside a container, where a setting takes effect when it is not there: "node"
    # (a host-wide sysctl, from a privileged pod), "pid namespace" (its own pid_max).
    where: Mapping[str, str] = field(default_factory=dict)

    @property
    def to_make(self) -> tuple[Change, ...]:
        """The changes apply writes."""
        return tuple(c for c in self.changes if c.changes)

    @property
    def changed(self) -> bool:
        """True when apply changes (or, dry-run, would change) anything."""
        return bool(self.to_make)

    def of(self, kind: type) -> tuple[Change, ...]:
        """The changes of one kind of setting, those made through the files included."""
        return tuple(c for c in (*self.changes, *self.shown) if isinstance(c.setting, kind))


@dataclass
class Situation:
    """What the kinds plan and judge against: the profile, the host and the options.

    *pid*: the process apply raises (--pid), or the one check judges; *unit*: the service
    named by --unit (*service*, when the caller has already read it).
    """

    profile: Profile
    host: Host
    pid: int | None = None
    persist: bool = False
    unit: str | None = None
    known_service: Unit | None = field(default=None, repr=False)

    @property
    def threads(self) -> int:
        """The profile's target: what its "auto" values are sized for."""
        return self.profile.threads

    @property
    def profile_name(self) -> str:
        """The profile's name, for what the plan says."""
        return self.profile.name

    @property
    def app_user(self) -> str | None:
        """The user the profile's application runs as ([application] user), if it says."""
        application = self.profile.application
        return application.user if application else None

    @cached_property
    def service(self) -> Unit | None:
        """The --unit service as systemd resolves it; BadInputError says why not."""
        if self.known_service is not None or self.unit is None:
            return self.known_service
        from sysprep.systemd import read_unit

        return read_unit(self.host, self.unit)

    @cached_property
    def rlimits(self) -> dict[str, tuple[int | None, int | None]]:
        """The judged process's rlimits: --pid's, the service's, or this shell's."""
        from sysprep.limits.inspection import Inspection

        target = Target(threads=1, pid=self.pid)
        return Inspection(self.host, target, unit=self.service).rlimits

    @cached_property
    def child_pid_namespace(self) -> bool:
        """True inside a pid namespace with a pid_max of its own (Linux >= 6.14).

        There the host's pid_max binds too, and it can neither be read nor set from here.
        """
        from sysprep.limits.inspection import Inspection

        return Inspection(self.host, Target(threads=1, pid=self.pid)).child_pid_namespace

    def needed(self, key: str) -> int:
        """The value check reports as "needed" for *key* and the profile's target."""
        return self._needed[key]

    @cached_property
    def _needed(self) -> dict[str, int]:
        """What check needs of each "auto" sysctl; BadInputError past the kernel's maximum.

        Never a silent clamp.
        """
        profile = self.profile
        target = Target(
            threads=profile.threads,
            stack_bytes=profile.stack,
            runtime=profile.runtime,
            runtime_from="profile",
        )
        values = {}
        for reading in check(self.host, target).readings:
            if reading.name not in AUTO_SYSCTLS:
                continue
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
    files that make them survive reboot and new logins; with *unit*, that service's drop-in.
    """
    situation = Situation(profile, host, pid=pid, persist=persist, unit=unit)
    parts = [kind.plan(profile.wanted(kind), situation) for kind in KINDS]
    files = owned_files([c for part in parts for c in part.persisted], host)
    order = {kind.kind: index for index, kind in enumerate(KINDS)}
    changes = sorted(
        (*(c for part in parts for c in part.changes), *files),
        key=lambda change: order[change.setting.kind],
    )
    warnings = tuple(warning for part in parts for warning in part.warnings)
    shown = tuple(c for part in parts for c in part.shown)
    return Plan(profile, tuple(changes), warnings, shown)
