"""Hostile input, generated: profiles, snapshots and arguments an attacker or a hurried operator
would give. Each must end in exit 1 or 2 with exactly one line on stderr, and leave every
sysctl (all of `sysctl -a`) and every file under /etc as it was.

Cases run in-process (sysprep.cli.run) against a temp /etc and state directory: ~0.02 s each.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from sysprep.cli import run
from sysprep.errors import ExitCode
from tests.host.test_apply import Tree

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.root

VALID = '[target]\nthreads = 10\n[sysctl]\n"vm.max_map_count" = 131072\n'


def _profiles() -> list[tuple[str, str]]:
    """(id, profile text): each one wrong in one way."""
    cases = [
        ("toml-unterminated", 'description = "x\n'),
        ("toml-duplicate-key", "[target]\nthreads = 1\nthreads = 2\n"),
        ("toml-bare-junk", "just words\n"),
        ("toml-deep", "x = " + "[" * 3000 + "]" * 3000 + "\n"),
        ("top-unknown", "colour = 1\n" + VALID),
        ("description-int", "description = 5\n" + VALID),
        ("extends-int", "extends = 5\n" + VALID),
        ("extends-missing", 'extends = "no-such-profile"\n' + VALID),
        ("extends-passwd", 'extends = "/etc/passwd"\n' + VALID),
        ("extends-self-dir", 'extends = "../../etc/shadow.toml"\n' + VALID),
        ("target-string", 'target = "x"\n'),
        ("target-missing", '[sysctl]\n"vm.max_map_count" = 131072\n'),
        ("sysctl-array", "sysctl = [1]\n[target]\nthreads = 10\n"),
        ("rlimits-int", "rlimits = 5\n[target]\nthreads = 10\n"),
        ("probes-table", "[target]\nthreads = 10\n[probes]\nname = 'threads'\n"),
        ("probes-not-tables", "probes = [1, 2]\n[target]\nthreads = 10\n"),
    ]
    threads = ("0", "-1", "1.5", "true", '"many"', "1_000_000_000_000_000_000_000_000")
    cases.extend((f"threads-{v}", f"[target]\nthreads = {v}\n") for v in threads)
    stacks = ('"0"', '"1Q"', "-5", '"-1K"', "true")
    cases.extend((f"target-stack-{v}", f"[target]\nthreads = 10\nstack = {v}\n") for v in stacks)
    names = (
        "", ".", "..", "../x", "vm/../../etc", "vm..max_map_count", "/vm.max_map_count",
        "kernel.no_such_sysctl", "vm.drop_caches", "net.ipv4.conf.nosuchif0.forwarding",
        "a" * 300, "vm.max_map_count\n",
    )  # fmt: skip
    cases.extend(
        (f"sysctl-name-{name[:20]!r}", f'[target]\nthreads = 10\n[sysctl]\n"{name}" = 1\n')
        for name in names
    )
    sysctls = (
        ("kernel.pid_max", "-1"), ("kernel.pid_max", "0"), ("kernel.pid_max", '"9999999"'),
        ("kernel.threads-max", "2_000_000_000"), ("vm.max_map_count", "1.5"),
        ("vm.max_map_count", "true"), ("vm.max_map_count", '"abc"'), ("vm.max_map_count", '""'),
        ("vm.max_map_count", '" "'), ("vm.max_map_count", '"1 2 x"'), ("vm.max_map_count", "[1]"),
        ("vm.max_map_count", '{ value = 1, exact = "yes" }'),
        ("vm.max_map_count", "{ value = 1, extra = 1 }"), ("vm.swappiness", '"auto"'),
        ("vm.max_map_count", '"0x10"'), ("vm.max_map_count", "9_223_372_036_854_775_808"),
        ("vm.max_map_count", '"²"'), ("kernel.pid_max", '"4194305"'),
    )  # fmt: skip
    cases.extend(
        (f"sysctl-{key}-{value}", f'[target]\nthreads = 10\n[sysctl]\n"{key}" = {value}\n')
        for key, value in sysctls
    )
    rlimits = (
        ("core", "1"), ("nofile", "-1"), ("nofile", "0"), ("nofile", '"unlimitedX"'),
        ("nofile", "1.5"), ("nofile", "true"), ("nofile", "{ soft = 5, hard = 1 }"),
        ("nofile", '{ soft = "unlimited", hard = 100 }'), ("nofile", "1_000_000_000_000_000_000"),
        ("nofile", "{ soft = 1, hard = 2, extra = 3 }"), ("stack", '"1Q"'), ("stack", "1"),
        ("stack", '{ soft = "1K", hard = "1" }'), ("nproc", '"lots"'), ("as", "-5"),
    )  # fmt: skip
    cases.extend(
        (f"rlimit-{key}-{value}", f"[target]\nthreads = 10\n[rlimits]\n{key} = {value}\n")
        for key, value in rlimits
    )
    units = (
        ("Nope", "1"), ("TasksMax", "0"), ("TasksMax", "-1"), ("TasksMax", "99999999"),
        ("TasksMax", '"lots"'), ("TasksMax", "true"), ("TasksMax", "1.5"),
        ("LimitNOFILE", "3000000000"), ("LimitNOFILE", '"²"'), ("LimitNOFILE", '"1 2"'),
        ("LimitNOFILE", "{ soft = 5, hard = 1 }"), ("LimitNOFILE", "{ soft = 1, extra = 2 }"),
        ("LimitSTACK", '"18446744073709551615"'), ("LimitSTACK", '"1Q"'), ("LimitNPROC", "[1]"),
        ("LimitMEMLOCK", '"auto"'),
    )  # fmt: skip
    cases.extend(
        (f"unit-{key}-{value}", f"[target]\nthreads = 10\n[unit]\n{key} = {value}\n")
        for key, value in units
    )
    probes = (
        'name = "forks"', 'name = "threads"\ncount = 0', 'name = "maps"\nstack = "64K"',
        'name = "threads"\ncount = "x"', 'name = "threads"\nextra = 1', "count = 5",
        'name = "threads"\nstack = "1Q"',
    )  # fmt: skip
    cases.extend(
        (f"probe-{probe[:24]!r}", f"[target]\nthreads = 10\n[[probes]]\n{probe}\n")
        for probe in probes
    )
    return cases


def _snapshot(**changed: object) -> dict[str, object]:
    """A valid snapshot of a change that changed nothing (vm.swappiness 60 to 60)."""
    document: dict[str, object] = {
        "id": "20261128T120000.000000-hostile",
        "profile": "hostile",
        "created": 1.8e9,
        "boot_id": "x",
        "state": "applied",
        "schema_version": 1,
        "sysctls": [{"key": "vm.swappiness", "before": "60", "after": "60"}],
        "files": [],
        "rlimits": [],
    }
    document.update(changed)
    return document


def _snapshots() -> list[tuple[str, object]]:
    """(id, document or raw text) of a snapshot file `revert` must refuse."""
    sysctl = {"key": "vm.swappiness", "before": "60", "after": "60"}
    file = {"path": "/etc/sysctl.d/90-sysprep.conf", "before": None, "after": "eA=="}
    rlimit = {"pid": 1, "name": "RLIMIT_NOFILE", "before": [1, 1], "after": [2, 2]}
    return [
        ("not-json", "{"),
        ("list", "[1, 2]"),
        ("string", '"snapshot"'),
        ("deep", "[" * 100_000 + "]" * 100_000),
        ("future-schema", _snapshot(schema_version=99)),
        ("no-schema", {k: v for k, v in _snapshot().items() if k != "schema_version"}),
        ("bad-state", _snapshot(state="weird")),
        # A list of a kind this sysprep does not know (a later version's): never half-reverted.
        ("unknown-kind", {**_snapshot(), "module_parameters": [{"key": "toy.depth"}]}),
        ("files-dict", _snapshot(files={"a": 1})),
        ("sysctls-dict", _snapshot(sysctls={"a": 1})),
        ("key-escapes", _snapshot(sysctls=[{**sysctl, "key": "../../etc/shadow"}])),
        ("key-int", _snapshot(sysctls=[{**sysctl, "key": 5}])),
        ("before-int", _snapshot(sysctls=[{**sysctl, "before": 60}])),
        ("before-missing", _snapshot(sysctls=[{"key": "vm.swappiness", "after": "60"}])),
        ("foreign-file", _snapshot(files=[{**file, "path": "/etc/passwd"}])),
        ("bad-base64", _snapshot(files=[{**file, "after": "!!!"}])),
        ("base64-int", _snapshot(files=[{**file, "after": 5}])),
        ("state-bad-mode", _snapshot(files=[{**file, "before_state": {"mode": -1}}])),
        (
            "state-escapes",
            _snapshot(
                files=[
                    {
                        **file,
                        "before_state": {
                            "mode": 420,
                            "uid": 0,
                            "gid": 0,
                            "link": None,
                            "missing": ["/etc/../root"],
                        },
                    }
                ]
            ),
        ),
        ("rlimit-unknown", _snapshot(rlimits=[{**rlimit, "name": "RLIMIT_CORE"}])),
        ("rlimit-before-text", _snapshot(rlimits=[{**rlimit, "before": ["a", "b"]}])),
        ("rlimit-pid-text", _snapshot(rlimits=[{**rlimit, "pid": "1"}])),
        ("rlimit-started-text", _snapshot(rlimits=[{**rlimit, "started": "x"}])),
        ("id-escapes", _snapshot(id="../../escaped")),
        ("id-other-file", _snapshot(id="20261128T120000.000000-other")),
    ]


def _arguments() -> list[list[str]]:
    return [
        ["check", "--threads", ""],
        ["check", "--threads", "²"],
        ["check", "--threads", "-1"],
        ["check", "--threads", "0"],
        ["check", "--threads", "1e9"],
        ["check", "--threads", "1 000"],
        ["check", "--stack", ""],
        ["check", "--stack", "1Q"],
        ["check", "--stack", "1"],
        ["check", "--stack", "-5"],
        ["check", "--pid", "0"],
        ["check", "--pid", "-1"],
        ["check", "--pid", "999999999"],
        ["check", "--pid", "2"],  # kthreadd: a kernel thread
        ["check", "--pid", "x"],
        ["check", "--connections", "0"],
        ["check", "--connections", "x"],
        ["check", "--sources", "0", "--connections", "10"],
        ["check", "--sources", "5"],
        ["check", "--profile", "nope"],
        ["check", "--profile", "../etc/passwd"],
        ["check", "--calibrate", "--stack", "1T"],
        ["check", "--no-such-option"],
        ["probe", "nope"],
        ["probe", "threads", "--count", "0"],
        ["probe", "threads", "--count", "4e9"],
        ["probe", "threads", "--count", "9999999999"],
        ["probe", "maps", "--mode", "seed"],
        ["probe", "connections", "--server", "x"],
        ["probe", "connections", "--sources", "0"],
        ["apply", "nope"],
        ["apply", "nope.toml"],
        ["apply", "million-threads", "--pid", "0"],
        ["apply", "million-threads", "--pid", "2"],
        ["apply", "million-threads", "--unit", ""],
        ["apply", "million-threads", "--unit=--host=a.b"],
        ["apply", "million-threads", "--unit", "sk.socket"],
        ["apply", "million-threads", "--unit", "a/b"],
        ["apply", "million-threads", "--unit", "x[/]y"],
        ["apply", "elasticsearch", "--restart"],
        ["check", "--unit", "user.slice"],
        ["check", "--prometheus", "/dev/null"],
        ["check", "--prometheus", "/proc/sys/kernel/pid_max"],
        ["check", "--prometheus", "/no/such/dir/x.prom"],
        ["watch", "--pid", "1", "--interval", "nan"],
        ["watch", "--pid", "1", "--warn", "inf"],
        ["revert", "../../x"],
        ["revert", "20261128T120000.000000-none"],
        ["snapshots", "extra"],
    ]


def _sysctl_a() -> str:
    # The counters that move on their own are not settings: leave them out.
    moving = ("fs.dentry-state", "fs.file-nr", "fs.inode-", "kernel.ns_last_pid", "random.")
    out = subprocess.run(["sysctl", "-a"], capture_output=True, text=True, check=False).stdout
    return "\n".join(line for line in out.splitlines() if not any(m in line for m in moving))


@pytest.fixture(scope="module", autouse=True)
def _every_sysctl_as_it_was() -> Iterator[None]:
    """All of `sysctl -a` before the hostile cases equals all of it after them."""
    before = _sysctl_a()
    yield
    assert _sysctl_a() == before


def _refused(tree: Tree, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    start = tree.state()
    capsys.readouterr()
    code = run([*tree.options, *args])
    err = capsys.readouterr().err
    assert code in (ExitCode.NOT_READY, ExitCode.BAD_INPUT), (code, err)
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("sysprep: error: "), err
    assert tree.state() == start


@pytest.mark.parametrize(("name", "text"), _profiles(), ids=[c[0] for c in _profiles()])
def test_hostile_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str
) -> None:
    tree = Tree(tmp_path)
    profile = tmp_path / "hostile.toml"
    profile.write_text(text)
    _refused(tree, capsys, ["apply", str(profile), "--persist", "--no-probe"])
    assert name


@pytest.mark.parametrize(("name", "content"), _snapshots(), ids=[c[0] for c in _snapshots()])
def test_hostile_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: object
) -> None:
    tree = Tree(tmp_path)
    directory = tree.state_dir / "snapshots"
    directory.mkdir(parents=True, mode=0o700)
    path = directory / "20261128T120000.000000-hostile.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    path.chmod(0o600)
    _refused(tree, capsys, ["revert"])
    assert name


@pytest.mark.parametrize("args", _arguments(), ids=[" ".join(a) for a in _arguments()])
def test_hostile_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    _refused(Tree(tmp_path), capsys, args)


def test_there_are_over_a_hundred() -> None:
    assert len(_profiles()) + len(_snapshots()) + len(_arguments()) >= 100


def test_the_drop_in_path_is_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--persist where /etc/sysctl.d/90-sysprep.conf is a directory: refused, not a crash."""
    tree = Tree(tmp_path)
    (tree.etc_root / "etc/sysctl.d/90-sysprep.conf").mkdir()
    _refused(tree, capsys, ["apply", "elasticsearch", "--persist", "--no-probe"])


