"""The sysprep command line: options in, one call, a rendered result and an exit code out."""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from typing import NoReturn

import typer

from sysprep.errors import BadInputError
from sysprep.errors import ExitCode
from sysprep.errors import StoppedError
from sysprep.errors import SysprepError
from sysprep.host import Host
from sysprep.limits.base import PTHREAD_STACK_MIN
from sysprep.limits.base import Target
from sysprep.paths import DEFAULT_STATE_DIR
from sysprep.paths import Paths
from sysprep.units import format_size
from sysprep.units import parse_count
from sysprep.units import parse_size

app = typer.Typer(
    name="sysprep",
    help="Can this Linux host run a million threads? What stops it, and how to fix it safely.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
    pretty_exceptions_enable=False,
)


@dataclass(frozen=True)
class Context:
    """What every command works on: the host it reads, and where apply writes."""

    host: Host
    paths: Paths


def _version(value: bool) -> None:
    if value:
        from sysprep import __version__

        print(f"sysprep {__version__}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _options(
    ctx: typer.Context,
    version: Annotated[  # noqa: ARG001 - handled by its eager callback
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_version, help="Print the version and exit."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="No output at all: the exit status says it (cron)."),
    ] = False,
    # Plain strings, not typer Paths: click checks a Path's readability, and the state
    # directory is root's (0700), so every command of a normal user would fail on it.
    root: Annotated[
        str, typer.Option(hidden=True, help="Read /proc and /sys under this directory (tests).")
    ] = "/",
    etc_root: Annotated[
        str, typer.Option(hidden=True, help="Read and write /etc under this directory (tests).")
    ] = "/",
    state_dir: Annotated[
        str, typer.Option(hidden=True, help="Snapshots and the lock live here.")
    ] = str(DEFAULT_STATE_DIR),
) -> None:
    ctx.obj = Context(Host(Path(root)), Paths(Path(etc_root), Path(state_dir)))
    if quiet:  # run() puts both streams back when the command is done
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115, PTH123


@app.command()
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> int:
    """Tell whether this host can run N threads at once, which limit stops it, and the fix.

    Read-only; needs no root. Exit status: 0 ready, 1 not ready, 2 bad input.

    Example: sysprep check --threads 100000 --stack 256K
    """
    from sysprep.capacity import check as run_check
    from sysprep.render import assessment_document
    from sysprep.render import print_assessment
    from sysprep.render import print_json

    host: Host = ctx.obj.host
    loaded = None
    if profile is not None:
        from sysprep.profile import load

        loaded = load(profile, host)
    wanted = parse_count(threads, what="thread count") if threads else None
    wanted_connections = parse_count(connections, what="connection count") if connections else None
    if sources is not None and (sources <= 0 or wanted_connections is None):
        raise BadInputError(f"invalid --sources {sources}: give it with --connections, at least 1")
    default_threads = 0 if wanted_connections and not loaded else 1_000_000
    target = Target(
        threads=wanted or (loaded.threads if loaded else default_threads),
        stack_bytes=_stack_option(stack) or (loaded.stack if loaded else None),
        pid=_pid_option(host, pid),
        connections=wanted_connections,
        sources=sources,
    )
    cost = None
    if calibrate:
        from sysprep.calibrate import calibrate_cost

        cost = calibrate_cost(host, target)
    result = run_check(host, target, cost=cost)
    compliance = None
    if loaded is not None:
        from sysprep.compliance import compliance_of

        compliance = compliance_of(loaded, host, target, cost)
    if as_json:
        document = assessment_document(result)
        if compliance is not None:
            document["profile"] = compliance.document()
        if target.connections and host.is_live:
            from sysprep.netns import links

            document["links"] = links()
        print_json(document)
    else:
        print_assessment(result)
        if compliance is not None:
            from sysprep.render import print_compliance

            print_compliance(compliance)
    return ExitCode.OK if result.ready else ExitCode.NOT_READY


@app.command()
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> int:
    """Prove it: hold N threads, mappings or TCP connections at once; name what stopped them.

    Runs probes/NAME.py in a child process (connections: in a private network namespace,
    as root). Ctrl-C stops it and releases everything it holds.
    Exit status: 0 the target was held, 1 a limit or the memory guard stopped it.

    Example: sysprep probe threads --count 30000 --stack 64K
    """
    from sysprep import render
    from sysprep.facts import PROBES
    from sysprep.probe_runner import run_probe

    if name not in PROBES:
        raise BadInputError(f"unknown probe {name!r}: choose one of {', '.join(PROBES)}")
    if mode not in ("hold", "seed") or (mode == "seed" and name != "threads"):
        raise BadInputError(f"invalid mode {mode!r}: the threads probe has hold and seed")
    host: Host = ctx.obj.host
    if not host.is_live:
        raise BadInputError("probes start real threads; they cannot run against --root")
    stack_bytes = _stack_option(stack)
    target = parse_count(count, what="count") if count else _default_count(host, name, stack_bytes)
    args = ["--count", str(target)]
    if name == "threads":
        args += ["--mode", mode, *(["--stack", str(stack_bytes)] if stack_bytes else [])]
    if name == "connections":
        if server not in ("epoll", "threads"):
            raise BadInputError(f"invalid server {server!r}: epoll or threads")
        if sources is not None and sources <= 0:
            raise BadInputError(f"invalid sources {sources}: at least 1")
        args += ["--server", server, *(["--sources", str(sources)] if sources else [])]
    try:
        if as_json:
            result = run_probe(name, args)
            render.print_json(result.document)
        else:
            with render.probe_progress(name, target) as on_progress:
                result = run_probe(name, args, on_progress=on_progress)
            render.print_probe(result.document)
    except KeyboardInterrupt:
        message = f"interrupted: the {name} probe stopped and released what it held"
        raise StoppedError(message) from None
    return ExitCode.OK if result.reached else ExitCode.NOT_READY


