"""Profiles, plans, snapshots, apply and revert on a fake host tree: no root, no real kernel.

The tree's /proc/sys files stand in for sysctls, its /proc/PID/limits for prlimit(2), its
/etc for the owned files; the real-kernel twins of these tests are in tests/host/.
"""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from sysprep.apply import ApplyFailedError
from sysprep.apply import apply
from sysprep.durable import FileState
from sysprep.environment import INIT_PID_NS
from sysprep.environment import INIT_USER_NS
from sysprep.errors import BadInputError
from sysprep.errors import ConflictError
from sysprep.errors import ExitCode
from sysprep.facts import RLIM_INFINITY
from sysprep.facts import SYSCTL_FILE
from sysprep.host import Host
from sysprep.plan import build_plan
from sysprep.profile import load
from sysprep.render.changes import apply_document
from sysprep.revert import revert
from sysprep.settings import Action
from sysprep.settings.files import FileSetting
from sysprep.settings.rlimit import RlimitSetting
from sysprep.settings.sysctl import SysctlSetting
from sysprep.snapshot import Snapshot
from sysprep.snapshot import SnapshotError
from sysprep.snapshot import all_snapshots
from tests.fakehost import SELF_PID

if TYPE_CHECKING:
    from pathlib import Path

    from tests.fakehost import FakeHost

KEYS = ("kernel.pid_max", "kernel.threads-max", "vm.max_map_count")


@dataclass(frozen=True)
class RefusingHost(Host):
    """A tree whose kernel refuses any write of vm.max_map_count (EINVAL), as a real one
    refuses a value out of its range."""

    def write_sysctl(self, key: str, value: str) -> None:
        if key == "vm.max_map_count":
            raise OSError(errno.EINVAL, f"writing {key} = {value}: Invalid argument")
        super().write_sysctl(key, value)


@pytest.fixture(name="host")
def _host(fake: FakeHost) -> Host:
    """A stock host (pid_max 32768), its /etc in the same tree."""
    fake.set_sysctl("kernel.pid_max", 32768)
    return fake.host


def state(host: Host) -> dict[str, object]:
    """Every file of the tree, byte for byte (sysctls, limits, /etc)."""
    return {
        str(path.relative_to(host.root)): path.read_bytes()
        for path in sorted(host.root.rglob("*"))
        if path.is_file() and "snapshots" not in path.parts
    }


def sysctls(host: Host) -> dict[str, str]:
    return {key: host.sysctl(key) for key in KEYS}


