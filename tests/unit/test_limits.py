"""Each limit on fake hosts: what it reads, the threads it allows, and the fix it gives."""

from __future__ import annotations

from sysprep.capacity import check
from sysprep.limits.base import Status
from sysprep.limits.base import Target
from sysprep.limits.cgroup import PidsMax
from sysprep.limits.inspection import Inspection
from sysprep.limits.memory import AddressSpace
from sysprep.limits.memory import CommitLimit
from sysprep.limits.memory import MemAvailable
from sysprep.limits.memory import MemoryCgroup
from sysprep.limits.memory import estimate_cost
from sysprep.limits.rlimit import AddressSpace as RlimitAS
from sysprep.limits.rlimit import Data
from sysprep.limits.rlimit import Nproc
from sysprep.limits.rlimit import Stack
from sysprep.limits.sysctl import MaxMapCount
from sysprep.limits.sysctl import PidMax
from sysprep.limits.sysctl import ThreadsMax
from tests.fakehost import GIB
from tests.fakehost import KIB
from tests.fakehost import MIB
from tests.fakehost import SELF_PID
from tests.fakehost import FakeHost

MILLION = Target(threads=1_000_000)


C_AT_START = 24  # mappings of a small C program at start (runtimes._BASELINE_MAPS)


def inspect(fake: FakeHost, target: Target = MILLION) -> Inspection:
    return Inspection(fake.host, target)


class TestThreadsMax:
    def test_allows_threads_max_minus_every_task(self, fake: FakeHost) -> None:
        """Headroom is threads-max minus the task count of /proc/loadavg."""
        fake.set_sysctl("kernel.threads-max", 5000)
        reading = ThreadsMax().read(inspect(fake))
        tasks = fake.host.tasks_total()
        assert (reading.current, reading.in_use, reading.allows) == (5000, tasks, 5000 - tasks)
        assert reading.status is Status.FAILS

    def test_fix_is_sized_from_the_target(self, fake: FakeHost) -> None:
        """The fix raises threads-max to the tasks in use plus the target."""
        fake.set_sysctl("kernel.threads-max", 5000)
        reading = ThreadsMax().read(inspect(fake))
        assert reading.fix is not None
        assert reading.fix.value == fake.host.tasks_total() + 1_000_000
        assert reading.fix.now == f"sysctl -w kernel.threads-max={reading.fix.value}"
        assert "/etc/sysctl.d/" in (reading.fix.persist or "")

    def test_ok_reading_carries_no_fix(self, fake: FakeHost) -> None:
        """A limit that allows the target needs nothing done."""
        reading = ThreadsMax().read(inspect(fake, Target(threads=100)))
        assert reading.status is Status.OK
        assert reading.fix is None


class TestPidMax:
    def test_pids_come_from_300_up(self, fake: FakeHost) -> None:
        """Usable pids are [300, pid_max) minus the tids already in that range."""
        fake.set_sysctl("kernel.pid_max", 32768)
        reading = PidMax().read(inspect(fake))
        # tids 350, 900 and 4242 (self) are in range; 1, 2, 3 are below 300.
        assert reading.in_use == 3
        assert reading.allows == 32768 - 300 - 3

    def test_threads_count_one_pid_each(self, fake: FakeHost) -> None:
        """Every thread of a process holds a pid of its own."""
        fake.set_sysctl("kernel.pid_max", 32768).add_process(5000, uid=0, threads=400)
        assert PidMax().read(inspect(fake)).in_use == 3 + 400

    def test_tids_above_pid_max_do_not_count(self, fake: FakeHost) -> None:
        """A lowered pid_max leaves older, larger pids outside the range it hands out."""
        fake.set_sysctl("kernel.pid_max", 1000)
        assert PidMax().read(inspect(fake)).in_use == 2  # 350 and 900; 4242 is above

    def test_hidden_tasks_are_assumed_in_range(self, fake: FakeHost) -> None:
        """With hidepid, tasks in /proc/loadavg but not in /proc still hold pids."""
        fake.set_sysctl("kernel.pid_max", 32768).add_tasks(50)
        assert PidMax().read(inspect(fake)).in_use == 3 + 50

    def test_fix_caps_at_the_64_bit_limit(self, fake: FakeHost) -> None:
        """pid_max cannot pass 4194304: the fix raises it that far, and says the target is
        past it, and how far to lower it."""
        fake.set_sysctl("kernel.pid_max", 32768)
        reading = PidMax().read(inspect(fake, Target(threads=5_000_000)))
        assert reading.fix is not None
        assert reading.fix.value == 4194304
        assert reading.fix.now == (
            "sysctl -w kernel.pid_max=4194304 (the maximum); still, 5,000,303 is past the"
            " kernel's maximum of 4,194,304: lower the target to 4,194,001 or fewer"
        )

    def test_at_the_maximum_no_fix_that_changes_nothing(self, fake: FakeHost) -> None:
        """Regression (issue "first hour"): with pid_max already 4194304, check printed
        `sysctl -w kernel.pid_max=4194304`, which changes nothing. Now: no command, the
        maximum named, and the most the target can be."""
        fake.set_sysctl("kernel.pid_max", 4194304)
        reading = PidMax().read(inspect(fake, Target(threads=5_000_000)))
        assert reading.fix is not None
        assert reading.fix.value is None
        assert reading.fix.now == (
            "none: kernel.pid_max is at the kernel's maximum already; 5,000,303 is past the"
            " kernel's maximum of 4,194,304: lower the target to 4,194,001 or fewer"
        )
        assert "sysctl -w" not in reading.fix.now

    def test_the_note_says_why_in_use_is_below_threads_max(self, fake: FakeHost) -> None:
        """Tasks with pids below 300 (kernel threads) count for threads-max, not here."""
        fake.set_sysctl("kernel.pid_max", 32768)
        reading = PidMax().read(inspect(fake))
        assert reading.note == (
            "in use counts pids in [300, pid_max): 3 tasks hold pids below 300 (kernel threads)"
        )


