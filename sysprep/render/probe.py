"""A probe while it runs (a progress bar) and what it held (a few lines)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING
from typing import Any

from sysprep.facts import PROBES
from sysprep.render import esc
from sysprep.render.layout import console
from sysprep.render.layout import say
from sysprep.units import format_size

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator


@contextmanager
def probe_progress(name: str, target: int) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar (count, rate, ETA) while a probe runs, on a terminal only."""
    from rich.console import Console
    from rich.progress import BarColumn
    from rich.progress import MofNCompleteColumn
    from rich.progress import Progress
    from rich.progress import TaskProgressColumn
    from rich.progress import TextColumn
    from rich.progress import TimeRemainingColumn

    err = Console(stderr=True)
    if not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn(f"{name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(name, total=target, rate="")

        def update(created: int, total: int) -> None:
            speed = progress.tasks[0].speed
            rate = f"{speed:,.0f}/s" if speed else ""
            progress.update(task, completed=created, total=total, rate=rate)

        yield update


def print_probe(document: dict[str, Any]) -> None:
    """What a probe held, how fast, what each thread cost, and what stopped it."""
    out = console()
    probe = PROBES[document["probe"]]
    held, target = document["held"], document["target"]
    rate = document.get("create_rate")
    say(
        out,
        f"[bold]{held:,}[/] of {target:,} {probe.holds} alive at once"
        f" ({document.get('created', held):,} created in {document['create_seconds']:.2f} s"
        + (f", {rate:,}/s" if rate else "")
        + ")",
    )
    stopped = document.get("stopped_by")
    if stopped:
        say(
            out,
            f"stopped by: [bold red]{esc(stopped)}[/]"
            + (f" ({document['errno']})" if document.get("errno") else ""),
        )
    costs = document.get(f"per_{probe.one}_bytes") or {}
    if costs:
        parts = ", ".join(
            f"{key.replace('_', ' ')} {format_size(max(value, 0))}" for key, value in costs.items()
        )
        say(out, esc(f"per {probe.one}: {parts}"))
    if document.get("oom_kills"):
        say(out, f"[bold red]the OOM killer fired {document['oom_kills']} time(s)[/]")
