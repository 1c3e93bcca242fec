"""Command-line usage errors in sysprep's own words: one line, what is wrong, and the fix.

The argument parser (typer's click) words its errors its own way ("Invalid value for
'--pid': 'abc' is not a valid int."); these say the same in the house style of every
other error: "invalid --pid 'abc': a whole number (see sysprep check --help)".
"""

from __future__ import annotations

from typing import Any

from typer._click import exceptions as parser  # typer<0.29, pinned: its vendored click
from typer._click import types

# Options of sysprep itself, given before the command.
GLOBAL_OPTIONS = ("-q", "--quiet", "--etc-root", "--state-dir", "--version")


def is_help_for_no_arguments(error: Exception) -> bool:
    """True for a bare `sysprep`: the parser raises its help as an error."""
    return isinstance(error, parser.NoArgsIsHelpError)


def message(error: Exception) -> str:
    """*error*, a usage error of the parser, as one line in sysprep's words."""
    context: Any = getattr(error, "ctx", None)
    command = context.command_path if context is not None else "sysprep"
    see = f" (see {command} --help)"
    if isinstance(error, parser.NoSuchOption):
        return _no_such_option(error, context, command) + see
    if isinstance(error, parser.MissingParameter) and error.param is not None:
        wanted = error.param.make_metavar(context) if context is not None else error.param.name
        return f"{command} needs {wanted}{see}"
    if isinstance(error, parser.BadParameter) and error.param is not None:
        hint = "/".join(getattr(error.param, "opts", ())) or str(error.param.name)
        given = error.message.split(" is ", 1)[0]
        return f"invalid {hint} {given}: {_wanted(error.param.type)}{see}"
    if isinstance(error, parser.BadOptionUsage) and "requires an argument" in error.message:
        return f"{error.option_name} needs a value{see}"
    text = error.format_message() if isinstance(error, parser.ClickException) else str(error)
    if text.startswith("No such command"):
        name = text.split("'")[1] if "'" in text else text
        known = ", ".join(context.command.commands) if context is not None else ""
        return f"no command {name!r}; the commands are {known}{see}"
    return (text[:1].lower() + text[1:]).rstrip(".") + see


def _no_such_option(error: parser.NoSuchOption, context: Any, command: str) -> str:  # noqa: ANN401
    option = error.option_name
    if option in GLOBAL_OPTIONS and context is not None and context.parent is not None:
        return (
            f"{option} is an option of sysprep itself: give it before the command"
            f" (sysprep {option} {context.info_name} ...)"
        )
    close = sorted(error.possibilities or ())
    guess = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"{command} has no option {option}{guess}"


def _wanted(kind: object) -> str:
    """What a parameter of type *kind* takes, in words."""
    if isinstance(kind, types.IntRange | types.FloatRange):
        low, high = kind.min, kind.max
        if low is not None and high is not None:
            return f"a number from {low:g} to {high:g}"
        return f"a number of at least {low:g}" if low is not None else f"at most {high:g}"
    choices = getattr(kind, "choices", None)
    if choices:
        return f"one of {', '.join(map(str, choices))}"
    if isinstance(kind, types.IntParamType):
        return "a whole number"
    if isinstance(kind, types.FloatParamType):
        return "a number"
    return f"a {getattr(kind, 'name', 'value')}"
