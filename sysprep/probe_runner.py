"""Run a probe from probes/ in a child process and read the one JSON document it prints."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

from sysprep.errors import BadInputError
from sysprep.errors import NeedsRootError
from sysprep.errors import SysprepError
from sysprep.facts import PROBES
from sysprep.facts import RLIMITS

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator
    from types import FrameType

    from sysprep.host import Host
    from sysprep.systemd import Unit

PACKAGE_DIR = Path(__file__).resolve().parent
# Installed wheels carry probes/ as sysprep/_probes; a source checkout has it beside the package.
_PROBE_DIRS = (PACKAGE_DIR / "_probes", PACKAGE_DIR.parent / "probes")
# A probe asked to stop still releases and joins every thread; 600k threads take ~10 s.
_STOP_SECONDS = 120
_PR_SET_PDEATHSIG = 1


class ProbeError(SysprepError):
    """A probe could not run or printed no usable result (not "a limit stopped it")."""


@dataclass(frozen=True)
class ProbeResult:
    """A probe's exit status and JSON document."""

    name: str
    exit_status: int
    document: dict[str, Any]

    @property
    def reached(self) -> bool:
        """True when the probe reached its target (exit status 0)."""
        return self.exit_status == 0


class ProbeRequest(NamedTuple):
    """A probe to run: its name, what it must hold, and its command-line arguments."""

    name: str
    target: int
    args: list[str]


def probe_request(
    host: Host,
    name: str,
    *,
    count: int | None = None,
    stack: int | None = None,
    mode: str = "hold",
    server: str = "epoll",
    sources: int | None = None,
    unit: Unit | None = None,
) -> ProbeRequest:
    """Check the options of probe *name* and build its arguments; BadInputError names one.

    Without *count*, a probe holds what check says a new process could (less its own task).
    """
    if name not in PROBES:
        raise BadInputError(f"unknown probe {name!r}: choose one of {', '.join(PROBES)}")
    if mode not in ("hold", "seed") or (mode == "seed" and name != "threads"):
        raise BadInputError(f"invalid mode {mode!r}: the threads probe has hold and seed")
    if name == "connections" and server not in ("epoll", "threads"):
        raise BadInputError(f"invalid server {server!r}: epoll or threads")
    if sources is not None and sources <= 0:
        raise BadInputError(f"invalid sources {sources}: at least 1")
    if name == "connections" and unit is not None:
        raise BadInputError(
            "the connections probe runs in a network namespace of its own: --unit is for the"
            " threads and maps probes"
        )
    if not host.is_live:
        raise BadInputError("probes start real threads; they cannot run against --root")
    most = PROBES[name].max_count
    if count is not None and count > most:
        raise BadInputError(f"invalid count {count:,}: the {name} probe can hold at most {most:,}")
    count = count or _default_count(host, name, stack, unit)
    given = {"stack": stack, "mode": mode, "server": server, "sources": sources}
    args = ["--count", str(count)]
    for option in PROBES[name].options:
        if given[option] is not None:
            args += [f"--{option}", str(given[option])]
    return ProbeRequest(name, count, args)


def _default_count(host: Host, name: str, stack_bytes: int | None, unit: Unit | None) -> int:
    """What check says a new process could hold, less the probe's own task."""
    from sysprep.capacity import check
    from sysprep.limits.base import Target
    from sysprep.limits.sysctl import MaxMapCount

    if name == "connections":
        return 10_000
    pid = unit.main_pid if unit is not None and unit.running else None
    result = check(host, Target(threads=1, stack_bytes=stack_bytes, pid=pid), unit=unit)
    if name == "maps":
        maps = next(r for r in result.readings if r.made_by(MaxMapCount))
        if maps.current is None or maps.in_use is None:
            raise BadInputError(f"cannot read vm.max_map_count ({maps.note}); pass --count")
        return max(1, maps.current - maps.in_use - 64)  # room for the probe's own mappings
    if result.capacity is None:
        raise BadInputError("check found no limit to size the probe by; pass --count")
    return max(1, result.capacity - 1)


