"""Man pages and shell completions of sysprep, generated from its command line (typer).

    python packaging/extras.py man DIR          sysprep.1, sysprep-check.1, ... in DIR
    python packaging/extras.py completions DIR  sysprep.bash, _sysprep (zsh), sysprep.fish

packaging/build-deb runs it with the sysprep it packages, so each page says what that
sysprep's --help says: its options, their defaults, its exit statuses.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer.main
from typer._completion_shared import get_completion_script  # typer<0.29, pinned

from sysprep import __version__
from sysprep.cli import app

SHELLS = {"bash": "sysprep.bash", "zsh": "_sysprep", "fish": "sysprep.fish"}


def main(argv: list[str]) -> int:
    """Write the man pages, or the completion files, into the directory named."""
    if len(argv) != 2 or argv[0] not in ("man", "completions"):  # noqa: PLR2004
        print(__doc__, file=sys.stderr)
        return 2
    target = Path(argv[1])
    target.mkdir(parents=True, exist_ok=True)
    if argv[0] == "man":
        root = typer.main.get_command(app)
        context = root.make_context("sysprep", [], resilient_parsing=True)
        (target / "sysprep.1").write_text(_page(root, context, commands=root.commands))
        for name, command in root.commands.items():
            sub = command.make_context(name, [], parent=context, resilient_parsing=True)
            (target / f"sysprep-{name}.1").write_text(_page(command, sub))
    else:
        for shell, name in SHELLS.items():
            script = get_completion_script(
                prog_name="sysprep", complete_var="_SYSPREP_COMPLETE", shell=shell
            )
            (target / name).write_text(script.rstrip("\n") + "\n")
    return 0


def _page(command: Any, context: Any, commands: dict[str, Any] | None = None) -> str:  # noqa: ANN401
    """One man page (roff) of *command*: name, synopsis, description, options, commands."""
    path = context.command_path
    help_text = (command.help or "").strip()
    summary, _, rest = help_text.partition("\n")
    day = time.strftime("%Y-%m-%d")
    lines = [
        f'.TH "{path.upper()}" "1" "{day}" "sysprep {__version__}" "sysprep"',
        ".SH NAME",
        f"{_roff(path.replace(' ', '-'))} \\- {_roff(summary.rstrip('.'))}",
        ".SH SYNOPSIS",
        f".B {_roff(path)}",
        _roff(" ".join(command.collect_usage_pieces(context)).replace("{", "").replace("}", "")),
        ".SH DESCRIPTION",
        *_paragraphs(rest.strip() or summary),
    ]
    records = [(p, p.get_help_record(context)) for p in command.get_params(context)]
    shown = [(p, record) for p, record in records if record and not getattr(p, "hidden", False)]
    if shown:
        lines.append(".SH OPTIONS")
        for _, (names, text) in shown:
            lines += [".TP", f"\\fB{_roff(names)}\\fR", _roff(text)]
    if commands:
        lines.append(".SH COMMANDS")
        for name, sub in commands.items():
            first = (sub.help or "").strip().split("\n", 1)[0]
            see = f"See \\fBsysprep-{name}\\fR(1)."
            lines += [".TP", f"\\fBsysprep {name}\\fR", f"{_roff(first)} {see}"]
    lines += [".SH SEE ALSO", "The README of sysprep: every limit, profile and JSON field."]
    return "\n".join(lines) + "\n"


def _paragraphs(text: str) -> list[str]:
    out: list[str] = []
    for paragraph in text.split("\n\n"):
        out += [".PP", _roff(" ".join(paragraph.split()))]
    return out


def _roff(text: str) -> str:
    """*text* safe in roff: backslashes, hyphens (as minus signs), a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
