"""explain on fake trees: the evidence for exactly the judged process's cgroups.

The kernel logs "fork rejected by pids controller in PATH" with the cgroup's whole path in
its hierarchy; only lines for a level of the judged process's path are quoted, never those
of another cgroup whose path merely ends the same way (the real-kernel and real-systemd
twins are in tests/host/test_explain.py).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sysprep.cli import run
from sysprep.errors import ExitCode
from tests.fakehost import SELF_PID

if TYPE_CHECKING:
    import pytest

    from tests.fakehost import FakeHost

REJECTED = "cgroup: fork rejected by pids controller in {}"


def test_only_lines_for_the_judged_cgroup_path_are_quoted(
    fake: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """The process is in /system.slice/bomb.service: its line is quoted with its pids.events;
    /bomb.service and /other.slice/system.slice/bomb.service share its ending and are not."""
    fake.use_cgroup_v1("/system.slice/bomb.service")
    leaf = "pids/system.slice/bomb.service"
    fake.set_cgroup_file(f"{leaf}/pids.max", 50).set_cgroup_file(f"{leaf}/pids.current", 50)
    fake.set_cgroup_file(f"{leaf}/pids.events", "max 7")
    fake.add_kernel_log(
        (10.0, REJECTED.format("/bomb.service")),
        (11.0, REJECTED.format("/other.slice/system.slice/bomb.service")),
        (12.5, REJECTED.format("/system.slice/bomb.service")),
        (13.0, "an unrelated line"),
    )
    capsys.readouterr()
    code = run(["--root", str(fake.root), "explain", "--pid", str(SELF_PID), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK
    (cause, *_) = document["causes"]
    assert cause["limit"] == "pids.max"
    assert (
        cause["evidence"][0] == "/sys/fs/cgroup/pids/system.slice/bomb.service/pids.events: max 7"
    )
    quoted = [line for line in cause["evidence"] if line.startswith("kernel log")]
    assert len(quoted) == 1
    assert quoted[0].endswith(REJECTED.format("/system.slice/bomb.service"))


def test_a_log_line_alone_is_evidence(fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """The cgroup that refused may have been made again since (pids.events says 0): the
    kernel's line for its path still says what happened."""
    fake.use_cgroup_v1("/system.slice/bomb.service")
    fake.add_kernel_log((5.0, REJECTED.format("/system.slice/bomb.service")))
    capsys.readouterr()
    assert run(["--root", str(fake.root), "explain", "--pid", str(SELF_PID)]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "pids.max (the kernel counted refusals)" in out
    assert "fork rejected by pids controller in /system.slice/bomb.service" in out
