"""apply and revert under failure, on the real kernel: the host is never left half-changed.

Faults are injected with SYSPREP_TEST_FAULT=STEP:WHAT (sysprep/apply.py): at STEP, apply
sends itself signal WHAT, or raises an unexpected error (RAISE). Every test compares the
host (the guarded sysctls and every file under the temp /etc) before and after.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from sysprep.errors import ExitCode
from tests.host.test_apply import Tree

pytestmark = pytest.mark.root

# Three sysctls and, with --persist, two drop-ins: five writes, then a quick probe.
QUICK = """
description = "three sysctls and a quick probe"
[target]
threads = 1000
[sysctl]
"kernel.pid_max" = 65536
"kernel.threads-max" = 250000
"vm.max_map_count" = 131072
[rlimits]
nofile = 4096
[[probes]]
name = "maps"
count = 100000
"""
VETH = "spv0"  # a real link whose per-interface sysctls vanish with it


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    made = Tree(tmp_path)
    (tmp_path / "quick.toml").write_text(QUICK)
    return made


def snapshot_states(tree: Tree) -> list[str]:
    return [
        json.loads(path.read_text())["state"]
        for path in sorted((tree.state_dir / "snapshots").glob("*.json"))
    ]


@pytest.mark.parametrize("what", ["SIGTERM", "SIGINT", "SIGHUP"])
@pytest.mark.parametrize("step", ["after-write-2", "after-write-4"])
def test_a_signal_while_writing_rolls_back(tree: Tree, step: str, what: str) -> None:
    """SIGTERM, SIGINT or SIGHUP mid-apply: every change undone, one line, exit 130."""
    start = tree.state()
    quick = str(tree.etc_root.parent / "quick.toml")
    done = tree.sysprep("apply", quick, "--persist", env={"SYSPREP_TEST_FAULT": f"{step}:{what}"})
    assert done.returncode == ExitCode.INTERRUPTED, done.stderr
    assert done.stderr.strip().splitlines() == [
        "sysprep: error: interrupted: apply rolled back every change"
    ]
    assert tree.state() == start
    assert snapshot_states(tree) == ["rolled-back"]


def test_an_unexpected_error_rolls_back_too(tree: Tree) -> None:
    """Not an OSError: still every change undone before the traceback (exit 70, a bug)."""
    start = tree.state()
    quick = str(tree.etc_root.parent / "quick.toml")
    done = tree.sysprep(
        "apply", quick, "--persist", env={"SYSPREP_TEST_FAULT": "after-write-3:RAISE"}
    )
    assert done.returncode == ExitCode.INTERNAL
    assert "RuntimeError: fault injected at after-write-3" in done.stderr
    assert tree.state() == start
    assert snapshot_states(tree) == ["rolled-back"]


def test_a_signal_after_apply_completed_says_the_changes_stay(tree: Tree) -> None:
    """Too late to undo: exit 130 and say the changes stay and how to revert them."""
    start = tree.state()
    quick = str(tree.etc_root.parent / "quick.toml")
    done = tree.sysprep(
        "apply", quick, "--no-probe", env={"SYSPREP_TEST_FAULT": "after-applied:SIGINT"}
    )
    assert done.returncode == ExitCode.INTERRUPTED
    assert "after apply quick completed: the changes stay" in done.stderr
    assert "`sysprep revert` undoes them" in done.stderr
    assert snapshot_states(tree) == ["applied"]
    assert tree.sysprep("revert").returncode == ExitCode.OK
    assert tree.state() == start


def test_sigterm_during_the_probe_rolls_back(tree: Tree) -> None:
    """A real SIGTERM from outside while the validating probe runs: probe stopped, undone."""
    start = tree.state()
    quick = str(tree.etc_root.parent / "quick.toml")
    process = subprocess.Popen(
        [*tree.command(), "apply", quick], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not psutil.Process(process.pid).children():
        time.sleep(0.002)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == ExitCode.INTERRUPTED, err
    assert err.decode().strip().splitlines() == [
        "sysprep: error: interrupted: apply rolled back every change"
    ]
    assert tree.state() == start
    assert snapshot_states(tree) == ["rolled-back"]


@pytest.fixture
def veth() -> object:
    subprocess.run(["ip", "link", "add", VETH, "type", "veth", "peer", "name", "spv1"], check=True)
    try:
        yield VETH
    finally:
        subprocess.run(["ip", "link", "del", VETH], check=False, capture_output=True)


def test_revert_restores_all_it_can_when_a_sysctl_vanished(tree: Tree, veth: str) -> None:
    """The interface is gone: its sysctl is named, exit 1, and every other one is restored."""
    start = tree.state()
    key = f"net.ipv4.conf.{veth}.forwarding"
    profile = tree.etc_root.parent / "veth.toml"
    profile.write_text(
        f'[target]\nthreads = 10\n[sysctl]\n"vm.max_map_count" = 131072\n'
        f'"{key}" = {{ value = 1, exact = true }}\n"kernel.pid_max" = 65536\n'
    )
    assert tree.sysprep("apply", str(profile)).returncode == ExitCode.OK
    subprocess.run(["ip", "link", "del", veth], check=True)
    done = tree.sysprep("revert")
    assert done.returncode == ExitCode.NOT_READY, done.stderr
    assert f"sysprep: could not restore {key}: it no longer exists" in done.stderr
    assert "kernel.pid_max" in done.stdout
    assert "vm.max_map_count" in done.stdout
    assert tree.state() == start
    assert snapshot_states(tree) == ["applied"]  # a later revert can still finish


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        # A quoted number is a number: "65000" would lower 65530, so raise-only keeps it.
        ('[target]\nthreads = 10\n[sysctl]\n"vm.max_map_count" = "65000"\n', None),
        ('[target]\nthreads = 10\n[sysctl]\n"kernel.pid_max" = "9999999"\n', "[301, 4194304]"),
        (
            '[target]\nthreads = 1_000_000_000\n[sysctl]\n"kernel.pid_max" = "auto"\n',
            "above the kernel's maximum 4,194,304",
        ),
        (
            '[target]\nthreads = 10\n[rlimits]\nnofile = { soft = "unlimited", hard = 100 }\n',
            "soft unlimited is above hard 100",
        ),
        ("[target]\nthreads = 10\n[rlimits]\nnofile = 100_000_000_000_000_000_000\n", "range"),
        ("[target]\nthreads = 10\n[rlimits]\nstack = 1\n", "out of range [16384,"),
    ],
)
def test_numbers_are_checked_as_numbers(tree: Tree, profile: str, message: str | None) -> None:
    """Values are normalised first, then bounds and raise-only apply: exit 2, or no change."""
    start = tree.state()
    path = tree.etc_root.parent / "numbers.toml"
    path.write_text(profile)
    done = tree.sysprep("apply", str(path), "--persist", "--no-probe")
    if message is None:
        assert done.returncode == ExitCode.OK, done.stderr
        assert "nothing to change" in done.stdout
    else:
        assert done.returncode == ExitCode.BAD_INPUT, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert message in done.stderr
    assert tree.state() == start


def _spawn_with_pid(pid: int) -> subprocess.Popen[bytes]:
    """A sleeper that gets *pid*: ns_last_pid set just below it (retried if another task
    takes it first)."""
    for _ in range(20):
        Path("/proc/sys/kernel/ns_last_pid").write_text(f"{pid - 1}\n")
        process = subprocess.Popen(["sleep", "60"])
        if process.pid == pid:
            return process
        process.kill()
        process.wait()
    pytest.skip(f"could not get pid {pid} back: the host is creating tasks too fast")


def test_revert_never_touches_a_process_that_reused_the_pid(tree: Tree) -> None:
    """The process apply raised exits and its pid is handed to another: revert refuses
    (drift, exit 4); --force restores the rest and leaves the new process's limits alone."""
    import resource

    start = tree.state()
    profile = tree.etc_root.parent / "nofile.toml"
    profile.write_text(
        '[target]\nthreads = 10\n[sysctl]\n"vm.max_map_count" = 131072\n'
        "[rlimits]\nnofile = { soft = 4000, hard = 4000 }\n"
    )
    first = subprocess.Popen(["sleep", "60"])
    resource.prlimit(first.pid, resource.RLIMIT_NOFILE, (1024, 8000))
    applied = tree.sysprep("apply", str(profile), "--pid", str(first.pid))
    assert applied.returncode == ExitCode.OK, applied.stderr
    first.kill()
    first.wait()
    second = _spawn_with_pid(first.pid)
    try:
        resource.prlimit(second.pid, resource.RLIMIT_NOFILE, (2000, 8000))
        refused = tree.sysprep("revert")
        assert refused.returncode == ExitCode.CONFLICT, refused.stderr
        assert f"pid {first.pid} is now another process" in refused.stderr
        forced = tree.sysprep("revert", "--force")
        assert forced.returncode == ExitCode.NOT_READY, forced.stderr
        assert "left alone" in forced.stderr
        assert resource.prlimit(second.pid, resource.RLIMIT_NOFILE) == (2000, 8000)
    finally:
        second.kill()
        second.wait()
    assert tree.state() == start


