"""On the real kernel: `check --runtime X` against real C, Java, Rust and Go programs.

For each runtime and each limit (pid_max, threads-max, max_map_count, a pids cgroup,
RLIMIT_NPROC), the limit is set low, `sysprep check --runtime X` predicts how many more
threads a program started from here can hold, then the program (tests/programs.py) holds
threads until creation fails. The two counts agree within 1 % and check names the limit
that was lowered; for Go, whose threads take no mappings, max_map_count never binds and its
own 10,000-thread limit does. Every sysctl, rlimit and cgroup is put back afterwards.
A runtime whose compiler is missing is skipped, and the skip names it.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest

from sysprep.cli import run
from sysprep.host import Host
from tests import programs
from tests.conftest import readable_tempdir
from tests.nobody import NOBODY
from tests.nobody import run_as_nobody

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator

pytestmark = pytest.mark.root

TARGET = 100_000  # more than any lowered limit allows
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """Where the programs are built: a directory uid 65534 can run them from."""
    with readable_tempdir("sysprep-runtimes-") as directory:
        yield directory


@pytest.fixture(scope="module")
def built(workdir: Path) -> dict[str, list[str]]:
    """The command of each runtime's program that could be built here."""
    return {
        runtime: programs.build(runtime, workdir / runtime)
        for runtime in programs.RUNTIMES
        if programs.missing(runtime) is None
    }


def command_of(built: dict[str, list[str]], runtime: str) -> list[str]:
    if runtime not in built:
        pytest.skip(programs.missing(runtime) or f"{runtime} was not built")
    return built[runtime]


class Setting:
    """One lowered limit: written before, put back after; how to run a process under it."""

    def __init__(
        self,
        sysctls: Callable[[str, object], None],
        cgroup: Path | None = None,
        nproc: int | None = None,
    ) -> None:
        self.sysctls = sysctls
        self.cgroup = cgroup
        self.nproc = nproc

    def enter(self) -> None:
        """In the child before exec: join the cgroup, or become uid 65534 under RLIMIT_NPROC."""
        if self.cgroup is not None:
            (self.cgroup / "cgroup.procs").write_text(f"{os.getpid()}\n")
        if self.nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (self.nproc, self.nproc))
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

    def check(self, runtime: str) -> dict[str, Any]:
        """`sysprep check --runtime RUNTIME --json` as the program will run."""
        args = ["check", "--runtime", runtime, "--threads", str(TARGET), "--json"]
        if self.nproc is not None:
            done = run_as_nobody(args, prefix=["prlimit", f"--nproc={self.nproc}", "--"])
        else:
            done = subprocess.run(
                [sys.executable, "-m", "sysprep", *args],
                capture_output=True,
                text=True,
                check=False,
                cwd=ROOT,
                preexec_fn=self.enter,  # the cgroup is joined before exec
            )
        assert done.returncode == 1, done.stderr  # not ready for TARGET: a limit binds
        return dict(json.loads(done.stdout))

    def hold(self, command: list[str], cwd: Path) -> programs.Held:
        done = subprocess.run(
            [*command, str(TARGET)],
            capture_output=True,
            text=True,
            check=False,
            cwd=cwd,
            preexec_fn=self.enter,  # rlimits and uid are set before exec
            timeout=300,
        )
        return programs.parse(done.stdout, done.stderr)


LIMITS = ("kernel.pid_max", "kernel.threads-max", "vm.max_map_count", "pids.max", "RLIMIT_NPROC")


@pytest.fixture
def lowered(request: pytest.FixtureRequest, sysctls: Callable[[str, object], None]) -> Setting:
    """The limit named by the test's parameter, set low (each allows a few thousand)."""
    limit = request.param
    if limit == "kernel.pid_max":
        sysctls(limit, 6000)
    elif limit == "kernel.threads-max":
        sysctls(limit, Host().tasks_total() + 4000)
    elif limit == "vm.max_map_count":
        sysctls(limit, 10000)
    elif limit == "pids.max":
        cgroup = request.getfixturevalue("pids_cgroup")
        (cgroup / "pids.max").write_text("3000\n")
        return Setting(sysctls, cgroup=cgroup)
    else:
        return Setting(sysctls, nproc=3000)
    return Setting(sysctls)


