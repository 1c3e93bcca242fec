"""Measure memory per thread on this kernel by holding a few real threads for a moment."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sysprep.errors import BadInputError
from sysprep.errors import ExitCode
from sysprep.errors import SysprepError
from sysprep.limits.cost import ThreadCost
from sysprep.limits.inspection import Inspection
from sysprep.probe_runner import run_probe

if TYPE_CHECKING:
    from sysprep.host import Host
    from sysprep.limits.base import Target

# Enough threads to drown the noise of other kernel activity; ~0.15 s and ~70 MiB.
CALIBRATION_THREADS = 2000


class CalibrationError(SysprepError):
    """The calibration threads could not all be held: a limit binds before 2,000."""

    exit_code = ExitCode.NOT_READY


def calibrate_cost(host: Host, target: Target) -> ThreadCost:
    """Hold CALIBRATION_THREADS threads of the target's stack size and read their cost."""
    if not host.is_live:
        raise BadInputError("--calibrate starts real threads; it cannot measure a --root tree")
    stack = Inspection(host, target).shape.stack_bytes
    result = run_probe("threads", ["--count", str(CALIBRATION_THREADS), "--stack", str(stack)])
    if not result.reached:
        reason = result.document.get("stopped_by") or "unknown"
        raise CalibrationError(
            f"calibration could not hold {CALIBRATION_THREADS} threads (stopped by {reason});"
            " run check without --calibrate to see which limit binds"
        )
    cost = result.document["per_thread_bytes"]
    return ThreadCost(
        # THREAD_SIZE is a power of two; other tasks coming and going blur the delta.
        kernel_stack=1 << round(math.log2(max(cost["kernel_stack"], 1))),
        page_tables=cost["page_tables"],
        slab=cost["slab"],
        rss=cost["rss"],
        measured=True,
    )
