"""check --unit against a real systemd (tests/realsystemd.py boots it, as REAL-HOSTS.md says)."""

from __future__ import annotations

import json
import shutil
import sys
from typing import TYPE_CHECKING

import pytest

from sysprep.probe_runner import probe_path
from tests.realsystemd import SYSTEMD
from tests.realsystemd import Systemd
from tests.realsystemd import booted_systemd

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.root

SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def systemd() -> Iterator[Systemd]:
    if not SYSTEMD.exists() or not shutil.which("nsenter"):
        pytest.skip("no systemd to boot here")
    with booted_systemd() as booted:
        yield booted


def _unit(systemd: Systemd, name: str, body: str) -> None:
    path = systemd.run_path(f"systemd/system/{name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    assert systemd.run("systemctl", "daemon-reload").returncode == 0


def test_no_such_unit_is_one_line(systemd: Systemd) -> None:
    """A unit systemd does not know: one line, exit 2."""
    done = systemd.run(sys.executable, "-m", "sysprep", "check", "--unit", "nope")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["sysprep: error: no unit nope.service (not-found)"]


def test_a_stopped_unit_is_judged_by_its_tasks_max_as_the_probe_run_as_it_finds(
    systemd: Systemd,
) -> None:
    """A service not running, TasksMax=1234 and LimitSTACK=256K: check --unit predicts what
    the threads probe, run as that very unit, holds (within 1 %), and names pids.max."""
    probe = systemd.run_path("probe-threads.py")
    shutil.copyfile(probe_path("threads"), probe)
    properties = "TasksMax=1234\nLimitSTACK=262144\nLimitNPROC=100000\n"
    _unit(systemd, "sp-app.service", f"[Service]\n{properties}ExecStart=/bin/true\n")
    check = systemd.sysprep("check", "--unit", "sp-app", "--threads", "5000", "--json")
    assert check["unit"]["running"] is False
    assert check["target"]["stack_bytes"] == 262144  # LimitSTACK soft, as glibc takes it
    assert check["binding"] == "pids.max"
    pids = next(r for r in check["limits"] if r["name"] == "pids.max")
    assert pids["note"] == "sp-app.service: TasksMax=1,234 in the unit"
    assert pids["fix"]["persist"].startswith(
        "[Service] TasksMax=5000 in /etc/systemd/system/sp-app.service.d/90-sysprep.conf"
    )
    _unit(
        systemd,
        "sp-probe.service",
        f"[Service]\nType=oneshot\n{properties}StandardOutput=file:/run/probe.json\n"
        f"ExecStart={SYSTEM_PYTHON} -S /run/probe-threads.py --count 5000 --json\n",
    )
    systemd.run("systemctl", "start", "sp-probe.service", timeout=120)
    held = json.loads(systemd.run_path("probe.json").read_text())
    assert held["stopped_by"] == "pids.max"
    assert abs(held["held"] - check["capacity"]) <= check["capacity"] / 100, (check, held)


def test_a_running_unit_is_judged_through_its_main_pid(systemd: Systemd) -> None:
    """A running service: its main pid's cgroup (TasksMax=777) and rlimits, named so."""
    started = systemd.run(
        "systemd-run", "--unit=sp-running", "-p", "TasksMax=777", "-p", "LimitNPROC=5555",
        "/bin/sleep", "300",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    check = systemd.sysprep("check", "--unit", "sp-running.service", "--json", "--threads", "999")
    assert check["unit"]["running"] is True
    assert check["target"]["pid"] == check["unit"]["main_pid"]
    pids = next(r for r in check["limits"] if r["name"] == "pids.max")
    assert (pids["current"], pids["status"]) == (777, "fails")
    assert pids["note"] == "sp-running.service: TasksMax=777 in the unit"
    nproc = next(r for r in check["limits"] if r["name"] == "RLIMIT_NPROC")
    assert nproc["current"] == 5555


def test_the_probe_runs_as_the_unit(systemd: Systemd) -> None:
    """`probe threads --unit`: a transient service with the unit's properties holds what
    check --unit predicts (within 1 %), stopped by the same limit."""
    _unit(systemd, "sp-probed.service", "[Service]\nTasksMax=2345\nExecStart=/bin/true\n")
    check = systemd.sysprep("check", "--unit", "sp-probed", "--threads", "9000", "--json")
    done = systemd.run(
        sys.executable, "-m", "sysprep", "probe", "threads", "--unit", "sp-probed",
        "--count", "9000", "--stack", "64K", "--json",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    held = json.loads(done.stdout)
    assert (check["binding"], held["stopped_by"]) == ("pids.max", "pids.max")
    assert abs(held["held"] - check["capacity"]) <= check["capacity"] / 100, (check, held)
