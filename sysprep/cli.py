"""The sysprep command line: options in, one call, a rendered result and an exit code out."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from sysprep import commands
from sysprep.commands import inspect
from sysprep.commands import tune
from sysprep.errors import ExitCode
from sysprep.errors import SysprepError
from sysprep.host import Host

DEFAULT_STATE_DIR = Path("/var/lib/sysprep")
app = typer.Typer(
    name="sysprep",
    help="Can this Linux host run a million threads? What stops it, and how to fix it safely.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
    pretty_exceptions_enable=False,
)

app.command()(inspect.check)
app.command()(inspect.probe)
app.command("apply")(tune.apply_command)
app.command()(tune.revert)
app.command()(tune.snapshots)
app.command()(inspect.explain)
app.command()(inspect.watch)
app.command()(tune.agent)
app.command()(inspect.fleet)


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
        str,
        typer.Option(
            metavar="DIR",
            help="Read and write /etc under DIR: in a pod, the node's /etc on a hostPath mount.",
        ),
    ] = "/",
    state_dir: Annotated[
        str,
        typer.Option(
            metavar="DIR",
            help="Snapshots and the lock: in a pod, a hostPath, so that a new pod can revert.",
        ),
    ] = str(DEFAULT_STATE_DIR),
) -> None:
    # "//" and "/." are the live root too: never a tree that dodges the root checks.
    tree, etc = Path(os.path.realpath(root)), Path(os.path.realpath(etc_root))
    ctx.obj = commands.Context(Host(tree, etc_root=etc), Path(state_dir))
    if quiet:  # run() puts both streams back when the command is done
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115, PTH123


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
        message = " ".join(str(error).splitlines())  # one line, whatever a tool said
        print(f"sysprep: error: {message}", file=sys.stderr)
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
    if result == ExitCode.INTERRUPTED:  # typer turns a KeyboardInterrupt into Exit(130)
        print("sysprep: interrupted", file=sys.stderr)
    return int(result) if isinstance(result, int) else ExitCode.OK
