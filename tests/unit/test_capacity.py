"""The pure capacity decision: smallest headroom wins, unknown never passes."""

from __future__ import annotations

from sysprep.capacity import Assessment
from sysprep.capacity import assess
from sysprep.limits.base import Reading
from sysprep.limits.base import Status
from sysprep.limits.base import Target

TARGET = Target(threads=1000)


def reading(name: str, allows: int | None, status: Status | None = None) -> Reading:
    if status is None:
        status = Status.OK if allows is None or allows >= TARGET.threads else Status.FAILS
    return Reading(name, status, allows=allows)


def test_capacity_is_the_smallest_headroom() -> None:
    """The binding limit is the one that allows the fewest threads."""
    capacity, binding = assess([reading("a", 5000), reading("b", 300), reading("c", None)])
    assert capacity == 300
    assert binding is not None
    assert binding.name == "b"


def test_unbounded_limits_never_bind() -> None:
    """Limits that cannot bind leave the capacity open."""
    assert assess([reading("a", None)]) == (None, None)


def test_unknown_limits_never_bind() -> None:
    """An unreadable limit is not a number to compare."""
    capacity, binding = assess([reading("a", 0, Status.UNKNOWN), reading("b", 2000)])
    assert (capacity, binding and binding.name) == (2000, "b")


def test_not_ready_when_any_limit_is_unknown() -> None:
    """Capacity above the target is not enough while a limit could not be read."""
    readings = (reading("a", 5000), reading("b", None, Status.UNKNOWN))
    result = Assessment(TARGET, 8 << 20, readings, 5000, readings[0], None)
    assert not result.ready
    assert result.unknown == (readings[1],)


def test_ready_when_every_limit_allows_the_target() -> None:
    """Every limit read and each one at or above the target."""
    readings = (reading("a", 1000), reading("b", None))
    assert Assessment(TARGET, 8 << 20, readings, 1000, readings[0], None).ready
