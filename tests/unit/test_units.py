"""Sizes and counts as operators write them."""

from __future__ import annotations

import pytest

from sysprep.errors import BadInputError
from sysprep.units import format_size
from sysprep.units import parse_count
from sysprep.units import parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4096", 4096),
        ("256K", 256 << 10),
        ("8M", 8 << 20),
        ("8MiB", 8 << 20),
        ("2g", 2 << 30),
        ("1 T", 1 << 40),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    """Binary multiples, case-insensitive, with or without "iB"."""
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["8Q", "", "-1K", "0", "1.5M", "K"])
def test_bad_sizes_name_the_input(text: str) -> None:
    """Each bad size is refused with the text in the message."""
    with pytest.raises(BadInputError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "count"), [("1000000", 10**6), ("1_000_000", 10**6), ("1,000,000", 10**6)]
)
def test_parse_count(text: str, count: int) -> None:
    """Separators are allowed."""
    assert parse_count(text, what="count") == count


@pytest.mark.parametrize("text", ["0", "-5", "abc", "1e6", ""])
def test_bad_counts(text: str) -> None:
    """Zero, negatives and non-numbers are refused."""
    with pytest.raises(BadInputError, match="invalid count"):
        parse_count(text, what="count")


def test_format_size() -> None:
    """The largest unit that keeps the number at least 1."""
    assert [format_size(n) for n in (512, 16 << 10, 1536 << 20, 128 << 40)] == [
        "512 B",
        "16 KiB",
        "1.5 GiB",
        "128 TiB",
    ]
