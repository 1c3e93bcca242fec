"""apply and revert: plan, snapshot, write, read back, probe; undo exactly what was done."""

from __future__ import annotations

import os
import resource
import signal
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from sysprep.errors import BadInputError
from sysprep.errors import ConflictError
from sysprep.errors import ExitCode
from sysprep.errors import NeedsRootError
from sysprep.errors import StoppedError
from sysprep.errors import SysprepError
from sysprep.persist import files_for
from sysprep.persist import later_overrides
from sysprep.plan import KEEP
from sysprep.plan import plan_sysctls
from sysprep.snapshot import APPLIED
from sysprep.snapshot import APPLYING
from sysprep.snapshot import REVERTED
from sysprep.snapshot import ROLLED_BACK
from sysprep.snapshot import FileState
from sysprep.snapshot import Snapshot
from sysprep.snapshot import all_snapshots
from sysprep.snapshot import locked
from sysprep.snapshot import write_atomic

if TYPE_CHECKING:
    from pathlib import Path

    from sysprep.host import Host
    from sysprep.paths import Paths
    from sysprep.plan import SysctlChange
    from sysprep.probe_runner import ProbeResult
    from sysprep.profile import Profile

# Fault injection for the crash tests: SIGKILL ourselves at the named step.
_KILL_AT = "SYSPREP_TEST_KILL_AT"
_RESOURCES = {
    "RLIMIT_STACK": resource.RLIMIT_STACK,
    "RLIMIT_NPROC": resource.RLIMIT_NPROC,
    "RLIMIT_NOFILE": resource.RLIMIT_NOFILE,
    "RLIMIT_AS": resource.RLIMIT_AS,
}


class ApplyFailedError(SysprepError):
    """A write or a probe failed; every change made so far was rolled back."""

    exit_code = ExitCode.NOT_READY