def test_a_write_only_sysctl_in_check_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """vm.drop_caches cannot be read: check --profile refuses the profile, not a traceback."""
    tree = Tree(tmp_path)
    profile = tmp_path / "drop.toml"
    profile.write_text('[target]\nthreads = 10\n[sysctl]\n"vm.drop_caches" = 3\n')
    _refused(tree, capsys, ["check", "--profile", str(profile)])


@pytest.mark.parametrize("claim", [2**64 - 1, 1 << 40])
def test_a_running_binary_that_lies_about_its_sections(tmp_path: Path, claim: int) -> None:
    """A static binary whose section-name table claims CLAIM bytes still runs (the kernel
    never reads section headers); check --pid, check --json and explain --pid of it give
    their report, exit 0 or 1, never 70."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    source = tmp_path / "pause.c"
    source.write_text("#include <unistd.h>\nint main(void) { pause(); return 0; }\n")
    binary = tmp_path / "liar"
    built = subprocess.run(["gcc", "-static", "-O", "-o", str(binary), str(source)], check=False)
    if built.returncode != 0:
        pytest.skip("no static glibc (libc6-dev) to link with")
    data = bytearray(binary.read_bytes())
    shoff, shentsize, shstrndx = (
        struct.unpack_from("<Q", data, 0x28)[0],
        *struct.unpack_from("<HxxH", data, 0x3A),
    )
    struct.pack_into("<Q", data, shoff + shstrndx * shentsize + 32, claim)  # its sh_size
    binary.write_bytes(bytes(data))
    process = subprocess.Popen([str(binary)])
    try:
        for args in (["check", "--pid"], ["check", "--json", "--pid"], ["explain", "--pid"]):
            done = subprocess.run(
                [sys.executable, "-m", "sysprep", *args, str(process.pid)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert done.returncode in (0, 1), done.stderr
    finally:
        process.kill()
        process.wait()
