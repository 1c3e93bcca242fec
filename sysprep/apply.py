"""apply: plan, snapshot, write and read back, probe; a failure undoes every change made."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING

from sysprep.errors import BadInputError
from sysprep.errors import ExitCode
from sysprep.errors import StoppedError
from sysprep.errors import SysprepError
from sysprep.plan import Plan
from sysprep.plan import build_plan
from sysprep.revert import restore
from sysprep.snapshot import APPLIED
from sysprep.snapshot import ROLLED_BACK
from sysprep.snapshot import Snapshot
from sysprep.snapshot import locked

if TYPE_CHECKING:
    from pathlib import Path

    from sysprep.host import Host
    from sysprep.probe_runner import ProbeResult
    from sysprep.profile import Profile
    from sysprep.settings import Change

# Fault injection for the crash tests: SIGKILL ourselves at the named step.
_KILL_AT = "SYSPREP_TEST_KILL_AT"


class ApplyFailedError(SysprepError):
    """A write or a probe failed; every change made so far was rolled back."""

    exit_code = ExitCode.NOT_READY


@dataclass
class ApplyResult:
    """The plan, and what was done with it."""

    plan: Plan
    dry_run: bool
    snapshot: Snapshot | None = None
    probes: list[ProbeResult] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when apply changed (or, dry-run, would change) anything."""
        return self.plan.changed


def apply(
    host: Host,
    profile: Profile,
    state_dir: Path,
    *,
    persist: bool = False,
    pid: int | None = None,
    run_probes: bool = True,
    dry_run: bool = False,
) -> ApplyResult:
    """Apply *profile*: the snapshot is on disk before the first change; a failure undoes all."""
    if dry_run:
        return ApplyResult(build_plan(profile, host, pid=pid, persist=persist), dry_run=True)
    host.require_writable("apply")
    if run_probes and profile.probes and not host.is_live:
        raise BadInputError("probes start real threads: apply to --root needs --no-probe")
    with locked(state_dir):
        _fault("after-lock")
        result = ApplyResult(build_plan(profile, host, pid=pid, persist=persist), dry_run=False)
        if not result.changed:
            return result
        snapshot = Snapshot.new(profile.name, host, result.plan.to_make)
        snapshot.save(state_dir)
        result.snapshot = snapshot
        _fault("after-snapshot")
        try:
            _make(host, snapshot.changes)
            if run_probes:
                result.probes = _run_probes(host, profile)
        except (OSError, SysprepError, KeyboardInterrupt) as error:
            restore(host, snapshot.changes, force=True)
            snapshot.state = ROLLED_BACK
            snapshot.save(state_dir)
            if isinstance(error, KeyboardInterrupt):
                raise StoppedError("interrupted: apply rolled back every change") from None
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise ApplyFailedError(
                f"apply {profile.name} failed: {reason}; rolled back every change"
            ) from None
        snapshot.state = APPLIED
        snapshot.save(state_dir)
        return result


def _make(host: Host, changes: tuple[Change, ...]) -> None:
    """Each change in order, each read back by its setting."""
    for number, change in enumerate(changes, start=1):
        change.setting.write(host, change.after)
        _fault(f"after-write-{number}")


def _run_probes(host: Host, profile: Profile) -> list[ProbeResult]:
    from sysprep.probe_runner import probe_request
    from sysprep.probe_runner import run_probe

    results = []
    for want in profile.probes:
        request = probe_request(host, want.name, count=want.count, stack=want.stack)
        result = run_probe(want.name, request.args)
        _fault("during-probe")
        results.append(result)
        if not result.reached:
            held, stopped = result.document.get("held"), result.document.get("stopped_by")
            raise ApplyFailedError(
                f"probe {want.name} held {held:,} of {want.count:,} (stopped by {stopped})"
            )
    return results


def _fault(step: str) -> None:
    if os.environ.get(_KILL_AT) == step:
        os.kill(os.getpid(), signal.SIGKILL)
