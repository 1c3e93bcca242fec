"""`sysprep watch`: the headroom table (rich Live) and its JSON document."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from sysprep.render import SCHEMA_VERSION
from sysprep.render import esc
from sysprep.render import shown
from sysprep.render.layout import Column
from sysprep.render.layout import console
from sysprep.render.layout import grid

_NUMERIC = ("used", "of", "headroom", "per second", "time left")

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import RenderableType

    from sysprep.watch import Sample
    from sysprep.watch import Trend
    from sysprep.watch import Watcher


def watch_document(
    pid: int, sample: Sample, trends: list[Trend], warn_pct: float
) -> dict[str, Any]:
    """The `watch --once --json` document (sysprep/schemas/watch.schema.json).

    Each limit's current value (limit_value) and use (used) are check's current and in
    use; headroom is the room left in the limit's own units.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "pid": pid,
        "warn_pct": warn_pct,
        "limits": [
            {
                "limit": t.reading.name,
                "counts": t.reading.counts,
                "used": t.reading.in_use,
                "limit_value": t.reading.current,
                "headroom": t.reading.room,
                "headroom_pct": None if t.reading.ratio is None else 100 * t.reading.ratio,
                "per_second": t.per_second,
                "seconds_left": t.seconds_left,
            }
            for t in trends
        ],
        "unknown": [{"limit": r.name, "reason": r.note} for r in sample.unknown],
    }


def watch_table(
    pid: int, sample: Sample, trends: list[Trend], warn_pct: float, width: int
) -> RenderableType:
    """One refresh: its title, and the table (blocks, narrower than it).

    Headroom under *warn_pct* % is in red.
    """
    from rich.console import Group

    rows = []
    for trend in trends:
        reading = trend.reading
        in_bytes = reading.in_bytes
        pct = None if reading.ratio is None else 100 * reading.ratio
        left = "" if pct is None else f" ({pct:.0f} %)"
        headroom = f"{shown(reading.room, in_bytes=in_bytes)}{left}"
        if pct is not None and pct < warn_pct:
            headroom = f"[bold red]{headroom}[/]"
        rate = "" if trend.per_second is None else f"{trend.per_second:+,.0f}/s"
        rows.append([
            esc(reading.name),
            shown(reading.in_use, in_bytes=in_bytes),
            shown(reading.current, in_bytes=in_bytes),
            headroom,
            rate,
            _duration(trend.seconds_left),
        ])  # fmt: skip
    rows += [[esc(r.name), "?", "?", "[yellow]unknown[/]", "", ""] for r in sample.unknown]
    columns = [Column("limit"), *(Column(name, numeric=True) for name in _NUMERIC)]
    return Group(f"headroom of pid {pid}", grid(columns, rows, width))


def print_once(sample: Sample, warn_pct: float) -> None:
    """One refresh of the table, printed."""
    from sysprep.watch import trends

    out = console()
    out.print(watch_table(sample.pid, sample, trends(None, sample), warn_pct, out.width))


def show_live(
    watcher: Watcher, first: Sample, *, interval: float, warn: float, textfile: Path | None
) -> None:
    """The live table, refreshed every *interval* until a signal or an error ends it.

    Each refresh's textfile is written too. A new main pid is said in one line, and its
    rates start again.
    """
    import time

    from rich.live import Live

    from sysprep.render.prometheus import watch_text
    from sysprep.render.prometheus import write_textfile
    from sysprep.watch import trends

    now = first
    out = console()
    first_table = watch_table(now.pid, now, trends(None, now), warn, out.width)
    with Live(first_table, console=out, auto_refresh=False) as live:
        while True:
            time.sleep(interval)
            before, now = now, watcher.sample()
            if now.note:
                live.console.print(now.note, markup=False)
            shown = trends(None if now.note else before, now)
            if textfile is not None:
                write_textfile(textfile, watch_text(now.readings, shown, watcher.label))
            live.update(watch_table(now.pid, now, shown, warn, out.width), refresh=True)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