@pytest.mark.parametrize("lowered", LIMITS, indirect=True)
@pytest.mark.parametrize("runtime", programs.RUNTIMES)
def test_check_predicts_the_program(
    request: pytest.FixtureRequest,
    built: dict[str, list[str]],
    workdir: Path,
    lowered: Setting,
    runtime: str,
) -> None:
    """check --runtime X and the real program agree within 1 % and name the same limit."""
    limit = request.node.callspec.params["lowered"]
    command = command_of(built, runtime)
    predicted = lowered.check(runtime)
    result = lowered.hold(command, workdir / runtime)
    capacity = predicted["capacity"]
    print(f"{runtime} at {limit}: check {capacity}, program held {result.held}")
    if runtime == "go" and limit == "vm.max_map_count":
        limit = "go.max_threads"  # Go's threads map nothing: its own limit comes first
    assert predicted["binding"] == limit, predicted["binding"]
    assert abs(result.held - capacity) <= capacity / 100, (
        capacity,
        result.held,
        result.stderr[-2000:],
    )
    if runtime == "go":  # Go aborts at any limit: the runtime's own, or a refused clone
        assert not result.survived
        why = [line for line in result.stderr.splitlines() if "runtime" in line or "fatal" in line]
        # The runtime prints "exceeds ", 10000 and "-thread limit" as three writes, and the
        # program's own "held N" lines can land between them: match the piece that is whole.
        assert ("-thread limit" in result.stderr) == (limit == "go.max_threads"), why[:5]
    if runtime == "jvm" and limit == "vm.max_map_count":
        # It usually dies there (its own mmap or munmap fails, not only a thread's stack):
        # check's note says so.
        maps = next(r for r in predicted["limits"] if r["name"] == limit)
        assert "the JVM usually aborts there" in maps["note"]
        reports = list((workdir / runtime).glob("hs_err_*.log"))  # -XX:ErrorFile
        crashed = any("Native memory allocation (mmap) failed" in r.read_text() for r in reports)
        for report in reports:
            report.unlink()
        assert result.survived or crashed, result.stdout[-2000:]


@pytest.mark.parametrize(
    ("runtime", "recognised"), [("c", "c"), ("jvm", "jvm"), ("rust", "c"), ("go", "go")]
)
def test_check_pid_recognises_the_running_program(
    built: dict[str, list[str]],
    workdir: Path,
    sysctls: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
    runtime: str,
    recognised: str,
) -> None:
    """--pid of a program waiting to start its threads: its runtime is read from /proc (the
    JVM's -Xss with it; a Rust binary is assumed C, and the evidence says to name it), and
    with the runtime named, check predicts what the program then holds within 1 %."""
    sysctls("vm.max_map_count", 10000)
    command = command_of(built, runtime)
    process = subprocess.Popen(
        [*command, str(TARGET)],
        env={**os.environ, "HOLD_WAIT": "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir / runtime,
    )
    try:
        assert process.stderr is not None
        assert process.stderr.readline() == "ready\n"
        args = ["check", "--pid", str(process.pid), "--threads", str(TARGET), "--json"]
        run(args)
        found = json.loads(capsys.readouterr().out)
        chosen = found["target"]["runtime"]
        assert chosen["name"] == recognised, chosen
        assert chosen["chosen"] == ("assumed" if recognised == "c" else "detected")
        if runtime == "jvm":
            assert found["target"]["stack_bytes"] == 256 * 1024
            assert chosen["stack_source"] == "-Xss256k in its command line"
        if runtime == "rust":
            assert "--runtime rust" in chosen["evidence"]
            run([*args, "--runtime", "rust"])
            found = json.loads(capsys.readouterr().out)
        out, err = process.communicate("go\n", timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    held = programs.parse(out, err).held
    print(f"{runtime}, --pid: check {found['capacity']} ({found['binding']}), held {held}")
    assert abs(held - found["capacity"]) <= found["capacity"] / 100
