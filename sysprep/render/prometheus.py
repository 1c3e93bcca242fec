"""`check --prometheus FILE`: node_exporter's textfile-collector format, written atomically.

Per limit: sysprep_limit_current, sysprep_limit_in_use and sysprep_limit_headroom, labelled
with the limit, the systemd unit judged (check --unit; "" otherwise) and what its headroom
counts (threads or connections); then
sysprep_capacity, sysprep_ready and sysprep_per_thread_bytes. Unlimited is +Inf; a limit
that could not be read is NaN (and sysprep_ready 0).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sysprep.limits.base import Status
from sysprep.procfs import write_atomic

if TYPE_CHECKING:
    from pathlib import Path

    from sysprep.limits.base import Reading
    from sysprep.report import CheckResult

_PER_LIMIT = (
    ("sysprep_limit_current", "The limit's value: a count, or bytes (see the limit).", "current"),
    ("sysprep_limit_in_use", "What is already used of it.", "in_use"),
    ("sysprep_limit_headroom", "How many more threads (or connections) it allows.", "allows"),
)


def prometheus_text(result: CheckResult) -> str:
    """The metrics, one HELP and TYPE line per family, samples in the limits' order."""
    lines = []
    readings = result.assessment.readings
    for name, help_text, field in _PER_LIMIT:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        unit = result.unit.name if result.unit else ""
        lines += [f"{name}{{{_labels(r, unit)}}} {_value(r, getattr(r, field))}" for r in readings]
    assessment = result.assessment
    cost = assessment.cost
    for name, help_text, value in (
        (
            "sysprep_capacity",
            "More threads the host allows; +Inf: none binds.",
            assessment.capacity,
        ),
        ("sysprep_ready", "1 when every limit was read and allows the target.", int(result.ready)),
        (
            "sysprep_per_thread_bytes",
            "Memory one more thread costs the host.",
            cost and cost.total,
        ),
    ):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines.append(f"{name} {_number(value)}")
    return "\n".join(lines) + "\n"


def write_prometheus(result: CheckResult, path: Path) -> None:
    """Write the metrics to *path* atomically: node_exporter never reads half a file."""
    write_atomic(path, prometheus_text(result).encode(), mode=0o644)


def _labels(reading: Reading, unit: str) -> str:
    return (
        f'limit="{_escape(reading.name)}",unit="{_escape(unit)}",counts="{_escape(reading.unit)}"'
    )


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(reading: Reading, value: int | None) -> str:
    if reading.status is Status.UNKNOWN:
        return "NaN"
    return _number(value)


def _number(value: float | None) -> str:
    if value is None:
        return "+Inf"
    return "NaN" if isinstance(value, float) and math.isnan(value) else str(value)
