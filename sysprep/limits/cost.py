"""What one idle thread costs the host in memory: the model's unit of account."""

from __future__ import annotations

from typing import NamedTuple


class ThreadCost(NamedTuple):
    """Memory one idle thread costs the host, in bytes (DESIGN.md: ~35 KiB on x86_64)."""

    kernel_stack: int  # THREAD_SIZE, meminfo KernelStack
    page_tables: int  # the PTE page its stack touches, meminfo PageTables
    slab: int  # task_struct and friends, meminfo SUnreclaim
    rss: int  # user pages touched: TCB/TLS and the first stack frame
    measured: bool = False  # True when --calibrate started real threads to find it

    @property
    def total(self) -> int:
        """What each thread takes from MemAvailable."""
        return self.kernel_stack + self.page_tables + self.slab + self.rss
