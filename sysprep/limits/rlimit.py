"""Per-process rlimits that bound threads: RLIMIT_NPROC, RLIMIT_STACK, RLIMIT_AS, RLIMIT_DATA."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sysprep.limits.base import Reading
from sysprep.limits.base import Status
from sysprep.limits.base import measured
from sysprep.settings.rlimit import RlimitSetting
from sysprep.units import format_size

if TYPE_CHECKING:
    from sysprep.limits.inspection import Inspection
    from sysprep.settings import Fix

_SHARED_UID = (
    "; in a container: the same uid's tasks in every other container count too, host-wide,"
    " and cannot be seen from here"
)


def _nproc_note(inspection: Inspection, uid: int | None, soft: int) -> str:
    note = f"threads of uid {uid}" if uid is not None else "a dynamic user's: none run yet"
    if inspection.unit is not None:
        note += f"; LimitNPROC={soft:,} of {inspection.unit.name}"
    return note + (_SHARED_UID if inspection.namespaced else "")


class Nproc:
    """RLIMIT_NPROC: threads of the real uid, host-wide; global root is exempt."""

    name = "RLIMIT_NPROC"
    unit = "threads"
    counts = "threads"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is the soft limit minus every task of the judged process's real uid."""
        soft = inspection.rlimits[self.name][0]
        if soft is None or inspection.nproc_exempt:  # no need to count anyone's tasks
            note = "root is exempt" if inspection.nproc_exempt else ""
            return measured(
                self.name, inspection.target, current=soft, in_use=None, allows=None, note=note
            )
        uid = inspection.real_uid
        held = 0 if uid is None else inspection.tasks_by_uid.get(uid, 0)
        in_use = held + inspection.shape.runtime_threads
        needed = in_use + inspection.target.threads
        return measured(
            self.name,
            inspection.target,
            current=soft,
            in_use=in_use,
            allows=soft - in_use,
            needed=needed,
            fix=rlimit_fix(self.name, inspection, needed),
            note=_nproc_note(inspection, uid, soft),
        )


class Stack:
    """RLIMIT_STACK: does not bound the count; glibc takes it as the default thread stack."""

    name = "RLIMIT_STACK"
    unit = "threads"
    counts = "bytes"

    def read(self, inspection: Inspection) -> Reading:
        """Reports the stack size every other limit is computed with."""
        soft = inspection.rlimits[self.name][0]
        runtime_stack, source = inspection.shape.runtime.default_stack()
        if inspection.target.stack_bytes is not None:
            source = "--stack"
        elif runtime_stack is None and inspection.target.pid is not None:
            # glibc reads RLIMIT_STACK once at start-up; a later prlimit does not change it.
            source += " (if unchanged since the process started)"
        return Reading(
            self.name,
            Status.OK,
            current=soft,
            note=f"thread stack {format_size(inspection.shape.stack_bytes)} ({source})",
        )


class AddressSpace:
    """RLIMIT_AS: VmSize may not pass it; each thread maps its stack plus a guard page."""

    name = "RLIMIT_AS"
    unit = "threads"
    counts = "bytes"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is (soft limit - VmSize) / what one thread maps (stack and guards)."""
        per_thread = inspection.shape.mapped_per_thread
        return _vm_limit(self.name, inspection, "VmSize", per_thread)


class Data:
    """RLIMIT_DATA: private writable mappings count, thread stacks included (Linux ≥ 4.7)."""

    name = "RLIMIT_DATA"
    unit = "threads"
    counts = "bytes"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is (soft limit - VmData) / the writable part of a stack."""
        return _vm_limit(self.name, inspection, "VmData", inspection.shape.committed_per_thread)


def rlimit_fix(name: str, inspection: Inspection, needed: int) -> Fix:
    """The fix of rlimit *name* to *needed*, as this user can make it.

    Past the hard limit, only root with CAP_SYS_RESOURCE can.
    """
    hard = inspection.rlimits[name][1]
    return RlimitSetting(name, inspection.target.pid).fix(
        needed, hard=hard, may_raise_hard=inspection.may_raise_hard
    )


def _vm_limit(name: str, inspection: Inspection, field: str, per_thread: int) -> Reading:
    soft = inspection.rlimits[name][0]
    in_use = inspection.vm_bytes(field)
    if soft is None:
        return measured(name, inspection.target, current=None, in_use=in_use, allows=None)
    needed = in_use + per_thread * inspection.target.threads
    return measured(
        name,
        inspection.target,
        current=soft,
        in_use=in_use,
        allows=(soft - in_use) // per_thread,
        needed=needed,
        fix=rlimit_fix(name, inspection, needed),
        note=f"{field} + {format_size(per_thread)} per thread",
    )
