"""Reading a report as its reader does: the example host, reports at a width, tmux screens.

A report at WIDE columns (nothing there wraps) is the reference; narrower, each of its lines
must come back whole (tests/cli/test_layout.py). The example host is a fake tree of a host
left at the kernel's defaults; README.md's examples are produced on it (tests/cli/test_docs.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sysprep.cli import run
from tests.fakehost import FakeHost

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

WIDE = 1000  # no line of a report is this long: at WIDE nothing wraps


def example_host(root: Path) -> FakeHost:
    """A host at the kernel's defaults (pid_max 32,768), 24 GiB, cgroup v2 and systemd, seen
    by uid 1000 in its login session."""
    return FakeHost(root).set_sysctl("kernel.pid_max", 32768)


def refused_host(root: Path) -> FakeHost:
    """The example host whose process is in a service a pids cgroup (v1) held to 50 tasks:
    the kernel logged a refused fork, for explain."""
    fake = example_host(root).use_cgroup_v1("/system.slice/bomb.service")
    leaf = "pids/system.slice/bomb.service"
    fake.set_cgroup_file(f"{leaf}/pids.max", 50).set_cgroup_file(f"{leaf}/pids.current", 50)
    fake.set_cgroup_file(f"{leaf}/pids.events", "max 7")
    return fake.add_kernel_log(
        (12.5, "cgroup: fork rejected by pids controller in /system.slice/bomb.service")
    )


def tree(fake: FakeHost) -> list[str]:
    """The global options that keep sysprep in *fake*: its /etc, and a state dir beside it."""
    state = fake.root.parent / f"{fake.root.name}-state"
    return ["--root", str(fake.root), "--etc-root", str(fake.root), "--state-dir", str(state)]


def with_snapshots(fake: FakeHost) -> FakeHost:
    """*fake* after two applies with --persist: two snapshots, as `snapshots` lists them."""
    for profile in ("elasticsearch", "million-threads"):
        assert run([*tree(fake), "-q", "apply", profile, "--persist", "--no-probe"]) == 0
    return fake


def report(capsys: pytest.CaptureFixture[str], width: int, args: list[str]) -> str:
    """What `sysprep ARGS` prints into a pipe whose reader has *width* columns (COLUMNS)."""
    return reported(capsys, width, args)[1]


def reported(capsys: pytest.CaptureFixture[str], width: int, args: list[str]) -> tuple[int, str]:
    """The exit status of `sysprep ARGS`, and what it prints into a pipe *width* wide."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        capsys.readouterr()
        status = run(args)
        return status, capsys.readouterr().out
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def row_names(capsys: pytest.CaptureFixture[str], args: list[str]) -> set[str]:
    """Every name the `--json` twin of *args* gives a row: a limit, a setting, an id."""
    document = json.loads(report(capsys, WIDE, [*args, "--json"]))
    names: set[str] = set()

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"name", "key", "limit", "id", "path"} and isinstance(value, str):
                    names.add(value)
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(document)
    return names


@dataclass
class Grid:
    """A table of a reference report: its column names and each row's cells by name."""

    lines: list[str]
    columns: list[str]
    rows: list[dict[str, str]]


def parse_reference(text: str, names: set[str]) -> list[str | Grid]:
    """The lines of a report at WIDE, a table (header, rule, rows) as one Grid."""
    lines = text.splitlines()
    parts: list[str | Grid] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        rule = lines[index + 1] if index + 1 < len(lines) else ""
        if not rule or set(rule) != {"─"}:
            parts.append(line)
            index += 1
            continue
        end = index + 2
        while end < len(lines) and any(lines[end].startswith(f"{n}  ") for n in names):
            end += 1
        table = lines[index:end]
        parts.append(_grid(table))
        index = end
    return parts


def _grid(table: list[str]) -> Grid:
    """Columns are two or more spaces that are blank on every line of the table."""
    width = max(len(line) for line in table)
    padded = [line.ljust(width) for line in table if set(line) != {"─"}]
    blank = [all(line[i] == " " for line in padded) for i in range(width)]
    gaps = [m.span() for m in re.finditer(r"  +", "".join(" " if b else "x" for b in blank))]
    edges = [0, *(edge for gap in gaps for edge in gap), width]
    spans = list(zip(edges[::2], edges[1::2], strict=True))
    cells = [[line[a:b].strip() for a, b in spans] for line in padded]
    header, *rows = cells
    return Grid(table, header, [dict(zip(header, row, strict=True)) for row in rows])