@dataclass
class ApplyResult:
    """The plan, what was done, and what to tell the operator."""

    profile: Profile
    sysctls: tuple[SysctlChange, ...]
    files: list[FileState]
    rlimits: list[dict[str, Any]]
    warnings: list[str]
    dry_run: bool
    snapshot: Snapshot | None = None
    probes: list[ProbeResult] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when apply changed (or, dry-run, would change) anything."""
        return bool([c for c in self.sysctls if c.action != KEEP] or self.files or self.rlimits)


def require_root(command: str) -> None:
    """NeedsRootError unless euid 0: apply and revert write kernel settings and /etc."""
    if os.geteuid() != 0:
        raise NeedsRootError(f"{command} changes kernel settings and /etc; run it as root (sudo)")


def apply(
    host: Host,
    profile: Profile,
    paths: Paths,
    *,
    persist: bool = False,
    pid: int | None = None,
    run_probes: bool = True,
    dry_run: bool = False,
) -> ApplyResult:
    """Apply *profile*: the snapshot is on disk before the first change; a failure undoes all."""
    if dry_run:
        return _plan(host, profile, paths, persist=persist, pid=pid, dry_run=True)
    require_root("apply")
    with locked(paths.state_dir):
        _fault("after-lock")
        result = _plan(host, profile, paths, persist=persist, pid=pid, dry_run=False)
        if not result.changed:
            return result
        snapshot = Snapshot.new(profile.name, host)
        snapshot.sysctls = [
            {"key": c.key, "before": c.before, "after": c.after}
            for c in result.sysctls
            if c.action != KEEP
        ]
        snapshot.files = result.files
        snapshot.rlimits = result.rlimits
        snapshot.save(paths.state_dir)
        result.snapshot = snapshot
        _fault("after-snapshot")
        try:
            _make_changes(host, snapshot, paths)
            if run_probes:
                result.probes = _run_probes(profile)
        except (OSError, SysprepError, KeyboardInterrupt) as error:
            restore(host, snapshot, paths, force=True)
            snapshot.state = ROLLED_BACK
            snapshot.save(paths.state_dir)
            if isinstance(error, KeyboardInterrupt):
                raise StoppedError("interrupted: apply rolled back every change") from None
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise ApplyFailedError(
                f"apply {profile.name} failed: {reason}; rolled back every change"
            ) from None
        snapshot.state = APPLIED
        snapshot.save(paths.state_dir)
        return result


def _plan(
    host: Host, profile: Profile, paths: Paths, *, persist: bool, pid: int | None, dry_run: bool
) -> ApplyResult:
    sysctls = plan_sysctls(profile, host)
    files, warnings = [], []
    if persist:
        for planned in files_for(profile, sysctls, host):
            before = _read_bytes(paths.file(planned.path))
            if before != planned.content:
                files.append(FileState(planned.path, before, planned.content))
        keys = {c.key for c in sysctls if c.after != c.before}
        etc_host = type(host)(paths.etc_root)
        warnings = later_overrides(etc_host, keys)
    rlimits = _plan_rlimits(profile, pid) if pid is not None else []
    if profile.rlimits and pid is None and not persist:
        warnings.append("rlimits are applied only with --persist (limits.d) or --pid (prlimit)")
    return ApplyResult(profile, sysctls, files, rlimits, warnings, dry_run)


def _plan_rlimits(profile: Profile, pid: int) -> list[dict[str, Any]]:
    """Raise-only rlimits of a running process (prlimit(2))."""
    changes: list[dict[str, Any]] = []
    for want in profile.rlimits:
        try:
            before = resource.prlimit(pid, _RESOURCES[want.name])
        except ProcessLookupError:
            raise BadInputError(f"no process with pid {pid}") from None
        after = tuple(
            _higher(now, wanted)
            for now, wanted in zip(before, (want.soft, want.hard), strict=True)
        )
        if after != before:
            changes.append(
                {"pid": pid, "name": want.name, "before": list(before), "after": list(after)}
            )
    return changes


def _higher(now: int, wanted: int | None) -> int:
    infinity = resource.RLIM_INFINITY
    if now == infinity or wanted is None:
        return infinity
    return max(now, wanted)


def _make_changes(host: Host, snapshot: Snapshot, paths: Paths) -> None:
    for number, entry in enumerate(snapshot.sysctls, start=1):
        _write_sysctl(host, entry["key"], entry["after"])
        _fault(f"after-write-{number}")
    for state in snapshot.files:
        write_atomic(paths.file(state.path), state.after)
        _fault("during-persist")
    for entry in snapshot.rlimits:
        _set_rlimit(entry, "after")


def _run_probes(profile: Profile) -> list[ProbeResult]:
    from sysprep.probe_runner import run_probe

    results = []
    for want in profile.probes:
        args = ["--count", str(want.count)]
        if want.stack is not None:
            args += ["--stack", str(want.stack)]
        result = run_probe(want.name, args)
        _fault("during-probe")
        results.append(result)
        if not result.reached:
            held, stopped = result.document.get("held"), result.document.get("stopped_by")
            raise ApplyFailedError(
                f"probe {want.name} held {held:,} of {want.count:,} (stopped by {stopped})"
            )
    return results


def restore(host: Host, snapshot: Snapshot, paths: Paths, *, force: bool) -> list[str]:
    """Put back what *snapshot* changed, newest first; ConflictError on drift unless force.

    A value still at "before" was never changed (a crash before that step) and is skipped.
    """
    drift = _drift(host, snapshot, paths)
    if drift and not force:
        more = f" (and {len(drift) - 1} more)" if len(drift) > 1 else ""
        raise ConflictError(f"refusing to revert: {drift[0]}{more}; --force restores it anyway")
    restored = []
    for entry in reversed(snapshot.rlimits):
        try:
            now = list(resource.prlimit(int(entry["pid"]), _RESOURCES[str(entry["name"])]))
            if now != entry["before"]:
                _set_rlimit(entry, "before")
                restored.append(f"{entry['name']} of pid {entry['pid']}")
        except ProcessLookupError:  # noqa: PERF203 - one pid per profile rlimit
            continue  # the process is gone, and its limits with it
    for state in reversed(snapshot.files):
        path = paths.file(state.path)
        if _read_bytes(path) != state.before:
            if state.before is None:
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, state.before)
            restored.append(state.path)
    for entry in reversed(snapshot.sysctls):
        if host.sysctl(entry["key"]) != entry["before"]:
            _write_sysctl(host, entry["key"], entry["before"])
            restored.append(entry["key"])
    return restored


def _drift(host: Host, snapshot: Snapshot, paths: Paths) -> list[str]:
    """Settings changed by someone else since apply: neither apply's value nor the original."""
    drift = []
    for entry in snapshot.sysctls:
        now = host.sysctl(entry["key"])
        if now not in (entry["before"], entry["after"]):
            drift.append(f"{entry['key']} is {now}, apply set {entry['after']}")
    drift.extend(
        f"{state.path} was edited since apply"
        for state in snapshot.files
        if _read_bytes(paths.file(state.path)) not in (state.before, state.after)
    )
    return drift


