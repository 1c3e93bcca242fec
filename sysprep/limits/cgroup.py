"""The pids cgroup (systemd's TasksMax, docker's --pids-limit), every level up the path."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from typing import NamedTuple

from sysprep.facts import USER_SLICE_FILE
from sysprep.limits.base import Reading
from sysprep.limits.base import measured
from sysprep.limits.base import unbounded
from sysprep.settings import Fix

if TYPE_CHECKING:
    from pathlib import Path

    from sysprep.limits.inspection import Inspection

_SYSTEMD_UNITS = (".service", ".scope", ".slice")
_USER_SLICE = re.compile(r"user-\d+\.slice")
# Container runtimes, by the cgroup they make: docker's (cgroupfs or systemd driver), podman's.
_RUNTIMES = (
    (re.compile(r"docker[-/]([0-9a-f]{12,64})(?:\.scope)?$"), "docker"),
    (re.compile(r"libpod-([0-9a-f]{12,64})(?:\.scope)?$"), "podman"),
)


class CgroupLevel(NamedTuple):
    """One level of a cgroup path that has the controller's files: its limit and usage."""

    path: Path
    shown: str  # "/sys/fs/cgroup/system.slice/x.service", as on the host
    limit: int | None  # None: "max", no limit on this level
    usage: int
    refused: int = 0  # forks this level already refused (pids.events "max N")
    cgroup: str = ""  # "/system.slice/x.service": its path in the hierarchy
    hidden_above: bool = False  # the last level visible, its parents not (a container's own)


class Walk(NamedTuple):
    """A cgroup path read leaf first: its levels with limit files, and what else was seen."""

    levels: list[CgroupLevel]
    without: list[str]  # levels without the controller's files, by the path shown
    # The last level visible when its parents are not (a container's own cgroup): None when
    # the path was read up to the hierarchy's root.
    hidden_above: str | None


def cgroup_walk(
    inspection: Inspection,
    controller: str,
    files: tuple[tuple[str, str], ...],
    unit_limit: int | None = None,
) -> Walk | None:
    """The judged process's *controller* cgroup, leaf first; None without that controller.

    *files* are the (limit, usage) file names to try, v2's then v1's. A level with neither
    has no limit of this controller (cgroup v2 enables a controller only below the levels
    whose subtree_control names it); such levels come back apart, by the path shown.
    Any other failure to read (permission denied, a malformed file) is raised.

    A stopped service's own cgroup is made when it starts, below its slice: it comes first,
    with *unit_limit* (its TasksMax, its MemoryMax) and its main process in use; the forks
    refused there before it stopped count while the directory is still there.
    """
    dirs = inspection.cgroup_levels(controller)
    if dirs is None:
        return None
    found, without, top_shown = [], [], None
    for level, cgroup, hidden_above in dirs:
        shown = "/" + str(level.relative_to(inspection.host.root))
        top_shown = shown if hidden_above else None
        names = next(((lim, use) for lim, use in files if (level / lim).exists()), None)
        if names is None:
            without.append(shown)
            continue
        text = (level / names[0]).read_text().strip()
        limit = None if text == "max" else int(text)
        usage = int((level / names[1]).read_text())
        refused = _refused(level)
        found.append(CgroupLevel(level, shown, limit, usage, refused, cgroup, hidden_above))
    unit = inspection.unit
    if unit is not None and inspection.unit_stopped and unit_limit is not None and dirs:
        own = dirs[0].path / unit.name
        shown = "/" + str(own.relative_to(inspection.host.root))
        cgroup = f"{dirs[0].cgroup.rstrip('/')}/{unit.name}"
        # Its main process is its first task: a thread more is its second.
        usage = 1 if controller == "pids" else 0
        found.insert(0, CgroupLevel(own, shown, unit_limit, usage, _refused(own), cgroup))
    return Walk(found, without, top_shown)


class PidsMax:
    """pids.max: a clone fails when any ancestor cgroup would pass its limit (cgroup/pids.c)."""

    name = "pids.max"
    unit = "threads"
    counts = "threads"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is the smallest pids.max - pids.current over the cgroup and its ancestors."""
        unit = inspection.unit
        tasks_max = unit.tasks_max if unit is not None else None
        walk = cgroup_walk(inspection, "pids", (("pids.max", "pids.current"),), tasks_max)
        if walk is None:
            return unbounded(self.name, inspection.target, "no pids controller")
        levels, without, hidden_above = walk
        bounded = [level for level in levels if level.limit is not None]
        events = tuple((level.cgroup, level.shown, level.refused) for level in levels)
        if not bounded:
            note = "no limit on any level" + hidden_note(hidden_above)
            if without:
                note += f"; pids not enabled on {', '.join(without)}"
            return unbounded(self.name, inspection.target, note)._replace(events=events)
        tightest = min(bounded, key=lambda level: (level.limit or 0) - level.usage)
        limit = tightest.limit or 0
        in_use = tightest.usage + inspection.shape.runtime_threads
        needed = in_use + inspection.target.threads
        note = tightest.shown
        if _USER_SLICE.fullmatch(tightest.path.name):
            note += (
                ": this login's user slice (systemd gives every user TasksMax=33% of the"
                " system's tasks by default)"
            )
        if unit is not None and tightest.path.name == unit.name:
            note = f"{unit.name}: {unit.tasks_max_source}"
        note += hidden_note(hidden_above)
        refused = ", ".join(f"{shown}: {count:,}" for _, shown, count in events if count)
        if refused:
            note += f"; forks already refused (pids.events): {refused}"
        return measured(
            self.name,
            inspection.target,
            current=limit,
            in_use=in_use,
            allows=limit - in_use,
            needed=needed,
            fix=_fix(inspection, tightest, needed),
            note=note,
            events=events,
        )


def hidden_note(hidden_above: str | None) -> str:
    """What a container cannot see of its cgroup path: the levels above its own."""
    if hidden_above is None:
        return ""
    return (
        f"; the levels above {hidden_above} (a pod's, the host's) are not mounted here:"
        " `sysprep check --pid PID` on the host reads them"
    )


def _refused(level: Path) -> int:
    """pids.events' "max N": forks refused at this level (v2: by it or below; v1: here)."""
    try:
        for line in (level / "pids.events").read_text().splitlines():
            name, _, count = line.partition(" ")
            if name == "max":
                return int(count)
    except (OSError, ValueError):
        pass
    return 0


