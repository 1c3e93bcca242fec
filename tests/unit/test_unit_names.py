"""--unit names only a service, and what apply writes for one a snapshot can read back.

`apply P --unit sk.socket` once wrote a [Service] drop-in systemd ignores, which its own
snapshot reader then refused, so revert could not remove it; `--unit --host=a.b` reached
systemctl as an option.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sysprep.cli import run
from sysprep.errors import BadInputError
from sysprep.errors import ExitCode
from sysprep.facts import owned_file
from sysprep.facts import unit_drop_in
from sysprep.systemd import unit_name

if TYPE_CHECKING:
    from pathlib import Path

    from tests.fakehost import FakeHost

NAMES = [
    "nginx",
    "nginx.service",
    "app.v2",
    "getty@tty1.service",
    "foo@",
    "sk.socket",
    "backup.timer",
    "user.slice",
    "session-1.scope",
    "multi-user.target",
    "",
    "-x",
    "--host=a.b",
    "a/b",
    "../../etc",
    "x" * 300,
    "with space",
    "new\nline",
]


@pytest.mark.parametrize("name", NAMES)
def test_what_apply_writes_a_snapshot_reads(name: str) -> None:
    """For every name: either refused up front, or its drop-in is a path owned_file()
    accepts, naming the same service; never a path the snapshot reader would refuse."""
    try:
        service = unit_name(name)
    except BadInputError as error:
        refusal = str(error)
    else:
        refusal = ""
    if refusal:
        assert "\n" not in refusal
        return
    drop_in = unit_drop_in(service)
    assert owned_file(drop_in.path) == drop_in
    assert service.endswith(".service")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("sk.socket", "the service it starts"),
        ("user.slice", "set-property"),
        ("x.scope", "--pid"),
        ("", "an empty name"),
        ("--host=a.b", "cannot start with '-'"),
    ],
)
def test_apply_refuses_a_unit_it_cannot_tune_and_changes_nothing(
    fake: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, why: str
) -> None:
    """One line naming why, exit 2, before any plan: no drop-in, no snapshot."""
    tree = ["--root", str(fake.root), "--etc-root", str(fake.root)]
    state = ["--state-dir", str(tmp_path / "state")]
    code = run([*tree, *state, "apply", "million-threads", f"--unit={name}", "--no-probe"])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT
    assert err.count("\n") == 1
    assert why in err
    assert not (fake.root / "etc").exists()
    assert not (tmp_path / "state").exists()


def test_restart_without_unit_is_bad_input(
    fake: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """--restart names no service on its own: one line, exit 2."""
    code = run(["--root", str(fake.root), "apply", "elasticsearch", "--restart", "--dry-run"])
    assert code == ExitCode.BAD_INPUT
    assert "--restart restarts the --unit service" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["check"], ["explain"], ["watch"], ["probe", "threads"]])
def test_every_command_refuses_a_socket(
    fake: FakeHost, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """check, explain, watch and probe --unit take services only too."""
    code = run(["--root", str(fake.root), *command, "--unit", "sk.socket"])
    assert code == ExitCode.BAD_INPUT
    assert "sysprep judges and tunes services" in capsys.readouterr().err
