"""Sysctls a benchmark changes, put back afterwards, also when it fails."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Iterator
    from collections.abc import Mapping


def sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


@contextmanager
def restored(keys: Iterable[str]) -> Iterator[None]:
    """On leaving, write back what each of *keys* holds now, last first."""
    saved = {key: sysctl_path(key).read_text() for key in keys}
    try:
        yield
    finally:
        for key, value in reversed(saved.items()):
            sysctl_path(key).write_text(value)


@contextmanager
def written(values: Mapping[str, int]) -> Iterator[None]:
    """Write *values* in order; on leaving, restore them as `restored` does."""
    with restored(values):
        for key, value in values.items():
            sysctl_path(key).write_text(f"{value}\n")
        yield
