"""Whose profile root applies, and profile files that are not profiles: refused, one line."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from typing import TYPE_CHECKING

import pytest

from sysprep.errors import BadInputError
from sysprep.errors import ExitCode
from sysprep.profile import _read
from tests.conftest import write_sysctl
from tests.host.test_apply import Tree
from tests.kubelet import configmap_volume

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


def test_a_symlink_in_a_sticky_directory_is_refused(world_readable_dir: Path) -> None:
    """In a directory others may write, a symlink is refused (O_NOFOLLOW), whatever it names."""
    tree = Tree(world_readable_dir / "tree")
    sticky = world_readable_dir / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    mine = world_readable_dir / "mine.toml"
    mine.write_text(PROFILE)
    (sticky / "link.toml").symlink_to(mine)
    start = tree.state()
    refused = tree.sysprep("apply", str(sticky / "link.toml"))
    assert refused.returncode == ExitCode.BAD_INPUT
    assert "refusing a symlink in a directory others may write" in refused.stderr
    assert tree.state() == start
    assert tree.sysprep("apply", str(mine), "--dry-run").returncode == ExitCode.OK


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


def _snapshot_files(tree: Tree) -> list[Path]:
    return sorted((tree.state_dir / "snapshots").glob("*.json"))


def test_a_snapshot_id_is_never_a_path(tmp_path: Path) -> None:
    """An id with ../ would make revert write its state outside the state directory."""
    tree = Tree(tmp_path)
    assert tree.sysprep("apply", "elasticsearch", "--no-probe").returncode == ExitCode.OK
    (path,) = _snapshot_files(tree)
    document = json.loads(path.read_text())
    document["id"] = "../../escaped"
    path.write_text(json.dumps(document))
    done = tree.sysprep("revert")
    assert done.returncode == ExitCode.BAD_INPUT
    assert "its id '../../escaped' is not its file name" in done.stderr
    assert not (tree.state_dir.parent / "escaped.json").exists()
    assert not (tmp_path / "escaped.json").exists()
    path.unlink()  # put the host back the plain way: the value apply raised
    write_sysctl("vm.max_map_count", document["sysctls"][0]["before"])


def test_an_untrusted_snapshot_blocks_nothing_else(tmp_path: Path) -> None:
    """`snapshots` lists the rest and names the rejected file; `revert ID` reverts another."""
    tree = Tree(tmp_path)
    start = tree.state()
    profile = tmp_path / "pid.toml"
    profile.write_text('[target]\nthreads = 10\n[sysctl]\n"kernel.pid_max" = 65536\n')
    assert tree.sysprep("apply", "elasticsearch", "--no-probe").returncode == ExitCode.OK
    assert tree.sysprep("apply", str(profile)).returncode == ExitCode.OK
    older, newer = _snapshot_files(tree)
    newer.chmod(0o666)
    listed = tree.sysprep("snapshots", "--json")
    assert listed.returncode == ExitCode.OK, listed.stderr
    document = json.loads(listed.stdout)
    assert [s["id"] for s in document["snapshots"]] == [older.stem]
    assert document["rejected"] == [
        {"file": str(newer), "reason": "refusing a snapshot writable by group or others"}
    ]
    refused = tree.sysprep("revert")  # the newest is the one the operator likely means
    assert refused.returncode == ExitCode.BAD_INPUT
    assert "`sysprep revert ID` reverts another snapshot" in refused.stderr
    assert tree.sysprep("revert", older.stem).returncode == ExitCode.OK
    newer.chmod(0o600)
    assert tree.sysprep("revert", newer.stem).returncode == ExitCode.OK
    assert tree.state() == start


def test_a_configmap_volume_mounted_read_only_is_trusted(world_readable_dir: Path) -> None:
    """kubelet's layout: a 0777 volume, the profile behind ..data symlinks. Mounted read-only,
    as kubelet mounts it in a pod, nobody can swap a symlink there: the profile is applied.
    The same directory writable is refused, as any symlink in a directory others may write."""
    tree = Tree(world_readable_dir / "tree")
    volume = configmap_volume(world_readable_dir / "profile", {"maps.toml": PROFILE})
    profile = volume / "maps.toml"
    refused = tree.sysprep("apply", str(profile), "--dry-run")
    assert refused.returncode == ExitCode.BAD_INPUT
    assert "refusing a symlink in a directory others may write" in refused.stderr
    script = (
        f"mount --bind {volume} {volume} && mount -o remount,bind,ro {volume}"
        f" && exec {' '.join(tree.command())} apply {profile} --dry-run --json"
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == ExitCode.OK, done.stderr
    assert json.loads(done.stdout)["sysctls"][0]["key"] == "vm.max_map_count"
