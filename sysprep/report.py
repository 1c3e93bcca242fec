"""`sysprep check` as one call: the target from the options and the profile, then the answer."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from typing import NamedTuple

from sysprep.capacity import check
from sysprep.environment import detect
from sysprep.errors import BadInputError
from sysprep.limits.base import Target
from sysprep.runtimes import RUNTIMES

if TYPE_CHECKING:
    from sysprep.capacity import Assessment
    from sysprep.compliance import Compliance
    from sysprep.environment import Environment
    from sysprep.host import Host
    from sysprep.systemd import Unit

DEFAULT_THREADS = 1_000_000


class CheckResult(NamedTuple):
    """The assessment and where it was made; a profile's compliance; the host's links."""

    assessment: Assessment
    environment: Environment
    compliance: Compliance | None = None
    links: list[dict[str, object]] | None = None
    unit: Unit | None = None
    hostname: str | None = None
    checked_at: float = 0.0  # when, in seconds since the epoch

    @property
    def ready(self) -> bool:
        """True when every limit was read and none stops the target."""
        return self.assessment.ready

    @property
    def ok(self) -> bool:
        """Ready, and compliant with the profile when one was given: check's exit status 0."""
        return self.ready and (self.compliance is None or self.compliance.compliant)


def run_check(
    host: Host,
    *,
    threads: int | None = None,
    stack: int | None = None,
    pid: int | None = None,
    profile: str | None = None,
    connections: int | None = None,
    sources: int | None = None,
    calibrate: bool = False,
    with_links: bool = False,
    unit: str | None = None,
    runtime: str | None = None,
) -> CheckResult:
    """Judge *host* for the target; read-only. A profile gives the defaults it does not set.

    *with_links*: also list the host's links when connections are judged (over netlink;
    the JSON document carries them). *runtime*: the program's (c, jvm, rust, go); without
    it, the profile's, else the one recognised in the --pid or --unit process, else C.
    """
    loaded = None
    if profile is not None:
        from sysprep.profile import load

        loaded = load(profile, host)
    if runtime is not None and runtime not in RUNTIMES:
        raise BadInputError(f"invalid --runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    if sources is not None and sources <= 0:
        raise BadInputError(f"invalid --sources {sources}: at least 1 source address")
    if sources is not None and connections is None:
        raise BadInputError(
            "--sources says where --connections are made from: give --connections N too"
        )
    service = None
    if unit is not None:
        if pid is not None:
            raise BadInputError("give --unit or --pid, not both: a running unit's pid is its own")
        from sysprep.systemd import read_unit

        service = read_unit(host, unit)
        pid = service.main_pid if service.running else None
    if pid is not None:
        host.require_process(pid)
    default_threads = 0 if connections and not loaded else DEFAULT_THREADS
    target = Target(
        threads=threads or (loaded.threads if loaded else default_threads),
        stack_bytes=stack or (loaded.stack if loaded else None),
        pid=pid,
        connections=connections or (loaded.connections if loaded else None),
        sources=sources,
        runtime=runtime or (loaded.runtime if loaded else None),
        runtime_from="--runtime" if runtime or not loaded else "profile",
    )
    cost = None
    if calibrate:
        from sysprep.calibrate import calibrate_cost

        cost = calibrate_cost(host, target)
    assessment = check(host, target, cost=cost, unit=service)
    compliance = None
    if loaded is not None:
        from sysprep.compliance import compliance_of

        compliance = compliance_of(loaded, host, assessment, cost, service)
    links = host.links() if with_links and target.connections and host.is_live else None
    return CheckResult(
        assessment, detect(host), compliance, links, service, host.hostname(), time.time()
    )