def assert_same_report(narrow: str, reference: list[str | Grid]) -> None:
    """*narrow* says all of *reference*: each line whole (wrapped under its own indent, never
    cut), each table whole, or each of its rows as a block: its name, then its cells."""
    lines = narrow.splitlines()
    at = 0
    for part in reference:
        same = _same_grid if isinstance(part, Grid) else _same_line
        at = same(lines, at, part)  # type: ignore[operator]
    assert at == len(lines), f"more than the reference says: {lines[at:]}"


def _same_line(lines: list[str], at: int, wanted: str) -> int:
    """*wanted*, from line *at*: its words, over lines that each keep its indent."""
    if not wanted.strip():
        assert lines[at] == "", f"line {at}: {lines[at]!r} where a blank line is"
        return at + 1
    indent = len(wanted) - len(wanted.lstrip())
    words = wanted.split()
    got: list[str] = []
    while len(got) < len(words):
        line = lines[at]
        kept = len(line) - len(line.lstrip())
        assert kept == indent, f"line {at}: {line!r} does not keep the indent of {wanted!r}"
        got += line.split()
        assert got == words[: len(got)], f"line {at}: {line!r} cuts {wanted!r}"
        at += 1
    return at


_PAIR_SEPARATOR = "(?:, | )(?={}: )"


def _same_grid(lines: list[str], at: int, grid: Grid) -> int:
    """The table as at WIDE (it fits), or each row as a block: name, then "column: value"."""
    if lines[at] == grid.lines[0]:
        assert lines[at : at + len(grid.lines)] == grid.lines
        return at + len(grid.lines)
    first, *others = grid.columns
    separator = re.compile(_PAIR_SEPARATOR.format("|".join(map(re.escape, others))))
    for row in grid.rows:
        assert lines[at] == row[first], f"line {at}: {lines[at]!r}, not the block {row[first]!r}"
        at += 1
        text = []
        while at < len(lines) and lines[at].startswith("  "):
            text.append(lines[at].strip())
            at += 1
        pairs = dict(pair.split(": ", 1) for pair in separator.split(" ".join(text)) if pair)
        assert pairs == {k: v for k, v in row.items() if v and k != first}, row[first]
    return at


def assert_clean(text: str, width: int) -> None:
    """Nothing wider than *width* but a word longer than a line, on its own (never cut);
    no "…"; no line that ends in spaces or is only spaces."""
    for number, line in enumerate(text.splitlines()):
        if len(line) > width:
            assert len(line.split()) == 1, f"line {number} is {len(line)} wide: {line!r}"
        assert "…" not in line, f"line {number} is cut: {line!r}"
        assert line == line.rstrip(), f"line {number} ends in spaces: {line!r}"


@dataclass
class Screen:
    """A real terminal (tmux, a server of its own) *width* columns wide."""

    tmux: str
    socket: str
    width: int

    def show(self, args: list[str], *, stop_after: float | None = None) -> str:
        """The screen after `sysprep ARGS` ran on it, wrapped lines joined (capture-pane -J);
        interrupted (SIGINT, as Ctrl-C) after *stop_after* seconds, if given."""
        done = f"sysprep-done-{uuid.uuid4().hex[:8]}"
        stop = []
        if stop_after is not None:  # SIGINT as a terminal sends it, whatever pytest ignores
            stop = ["timeout", "--foreground", "-s", "INT", str(stop_after)]
            stop += ["env", "--default-signal=INT"]
        command = " ".join(map(shlex.quote, [*stop, sys.executable, "-m", "sysprep", *args]))
        tmux = shlex.quote(self.tmux)
        script = (
            f"unset COLUMNS LINES; {command}; {tmux} -L {self.socket} wait-for -S {done};"
            " sleep 600"
        )
        self._tmux("new-session", "-d", "-s", done, "-x", str(self.width), "-y", "50", script)
        try:
            self._tmux("wait-for", done, timeout=60)
            shown = self._tmux("capture-pane", "-p", "-J", "-S", "-", "-t", done)
            return "\n".join(line.rstrip() for line in shown.splitlines()).strip("\n") + "\n"
        finally:
            self._tmux("kill-session", "-t", done)

    def _tmux(self, *args: str, timeout: float = 10) -> str:
        command = [self.tmux, "-L", self.socket, "-f", "/dev/null", *args]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=True
        ).stdout
