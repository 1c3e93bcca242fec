"""Every command's --help: nothing in brackets lost, each option's default named, sentences
unbroken, the example last; a bare `sysprep` is its help, not an error; the parser's errors
said as sysprep says its own.

Regressions (issue "first hour"): rich read "[default: …]" and "[unit]" as markup and
dropped them; docstrings' line breaks cut sentences; examples came before the options.
"""

from __future__ import annotations

import inspect
import re

import pytest
import typer.main

from sysprep.cli import app
from sysprep.cli import run

ROOT = typer.main.get_command(app)
COMMANDS = sorted(ROOT.commands)


def rendered(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert run([*args, "--help"]) == 0
    return capsys.readouterr().out


def flat(text: str) -> str:
    return " ".join(text.split())


def options(command: str) -> list[tuple[str, str, bool]]:
    """(names, help, takes a value) of each option the command shows."""
    context = ROOT.make_context("sysprep", [], resilient_parsing=True)
    sub = ROOT.commands[command]
    context = sub.make_context(command, [], parent=context, resilient_parsing=True)
    found = []
    for param in sub.get_params(context):
        if param.param_type_name == "option" and not param.hidden:
            names, text = param.get_help_record(context)
            found.append((names, text, not param.is_flag))
    return found


@pytest.mark.parametrize("command", COMMANDS)
def test_nothing_in_brackets_is_lost(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each option's help, brackets included, is in the rendered help, whole."""
    monkeypatch.setenv("COLUMNS", "100")
    shown = flat(rendered(capsys, command))
    for names, text, _ in options(command):
        assert flat(text) in shown, (names, text)
    for bracket in re.findall(r"\[[^\]]+\]", inspect.getdoc(ROOT.commands[command].callback)
                              or ""):  # fmt: skip
        assert bracket in shown, bracket


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_names_its_default(command: str) -> None:
    """An option that takes a value says what it is when not given; flags are off."""
    for names, text, takes_value in options(command):
        if takes_value:
            assert "default" in text, f"{command} {names}: {text}"


@pytest.mark.parametrize("command", COMMANDS)
def test_sentences_unbroken_and_the_example_last(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 200 columns (help fills 100) each paragraph of the description that fits is one
    line (no hard break mid-sentence), and the help ends with its example."""
    monkeypatch.setenv("COLUMNS", "200")
    lines = [line.strip() for line in rendered(capsys, command).splitlines()]
    paragraphs = (inspect.getdoc(ROOT.commands[command].callback) or "").split("\n\n")
    for paragraph in paragraphs:
        if len(flat(paragraph)) <= 95:
            assert flat(paragraph) in lines, paragraph
    last = "\n".join(lines).strip().split("\n\n")[-1]
    assert re.match(r"Example: (sudo )?sysprep ", last), last


def test_a_bare_sysprep_is_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    """No command: the help on stdout, status 0, nothing on stderr (was an empty error)."""
    assert run([]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("Usage: sysprep [OPTIONS] COMMAND [ARGS]...")
    assert captured.err == ""


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["check", "--pid", "abc"], "invalid --pid 'abc': a whole number"),
        (["watch", "--pid", "1", "--interval", "0"],
         "invalid --interval 0.0: a number of at least 0.1 (see sysprep watch --help)"),
        (["check", "-q"], "-q is an option of sysprep itself: give it before the command"),
        (["check", "--thread", "5"], "sysprep check has no option --thread; did you mean"),
        (["fleet"], "sysprep fleet needs REPORT... (see sysprep fleet --help)"),
        (["check", "--threads"], "--threads needs a value"),
        (["nosuch"], "no command 'nosuch'; the commands are check, probe, apply,"),
    ],
)  # fmt: skip
def test_parser_errors_in_sysprep_words(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line, "sysprep: error: ...", what is wrong and where to look; status 2."""
    assert run(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"sysprep: error: {said}"), err
