"""On the real kernel: check's capacity matches the native threads a process really starts.

Each test lowers one limit, starts the threads probe paused (--wait), runs
`sysprep check --pid <probe>` against it, lets the probe create threads until the kernel
refuses, and requires the two numbers to agree within 1 % and the probe's stopped_by to name
check's binding limit. Every sysctl, rlimit and cgroup is put back afterwards, pass or fail.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest

from sysprep.cli import run
from sysprep.host import Host
from sysprep.probe_runner import probe_path
from tests.fakehost import FakeHost
from tests.nobody import NOBODY
from tests.nobody import run_as_nobody

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator

pytestmark = pytest.mark.root

STACK = "64K"  # small stacks keep each run to a few MiB per thousand threads
SYSTEM_PYTHON = Path("/usr/bin/python3")


class PausedProbe:
    """The threads probe, started with --wait: inspect it, then let it run."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        assert process.stderr is not None
        ready = json.loads(process.stderr.readline())
        assert ready["event"] == "ready", ready
        self.pid: int = ready["pid"]

    def go(self) -> dict[str, Any]:
        out, err = self.process.communicate("go\n", timeout=120)
        assert self.process.returncode in (0, 1), err
        return dict(json.loads(out))


@contextmanager
def paused_probe(
    count: int,
    *,
    python: str = sys.executable,
    probe: Path | None = None,
    preexec: Callable[[], None] | None = None,
) -> Iterator[PausedProbe]:
    command = [
        python,
        "-S",
        str(probe or probe_path("threads")),
        "--count",
        str(count),
        "--stack",
        STACK,
        "--wait",
        "--json",
    ]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,  # noqa: PLW1509 - rlimits and uid must be set before exec
    )
    try:
        yield PausedProbe(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def check_pid(pid: int, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    run(["check", "--pid", str(pid), "--stack", STACK, "--json"])
    return dict(json.loads(capsys.readouterr().out))


def assert_agree(predicted: dict[str, Any], result: dict[str, Any], binding: str) -> None:
    """check's capacity and the probe's held agree within 1 %, and both name *binding*."""
    capacity, held = predicted["capacity"], result["held"]
    print(f"{binding}: check {capacity}, probe held {held}, stopped by {result['stopped_by']}")
    assert predicted["binding"] == binding, predicted["binding"]
    assert result["stopped_by"] == binding, result
    assert result["errno"] == "EAGAIN", result
    assert abs(held - capacity) <= capacity / 100, f"check said {capacity}, probe held {held}"


def predict_and_probe(
    capsys: pytest.CaptureFixture[str],
    setup: Callable[[int], None] | None = None,
    **probe_options: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start the probe paused, *setup* its pid, run check on it, then let it create threads."""
    with paused_probe(20_000, **probe_options) as probe:
        if setup is not None:
            setup(probe.pid)
        predicted = check_pid(probe.pid, capsys)
        return predicted, probe.go()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kernel.pid_max", lambda: 6000),  # free pid numbers in [300, pid_max)
        ("kernel.threads-max", lambda: Host().tasks_total() + 4000),  # every task counts
        ("vm.max_map_count", lambda: 9000),  # two mappings per thread stack on this glibc
    ],
)
def test_sysctl_limit(
    sysctls: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
    key: str,
    value: Callable[[], int],
) -> None:
    """Each host-wide sysctl, set low: check and the probe agree, and name it."""
    sysctls(key, value())
    predicted, result = predict_and_probe(capsys)
    assert_agree(predicted, result, key)
    assert result["maps_per_thread"] == 2


def test_pids_cgroup(pids_cgroup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """pids.max: the probe's cgroup lets 3000 tasks in, the probe itself being one."""
    (pids_cgroup / "pids.max").write_text("3000\n")

    def join_cgroup(pid: int) -> None:
        (pids_cgroup / "cgroup.procs").write_text(f"{pid}\n")

    predicted, result = predict_and_probe(capsys, join_cgroup)
    assert_agree(predicted, result, "pids.max")
    assert predicted["capacity"] == 2999


def test_pids_events_say_forks_were_refused(
    pids_cgroup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the probe hit pids.max, check of a process in that cgroup quotes pids.events."""
    (pids_cgroup / "pids.max").write_text("100\n")

    def join_cgroup(pid: int) -> None:
        (pids_cgroup / "cgroup.procs").write_text(f"{pid}\n")

    _, result = predict_and_probe(capsys, join_cgroup)
    assert result["stopped_by"] == "pids.max"
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        join_cgroup(sleeper.pid)
        pids = next(r for r in check_pid(sleeper.pid, capsys)["limits"] if r["name"] == "pids.max")
        refused = int((pids_cgroup / "pids.events").read_text().split()[1])
        assert refused >= 1
        assert (
            f"forks already refused (pids.events): /{pids_cgroup.relative_to('/')}: "
            in (pids["note"])
        )
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.fixture
def probe_for_nobody() -> Iterator[Path]:
    """A copy of the probe that uid 65534 can read (the checkout may sit under /root)."""
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 for an unprivileged child")
    directory = Path(tempfile.mkdtemp(prefix="sysprep-probe-"))
    try:
        directory.chmod(0o755)
        copy = directory / "threads.py"
        shutil.copyfile(probe_path("threads"), copy)
        copy.chmod(0o644)
        yield copy
    finally:
        shutil.rmtree(directory)


def test_rlimit_nproc_as_non_root(
    probe_for_nobody: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """RLIMIT_NPROC: a non-root uid's threads, host-wide, against its soft limit."""
    limit = 2500

    def become_nobody() -> None:
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    predicted, result = predict_and_probe(
        capsys, python=str(SYSTEM_PYTHON), probe=probe_for_nobody, preexec=become_nobody
    )
    assert_agree(predicted, result, "RLIMIT_NPROC")


def _vm_limit_test(
    resource_id: int, field: str, binding: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def limit_to_200_mib_more(pid: int) -> None:
        limit = int(Host().status(pid)[field].split()[0]) * 1024 + 200 * 1024 * 1024
        resource.prlimit(pid, resource_id, (limit, limit))

    predicted, result = predict_and_probe(capsys, limit_to_200_mib_more)
    assert_agree(predicted, result, binding)


def test_rlimit_as(capsys: pytest.CaptureFixture[str]) -> None:
    """RLIMIT_AS: 200 MiB above the probe's VmSize, stack + guard per thread."""
    _vm_limit_test(resource.RLIMIT_AS, "VmSize", "RLIMIT_AS", capsys)


def test_rlimit_data(capsys: pytest.CaptureFixture[str]) -> None:
    """RLIMIT_DATA: 200 MiB above the probe's VmData; thread stacks are data mappings."""
    _vm_limit_test(resource.RLIMIT_DATA, "VmData", "RLIMIT_DATA", capsys)


def test_calibrate_measures_about_35_kib(capsys: pytest.CaptureFixture[str]) -> None:
    """--calibrate starts real threads: the measured cost is the kernel's, ~35 KiB on x86_64."""
    run(["check", "--calibrate", "--threads", "1000", "--json"])
    per_thread = json.loads(capsys.readouterr().out)["per_thread"]
    assert per_thread["measured"] is True
    assert per_thread["kernel_stack"] == 16 * 1024  # THREAD_SIZE on x86_64
    assert 20 * 1024 <= per_thread["total"] <= 80 * 1024


def _check_as_nobody(*args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    root_option = ["--root", str(root)] if root else []
    return run_as_nobody([*root_option, "check", *args])


def test_check_as_non_root_reads_every_limit() -> None:
    """As uid 65534, check needs no privilege: no limit is unknown, and NPROC applies."""
    completed = _check_as_nobody("--json")
    assert completed.returncode in (0, 1), completed.stderr
    document = json.loads(completed.stdout)
    unknown = [limit["name"] for limit in document["limits"] if limit["status"] == "unknown"]
    assert unknown == []
    nproc = next(limit for limit in document["limits"] if limit["name"] == "RLIMIT_NPROC")
    assert nproc["note"] == f"threads of uid {NOBODY}"


def test_unreadable_pid_needs_root() -> None:
    """As uid 65534, --pid 1 cannot be read: exit 3 and one line naming the file."""
    completed = _check_as_nobody("--pid", "1", "--json")
    assert completed.returncode == 3
    assert completed.stdout == ""
    assert completed.stderr.strip().splitlines() == [
        (
            "sysprep: error: cannot read /proc/1/maps: permission denied;"
            " run sysprep as root or as the owner of pid 1"
        )
    ]


def test_unreadable_file_is_unknown_for_non_root(world_readable_dir: Path) -> None:
    """EACCES on a limit's file (as uid 65534) makes that limit unknown, never a pass."""
    fake = FakeHost(world_readable_dir / "host")
    (fake.root / "proc/sys/vm/max_map_count").chmod(0o000)
    completed = _check_as_nobody("--threads", "10", "--json", root=fake.root)
    assert completed.returncode == 1, completed.stderr
    limits = {limit["name"]: limit for limit in json.loads(completed.stdout)["limits"]}
    assert limits["vm.max_map_count"]["status"] == "unknown"
    assert "Permission denied" in limits["vm.max_map_count"]["note"]
    assert limits["kernel.pid_max"]["status"] == "ok"
