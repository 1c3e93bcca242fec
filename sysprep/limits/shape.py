"""What one thread of the judged program takes: its stack, guards and mappings, by runtime.

C threads get glibc's stack (from RLIMIT_STACK), a JVM's its -Xss, Rust's and Go's their
own (runtimes.py); each adds mappings and address space the limits count per thread.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from sysprep.facts import ARCH_STACK_DEFAULT
from sysprep.facts import PTHREAD_STACK_MIN
from sysprep.procfs import parse_version
from sysprep.units import MIB

if TYPE_CHECKING:
    from sysprep.limits.inspection import Inspection
    from sysprep.runtimes import RuntimeUse


class ThreadShape:
    """One thread of the judged program: its runtime, stack, guards and mappings."""

    def __init__(self, inspection: Inspection) -> None:
        self.inspection = inspection
        self.host = inspection.host
        self.target = inspection.target

    @cached_property
    def runtime(self) -> RuntimeUse:
        """The runtime judged (C, JVM, Rust, Go): given, or recognised in the program.

        The program is the --pid process, or the stopped --unit's ExecStart.
        """
        from sysprep import runtimes

        target, unit, program = self.target, self.inspection.unit, None
        if target.pid is not None:
            program = runtimes.running_program(self.host, target.pid)
        elif unit is not None and self.inspection.unit_stopped:
            program = unit.program(self.host)
        return runtimes.choose(self.host, target.runtime, target.runtime_from, program)

    @cached_property
    def runtime_threads(self) -> int:
        """Threads the runtime of a program yet to start will add beside its main thread.

        A running process's (--pid) are already counted in what it uses.
        """
        if self.target.pid is not None or not self.runtime.starts_threads:
            return 0
        return self.runtime.own_threads(self.host.cpus())

    @cached_property
    def page_size(self) -> int:
        """Base page size; also glibc's default guard size."""
        return self.host.page_size()

    @cached_property
    def arch(self) -> str:
        """Machine architecture (uname -m)."""
        return self.host.arch()

    @cached_property
    def stack_bytes(self) -> int:
        """Thread stack: --stack, else the runtime's (C: glibc's, from RLIMIT_STACK).

        glibc's rule is pthread_early_init.h's.
        """
        size = self.target.stack_bytes
        if size is None:
            size = self.runtime.default_stack()[0]
        if size is None:
            soft = self.inspection.rlimits["RLIMIT_STACK"][0]
            size = ARCH_STACK_DEFAULT.get(self.arch, 2 * MIB) if soft is None else soft
        size = max(size, PTHREAD_STACK_MIN)
        return -(-size // self.page_size) * self.page_size

    @cached_property
    def guard_bytes(self) -> int:
        """Address space mapped per thread and never written: its guard pages.

        glibc's guard page (since 2.27), and the runtime's own (Rust's signal-stack guard);
        none for a JVM (its guard zones are inside the stack) or pure Go.
        """
        return self.runtime.guard_bytes(self.page_size)

    @cached_property
    def glibc_maps_per_thread(self) -> int:
        """Mappings per glibc thread stack: 2 (stack + PROT_NONE guard), or 1 with madvise guards.

        glibc ≥ 2.42 installs the guard with MADV_GUARD_INSTALL where Linux ≥ 6.13 has it.
        """
        glibc = parse_version(self.host.glibc_version())
        kernel = parse_version(self.host.kernel_release())
        return 1 if glibc >= (2, 42) and kernel >= (6, 13) else 2

    @cached_property
    def maps_per_thread(self) -> int:
        """Mappings one thread adds in the judged runtime."""
        return self.runtime.maps_per_thread(self.glibc_maps_per_thread)

    @cached_property
    def mapped_per_thread(self) -> int:
        """Address space one thread maps: its stack, guards and the runtime's signal stack."""
        return self.stack_bytes + self.guard_bytes + self.runtime.signal_stack()

    @cached_property
    def committed_per_thread(self) -> int:
        """Bytes of a thread charged as writable (Committed_AS, RLIMIT_DATA).

        The stack and the runtime's signal stack; for C, also glibc's guard when glibc maps
        it writable and fences it with madvise.
        """
        guard = self.guard_bytes if self.maps_per_thread == 1 and self.runtime.name == "c" else 0
        return self.stack_bytes + self.runtime.signal_stack() + guard
