"""Every command in docs/runbook.md runs, in order, with the exit status the runbook gives.

/etc and the state directory go to a temp tree; conftest writes the sysctls back.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

RUNBOOK = Path(__file__).resolve().parents[2] / "docs/runbook.md"
_BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)
_STATUS = re.compile(r"\[exit status (\d+)")


def runbook_steps() -> list[tuple[list[str], int]]:
    """(sysprep arguments, documented exit status) of each console block, in order."""
    steps = []
    for block in _BLOCK.findall(RUNBOOK.read_text()):
        command = next(line[2:] for line in block.splitlines() if line.startswith("$ "))
        words = shlex.split(command)
        if words[0] == "sudo":  # the tests run as root
            words = words[1:]
        assert words[0] == "sysprep", command
        status = _STATUS.search(block)
        assert status is not None, f"no [exit status N] after {command!r}"
        steps.append((words[1:], int(status[1])))
    return steps


def test_the_runbook_has_its_six_steps() -> None:
    """check, dry-run, apply, check, probe, revert."""
    commands = [args[0] for args, _ in runbook_steps()]
    assert commands == ["check", "apply", "apply", "check", "probe", "revert"]


def test_every_runbook_command_runs(tmp_path: Path) -> None:
    """Each command, as written, exits as the runbook says."""
    options = ["--etc-root", str(tmp_path), "--state-dir", str(tmp_path / "state")]
    for args, status in runbook_steps():
        done = subprocess.run(
            [sys.executable, "-m", "sysprep", *options, *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == status, (args, done.stderr)
