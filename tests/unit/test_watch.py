"""watch's arithmetic over check's readings: rates, time left, warnings (sampling: tests/host)."""

from __future__ import annotations

from sysprep.limits.base import Reading
from sysprep.limits.base import Status
from sysprep.limits.cgroup import PidsMax
from sysprep.limits.memory import MemAvailable
from sysprep.limits.network import Nofile
from sysprep.watch import Sample
from sysprep.watch import trends
from sysprep.watch import warnings

PIDS, MEMORY, NOFILE = PidsMax(), MemAvailable(), Nofile()


def reading(limit: object, in_use: int, current: int | None, room: int | None) -> Reading:
    """A reading as check makes it: the limit that made it, its use and its room."""
    name = getattr(limit, "name", "")
    counts = getattr(limit, "counts", "threads")
    return Reading(
        name,
        Status.OK,
        current,
        in_use,
        room,
        counts=counts,
        room=room,
        limit=limit,  # type: ignore[arg-type]
    )


def test_rate_and_time_left() -> None:
    """100 more threads in 2 s under a limit with 1,000 left: 50/s, 20 s to go."""
    before = Sample(10.0, (reading(PIDS, 3000, 4100, 1100),))
    now = Sample(12.0, (reading(PIDS, 3100, 4100, 1000),))
    (trend,) = trends(before, now)
    assert (trend.per_second, trend.seconds_left) == (50.0, 20.0)


def test_no_rate_from_one_sample_and_no_end_when_shrinking() -> None:
    """A first sample has no rate; a use going down never runs out."""
    first = Sample(1.0, (reading(MEMORY, 10, 100, 90),))
    assert trends(None, first)[0].per_second is None
    later = Sample(2.0, (reading(MEMORY, 5, 100, 95),))
    assert trends(first, later)[0].seconds_left is None


def test_warnings_under_the_percentage() -> None:
    """5 % left is under a 10 % warning; unlimited never warns."""
    sample = Sample(0.0, (reading(PIDS, 95, 100, 5), reading(NOFILE, 5, None, None)))
    assert [r.name for r in warnings(sample, 10.0)] == ["pids.max"]
    assert warnings(sample, 4.0) == []


def test_an_unread_limit_is_apart_never_a_row() -> None:
    """A limit that could not be read is listed as unknown, with no rate and no warning."""
    unread = Reading("pids.max", Status.UNKNOWN, note="could not read: x", limit=PIDS)
    sample = Sample(0.0, (unread, reading(MEMORY, 5, 100, 95)))
    assert [r.name for r in sample.unknown] == ["pids.max"]
    assert [t.reading.name for t in trends(None, sample)] == ["memory"]
    assert warnings(sample, 50.0) == []
