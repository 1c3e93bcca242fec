"""revert: put back what an apply changed, newest change first, refusing on drift."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import NamedTuple

from sysprep.environment import INIT_PID_NS
from sysprep.errors import BadInputError
from sysprep.errors import ConflictError
from sysprep.errors import SysprepError
from sysprep.settings import Gone
from sysprep.settings.sysctl import PID_MAX
from sysprep.snapshot import APPLIED
from sysprep.snapshot import APPLYING
from sysprep.snapshot import PLANNING
from sysprep.snapshot import REVERTED
from sysprep.snapshot import ROLLED_BACK
from sysprep.snapshot import SnapshotError
from sysprep.snapshot import locked
from sysprep.snapshot import scan_snapshots

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Sequence
    from pathlib import Path

    from sysprep.host import Host
    from sysprep.settings import Change
    from sysprep.settings import Undone
    from sysprep.snapshot import Scan
    from sysprep.snapshot import Snapshot


class Restored(NamedTuple):
    """What a restore put back, what it left to a later apply, and what it could not."""

    restored: list[str]
    failed: list[tuple[str, str]]
    handed: list[str] = []  # noqa: RUF012 - a NamedTuple default, never mutated


class RevertResult(NamedTuple):
    """The snapshot reverted, the settings it put back, and those it could not.

    *handed*: settings a later apply, still applied, changed again: they keep its value,
    and its revert now puts back what this apply found.
    """

    snapshot: Snapshot
    restored: list[str]
    failed: list[tuple[str, str]]
    handed: list[str] = []  # noqa: RUF012 - a NamedTuple default, never mutated


class _Step(NamedTuple):
    """What reverting one change takes, worked out before anything is written."""

    change: Change
    undone: Undone | None = None
    gone: Gone | None = None
    error: str = ""
    rebases: tuple[tuple[Snapshot, int, Change], ...] = ()


def _reachable(host: Host, snapshot: Snapshot) -> tuple[tuple[Change, ...], list[tuple[str, str]]]:
    """The changes this revert can put back, and why the others cannot be from here.

    kernel.pid_max is the pid namespace's own (Linux >= 6.14): one set in another pid
    namespace than this revert's, the node's from a pod without hostPID or a pod's own
    from the node, is not the sysctl this process would write. It is left, named, and the
    snapshot stays applied for a revert run where the apply ran.
    """
    here = host.namespace("pid")
    if snapshot.pid_namespace is None or here is None or snapshot.pid_namespace == here:
        return snapshot.changes, []
    kept = tuple(c for c in snapshot.changes if c.setting.key != PID_MAX)
    if len(kept) == len(snapshot.changes):
        return kept, []
    where = "the host's" if snapshot.pid_namespace == INIT_PID_NS else "a container's"
    reason = (
        f"apply set it in pid namespace {snapshot.pid_namespace} ({where}), and this revert"
        f" runs in {here}: revert where apply ran"
        + (" (hostPID: true)" if snapshot.pid_namespace == INIT_PID_NS else "")
    )
    return kept, [(PID_MAX, reason)]


def restore(
    host: Host,
    changes: tuple[Change, ...],
    *,
    force: bool,
    later: Sequence[Snapshot] = (),
    save: Callable[[Snapshot], object] | None = None,
) -> Restored:
    """Put back each change's "before", newest first; ConflictError on drift unless force.

    Every setting that can be restored is, whatever fails before it: a sysctl that vanished
    (its interface removed, its module unloaded) or a value the kernel now refuses is
    reported with its reason. A value still at "before" was never changed (a crash before
    that step) and is skipped; so is a setting gone with its owner (an exited process). A
    pid now another process's is never touched.

    *later*: the applies made after these changes, still applied. Where one of them changed
    a setting again, starting from this apply's value, it keeps it, and its own snapshot is
    rewritten (*save*, before anything is written here) to put back what this apply found:
    reverted in any order, the applies leave the host as it was before them all.
    """
    steps = [_step(host, change, later) for change in reversed(changes)]
    drift = [_drift(step) for step in steps if _drift(step)]
    if drift and not force:
        more = f" (and {len(drift) - 1} more)" if len(drift) > 1 else ""
        raise ConflictError(f"refusing to revert: {drift[0]}{more}; --force restores it anyway")
    _rebase(steps, save)
    done = Restored([], [], [])
    for step in steps:
        _carry_out(host, step, done)
    return done


def _step(host: Host, change: Change, later: Sequence[Snapshot]) -> _Step:
    setting = change.setting
    try:
        now = setting.read(host)
    except Gone as gone:
        return _Step(change, gone=gone)
    except (OSError, SysprepError) as error:
        return _Step(change, error=_reason(error))
    ahead = [(s, i, t) for s in later for i, t in enumerate(s.changes) if t.setting == setting]
    undone = setting.undo(now, change.before, change.after, tuple(t for _, _, t in ahead))
    rebases = tuple(
        (snapshot, index, rebased)
        for snapshot, index, t in ahead
        if (rebased := setting.rebase(t, change.before, change.after)) is not None
    )
    return _Step(change, undone, rebases=rebases)


def _drift(step: _Step) -> str:
    """Why a step would overwrite what someone else changed since ("" when it would not)."""
    if step.gone is not None and step.gone.drift:
        return f"{step.change.setting.key}: {step.gone.reason}"
    return step.undone.conflict if step.undone is not None else ""


def _rebase(steps: list[_Step], save: Callable[[Snapshot], object] | None) -> None:
    """Rewrite the later snapshots that took a setting over, and save each once."""
    touched: dict[str, Snapshot] = {}
    for step in steps:
        for snapshot, index, rebased in step.rebases:
            changes = list(snapshot.changes)
            changes[index] = rebased
            snapshot.changes = tuple(changes)
            touched[snapshot.id] = snapshot
    for snapshot in touched.values():
        if save is not None:
            save(snapshot)


def _carry_out(host: Host, step: _Step, done: Restored) -> None:
    """Write what one step takes; record what was done, handed over, or failed."""
    change, setting = step.change, step.change.setting
    if step.gone is not None:
        if step.gone.drift:  # only with --force: another process's limits are left alone
            done.failed.append((setting.key, f"{step.gone.reason}; left alone"))
        elif not step.gone.benign:
            done.failed.append((setting.key, step.gone.reason))
        return
    if step.error or step.undone is None:
        done.failed.append((setting.key, step.error))
        return
    value = change.before if step.undone.conflict else step.undone.value  # forced
    try:
        if step.undone.conflict or step.undone.write:
            setting.write(host, value)
            done.restored.append(setting.key)
        elif step.rebases:
            done.handed.append(setting.key)
    except Gone as gone:
        if not gone.benign:
            done.failed.append((setting.key, gone.reason))
    except (OSError, SysprepError) as error:
        done.failed.append((setting.key, _reason(error)))


def _reason(error: Exception) -> str:
    return str(error.strerror if isinstance(error, OSError) and error.strerror else error)


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
    interrupted = [s for s in scan.found if s.state == PLANNING]
    if interrupted and (not pending or interrupted[-1].id > pending[-1].id):
        last = interrupted[-1]
        earlier = (
            f"; `sysprep revert {pending[-1].id}` reverts the one before it"
            f" ({pending[-1].profile}, applied {pending[-1].when})"
            if pending
            else ""
        )
        raise BadInputError(
            f"nothing to revert: the last apply ({last.profile}, {last.when}) was interrupted"
            f" before it changed anything{earlier}"
        )
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
        scan = scan_snapshots(state_dir, host)
        chosen = _choose(scan, snapshot_id, state_dir)
        if chosen.state in (REVERTED, ROLLED_BACK):
            raise BadInputError(f"snapshot {chosen.id} is already {chosen.state}")
        if chosen.state == PLANNING:
            raise BadInputError(
                f"nothing to revert: apply {chosen.profile} ({chosen.when}) was interrupted"
                " before it changed anything"
            )
        later = [s for s in scan.found if s.id > chosen.id and s.state in (APPLIED, APPLYING)]
        changes, out_of_reach = _reachable(host, chosen)
        done = restore(host, changes, force=force, later=later, save=lambda s: s.save(state_dir))
        done.failed.extend(out_of_reach)
        if not done.failed:
            chosen.state = REVERTED
            chosen.save(state_dir)
        return RevertResult(chosen, done.restored, done.failed, done.handed)
