"""A systemd service as it will run: its limits from systemd itself, running or not.

A service's limits are not the shell's: systemd gives it TasksMax (its pids cgroup, 15 % of
the system's tasks by default), its own LimitNPROC/LimitSTACK/LimitNOFILE/LimitAS/LimitDATA
(limits.conf never applies: services have no PAM session), MemoryMax, a User= and a slice.
Its ExecStart and Environment= tell the runtime it runs. One `systemctl show` for the unit
and one for the manager's DefaultTasksMax.
"""

from __future__ import annotations

import json
import pwd
import re
import shlex
from typing import TYPE_CHECKING
from typing import NamedTuple

from sysprep.errors import BadInputError
from sysprep.facts import RLIMITS
from sysprep.facts import SERVICE_NAME
from sysprep.facts import unit_drop_in

if TYPE_CHECKING:
    from sysprep.host import Host
    from sysprep.runtimes import Program

_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "MainPID",
    "User",
    "Slice",
    "TasksMax",
    "MemoryMax",
    "DropInPaths",
    "DynamicUser",
    "ExecStart",
    "Environment",
    # Each rlimit's property, hard (LimitNPROC) and soft (LimitNPROCSoft).
    *(f"{r.systemd}{suffix}" for r in RLIMITS.values() for suffix in ("", "Soft")),
)
# The other types of unit (systemd.unit(5)), and where their resource settings are.
_UNIT_TYPES = {
    "service": "",
    "socket": "a socket's resource limits are those of the service it starts; name that",
    "timer": "a timer's resource limits are those of the service it starts; name that",
    "path": "a path unit's resource limits are those of the service it starts; name that",
    "slice": "a slice runs no program; its TasksMax is `systemctl set-property SLICE TasksMax=N`",
    "scope": "a scope's processes were started elsewhere; judge one with --pid",
    "target": "a target runs no program; name one of its services",
    "mount": "a mount runs no program of its own",
    "automount": "an automount runs no program of its own",
    "swap": "a swap unit runs no program of its own",
    "device": "a device unit runs no program",
}
_EXEC_START = re.compile(r"path=(\S+) ; argv\[\]=(.*?) ; ignore_errors=")


class Unit(NamedTuple):
    """What systemd says of one service."""

    name: str  # "demo.service"
    running: bool
    main_pid: int | None
    uid: int | None  # of User=; 0 when it runs as root; None: a DynamicUser= made at start
    slice: str  # "system.slice"
    tasks_max: int | None  # None: infinity
    default_tasks_max: int | None
    tasks_max_set: bool  # True when the unit (or a drop-in) sets TasksMax itself
    memory_max: int | None
    rlimits: dict[str, tuple[int | None, int | None]]  # soft, hard; None: unlimited
    exec_start: tuple[str, ...] = ()  # its first ExecStart: the path, then argv
    environment: dict[str, str] = {}  # noqa: RUF012 - a NamedTuple default, never mutated

    @property
    def tasks_max_source(self) -> str:
        """Where TasksMax comes from, as the note says it."""
        if self.tasks_max_set:
            return f"TasksMax={_shown(self.tasks_max)} in the unit"
        return f"TasksMax={_shown(self.tasks_max)} (DefaultTasksMax)"

    def program(self, host: Host) -> Program | None:
        """What ExecStart runs: its binary (read on *host*), argv and Environment=."""
        if not self.exec_start:
            return None
        from sysprep.runtimes import Program

        path, *argv = self.exec_start
        binary = host.path(path.lstrip("/"))
        return Program(f"ExecStart of {self.name}", path, binary, argv, self.environment)

    @property
    def drop_in(self) -> str:
        """The drop-in sysprep would write for this unit."""
        return unit_drop_in(self.name).path


def unit_name(name: str) -> str:
    """The service --unit names: NAME.service, or NAME when it says .service itself.

    BadInputError for anything else: an empty name, an option ("--host=x"), a name systemd
    would refuse, or another type of unit, whose resource settings are not a service's.
    """
    if not name:
        raise BadInputError("--unit: an empty name; name a service, e.g. --unit nginx")
    shown = name if name.isprintable() else repr(name)  # one line, whatever was typed
    if name.startswith("-"):
        raise BadInputError(f"--unit {shown}: a unit name cannot start with '-'")
    suffix = name.rpartition(".")[2] if "." in name else ""
    if suffix and suffix not in _UNIT_TYPES:
        suffix = ""  # a dot inside a service's own name ("app.v2")
    full = name if suffix else f"{name}.service"
    if suffix and suffix != "service":
        raise BadInputError(
            f"--unit {shown}: sysprep judges and tunes services (.service): {_UNIT_TYPES[suffix]}"
        )
    if not SERVICE_NAME.fullmatch(full):
        raise BadInputError(
            f"--unit {shown}: not a unit name (letters, digits and :-_.\\@, at most 255)"
        )
    return full