def _links(tree: Tree) -> dict[Path, Path]:
    return {p: p.readlink() for p in tree.etc_root.rglob("*") if p.is_symlink()}


def test_revert_restores_mode_owner_and_symlinks(tree: Tree) -> None:
    """Not only bytes: a 0600 file of uid 65534 comes back so, and a symlink as a symlink."""
    sysctl_file = tree.etc_root / "etc/sysctl.d/90-sysprep.conf"
    sysctl_file.write_text("# an operator's own\n")
    sysctl_file.chmod(0o600)
    os.chown(sysctl_file, 65534, 65534)
    limits_d = tree.etc_root / "etc/security/limits.d"
    limits_d.mkdir(parents=True)
    (limits_d / "90-sysprep.conf").symlink_to("../shared-limits.conf")
    start, links = tree.state(), _links(tree)
    applied = tree.sysprep("apply", "elasticsearch", "--persist", "--no-probe")
    assert applied.returncode == ExitCode.OK, applied.stderr
    assert not (limits_d / "90-sysprep.conf").is_symlink()  # replaced by sysprep's file
    assert tree.sysprep("revert").returncode == ExitCode.OK
    info = sysctl_file.stat()
    assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (0o600, 65534, 65534)
    assert _links(tree) == links
    assert tree.state() == start


def test_revert_removes_the_directories_apply_created(tree: Tree) -> None:
    """/etc/security/limits.d did not exist: apply made it, revert removes it again."""
    assert not (tree.etc_root / "etc/security").exists()
    start = tree.state()
    applied = tree.sysprep("apply", "elasticsearch", "--persist", "--no-probe")
    assert applied.returncode == ExitCode.OK, applied.stderr
    assert (tree.etc_root / "etc/security/limits.d/90-sysprep.conf").is_file()
    assert tree.sysprep("revert").returncode == ExitCode.OK
    assert not (tree.etc_root / "etc/security").exists()
    assert tree.state() == start
