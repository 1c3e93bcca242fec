"""What a Kubernetes node's own agents read of check, without an API client of sysprep's.

- node-problem-detector runs a custom plugin on an interval and keeps its exit status (0
  OK, 1 problem, 2 unknown) and the first 80 characters of its stdout as a condition's
  message: `check --npd` prints one such line.
- Node Feature Discovery turns the `name=value` lines of a file in its features.d into
  node labels (feature.node.kubernetes.io/NAME), which workloads can nodeSelect:
  `check --nfd FILE` writes one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sysprep.limits.base import Status
from sysprep.render.outfile import OutputFile

if TYPE_CHECKING:
    from sysprep.report import CheckResult

# node-problem-detector's plugin contract (config/plugin/check_ntp.sh): status, then width.
NPD_OK, NPD_PROBLEM, NPD_UNKNOWN = 0, 1, 2
NPD_WIDTH = 80
NFD_FILE = OutputFile(
    "--nfd",
    "name a file in NFD's feature directory (/etc/kubernetes/node-feature-discovery/features.d)",
)
_LABEL_VALUE = 63  # a label value's length, at most (Kubernetes' validation)


def npd_line(result: CheckResult) -> tuple[str, int]:
    """The one line, at most NPD_WIDTH characters, and the status node-problem-detector keeps.

    A limit that stops the target, or a profile item not met, is a problem (1); else
    something that could not be read is unknown (2), never a pass; else OK (0).
    """
    assessment = result.assessment
    target = assessment.target
    failing = [r for r in assessment.readings if r.status is Status.FAILS]
    unread = [r.name for r in assessment.unknown]
    verdicts = result.compliance.verdicts if result.compliance is not None else ()
    unmet = [v.key for v in verdicts if v.ok is False]
    unread += [v.key for v in verdicts if v.ok is None and v.key not in unread]
    profile = result.compliance.profile.name if result.compliance is not None else None
    if failing:
        binding = assessment.binding
        first = binding if binding is not None and binding in failing else failing[0]
        what = (
            f"{target.connections:,} connections"
            if first.unit == "connections"
            else (f"{target.threads:,} threads")
        )
        allows = "nothing" if not first.allows else f"{first.allows:,}"
        return _fit(f"not ready for {what}: {first.name} allows {allows}"), NPD_PROBLEM
    if unmet:
        more = f" (and {len(unmet) - 1} more)" if len(unmet) > 1 else ""
        return _fit(f"not as {profile} asks: {unmet[0]}{more}"), NPD_PROBLEM
    if unread:
        more = f" (and {len(unread) - 1} more)" if len(unread) > 1 else ""
        return _fit(f"unknown: could not read {unread[0]}{more}"), NPD_UNKNOWN
    by = f" ({assessment.binding.name})" if assessment.binding is not None else ""
    room = "no limit" if assessment.capacity is None else f"{assessment.capacity:,}"
    met = f"; {profile} met" if profile is not None else ""
    return _fit(f"ready for {target.threads:,} threads: room for {room}{by}{met}"), NPD_OK


def npd_error(error: Exception) -> str:
    """The line for a check that could not run (bad input): unknown, and why."""
    return _fit(f"unknown: {error}")


def nfd_text(result: CheckResult) -> str:
    """The feature file: readiness, capacity, binding limit, and a profile's compliance.

    Each line is NAME=VALUE, the value a valid label value; NFD adds its prefix.
    """
    assessment = result.assessment
    lines = {
        "sysprep-ready": _boolean(assessment.ready),
        "sysprep-target-threads": str(assessment.target.threads),
    }
    if assessment.known_capacity is not None:
        lines["sysprep-thread-capacity"] = str(assessment.known_capacity)
    if assessment.binding is not None:
        lines["sysprep-binding"] = _label_value(assessment.binding.name)
    if result.compliance is not None:
        name = _label_value(result.compliance.profile.name)
        lines[f"sysprep-compliant-{name}"] = _boolean(result.compliance.compliant)
    return "".join(f"{name}={value}\n" for name, value in lines.items())


def _fit(line: str) -> str:
    """At most NPD_WIDTH characters: node-problem-detector cuts the rest."""
    return line if len(line) <= NPD_WIDTH else line[: NPD_WIDTH - 3] + "..."


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def _label_value(text: str) -> str:
    """*text* as a label value: [A-Za-z0-9._-], alphanumeric at both ends, 63 at most.

    "kernel.pid_max (parent namespaces)" is "kernel.pid_max_parent_namespaces".
    """
    value = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return value[:_LABEL_VALUE].rstrip("._-") or "unknown"
