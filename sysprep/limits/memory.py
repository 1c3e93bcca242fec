"""Memory-side limits: MemAvailable, the memory cgroup, CommitLimit, the user address space."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sysprep.facts import PTHREAD_STACK_MIN
from sysprep.limits.base import Reading
from sysprep.limits.base import measured
from sysprep.limits.base import unbounded
from sysprep.limits.cgroup import cgroup_walk
from sysprep.limits.cgroup import hidden_note
from sysprep.limits.cgroup import made_by
from sysprep.limits.cgroup import runtime_knob
from sysprep.limits.cgroup import runtime_update
from sysprep.limits.cost import ThreadCost
from sysprep.settings import Fix
from sysprep.settings.sysctl import SysctlSetting
from sysprep.units import KIB
from sysprep.units import MIB
from sysprep.units import format_size

if TYPE_CHECKING:
    from sysprep.limits.cgroup import CgroupLevel
    from sysprep.limits.inspection import Inspection

# A memory cgroup limit this large means "none" (v1 prints PAGE_COUNTER_MAX in bytes).
_UNLIMITED_BYTES = 1 << 62
# (limit, usage) files of the memory controller: cgroup v2's, then v1's.
_MEMORY_FILES = (
    ("memory.max", "memory.current"),
    ("memory.limit_in_bytes", "memory.usage_in_bytes"),
)
# Measured SUnreclaim per thread beyond task_struct: pid, vmap_area and friends (~1.6 KiB).
_SLAB_BESIDES_TASK_STRUCT = 1600
_SLAB_FALLBACK = 7 * KIB
# x86_64 maps user space below 47 bits unless a program asks for more (5level-paging.rst).
_X86_DEFAULT_MAP_WINDOW_BITS = 47


def memory_floor(meminfo: dict[str, int]) -> int:
    """MemAvailable kept free so the OOM killer never wakes: 5 % of RAM, at least 512 MiB."""
    return max(meminfo["MemTotal"] // 20, 512 * MIB)


def estimate_cost(inspection: Inspection) -> ThreadCost:
    """Per-thread memory from this host's counters, without starting a thread."""
    meminfo = inspection.meminfo
    page = inspection.shape.page_size
    # THREAD_SIZE is a power of two: 16 KiB on x86_64, 64 KiB on 64K-page arm64 kernels.
    kernel_stack = 16 * KIB
    tasks = inspection.host.tasks_total()
    if meminfo.get("KernelStack") and tasks:
        kernel_stack = 1 << round(math.log2(meminfo["KernelStack"] / tasks))
    # One PTE page maps page/8 pages; a stack touches the PTE page of its own region.
    region = page * (page // 8)
    page_tables = page * min(1.0, inspection.shape.mapped_per_thread / region)
    try:
        slab = inspection.host.slab_object_size("task_struct") + _SLAB_BESIDES_TASK_STRUCT
    except (OSError, ValueError):
        slab = _SLAB_FALLBACK
    return ThreadCost(kernel_stack, int(page_tables), slab, rss=2 * page)


def thread_cost(inspection: Inspection) -> ThreadCost:
    """Calibrated cost when --calibrate measured it, else the estimate, made once."""
    if inspection.thread_cost is None:
        inspection.thread_cost = estimate_cost(inspection)
    return inspection.thread_cost


class MemAvailable:
    """MemAvailable: each thread takes kernel stack, page tables, slab and two user pages."""

    name = "memory"
    unit = "threads"
    counts = "bytes"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is (MemAvailable - the OOM floor) / per-thread cost."""
        meminfo = inspection.meminfo
        cost = thread_cost(inspection).total
        floor = memory_floor(meminfo)
        available = meminfo["MemAvailable"]
        needed = floor + cost * inspection.target.threads
        return measured(
            self.name,
            inspection.target,
            current=available,
            in_use=meminfo["MemTotal"] - available,
            allows=(available - floor) // cost,
            room=available - floor,
            needed=needed,
            fix=_memory_fix(self.name, needed, meminfo, floor, cost),
            note=f"{format_size(cost)} per thread; {format_size(floor)} kept free",
        )


class MemoryCgroup:
    """The memory cgroup limit: kernel stacks, page tables and slab are charged to it too."""

    name = "memory.max"
    unit = "threads"
    counts = "bytes"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is the smallest limit - usage up the memory cgroup path, over the cost."""
        unit = inspection.unit
        memory_max = unit.memory_max if unit is not None else None
        walk = cgroup_walk(inspection, "memory", _MEMORY_FILES, memory_max)
        hidden = hidden_note(walk.hidden_above if walk is not None else None)
        bounded = [
            level
            for level in (walk.levels if walk is not None else [])
            if level.limit is not None and level.limit < _UNLIMITED_BYTES
        ]
        if not bounded:
            return unbounded(self.name, inspection.target, "no memory cgroup limit" + hidden)
        tightest = min(bounded, key=lambda level: (level.limit or 0) - level.usage)
        limit, usage = tightest.limit or 0, tightest.usage
        cost = thread_cost(inspection).total
        needed = usage + cost * inspection.target.threads
        fix = _cgroup_fix(inspection, tightest, needed)
        return measured(
            self.name,
            inspection.target,
            current=limit,
            in_use=usage,
            allows=(limit - usage) // cost,
            needed=needed,
            fix=fix,
            note=f"{tightest.shown}; {format_size(cost)} per thread{hidden}",
        )


def _cgroup_fix(inspection: Inspection, level: CgroupLevel, needed: int) -> Fix:
    """The knob of whatever made the memory cgroup: a pod's, a container's, else the file."""
    size = format_size(needed)
    made = made_by(inspection, level)
    if made is None:
        return Fix(
            setting=f"{level.shown} memory limit",
            value=needed,
            now=f"raise the limit of {level.shown} to at least {size}",
            persist="set it where the cgroup is created (systemd MemoryMax=, docker --memory)",
            takes_effect="now",
        )
    if made[0] == "kubernetes":
        return runtime_knob(inspection, "kubernetes", Fix(
            setting="pod memory limit",
            value=needed,
            now=f"give the container resources.limits.memory of at least {size}",
            persist="resources.limits.memory in the pod spec",
            takes_effect="when the pod is recreated (or resized in place, where allowed)",
        ))  # fmt: skip
    return runtime_update(inspection, made, "memory", "mem_limit", needed)


class CommitLimit:
    """CommitLimit: with vm.overcommit_memory = 2 every stack is charged in full (mm/util.c)."""

    name = "CommitLimit"
    unit = "threads"
    counts = "bytes"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is (CommitLimit - Committed_AS - reserves) / stack under mode 2."""
        mode = inspection.host.sysctl_int("vm.overcommit_memory")
        meminfo = inspection.meminfo
        limit, committed = meminfo["CommitLimit"], meminfo["Committed_AS"]
        if mode != 2:  # noqa: PLR2004 - overcommit mode 2 is "never"
            return measured(
                self.name,
                inspection.target,
                current=limit,
                in_use=committed,
                allows=None,
                note=f"vm.overcommit_memory = {mode}: stacks are not charged against it",
            )
        # __vm_enough_memory(): callers without CAP_SYS_ADMIN leave admin_reserve_kbytes;
        # everyone leaves min(total_vm / 32, user_reserve_kbytes).
        reserve = min(
            inspection.vm_bytes("VmSize") // 32,
            inspection.host.sysctl_int("vm.user_reserve_kbytes") * KIB,
        )
        if not inspection.nproc_exempt:
            reserve += inspection.host.sysctl_int("vm.admin_reserve_kbytes") * KIB
        per_thread = inspection.shape.committed_per_thread
        needed = committed + reserve + per_thread * inspection.target.threads
        fits = max((limit - committed - reserve) // inspection.target.threads, 0)
        fix = SysctlSetting("vm.overcommit_memory").fix(
            0, where=inspection.sysctl_where("vm.overcommit_memory")
        )
        fix = fix._replace(now=f"{fix.now}, or a thread stack of at most {format_size(fits)}")
        return measured(
            self.name,
            inspection.target,
            current=limit,
            in_use=committed,
            allows=(limit - committed - reserve) // per_thread,
            room=limit - committed - reserve,
            needed=needed,
            fix=fix,
            note=f"vm.overcommit_memory = 2; {format_size(per_thread)} per thread",
        )


class AddressSpace:
    """User address space: N × (stack + guard) must fit beside what is already mapped."""

    name = "address-space"
    unit = "threads"
    counts = "bytes"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is (user address space - VmSize) / what one thread maps."""
        size = _user_address_space(inspection)
        in_use = inspection.vm_bytes("VmSize")
        per_thread = inspection.shape.mapped_per_thread
        fits = max((size - in_use) // inspection.target.threads, 0)
        fix = Fix(
            setting="thread stack size",
            value=fits,
            now=(
                f"use a thread stack of at most {format_size(fits)}"
                " (pthread_attr_setstacksize, ulimit -s)"
            ),
            persist=None,
            takes_effect="when the program starts",
        )
        smallest = PTHREAD_STACK_MIN + inspection.shape.page_size  # least stack and guard
        if fits < smallest:
            most = max(size - in_use, 0) // smallest
            fix = Fix(
                setting="threads",
                value=None,
                now=(
                    f"none: {inspection.target.threads:,} threads of even the smallest stack"
                    f" ({format_size(PTHREAD_STACK_MIN)}) do not fit in"
                    f" {format_size(size)} of address space; lower the target to"
                    f" {most:,} or fewer"
                ),
                persist=None,
                takes_effect="never: the address space is the architecture's",
            )
        return measured(
            self.name,
            inspection.target,
            current=size,
            in_use=in_use,
            allows=(size - in_use) // per_thread,
            needed=in_use + per_thread * inspection.target.threads,
            fix=fix,
            note=f"{format_size(per_thread)} per thread",
        )


def _user_address_space(inspection: Inspection) -> int:
    """Bytes of user address space: 128 TiB on x86_64, even with 5-level paging.

    Elsewhere the top of the highest mapping (the stack sits just under TASK_SIZE), rounded
    up to a power of two.
    """
    if inspection.shape.arch == "x86_64":
        bits = inspection.host.virtual_address_bits() or 48
        return 1 << min(bits - 1, _X86_DEFAULT_MAP_WINDOW_BITS)
    top = inspection.host.maps(inspection.proc).highest_end
    return 1 << (top - 1).bit_length()


def _memory_fix(name: str, needed: int, meminfo: dict[str, int], floor: int, cost: int) -> Fix:
    """Free what others use, where the host has enough; else say how much RAM it lacks."""
    available, total = meminfo["MemAvailable"], meminfo["MemTotal"]
    now_fits = max(available - floor, 0) // cost
    if needed <= total:
        return Fix(
            setting=name,
            value=needed,
            now=(
                f"free {format_size(needed - available)} of memory (other programs hold it),"
                f" or lower the target to {now_fits:,} threads"
            ),
            persist="run fewer programs beside it, or add RAM",
            takes_effect="once the memory is free",
        )
    most = max(total - floor, 0) // cost
    return Fix(
        setting=name,
        value=needed,
        now=(
            f"the target needs {format_size(needed)} of memory,"
            f" {format_size(needed - total)} more than this host has ({format_size(total)}):"
            f" lower it to {now_fits:,} threads ({most:,} with nothing else running)"
        ),
        persist=(
            f"add {format_size(needed - total)} of RAM: a smaller stack does not help, this"
            " memory is the kernel's"
        ),
        takes_effect="when the RAM is in",
    )
