"""`sysprep watch`: the headroom table (rich Live), its JSON, and its Prometheus textfile."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from sysprep.procfs import write_atomic
from sysprep.render import SCHEMA_VERSION
from sysprep.render import shown

if TYPE_CHECKING:
    from pathlib import Path

    from rich.table import Table

    from sysprep.watch import Trend


def watch_document(pid: int, trends: list[Trend], warn_pct: float) -> dict[str, Any]:
    """The `watch --once --json` document (sysprep/schemas/watch.schema.json)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "pid": pid,
        "warn_pct": warn_pct,
        "limits": [
            {
                "limit": t.row.limit,
                "counts": t.row.counts,
                "used": t.row.used,
                "limit_value": t.row.limit_value,
                "headroom": t.row.headroom,
                "headroom_pct": t.row.headroom_pct,
                "per_second": t.per_second,
                "seconds_left": t.seconds_left,
            }
            for t in trends
        ],
    }


def watch_table(pid: int, trends: list[Trend], warn_pct: float) -> Table:
    """One refresh of the live table; headroom under *warn_pct* % in red."""
    from rich.table import Table

    table = Table(title=f"headroom of pid {pid}", title_justify="left")
    table.add_column("limit", no_wrap=True, min_width=18)
    for column in ("used", "of", "headroom", "per second", "time left"):
        table.add_column(column, justify="right", no_wrap=True)
    for trend in trends:
        row = trend.row
        in_bytes = row.counts == "bytes"
        pct = row.headroom_pct
        left = "" if pct is None else f" ({pct:.0f} %)"
        style = "bold red" if pct is not None and pct < warn_pct else ""
        rate = "" if trend.per_second is None else f"{trend.per_second:+,.0f}/s"
        table.add_row(
            row.limit,
            shown(row.used, in_bytes=in_bytes),
            shown(row.limit_value, in_bytes=in_bytes),
            f"[{style}]{shown(row.headroom, in_bytes=in_bytes)}{left}[/]" if style else
            f"{shown(row.headroom, in_bytes=in_bytes)}{left}",
            rate,
            _duration(trend.seconds_left),
        )  # fmt: skip
    return table


def write_watch_prometheus(trends: list[Trend], path: Path) -> None:
    """The rows as sysprep_limit_current / _in_use / _headroom, as check --prometheus has."""
    lines = []
    for name, field in (
        ("sysprep_limit_current", "limit_value"),
        ("sysprep_limit_in_use", "used"),
        ("sysprep_limit_headroom", "headroom"),
    ):
        lines += [f"# TYPE {name} gauge"]
        for trend in trends:
            value = getattr(trend.row, field)
            labels = f'limit="{trend.row.limit}",unit="",counts="{trend.row.counts}"'
            lines.append(f"{name}{{{labels}}} {'+Inf' if value is None else value}")
    write_atomic(path, ("\n".join(lines) + "\n").encode(), mode=0o644)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