class TestMaxMapCount:
    def test_two_mappings_per_thread_on_older_glibc(self, fake: FakeHost) -> None:
        """glibc ≤ 2.41 maps a PROT_NONE guard and the stack: two mappings per thread.

        Without --pid the process is a C program yet to start: its 24 mappings at start,
        not sysprep's own 120.
        """
        fake.set_sysctl("vm.max_map_count", 65530)
        reading = MaxMapCount().read(inspect(fake))
        assert reading.in_use == C_AT_START
        assert reading.allows == (65530 - C_AT_START) // 2
        assert reading.needed == C_AT_START + 2 * 1_000_000

    def test_one_mapping_with_madvise_guards(self, fake: FakeHost) -> None:
        """glibc ≥ 2.42 on Linux ≥ 6.13 installs the guard with madvise: one mapping."""
        fake.glibc = "2.42"
        assert MaxMapCount().read(inspect(fake)).allows == 65530 - C_AT_START

    def test_madvise_guards_need_a_new_kernel_too(self, fake: FakeHost) -> None:
        """glibc 2.42 falls back to a PROT_NONE guard on kernels before 6.13."""
        fake.glibc = "2.42"
        fake.set_sysctl("kernel.osrelease", "6.12.9")
        assert MaxMapCount().read(inspect(fake)).allows == (65530 - C_AT_START) // 2

    def test_judges_the_given_pid(self, fake: FakeHost) -> None:
        """--pid counts the mappings of that process, not sysprep's."""
        fake.add_process(7000, uid=1000).set_maps(7000, count=60000)
        reading = MaxMapCount().read(inspect(fake, Target(threads=10, pid=7000)))
        assert reading.allows == (65530 - 60000) // 2


class TestNproc:
    def test_counts_threads_of_the_real_uid_host_wide(self, fake: FakeHost) -> None:
        """A non-root caller: every task of its uid, threads included, counts."""
        fake.add_process(6000, uid=1000, threads=30).add_process(6100, uid=1001, threads=9)
        fake.set_limits(RLIMIT_NPROC=(4096, None))  # a hard limit this user may raise to
        reading = Nproc().read(inspect(fake))
        assert reading.in_use == 1 + 30  # sysprep itself and the 30 threads of pid 6000
        assert reading.allows == 4096 - 31
        assert reading.fix is not None
        assert reading.fix.now.startswith("ulimit -u ")
        assert "limits.d" in (reading.fix.persist or "")

    def test_root_is_exempt(self, fake: FakeHost) -> None:
        """Global root never meets RLIMIT_NPROC (kernel/fork.c)."""
        fake.add_process(7000, uid=0).set_limits(7000, RLIMIT_NPROC=(10, 10))
        reading = Nproc().read(inspect(fake, Target(threads=100, pid=7000)))
        assert reading.allows is None
        assert reading.status is Status.OK
        assert reading.note == "root is exempt"

    def test_cap_sys_resource_is_exempt(self, fake: FakeHost) -> None:
        """A non-root process with CAP_SYS_RESOURCE is exempt too."""
        fake.add_process(7000, uid=1000, caps=1 << 24).set_limits(7000, RLIMIT_NPROC=(10, 10))
        assert Nproc().read(inspect(fake, Target(threads=100, pid=7000))).allows is None

    def test_fix_for_a_pid_uses_prlimit(self, fake: FakeHost) -> None:
        """A running process is fixed with prlimit on its pid."""
        fake.add_process(7000, uid=1000).set_limits(7000, RLIMIT_NPROC=(100, None))
        reading = Nproc().read(inspect(fake, Target(threads=1000, pid=7000)))
        assert reading.fix is not None
        assert reading.fix.now == f"prlimit --pid 7000 --nproc={reading.needed}"

    def test_past_the_hard_limit_a_user_is_told_it_takes_root(self, fake: FakeHost) -> None:
        """Regression (issue "first hour"): a normal user with hard nproc 4,096 was told
        `ulimit -u 1000031 ... takes effect: now`, which that shell cannot do. The fix names
        the hard limit, who may raise it, the most this shell reaches, and the drop-ins."""
        fake.set_limits(RLIMIT_NPROC=(4096, 4096))
        reading = Nproc().read(inspect(fake))
        assert reading.fix is not None
        assert reading.fix.now == (
            "past the hard limit 4,096, which needs root with CAP_SYS_RESOURCE: as that root,"
            f" ulimit -u {reading.needed} (in the shell that starts the program); as this user,"
            " the most is 4,096 (ulimit -u 4096)"
        )
        assert reading.fix.takes_effect.startswith("when run as root; limits.d at next login")


