"""What a Kubernetes node's own agents read, on the real kernel: node-problem-detector's
plugin contract (`check --npd`) and Node Feature Discovery's feature file (`check --nfd`)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.root

TARGET = ("--threads", "20000", "--stack", "64K")
# A label's name (after NFD's prefix) and value, as Kubernetes validates them.
LABEL_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?")


def sysprep(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sysprep", *args], capture_output=True, text=True, check=False
    )


def npd(*args: str) -> tuple[str, int]:
    """The plugin's stdout, one line, and its exit status."""
    done = sysprep("check", "--npd", *args)
    assert done.stdout.count("\n") == 1, done
    assert done.stdout.endswith("\n"), done
    return done.stdout.rstrip("\n"), done.returncode


def test_npd_a_lowered_limit_is_a_problem_and_a_raised_one_ok(
    sysctls: Callable[[str, object], None],
) -> None:
    """vm.max_map_count at 20,000 holds ~10,000 threads of 20,000: exit 1 and a line
    naming it; raised, exit 0 and the room. Both lines within 80 characters."""
    sysctls("vm.max_map_count", 20000)
    line, status = npd(*TARGET)
    assert status == 1
    assert re.fullmatch(r"not ready for 20,000 threads: vm\.max_map_count allows [\d,]+", line)
    assert len(line) <= 80
    sysctls("vm.max_map_count", 200000)
    line, status = npd(*TARGET)
    assert status == 0
    assert re.fullmatch(r"ready for 20,000 threads: room for [\d,]+ \([\w.-]+\)", line)
    assert len(line) <= 80


def test_npd_a_profile_not_met_is_a_problem(sysctls: Callable[[str, object], None]) -> None:
    """elasticsearch's max_map_count 262144 not met: a problem, naming the item first."""
    sysctls("vm.max_map_count", 65530)
    line, status = npd(*TARGET, "--profile", "elasticsearch")
    assert status == 1
    assert line.startswith("not as elasticsearch asks: vm.max_map_count")
    assert len(line) <= 80


def test_npd_what_cannot_be_read_is_unknown() -> None:
    """In a pid namespace the host's pid_max cannot be read: unknown (2), never a pass."""
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "sysprep",
         "check", "--npd", "--threads", "10"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done
    assert done.stdout == "unknown: could not read kernel.pid_max (parent namespaces)\n"


def test_npd_bad_input_is_unknown_on_stdout() -> None:
    """Bad input: status 2, and the reason on stdout, where node-problem-detector reads."""
    line, status = npd("--threads", "lots")
    assert status == 2
    assert line.startswith("unknown: invalid thread count 'lots'")
    assert len(line) <= 80
    assert sysprep("check", "--npd", "--json").returncode == 2


def test_nfd_feature_file(tmp_path: Path, sysctls: Callable[[str, object], None]) -> None:
    """The feature file parses as NFD reads it: name=value lines, valid label names and
    values; ready, capacity and binding agree with check --json."""
    sysctls("vm.max_map_count", 20000)
    features = tmp_path / "sysprep"
    done = sysprep("check", *TARGET, "--profile", "elasticsearch", "--nfd", str(features))
    assert done.returncode == 1
    labels = dict(line.split("=", 1) for line in features.read_text().splitlines())
    for name, value in labels.items():
        assert LABEL_NAME.fullmatch(name), name
        assert LABEL_VALUE.fullmatch(value), (name, value)
    assert labels["sysprep-ready"] == "false"
    assert labels["sysprep-binding"] == "vm.max_map_count"
    assert labels["sysprep-compliant-elasticsearch"] == "false"
    assert labels["sysprep-target-threads"] == "20000"
    capacity = int(labels["sysprep-thread-capacity"])
    assert 9000 < capacity < 10000  # 20,000 mappings, two a thread
    assert features.stat().st_mode & 0o777 == 0o644


def test_the_agent_applies_once_and_reverts_nothing_on_sigterm(tmp_path: Path) -> None:
    """`agent --apply`: elasticsearch's max_map_count is set on the real kernel in the
    first cycle; SIGTERM ends the agent with status 0 and the value stays; `revert` (the
    revert Job) puts it back."""
    state, etc = tmp_path / "state", tmp_path / "etc"
    etc.mkdir()
    roots = ("--state-dir", str(state), "--etc-root", str(etc))
    agent = subprocess.Popen(
        [sys.executable, "-m", "sysprep", *roots, "agent", "--interval", "10", "--profile",
         "elasticsearch", "--apply", "--no-probe"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert agent.stdout is not None
        applied = agent.stdout.readline()
        checked = agent.stdout.readline()
        agent.send_signal(signal.SIGTERM)
        out, err = agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert "apply elasticsearch: applied vm.max_map_count; snapshot " in applied, err
    assert " check: " in checked
    assert agent.returncode == 0, err
    assert out.endswith("stopping on SIGTERM; nothing is reverted\n")
    assert Path("/proc/sys/vm/max_map_count").read_text() == "262144\n"
    assert sysprep(*roots, "revert").returncode == 0
    assert Path("/proc/sys/vm/max_map_count").read_text() == "65530\n"