def revert(
    host: Host, paths: Paths, snapshot_id: str | None, *, force: bool
) -> tuple[Snapshot, list[str]]:
    """Undo the last apply (or *snapshot_id*): values and files back, byte for byte."""
    require_root("revert")
    if not (paths.state_dir / "snapshots").is_dir():  # never applied here: create nothing
        if snapshot_id is not None:
            raise BadInputError(f"no snapshot {snapshot_id!r} in {paths.state_dir}")
        raise BadInputError(f"nothing to revert: no snapshot in {paths.state_dir}")
    with locked(paths.state_dir):
        snapshots = all_snapshots(paths.state_dir, host)
        if snapshot_id is not None:
            chosen = next((s for s in snapshots if s.id == snapshot_id), None)
            if chosen is None:
                raise BadInputError(f"no snapshot {snapshot_id!r}; `sysprep snapshots` lists them")
        else:
            pending = [s for s in snapshots if s.state in (APPLIED, APPLYING)]
            if not pending:
                raise BadInputError(f"nothing to revert: no applied snapshot in {paths.state_dir}")
            chosen = pending[-1]
        if chosen.state in (REVERTED, ROLLED_BACK):
            raise BadInputError(f"snapshot {chosen.id} is already {chosen.state}")
        restored = restore(host, chosen, paths, force=force)
        chosen.state = REVERTED
        chosen.save(paths.state_dir)
        return chosen, restored


def _set_rlimit(entry: dict[str, Any], which: str) -> None:
    """prlimit(2) a snapshot's rlimit entry to its "before" or "after" (soft, hard)."""
    soft, hard = entry[which]
    try:
        resource.prlimit(int(entry["pid"]), _RESOURCES[str(entry["name"])], (int(soft), int(hard)))
    except PermissionError as error:
        what = f"prlimit {entry['name']}={soft}:{hard} of pid {entry['pid']}"
        raise OSError(error.errno, f"{what}: {error.strerror}") from None


def _write_sysctl(host: Host, key: str, value: str) -> None:
    """Write /proc/sys directly (sysctl(8) can exit 0 on failure) and read it back."""
    path = host.sysctl_path(key)
    try:
        with path.open("w") as f:
            f.write(f"{value}\n")
    except OSError as error:
        raise OSError(error.errno, f"writing {key} = {value}: {error.strerror}") from None
    if host.sysctl(key) != value:
        raise OSError(0, f"{key} reads back {host.sysctl(key)!r} after writing {value!r}")


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _fault(step: str) -> None:
    if os.environ.get(_KILL_AT) == step:
        os.kill(os.getpid(), signal.SIGKILL)
