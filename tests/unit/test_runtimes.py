"""The runtime judged (C, JVM, Rust, Go): its stack, mappings, own threads, limits, detection."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING
from typing import Any

import pytest

from sysprep.capacity import check
from sysprep.cli import run
from sysprep.elf import read_executable
from sysprep.errors import BadInputError
from sysprep.errors import ExitCode
from sysprep.limits.base import Reading
from sysprep.limits.base import Target
from sysprep.runtimes import java_stack
from sysprep.runtimes import rust_stack
from sysprep.systemd import Unit
from sysprep.systemd import parse_environment
from sysprep.systemd import parse_exec_start
from tests.elfs import elf64
from tests.elfs import go_build_info
from tests.fakehost import KIB
from tests.fakehost import MIB
from tests.fakehost import SELF_PID

if TYPE_CHECKING:
    from tests.fakehost import FakeHost

JAVA = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"


def readings(fake: FakeHost, target: Target) -> dict[str, Reading]:
    return {r.name: r for r in check(fake.host, target).readings}


def check_json(fake: FakeHost, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    run(["--root", str(fake.root), "check", "--json", *args])
    return json.loads(capsys.readouterr().out)


class TestJavaStack:
    def test_xss_on_the_command_line(self) -> None:
        assert java_stack([JAVA, "-Xss256k", "-jar", "app.jar"], {}) == (
            256 * KIB,
            "-Xss256k in its command line",
        )

    def test_the_last_setting_wins_and_the_command_line_is_last(self) -> None:
        """JAVA_TOOL_OPTIONS, then JDK_JAVA_OPTIONS, then the command line."""
        environ = {"JAVA_TOOL_OPTIONS": "-Xss2m", "JDK_JAVA_OPTIONS": "-Xss512k"}
        assert java_stack([JAVA, "-cp", "x", "Main"], environ) == (
            512 * KIB,
            "-Xss512k in JDK_JAVA_OPTIONS",
        )
        assert java_stack([JAVA, "-Xss384k", "Main"], environ) == (
            384 * KIB,
            "-Xss384k in its command line",
        )

    def test_thread_stack_size_is_in_kib(self) -> None:
        assert java_stack([JAVA, "-XX:ThreadStackSize=512", "Main"], {})[0] == 512 * KIB  # type: ignore[index]

    def test_the_programs_own_arguments_are_not_the_jvms(self) -> None:
        """After the main class (or -jar FILE) the arguments are the program's."""
        assert java_stack([JAVA, "-cp", "-Xss1m", "Main", "-Xss2m"], {}) is None
        assert java_stack([JAVA, "-jar", "app.jar", "-Xss2m"], {}) is None

    def test_a_malformed_size_is_no_setting(self) -> None:
        assert java_stack([JAVA, "-Xsslots", "Main"], {}) is None


def test_rust_min_stack() -> None:
    assert rust_stack({"RUST_MIN_STACK": "65536"}) == (65536, "RUST_MIN_STACK=65536")
    assert rust_stack({"RUST_MIN_STACK": "64k"}) is None  # std ignores what it cannot parse
    assert rust_stack({}) is None


@pytest.mark.parametrize("text", ["²", "٣٢٧٦٨", "1" * 30, "0"])
def test_rust_min_stack_that_std_would_not_parse(text: str) -> None:
    """Non-ASCII digits, a value past usize, zero: ignored as std ignores them, no crash."""
    assert rust_stack({"RUST_MIN_STACK": text}) is None


@pytest.mark.parametrize("option", ["-Xss2g", "-Xss99999999999T", "-XX:ThreadStackSize=2000000"])
def test_an_xss_the_jvm_refuses_is_no_setting(option: str) -> None:
    """Past HotSpot's 1 GiB the JVM does not start: nothing to judge by it."""
    assert java_stack([JAVA, option, "-jar", "app.jar"], {}) is None


