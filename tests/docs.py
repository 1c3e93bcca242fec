"""The example outputs in README.md and docs/, as tests read, compare and rewrite them.

An example is a fenced block whose lines `$ sysprep ...` are commands, each followed by what
it prints. The comment line just above the fence says where the output comes from:

- `<!-- output: the example host -->`: the fake host of tests/screens.py, whose figures
  never change: compared exactly (tests/cli/test_docs.py).
- `<!-- output: this host -->` (and every console block of docs/runbook.md): the real
  kernel, as root: compared word for word with every number normalised, a line `…`
  standing for any words (tests/host/test_runbook.py).

A line `[exit status N: ...]` after an output gives the status the command must exit with.
With SYSPREP_WRITE_DOCS=1 in the environment, the tests write each output they got into
the file instead of failing: review the diff, and commit it with the change that caused it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

_FENCE = re.compile(r"^```")
_MARKER = re.compile(r"^<!-- output: (.+?) -->$")
_STATUS = re.compile(r"^\[exit status (\d+)")
_NUMBER = re.compile(r"\d[\d,.]*")
WRITE = os.environ.get("SYSPREP_WRITE_DOCS") == "1"


@dataclass
class Step:
    """One `$ ` command of an example, the lines it printed, and its documented status."""

    command: str
    output: list[str] = field(default_factory=list)
    status: str | None = None  # the whole `[exit status ...]` line

    @property
    def args(self) -> list[str]:
        """The command's sysprep arguments (`sudo` dropped: the tests run as root)."""
        import shlex

        words = shlex.split(self.command)
        if words[0] == "sudo":
            words = words[1:]
        assert words[0] == "sysprep", self.command
        return words[1:]

    @property
    def exit_status(self) -> int | None:
        match = _STATUS.match(self.status or "")
        return int(match[1]) if match else None


@dataclass
class Example:
    """A fenced block of *path*: lines [start, end) inside the fence, and its steps."""

    path: Path
    source: str
    number: int  # its place among the examples of its file
    start: int
    end: int
    steps: list[Step]
    default: str | None = None  # what examples() was told of unmarked console blocks

    def __str__(self) -> str:
        return f"{self.path.name}:{self.start}"


def examples(path: Path, *, default: str | None = None) -> list[Example]:
    """The examples of *path*: blocks under an `<!-- output: ... -->` line; with *default*,
    every ```console block without one comes from *default*."""
    lines = path.read_text().splitlines()
    found = []
    index = 0
    while index < len(lines):
        if not _FENCE.match(lines[index]):
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if _FENCE.match(lines[i]))
        marker = _MARKER.match(lines[index - 1]) if index else None
        source = marker[1] if marker else default if lines[index] == "```console" else None
        steps = _steps(lines[index + 1 : end])
        if source is not None and steps:
            found.append(Example(path, source, len(found), index + 1, end, steps, default))
        index = end + 1
    return found


def _steps(block: list[str]) -> list[Step]:
    """The commands of *block* with their output; none where it starts with no command."""
    steps: list[Step] = []
    for line in block:
        if not steps and not line.startswith("$ "):
            return []
        if line.startswith("$ "):
            steps.append(Step(line[2:]))
        elif _STATUS.match(line):
            steps[-1].status = line
        else:
            steps[-1].output.append(line)
    return steps


def normalised(line: str) -> str:
    """*line* with every number `#`, every run of spaces one, a rule one `─`."""
    line = _NUMBER.sub("#", line)
    line = re.sub(r"─+", "─", line)
    return " ".join(line.split())


def same_output(documented: list[str], got: list[str], *, exact: bool) -> bool:
    """*got* says what *documented* does: line for line if *exact*; else word for word,
    numbers aside (where a line wraps depends on them), a documented line `…` standing for
    any words."""
    if exact:
        return documented == got
    want = _host_history(" ".join(normalised(line) for line in documented)).split()
    have = _host_history(" ".join(normalised(line) for line in got)).split()
    pattern = "".join(r"(?:\S+ )*" if word == "…" else re.escape(word) + " " for word in want)
    return re.fullmatch(pattern, "".join(f"{word} " for word in have)) is not None


def _host_history(text: str) -> str:
    """*text* without what only this host's past says: threads still holding pids above a
    pid_max lowered since (a kernel worker started while a test had raised it)."""
    return re.sub(r"; # threads hold pids at or above it", "", text)


def settle(example: Example, outputs: list[list[str]], *, exact: bool) -> None:
    """Each step of *example* printed what it shows (same_output), or, with WRITE, the
    page gets *outputs* instead."""
    if WRITE:
        rewrite(example, outputs)
        return
    how = "" if exact else ", numbers aside,"
    for step, output in zip(example.steps, outputs, strict=True):
        assert same_output(step.output, output, exact=exact), (
            f"{example}: `{step.command}` prints{how} not what the page shows"
            " (SYSPREP_WRITE_DOCS=1 writes it):\n" + "\n".join(output)
        )


def rewrite(example: Example, outputs: list[list[str]]) -> None:
    """Write *outputs* (one per step) into *example*'s block, each status line kept (the
    file as it is now: an earlier rewrite may have moved the block)."""
    example = examples(example.path, default=example.default)[example.number]
    lines = example.path.read_text().splitlines()
    block = []
    for step, output in zip(example.steps, outputs, strict=True):
        block += [f"$ {step.command}", *output]
        if step.status is not None:
            block.append(step.status)
    lines[example.start : example.end] = block
    example.path.write_text("\n".join(lines) + "\n")
