"""The sysprep command line: options in, one call, a rendered result and an exit code out."""

from __future__ import annotations

import inspect as inspect_module
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated

import typer

from sysprep import commands
from sysprep.commands import inspect
from sysprep.commands import tune
from sysprep.errors import ExitCode
from sysprep.errors import SysprepError
from sysprep.host import Host

if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_STATE_DIR = Path("/var/lib/sysprep")
app = typer.Typer(
    name="sysprep",
    help="Can this Linux host run a million threads? What stops it, and how to fix it safely.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: brackets ([default: …], [unit]) are text, not markup
    context_settings={"max_content_width": 100},  # help fills a wide terminal up to 100
)


def _command(function: Callable[..., int], name: str | None = None) -> None:
    """Register *function* as a command, its docstring as its help.

    The docstring's "Example:" paragraph is the epilog: every --help ends with its example.
    """
    paragraphs = (inspect_module.getdoc(function) or "").split("\n\n")
    examples = [p for p in paragraphs if p.startswith("Example")]
    text = "\n\n".join(p for p in paragraphs if not p.startswith("Example"))
    app.command(name, help=text, epilog="\n\n".join(examples) or None)(function)


for _function, _name in (
    (inspect.check, None), (inspect.probe, None), (tune.apply_command, "apply"),
    (tune.revert, None), (tune.snapshots, None), (inspect.explain, None),
    (inspect.watch, None), (tune.agent, None), (inspect.fleet, None),
    (inspect.profiles, None),
):  # fmt: skip
    _command(_function, _name)


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


def _usage_error(error: typer.TyperException) -> int:
    """A usage error, said in one line; a bare `sysprep` is its help, and no error."""
    from sysprep import usage

    if usage.is_help_for_no_arguments(error):
        print(str(error.format_message()))
        return ExitCode.OK
    print(f"sysprep: error: {usage.message(error)}", file=sys.stderr)
    return ExitCode.BAD_INPUT


def _run(argv: list[str] | None) -> int:
    try:
        result = app(args=argv, prog_name="sysprep", standalone_mode=False)
    except SysprepError as error:
        message = " ".join(str(error).splitlines())  # one line, whatever a tool said
        print(f"sysprep: error: {message}", file=sys.stderr)
        return error.exit_code
    except typer.TyperException as error:  # usage errors: unknown option, not an integer
        return _usage_error(error)
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
