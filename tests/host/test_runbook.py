"""docs/runbook.md and README.md's examples of the real kernel cannot drift from the tool.

Every command of docs/runbook.md runs, in order, as root on this host, as does each example
of README.md marked `<!-- output: this host -->`: each exits with the status the page gives,
and prints what the page shows, every number aside (a line `…` stands for any lines). /etc
and the state directory go to a temp tree; conftest writes the sysctls back. With
SYSPREP_WRITE_DOCS=1 the pages get what the commands printed instead (tests/docs.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs import Example
from tests.docs import examples
from tests.docs import settle

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs/runbook.md"
THIS_HOST = "this host"
WIDTH = 80


def test_the_runbook_has_its_six_steps() -> None:
    """check, dry-run, apply, check, probe, revert."""
    commands = [step.args[0] for e in examples(RUNBOOK, default=THIS_HOST) for step in e.steps]
    assert commands == ["check", "apply", "apply", "check", "probe", "revert"]


def _run_all(pages: list[Example], tmp_path: Path) -> None:
    """Each command of *pages*, in order: its status, and its output (numbers aside)."""
    options = ["--etc-root", str(tmp_path), "--state-dir", str(tmp_path / "state")]
    env = {**os.environ, "COLUMNS": str(WIDTH)}
    for example in pages:
        outputs = []
        for step in example.steps:
            command = [sys.executable, "-m", "sysprep", *options, *step.args]
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            assert done.returncode == step.exit_status or step.exit_status is None, (
                step.command,
                done.stderr,
            )
            outputs.append(done.stdout.splitlines())
        settle(example, outputs, exact=False)


def test_every_runbook_command_runs_and_prints_what_it_shows(tmp_path: Path) -> None:
    """The six steps, in order, on this host: the statuses and outputs the runbook gives."""
    _run_all(examples(RUNBOOK, default=THIS_HOST), tmp_path)


def test_readme_examples_of_this_host(tmp_path: Path) -> None:
    """README.md's probe example: what the probe prints here, numbers aside."""
    readme = [e for e in examples(ROOT / "README.md") if e.source == THIS_HOST]
    assert readme
    _run_all(readme, tmp_path)
