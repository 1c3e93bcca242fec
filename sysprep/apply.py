"""apply: plan, snapshot, write and read back, probe; a failure undoes every change made."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import TYPE_CHECKING
from typing import Any

from sysprep.environment import detect
from sysprep.errors import BadInputError
from sysprep.errors import ExitCode
from sysprep.errors import StoppedError
from sysprep.errors import SysprepError
from sysprep.plan import Plan
from sysprep.plan import build_plan
from sysprep.revert import restore
from sysprep.settings.sysctl import PID_MAX
from sysprep.settings.sysctl import SysctlSetting
from sysprep.snapshot import APPLIED
from sysprep.snapshot import APPLYING
from sysprep.snapshot import PLANNING
from sysprep.snapshot import ROLLED_BACK
from sysprep.snapshot import Snapshot
from sysprep.snapshot import locked

if TYPE_CHECKING:
    from pathlib import Path
    from types import FrameType

    from sysprep.host import Host
    from sysprep.probe_runner import ProbeResult
    from sysprep.profile import Profile
    from sysprep.settings import Change

# Fault injection for the failure tests: SYSPREP_TEST_FAULT=STEP:WHAT makes apply, at STEP,
# send itself signal WHAT (SIGKILL, SIGTERM, ...) or, for RAISE, raise an unexpected error.
_FAULT = "SYSPREP_TEST_FAULT"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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
    unit: str | None = None,
    restart: bool = False,
) -> ApplyResult:
    """Apply *profile*: the snapshot is on disk before the first change; a failure undoes all.

    *unit*: the profile's [unit] table goes in that service's drop-in; *restart* restarts
    the service afterwards (a failed restart undoes the apply too).
    """
    if unit is not None:
        from sysprep.systemd import unit_name

        unit = unit_name(unit)  # a service's name, before anything is planned
    elif restart:
        raise BadInputError("--restart restarts the --unit service: give --unit NAME too")
    if dry_run:
        plan = build_plan(profile, host, pid=pid, persist=persist, unit=unit)
        try:
            plan = _placed(host, plan, persist=persist)
        except ApplyFailedError as refusal:  # the dry run shows it; a real apply stops there
            plan = replace(plan, warnings=(*plan.warnings, f"apply would refuse: {refusal}"))
        return ApplyResult(plan, dry_run=True)
    host.require_writable("apply")
    if run_probes and profile.probes and not host.is_live:
        raise BadInputError("probes start real threads: apply to --root needs --no-probe")
    with locked(state_dir, host), _StopSignals() as signals:
        # The record comes first: an apply killed while it plans is still on record, and a
        # plain revert then refuses to undo an earlier apply in its place.
        snapshot = Snapshot.new(profile.name, host, ())
        snapshot.state = PLANNING
        snapshot.save(state_dir)
        try:
            _fault("after-lock")
            plan = build_plan(profile, host, pid=pid, persist=persist, unit=unit)
            result = ApplyResult(_placed(host, plan, persist=persist), dry_run=False)
        except BaseException:
            snapshot.forget(state_dir)  # nothing was changed
            raise
        if not result.changed:
            snapshot.forget(state_dir)
            return result
        snapshot.changes, snapshot.state = result.plan.to_make, APPLYING
        result.snapshot = snapshot
        was_running = restart and unit is not None and _running(host, unit)
        try:
            snapshot.save(state_dir)
            _fault("after-snapshot")
            _make(host, snapshot.changes)
            if run_probes:
                result.probes = _run_probes(host, profile)
            if restart and unit is not None:
                host.restart_unit(unit)
            signals.defer()  # from here on the apply is complete: a signal no longer undoes it
            snapshot.state = APPLIED
            snapshot.save(state_dir)
        except BaseException as error:
            signals.defer()  # nothing may stop the rollback half-way
            _roll_back(host, snapshot, state_dir, error, restart=unit if was_running else None)
            raise
        _fault("after-applied")
    if signals.arrived is not None:
        raise StoppedError(
            f"interrupted ({signals.arrived.name}) after apply {profile.name} completed: the"
            f" changes stay (snapshot {snapshot.id}); `sysprep revert` undoes them"
        )
    return result


def _placed(host: Host, plan: Plan, *, persist: bool) -> Plan:
    """*plan*, with where each sysctl takes effect; ApplyFailedError for one out of reach.

    In a container, --persist into its own /etc is lost with it (a pod's is): the plan warns,
    naming --etc-root, through which a pod writes the node's /etc on a hostPath mount.
    """
    where = _reach(host, plan)
    warnings = plan.warnings
    own_etc = (host.etc_root or host.root) == host.root
    if persist and own_etc and detect(host).in_container:
        lost = (
            "--persist writes this container's own /etc, gone with it (a pod's is): mount"
            " the node's /etc (hostPath) and give --etc-root DIR to persist on the node"
        )
        warnings = (*warnings, lost)
    return replace(plan, where=where, warnings=warnings)


def _reach(host: Host, plan: Plan) -> dict[str, str]:
    """Where each sysctl apply would write takes effect, when not only here (Plan.where).

    On a host, every one is the host's. Inside a container, net.* is its own network
    namespace's; kernel.pid_max in a pid namespace of its own is that namespace's, written
    only when the profile says pid_namespace = true (the node's takes hostPID: true); every
    other sysctl is the node's, written from here only where /proc/sys is writable and
    sysprep is in the node's user namespace: a privileged pod, as ECK's initContainer does.
    ApplyFailedError, up front and for the whole plan, for a sysctl it cannot reach.
    """
    from sysprep.environment import sysctl_where
    from sysprep.limits.base import Target
    from sysprep.limits.inspection import Inspection

    environment = detect(host)
    own = Inspection(host, Target(threads=1)).child_pid_namespace
    asked = {want.setting.key: want for want in plan.profile.wanted(SysctlSetting)}
    where, nodes = {}, []
    for change in plan.of(SysctlSetting):
        key = change.setting.key
        if key == PID_MAX and (own or asked[key].pid_namespace):
            # Kept or raised: a namespace's own 4194304 says nothing of the node's.
            where[key] = _own_pid_max(own=own, asked=asked[key].pid_namespace)
        elif change.changes and sysctl_where(key, environment, own_pid_namespace=own) == "host":
            nodes.append(change)  # only ever in a container
    if nodes:
        first = nodes[0]
        more = f" (and {len(nodes) - 1} more)" if len(nodes) > 1 else ""
        why = _nodes_out_of_reach(host)
        if why is not None:
            raise ApplyFailedError(
                f"{first.setting.key}{more} is the host's, not this container's, and {why}:"
                f" set it on the host (sysctl -w {first.setting.key}={first.after}), or apply"
                " from a privileged container in the host's user namespace (on Kubernetes:"
                " deploy/kubernetes, the apply overlay); nothing was changed"
            )
        where.update({change.setting.key: "node" for change in nodes})
    return where


def _own_pid_max(*, own: bool, asked: bool) -> str:
    """Where the plan's pid_max takes effect, when it may write it; else ApplyFailedError."""
    if own and not asked:
        # Its own pid_max shows here (4194304 in a new one), while the host's binds too.
        raise ApplyFailedError(
            f"{PID_MAX}: inside a pid namespace only its own can be read or set, and the"
            " host's binds too: the node's needs hostPID: true (sysprep in the host's pid"
            " namespace); to set this namespace's own, the profile says"
            f" {PID_MAX} = {{ value = N, pid_namespace = true }}; nothing was changed"
        )
    if asked and not own:
        raise ApplyFailedError(
            f"{PID_MAX}: the profile sets a pid namespace's own (pid_namespace = true), but"
            " sysprep runs in the host's pid namespace here (or the kernel, before 6.14, has"
            " one pid_max): its pid_max is the host's; nothing was changed"
        )
    return "pid namespace"


def _nodes_out_of_reach(host: Host) -> str | None:
    """Why a host-wide sysctl cannot be written from this container; None: it can."""
    from sysprep.environment import INIT_USER_NS

    if host.proc_sys_read_only():
        return "/proc/sys is read-only here"
    if host.namespace("user") not in (None, INIT_USER_NS):
        return "sysprep runs in a user namespace, whose root cannot set it"
    return None


def _roll_back(
    host: Host,
    snapshot: Snapshot,
    state_dir: Path,
    error: BaseException,
    *,
    restart: str | None = None,
) -> None:
    """Undo every change of a failed apply, then raise what the operator should read.

    The snapshot becomes rolled-back, or stays applying when a setting could not be put
    back (`sysprep revert` then finishes). *restart*: a service that was running before a
    --restart that failed: it is started again with its former settings, and its state
    said. An unexpected exception is re-raised as it is, after the rollback: a bug, but
    not a half-changed host.
    """
    undone = restore(host, snapshot.changes, force=True)
    if not undone.failed:
        snapshot.state = ROLLED_BACK
    snapshot.save(state_dir)
    outcome = "rolled back every change"
    if undone.failed:
        left = "; ".join(f"{key}: {reason}" for key, reason in undone.failed)
        outcome = f"rolled back all but {left}; `sysprep revert` retries them"
    if restart is not None:
        outcome += f"; {restart} restarted with its former settings: {_restarted(host, restart)}"
    if isinstance(error, KeyboardInterrupt):
        raise StoppedError(f"interrupted: apply {outcome}") from None
    if isinstance(error, (OSError, SysprepError)):
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ApplyFailedError(f"apply {snapshot.profile} failed: {reason}; {outcome}") from None


def _running(host: Host, unit: str) -> bool:
    """True when the service is active now (what a failed --restart must give back)."""
    return host.systemctl("is-active", "--", unit).stdout.strip() == "active"


def _restarted(host: Host, unit: str) -> str:
    """Restart *unit* as it now is; its state after, as systemctl says it."""
    try:
        host.restart_unit(unit)
    except OSError as error:
        return f"failed ({error.strerror or error}; see journalctl -u {unit})"
    return host.systemctl("is-active", "--", unit).stdout.strip() or "unknown"


class _StopSignals:
    """SIGINT, SIGTERM and SIGHUP during apply are errors: each raises KeyboardInterrupt.

    That rolls back every change. After defer(), a signal is only noted (arrived).
    """

    def __init__(self) -> None:
        self.arrived: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> _StopSignals:  # noqa: PYI034 - typing.Self is Python 3.11+
        for signum in _STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._interrupt)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def defer(self) -> None:
        """From now on a stop signal is noted, not raised."""
        for signum in _STOP_SIGNALS:
            signal.signal(signum, self._note)

    def _interrupt(self, signum: int, _frame: FrameType | None) -> None:
        self.arrived = signal.Signals(signum)
        raise KeyboardInterrupt

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        self.arrived = signal.Signals(signum)


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
        result = run_probe(want.name, request.args, host=host)
        _fault("during-probe")
        results.append(result)
        if not result.reached:
            held, stopped = result.document.get("held"), result.document.get("stopped_by")
            raise ApplyFailedError(
                f"probe {want.name} held {held:,} of {want.count:,} (stopped by {stopped})"
            )
    return results


def _fault(step: str) -> None:
    at, _, what = os.environ.get(_FAULT, "").partition(":")
    if at != step:
        return
    if what == "RAISE":
        raise RuntimeError(f"fault injected at {step}")
    os.kill(os.getpid(), signal.Signals[what])