class TestPlan:
    def test_auto_sizes_from_the_target_padded(self, host: Host) -> None:
        """ "auto" asks for what check needs plus 1 %, rounded up to 4096; raise-only."""
        plan = build_plan(load("million-threads", host), host)
        changes = {c.setting.key: c for c in plan.of(SysctlSetting)}
        pid_max = changes["kernel.pid_max"]
        assert pid_max.action is Action.RAISE
        assert int(pid_max.after) % 4096 == 0
        assert 1_000_300 < int(pid_max.after) <= 1_000_300 * 1.01 + 4096

    def test_higher_value_is_kept(self, fake: FakeHost, host: Host) -> None:
        """A value above what the profile asks stays as it is (a distro's 4194304)."""
        fake.set_sysctl("vm.max_map_count", 8_250_342)
        plan = build_plan(load("elasticsearch", host), host)
        (change,) = plan.of(SysctlSetting)
        assert (change.action, change.after) == (Action.KEEP, "8250342")
        assert not plan.changed

    def test_rlimits_of_a_pid_are_raise_only(self, host: Host) -> None:
        """nofile 1024:524288 asked 65535 → 65535:524288; a higher hard limit is kept."""
        plan = build_plan(load("elasticsearch", host), host, pid=SELF_PID)
        changes = {c.setting.key: c for c in plan.of(RlimitSetting)}
        nofile = changes[f"RLIMIT_NOFILE of pid {SELF_PID}"]
        assert (nofile.before, nofile.after) == ((1024, 524288), (65535, 524288))
        assert changes[f"RLIMIT_AS of pid {SELF_PID}"].action is Action.KEEP  # unlimited

    def test_persist_plans_the_drop_ins(self, host: Host) -> None:
        """--persist: sysctl.d for the raised sysctls, limits.d (and systemd) for rlimits."""
        plan = build_plan(load("elasticsearch", host), host, persist=True)
        files = {c.setting.key: c for c in plan.of(FileSetting)}
        assert files["/etc/sysctl.d/90-sysprep.conf"].action is Action.CREATE
        limits = files["/etc/security/limits.d/90-sysprep.conf"].after.data.decode().splitlines()
        # The host's hard nofile (524288) is above the profile's: raise-only keeps it.
        assert limits[1:] == ["* soft nofile 65535", "* hard nofile 524288"]
        assert b"DefaultLimitNOFILE=65535:524288\n" in (
            files["/etc/systemd/system.conf.d/90-sysprep.conf"].after.data
        )

    def test_persisted_rlimits_never_lower_the_hosts(self, fake: FakeHost, host: Host) -> None:
        """Regression: elasticsearch's nproc 4096 was persisted as `* hard nproc 4096`, below
        this host's 96,365 for every login; now an rlimit the host already beats is left out."""
        plan = build_plan(load("elasticsearch", host), host, persist=True)
        files = {c.setting.key: c for c in plan.of(FileSetting)}
        assert b"nproc" not in files["/etc/security/limits.d/90-sysprep.conf"].after.data
        fake.set_limits(RLIMIT_NPROC=(1000, 2000))
        plan = build_plan(load("elasticsearch", host), host, persist=True)
        files = {c.setting.key: c for c in plan.of(FileSetting)}
        limits = files["/etc/security/limits.d/90-sysprep.conf"].after.data.decode()
        assert "* soft nproc 4096\n* hard nproc 4096\n" in limits
        assert any("limits.d's '*' lines do not apply to root" in w for w in plan.warnings)