class TestPidsCgroup:
    def test_limit_on_an_ancestor_binds(self, fake: FakeHost) -> None:
        """cgroup v2: a TasksMax on the user slice bounds the session scope below it."""
        slice_ = "user.slice/user-1000.slice"
        fake.set_cgroup_file(f"{slice_}/pids.max", 10813).set_cgroup_file(
            f"{slice_}/pids.current", 213
        )
        fake.set_cgroup_file(f"{slice_}/session-1.scope/pids.max", 50000)
        reading = PidsMax().read(inspect(fake))
        assert (reading.current, reading.in_use, reading.allows) == (10813, 213, 10600)
        assert reading.note.startswith(f"/sys/fs/cgroup/{slice_}: this login's user slice")

    def test_systemd_unit_fix_uses_tasks_max(self, fake: FakeHost) -> None:
        """Where systemd runs, the fix is the unit's TasksMax."""
        fake.set_cgroup_file("user.slice/user-1000.slice/pids.max", 10813)
        reading = PidsMax().read(inspect(fake))
        assert reading.fix is not None
        assert reading.fix.now == (
            f"systemctl set-property --runtime user-1000.slice TasksMax={1 + 1_000_000}"
        )

    def test_the_logins_user_slice_is_named(self, fake: FakeHost) -> None:
        """From a login shell, user-UID.slice's TasksMax (33% by default) binds: said so, and
        the fix is the user-.slice.d drop-in for every user."""
        fake.set_cgroup_file("user.slice/user-1000.slice/pids.max", 10813)
        reading = PidsMax().read(inspect(fake))
        assert reading.note == (
            "/sys/fs/cgroup/user.slice/user-1000.slice: this login's user slice (systemd gives"
            " every user TasksMax=33% of the system's tasks by default)"
        )
        assert reading.fix is not None
        assert reading.fix.persist is not None
        assert "/etc/systemd/system/user-.slice.d/90-sysprep.conf" in reading.fix.persist

    def test_v1_hierarchy_without_systemd(self, fake: FakeHost) -> None:
        """cgroup v1 (a container runtime's cgroup): the fix writes pids.max itself."""
        fake.use_cgroup_v1("/docker/abc123")
        fake.set_cgroup_file("pids/docker/abc123/pids.max", 4096)
        fake.set_cgroup_file("pids/docker/abc123/pids.current", 96)
        reading = PidsMax().read(inspect(fake))
        assert reading.allows == 4000
        assert reading.fix is not None
        assert reading.fix.now == "echo 1000096 > /sys/fs/cgroup/pids/docker/abc123/pids.max"

    def test_no_limit_anywhere(self, fake: FakeHost) -> None:
        """ "max" on every level cannot bind."""
        reading = PidsMax().read(inspect(fake))
        assert (reading.allows, reading.status) == (None, Status.OK)

    def test_controller_not_enabled(self, fake: FakeHost) -> None:
        """A v2 hierarchy without the pids controller cannot bind either."""
        fake.use_cgroup_v2("/user.slice", controllers="cpu memory")
        reading = PidsMax().read(inspect(fake))
        assert (reading.allows, reading.note) == (None, "no pids controller")

    def test_levels_without_pids_enabled_have_no_limit(self, fake: FakeHost) -> None:
        """Regression (16-core cgroup v2 host): pids is in the root's cgroup.controllers but
        not enabled below it, so the process's levels have no pids.max: no limit, not unknown."""
        fake.use_cgroup_v2(
            "/process_api/b029e963",
            controllers="cpuset cpu io memory hugetlb pids",
            enabled="cpuset cpu io memory hugetlb",
        )
        reading = PidsMax().read(inspect(fake))
        assert (reading.status, reading.allows) == (Status.OK, None)
        assert reading.note == (
            "no limit on any level; pids not enabled on"
            " /sys/fs/cgroup/process_api/b029e963, /sys/fs/cgroup/process_api"
        )

    def test_an_ancestor_with_pids_still_binds(self, fake: FakeHost) -> None:
        """Only the deeper levels lack pids.max; the level that has it still counts."""
        fake.use_cgroup_v2("/process_api/b029e963", enabled="cpu memory")
        fake.set_cgroup_file("process_api/pids.max", 5000)
        fake.set_cgroup_file("process_api/pids.current", 40)
        reading = PidsMax().read(inspect(fake))
        assert (reading.current, reading.allows) == (5000, 4960)
        assert reading.note == "/sys/fs/cgroup/process_api"

    def test_unreadable_pids_max_stays_unknown(self, fake: FakeHost) -> None:
        """A pids.max that is there but cannot be read is unknown, not "no limit".

        (A directory in its place: EISDIR stands for EACCES, which root, running the suite,
        never gets.)
        """
        path = fake.root / "sys/fs/cgroup/user.slice/pids.max"
        path.unlink()
        path.mkdir()
        result = check(fake.host, Target(threads=10))
        reading = next(r for r in result.readings if r.name == "pids.max")
        assert reading.status is Status.UNKNOWN
        assert "Is a directory" in reading.note
        assert not result.ready

    def test_memory_levels_without_the_controller_have_no_limit(self, fake: FakeHost) -> None:
        """The memory cgroup: the same host, memory not enabled below the root either."""
        fake.use_cgroup_v2("/process_api/b029e963", enabled="cpu")
        reading = MemoryCgroup().read(inspect(fake))
        assert (reading.status, reading.allows) == (Status.OK, None)

    def test_ready_after_tuning_on_that_host(self, fake: FakeHost) -> None:
        """On that host laid out in a tree, check --profile million-threads can be ready."""
        fake.use_cgroup_v2("/process_api/b029e963", enabled="cpu").set_meminfo(
            MemTotal=125 * GIB // 1024, MemAvailable=120 * GIB // 1024
        )
        for key, value in (
            ("kernel.threads-max", 1100000),
            ("kernel.pid_max", 4194304),
            ("vm.max_map_count", 2100000),
        ):
            fake.set_sysctl(key, value)
        fake.set_limits(RLIMIT_STACK=(256 * KIB, None), RLIMIT_NPROC=(None, None))
        result = check(fake.host, Target(threads=1_000_000))
        assert result.unknown == ()
        assert result.ready, [r for r in result.readings if r.status is not Status.OK]


