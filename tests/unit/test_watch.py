"""watch's arithmetic: rates, time left, warnings (the sampling itself: tests/host)."""

from __future__ import annotations

from sysprep.watch import Row
from sysprep.watch import Sample
from sysprep.watch import trends
from sysprep.watch import warnings


def test_rate_and_time_left() -> None:
    """100 more threads in 2 s under a limit with 1,000 left: 50/s, 20 s to go."""
    before = Sample(10.0, (Row("pids.max", 3000, 4100, "threads"),))
    now = Sample(12.0, (Row("pids.max", 3100, 4100, "threads"),))
    (trend,) = trends(before, now)
    assert (trend.per_second, trend.seconds_left) == (50.0, 20.0)


def test_no_rate_from_one_sample_and_no_end_when_shrinking() -> None:
    """A first sample has no rate; a use going down never runs out."""
    first = Sample(1.0, (Row("memory", 10, 100, "bytes"),))
    assert trends(None, first)[0].per_second is None
    later = Sample(2.0, (Row("memory", 5, 100, "bytes"),))
    assert trends(first, later)[0].seconds_left is None


def test_warnings_under_the_percentage() -> None:
    """5 % left is under a 10 % warning; unlimited never warns."""
    sample = Sample(
        0.0, (Row("pids.max", 95, 100, "threads"), Row("RLIMIT_NOFILE", 5, None, "fds"))
    )
    assert [r.limit for r in warnings(sample, 10.0)] == ["pids.max"]
    assert warnings(sample, 4.0) == []
