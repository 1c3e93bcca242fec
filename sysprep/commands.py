"""The commands: each takes its options, makes one call, renders the result, returns a status.

cli.py registers them on the typer app and maps errors to exit statuses; nothing here reads
the host or assembles a document: that is the called function's and render's work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Annotated

import typer

from sysprep.errors import BadInputError
from sysprep.errors import ExitCode
from sysprep.errors import StoppedError
from sysprep.facts import PTHREAD_STACK_MIN
from sysprep.units import format_size
from sysprep.units import parse_count
from sysprep.units import parse_size

if TYPE_CHECKING:
    from pathlib import Path

    from sysprep.host import Host

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


@dataclass(frozen=True)
class Context:
    """What every command works on: the host, and where snapshots and the lock live."""

    host: Host
    state_dir: Path


def check(
    ctx: typer.Context,
    threads: Annotated[
        str | None,
        typer.Option(
            "--threads",
            "-n",
            metavar="N",
            help="Threads the process must hold at once [default: 1000000, or the profile's;"
            " none with only --connections].",
            show_default=False,
        ),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(
            metavar="SIZE", help="Thread stack size (e.g. 256K); default: glibc's, from ulimit -s."
        ),
    ] = None,
    pid: Annotated[
        int | None,
        typer.Option(
            metavar="PID", help="Judge this running process: its rlimits, cgroup and mappings."
        ),
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="Judge this systemd service as it will run (running or not)."
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            metavar="PROFILE", help="Also show compliance with PROFILE and capacity after it."
        ),
    ] = None,
    connections: Annotated[
        str | None,
        typer.Option(metavar="N", help="Also judge N concurrent TCP connections."),
    ] = None,
    sources: Annotated[
        int | None,
        typer.Option(
            metavar="K", help="The connections are made from K source addresses (a client)."
        ),
    ] = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate", help="Measure memory per thread by briefly starting 2,000 real threads."
        ),
    ] = False,
    prometheus: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Also write the figures for node_exporter's textfile collector (atomically).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> int:
    """Tell whether this host can run N threads at once, which limit stops it, and the fix.

    Read-only; needs no root. Exit status: 0 ready, 1 not ready, 2 bad input.

    Example: sysprep check --threads 100000 --stack 256K
    """
    from sysprep.render import print_json
    from sysprep.render.check import check_document
    from sysprep.render.check import print_check
    from sysprep.report import run_check

    result = run_check(
        ctx.obj.host,
        threads=None if threads is None else parse_count(threads, what="thread count"),
        stack=_stack_option(stack),
        pid=pid,
        profile=profile,
        connections=(
            None if connections is None else parse_count(connections, what="connection count")
        ),
        sources=sources,
        calibrate=calibrate,
        with_links=as_json,
        unit=unit,
    )
    if prometheus is not None:
        from pathlib import Path

        from sysprep.render.prometheus import write_prometheus

        write_prometheus(result, Path(prometheus))
    if as_json:
        print_json(check_document(result))
    else:
        print_check(result)
    return ExitCode.OK if result.ready else ExitCode.NOT_READY


def probe(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="threads, maps or connections.")],
    count: Annotated[
        str | None,
        typer.Option(
            "--count",
            "-n",
            metavar="N",
            help="Threads (or mappings) to hold; default: what check says this host allows.",
        ),
    ] = None,
    stack: Annotated[
        str | None, typer.Option(metavar="SIZE", help="Thread stack size (threads probe).")
    ] = None,
    mode: Annotated[
        str, typer.Option(metavar="MODE", help="hold: all alive at once; seed: 1 s each.")
    ] = "hold",
    server: Annotated[
        str,
        typer.Option(metavar="KIND", help="connections: epoll loop, or threads (one per client)."),
    ] = "epoll",
    sources: Annotated[
        int | None,
        typer.Option(metavar="K", help="connections: source addresses (default: enough)."),
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="Run it as a transient service with this unit's properties."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> int:
    """Prove it: hold N threads, mappings or TCP connections at once; name what stopped them.

    Runs probes/NAME.py in a child process (connections: in a private network namespace,
    as root). Ctrl-C stops it and releases everything it holds.
    Exit status: 0 the target was held, 1 a limit or the memory guard stopped it.

    Example: sysprep probe threads --count 30000 --stack 64K
    """
    from sysprep.probe_runner import probe_request
    from sysprep.probe_runner import run_probe
    from sysprep.render import print_json
    from sysprep.render.probe import print_probe
    from sysprep.render.probe import probe_progress

    service = None
    if unit is not None:
        from sysprep.systemd import read_unit

        service = read_unit(ctx.obj.host, unit)
    request = probe_request(
        ctx.obj.host,
        name,
        count=None if count is None else parse_count(count, what="count"),
        stack=_stack_option(stack),
        mode=mode,
        server=server,
        sources=sources,
        unit=service,
    )
    try:
        if as_json:
            result = run_probe(name, request.args, unit=service)
            print_json(result.document)
        else:
            with probe_progress(name, request.target) as on_progress:
                result = run_probe(name, request.args, on_progress=on_progress, unit=service)
            print_probe(result.document)
    except KeyboardInterrupt:
        message = f"interrupted: the {name} probe stopped and released what it held"
        raise StoppedError(message) from None
    return ExitCode.OK if result.reached else ExitCode.NOT_READY


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


def _stack_option(text: str | None) -> int | None:
    if text is None:
        return None
    size = parse_size(text)
    if size < PTHREAD_STACK_MIN:
        raise BadInputError(
            f"invalid stack {text!r}: pthread_create refuses stacks below PTHREAD_STACK_MIN"
            f" ({format_size(PTHREAD_STACK_MIN)})"
        )
    return size
