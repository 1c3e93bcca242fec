"""Names the host or a user controls are printed as they are, never read as rich markup.

An executable path with "[/]" in it once crashed root's `check --pid` (exit 70), a cgroup
named "rt2[b]z" turned the printed fix into a path that does not exist, and a profile whose
description held "[/]" was applied and then crashed sysprep.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.conftest import PIDS_V1

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.realsystemd import Systemd

pytestmark = pytest.mark.root


def sysprep(*args: str) -> subprocess.CompletedProcess[str]:
    """sysprep ARGS, its lines unwrapped (a wide COLUMNS) so that a path reads whole."""
    return subprocess.run(
        [sys.executable, "-m", "sysprep", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "400"},
    )


@pytest.fixture
def bracketed_sleep(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """/bin/sleep copied to TMP/x[/]y (a directory "x[", a file "]y"), running."""
    binary = tmp_path / "x[" / "]y"
    binary.parent.mkdir()
    shutil.copy2("/bin/sleep", binary)
    process = subprocess.Popen([str(binary), "60"])
    try:
        yield binary, process
    finally:
        process.kill()
        process.wait()


def test_check_pid_of_a_bracketed_executable(
    bracketed_sleep: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    """check --pid prints the path as it is (its runtime line names it), and exits 0 or 1."""
    binary, process = bracketed_sleep
    for args in ([], ["--profile", "elasticsearch"], ["--connections", "10"]):
        done = sysprep("check", "--pid", str(process.pid), *args)
        assert done.returncode in (0, 1), done.stderr
        if not args:  # the runtime line names the program it judged
            assert str(binary) in done.stdout
    explained = sysprep("explain", "--pid", str(process.pid))
    assert explained.returncode in (0, 1), explained.stderr


def test_a_bracketed_cgroup_is_printed_as_it_is(pids_cgroup: Path) -> None:
    """A process in a pids cgroup named "rt2[b]z" (under the test's own) at its limit: the fix
    names that very path."""
    cgroup = pids_cgroup / "rt2[b]z"
    cgroup.mkdir()
    try:
        (cgroup / "pids.max").write_text("20\n")
        holder = subprocess.Popen(
            ["sh", "-c", f"echo $$ > '{cgroup}/cgroup.procs' && exec sleep 60"]
        )
        try:
            subprocess.run(["sleep", "0.2"], check=True)
            done = sysprep("check", "--pid", str(holder.pid), "--threads", "100")
            assert done.returncode == 1, done.stderr
            assert f"echo 101 > {PIDS_V1}/{pids_cgroup.name}/rt2[b]z/pids.max" in done.stdout
        finally:
            holder.kill()
            holder.wait()
    finally:
        cgroup.rmdir()


def test_a_bracketed_profile_applies_prints_and_reverts(tmp_path: Path) -> None:
    """A profile named x[b]y whose description holds "[/]": dry run, apply and revert print
    them as they are and exit 0; nothing is left."""
    profile = tmp_path / "x[b]y.toml"
    profile.write_text(
        'description = "bracket [/] and [bold]not bold[/]"\n[target]\nthreads = 10\n'
        '[sysctl]\n"vm.max_map_count" = 70000\n'
    )
    etc, state = tmp_path / "root", tmp_path / "state"
    etc.mkdir()
    tree = ["--etc-root", str(etc), "--state-dir", str(state)]
    dry = sysprep(*tree, "apply", str(profile), "--dry-run", "--persist")
    assert dry.returncode == 0, dry.stderr
    assert "x[b]y: bracket [/] and [bold]not bold[/]" in dry.stdout
    applied = sysprep(*tree, "apply", str(profile), "--persist", "--no-probe")
    assert applied.returncode == 0, applied.stderr
    listed = sysprep(*tree, "snapshots")
    assert "x[b]y" in listed.stdout
    reverted = sysprep(*tree, "revert")
    assert reverted.returncode == 0, reverted.stderr
    assert not any(etc.rglob("*.conf"))


def test_a_unit_whose_exec_start_is_bracketed(systemd: Systemd) -> None:
    """check --unit of a stopped service whose ExecStart path holds "[/]": exit 0 or 1."""
    unit = systemd.run_path("systemd/system/sp-bracket.service")
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text("[Service]\nExecStart=/run/x[/]y 60\n")
    assert systemd.run("systemctl", "daemon-reload").returncode == 0
    done = systemd.run(*systemd.sysprep_command("check", "--unit", "sp-bracket"))
    assert done.returncode in (0, 1), done.stderr
    assert "/run/x[/]y" in done.stdout
