"""The commands that change the host, and undo it: apply, revert; and snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Annotated

import typer

from sysprep.commands import JsonOption  # noqa: TC001 - typer reads annotations at run time
from sysprep.errors import ExitCode
from sysprep.errors import StoppedError

if TYPE_CHECKING:
    from sysprep.commands import Context


def apply_command(
    ctx: typer.Context,
    profile: Annotated[
        str, typer.Argument(metavar="PROFILE", help="A profile name or .toml path.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing (no root needed).")
    ] = False,
    persist: Annotated[
        bool, typer.Option("--persist", help="Also write sysctl.d, limits.d, systemd drop-ins.")
    ] = False,
    pid: Annotated[
        int | None, typer.Option(metavar="PID", help="Raise this running process's rlimits.")
    ] = None,
    no_probe: Annotated[
        bool, typer.Option("--no-probe", help="Skip the profile's validating probes.")
    ] = False,
    unit: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Put the profile's [unit] values in NAME's drop-in."),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Restart the --unit service after applying.")
    ] = False,
    trust_profile: Annotated[
        bool,
        typer.Option(
            "--trust-profile",
            help="Apply a profile that others may write, or another user owns (refused else).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> int:
    """Apply PROFILE: snapshot first, then write, read back and probe; any failure rolls back.

    Raise-only: a value already higher than the profile asks is kept. Needs root, except
    with --dry-run. Exit status: 0 applied (or nothing to do), 1 failed and rolled back,
    2 bad profile, 3 needs root, 4 another apply or revert holds the lock.

    Example: sudo sysprep apply million-threads --persist
    """
    from sysprep.apply import apply
    from sysprep.profile import load
    from sysprep.render import print_json
    from sysprep.render.changes import apply_document
    from sysprep.render.changes import print_apply

    context: Context = ctx.obj
    if pid is not None:
        context.host.require_process(pid)
    try:
        result = apply(
            context.host,
            load(profile, context.host, trust=trust_profile),
            context.state_dir,
            persist=persist,
            pid=pid,
            run_probes=not no_probe,
            dry_run=dry_run,
            unit=unit,
            restart=restart,
        )
    except KeyboardInterrupt:
        raise StoppedError("interrupted before any change") from None
    if as_json:
        print_json(apply_document(result))
    else:
        print_apply(result)
    return ExitCode.OK


def revert(
    ctx: typer.Context,
    snapshot: Annotated[
        str | None,
        typer.Argument(metavar="SNAPSHOT", help="Snapshot id; default: the last apply."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Restore even values changed since the apply.")
    ] = False,
    as_json: JsonOption = False,
) -> int:
    """Put back exactly what the last apply (or SNAPSHOT) changed, newest change first.

    Refuses, naming the key, when someone changed a value after the apply, unless --force.
    Exit status: 0 reverted, 1 a setting could not be restored (each named; the rest are),
    2 no such snapshot, 3 needs root, 4 drift or lock held.

    Example: sudo sysprep revert
    """
    from sysprep.render import print_json
    from sysprep.render.changes import print_revert
    from sysprep.render.changes import revert_document
    from sysprep.revert import revert as run_revert

    context: Context = ctx.obj
    result = run_revert(context.host, context.state_dir, snapshot, force=force)
    if as_json:
        print_json(revert_document(result))
    else:
        print_revert(result)
    return ExitCode.NOT_READY if result.failed else ExitCode.OK


def snapshots(
    ctx: typer.Context,
    as_json: JsonOption = False,
) -> int:
    """List the snapshots: id, time, profile, what changed, and whether it is still applied.

    Example: sudo sysprep snapshots --json
    """
    from sysprep.render.changes import print_snapshots
    from sysprep.snapshot import scan_snapshots

    context: Context = ctx.obj
    print_snapshots(scan_snapshots(context.state_dir, context.host), as_json=as_json)
    return ExitCode.OK
