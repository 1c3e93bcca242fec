"""Whose profile root applies, and profile files that are not profiles: refused, one line."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import pytest

from sysprep.errors import BadInputError
from sysprep.errors import ExitCode
from sysprep.profile import _read
from tests.host.test_apply import Tree

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.root

PROFILE = '[target]\nthreads = 10\n[sysctl]\n"vm.max_map_count" = 131072\n'


def test_a_profile_others_can_write_is_refused_unless_trusted(world_readable_dir: Path) -> None:
    """Root is not steered by nobody's 0666 profile in a 1777 directory (the sticky /tmp)."""
    tree = Tree(world_readable_dir / "tree")
    sticky = world_readable_dir / "sticky"
    sticky.mkdir(mode=0o777)
    sticky.chmod(0o1777)
    profile = sticky / "theirs.toml"
    profile.write_text(PROFILE)
    os.chown(profile, 65534, 65534)
    profile.chmod(0o666)
    start = tree.state()
    refused = tree.sysprep("apply", str(profile))
    assert refused.returncode == ExitCode.BAD_INPUT
    assert refused.stderr.strip().splitlines() == [
        (
            f"sysprep: error: {profile}: refusing a profile writable by group or others (0666);"
            " fix its owner or mode, or pass --trust-profile"
        )
    ]
    profile.chmod(0o644)
    refused = tree.sysprep("apply", str(profile))
    assert refused.returncode == ExitCode.BAD_INPUT
    assert "refusing a profile owned by uid 65534" in refused.stderr
    assert tree.state() == start
    assert tree.sysprep("apply", str(profile), "--trust-profile").returncode == ExitCode.OK
    assert tree.sysprep("revert").returncode == ExitCode.OK
    assert tree.state() == start


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    """A FIFO swapped in for the profile: opened non-blocking, found not a file, refused."""
    fifo = tmp_path / "swapped.toml"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            _read(fifo, trust=False)
        except BadInputError as error:
            outcome.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "reading a FIFO hung"
    assert "not a regular file" in str(outcome[0])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
        (b'description = "\xff\xfe"\n[target]\nthreads = 10\n', "not UTF-8 text"),
        (None, "over 1024 KiB: not a profile"),  # a 10 GiB sparse file
    ],
)
def test_files_that_are_no_profile(tmp_path: Path, content: bytes | None, message: str) -> None:
    """Deep nesting, bad UTF-8, a huge sparse file: one line, exit 2, nothing changed."""
    tree = Tree(tmp_path)
    profile = tmp_path / "bad.toml"
    if content is None:
        with profile.open("wb") as f:
            f.truncate(10 << 30)
    else:
        profile.write_bytes(content)
    start = tree.state()
    done = tree.sysprep("apply", str(profile))
    assert done.returncode == ExitCode.BAD_INPUT, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert message in done.stderr
    assert tree.state() == start
