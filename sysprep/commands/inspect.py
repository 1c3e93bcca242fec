"""The commands that only read: check, probe, explain."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated

import typer

from sysprep.commands import JsonOption
from sysprep.commands import stack_option
from sysprep.errors import BadInputError
from sysprep.errors import ExitCode
from sysprep.errors import StoppedError
from sysprep.errors import SysprepError
from sysprep.units import parse_count

if TYPE_CHECKING:
    from collections.abc import Iterator


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
            metavar="SIZE",
            help="Thread stack size (e.g. 256K); default: the runtime's (C: glibc's, from"
            " ulimit -s).",
        ),
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option(
            metavar="RUNTIME",
            help="The program's runtime: c, jvm, rust or go [default: the profile's, else"
            " recognised in --pid/--unit, else c].",
            show_default=False,
        ),
    ] = None,
    pid: Annotated[
        int | None,
        typer.Option(
            metavar="PID",
            help="Judge this running process: its rlimits, cgroup and mappings. [default: a"
            " process this shell starts]",
        ),
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Judge this systemd service as it will run (running or not). [default: none]",
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            metavar="PROFILE",
            help="Also show compliance with PROFILE and capacity after it. [default: none]",
        ),
    ] = None,
    connections: Annotated[
        str | None,
        typer.Option(
            metavar="N",
            help="Also judge N concurrent TCP connections. [default: none: threads only]",
        ),
    ] = None,
    sources: Annotated[
        int | None,
        typer.Option(
            metavar="K",
            help="The connections are made from K source addresses (a client). [default: none: a"
            " server's inbound connections]",
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
            help="Also write the figures for node_exporter's textfile collector (atomically)."
            " [default: none]",
        ),
    ] = None,
    npd: Annotated[
        bool,
        typer.Option(
            "--npd",
            help="As a node-problem-detector plugin: one line of at most 80 characters; exit 0"
            " OK, 1 problem, 2 unknown.",
        ),
    ] = False,
    nfd: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Also write Node Feature Discovery's feature file (sysprep-ready=..., node"
            " labels). [default: none]",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> int:
    """Tell whether this host can run N threads at once, which limit stops it, and the fix.

    Read-only; needs no root. Exit status: 0 ready, 1 not ready, 2 bad input, 3 --pid of a
    process this user may not read.

    Example: sysprep check --threads 100000 --stack 256K
    """
    from sysprep.render import print_json
    from sysprep.render.check import check_document
    from sysprep.render.check import print_check
    from sysprep.report import run_check

    if npd and as_json:
        raise BadInputError("give --npd or --json, not both: each is the whole output")
    try:
        result = run_check(
            ctx.obj.host,
            threads=None if threads is None else parse_count(threads, what="thread count"),
            stack=stack_option(stack),
            pid=pid,
            profile=profile,
            connections=(
                None if connections is None else parse_count(connections, what="connection count")
            ),
            sources=sources,
            calibrate=calibrate,
            with_links=as_json,
            unit=unit,
            runtime=runtime,
        )
    except SysprepError as error:
        if not npd:
            raise
        from sysprep.render.node import NPD_UNKNOWN
        from sysprep.render.node import npd_error

        print(npd_error(error))  # node-problem-detector shows stdout only
        return NPD_UNKNOWN
    status: int = ExitCode.OK if result.ok else ExitCode.NOT_READY
    if npd:
        from sysprep.render.node import npd_line

        line, status = npd_line(result)
        print(line)
    elif as_json:
        print_json(check_document(result))
    else:
        print_check(result)
    # The files come after the report: it is printed even when one cannot be written.
    if prometheus is not None:
        from sysprep.render.prometheus import check_text
        from sysprep.render.prometheus import write_textfile

        write_textfile(Path(prometheus), check_text(result))
    if nfd is not None:
        from sysprep.render.node import NFD_FILE
        from sysprep.render.node import nfd_text

        NFD_FILE.write(Path(nfd), nfd_text(result))
    return status


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
        str | None,
        typer.Option(
            metavar="SIZE",
            help="Thread stack size (threads probe). [default: glibc's, from ulimit -s]",
        ),
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
            metavar="NAME",
            help="Run it as a transient service with this unit's properties. [default: none: a"
            " child of sysprep]",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> int:
    """Prove it: hold N threads, mappings or TCP connections at once; name what stopped them.

    Runs the probe, a standalone program shipped with sysprep, in a child process
    (connections: in a private network namespace, as root). Ctrl-C stops it and releases
    everything it holds.
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
        stack=stack_option(stack),
        mode=mode,
        server=server,
        sources=sources,
        unit=service,
    )
    try:
        if as_json:
            result = run_probe(name, request.args, unit=service, host=ctx.obj.host)
            print_json(result.document)
        else:
            with probe_progress(name, request.target) as on_progress:
                result = run_probe(
                    name, request.args, on_progress=on_progress, unit=service, host=ctx.obj.host
                )
            print_probe(result.document)
    except KeyboardInterrupt:
        message = f"interrupted: the {name} probe stopped and released what it held"
        raise StoppedError(message) from None
    return ExitCode.OK if result.reached else ExitCode.NOT_READY