def made_by(inspection: Inspection, level: CgroupLevel) -> tuple[str, str] | None:
    """(runtime, container id) of a container runtime's cgroup level; None for another.

    Told by its path in the hierarchy (kubepods, docker-ID, libpod-ID), else, for the top
    of a container's own view (a cgroup namespace shows it as "/"), by the environment.
    """
    if "kubepods" in level.cgroup or "kubepods" in level.shown:
        return "kubernetes", ""
    for pattern, runtime in _RUNTIMES:
        match = pattern.search(level.cgroup) or pattern.search(level.shown)
        if match:
            return runtime, match[1][:12]
    environment = inspection.environment
    if level.hidden_above and environment.in_container and environment.runtime is not None:
        return environment.runtime, ""
    return None


def runtime_knob(inspection: Inspection, runtime: str, fix: Fix) -> Fix:
    """*fix*, as seen from where sysprep runs: from inside a container, the host's to make.

    A runtime's knob (podman update, a pod's limits) is turned outside the container.
    """
    if not inspection.environment.in_container:
        return fix
    place = "on the node" if runtime == "kubernetes" else "on the host"
    return fix._replace(now=f"{place}: {fix.now}", persist=f"{place}: {fix.persist}", where="host")


def runtime_update(
    inspection: Inspection, made: tuple[str, str], option: str, compose: str, value: int
) -> Fix:
    """A docker or podman container's own limit: `update --OPTION` now, `run --OPTION` after."""
    runtime, container = made
    return runtime_knob(inspection, runtime, Fix(
        setting=f"{runtime} --{option}",
        value=value,
        now=f"{runtime} update --{option} {value} {container or 'CONTAINER'}",
        persist=f"{runtime} run --{option} {value} (compose: {compose})",
        takes_effect="now",
    ))  # fmt: skip


def _fix(inspection: Inspection, level: CgroupLevel, value: int) -> Fix:
    """The knob of whatever made the cgroup: kubelet, docker, podman, systemd; else the file."""
    shown = level.shown
    made = made_by(inspection, level)
    if made is not None and made[0] == "kubernetes":
        return runtime_knob(inspection, "kubernetes", Fix(
            setting="pod pids limit",
            value=value,
            now=f"give the pod a pids limit of at least {value} (kubelet podPidsLimit)",
            persist=(
                f"podPidsLimit: {value} in the node's kubelet config (the pod's pids.max),"
                " or the pod's resources.limits.pids where the cluster allows it"
            ),
            takes_effect="for pods started after the kubelet restarts",
        ))  # fmt: skip
    if made is not None:
        return runtime_update(inspection, made, "pids-limit", "pids_limit", value)
    unit = level.path.name
    if inspection.unit is not None and unit == inspection.unit.name:
        persist = f"[Service] TasksMax={value} in {inspection.unit.drop_in}"
        return _tasks_max(
            unit, value, persist, "at the service's next (re)start; set-property, now"
        )
    if _USER_SLICE.fullmatch(unit) and inspection.host.runs_systemd:
        persist = f"[Slice] TasksMax={value} in {USER_SLICE_FILE.path} (every user)"
        return _tasks_max(
            unit, value, persist, "now with set-property; the drop-in from the next login"
        )
    if unit.endswith(_SYSTEMD_UNITS) and inspection.host.runs_systemd:
        return _tasks_max(unit, value, None, "now")
    return Fix(
        setting=f"{shown}/pids.max",
        value=value,
        now=f"echo {value} > {shown}/pids.max",
        persist="set it where the cgroup is created (e.g. docker run --pids-limit)",
        takes_effect="now",
    )


def _tasks_max(unit: str, value: int, drop_in: str | None, takes_effect: str) -> Fix:
    """A systemd unit's or slice's TasksMax: set-property now; its drop-in to persist."""
    persist = f"systemctl set-property {unit} TasksMax={value}"
    if drop_in is not None:
        persist = f"{drop_in}, then systemctl daemon-reload"
    return Fix(
        setting=f"{unit} TasksMax",
        value=value,
        now=f"systemctl set-property --runtime {unit} TasksMax={value}",
        persist=persist,
        takes_effect=takes_effect,
    )
