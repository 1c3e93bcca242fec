"""node_exporter's textfile-collector format, for check and watch alike: one writer.

Per limit, labelled with the limit, the systemd unit judged (--unit; "" otherwise):
- sysprep_limit_current, sysprep_limit_in_use: a count limit's value and use (threads,
  mappings, fds...); sysprep_limit_current_bytes, sysprep_limit_in_use_bytes: a byte limit's.
  One unit per metric name, as Prometheus's naming rules ask.
- sysprep_limit_headroom: how many more threads (or connections: label `counts`) it allows;
- sysprep_limit_headroom_ratio: the share of the limit still free, 0 to 1;
- sysprep_limit_status: 1 for its status (ok, fails, unknown), 0 for the others;
- with watch, sysprep_limit_seconds_left where the use grows.
Then sysprep_capacity, sysprep_connections_capacity, sysprep_ready, sysprep_per_thread_bytes,
and sysprep_profile_compliant with --profile.

A value that is not known, or does not apply (the headroom of a limit that cannot bind),
leaves its line out; +Inf is only ever a real "unlimited".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sysprep.limits.base import Status
from sysprep.render.outfile import OutputFile

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Sequence
    from pathlib import Path

    from sysprep.limits.base import Reading
    from sysprep.report import CheckResult
    from sysprep.watch import Trend

Sample = tuple[dict[str, str], float]  # labels, value


class Family:
    """One metric family: its name, help, and samples."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help = help_text
        self.samples: list[Sample] = []

    def add(self, labels: dict[str, str], value: float | None) -> None:
        """A sample; None (not known, or does not apply) is left out."""
        if value is not None:
            self.samples.append((labels, value))

    def lines(self) -> list[str]:
        """HELP, TYPE and one line per sample; nothing when it has none."""
        if not self.samples:
            return []
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge"]
        for labels, value in self.samples:
            text = ",".join(f'{key}="{_escape(v)}"' for key, v in labels.items())
            lines.append(f"{self.name}{{{text}}} {_number(value)}" if text else
                         f"{self.name} {_number(value)}")  # fmt: skip
        return lines


def limit_families(
    readings: Sequence[Reading], unit: str = "", trends: Iterable[Trend] = ()
) -> list[Family]:
    """The per-limit families of *readings* (and of watch's *trends*)."""
    current = Family("sysprep_limit_current", "The limit's value (a count); +Inf: unlimited.")
    current_b = Family("sysprep_limit_current_bytes", "The limit's value in bytes.")
    in_use = Family("sysprep_limit_in_use", "What is already used of it (a count).")
    in_use_b = Family("sysprep_limit_in_use_bytes", "What is already used of it, in bytes.")
    headroom = Family(
        "sysprep_limit_headroom", "How many more threads (or connections) it allows."
    )
    ratio = Family("sysprep_limit_headroom_ratio", "The share of the limit still free, 0 to 1.")
    status = Family("sysprep_limit_status", "1 for the limit's status: ok, fails or unknown.")
    left = Family("sysprep_limit_seconds_left", "Seconds until the limit binds at today's rate.")
    for reading in readings:
        labels = {"limit": reading.name, "unit": unit}
        for state in Status:
            status.add({**labels, "status": state.value}, int(reading.status is state))
        if reading.status is Status.UNKNOWN:
            continue
        unlimited = reading.current is None
        (current_b if reading.in_bytes else current).add(
            labels, math.inf if unlimited else reading.current
        )
        (in_use_b if reading.in_bytes else in_use).add(labels, reading.in_use)
        allows = math.inf if unlimited and reading.allows is None else reading.allows
        headroom.add({**labels, "counts": reading.unit}, allows)
        ratio.add(labels, reading.ratio)
    for trend in trends:
        left.add({"limit": trend.reading.name, "unit": unit}, trend.seconds_left)
    return [current, current_b, in_use, in_use_b, headroom, ratio, status, left]


def check_text(result: CheckResult) -> str:
    """The textfile for `check --prometheus`."""
    assessment = result.assessment
    unit = result.unit.name if result.unit else ""
    families = limit_families(assessment.readings, unit)
    thread_readings = [r for r in assessment.readings if r.unit == "threads"]
    capacity = Family("sysprep_capacity", "More threads the host allows; +Inf: none binds.")
    if assessment.target.threads and not any(r.status is Status.UNKNOWN for r in thread_readings):
        capacity.add({}, math.inf if assessment.capacity is None else assessment.capacity)
    connections = Family("sysprep_connections_capacity", "More connections the host allows.")
    if assessment.target.connections:
        connections.add({}, assessment.connections_capacity)
    ready = Family("sysprep_ready", "1 when every limit was read and allows the target.")
    ready.add({}, int(result.ready))
    cost = Family("sysprep_per_thread_bytes", "Memory one more thread costs the host.")
    cost.add({}, assessment.cost.total if assessment.cost else None)
    families += [capacity, connections, ready, cost]
    if result.compliance is not None:
        compliant = Family(
            "sysprep_profile_compliant", "1 when the host meets every item of the profile."
        )
        compliant.add(
            {"profile": result.compliance.profile.name}, int(result.compliance.compliant)
        )
        families.append(compliant)
    return _text(families)


def watch_text(readings: Sequence[Reading], trends: Iterable[Trend], unit: str = "") -> str:
    """The textfile for `watch --prometheus`: each refresh's readings and time left."""
    return _text(limit_families(readings, unit, trends))


# What --prometheus asks for, when it names something else.
TEXTFILE = OutputFile("--prometheus", "name a file in node_exporter's textfile directory")


def check_path(path: Path) -> None:
    """BadInputError unless a textfile may be written at *path* (OutputFile.check)."""
    TEXTFILE.check(path)


def write_textfile(path: Path, text: str) -> None:
    """Write *text* to *path* atomically: node_exporter never reads half of it."""
    TEXTFILE.write(path, text)


def _text(families: list[Family]) -> str:
    return "\n".join(line for family in families for line in family.lines()) + "\n"


def _escape(text: str) -> str:
    """A label value as the text format escapes it: backslash, double quote, newline."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))
