"""Every kind of setting, in the order apply changes them (revert goes the other way)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sysprep.settings.files import FileSetting
from sysprep.settings.rlimit import RlimitSetting
from sysprep.settings.sysctl import SysctlSetting

if TYPE_CHECKING:
    from sysprep.settings import SettingKind

# Kernel values first, then the files that persist them, then a running process's limits.
KINDS: tuple[type[SettingKind], ...] = (SysctlSetting, FileSetting, RlimitSetting)
