"""apply and revert on the real kernel, with /etc and the state directory in a temp tree.

Every test records the host first (the sysctls apply may touch, and every file under the
temp /etc) and compares it after revert; conftest writes the sysctls back, pass or fail.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from sysprep.cli import run
from sysprep.errors import ExitCode
from tests.conftest import GUARDED_SYSCTLS
from tests.conftest import read_sysctl
from tests.conftest import write_sysctl
from tests.nobody import run_as_nobody

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.root

KEYS = GUARDED_SYSCTLS  # conftest writes them back after every test
# million-threads with small probes: the same sysctls and files, validated in a second.
FAST_PROFILE = """
extends = "million-threads"
description = "million-threads with quick probes"
[[probes]]
name = "threads"
count = 1000
stack = "64K"
"""


class Tree:
    """A temp /etc root and state directory, and the sysprep options that point at them."""

    def __init__(self, base: Path) -> None:
        self.etc_root = base / "root"
        self.state_dir = base / "state"
        (self.etc_root / "etc/sysctl.d").mkdir(parents=True)
        self.fast = base / "fast-million.toml"
        self.fast.write_text(FAST_PROFILE)

    @property
    def options(self) -> list[str]:
        return ["--etc-root", str(self.etc_root), "--state-dir", str(self.state_dir)]

    def state(self) -> dict[str, object]:
        """The sysctls apply may touch, and every file under the temp /etc, byte for byte."""
        files = {
            str(p.relative_to(self.etc_root)): p.read_bytes()
            for p in sorted(self.etc_root.rglob("*"))
            if p.is_file()
        }
        return {"sysctls": {key: read_sysctl(key) for key in KEYS}, "files": files}

    def command(self) -> list[str]:
        """`sysprep` with the options that point at this tree."""
        return [sys.executable, "-m", "sysprep", *self.options]

    def sysprep(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command(), *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **(env or {})},
        )


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


def cli(tree: Tree, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run([*tree.options, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class TestApplyRevert:
    @pytest.mark.parametrize(
        "profile",
        ["million-threads", "elasticsearch", "thread-per-client-100k", "million-connections"],
    )
    def test_shipped_profile_applies_and_reverts_byte_for_byte(
        self, tree: Tree, capsys: pytest.CaptureFixture[str], profile: str
    ) -> None:
        """Each shipped profile raises its sysctls and writes its files; revert undoes all."""
        start = tree.state()
        code, out, _ = cli(tree, capsys, "apply", profile, "--persist", "--no-probe", "--json")
        assert code == ExitCode.OK
        document = json.loads(out)
        assert document["changed"] is True
        for change in document["sysctls"]:
            assert read_sysctl(change["key"]) == change["after"]
            if change["action"] == "raise":  # raise-only never lowers
                assert int(change["after"]) > int(change["before"])
        assert (tree.etc_root / "etc/security/limits.d/90-sysprep.conf").exists()
        assert tree.state() != start
        code, _, err = cli(tree, capsys, "revert")
        assert code == ExitCode.OK, err
        assert tree.state() == start

    def test_million_threads_with_its_probes(
        self, tree: Tree, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The shipped profile's own probes (2 M mappings, 100,000 threads) pass after apply."""
        start = tree.state()
        code, out, err = cli(tree, capsys, "apply", "million-threads", "--json")
        assert code == ExitCode.OK, err
        probes = json.loads(out)["probes"]
        assert [(p["probe"], p["held"], p["stopped_by"]) for p in probes] == [
            ("maps", probes[0]["held"], None),
            ("threads", 100_000, None),
        ]
        assert probes[0]["held"] >= 2_000_000
        assert cli(tree, capsys, "revert")[0] == ExitCode.OK
        assert tree.state() == start

    def test_second_apply_changes_nothing(
        self, tree: Tree, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Applying the same profile twice: the second finds nothing to do and says so."""
        assert cli(tree, capsys, "apply", "million-threads", "--persist", "--no-probe")[0] == 0
        code, out, _ = cli(tree, capsys, "apply", "million-threads", "--persist", "--no-probe")
        assert code == ExitCode.OK
        assert "nothing to change" in out
        snapshots = list((tree.state_dir / "snapshots").glob("*.json"))
        assert len(snapshots) == 1

    def test_raise_only_keeps_a_higher_value(
        self, tree: Tree, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A value already above the profile's (a distro's 1048576) is never lowered."""
        write_sysctl("vm.max_map_count", 1048576)
        code, out, _ = cli(tree, capsys, "apply", "elasticsearch", "--no-probe", "--json")
        assert code == ExitCode.OK
        change = json.loads(out)["sysctls"][0]
        assert (change["action"], change["after"]) == ("keep", "1048576")
        assert read_sysctl("vm.max_map_count") == "1048576"

    def test_dry_run_changes_nothing_and_needs_no_root(self, tree: Tree) -> None:
        """--dry-run prints the plan, even for a non-root user, and touches nothing."""
        start = tree.state()
        completed = run_as_nobody(
            [
                "--etc-root",
                str(tree.etc_root),
                "--state-dir",
                str(tree.state_dir),
                "apply",
                "million-threads",
                "--dry-run",
                "--json",
            ]
        )
        assert completed.returncode == ExitCode.OK, completed.stderr
        assert json.loads(completed.stdout)["dry_run"] is True
        assert tree.state() == start
        assert not tree.state_dir.exists()

    def test_existing_file_is_restored_byte_for_byte(
        self, tree: Tree, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A 90-sysprep.conf someone else wrote keeps every line of theirs through apply, and
        revert puts it back byte for byte."""
        mine = tree.etc_root / "etc/sysctl.d/90-sysprep.conf"
        mine.write_bytes(b"# an operator's own\nvm.swappiness = 10\n\n")
        start = tree.state()
        assert cli(tree, capsys, "apply", "elasticsearch", "--persist", "--no-probe")[0] == 0
        lines = mine.read_text().splitlines()
        assert lines[1:] == [
            "# an operator's own",
            "vm.swappiness = 10",
            "",
            "vm.max_map_count = 262144",
        ]
        assert lines[0].startswith("# Managed by sysprep")
        assert cli(tree, capsys, "revert")[0] == 0
        assert tree.state() == start

    def test_later_file_that_overrides_is_reported(
        self, tree: Tree, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A sysctl.d file sorting after ours that sets the same key would win at boot: warned."""
        (tree.etc_root / "etc/sysctl.d/99-vendor.conf").write_text("vm.max_map_count = 65530\n")
        code, out, _ = cli(
            tree, capsys, "apply", "elasticsearch", "--persist", "--dry-run", "--json"
        )
        assert code == ExitCode.OK
        vendor, ours = "/etc/sysctl.d/99-vendor.conf", "/etc/sysctl.d/90-sysprep.conf"
        first = json.loads(out)["warnings"][0]
        assert first == f"{vendor} sets vm.max_map_count after {ours}"

    def test_pid_rlimits_are_set_and_restored(
        self, tree: Tree, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """--pid raises a running process's rlimits (prlimit); revert puts them back.

        Only the soft limit is raised, within the hard one: this VM refuses to raise hard
        limits, even to root with CAP_SYS_RESOURCE.
        """
        import resource

        profile = tmp_path / "nofile.toml"
        profile.write_text(
            "[target]\nthreads = 10\n[rlimits]\nnofile = { soft = 8000, hard = 8000 }\n"
        )
        sleeper = subprocess.Popen(["sleep", "60"])
        try:
            resource.prlimit(sleeper.pid, resource.RLIMIT_NOFILE, (1024, 10000))
            code, _, err = cli(tree, capsys, "apply", str(profile), "--pid", str(sleeper.pid))
            assert code == ExitCode.OK, err
            assert resource.prlimit(sleeper.pid, resource.RLIMIT_NOFILE) == (8000, 10000)
            assert cli(tree, capsys, "revert")[0] == ExitCode.OK
            assert resource.prlimit(sleeper.pid, resource.RLIMIT_NOFILE) == (1024, 10000)
        finally:
            sleeper.kill()
            sleeper.wait()

    def test_two_profiles_revert_in_order(
        self, tree: Tree, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """elasticsearch then million-threads: revert undoes the last, then the first."""
        start = tree.state()
        assert cli(tree, capsys, "apply", "elasticsearch", "--no-probe")[0] == 0
        after_first = tree.state()
        assert cli(tree, capsys, "apply", "million-threads", "--no-probe")[0] == 0
        assert cli(tree, capsys, "revert")[0] == 0
        assert tree.state() == after_first
        assert cli(tree, capsys, "revert")[0] == 0
        assert tree.state() == start
        _, out, _ = cli(tree, capsys, "snapshots", "--json")
        assert [s["state"] for s in json.loads(out)["snapshots"]] == ["reverted", "reverted"]


class TestSecondApply:
    """A second apply --persist merges into what the first wrote (raise-only), and the two
    revert in either order to the host as it was."""

    LIMITS = "etc/security/limits.d/90-sysprep.conf"
    SYSCTLS = "etc/sysctl.d/90-sysprep.conf"

    def _both(self, tree: Tree, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
        """elasticsearch then million-threads, both --persist; their snapshot ids."""
        ids = []
        for profile in ("elasticsearch", "million-threads"):
            code, out, err = cli(
                tree, capsys, "apply", profile, "--persist", "--no-probe", "--json"
            )
            assert code == ExitCode.OK, err
            ids.append(json.loads(out)["snapshot"])
        return ids[0], ids[1]

    def test_the_first_applys_lines_stay(
        self, tree: Tree, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """nofile 65535 (elasticsearch's) stays beside million-threads' nproc and stack;
        max_map_count takes million-threads' higher value, in place."""
        self._both(tree, capsys)
        limits = (tree.etc_root / self.LIMITS).read_text().splitlines()
        assert {"* soft nofile 65535", "* hard nofile 65535", "* soft nproc 2000000"} <= set(
            limits
        )
        sysctls = (tree.etc_root / self.SYSCTLS).read_text().splitlines()
        (maps,) = [line for line in sysctls if line.startswith("vm.max_map_count")]
        assert int(maps.split("=")[1]) == int(read_sysctl("vm.max_map_count")) > 262144

    def test_revert_in_order(self, tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
        """Newest first: each revert puts back exactly what its apply found."""
        start = tree.state()
        assert cli(tree, capsys, "apply", "elasticsearch", "--persist", "--no-probe")[0] == 0
        after_first = tree.state()
        assert cli(tree, capsys, "apply", "million-threads", "--persist", "--no-probe")[0] == 0
        assert cli(tree, capsys, "revert")[0] == 0
        assert tree.state() == after_first
        assert cli(tree, capsys, "revert")[0] == 0
        assert tree.state() == start

    def test_revert_the_first_then_the_second(
        self, tree: Tree, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Oldest first (revert ID): elasticsearch's own lines go, what million-threads
        raised again stays and is handed over; reverting million-threads then leaves the
        host as it was before both."""
        start = tree.state()
        first, _ = self._both(tree, capsys)
        tuned_maps = read_sysctl("vm.max_map_count")
        code, out, err = cli(tree, capsys, "revert", first, "--json")
        assert code == ExitCode.OK, err
        document = json.loads(out)
        assert "vm.max_map_count" in document["handed_over"]
        assert read_sysctl("vm.max_map_count") == tuned_maps  # million-threads still applied
        limits = (tree.etc_root / self.LIMITS).read_text()
        assert "nofile" not in limits
        assert "* soft nproc 2000000" in limits
        code, _, err = cli(tree, capsys, "revert")
        assert code == ExitCode.OK, err
        assert tree.state() == start


class TestFailures:
    def test_kernel_refusing_a_write_rolls_back(
        self, tree: Tree, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """vm.swappiness = 500 passes validation (no known bound) but the kernel refuses it:
        the pid_max written before it is rolled back."""
        profile = tmp_path / "refused.toml"
        profile.write_text(
            '[target]\nthreads = 10\n[sysctl]\n"kernel.pid_max" = 100000\n"vm.swappiness" = 500\n'
        )
        start = tree.state()
        code, _, err = cli(tree, capsys, "apply", str(profile), "--no-probe")
        assert code == ExitCode.NOT_READY
        assert "rolled back every change" in err
        assert len(err.strip().splitlines()) == 1
        assert tree.state() == start
        snapshot = next((tree.state_dir / "snapshots").glob("*.json"))
        assert json.loads(snapshot.read_text())["state"] == "rolled-back"

    def test_failing_probe_rolls_back(
        self, tree: Tree, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A probe that cannot hold its count (pid_max set exactly, too low) undoes the apply."""
        profile = tmp_path / "too-small.toml"
        profile.write_text(
            '[target]\nthreads = 10\n[sysctl]\n"kernel.pid_max" = {value = 6000, exact = true}\n'
            '[[probes]]\nname = "threads"\ncount = 20000\nstack = "64K"\n'
        )
        start = tree.state()
        code, _, err = cli(tree, capsys, "apply", str(profile))
        assert code == ExitCode.NOT_READY
        assert "stopped by kernel.pid_max" in err
        assert tree.state() == start

    def test_drift_refuses_revert_unless_forced(
        self, tree: Tree, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Someone changed a value after apply: revert names it and exits 4; --force restores."""
        start = tree.state()
        assert cli(tree, capsys, "apply", "elasticsearch", "--no-probe")[0] == 0
        write_sysctl("vm.max_map_count", 300000)
        code, _, err = cli(tree, capsys, "revert")
        assert code == ExitCode.CONFLICT
        assert "vm.max_map_count is 300000, apply set 262144" in err
        assert read_sysctl("vm.max_map_count") == "300000"
        assert cli(tree, capsys, "revert", "--force")[0] == ExitCode.OK
        assert tree.state() == start

    def test_lock_held_is_a_conflict(self, tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
        """A second apply while one holds the lock exits 4 and changes nothing."""
        tree.state_dir.mkdir(mode=0o700)
        (tree.state_dir / "snapshots").mkdir(mode=0o700)
        start = tree.state()
        fd = os.open(tree.state_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            code, _, err = cli(tree, capsys, "apply", "elasticsearch", "--no-probe")
        finally:
            os.close(fd)
        assert code == ExitCode.CONFLICT
        assert "is held" in err
        assert tree.state() == start

    def test_non_root_apply_and_revert_need_root(self, tree: Tree) -> None:
        """As uid 65534: apply and revert exit 3 with one line, and nothing changes."""
        start = tree.state()
        options = ["--etc-root", str(tree.etc_root), "--state-dir", str(tree.state_dir)]
        for args in (
            ["apply", "million-threads", "--no-probe"],
            ["revert"],
            ["--root", "//", "apply", "elasticsearch", "--no-probe"],  # the live root, spelt so
            ["--root", "/.", "apply", "elasticsearch", "--no-probe"],
        ):
            completed = run_as_nobody([*options, *args])
            assert completed.returncode == ExitCode.NEEDS_ROOT, completed.stderr
            assert len(completed.stderr.strip().splitlines()) == 1
            assert "run it as root" in completed.stderr
        assert tree.state() == start

    def test_after_apply_a_normal_user_still_checks(self, world_readable_dir: Path) -> None:
        """Regression: after an apply made the state directory root's (0700), uid 65534's
        check still works, apply, revert and snapshots exit 3, and none says "not readable"."""
        tree = Tree(world_readable_dir)
        applied = tree.sysprep("apply", "million-threads", "--no-probe")
        assert applied.returncode == ExitCode.OK, applied.stderr
        assert tree.state_dir.stat().st_mode & 0o777 == 0o700
        options = ["--etc-root", str(tree.etc_root), "--state-dir", str(tree.state_dir)]
        checked = run_as_nobody([*options, "check", "--json"])
        assert checked.returncode in (ExitCode.OK, ExitCode.NOT_READY), checked.stderr
        assert json.loads(checked.stdout)["limits"]
        for args in (["apply", "million-threads"], ["revert"], ["snapshots"]):
            refused = run_as_nobody([*options, *args])
            assert refused.returncode == ExitCode.NEEDS_ROOT, (args, refused.stderr)
            assert len(refused.stderr.strip().splitlines()) == 1
            assert "root" in refused.stderr
        assert tree.sysprep("revert").returncode == ExitCode.OK


STEPS = [
    "after-lock",
    "after-snapshot",
    "after-write-1",
    "after-write-2",
    "after-write-3",
    "after-write-4",  # the sysctl.d drop-in
    "after-write-5",  # the limits.d drop-in
    "during-probe",
]


@pytest.mark.parametrize("step", STEPS)
def test_kill_9_at_each_step_then_revert_restores(tree: Tree, step: str) -> None:
    """SIGKILL at each step of apply; `sysprep revert` then brings the host back exactly."""
    start = tree.state()
    killed = tree.sysprep(
        "apply", str(tree.fast), "--persist", env={"SYSPREP_TEST_FAULT": f"{step}:SIGKILL"}
    )
    assert killed.returncode == -9, killed.stderr
    reverted = tree.sysprep("revert")
    if step == "after-lock":  # killed before the snapshot: nothing was changed, nothing to undo
        assert reverted.returncode == ExitCode.BAD_INPUT
        assert "nothing to revert" in reverted.stderr
    else:
        assert reverted.returncode == ExitCode.OK, reverted.stderr
    assert tree.state() == start


def test_a_killed_apply_never_lets_revert_undo_the_one_before(tree: Tree) -> None:
    """apply elasticsearch, then million-threads killed while it plans: a plain revert says
    the last apply was interrupted before any change and names the earlier one (with its
    time), changing nothing; `revert ID` of that one, and only then, undoes it."""
    start = tree.state()
    first = tree.sysprep("apply", "elasticsearch", "--no-probe", "--json")
    assert first.returncode == ExitCode.OK, first.stderr
    snapshot = json.loads(first.stdout)["snapshot"]
    tuned = tree.state()
    killed = tree.sysprep(
        "apply", str(tree.fast), "--no-probe", env={"SYSPREP_TEST_FAULT": "after-lock:SIGKILL"}
    )
    assert killed.returncode == -9
    refused = tree.sysprep("revert")
    assert refused.returncode == ExitCode.BAD_INPUT
    (line,) = refused.stderr.strip().splitlines()
    assert "nothing to revert: the last apply (fast-million" in line
    assert f"`sysprep revert {snapshot}` reverts the one before it (elasticsearch, applied" in line
    assert tree.state() == tuned
    listed = json.loads(tree.sysprep("snapshots", "--json").stdout)["snapshots"]
    assert [s["state"] for s in listed] == ["applied", "planning"]
    reverted = tree.sysprep("revert", snapshot)
    assert reverted.returncode == ExitCode.OK, reverted.stderr
    assert reverted.stdout.startswith("reverted elasticsearch, applied 2")
    assert tree.state() == start
