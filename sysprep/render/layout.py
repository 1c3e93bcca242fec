"""Reports that fit the terminal they are read in, and read clean in a pipe.

- A table is drawn only where every cell fits whole; narrower, each row becomes a block
  (its first cell, then the others as "column: value"), as `kubectl describe` does: a
  limit's name and its numbers are never cut.
- Text wraps between words only, and under its indent. A word longer than the line (a
  path) is never cut: it runs past the width, where the terminal wraps it and a copy or a
  grep still finds it whole.
- In a pipe, no line ends in spaces and no line is only spaces.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING
from typing import NamedTuple
from typing import TextIO

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console
    from rich.console import RenderableType
    from rich.text import Text

_GAP = 2  # spaces between two columns of a table
_WORD = re.compile(r"\S+")


class Column(NamedTuple):
    """A column's header, and whether its cells are numbers (right-aligned)."""

    name: str
    numeric: bool = False


def console(*, stderr: bool = False) -> Console:
    """The Console (rich) of a report: no highlighting; in a pipe, lines trimmed."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(highlight=False, file=stream)
    return Console(highlight=False, file=_Trimmed(stream))  # type: ignore[arg-type]


def grid(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> RenderableType:
    """A table of *rows* (cells in rich markup) if it fits *width* whole; else blocks.

    The table is plain, as `kubectl get` prints one: a rule under the headers, columns two
    spaces apart. A column empty in every row is left out (watch --once has no rate yet).
    """
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    kept = [0, *(i for i in range(1, len(columns)) if any(row[i] for row in rows))]
    columns = [columns[i] for i in kept]
    texts = [[Text.from_markup(row[i]) for i in kept] for row in rows]
    widths = [len(column.name) for column in columns]
    for row in texts:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], cell.cell_len)
    if sum(widths) + _GAP * (len(columns) - 1) < width:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
        for column in columns:
            table.add_column(column.name, justify="right" if column.numeric else "left",
                             no_wrap=True)  # fmt: skip
        for row in texts:
            table.add_row(*row)
        return table
    lines: list[Text] = []
    for first, *rest in texts:
        pairs = [Text.assemble(f"{column.name}: ", cell)
                 for column, cell in zip(columns[1:], rest, strict=True) if cell]  # fmt: skip
        lines.append(Text.assemble(first, style="bold"))
        for filled in _filled(pairs, width - 2):
            lines += wrapped(filled, width, 2)
    return Group(*lines)


def _filled(pairs: list[Text], width: int) -> list[Text]:
    """*pairs* joined by ", " into lines of at most *width*, broken only between pairs."""
    lines: list[Text] = []
    for pair in pairs:
        if lines and lines[-1].cell_len + 2 + pair.cell_len <= width:
            lines[-1].append(", ").append_text(pair)
        else:
            lines.append(pair.copy())
    return lines


def wrapped(text: str | Text, width: int, indent: int = 0) -> list[Text]:
    """*text* (rich markup, or Text) as lines of *width*, *indent* columns in.

    Broken between words only: a word longer than a line has one of its own, past *width*.
    """
    from rich.text import Text

    shown = Text.from_markup(text) if isinstance(text, str) else text
    room = max(width - indent, 1)
    lines = []
    for paragraph in shown.split("\n", allow_blank=True):
        breaks, start = [], 0
        for word in _WORD.finditer(paragraph.plain):
            if word.end() - start > room and word.start() > start:
                breaks.append(word.start())
                start = word.start()
        for line in paragraph.divide(breaks):
            line.rstrip()
            lines.append(Text(" " * indent) + line if line.plain else line)
    return lines


def say(out: Console, text: str | Text, indent: int = 0) -> None:
    """Print *text* (rich markup) wrapped(): no word cut, each line under *indent*."""
    for line in wrapped(text, out.width, indent):
        out.print(line, soft_wrap=True)


def print_grid(
    out: Console, title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[str]]
) -> None:
    """*title* (markup) on its own line, then grid(); a block's lines as wrapped() made them."""
    from rich.console import Group

    if title:
        say(out, title)
    shown = grid(columns, rows, out.width)
    for part in shown.renderables if isinstance(shown, Group) else [shown]:
        out.print(part, soft_wrap=isinstance(shown, Group))


class _Trimmed:
    """A text stream whose lines lose their trailing spaces (rich pads to its width)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._stream.write(line.rstrip() + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(self._pending)
            self._pending = ""
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._stream.fileno()
