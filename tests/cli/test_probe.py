"""`sysprep probe` argument errors: one line, exit 2, nothing started."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sysprep.cli import run
from sysprep.errors import ExitCode

if TYPE_CHECKING:
    from tests.fakehost import FakeHost


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["probe", "nope"], "unknown probe 'nope'"),
        (["probe", "threads", "--count", "0"], "invalid count '0'"),
        (["probe", "threads", "--stack", "1Q"], "invalid size '1Q'"),
        (["probe", "threads", "--mode", "sleepy"], "invalid mode 'sleepy'"),
        (["probe", "maps", "--mode", "seed"], "invalid mode 'seed'"),
        (["probe"], "sysprep probe needs NAME (see sysprep probe --help)"),
    ],
)
def test_bad_input(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    """Each bad argument: exit 2 and one line naming it."""
    assert run(args) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert message in err


def test_refuses_a_fake_root(fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """Probes start real threads: a --root tree cannot be probed."""
    assert run(["--root", str(fake.root), "probe", "threads"]) == ExitCode.BAD_INPUT
    assert "cannot run against --root" in capsys.readouterr().err
