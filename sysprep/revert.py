"""revert: put back what an apply changed, newest change first, refusing on drift."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import NamedTuple

from sysprep.errors import BadInputError
from sysprep.errors import ConflictError
from sysprep.errors import SysprepError
from sysprep.settings import Gone
from sysprep.snapshot import APPLIED
from sysprep.snapshot import APPLYING
from sysprep.snapshot import REVERTED
from sysprep.snapshot import ROLLED_BACK
from sysprep.snapshot import SnapshotError
from sysprep.snapshot import locked
from sysprep.snapshot import scan_snapshots

if TYPE_CHECKING:
    from pathlib import Path

    from sysprep.host import Host
    from sysprep.settings import Change
    from sysprep.snapshot import Scan
    from sysprep.snapshot import Snapshot


class Restored(NamedTuple):
    """What a restore put back, and each setting it could not, with the reason."""

    restored: list[str]
    failed: list[tuple[str, str]]


class RevertResult(NamedTuple):
    """The snapshot reverted, the settings it put back, and those it could not."""

    snapshot: Snapshot
    restored: list[str]
    failed: list[tuple[str, str]]


def restore(host: Host, changes: tuple[Change, ...], *, force: bool) -> Restored:
    """Put back each change's "before", newest first; ConflictError on drift unless force.

    Every setting that can be restored is, whatever fails before it: a sysctl that vanished
    (its interface removed, its module unloaded) or a value the kernel now refuses is
    reported with its reason. A value still at "before" was never changed (a crash before
    that step) and is skipped; so is a setting gone with its owner (an exited process). A
    pid now another process's is never touched.
    """
    drift = _drift(host, changes)
    if drift and not force:
        more = f" (and {len(drift) - 1} more)" if len(drift) > 1 else ""
        raise ConflictError(f"refusing to revert: {drift[0]}{more}; --force restores it anyway")
    restored: list[str] = []
    failed: list[tuple[str, str]] = []
    for change in reversed(changes):
        setting = change.setting
        try:
            now = setting.read(host)
            if now != change.before:
                setting.write(host, change.before)
                restored.append(setting.key)
        except Gone as gone:
            if gone.drift:  # only with --force: another process's limits are left alone
                failed.append((setting.key, f"{gone.reason}; left alone"))
            elif not gone.benign:
                failed.append((setting.key, gone.reason))
        except (OSError, SysprepError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            failed.append((setting.key, str(reason)))
    return Restored(restored, failed)


def _drift(host: Host, changes: tuple[Change, ...]) -> list[str]:
    """Settings changed by someone else since apply: neither apply's value nor the original.

    A pid now held by another process is drift too.
    """
    drift = []
    for change in changes:
        try:
            now = change.setting.read(host)
        except Gone as gone:
            if gone.drift:
                drift.append(f"{change.setting.key}: {gone.reason}")
            continue
        except OSError:
            continue  # restore reports it
        if now not in (change.before, change.after):
            shown = change.setting.show
            drift.append(f"{change.setting.key} is {shown(now)}, apply set {shown(change.after)}")
    return drift


def _choose(scan: Scan, snapshot_id: str | None, state_dir: Path) -> Snapshot:
    """The snapshot named, or the last applied one; an untrusted one only ever by its reason.

    Without an id, an untrusted newest file is refused rather than passed over: it may be the
    apply the operator means.
    """
    rejected = {path.stem: reason for path, reason in scan.rejected}
    if snapshot_id is not None:
        chosen = next((s for s in scan.found if s.id == snapshot_id), None)
        if chosen is None and snapshot_id in rejected:
            raise SnapshotError(f"snapshot {snapshot_id}: {rejected[snapshot_id]}")
        if chosen is None:
            raise BadInputError(f"no snapshot {snapshot_id!r}; `sysprep snapshots` lists them")
        return chosen
    newest = scan.newest_file()
    if newest is not None and newest.stem in rejected:
        raise SnapshotError(
            f"{newest}: {rejected[newest.stem]}; `sysprep revert ID` reverts another snapshot"
        )
    pending = [s for s in scan.found if s.state in (APPLIED, APPLYING)]
    if not pending:
        raise BadInputError(f"nothing to revert: no applied snapshot in {state_dir}")
    return pending[-1]


def revert(host: Host, state_dir: Path, snapshot_id: str | None, *, force: bool) -> RevertResult:
    """Undo the last apply (or *snapshot_id*): values and files back, byte for byte.

    A snapshot with settings it could not restore stays as it was, so that a second revert
    (once the cause is mended) finishes the job.
    """
    host.require_writable("revert")
    if not (state_dir / "snapshots").is_dir():  # never applied here: create nothing
        if snapshot_id is not None:
            raise BadInputError(f"no snapshot {snapshot_id!r} in {state_dir}")
        raise BadInputError(f"nothing to revert: no snapshot in {state_dir}")
    with locked(state_dir, host):
        chosen = _choose(scan_snapshots(state_dir, host), snapshot_id, state_dir)
        if chosen.state in (REVERTED, ROLLED_BACK):
            raise BadInputError(f"snapshot {chosen.id} is already {chosen.state}")
        done = restore(host, chosen.changes, force=force)
        if not done.failed:
            chosen.state = REVERTED
            chosen.save(state_dir)
        return RevertResult(chosen, done.restored, done.failed)
