"""The sysprep command line: options in, one call, a rendered result and an exit code out."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated
from typing import NoReturn

import typer

from sysprep.errors import BadInputError
from sysprep.errors import ExitCode
from sysprep.errors import NeedsRootError
from sysprep.errors import SysprepError
from sysprep.host import Host
from sysprep.limits.base import PTHREAD_STACK_MIN
from sysprep.limits.base import Target
from sysprep.units import format_size
from sysprep.units import parse_count
from sysprep.units import parse_size

app = typer.Typer(
    name="sysprep",
    help="Can this Linux host run a million threads? What stops it, and how to fix it safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    ctx: typer.Context,
    root: Annotated[
        Path, typer.Option(hidden=True, help="Read the host from this directory (tests).")
    ] = Path("/"),
) -> None:
    ctx.obj = Host(root)


@app.command()
def check(
    ctx: typer.Context,
    threads: Annotated[
        str,
        typer.Option(
            "--threads", "-n", metavar="N", help="Threads the process must hold at once."
        ),
    ] = "1000000",
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

    host: Host = ctx.obj
    target = Target(
        threads=parse_count(threads, what="thread count"),
        stack_bytes=_stack_option(stack),
        pid=_pid_option(host, pid),
    )
    cost = None
    if calibrate:
        from sysprep.calibrate import calibrate_cost

        cost = calibrate_cost(host, target)
    result = run_check(host, target, cost=cost)
    if as_json:
        print_json(assessment_document(result))
    else:
        print_assessment(result)
    return ExitCode.OK if result.ready else ExitCode.NOT_READY


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
    """The pid, once its /proc files are known to be there and readable."""
    if pid is None:
        return None
    if pid <= 0:
        raise BadInputError(f"invalid pid {pid}: must be a process id greater than zero")
    for name in ("status", "limits", "maps", "cgroup"):
        try:
            host.read(f"proc/{pid}/{name}")
        except FileNotFoundError:  # noqa: PERF203 - four reads, once per run
            raise BadInputError(f"no process with pid {pid}") from None
        except PermissionError:
            raise NeedsRootError(
                f"cannot read /proc/{pid}/{name}: permission denied;"
                f" run sysprep as root or as the owner of pid {pid}"
            ) from None
    return pid


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status; the one place errors become codes."""
    try:
        result = app(args=argv, prog_name="sysprep", standalone_mode=False)
    except SysprepError as error:
        print(f"sysprep: error: {error}", file=sys.stderr)
        return error.exit_code
    except typer.TyperException as error:  # usage errors: unknown option, not an integer
        print(f"sysprep: error: {error.format_message()} (see sysprep --help)", file=sys.stderr)
        return ExitCode.BAD_INPUT
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
