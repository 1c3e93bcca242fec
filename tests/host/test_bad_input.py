"""Bad input to apply and revert: one clear line, the documented exit status, host unchanged.

Profiles, snapshots and arguments; each case compares every sysctl apply could touch and
every file under the temp /etc and state directory, before and after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from sysprep.cli import run
from sysprep.errors import ExitCode
from tests.host.test_apply import Tree

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.root

MINIMAL = "[target]\nthreads = 10\n"
BAD_PROFILES = [
    ("not TOML", "description = \n", "not valid TOML"),
    ("unknown top key", 'color = "red"\n' + MINIMAL, "unknown key 'color'"),
    (
        "typo in a sysctl",
        MINIMAL + '[sysctl]\n"vm.max_map_cnt" = 5\n',
        "does not exist on this kernel",
    ),
    ("escapes /proc/sys", MINIMAL + '[sysctl]\n"../../etc/passwd" = 1\n', "would leave /proc/sys"),
    ("slash escape", MINIMAL + '[sysctl]\n"vm/../../../etc/x" = 1\n', "would leave /proc/sys"),
    (
        "threads-max too big",
        MINIMAL + '[sysctl]\n"kernel.threads-max" = 2000000000\n',
        "out of range",
    ),
    ("pid_max too big", MINIMAL + '[sysctl]\n"kernel.pid_max" = 5000000\n', "out of range"),
    ("pid_max too small", MINIMAL + '[sysctl]\n"kernel.pid_max" = 100\n', "out of range"),
    ("value is a word", MINIMAL + '[sysctl]\n"vm.max_map_count" = "lots"\n', "whole number"),
    ("value is a bool", MINIMAL + '[sysctl]\n"vm.max_map_count" = true\n', "whole number"),
    ("auto where unsized", MINIMAL + '[sysctl]\n"vm.swappiness" = "auto"\n', '"auto" is only for'),
    (
        "exact not a bool",
        MINIMAL + '[sysctl]\n"vm.swappiness" = {value = 1, exact = "yes"}\n',
        "exact",
    ),
    (
        "unknown sysctl option",
        MINIMAL + '[sysctl]\n"vm.swappiness" = {value = 1, mode = "x"}\n',
        "unknown key",
    ),
    ("zero threads", "[target]\nthreads = 0\n", "target.threads"),
    ("no target", 'description = "x"\n', "target.threads"),
    ("bad stack size", MINIMAL + 'stack = "8Q"\n', "target.stack"),
    ("unknown target key", MINIMAL + "cores = 4\n", "unknown key 'target.cores'"),
    ("unknown rlimit", MINIMAL + "[rlimits]\nnprocs = 5\n", "unknown rlimit 'nprocs'"),
    ("negative rlimit", MINIMAL + "[rlimits]\nnproc = -1\n", "rlimits.nproc"),
    ("soft above hard", MINIMAL + "[rlimits]\nnproc = {soft = 10, hard = 5}\n", "above hard"),
    ("probes not a list", 'probes = "threads"\n' + MINIMAL, "array of tables"),
    ("unknown probe", MINIMAL + '[[probes]]\nname = "forks"\n', "probes[0].name"),
    ("zero probe count", MINIMAL + '[[probes]]\nname = "threads"\ncount = 0\n', "probes[0].count"),
    (
        "stack for the maps probe",
        MINIMAL + '[[probes]]\nname = "maps"\nstack = "64K"\n',
        "the maps probe takes no stack size",
    ),
    ("extends a missing profile", 'extends = "nope"\n' + MINIMAL, "no profile named 'nope'"),
    ("extends not a name", "extends = 5\n" + MINIMAL, "extends must be"),
    ("description not text", "description = 5\n" + MINIMAL, "description must be"),
    (
        "sysctl not a table",
        MINIMAL.replace("[target]", "sysctl = 5\n[target]"),
        "[sysctl] must be a table",
    ),
]


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


def state(tree: Tree) -> dict[str, object]:
    snapshots = {}
    if tree.state_dir.exists():
        snapshots = {p.name: p.read_bytes() for p in tree.state_dir.rglob("*") if p.is_file()}
    return {**tree.state(), "state_dir": snapshots}


def assert_refused(
    tree: Tree, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    before = state(tree)
    capsys.readouterr()
    assert run([*tree.options, *args]) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("sysprep: error: ")
    assert message in lines[0]
    assert state(tree) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [(c, m) for _, c, m in BAD_PROFILES],
    ids=[name for name, _, _ in BAD_PROFILES],
)
def test_bad_profile(
    tree: Tree, capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    """A malformed profile: exit 2, one line naming the file and the key."""
    profile = tmp_path / "bad.toml"
    profile.write_text(content)
    assert_refused(
        tree, capsys, ["apply", str(profile), "--no-probe"], ExitCode.BAD_INPUT, message
    )


def test_extends_cycle(tree: Tree, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """a extends b, b extends a: refused, naming the cycle."""
    (tmp_path / "a.toml").write_text(f'extends = "{tmp_path}/b.toml"\n' + MINIMAL)
    (tmp_path / "b.toml").write_text(f'extends = "{tmp_path}/a.toml"\n' + MINIMAL)
    assert_refused(
        tree, capsys, ["apply", str(tmp_path / "a.toml")], ExitCode.BAD_INPUT, "extends cycle"
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["apply", "no-such-profile"], ExitCode.BAD_INPUT, "no profile named 'no-such-profile'"),
        (["apply", "../etc"], ExitCode.BAD_INPUT, "no such file"),
        (["apply", "bad name!"], ExitCode.BAD_INPUT, "invalid profile name"),
        (["apply", "elasticsearch", "--pid", "0"], ExitCode.BAD_INPUT, "invalid pid 0"),
        (
            ["apply", "elasticsearch", "--pid", "999999"],
            ExitCode.BAD_INPUT,
            "no process with pid 999999",
        ),
        (
            ["apply", "elasticsearch", "--pid", "x"],
            ExitCode.BAD_INPUT,
            "invalid --pid 'x': a whole number",
        ),
        (["apply"], ExitCode.BAD_INPUT, "sysprep apply needs PROFILE"),
        (["revert", "no-such-snapshot"], ExitCode.BAD_INPUT, "no snapshot 'no-such-snapshot'"),
        (["revert"], ExitCode.BAD_INPUT, "nothing to revert"),
    ],
)
def test_bad_arguments(
    tree: Tree, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    """Arguments that cannot be used: one line, their exit status, nothing changed."""
    assert_refused(tree, capsys, args, code, message)


def _tamper(tree: Tree, capsys: pytest.CaptureFixture[str], how: str) -> None:
    """Apply elasticsearch, then damage its snapshot in the way *how* names."""
    assert run([*tree.options, "apply", "elasticsearch", "--no-probe"]) == 0
    path = next((tree.state_dir / "snapshots").glob("*.json"))
    document = json.loads(path.read_text())
    if how == "group-writable":
        path.chmod(0o660)
    elif how == "not root's":
        os.chown(path, 65534, 65534)
    elif how == "symlink":
        target = path.with_suffix(".real")
        path.rename(target)
        path.symlink_to(target)
    elif how == "key escapes":
        document["sysctls"][0]["key"] = "../../../etc/shadow"
        path.write_text(json.dumps(document))
    elif how == "foreign file":
        document["files"] = [{"path": "/etc/passwd", "before": None, "after": ""}]
        path.write_text(json.dumps(document))
    elif how == "not JSON":
        path.write_text("{")
    elif how == "future schema":
        document["schema_version"] = 99
        path.write_text(json.dumps(document))
    capsys.readouterr()


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("group-writable", "writable by group or others"),
        ("not root's", "not owned by root"),
        ("symlink", "symlink"),
        ("key escapes", "outside /proc/sys"),
        ("foreign file", "not one sysprep writes"),
        ("not JSON", "not a sysprep snapshot"),
        ("future schema", "schema_version 99"),
    ],
)
def test_tampered_snapshot_is_refused(
    tree: Tree, capsys: pytest.CaptureFixture[str], how: str, message: str
) -> None:
    """revert trusts a snapshot only if root owns it, alone may write it, and it is sane."""
    _tamper(tree, capsys, how)
    assert_refused(tree, capsys, ["revert"], ExitCode.BAD_INPUT, message)


def test_root_with_fewer_capabilities_is_told_what_it_lacks() -> None:
    """Root lacking a capability a process holds (as docker's default root, and this VM's,
    lack CAP_SYS_RESOURCE, which pid 1 holds) cannot read its maps: the one line names the
    capability, not "run as root"."""
    try:
        with open("/proc/1/maps", "rb"):  # noqa: PTH123
            pytest.skip("root here may read pid 1's maps")
    except PermissionError:
        pass
    done = subprocess.run(
        [sys.executable, "-m", "sysprep", "check", "--pid", "1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("sysprep: error: cannot read /proc/1/maps: permission denied; pid 1")
    assert "CAP_SYS_RESOURCE, which this root lacks" in line
    assert "run sysprep as root" not in line