class TestApplyRevert:
    def test_apply_then_revert_restores_every_byte(self, host: Host, tmp_path: Path) -> None:
        """Sysctls, drop-ins and a process's rlimits change, and revert puts back every byte."""
        start = state(host)
        result = apply(
            host, load("million-threads", host), tmp_path, persist=True, pid=SELF_PID,
            run_probes=False,
        )  # fmt: skip
        assert result.snapshot is not None
        assert int(host.sysctl("kernel.pid_max")) > 1_000_000
        assert host.read_etc("/etc/security/limits.d/90-sysprep.conf").exists
        assert host.rlimit(SELF_PID, "RLIMIT_NPROC") == (2_000_000, 2_000_000)
        assert state(host) != start
        reverted = revert(host, tmp_path, None, force=False)
        assert reverted.snapshot.id == result.snapshot.id
        assert state(host) == start

    def test_snapshot_reads_back_as_the_plan(self, host: Host, tmp_path: Path) -> None:
        """The snapshot on disk holds exactly the changes made, in order, each kind's way."""
        result = apply(
            host, load("million-threads", host), tmp_path, persist=True, pid=SELF_PID,
            run_probes=False,
        )  # fmt: skip
        (loaded,) = all_snapshots(tmp_path, host)
        assert [(c.setting, c.before, c.after) for c in loaded.changes] == [
            (c.setting, c.before, c.after) for c in result.plan.to_make
        ]
        document = json.loads((tmp_path / "snapshots" / f"{loaded.id}.json").read_text())
        assert [e["key"] for e in document["sysctls"]] == list(KEYS)
        assert document["rlimits"][0]["after"] == [2_000_000, 2_000_000]

    def test_a_refused_write_rolls_back_the_earlier_ones(self, host: Host, tmp_path: Path) -> None:
        """The kernel refuses the third sysctl: the first two are put back, nothing stays."""
        refusing = RefusingHost(host.root, glibc=host.glibc)
        start = state(host)
        with pytest.raises(ApplyFailedError, match="Invalid argument; rolled back every change"):
            apply(refusing, load("million-threads", host), tmp_path, run_probes=False)
        assert state(host) == start
        (snapshot,) = all_snapshots(tmp_path, host)
        assert snapshot.state == "rolled-back"

    def test_revert_goes_on_past_a_value_the_kernel_now_refuses(
        self, host: Host, tmp_path: Path
    ) -> None:
        """The kernel refuses one "before" value: it is named with the reason, the rest are
        restored, and the snapshot stays applied for a second revert."""
        before = sysctls(host)
        apply(host, load("million-threads", host), tmp_path, run_probes=False)
        refusing = RefusingHost(host.root, glibc=host.glibc)
        result = revert(refusing, tmp_path, None, force=False)
        assert result.failed == [
            ("vm.max_map_count", "writing vm.max_map_count = 65530: Invalid argument")
        ]
        assert result.restored == ["kernel.threads-max", "kernel.pid_max"]
        assert result.snapshot.state == "applied"
        assert revert(host, tmp_path, None, force=False).restored == ["vm.max_map_count"]
        assert sysctls(host) == before

    def test_drift_refuses_revert_unless_forced(self, host: Host, tmp_path: Path) -> None:
        """Someone changed a value after apply: revert names it; --force restores it."""
        before = sysctls(host)
        apply(host, load("elasticsearch", host), tmp_path, run_probes=False)
        host.write_sysctl("vm.max_map_count", "300000")
        with pytest.raises(ConflictError, match=r"vm\.max_map_count is 300000, apply set 262144"):
            revert(host, tmp_path, None, force=False)
        assert revert(host, tmp_path, None, force=True).restored == ["vm.max_map_count"]
        assert sysctls(host) == before

    def test_rlimits_of_an_exited_process_are_skipped(
        self, fake: FakeHost, host: Host, tmp_path: Path
    ) -> None:
        """The process is gone, and its limits with it: revert restores the rest."""
        fake.add_process(7000, uid=1000)
        apply(host, load("elasticsearch", host), tmp_path, pid=7000, run_probes=False)
        for path in sorted((host.root / "proc/7000").rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        result = revert(host, tmp_path, None, force=False)
        assert result.restored == ["vm.max_map_count"]

    def test_a_reused_pid_is_drift_and_never_touched(
        self, fake: FakeHost, host: Host, tmp_path: Path
    ) -> None:
        """Another process now has the pid: revert refuses (4); --force leaves it alone (1)."""
        fake.add_process(7000, uid=1000)
        apply(host, load("elasticsearch", host), tmp_path, pid=7000, run_probes=False)
        # A new process with pid 7000: its own start time and limits.
        fake.set_start_time(7000, 99999).set_limits(7000, RLIMIT_NOFILE=(1024, 524288))
        with pytest.raises(ConflictError, match="RLIMIT_NOFILE of pid 7000: pid 7000 is now"):
            revert(host, tmp_path, None, force=False)
        result = revert(host, tmp_path, None, force=True)
        assert result.restored == ["vm.max_map_count"]
        assert result.failed == [
            ("RLIMIT_NOFILE of pid 7000", "pid 7000 is now another process; left alone")
        ]
        assert host.rlimit(7000, "RLIMIT_NOFILE") == (1024, 524288)  # the new one's, as it was

    def test_temp_files_a_killed_write_left_are_removed(self, host: Host, tmp_path: Path) -> None:
        """kill -9 between mkstemp and rename leaves .90-sysprep.conf.XXXXXXXX: the next
        apply (or revert) removes sysprep's own, and nothing else."""
        sysctl_d = host.etc_path("/etc/sysctl.d")
        sysctl_d.mkdir(parents=True)
        ours = [sysctl_d / ".90-sysprep.conf.k3x_9Zq1"]
        theirs = [sysctl_d / ".90-sysprep.conf.kept", sysctl_d / ".99-vendor.conf.k3x_9Zq1"]
        snapshots = tmp_path / "snapshots"
        snapshots.mkdir(parents=True)
        ours.append(snapshots / ".20261128T000000.000000-x.json.k3x_9Zq1")
        for path in (*ours, *theirs):
            path.write_text("half-written")
        apply(host, load("elasticsearch", host), tmp_path, run_probes=False)
        assert [path.exists() for path in ours] == [False, False]
        assert [path.exists() for path in theirs] == [True, True]

    def test_a_privileged_container_sets_the_nodes_sysctls(
        self, fake: FakeHost, host: Host, tmp_path: Path
    ) -> None:
        """In a pid namespace, /proc/sys writable and the host's user namespace (a
        privileged pod): max_map_count is the node's, set from here and marked so."""
        fake.set_namespace("pid", 4026532178).set_namespace("user", INIT_USER_NS)
        result = apply(host, load("elasticsearch", host), tmp_path, run_probes=False)
        assert host.sysctl("vm.max_map_count") == "262144"
        assert result.plan.where == {"vm.max_map_count": "node"}
        (entry,) = apply_document(result)["sysctls"]
        assert (entry["key"], entry["where"]) == ("vm.max_map_count", "node")

    @pytest.mark.parametrize("why", ["read-only", "user namespace"])
    def test_an_unprivileged_container_refuses_the_nodes_sysctls(
        self, fake: FakeHost, host: Host, tmp_path: Path, why: str
    ) -> None:
        """/proc/sys mounted read-only, or sysprep in a user namespace: the node's sysctl is
        refused up front, saying why and how (nothing changed); --dry-run says it would."""
        fake.set_namespace("pid", 4026532178)
        if why == "read-only":
            fake.mount_proc_sys_read_only()
            reason = "/proc/sys is read-only here"
        else:
            fake.set_namespace("user", 4026532300)
            reason = "sysprep runs in a user namespace"
        start = state(host)
        with pytest.raises(ApplyFailedError) as refused:
            apply(host, load("elasticsearch", host), tmp_path, run_probes=False)
        assert str(refused.value) == (
            f"vm.max_map_count is the host's, not this container's, and {reason}"
            f"{', whose root cannot set it' if why != 'read-only' else ''}: set it on the host"
            " (sysctl -w vm.max_map_count=262144), or apply from a privileged container in the"
            " host's user namespace (on Kubernetes: deploy/kubernetes, the apply overlay);"
            " nothing was changed"
        )
        assert state(host) == start
        dry = apply(host, load("elasticsearch", host), tmp_path, dry_run=True)
        assert dry.plan.warnings[-1].startswith("apply would refuse: vm.max_map_count is")

    def own_pid_max_profile(self, tmp_path: Path, own: str = "pid_namespace = true") -> Path:
        path = tmp_path / "own-pid-max.toml"
        path.write_text(
            'description = "this pod\'s own pid_max"\n[target]\nthreads = 10\n'
            f'[sysctl]\n"kernel.pid_max" = {{ value = 99999, {own} }}\n'
        )
        return path

    def test_a_pid_namespaces_own_pid_max_only_when_the_profile_says_so(
        self, fake: FakeHost, host: Host, tmp_path: Path
    ) -> None:
        """In a pid namespace of its own (Linux >= 6.14) kernel.pid_max is that namespace's:
        written only for pid_namespace = true, and marked so; without it, refused, naming
        hostPID, nothing changed."""
        fake.set_namespace("pid", 4026532178).set_namespace("user", INIT_USER_NS)
        fake.set_sysctl("kernel.ns_last_pid", 300)
        start = state(host)
        with pytest.raises(ApplyFailedError, match="the node's needs hostPID: true"):
            apply(host, load("million-threads", host), tmp_path, run_probes=False)
        assert state(host) == start
        profile = load(str(self.own_pid_max_profile(tmp_path)), host)
        result = apply(host, profile, tmp_path / "state", run_probes=False)
        assert result.plan.where == {"kernel.pid_max": "pid namespace"}
        assert host.sysctl("kernel.pid_max") == "99999"

    def test_a_pid_namespaces_own_pid_max_is_refused_in_the_hosts(
        self, fake: FakeHost, host: Host, tmp_path: Path
    ) -> None:
        """pid_namespace = true where sysprep runs in the host's pid namespace: its pid_max is
        the host's, never written in the namespace's name."""
        fake.set_namespace("pid", INIT_PID_NS)
        start = state(host)
        profile = load(str(self.own_pid_max_profile(tmp_path)), host)
        with pytest.raises(ApplyFailedError, match="runs in the host's pid namespace here"):
            apply(host, profile, tmp_path / "state", run_probes=False)
        assert state(host) == start

    def test_pid_namespace_must_be_true_or_false(self, host: Host, tmp_path: Path) -> None:
        """A malformed option is bad input, naming the key."""
        path = self.own_pid_max_profile(tmp_path, own='pid_namespace = "yes"')
        with pytest.raises(BadInputError, match="pid_namespace must be true or false"):
            load(str(path), host)

    def test_a_revert_in_another_pid_namespace_leaves_pid_max(
        self, fake: FakeHost, host: Host, tmp_path: Path
    ) -> None:
        """The node's pid_max raised from the host's pid namespace (hostPID), reverted from
        a pod without it: pid_max there is the pod's own, so it is left and named, the rest
        is put back, and the snapshot stays applied for a revert where apply ran."""
        fake.set_namespace("pid", INIT_PID_NS)
        start, pid_max = state(host), host.sysctl("kernel.pid_max")
        apply(host, load("million-threads", host), tmp_path, run_probes=False)
        fake.set_namespace("pid", 4026532178)
        reverted = revert(host, tmp_path, None, force=False)
        assert [key for key, _ in reverted.failed] == ["kernel.pid_max"]
        assert reverted.failed[0][1].endswith("runs in 4026532178: revert where apply ran"
                                              " (hostPID: true)")  # fmt: skip
        assert host.sysctl("kernel.pid_max") != pid_max
        fake.set_namespace("pid", INIT_PID_NS)
        again = revert(host, tmp_path, None, force=False)
        assert again.failed == []
        assert state(host) == start

    def test_probes_cannot_validate_a_tree(self, host: Host, tmp_path: Path) -> None:
        """Probes measure the real kernel: apply to a tree asks for --no-probe, changes nothing."""
        start = state(host)
        with pytest.raises(BadInputError, match="--no-probe"):
            apply(host, load("elasticsearch", host), tmp_path)
        assert state(host) == start


def rlimit_entry(**changed: object) -> dict[str, object]:
    return {"pid": 1, "name": "RLIMIT_NPROC", "before": [1, 1], "after": [2, 2], **changed}


class TestSnapshotEntries:
    @pytest.mark.parametrize(
        ("kind", "entry", "message"),
        [
            ("sysctls", {"key": "../../etc/shadow", "before": "1", "after": "2"}, "outside"),
            ("sysctls", {"key": "vm.swappiness", "before": 1, "after": "2"}, "malformed"),
            ("files", {"path": "/etc/passwd", "before": None, "after": ""}, "not one sysprep"),
            ("files", {"path": SYSCTL_FILE.path, "before": 5, "after": ""}, "base64"),
            ("rlimits", rlimit_entry(pid="1"), "malformed"),
            ("rlimits", rlimit_entry(name="RLIMIT_CORE"), "malformed"),
            ("rlimits", rlimit_entry(before=[1]), "malformed"),
        ],
    )
    def test_a_malformed_entry_is_refused(
        self, host: Host, tmp_path: Path, kind: str, entry: dict[str, object], message: str
    ) -> None:
        """Each kind checks its own entries before revert trusts them."""
        snapshot = Snapshot.new("x", host, ())
        path = snapshot.save(tmp_path)
        document = json.loads(path.read_text())
        document[kind] = [entry]
        path.write_text(json.dumps(document))
        with pytest.raises(SnapshotError, match=message):
            Snapshot.load(path, host)

    def test_a_snapshot_from_before_file_metadata_still_loads(
        self, host: Host, tmp_path: Path
    ) -> None:
        """sysprep 0.1 recorded a file's bytes only: read as a 0644 file of root's."""
        path = Snapshot.new("x", host, ()).save(tmp_path)
        document = json.loads(path.read_text())
        document["files"] = [{"path": SYSCTL_FILE.path, "before": "eA==", "after": "eQ=="}]
        path.write_text(json.dumps(document))
        (change,) = Snapshot.load(path, host).changes
        assert (change.before, change.after) == (
            FileState(b"x", 0o644, 0, 0),
            FileState(b"y", 0o644, 0, 0),
        )

    def test_unlimited_rlimits_round_trip(self, host: Host, tmp_path: Path) -> None:
        """RLIM_INFINITY is kept as getrlimit says it, and reads back the same."""
        change = RlimitSetting("RLIMIT_AS", SELF_PID).change(
            (1 << 30, 1 << 30), (RLIM_INFINITY,) * 2
        )
        path = Snapshot.new("x", host, (change,)).save(tmp_path)
        (loaded,) = Snapshot.load(path, host).changes
        assert (loaded.before, loaded.after) == ((1 << 30, 1 << 30), (RLIM_INFINITY,) * 2)


def test_unit_with_a_profile_without_a_unit_table_says_so(fake: FakeHost) -> None:
    """--unit with a profile that sets nothing of a unit: a warning, not silence."""
    plan = build_plan(load("elasticsearch", fake.host), fake.host, unit="demo")
    assert any("elasticsearch has no [unit] table" in w for w in plan.warnings)


@pytest.mark.parametrize("what", ["a file", "a dangling link"])
def test_a_drop_in_directory_that_is_not_one_is_refused(
    fake: FakeHost, capsys: pytest.CaptureFixture[str], tmp_path: Path, what: str
) -> None:
    """/etc/security/limits.d as a regular file, or a symlink to nothing: one line naming
    it, exit 2, nothing written (no traceback, no bare "File exists")."""
    from sysprep.cli import run

    limits_d = fake.root / "etc/security/limits.d"
    limits_d.parent.mkdir(parents=True)
    if what == "a file":
        limits_d.write_text("not a directory\n")
    else:
        limits_d.symlink_to(fake.root / "nowhere")
    before = {p: p.lstat() for p in fake.root.joinpath("etc").rglob("*")}
    tree = ["--root", str(fake.root), "--etc-root", str(fake.root)]
    code = run([*tree, "--state-dir", str(tmp_path / "s"), "apply", "elasticsearch", "--persist",
                "--no-probe"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT, err
    assert err.count("\n") == 1
    assert "/etc/security/limits.d" in err
    assert {p: p.lstat() for p in fake.root.joinpath("etc").rglob("*")} == before


def test_a_file_removed_by_hand_is_no_drift(fake: FakeHost, tmp_path: Path) -> None:
    """A drop-in apply created and an operator removed since: revert has nothing to put back
    there (it removes the directory apply made), and no drift is claimed."""
    host = fake.host
    state = tmp_path / "state"
    apply(host, load("elasticsearch", host), state, persist=True, run_probes=False)
    (fake.root / SYSCTL_FILE.path.lstrip("/")).unlink()
    result = revert(host, state, None, force=False)
    assert result.failed == []
    assert not (fake.root / "etc/sysctl.d").exists()
