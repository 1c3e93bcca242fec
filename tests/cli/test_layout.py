"""Reports that fit the terminal they are read in, at 60, 80, 100 and 120 columns.

Each report at 200 columns is the reference (nothing there wraps). Narrower, in a pipe with
COLUMNS set and on a real terminal (tmux), every line of it comes back whole: wrapped under
its own indent, never cut; a table is drawn whole or becomes one block per row, whose name
and cells are all there. Regressions of issue "a new user's first hour": at 80 columns names
were cut (`net.ipv4.tcp_max_syn_ba…`), at 60 check was unreadable, `watch --once` lost its
border, a pipe got trailing spaces, and `snapshots` wrapped an id mid-word.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import require_tool
from tests.fakehost import SELF_PID
from tests.screens import WIDE
from tests.screens import Screen
from tests.screens import assert_clean
from tests.screens import assert_same_report
from tests.screens import example_host
from tests.screens import parse_reference
from tests.screens import refused_host
from tests.screens import report
from tests.screens import row_names
from tests.screens import tree
from tests.screens import with_snapshots

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.fakehost import FakeHost

WIDTHS = (60, 80, 100, 120)
REPORTS = {
    "check (c)": ["check", "--runtime", "c"],
    "check (jvm)": ["check", "--runtime", "jvm"],
    "check (rust)": ["check", "--runtime", "rust", "--threads", "40000"],
    "check (go)": ["check", "--runtime", "go"],
    "check --connections": ["check", "--connections", "200000", "--sources", "2"],
    "check --profile": ["check", "--profile", "million-threads"],
    "watch --once": ["watch", "--pid", str(SELF_PID), "--once"],
    "explain": ["explain", "--pid", str(SELF_PID)],
    "snapshots": ["snapshots"],
    "apply's plan": ["apply", "million-threads", "--persist", "--dry-run"],
}
# What each report must show for the example host to be a fair test of it.
SHOWS = {
    "check (c)": "kernel.threads-max",
    "check --connections": "net.netfilter.nf_conntrack_max",
    "check --profile": "expected (at least)",
    "explain": "fork rejected by pids controller in /system.slice/bomb.service",
    "snapshots": "-million-threads",
    "apply's plan": "/etc/systemd/system.conf.d/90-sysprep.conf",
}


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FakeHost]:
    """The example host; another after two applies (snapshots); one that refused a fork
    (explain)."""
    root = tmp_path_factory.mktemp("layout")
    fresh = example_host(root / "host")
    special = {
        "snapshots": with_snapshots(example_host(root / "applied")),
        "explain": refused_host(root / "refused"),
    }
    return {name: special.get(name, fresh) for name in REPORTS}


@pytest.mark.parametrize("name", [name for name in REPORTS if name != "snapshots"])
def test_every_width_in_a_pipe(
    hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """At each width: the reference's every line, cell and name, whole; nothing wider than
    the width, nothing cut, no trailing spaces. (`snapshots` gives a pipe tab-separated
    lines, one per snapshot: it is read on a terminal below.)"""
    args = [*tree(hosts[name]), *REPORTS[name]]
    wide = report(capsys, WIDE, args)
    assert SHOWS.get(name, "") in wide
    reference = parse_reference(wide, row_names(capsys, args))
    for width in WIDTHS:
        narrow = report(capsys, width, args)
        assert_clean(narrow, width)
        assert_same_report(narrow, reference)


def test_a_narrow_check_is_one_block_per_limit(
    hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    """At 60 columns every limit is a block: its name alone on a line, then its figures."""
    narrow = report(capsys, 60, [*tree(hosts["check (c)"]), "check", "--runtime", "go"])
    lines = narrow.splitlines()
    at = lines.index("kernel.threads-max")
    assert lines[at + 1].startswith("  current: 192,730, in use: ")
    assert "go.max_threads" in lines


def test_at_80_columns_check_is_a_table(
    hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    """The common terminal gets the table, every runtime's (names up to 18 characters)."""
    for runtime in ("c", "jvm", "rust", "go"):
        args = [*tree(hosts["check (c)"]), "check", "--runtime", runtime]
        lines = report(capsys, 80, args).splitlines()
        assert any(line.startswith("limit   ") for line in lines), runtime


@pytest.fixture(scope="module")
def tmux() -> Iterator[str]:
    """tmux, on a server of this module's own, killed afterwards; a session of its own keeps
    it up between the tests' (an empty server exits, and a test could meet it exiting)."""
    import subprocess

    path = require_tool("tmux")
    socket = f"sysprep-test-{os.getpid()}"
    server = [path, "-L", socket, "-f", "/dev/null"]
    subprocess.run([*server, "new-session", "-d", "-s", "keep", "sleep 3600"], check=True)
    try:
        yield path
    finally:
        subprocess.run([*server, "kill-server"], capture_output=True, check=False)
        directory = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
        (directory / socket).unlink(missing_ok=True)


@pytest.mark.parametrize("name", ["check (go)", "check --connections", "watch --once",
                                  "explain", "snapshots", "apply's plan"])  # fmt: skip
@pytest.mark.parametrize("width", WIDTHS)
def test_on_a_real_terminal(
    hosts: dict[str, FakeHost],
    capsys: pytest.CaptureFixture[str],
    tmux: str,
    name: str,
    width: int,
) -> None:
    """On a tmux pane of that width, the screen is the pipe's report at that width: the
    terminal wrapped nothing (capture-pane -J joins what it wrapped) and rich sized it to
    the pane, not to 80. `snapshots`, tab-separated in a pipe, is held to a wide pane's."""
    args = [*tree(hosts[name]), *REPORTS[name]]
    socket = f"sysprep-test-{os.getpid()}"
    screen = Screen(tmux, socket, width).show(args)
    assert SHOWS.get(name, "") in " ".join(screen.split())
    assert_clean(screen, width)
    if name != "snapshots":
        assert screen == report(capsys, width, args)
        return
    wide = Screen(tmux, socket, WIDE).show(args)
    assert_same_report(screen, parse_reference(wide, row_names(capsys, args)))


def test_watch_live_fits_the_pane(hosts: dict[str, FakeHost], tmux: str) -> None:
    """The live table (not --once) at 60 columns: one block per limit, each whole, on the
    last refresh before Ctrl-C."""
    args = [*tree(hosts["check (c)"]), "watch", "--pid", str(SELF_PID), "--interval", "0.2"]
    screen = Screen(tmux, f"sysprep-test-{os.getpid()}", 60).show(args, stop_after=2)
    lines = screen.splitlines()
    assert "kernel.threads-max" in lines
    assert all(len(line) <= 60 for line in lines)
    assert "per second: +0/s" in screen
