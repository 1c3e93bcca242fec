"""Operator comforts: --version, -q for cron, shell completion, an example in every --help."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from sysprep import __version__
from sysprep.cli import run
from sysprep.errors import ExitCode

if TYPE_CHECKING:
    from tests.fakehost import FakeHost


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the version and exits 0."""
    assert run(["--version"]) == ExitCode.OK
    assert capsys.readouterr().out == f"sysprep {__version__}\n"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["check"], ExitCode.NOT_READY),
        (["check", "--threads", "10"], ExitCode.OK),
        (["check", "--threads", "0"], ExitCode.BAD_INPUT),
    ],
)
def test_quiet_prints_nothing(
    fake: FakeHost, capsys: pytest.CaptureFixture[str], args: list[str], code: int
) -> None:
    """-q: no output at all, on success, failure or bad input; the exit status says it."""
    fake.set_sysctl("kernel.pid_max", 32768)
    assert run(["-q", "--root", str(fake.root), *args]) == code
    assert capsys.readouterr() == ("", "")


def test_shell_completion_script(capsys: pytest.CaptureFixture[str]) -> None:
    """Completion is installable through typer: the bash script names sysprep's variable."""
    assert run(["--show-completion", "bash"]) == ExitCode.OK
    assert "_SYSPREP_COMPLETE" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["check", "probe", "apply", "revert", "snapshots"])
def test_every_help_has_an_example(capsys: pytest.CaptureFixture[str], command: str) -> None:
    """Each command's --help ends with an example to copy."""
    assert run([command, "--help"]) == ExitCode.OK
    assert "Example: " in capsys.readouterr().out


def test_ctrl_c_while_starting_is_one_line() -> None:
    """A Ctrl-C while sysprep still imports its modules: `sysprep: interrupted`, exit 130."""
    code = (
        "import builtins\n"
        "real = builtins.__import__\n"
        "def slow(name, *args, **kwargs):\n"
        "    if name == 'sysprep.cli':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = slow\n"
        "from sysprep.__main__ import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stderr) == (130, "sysprep: interrupted\n")