def read_unit(host: Host, name: str) -> Unit:
    """The unit as systemd resolves it: unit file, drop-ins and defaults applied.

    BadInputError when systemd is not PID 1 here, or it knows no such unit.
    """
    name = unit_name(name)
    if not host.is_live or not host.runs_systemd:
        raise BadInputError(
            f"--unit {name}: systemd is not running here (no /run/systemd/system);"
            " judge the process with --pid, or run check where the service runs"
        )
    properties = parse_show(
        _systemctl(host, "show", f"--property={','.join(_PROPERTIES)}", "--", name)
    )
    if properties.get("LoadState") != "loaded":
        raise BadInputError(f"no unit {name} ({properties.get('LoadState', 'not-found')})")
    manager = parse_show(_systemctl(host, "show", "--property=DefaultTasksMax"))
    main_pid = int(properties.get("MainPID") or 0)
    tasks_max = _number(properties.get("TasksMax", "infinity"))
    default = _number(manager.get("DefaultTasksMax", "infinity"))
    return Unit(
        name=name,
        running=properties.get("ActiveState") == "active" and main_pid > 0,
        main_pid=main_pid or None,
        uid=_uid(properties.get("User", ""), dynamic=properties.get("DynamicUser") == "yes"),
        slice=properties.get("Slice") or "system.slice",
        tasks_max=tasks_max,
        default_tasks_max=default,
        tasks_max_set=tasks_max != default,
        memory_max=_number(properties.get("MemoryMax", "infinity")),
        rlimits={
            name: (
                _number(properties.get(f"{rlimit.systemd}Soft", "infinity")),
                _number(properties.get(rlimit.systemd, "infinity")),
            )
            for name, rlimit in RLIMITS.items()
        },
        exec_start=_exec_start(host, name) or parse_exec_start(properties.get("ExecStart", "")),
        environment=parse_environment(properties.get("Environment", "")),
    )


def unit_history(host: Host, name: str) -> tuple[str, ...]:
    """What systemd says of a unit's last runs: restarts, result, the main process's exit."""
    shown = parse_show(
        _systemctl(
            host,
            "show",
            "--property=NRestarts,Result,ExecMainCode,ExecMainStatus,ActiveState",
            name,
        )
    )
    return tuple(f"{key}={value}" for key, value in shown.items() if value)


def default_tasks_max(host: Host) -> int | None:
    """The manager's DefaultTasksMax, resolved to a number; None: infinity."""
    if not host.is_live or not host.runs_systemd:
        raise BadInputError("DefaultTasksMax: systemd is not running here")
    return _number(
        parse_show(_systemctl(host, "show", "--property=DefaultTasksMax")).get(
            "DefaultTasksMax", "infinity"
        )
    )


def _exec_start(host: Host, name: str) -> tuple[str, ...]:
    """(path, argv...) of the unit's first ExecStart, word for word, over D-Bus.

    `systemctl show` joins argv with spaces, so an argument holding one ("-Dname=a b") would
    split and hide the options after it; busctl gives the list itself. () when it cannot.
    """
    done = host.busctl(
        "--json=short", "get-property", "org.freedesktop.systemd1",
        f"/org/freedesktop/systemd1/unit/{bus_label(name)}", "org.freedesktop.systemd1.Service",
        "ExecStart",
    )  # fmt: skip
    try:
        first = json.loads(done.stdout)["data"][0]
        path, argv = str(first[0]), [str(word) for word in first[1]]
    except (ValueError, KeyError, IndexError, TypeError):
        return ()
    return (path, *argv[1:]) if argv else (path,)


def bus_label(name: str) -> str:
    """A unit's name as a D-Bus object path element (sd_bus_path_encode).

    Every byte but an ASCII letter or digit, and a leading digit, is written _XX.
    """
    return (
        "".join(
            c if c.isascii() and c.isalnum() and not (i == 0 and c.isdigit()) else f"_{ord(c):02x}"
            for i, c in enumerate(name)
        )
        or "_"
    )


def parse_exec_start(text: str) -> tuple[str, ...]:
    """(path, argv...) of the first command in `systemctl show`'s ExecStart; () if none.

    "{ path=/usr/bin/java ; argv[]=/usr/bin/java -Xss256k -jar app.jar ; ignore_errors=no ;
    ... }": systemd joins argv with spaces, so an argument with a space in it splits.
    """
    match = _EXEC_START.search(text)
    return (match[1], *match[2].split()) if match else ()


def parse_environment(text: str) -> dict[str, str]:
    """Environment= as `systemctl show` prints it: NAME=VALUE words, quoted as a shell would."""
    try:
        words = shlex.split(text)
    except ValueError:  # unbalanced quotes: nothing we can trust
        return {}
    return dict(word.split("=", 1) for word in words if "=" in word)


def parse_show(text: str) -> dict[str, str]:
    """`systemctl show` output: one NAME=VALUE a line."""
    result = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            result[key] = value
    return result


def slice_path(slice_name: str) -> str:
    """The cgroup path of a slice: "user-1000.slice" is /user.slice/user-1000.slice."""
    if slice_name in ("-.slice", ""):
        return "/"
    parts = slice_name.removesuffix(".slice").split("-")
    return "/" + "/".join("-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def _systemctl(host: Host, *args: str) -> str:
    try:
        done = host.systemctl(*args)
    except FileNotFoundError:
        raise BadInputError("--unit: systemctl is not installed here") from None
    if done.returncode != 0:
        raise BadInputError(f"systemctl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _number(text: str) -> int | None:
    """A systemd number: "infinity" (and the 2^64-1 it prints for it) is None."""
    if text in ("infinity", "") or text == str(2**64 - 1):
        return None
    return int(text)


def _uid(user: str, *, dynamic: bool = False) -> int | None:
    """The uid of User=; None for a dynamic user systemd makes when the unit starts."""
    if not user and dynamic:
        return None
    if not user:
        return 0
    if user.isdigit():
        return int(user)
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        if dynamic:  # made at start (DynamicUser=yes): no task of it runs before
            return None
        raise BadInputError(f"User={user} of the unit is not a user of this host") from None


def _shown(value: int | None) -> str:
    return "infinity" if value is None else f"{value:,}"