def _default_count(host: Host, name: str, stack_bytes: int | None) -> int:
    """What check says a new process could hold, less the probe's own task."""
    from sysprep.capacity import check as run_check

    result = run_check(host, Target(threads=1, stack_bytes=stack_bytes))
    if name == "connections":
        return 10_000
    if name == "maps":
        maps = next(r for r in result.readings if r.name == "vm.max_map_count")
        if maps.current is None or maps.in_use is None:
            raise BadInputError(f"cannot read vm.max_map_count ({maps.note}); pass --count")
        return max(1, maps.current - maps.in_use - 64)  # room for the probe's own mappings
    if result.capacity is None:
        raise BadInputError("check found no limit to size the probe by; pass --count")
    return max(1, result.capacity - 1)


@app.command("apply")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> int:
    """Apply PROFILE: snapshot first, then write, read back and probe; any failure rolls back.

    Raise-only: a value already higher than the profile asks is kept. Needs root, except
    with --dry-run. Exit status: 0 applied (or nothing to do), 1 failed and rolled back,
    2 bad profile, 3 needs root, 4 another apply or revert holds the lock.

    Example: sudo sysprep apply million-threads --persist
    """
    from sysprep import render
    from sysprep.apply import apply
    from sysprep.profile import load

    context: Context = ctx.obj
    loaded = load(profile, context.host)
    pid = _pid_option(context.host, pid)
    try:
        result = apply(
            context.host,
            loaded,
            context.paths,
            persist=persist,
            pid=pid,
            run_probes=not no_probe,
            dry_run=dry_run,
        )
    except KeyboardInterrupt:
        raise StoppedError("interrupted before any change") from None
    if as_json:
        render.print_json(render.apply_document(result))
    else:
        render.print_apply(result)
    return ExitCode.OK


@app.command()
def revert(
    ctx: typer.Context,
    snapshot: Annotated[
        str | None,
        typer.Argument(metavar="SNAPSHOT", help="Snapshot id; default: the last apply."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Restore even values changed since the apply.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> int:
    """Put back exactly what the last apply (or SNAPSHOT) changed, newest change first.

    Refuses, naming the key, when someone changed a value after the apply, unless --force.
    Exit status: 0 reverted, 2 no such snapshot, 3 needs root, 4 drift or lock held.

    Example: sudo sysprep revert
    """
    from sysprep import render
    from sysprep.apply import revert as run_revert

    context: Context = ctx.obj
    reverted, restored = run_revert(context.host, context.paths, snapshot, force=force)
    document = {
        "schema_version": 1,
        "snapshot": reverted.id,
        "profile": reverted.profile,
        "restored": restored,
    }
    if as_json:
        render.print_json(document)
    else:
        what = ", ".join(restored) if restored else "nothing was still changed"
        print(f"reverted {reverted.profile} (snapshot {reverted.id}): {what}")
    return ExitCode.OK


@app.command()
def snapshots(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> int:
    """List the snapshots: id, time, profile, what changed, and whether it is still applied.

    Example: sudo sysprep snapshots --json
    """
    from sysprep import render
    from sysprep.snapshot import all_snapshots

    context: Context = ctx.obj
    found = all_snapshots(context.paths.state_dir, context.host)
    render.print_snapshots(found, as_json=as_json)
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


def _pid_option(host: Host, pid: int | None) -> int | None:
    if pid is not None:
        host.require_process(pid)
    return pid


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status; the one place errors become codes."""
    stdout, stderr = sys.stdout, sys.stderr
    try:
        return _run(argv)
    finally:
        if sys.stdout is not stdout:  # --quiet
            sys.stdout.close()
        sys.stdout, sys.stderr = stdout, stderr


def _run(argv: list[str] | None) -> int:
    try:
        result = app(args=argv, prog_name="sysprep", standalone_mode=False)
    except SysprepError as error:
        print(f"sysprep: error: {error}", file=sys.stderr)
        return error.exit_code
    except typer.TyperException as error:  # usage errors: unknown option, not an integer
        print(f"sysprep: error: {error.format_message()} (see sysprep --help)", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except SystemExit as done:  # typer's completion callbacks call sys.exit themselves
        return done.code if isinstance(done.code, int) else ExitCode.OK
    except (KeyboardInterrupt, typer.Abort):
        print("sysprep: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - a crash must never read as "ready" or "not ready"
        traceback.print_exc()
        print(
            "sysprep: internal error (a bug); please report the traceback above", file=sys.stderr
        )
        return ExitCode.INTERNAL
    return int(result) if isinstance(result, int) else ExitCode.OK


def main() -> NoReturn:
    """Console script entry point."""
    sys.exit(run())
