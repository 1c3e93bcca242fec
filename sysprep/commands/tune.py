"""The commands that change the host, and undo it: apply, revert; snapshots; the agent."""

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
        int | None,
        typer.Option(metavar="PID", help="Raise this running process's rlimits. [default: none]"),
    ] = None,
    no_probe: Annotated[
        bool, typer.Option("--no-probe", help="Skip the profile's validating probes.")
    ] = False,
    unit: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Put the profile's [unit] values in NAME's drop-in. [default: none: [unit] is"
            " left]",
        ),
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


def agent(
    ctx: typer.Context,
    interval: Annotated[
        str, typer.Option(metavar="DURATION", help="Between two checks: 60, 90s, 5m, 1h.")
    ] = "5m",
    profile: Annotated[
        str | None,
        typer.Option(
            metavar="PROFILE",
            help="Judge compliance with PROFILE (and its target). [default: none]",
        ),
    ] = None,
    do_apply: Annotated[
        bool,
        typer.Option("--apply", help="Apply --profile once per change of its bytes (needs root)."),
    ] = False,
    persist: Annotated[
        bool, typer.Option("--persist", help="With --apply: also write the drop-ins.")
    ] = False,
    no_probe: Annotated[
        bool, typer.Option("--no-probe", help="With --apply: skip the profile's probes.")
    ] = False,
    threads: Annotated[
        str | None,
        typer.Option(
            "--threads",
            metavar="N",
            help="Threads to judge [default: the profile's, or 1000000].",
            show_default=False,
        ),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(metavar="SIZE", help="Thread stack size. [default: the runtime's]"),
    ] = None,
    npd: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Write the node-problem-detector plugin's verdict. [default: none]",
        ),
    ] = None,
    nfd: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Write Node Feature Discovery's feature file. [default: none]",
        ),
    ] = None,
    prometheus: Annotated[
        str | None,
        typer.Option(metavar="FILE", help="Write node_exporter's textfile. [default: none]"),
    ] = None,
) -> int:
    """Run as a node agent: check every --interval, rewrite the reports, log one line each.

    With --apply, apply --profile once per change of it (a ConfigMap's update), recorded in
    the state directory. SIGTERM ends it cleanly and reverts nothing: `sysprep revert` does.

    Example: sysprep agent --interval 5m --profile million-threads --prometheus
    /var/lib/prometheus/node-exporter/sysprep.prom
    """
    from pathlib import Path

    from sysprep.agent import Agent
    from sysprep.agent import AgentOptions
    from sysprep.commands import stack_option
    from sysprep.errors import BadInputError
    from sysprep.units import parse_count
    from sysprep.units import parse_duration

    if do_apply and profile is None:
        raise BadInputError("--apply applies --profile: give --profile PROFILE too")
    if (persist or no_probe) and not do_apply:
        raise BadInputError("--persist and --no-probe go with --apply")
    context: Context = ctx.obj
    if do_apply:
        context.host.require_writable("agent --apply")
    options = AgentOptions(
        interval=parse_duration(interval, what="--interval", low=10, high=86400),
        profile=profile,
        apply=do_apply,
        persist=persist,
        probes=not no_probe,
        threads=None if threads is None else parse_count(threads, what="thread count"),
        stack=stack_option(stack),
        npd=None if npd is None else Path(npd),
        nfd=None if nfd is None else Path(nfd),
        prometheus=None if prometheus is None else Path(prometheus),
    )
    if profile is not None:
        from sysprep.profile import load

        # A bad profile is refused now, not in the first cycle; one to apply, as apply does.
        load(profile, context.host, trust=not do_apply)
    Agent(context.host, context.state_dir, options, log=_print_line).run()
    return ExitCode.OK


def _print_line(line: str) -> None:
    print(line, flush=True)