def explain(
    ctx: typer.Context,
    pid: Annotated[
        int | None,
        typer.Option(
            metavar="PID",
            help="The process that could not start a thread. [default: none: the host's]",
        ),
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="The systemd service that failed. [default: none]"),
    ] = None,
    as_json: JsonOption = False,
) -> int:
    """Which limit most likely refused a thread or a fork (EAGAIN), with the evidence.

    Reads pids.events on every cgroup level, the kernel log (root), and each limit's state
    now. Exit status: 0 a cause was found, 1 none, 2 bad input.

    Example: sysprep explain --pid 4242
    """
    from sysprep.explain import explain as run_explain
    from sysprep.render import print_json
    from sysprep.render.explain import explain_document
    from sysprep.render.explain import print_explanation

    if pid is not None and unit is not None:
        raise BadInputError("give --unit or --pid, not both")
    explanation = run_explain(ctx.obj.host, pid=pid, unit=unit)
    if as_json:
        print_json(explain_document(explanation))
    else:
        print_explanation(explanation)
    return ExitCode.OK if explanation.causes else ExitCode.NOT_READY


def watch(
    ctx: typer.Context,
    pid: Annotated[
        int | None,
        typer.Option(
            metavar="PID", help="The process to watch. [default: none: give it or --unit]"
        ),
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="The systemd service to watch. [default: none]"),
    ] = None,
    interval: Annotated[
        float, typer.Option(metavar="S", min=0.1, help="Seconds between two refreshes.")
    ] = 1.0,
    warn: Annotated[
        float, typer.Option(metavar="PCT", min=0, max=100, help="Warn under this % of headroom.")
    ] = 10.0,
    once: Annotated[bool, typer.Option("--once", help="One sample, then exit.")] = False,
    prometheus: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Also write each refresh for node_exporter (atomically). [default: none]",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> int:
    """Watch a running process's headroom on every limit, its rate, and the time left.

    Exit status: 0 every headroom above --warn, 1 one under it, 2 bad input, 130 Ctrl-C.

    Example: sysprep watch --pid 4242 --warn 20
    """
    from pathlib import Path

    from sysprep.render import print_json
    from sysprep.render.prometheus import check_path
    from sysprep.render.watch import print_once
    from sysprep.render.watch import show_live
    from sysprep.render.watch import watch_document
    from sysprep.watch import trends
    from sysprep.watch import warnings
    from sysprep.watch import watcher_for

    watcher = watcher_for(ctx.obj.host, pid=pid, unit=unit, interval=interval, warn=warn)
    textfile = None if prometheus is None else Path(prometheus)
    if textfile is not None:
        check_path(textfile)  # refused before the first refresh, not after
    now = watcher.sample()
    if once or as_json:
        if as_json:
            print_json(watch_document(now.pid, now, trends(None, now), warn))
        else:
            print_once(now, warn)
        if textfile is not None:
            from sysprep.render.prometheus import watch_text
            from sysprep.render.prometheus import write_textfile

            write_textfile(textfile, watch_text(now.readings, trends(None, now), watcher.label))
        return ExitCode.NOT_READY if warnings(now, warn) else ExitCode.OK
    with _signals_interrupt():
        show_live(watcher, now, interval=interval, warn=warn, textfile=textfile)
    return ExitCode.OK  # pragma: no cover - the loop ends by a signal or an error


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP stop watch as Ctrl-C does: one line, exit 130."""
    import signal

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def fleet(
    reports: Annotated[
        list[str],
        typer.Argument(
            metavar="REPORT...",
            help="check --json documents (explain, watch too): files, or directories of them.",
            show_default=False,
        ),
    ],
    max_age: Annotated[
        str,
        typer.Option(metavar="DURATION", help="Older documents are stale: 30m, 12h, 7d."),
    ] = "24h",
    as_json: JsonOption = False,
) -> int:
    """One report across hosts: ready or not, grouped by the limit that binds, with its fix.

    Each host's newest document counts; a host is named by its path (HOST.json, or Ansible's
    fetch: DEST/HOST/...), or a "host" field added to the document. A bad document is one
    line, never the end.
    Exit status: 0 every host ready (and none stale), 1 otherwise, 2 no document at all.

    Example: sysprep fleet fetched/
    """
    from pathlib import Path

    from sysprep.fleet import judge
    from sysprep.fleet import read_fleet
    from sysprep.render import print_json
    from sysprep.render.fleet import fleet_document
    from sysprep.render.fleet import print_fleet
    from sysprep.units import parse_duration

    age = parse_duration(max_age, what="--max-age", low=1, high=366 * 86400)
    found = read_fleet([Path(report) for report in reports])
    if not (found.checks or found.explained or found.watched or found.bad or found.other_schema):
        raise BadInputError(f"no .json document in {', '.join(reports)}")
    report = judge(found, max_age=age)
    if as_json:
        print_json(fleet_document(report))
    else:
        print_fleet(report)
    return ExitCode.OK if report.all_ready else ExitCode.NOT_READY


def profiles(
    ctx: typer.Context,
    action: Annotated[
        str | None, typer.Argument(metavar="[show NAME]", help="show: print one profile.")
    ] = None,
    name: Annotated[str | None, typer.Argument(metavar="", show_default=False)] = None,
    as_json: JsonOption = False,
) -> int:
    """List the profiles apply and check --profile take, and what each is for.

    `profiles show NAME` prints one, its extends resolved: each setting with the source it
    cites (the application's documentation, a measurement), and where it comes from.

    Example: sysprep profiles show elasticsearch
    """
    from sysprep.profile import available
    from sysprep.profile import lines
    from sysprep.profile import load
    from sysprep.render import print_json
    from sysprep.render.profiles import print_profiles
    from sysprep.render.profiles import print_show
    from sysprep.render.profiles import profiles_document
    from sysprep.render.profiles import show_document

    host = ctx.obj.host
    if action is None:
        found = [load(str(path), host) for path in available(host)]
        if as_json:
            print_json(profiles_document(found))
        else:
            print_profiles(found)
        return ExitCode.OK
    if action != "show" or name is None:
        raise BadInputError(
            f"profiles takes no {action!r}: `sysprep profiles` lists them, `sysprep profiles"
            " show NAME` prints one"
        )
    profile = load(name, host)
    shown = lines(profile.path, host)
    if as_json:
        print_json(show_document(profile, shown))
    else:
        print_show(profile, shown)
    return ExitCode.OK
