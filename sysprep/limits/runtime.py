"""Limits a runtime sets itself: Go stops a program at 10,000 OS threads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sysprep.limits.base import Reading
from sysprep.limits.base import measured
from sysprep.runtimes import GO_MAX_THREADS
from sysprep.settings import Fix

if TYPE_CHECKING:
    from sysprep.limits.inspection import Inspection


class GoMaxThreads:
    """go.max_threads: past it the Go runtime aborts the whole program.

    "fatal error: thread exhaustion"; debug.SetMaxThreads raises it. Goroutines are not
    threads: a goroutine in a blocking system call, a cgo call or runtime.LockOSThread holds
    one.
    """

    name = "go.max_threads"
    unit = "threads"
    counts = "threads"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is the limit minus the program's OS threads (its runtime's, before it runs)."""
        if inspection.target.pid is not None:
            in_use = int(inspection.status["Threads"])
        else:
            in_use = 1 + inspection.shape.runtime_threads
        needed = in_use + inspection.target.threads
        return measured(
            self.name,
            inspection.target,
            current=GO_MAX_THREADS,
            in_use=in_use,
            allows=GO_MAX_THREADS - in_use,
            needed=needed,
            fix=Fix(
                setting=self.name,
                value=needed,
                now=f"call debug.SetMaxThreads({needed}) (runtime/debug) early in main",
                persist="in the program's source",
                takes_effect="at the program's next start",
            ),
            note=(
                "the Go runtime's default; the program aborts past it (fatal error: thread"
                " exhaustion), unless it called debug.SetMaxThreads"
            ),
        )
