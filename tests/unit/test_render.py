"""What render prints for people: ids never cut, one line per snapshot in a pipe."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from sysprep.render.changes import print_snapshots
from sysprep.settings.sysctl import SysctlSetting
from sysprep.snapshot import Scan
from sysprep.snapshot import Snapshot

LONG_PROFILE = "thread-per-client-100k-with-a-long-name"


def snapshots() -> list[Snapshot]:
    made = []
    for number, profile in enumerate(("million-threads", LONG_PROFILE)):
        changes = tuple(
            SysctlSetting(key).change("1", 2, exact=False)
            for key in ("kernel.pid_max", "kernel.threads-max", "vm.max_map_count")
        )
        made.append(
            Snapshot(
                f"20261128T141000.12345{number}-{profile}",
                profile,
                1.8e9 + number,
                "boot",
                changes=changes,
            )
        )
    return made


@pytest.mark.parametrize("width", [60, 80, 120])
def test_terminal_table_keeps_every_id_whole(width: int) -> None:
    """Regression: at 80 columns the id column was cut ("20261128T1410…")."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    print_snapshots(Scan(Path(), snapshots(), []), as_json=False, given=console)
    for snapshot in snapshots():
        assert snapshot.id in out.getvalue()
    assert "…" not in out.getvalue()


def test_a_pipe_gets_one_line_per_snapshot() -> None:
    """Not a terminal: one tab-separated line each, the id first, nothing cut."""
    out = io.StringIO()
    print_snapshots(Scan(Path(), snapshots(), []), as_json=False, given=Console(file=out))
    lines = out.getvalue().splitlines()
    assert [line.split("\t")[0] for line in lines] == [s.id for s in snapshots()]
    assert lines[1].split("\t")[2] == LONG_PROFILE
    assert lines[0].split("\t")[4] == "kernel.pid_max, kernel.threads-max, vm.max_map_count"


def test_a_tab_or_newline_in_a_profile_name_never_breaks_the_line() -> None:
    """A profile whose file name holds a tab and a newline: still one line of five cells."""
    odd = Snapshot("20261128T141000.123450-odd", "a\tb\nc", 1.8e9, "boot")
    out = io.StringIO()
    print_snapshots(Scan(Path(), [odd], []), as_json=False, given=Console(file=out))
    (line,) = out.getvalue().splitlines()
    assert line.split("\t")[2] == "a\\tb\\nc"


def test_a_mode_only_change_shows_the_mode() -> None:
    """Same bytes, another mode: the plan says the modes, not "100 bytes" twice."""
    from sysprep.durable import FileState
    from sysprep.settings.files import FileSetting

    setting = FileSetting("/etc/sysctl.d/90-sysprep.conf")
    assert setting.show(FileState(b"x" * 100, 0o600)) == "100 bytes, mode 0600"
    assert setting.show(FileState(b"x" * 100, 0o644)) == "100 bytes"
