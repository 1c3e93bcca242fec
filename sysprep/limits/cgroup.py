"""The pids cgroup (systemd's TasksMax, docker's --pids-limit), every level up the path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sysprep.limits.base import Fix
from sysprep.limits.base import Inspection
from sysprep.limits.base import Reading
from sysprep.limits.base import measured
from sysprep.limits.base import unbounded

if TYPE_CHECKING:
    from pathlib import Path

_SYSTEMD_UNITS = (".service", ".scope", ".slice")


class PidsMax:
    """pids.max: a clone fails when any ancestor cgroup would pass its limit (cgroup/pids.c)."""

    name = "pids.max"
    unit = "threads"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is the smallest pids.max - pids.current over the cgroup and its ancestors."""
        levels = inspection.host.cgroup_levels(inspection.proc, "pids")
        tightest: tuple[int, int, Path] | None = None  # (limit, current, level)
        for level in levels or []:
            text = (level / "pids.max").read_text().strip()
            if text == "max":
                continue
            limit, current = int(text), int((level / "pids.current").read_text())
            if tightest is None or limit - current < tightest[0] - tightest[1]:
                tightest = (limit, current, level)
        if tightest is None:
            note = "no pids controller" if levels is None else "no limit on any level"
            return unbounded(self.name, inspection.target, note)
        limit, current, level = tightest
        needed = current + inspection.target.threads
        shown = "/" + str(level.relative_to(inspection.host.root))
        return measured(
            self.name,
            inspection.target,
            current=limit,
            in_use=current,
            allows=limit - current,
            needed=needed,
            fix=_fix(inspection, level, shown, needed),
            note=shown,
        )


def _fix(inspection: Inspection, level: Path, shown: str, value: int) -> Fix:
    unit = level.name
    if unit.endswith(_SYSTEMD_UNITS) and inspection.host.path("run/systemd/system").is_dir():
        return Fix(
            setting=f"{unit} TasksMax",
            value=value,
            now=f"systemctl set-property --runtime {unit} TasksMax={value}",
            persist=f"systemctl set-property {unit} TasksMax={value}",
            takes_effect="now",
        )
    return Fix(
        setting=f"{shown}/pids.max",
        value=value,
        now=f"echo {value} > {shown}/pids.max",
        persist="set it where the cgroup is created (e.g. docker run --pids-limit)",
        takes_effect="now",
    )