class TestElf:
    def test_go_build_info(self) -> None:
        binary = elf64({".text": b"\x90" * 16, ".go.buildinfo": go_build_info("go1.22.1")})
        found = read_executable(io.BytesIO(binary))
        assert (found.go_version, found.dynamic) == ("go1.22.1", False)

    def test_dynamic_without_go(self) -> None:
        found = read_executable(io.BytesIO(elf64({".text": b"\x90"}, interp=True)))
        assert (found.go_version, found.dynamic) == (None, True)

    @pytest.mark.parametrize("claim", [2**64 - 1, 1 << 40, 2**63, 0])
    def test_a_crafted_size_reads_within_the_file(self, claim: int) -> None:
        """A section-name table claiming 2^64 - 1 bytes, or 1 TiB: read within the file,
        never a MemoryError or OverflowError."""
        binary = elf64({".go.buildinfo": go_build_info("go1.22.1")}, names_claim=claim)
        found = read_executable(io.BytesIO(binary))
        assert found.go_version in ("go1.22.1", None)

    def test_check_pid_of_a_crafted_binary(
        self, fake: FakeHost, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """check --pid --json of a process whose binary lies: a report, exit 0 or 1."""
        fake.add_process(7000, uid=1000)
        binary = elf64({".go.buildinfo": go_build_info("go1.21.5")}, names_claim=2**64 - 1)
        fake.set_program(7000, ["/usr/local/bin/liar"], binary=binary)
        check_json(fake, capsys, "--pid", "7000", "-n", "100")

    @pytest.mark.parametrize("data", [b"", b"#!/bin/sh\n", b"\x7fELF\x09" + bytes(60)])
    def test_not_an_elf(self, data: bytes) -> None:
        with pytest.raises(ValueError, match="not an ELF"):
            read_executable(io.BytesIO(data))


class TestModel:
    def test_jvm_defaults(self, fake: FakeHost) -> None:
        """1 MiB stacks, 2 mappings each, its ~211 mappings at start, 18 threads on 1 CPU."""
        fake.set_sysctl("vm.max_map_count", 10000).set_sysctl("kernel.threads-max", 5000)
        found = readings(fake, Target(threads=1000, runtime="jvm"))
        maps = found["vm.max_map_count"]
        assert (maps.in_use, maps.allows) == (211, (10000 - 211) // 2)
        assert maps.needed == 211 + 2 * 1000 + 65530  # the margin for the JVM's own mappings
        assert "the JVM usually aborts there" in maps.note
        threads_max = found["kernel.threads-max"]
        own = 16 + 1 + 1  # one CPU: one parallel and one concurrent GC thread
        assert threads_max.in_use == fake.host.tasks_total() + own
        assert "1 MiB (HotSpot's default (-Xss))" in found["RLIMIT_STACK"].note

    def test_jvm_stack_from_the_environment(self, fake: FakeHost) -> None:
        """Without --pid, a JVM started from here inherits this environment."""
        fake.set_program("self", ["sysprep"], environ={"JAVA_TOOL_OPTIONS": "-Xss256k"})
        assert check(fake.host, Target(threads=10, runtime="jvm")).stack_bytes == 256 * KIB

    def test_rust_maps_a_signal_stack_per_thread(self, fake: FakeHost) -> None:
        fake.set_sysctl("vm.max_map_count", 10000)
        fake.set_limits(RLIMIT_AS=(10 << 30, 10 << 30))
        found = readings(fake, Target(threads=1000, runtime="rust"))
        assert found["vm.max_map_count"].allows == (10000 - 30) // 4
        # RLIMIT_AS: the stack, glibc's guard, the signal stack and its guard
        per_thread = 2 * MIB + 4 * KIB + 8 * KIB + 4 * KIB
        assert found["RLIMIT_AS"].allows == ((10 << 30) - 300 * MIB) // per_thread  # less VmSize

    def test_go_has_a_thread_limit_and_no_mappings_per_thread(self, fake: FakeHost) -> None:
        assessment = check(fake.host, Target(threads=20_000, runtime="go"))
        found = {r.name: r for r in assessment.readings}
        assert found["vm.max_map_count"].allows is None
        go = found["go.max_threads"]
        assert (go.current, go.in_use, go.allows) == (10_000, 1 + 2, 10_000 - 3)
        assert go.fix is not None
        assert "debug.SetMaxThreads(20003)" in go.fix.now
        assert assessment.binding is go

    def test_own_threads_count_in_a_pid_namespaces_own_pid_max(self, fake: FakeHost) -> None:
        """In a container's pid namespace (Linux >= 6.14), its pid_max counts them too."""
        fake.set_namespace("pid", 4026532178).set_sysctl("kernel.pid_max", 12345)
        fake.set_sysctl("kernel.ns_last_pid", 5000)
        c = readings(fake, Target(threads=10))["kernel.pid_max"]
        jvm = readings(fake, Target(threads=10, runtime="jvm"))["kernel.pid_max"]
        assert c.allows is not None
        assert c.allows - jvm.allows == 16 + 1 + 1  # type: ignore[operator]

    def test_an_unreadable_host_is_unknown_not_a_crash(self, fake: FakeHost) -> None:
        """No /proc/cpuinfo to size the JVM's own threads by: those limits are unknown."""
        (fake.root / "proc/cpuinfo").unlink()
        assessment = check(fake.host, Target(threads=10, runtime="jvm"))
        assert not assessment.ready
        assert assessment.runtime_threads == 0
        threads_max = next(r for r in assessment.readings if r.name == "kernel.threads-max")
        assert "proc/cpuinfo" in threads_max.note

    def test_the_go_row_only_for_go(self, fake: FakeHost) -> None:
        assert "go.max_threads" not in readings(fake, Target(threads=10))
        assert "go.max_threads" not in readings(fake, Target(threads=10, runtime="jvm"))

    def test_stack_overrides_the_runtime(self, fake: FakeHost) -> None:
        target = Target(threads=10, stack_bytes=64 * KIB, runtime="jvm")
        assert check(fake.host, target).stack_bytes == 64 * KIB


class TestDetection:
    def test_a_jvm_with_its_xss(self, fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
        fake.add_process(7000, uid=1000, threads=25).set_maps(7000, count=300)
        fake.set_program(7000, [JAVA, "-Xss256k", "-jar", "kafka.jar"])
        document = check_json(fake, capsys, "--pid", "7000", "-n", "100")
        runtime = document["target"]["runtime"]
        assert (runtime["name"], runtime["chosen"]) == ("jvm", "detected")
        assert runtime["evidence"].endswith("exe is " + str(fake.root / "binaries/7000/java"))
        assert runtime["own_threads"] == 0  # a running JVM's are in its thread count
        assert document["target"]["stack_bytes"] == 256 * KIB
        maps = next(r for r in document["limits"] if r["name"] == "vm.max_map_count")
        assert maps["in_use"] == 300  # its own mappings, not a baseline

    def test_go_from_its_build_info(
        self, fake: FakeHost, capsys: pytest.CaptureFixture[str]
    ) -> None:
        fake.add_process(7000, uid=1000, threads=40)
        binary = elf64({".go.buildinfo": go_build_info("go1.21.5")})
        fake.set_program(7000, ["/usr/local/bin/server"], binary=binary)
        document = check_json(fake, capsys, "--pid", "7000", "-n", "100")
        assert document["target"]["runtime"]["evidence"] == "Go build info: go1.21.5"
        go = next(r for r in document["limits"] if r["name"] == "go.max_threads")
        assert go["in_use"] == 40

    def test_cgo_threads_are_glibcs(self, fake: FakeHost) -> None:
        """A dynamically linked Go binary starts its threads with pthread_create."""
        fake.add_process(7000, uid=1000)
        binary = elf64({".go.buildinfo": go_build_info("go1.19.8")}, interp=True)
        fake.set_program(7000, ["/usr/bin/go"], binary=binary)
        found = readings(fake, Target(threads=10, pid=7000))
        assert "cgo" in check(fake.host, Target(threads=10, pid=7000)).runtime.evidence  # type: ignore[union-attr]
        assert "2 mappings per thread" in found["vm.max_map_count"].note

    def test_anything_else_is_assumed_c(self, fake: FakeHost) -> None:
        fake.add_process(7000, uid=1000)
        fake.set_program(7000, ["/usr/sbin/nginx"], binary=elf64({}, interp=True))
        runtime = check(fake.host, Target(threads=10, pid=7000)).runtime
        assert runtime is not None
        assert (runtime.name, runtime.chosen) == ("c", "assumed")
        assert "--runtime rust" in runtime.evidence

    def test_runtime_overrides_detection(self, fake: FakeHost) -> None:
        fake.add_process(7000, uid=1000)
        fake.set_program(7000, [JAVA, "Main"], environ={"RUST_MIN_STACK": "131072"})
        assessment = check(fake.host, Target(threads=10, pid=7000, runtime="rust"))
        assert assessment.runtime is not None
        assert (assessment.runtime.name, assessment.stack_bytes) == ("rust", 128 * KIB)


def stopped(exec_start: tuple[str, ...], environment: dict[str, str] | None = None) -> Unit:
    """A service that is not running, as systemd resolves it."""
    return Unit(
        name="app.service",
        running=False,
        main_pid=None,
        uid=0,
        slice="system.slice",
        tasks_max=None,
        default_tasks_max=None,
        tasks_max_set=False,
        memory_max=None,
        rlimits={},
        exec_start=exec_start,
        environment=environment or {},
    )


class TestStoppedUnit:
    """A service not running yet: its runtime from its ExecStart and Environment=."""

    def test_a_jvm_with_its_options(self, fake: FakeHost) -> None:
        unit = stopped(
            (JAVA, JAVA, "-jar", "app.jar"), {"JAVA_TOOL_OPTIONS": "-XX:ThreadStackSize=384"}
        )
        assessment = check(fake.host, Target(threads=10), unit=unit)
        assert assessment.runtime is not None
        assert (assessment.runtime.name, assessment.runtime.chosen) == ("jvm", "detected")
        assert assessment.runtime.evidence == f"ExecStart of app.service is {JAVA}"
        assert assessment.stack_bytes == 384 * KIB

    def test_a_go_binary_is_read_where_it_lies(self, fake: FakeHost) -> None:
        server = fake.root / "usr/local/bin/server"
        server.parent.mkdir(parents=True)
        server.write_bytes(elf64({".go.buildinfo": go_build_info("go1.22.1")}))
        assessment = check(fake.host, Target(threads=10), unit=stopped(("/usr/local/bin/server",)))
        assert assessment.runtime is not None
        assert assessment.runtime.evidence == "Go build info: go1.22.1"
        assert "go.max_threads" in {r.name for r in assessment.readings}

    def test_no_exec_start_is_assumed_c(self, fake: FakeHost) -> None:
        assessment = check(fake.host, Target(threads=10), unit=stopped(()))
        assert assessment.runtime is not None
        assert (assessment.runtime.name, assessment.runtime.chosen) == ("c", "assumed")


@pytest.mark.parametrize(
    ("shown", "parsed"),
    [
        (
            (
                "{ path=/usr/bin/java ; argv[]=/usr/bin/java -Xss1m -jar a.jar ; ignore_errors=no"
                " ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }"
            ),
            ("/usr/bin/java", "/usr/bin/java", "-Xss1m", "-jar", "a.jar"),
        ),
        ("", ()),
    ],
)
def test_exec_start_as_systemctl_shows_it(shown: str, parsed: tuple[str, ...]) -> None:
    assert parse_exec_start(shown) == parsed


def test_environment_as_systemctl_shows_it() -> None:
    assert parse_environment('JAVA_TOOL_OPTIONS=-Xss512k "MOTD=a b"') == {
        "JAVA_TOOL_OPTIONS": "-Xss512k",
        "MOTD": "a b",
    }
    assert parse_environment('A="unbalanced') == {}


class TestChoosing:
    def test_an_unknown_runtime_is_bad_input(
        self, fake: FakeHost, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert run(["--root", str(fake.root), "check", "--runtime", "python"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["sysprep: error: invalid --runtime 'python': use one of c, jvm, rust, go"]

    def test_a_profiles_runtime(
        self, fake: FakeHost, capsys: pytest.CaptureFixture[str], tmp_path: Any
    ) -> None:
        profile = tmp_path / "kafka.toml"
        profile.write_text('[target]\nthreads = 5000\nruntime = "jvm"\n')
        document = check_json(fake, capsys, "--profile", str(profile))
        assert document["target"]["runtime"]["chosen"] == "profile"
        assert document["target"]["stack_bytes"] == MIB
        document = check_json(fake, capsys, "--profile", str(profile), "--runtime", "go")
        assert document["target"]["runtime"]["name"] == "go"

    def test_a_profile_with_an_unknown_runtime(self, fake: FakeHost, tmp_path: Any) -> None:
        from sysprep.profile import load

        profile = tmp_path / "bad.toml"
        profile.write_text('[target]\nthreads = 5000\nruntime = "python"\n')
        with pytest.raises(BadInputError, match=r"target\.runtime = 'python' is not one of c"):
            load(str(profile), fake.host)

    def test_the_human_report_names_the_runtime(
        self, fake: FakeHost, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert run(["--root", str(fake.root), "check", "-n", "10", "--runtime", "jvm"]) == (
            ExitCode.OK
        )
        out = capsys.readouterr().out
        assert "runtime: jvm (--runtime); it starts 18 threads of its own" in out
        assert "10 threads of 1 MiB stack (jvm)" in out


def test_self_is_the_fake_pid(fake: FakeHost) -> None:
    """The fake's "self" is SELF_PID: set_program("self") writes its files."""
    fake.set_program("self", ["sysprep"], environ={"A": "1"})
    assert fake.host.environ(SELF_PID) == {"A": "1"}


def test_the_evidence_names_what_matched(fake: FakeHost) -> None:
    """A JVM told by its argv[0] (its executable is named otherwise) says so, and never names
    the executable as if that were java."""
    fake.add_process(7000, uid=1000)
    fake.set_program(7000, ["java", "-jar", "app.jar"])
    exe = fake.root / "proc/7000/exe"
    exe.unlink()
    exe.symlink_to(fake.root / "binaries/7000/launcher")
    runtime = check(fake.host, Target(threads=10, pid=7000)).runtime
    assert runtime is not None
    assert (runtime.name, runtime.evidence) == ("jvm", "its argv[0] is java")
