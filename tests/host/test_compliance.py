"""check --profile on the real kernel: every item of every shipped profile, made to fail in turn.

A running process (--pid) is judged by its own rlimits, changed with prlimit(2), and the
host's sysctls, written; a stopped service (--unit, a real systemd booted as
tests/realsystemd.py does) by its Limit*= and TasksMax as systemd resolves them, changed with
a drop-in. Each item lowered makes check say so, by name, and exit 1; put back, the item is
met again. This VM's root lacks CAP_SYS_RESOURCE, so a hard limit above the process's own
(nofile 20,000 here) cannot be reached with prlimit: such an item must fail, with the value
read, and it is judged reachable through the service instead.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from typing import TYPE_CHECKING
from typing import Any

import pytest

from sysprep.cli import run
from sysprep.facts import RLIMITS
from sysprep.profile import SHIPPED_DIRS
from tests.host.test_schemas import validate

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator
    from pathlib import Path

    from tests.realsystemd import Systemd

pytestmark = pytest.mark.root

SHIPPED = sorted({p.stem for d in SHIPPED_DIRS if d.is_dir() for p in d.glob("*.toml")})
INFINITY = resource.RLIM_INFINITY


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = run(["check", "--threads", "100", *args, "--json"])
    document = json.loads(capsys.readouterr().out)
    validate("check", document)
    return code, document


def items(document: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {s["key"]: s for s in document["profile"]["settings"] if s["kind"] == kind}


def _limit(value: int | None) -> int:
    return INFINITY if value is None else value


@pytest.fixture
def holder() -> Iterator[subprocess.Popen[bytes]]:
    """A running process to judge, gone afterwards."""
    process = subprocess.Popen(["sleep", "600"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize("profile", SHIPPED)
def test_a_running_process_is_judged_item_by_item(
    profile: str,
    holder: subprocess.Popen[bytes],
    sysctls: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every sysctl and rlimit of PROFILE met on the host and the process, then each one
    lowered in turn: check --pid --profile names it, exit 1; raised again, it is met."""
    pid = holder.pid
    judge = ("--pid", str(pid), "--profile", profile)
    _, first = check(capsys, *judge)
    for key, item in items(first, "sysctls").items():
        sysctls(key, item["expected"])
    reachable = {}
    for key, item in items(first, "rlimits").items():
        name = key.removesuffix(f" of pid {pid}")
        wanted = (_limit(item["expected"]["soft"]), _limit(item["expected"]["hard"]))
        hard = resource.prlimit(pid, RLIMITS[name].resource)[1]
        if hard == INFINITY or (wanted[1] != INFINITY and wanted[1] <= hard):
            resource.prlimit(pid, RLIMITS[name].resource, wanted)
            reachable[key] = (name, wanted)
    code, met = check(capsys, *judge)
    for key, item in {**items(met, "sysctls"), **items(met, "rlimits")}.items():
        if key in items(met, "sysctls") or key in reachable:
            assert item["status"] == "ok", item
        else:  # a hard limit root cannot raise here: the value read, and a failure
            name = key.removesuffix(f" of pid {pid}")
            hard = resource.prlimit(pid, RLIMITS[name].resource)[1]
            assert (item["status"], item["actual"]["hard"]) == ("fails", hard), item
    for key, item in items(met, "sysctls").items():
        expected = item["expected"]
        lowered = expected - 1 if isinstance(expected, int) else "2000 3000"
        sysctls(key, lowered)
        code, document = check(capsys, *judge)
        assert (code, items(document, "sysctls")[key]["status"]) == (1, "fails"), key
        assert document["profile"]["compliant"] is False
        sysctls(key, expected)
        assert items(check(capsys, *judge)[1], "sysctls")[key]["status"] == "ok"
    for key, (name, wanted) in reachable.items():
        number = RLIMITS[name].resource
        soft = wanted[0] if wanted[0] != INFINITY else resource.prlimit(pid, number)[1]
        resource.prlimit(pid, number, (soft - 1 if soft != INFINITY else 1 << 40, wanted[1]))
        code, document = check(capsys, *judge)
        assert (code, items(document, "rlimits")[key]["status"]) == (1, "fails"), key
        resource.prlimit(pid, number, wanted)
        assert items(check(capsys, *judge)[1], "rlimits")[key]["status"] == "ok"