class TestMemory:
    def test_x86_64_estimate_is_about_35_kib(self, fake: FakeHost) -> None:
        """16 KiB kernel stack + 4 KiB page tables + slab + two user pages (DESIGN.md)."""
        cost = estimate_cost(inspect(fake))
        assert (cost.kernel_stack, cost.page_tables, cost.rss) == (16 * KIB, 4 * KIB, 8 * KIB)
        assert 34 * KIB <= cost.total <= 37 * KIB

    def test_arm64_64k_pages(self, fake: FakeHost) -> None:
        """64K-page arm64: 64 KiB kernel stacks and 64 KiB user pages."""
        fake.set_sysctl("kernel.arch", "aarch64").set_kernel_stack(64 * KIB).set_page_size(
            64 * KIB
        )
        cost = estimate_cost(inspect(fake))
        assert (cost.kernel_stack, cost.rss) == (64 * KIB, 128 * KIB)

    def test_small_stacks_share_page_tables(self, fake: FakeHost) -> None:
        """One PTE page maps 2 MiB: 64 KiB stacks share it 31 ways."""
        cost = estimate_cost(inspect(fake, Target(threads=1, stack_bytes=64 * KIB)))
        assert cost.page_tables == 4096 * (68 * KIB) // (2 * MIB)

    def test_mem_available_keeps_a_floor(self, fake: FakeHost) -> None:
        """Threads may use MemAvailable down to 5 % of RAM (at least 512 MiB), no further."""
        fake.set_meminfo(MemAvailable=4 * GIB // KIB)
        inspection = inspect(fake)
        reading = MemAvailable().read(inspection)
        floor = 24 * GIB // 20
        assert reading.allows == (4 * GIB - floor) // estimate_cost(inspection).total

    def test_memory_cgroup_limit_binds(self, fake: FakeHost) -> None:
        """A memory.max on the slice bounds threads: kernel memory is charged to it."""
        fake.set_cgroup_file("user.slice/memory.max", 2 * GIB)
        fake.set_cgroup_file("user.slice/memory.current", GIB)
        inspection = inspect(fake)
        reading = MemoryCgroup().read(inspection)
        assert reading.allows == GIB // estimate_cost(inspection).total

    def test_v1_unlimited_memory_cgroup(self, fake: FakeHost) -> None:
        """v1's PAGE_COUNTER_MAX means no limit."""
        fake.use_cgroup_v1("/process_api/abc")
        assert MemoryCgroup().read(inspect(fake)).allows is None


class TestCommitLimit:
    def test_only_binds_under_overcommit_2(self, fake: FakeHost) -> None:
        """Modes 0 and 1 never refuse a thread stack."""
        assert CommitLimit().read(inspect(fake)).allows is None

    def test_mode_2_charges_each_stack(self, fake: FakeHost) -> None:
        """Mode 2: (CommitLimit - Committed_AS - reserves) / stack; admin reserve if non-root."""
        fake.set_sysctl("vm.overcommit_memory", 2)
        reading = CommitLimit().read(inspect(fake))
        reserve = min(300 * MIB // 32, 131072 * KIB) + 8192 * KIB
        assert reading.allows == (12 * GIB - 50 * MIB - reserve) // (8 * MIB)
        assert reading.status is Status.FAILS
        assert reading.fix is not None
        assert "vm.overcommit_memory=0" in reading.fix.now

    def test_madvise_guard_is_charged_too(self, fake: FakeHost) -> None:
        """glibc ≥ 2.42 maps the guard writable: stack and guard are both charged."""
        fake.glibc = "2.42"
        fake.set_sysctl("vm.overcommit_memory", 2)
        reading = CommitLimit().read(inspect(fake))
        reserve = min(300 * MIB // 32, 131072 * KIB) + 8192 * KIB
        assert reading.allows == (12 * GIB - 50 * MIB - reserve) // (8 * MIB + 4 * KIB)


class TestRlimits:
    def test_unlimited_stack_gives_2_mib_on_x86_64(self, fake: FakeHost) -> None:
        """glibc's ARCH_STACK_DEFAULT_SIZE applies when RLIMIT_STACK is unlimited."""
        fake.set_limits(RLIMIT_STACK=(None, None))
        assert inspect(fake).shape.stack_bytes == 2 * MIB

    def test_unlimited_stack_gives_4_mib_on_ppc64le(self, fake: FakeHost) -> None:
        """... and 4 MiB on powerpc."""
        fake.set_limits(RLIMIT_STACK=(None, None)).set_sysctl("kernel.arch", "ppc64le")
        assert inspect(fake).shape.stack_bytes == 4 * MIB

    def test_stack_option_wins_and_is_page_rounded(self, fake: FakeHost) -> None:
        """--stack overrides ulimit -s; glibc rounds it up to whole pages."""
        assert inspect(fake, Target(threads=1, stack_bytes=100_000)).shape.stack_bytes == 25 * 4096

    def test_stack_row_names_the_stack_in_use(self, fake: FakeHost) -> None:
        """The RLIMIT_STACK row reports the stack every other limit uses."""
        reading = Stack().read(inspect(fake))
        assert reading.current == 8 * MIB
        assert "8 MiB" in reading.note

    def test_rlimit_as_counts_stack_and_guard(self, fake: FakeHost) -> None:
        """RLIMIT_AS: (soft - VmSize) / (stack + guard)."""
        fake.set_limits(RLIMIT_AS=(4 * GIB, None))
        reading = RlimitAS().read(inspect(fake))
        assert reading.allows == (4 * GIB - 300 * MIB) // (8 * MIB + 4 * KIB)

    def test_rlimit_data_counts_the_stack(self, fake: FakeHost) -> None:
        """RLIMIT_DATA: thread stacks are private writable mappings (Linux ≥ 4.7)."""
        fake.set_limits(RLIMIT_DATA=(GIB, None))
        reading = Data().read(inspect(fake))
        assert reading.allows == (GIB - 100 * MIB) // (8 * MIB)


class TestAddressSpace:
    def test_x86_64_has_128_tib(self, fake: FakeHost) -> None:
        """47 bits of user space: ~16.7 M threads of 8 MiB."""
        reading = AddressSpace().read(inspect(fake))
        assert reading.current == 128 * 1024 * GIB
        assert reading.allows == (128 * 1024 * GIB - 300 * MIB) // (8 * MIB + 4 * KIB)

    def test_arm64_39_bit(self, fake: FakeHost) -> None:
        """arm64 with 39-bit VA: 512 GiB, found from where the stack sits."""
        fake.set_sysctl("kernel.arch", "aarch64").set_maps(SELF_PID, count=50, top=0x7F_F000_0000)
        reading = AddressSpace().read(inspect(fake))
        assert reading.current == 512 * GIB
        assert reading.status is Status.FAILS


class TestUnknown:
    def test_missing_file_is_unknown_not_a_pass(self, fake: FakeHost) -> None:
        """A limit that cannot be read is "unknown", and the host is not ready."""
        (fake.root / "proc/sys/kernel/pid_max").unlink()
        result = check(fake.host, Target(threads=10))
        reading = next(r for r in result.readings if r.name == "kernel.pid_max")
        assert reading.status is Status.UNKNOWN
        assert "pid_max" in reading.note
        assert not result.ready

    def test_garbage_is_unknown(self, fake: FakeHost) -> None:
        """A value that does not parse is unknown too."""
        fake.set_cgroup_file("user.slice/pids.max", "lots")
        result = check(fake.host, Target(threads=10))
        assert next(r for r in result.readings if r.name == "pids.max").status is Status.UNKNOWN

    def test_every_limit_unknown_on_an_empty_tree(self, tmp_path) -> None:
        """Nothing readable: every limit but the informational stack row is unknown."""
        from sysprep.host import Host

        result = check(Host(tmp_path), Target(threads=10))
        assert {r.status for r in result.readings} == {Status.UNKNOWN}
        assert result.capacity is None
        assert not result.ready


class TestRuntimeKnobs:
    """The fix names the knob of whatever made the binding cgroup (layouts from real hosts)."""

    DOCKER_ID = "4f1c2a9b8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"

    def test_docker_with_the_systemd_cgroup_driver(self, fake: FakeHost) -> None:
        """cgroup v2, docker's systemd driver: /system.slice/docker-<id>.scope."""
        path = f"/system.slice/docker-{self.DOCKER_ID}.scope"
        fake.use_cgroup_v2(path)
        fake.set_cgroup_file(f"{path}/pids.max", 4096)
        fake.set_cgroup_file(f"{path}/pids.current", 96)
        fake.set_cgroup_file(f"{path}/pids.events", "max 7")
        reading = PidsMax().read(inspect(fake))
        assert reading.fix is not None
        assert reading.fix.now == f"docker update --pids-limit {96 + 1_000_000} 4f1c2a9b8e7d"
        assert reading.note.endswith(
            f"forks already refused (pids.events): /sys/fs/cgroup{path}: 7"
        )

    def test_docker_with_cgroupfs_on_v1(self, fake: FakeHost) -> None:
        """cgroup v1, docker's cgroupfs driver: /docker/<id>."""
        fake.use_cgroup_v1(f"/docker/{self.DOCKER_ID}")
        fake.set_cgroup_file(f"pids/docker/{self.DOCKER_ID}/pids.max", 4096)
        reading = PidsMax().read(inspect(fake))
        assert reading.fix is not None
        assert (
            reading.fix.persist == f"docker run --pids-limit {1 + 1_000_000} (compose: pids_limit)"
        )

    def test_podman(self, fake: FakeHost) -> None:
        """podman: /machine.slice/libpod-<id>.scope (its default --pids-limit is 2048)."""
        path = f"/machine.slice/libpod-{self.DOCKER_ID}.scope"
        fake.use_cgroup_v2(path)
        fake.set_cgroup_file(f"{path}/pids.max", 2048)
        reading = PidsMax().read(inspect(fake))
        assert reading.fix is not None
        assert reading.fix.now.startswith("podman update --pids-limit ")

    def test_a_kubernetes_pod_binds_above_its_container(self, fake: FakeHost) -> None:
        """kubepods: the pod slice's pids.max (podPidsLimit) binds its container's scope."""
        pod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b.slice"
        fake.use_cgroup_v2(f"{pod}/cri-containerd-{self.DOCKER_ID}.scope")
        fake.set_cgroup_file(f"{pod}/pids.max", 1024)
        fake.set_cgroup_file(f"{pod}/pids.current", 30)
        reading = PidsMax().read(inspect(fake))
        assert (reading.current, reading.allows) == (1024, 994)
        assert reading.note == f"/sys/fs/cgroup{pod}"
        assert reading.fix is not None
        assert "podPidsLimit" in reading.fix.persist


class TestNprocInNamespaces:
    def test_root_of_a_user_namespace_is_not_exempt(self, fake: FakeHost) -> None:
        """uid 0 of a user namespace mapped from uid 100000 is not the kernel's INIT_USER,
        and its capabilities are its namespace's: RLIMIT_NPROC counts it."""
        fake.add_process(SELF_PID, uid=0, caps=0xFFFFFFFF).set_namespace("user", 4026532200)
        fake.set_uid_map(0, 100000, 65536)
        reading = Nproc().read(inspect(fake))
        assert reading.note.startswith("threads of uid 0; in a container: the same uid's")
        assert reading.allows is not None

    def test_root_of_a_user_namespace_mapped_from_root_is(self, fake: FakeHost) -> None:
        """uid 0 of a user namespace mapped from the host's uid 0 is INIT_USER: exempt."""
        fake.add_process(SELF_PID, uid=0).set_namespace("user", 4026532200)
        fake.set_uid_map(0, 0, 1)
        assert Nproc().read(inspect(fake)).note == "root is exempt"

    def test_root_of_the_initial_namespace_is(self, fake: FakeHost) -> None:
        """Global root skips the limit (kernel/fork.c)."""
        fake.add_process(SELF_PID, uid=0).set_namespace("user", 0xEFFFFFFD)
        assert Nproc().read(inspect(fake)).note == "root is exempt"


def test_an_unread_limit_says_why_in_words(fake: FakeHost) -> None:
    """An error with no message of the kernel's is named by itself, never "None: None"."""
    from sysprep.limits.base import unknown

    assert unknown("x", OSError(0, "")).note == "could not read: OSError"
    assert (
        unknown("x", OSError(2, "No such file", "/p")).note == "could not read: No such file: /p"
    )
    assert (
        unknown("x", OSError(13, "Permission denied")).note == "could not read: Permission denied"
    )
    assert fake  # the fixture keeps the signature of the file's other tests


class TestCgroupsInContainers:
    """cgroup v2 layouts inside containers, which this v1 VM cannot make (its own are proved
    with podman in tests/host/test_containers.py): the runtime mounts the container's cgroup
    as the top of the hierarchy, and /proc/self/cgroup names it relative to the reader's
    cgroup namespace."""

    POD = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b.slice"
    CONTAINER = f"{POD}/cri-containerd-0123456789abcdef.scope"

    def write(self, fake: FakeHost, relative: str, text: object) -> None:
        path = fake.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{text}\n")

    def container_top(self, fake: FakeHost, pids_max: object) -> None:
        """The container's own cgroup as it sees it: the top of /sys/fs/cgroup."""
        top = fake.root / "sys/fs/cgroup"
        for name, value in (("cgroup.type", "domain"), ("pids.max", pids_max),
                            ("pids.current", 7), ("memory.max", "max"),
                            ("memory.current", 50 * MIB)):  # fmt: skip
            (top / name).write_text(f"{value}\n")

    def test_the_containers_own_level_binds_without_a_cgroup_namespace(
        self, fake: FakeHost
    ) -> None:
        """mountinfo's root is the container's path, the same as /proc/self/cgroup's: the top
        is that cgroup, a level with its limit; the pod's level above it is out of sight."""
        fake.use_cgroup_v2("/")  # the tree's files; then the container's view of it:
        self.write(fake, f"proc/{SELF_PID}/cgroup", f"0::{self.CONTAINER}")
        (fake.root / "proc/self/mountinfo").write_text(
            f"30 22 0:26 {self.CONTAINER} /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n"
        )
        (fake.root / "sys/fs/cgroup/cgroup.controllers").write_text("memory pids\n")
        self.container_top(fake, 1024)
        reading = PidsMax().read(inspect(fake))
        assert (reading.current, reading.in_use, reading.allows) == (1024, 7, 1017)
        assert reading.note.startswith(
            "/sys/fs/cgroup; the levels above /sys/fs/cgroup (a pod's, the host's) are not"
        )
        assert reading.fix is not None
        assert reading.fix.setting == "pod pids limit"  # its path is kubepods'

    def test_in_a_cgroup_namespace_the_top_is_the_containers_own(self, fake: FakeHost) -> None:
        """A cgroup namespace shows the container's cgroup as "/": the top has cgroup.type (a
        hierarchy's root has none), so it is a level; in a pod (its service account's
        marker), the fix is the pod's limit, made on the node."""
        fake.use_cgroup_v2("/").set_namespace("cgroup", 4026532999)
        self.write(fake, f"proc/{SELF_PID}/cgroup", "0::/")
        (fake.root / "sys/fs/cgroup/cgroup.controllers").write_text("memory pids\n")
        (fake.root / "var/run/secrets/kubernetes.io").mkdir(parents=True)
        self.container_top(fake, 1024)
        reading = PidsMax().read(inspect(fake))
        assert (reading.current, reading.allows) == (1024, 1017)
        assert reading.fix is not None
        assert (reading.fix.setting, reading.fix.where) == ("pod pids limit", "host")
        assert reading.fix.now.startswith("on the node: give the pod a pids limit of at least")

    def test_the_hosts_hierarchy_mounted_from_outside_the_namespace(self, fake: FakeHost) -> None:
        """A DaemonSet's hostPath of the host's /sys/fs/cgroup, read from the pod's cgroup
        namespace: its root reads "/../../../.." (four levels above the namespace's root).
        The namespace's root is the directory that deep whose cgroup.procs holds sysprep:
        the pod's level above the container is read there, and binds."""
        fake.use_cgroup_v2(self.CONTAINER).set_namespace("cgroup", 4026532999)
        self.write(fake, f"proc/{SELF_PID}/cgroup", "0::/")
        (fake.root / "proc/self/mountinfo").write_text(
            "30 22 0:26 / /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n"  # the runtime's, under
            "31 22 0:26 /../../../.. /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n"
        )
        self.write(fake, f"sys/fs/cgroup{self.CONTAINER}/cgroup.procs", f"1\n{SELF_PID}\n")
        self.write(fake, f"sys/fs/cgroup{self.POD}/pids.max", 1024)
        self.write(fake, f"sys/fs/cgroup{self.POD}/pids.current", 300)
        # A sibling pod as deep, without sysprep in it, is passed over.
        self.write(
            fake, "sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/x/y.scope/pids.max", 5
        )
        reading = PidsMax().read(inspect(fake))
        assert (reading.current, reading.in_use, reading.allows) == (1024, 300, 724)
        assert reading.note == f"/sys/fs/cgroup{self.POD}"
        assert reading.fix is not None
        assert reading.fix.setting == "pod pids limit"

    def test_a_path_no_mount_shows_is_unknown(self, fake: FakeHost) -> None:
        """A --pid process of another container: its cgroup is not under this container's
        mount. Not "no limit": unknown, saying so."""
        fake.use_cgroup_v2("/").set_namespace("cgroup", 4026532999)
        (fake.root / "proc/self/mountinfo").write_text(
            f"30 22 0:26 {self.CONTAINER} /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n"
        )
        fake.add_process(7000, uid=1000)
        self.write(fake, "proc/7000/cgroup", "0::/system.slice/other.service")
        result = check(fake.host, Target(threads=10, pid=7000))
        reading = next(r for r in result.readings if r.name == "pids.max")
        assert reading.status is Status.UNKNOWN
        assert "pids cgroup /system.slice/other.service is not under any mount" in reading.note


class TestImpossibleTargets:
    """Regressions (issue "first hour"): a target past what any setting can give is said
    plainly, with the most it can be; never a fix that makes no sense."""

    HUGE = Target(threads=99_999_999_999_999)

    def test_max_map_count_past_the_kernels_maximum(self, fake: FakeHost) -> None:
        """Was `vm.max_map_count=200000000000022`: past INT_MAX, which the kernel refuses."""
        reading = MaxMapCount().read(inspect(fake, self.HUGE))
        assert reading.fix is not None
        assert reading.fix.value == 2**31 - 1
        assert "is past the kernel's maximum of 2,147,483,647: lower the target to" in (
            reading.fix.now
        )

    def test_more_memory_than_the_host_has(self, fake: FakeHost) -> None:
        """Was "free 3288732.8 TiB of memory ... takes effect: now": the host has 24 GiB."""
        reading = MemAvailable().read(inspect(fake, Target(threads=10_000_000)))
        assert reading.fix is not None
        assert reading.fix.now.startswith("the target needs ")
        assert " more than this host has (" in reading.fix.now
        assert reading.fix.persist is not None
        assert reading.fix.persist.startswith("add ")
        assert reading.fix.takes_effect == "when the RAM is in"

    def test_memory_others_hold_is_freed(self, fake: FakeHost) -> None:
        """A target the RAM holds, but not beside what runs now: free it, or fewer threads."""
        fake.set_meminfo(MemTotal=64 * GIB // 1024, MemAvailable=8 * GIB // 1024)
        reading = MemAvailable().read(inspect(fake, Target(threads=1_000_000)))
        assert reading.fix is not None
        assert reading.fix.now.startswith("free ")
        assert reading.fix.takes_effect == "once the memory is free"

    def test_no_stack_fits_the_address_space(self, fake: FakeHost) -> None:
        """Was "use a thread stack of at most 1 B": no stack is that small."""
        reading = AddressSpace().read(inspect(fake, self.HUGE))
        assert reading.fix is not None
        assert reading.fix.value is None
        assert reading.fix.now.startswith(
            "none: 99,999,999,999,999 threads of even the smallest stack (16 KiB) do not fit"
        )
