"""The node agent on a fake tree: a cycle's reports and log, and apply once per profile."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from sysprep.agent import RECORD
from sysprep.agent import Agent
from sysprep.agent import AgentOptions
from sysprep.errors import BadInputError
from sysprep.snapshot import all_snapshots
from sysprep.snapshot import locked
from sysprep.units import parse_duration

if TYPE_CHECKING:
    from pathlib import Path

    from sysprep.host import Host
    from tests.fakehost import FakeHost


@pytest.fixture(name="host")
def _host(fake: FakeHost) -> Host:
    fake.set_sysctl("kernel.pid_max", 32768)
    return fake.host


def agent(host: Host, tmp_path: Path, **options: object) -> tuple[Agent, list[str]]:
    lines: list[str] = []
    chosen = AgentOptions(**{"interval": 60.0, **options})  # type: ignore[arg-type]
    return Agent(host, tmp_path / "state", chosen, lines.append), lines


def profile(tmp_path: Path, max_map_count: int) -> Path:
    path = tmp_path / "maps.toml"
    path.write_text(
        'description = "maps"\n[target]\nthreads = 1000\n'
        f'[sysctl]\n"vm.max_map_count" = {max_map_count}\n'
    )
    return path


def test_a_cycle_writes_every_report_and_logs_one_line(host: Host, tmp_path: Path) -> None:
    """NPD's "STATUS LINE", NFD's features and the textfile, and the same line in the log."""
    reports = tmp_path / "reports"
    reports.mkdir()
    run, lines = agent(
        host, tmp_path, threads=1000, npd=reports / "npd", nfd=reports / "nfd",
        prometheus=reports / "sysprep.prom",
    )  # fmt: skip
    result = run.cycle()
    assert result is not None
    status, line = (reports / "npd").read_text().rstrip("\n").split(" ", 1)
    assert (int(status), lines[0].split(" ", 1)[1]) == (0, f"check: {line}")
    assert line.startswith("ready for 1,000 threads: room for ")
    assert "sysprep-ready=true\n" in (reports / "nfd").read_text()
    assert "sysprep_ready 1" in (reports / "sysprep.prom").read_text()


def test_a_cycle_that_cannot_check_reports_unknown(host: Host, tmp_path: Path) -> None:
    """A profile gone from its path: the NPD verdict is unknown (2), and the agent goes on."""
    run, lines = agent(host, tmp_path, profile=str(tmp_path / "gone.toml"), npd=tmp_path / "npd")
    assert run.cycle() is None
    assert (tmp_path / "npd").read_text().startswith("2 unknown: profile ")
    assert "check: unknown: profile" in lines[0]


def test_apply_once_per_change_of_the_profile(host: Host, tmp_path: Path) -> None:
    """Applied in the first cycle, not again while its bytes are the same (a new agent, as
    a restarted pod, reads the record), and again once they change."""
    path = profile(tmp_path, 200000)
    run, lines = agent(host, tmp_path, profile=str(path), apply=True, probes=False)
    run.cycle()
    assert host.sysctl("vm.max_map_count") == "200000"
    assert "apply " in lines[0]
    snapshot = all_snapshots(run.state_dir, host)[0].id
    assert lines[0].endswith(f"apply {path}: applied vm.max_map_count; snapshot {snapshot}")
    host.write_sysctl("vm.max_map_count", "65530")  # as a revert would leave it
    again, lines = agent(host, tmp_path, profile=str(path), apply=True, probes=False)
    again.cycle()
    assert host.sysctl("vm.max_map_count") == "65530"  # an explicit revert sticks
    assert not any(" apply " in line for line in lines)
    profile(tmp_path, 300000)  # the ConfigMap changed
    again.cycle()
    assert host.sysctl("vm.max_map_count") == "300000"
    record = json.loads((run.state_dir / RECORD).read_text())
    assert record["outcome"].startswith("applied vm.max_map_count; snapshot ")


def test_a_refused_profile_is_not_tried_every_cycle(host: Host, tmp_path: Path) -> None:
    """An apply that fails is logged and recorded once; the next cycles only check."""
    path = profile(tmp_path, 99)  # raise-only: nothing to change, "nothing to change"
    path.write_text(path.read_text() + '"vm.no_such_key" = 1\n')
    run, lines = agent(host, tmp_path, profile=str(path), apply=True, probes=False)
    run.cycle()
    run.cycle()
    applies = [line for line in lines if " apply " in line]
    assert len(applies) == 1
    assert "failed: " in applies[0]


def test_a_held_lock_is_tried_again_next_cycle(host: Host, tmp_path: Path) -> None:
    """A revert holding the lock: this cycle skips the apply, the next one makes it."""
    path = profile(tmp_path, 200000)
    run, lines = agent(host, tmp_path, profile=str(path), apply=True, probes=False)
    with locked(run.state_dir, host):
        run.cycle()
    assert host.sysctl("vm.max_map_count") == "65530"
    assert "trying again next cycle" in lines[0]
    run.cycle()
    assert host.sysctl("vm.max_map_count") == "200000"


@pytest.mark.parametrize(
    ("text", "seconds"), [("60", 60.0), ("90s", 90.0), ("5m", 300.0), ("1h", 3600.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, what="--interval", low=10, high=86400) == seconds


@pytest.mark.parametrize("text", ["5", "2d", "-1m", "m", "25h", "nan"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(BadInputError, match="invalid --interval"):
        parse_duration(text, what="--interval", low=10, high=86400)