def test_compliant_and_ready_exits_0(
    holder: subprocess.Popen[bytes],
    sysctls: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """A profile whose every item the process meets, and a target the host holds: exit 0;
    one item short, exit 1, though the host is as ready as before."""
    profile = tmp_path / "reachable.toml"
    profile.write_text(
        '[target]\nthreads = 100\n[sysctl]\n"vm.max_map_count" = 100000\n'
        "[rlimits]\nnofile = 4096\nnproc = 4096\n"
    )
    pid = holder.pid
    sysctls("vm.max_map_count", 100000)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (8192, 8192))
    code, document = check(capsys, "--pid", str(pid), "--profile", str(profile))
    assert document["profile"]["compliant"] is True
    assert (code, document["ready"]) == (0, True)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (1024, 8192))
    code, document = check(capsys, "--pid", str(pid), "--profile", str(profile))
    assert (code, document["ready"], document["profile"]["compliant"]) == (1, True, False)


def _properties(document: dict[str, Any]) -> str:
    """Unit file lines that meet every [rlimits] and [unit] item of a profile's verdicts."""

    def shown(value: int | None) -> str:
        return "infinity" if value is None else str(value)

    lines = []
    for item in document["profile"]["settings"]:
        expected = item["expected"]
        if item["kind"] == "rlimits":
            name = RLIMITS[item["key"]].systemd
            lines.append(f"{name}={shown(expected['soft'])}:{shown(expected['hard'])}")
        elif item["kind"] == "units" and item["key"].startswith("TasksMax"):
            lines.append(f"TasksMax={shown(expected)}")
        elif item["kind"] == "units":
            name = item["key"].split(" of ")[0]
            lines.append(f"{name}={shown(expected['soft'])}:{shown(expected['hard'])}")
    return "\n".join(lines) + "\n"


def _reload(systemd: Systemd) -> None:
    assert systemd.run("systemctl", "daemon-reload").returncode == 0


@pytest.mark.parametrize("profile", SHIPPED)
def test_a_service_is_judged_item_by_item(
    profile: str, systemd: Systemd, sysctls: Callable[[str, object], None]
) -> None:
    """A stopped service whose unit meets every rlimit and [unit] item of PROFILE, the
    host's sysctls raised to meet the rest: every setting met. A drop-in lowering each item
    in turn: check --unit names it and exits 1; the drop-in removed, met again.

    The target and kernel.pid_max stay unknown here: inside the booted systemd's pid
    namespace the host's pid_max (a parent level) cannot be read, and an unread limit is
    never a pass."""
    unit = f"sp-{profile}.service"
    directory = systemd.run_path(f"systemd/system/{unit}.d")
    unit_file = systemd.run_path(f"systemd/system/{unit}")
    unit_file.parent.mkdir(parents=True, exist_ok=True)
    unit_file.write_text("[Service]\nExecStart=/bin/true\n")
    _reload(systemd)
    judge = ("check", "--unit", unit, "--profile", profile, "--threads", "100", "--json")
    first = systemd.sysprep(*judge)
    for key, item in items(first, "sysctls").items():
        if key != "kernel.pid_max":  # the namespace's own, 4194304 already
            sysctls(key, item["expected"])
    unit_file.write_text(f"[Service]\nExecStart=/bin/true\n{_properties(first)}")
    _reload(systemd)
    met = systemd.sysprep(*judge)
    validate("check", met)
    assert _settings_met(met), met["profile"]
    target = items(met, "target")["target.threads"]
    assert (target["status"], target["reason"]) == (
        "unknown",
        "could not read kernel.pid_max (parent namespaces)",
    )
    assert met["profile"]["compliant"] is False
    for item in met["profile"]["settings"]:
        if item["kind"] not in ("rlimits", "units"):
            continue
        expected = item["expected"]
        if item["kind"] == "rlimits":
            property_name, low = RLIMITS[item["key"]].systemd, "1:1"
        else:
            property_name = item["key"].split(" of ")[0]
            low = "50" if property_name == "TasksMax" else "1:1"
        if property_name == "LimitSTACK":
            low = "1048576:infinity"  # a default stack other than the profile's
        directory.mkdir(exist_ok=True)
        (directory / "lower.conf").write_text(f"[Service]\n{property_name}={low}\n")
        _reload(systemd)
        done = systemd.run(*systemd.sysprep_command(*judge))
        document = json.loads(done.stdout)
        lowered = next(s for s in document["profile"]["settings"] if s["key"] == item["key"])
        assert (done.returncode, lowered["status"]) == (1, "fails"), (item, lowered)
        assert lowered["expected"] == expected
        shutil.rmtree(directory)
        _reload(systemd)
        assert _settings_met(systemd.sysprep(*judge))


def _settings_met(document: dict[str, Any]) -> bool:
    """Every setting of the profile is met, but those no one can judge from inside the
    booted systemd's pid namespace: the target, and the host's kernel.pid_max (unknown)."""
    settings = document["profile"]["settings"]
    pid_max = [s for s in settings if s["key"] == "kernel.pid_max"]
    return all(s["status"] == "unknown" for s in pid_max) and all(
        s["ok"] for s in settings if s["kind"] != "target" and s["key"] != "kernel.pid_max"
    )