def as_transient_unit(unit: Unit) -> list[str]:
    """systemd-run's words for a transient service with *unit*'s properties (systemd.exec)."""

    def shown(value: int | None) -> str:
        return "infinity" if value is None else str(value)

    words = [
        "systemd-run",
        f"--unit=sysprep-probe-{os.getpid()}",
        "--wait",
        "--pipe",
        "--quiet",
        "--collect",
        f"--slice={unit.slice}",
        f"--property=TasksMax={shown(unit.tasks_max)}",
        f"--property=MemoryMax={shown(unit.memory_max)}",
    ]
    for name, (soft, hard) in unit.rlimits.items():
        words.append(f"--property={RLIMITS[name].systemd}={shown(soft)}:{shown(hard)}")
    if unit.uid is None:
        words.append("--property=DynamicUser=yes")
    elif unit.uid:
        words.append(f"--uid={unit.uid}")
    return words


def probe_path(name: str) -> Path:
    """The file of probe *name*, from the installed package or the checkout."""
    for directory in _PROBE_DIRS:
        path = directory / f"{name}.py"
        if path.is_file():
            return path
    raise ProbeError(f"no probe named {name!r} in {' or '.join(map(str, _PROBE_DIRS))}")


def _die_with_parent() -> None:
    """In the child: SIGKILL if sysprep dies, so no probe (nor its children) outlives it.

    prctl(2)'s parent-death signal. SIGKILL, not SIGTERM: the kernel frees what a probe
    holds at once, where a probe's own orderly release takes seconds at scale. A Ctrl-C or
    SIGTERM to a living sysprep still stops the probe in order (run_probe).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _prepare(setup: Callable[[], None] | None) -> Callable[[], None]:
    def prepare() -> None:
        _die_with_parent()
        if setup is not None:
            setup()

    return prepare


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM to sysprep behaves like Ctrl-C: the probe is stopped, not abandoned."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_probe(
    name: str,
    args: list[str],
    *,
    on_progress: Callable[[int, int], None] | None = None,
    setup: Callable[[], None] | None = None,
    unit: Unit | None = None,
    host: Host | None = None,
) -> ProbeResult:
    """Run probe *name* with *args* in a child process with its own limits and memory.

    The connections probe runs in a private network namespace of *host*'s.

    With *unit*, the child is a transient service with that unit's properties (its
    TasksMax, its Limit*=, its User= and slice): the prediction is proved as it would run.

    Ctrl-C or SIGTERM stops the child (it releases every thread it holds) and is then
    re-raised as KeyboardInterrupt; no child outlives this call. *setup* runs in the child
    before the probe starts (e.g. entering a network namespace).
    """
    # -S: probes use the standard library only; site-packages and .pth hooks are not theirs.
    if name == "connections" and setup is None:  # its own network namespace, always
        if host is None:
            raise ProbeError("the connections probe needs the host whose namespace it takes")
        if os.geteuid() != 0:
            raise NeedsRootError("the connections probe makes a network namespace; run as root")
        with host.network_namespace() as enter:
            return run_probe(name, args, on_progress=on_progress, setup=enter)
    command = [sys.executable, "-S", str(probe_path(name)), *args, "--json"]
    if on_progress is not None:
        command.append("--progress")
    if unit is not None:  # not sysprep's child there: it watches sysprep itself
        command = [*as_transient_unit(unit), *command, "--parent", str(os.getpid())]
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C reaches sysprep, which stops the probe in order
        preexec_fn=_prepare(setup),  # noqa: PLW1509 - no threads are running yet
    )
    messages: list[str] = []
    try:
        with _sigterm_interrupts():
            assert child.stderr is not None  # noqa: S101 - stderr=PIPE above
            for line in child.stderr:
                _handle(line, on_progress, messages)
            out = child.stdout.read() if child.stdout else ""
            child.wait()
    except KeyboardInterrupt:
        child.terminate()  # the probe stops creating, releases and joins, then exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.communicate(timeout=_STOP_SECONDS)
        raise
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if child.returncode not in (0, 1):
        detail = messages[-1].strip() if messages else "no message"
        raise ProbeError(f"probe {name} failed (exit {child.returncode}): {detail}")
    try:
        document = json.loads(out)
    except json.JSONDecodeError as error:
        raise ProbeError(f"probe {name} printed no JSON document: {error}") from error
    return ProbeResult(name, child.returncode, document)


def _handle(
    line: str, on_progress: Callable[[int, int], None] | None, messages: list[str]
) -> None:
    """A progress event goes to the callback; anything else is kept as a message."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        messages.append(line)
        return
    if isinstance(event, dict) and event.get("event") == "progress":
        if on_progress is not None:
            on_progress(int(event["created"]), int(event["target"]))
    else:
        messages.append(line)
