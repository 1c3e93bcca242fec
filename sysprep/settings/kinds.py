"""Every kind of setting, in the order apply changes them (revert goes the other way).

Plans, compliance, profiles' tables, snapshots and the JSON documents loop over KINDS: a
new kind is one class (the SettingKind protocol, settings/__init__.py) and one line here.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from sysprep.settings.files import FileSetting
from sysprep.settings.rlimit import RlimitSetting
from sysprep.settings.sysctl import SysctlSetting
from sysprep.settings.unit import UnitSetting

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sysprep.settings import SettingKind

# Kernel values first, then the files that persist them, then a running process's limits;
# a unit's properties are changed only through its drop-in (a file).
KINDS: list[type[SettingKind]] = [SysctlSetting, FileSetting, RlimitSetting, UnitSetting]


def tables() -> dict[str, type[SettingKind]]:
    """The profile tables, by name ("sysctl"), and the kind that reads each."""
    return {kind.table: kind for kind in KINDS if kind.table is not None}


@contextlib.contextmanager
def registered(kind: type[SettingKind]) -> Iterator[None]:
    """*kind* among KINDS for a while (tests register a kind of their own)."""
    KINDS.append(kind)
    try:
        yield
    finally:
        KINDS.remove(kind)
