"""explain on the real kernel: each limit really hit, then explained (issue "explain").

A holder process creates threads of 64 KiB until pthread_create fails, then waits: the
limit stays used up while explain looks. The pids controller's refusals stay counted in
pids.events and the kernel log after the probe that hit them has gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest

from sysprep.cli import run
from tests.host.test_schemas import validate

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator

    from tests.realsystemd import Systemd

pytestmark = pytest.mark.root

NOBODY = 65534
HOLDER = """
import ctypes, sys
libc = ctypes.CDLL(None)
attr = ctypes.create_string_buffer(64)
libc.pthread_attr_init(attr)
libc.pthread_attr_setstacksize(attr, ctypes.c_size_t(64 * 1024))
semaphore = ctypes.create_string_buffer(32)
libc.sem_init(semaphore, 0, 0)
tids = (ctypes.c_ulong * 200000)()
start = ctypes.cast(libc.sem_wait, ctypes.c_void_p)
made = 0
while libc.pthread_create(ctypes.byref(tids, made * 8), attr, start, semaphore) == 0:
    made += 1
print(made, flush=True)
sys.stdin.read()
"""


def explain(capsys: pytest.CaptureFixture[str], pid: int) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = run(["explain", "--pid", str(pid), "--json"])
    document = json.loads(capsys.readouterr().out)
    validate("explain", document)
    return code, document


def held(setup: Callable[[], None] | None = None) -> subprocess.Popen[str]:
    """The holder, at its limit once it has printed how many it made."""
    holder = subprocess.Popen(
        ["/usr/bin/python3", "-S", "-c", HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=setup,  # noqa: PLW1509 - limits and uid before exec
    )
    assert holder.stdout is not None
    assert int(holder.stdout.readline()) > 0
    return holder


@pytest.fixture
def cleanup() -> Iterator[list[subprocess.Popen[str]]]:
    holders: list[subprocess.Popen[str]] = []
    yield holders
    for holder in holders:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize(
    ("key", "value", "limit"),
    [
        ("kernel.threads-max", None, "kernel.threads-max"),
        ("vm.max_map_count", 8000, "vm.max_map_count"),
    ],
)
def test_a_sysctl_used_up_is_named(
    sysctls: Callable[[str, object], None],
    cleanup: list[subprocess.Popen[str]],
    capsys: pytest.CaptureFixture[str],
    key: str,
    value: int | None,
    limit: str,
) -> None:
    """threads-max (the host's tasks plus 1500) or max_map_count (8000) used up by a holder:
    explain names it first, with the counts, and exits 0."""
    if value is None:
        value = int(Path("/proc/loadavg").read_text().split()[3].split("/")[1]) + 1500
    sysctls(key, value)
    cleanup.append(held())
    code, document = explain(capsys, cleanup[0].pid)
    assert code == 0
    assert document["causes"][0]["limit"] == limit
    assert document["causes"][0]["weight"] == 1
    assert document["causes"][0]["evidence"][0].startswith(f"{limit}: ")


def test_rlimit_nproc_used_up_is_named(
    cleanup: list[subprocess.Popen[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """uid 65534 with RLIMIT_NPROC 1500, used up by its holder: explain names it."""
    import resource

    def as_nobody() -> None:
        resource.setrlimit(resource.RLIMIT_NPROC, (1500, 1500))
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    cleanup.append(held(as_nobody))
    code, document = explain(capsys, cleanup[0].pid)
    assert code == 0
    assert document["causes"][0]["limit"] == "RLIMIT_NPROC"


def test_pids_refusals_are_quoted_after_the_fact(
    pids_cgroup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pids cgroup the probe hit: its pids.events and the kernel log's line are quoted
    for a process of that cgroup later, and weigh more than anything used up now."""
    cgroup = pids_cgroup
    sleeper = None
    try:
        (cgroup / "pids.max").write_text("50\n")
        join = f"echo $$ > {cgroup}/cgroup.procs && exec {sys.executable} -m sysprep"
        subprocess.run(
            ["sh", "-c", f"{join} probe threads --count 100 --stack 64K --json"],
            capture_output=True,
            check=False,
        )
        sleeper = subprocess.Popen(
            ["sh", "-c", f"echo $$ > {cgroup}/cgroup.procs && exec sleep 60"]
        )
        subprocess.run(["sleep", "0.2"], check=True)
        code, document = explain(capsys, sleeper.pid)
        assert code == 0
        first = document["causes"][0]
        assert (first["limit"], first["weight"]) == ("pids.max", 2)
        assert any("/pids.events: max " in line for line in first["evidence"])
        assert any(
            f"fork rejected by pids controller in /{cgroup.name}" in line
            for line in first["evidence"]
        )
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait()


def test_nothing_to_explain_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    """A process with room everywhere: no cause, exit 1."""
    code, document = explain(capsys, os.getpid())
    assert (code, document["causes"]) == (1, [])


BOMB = """[Unit]
StartLimitIntervalSec=60
StartLimitBurst=3
[Service]
TasksMax=50
Restart=on-failure
RestartSec=100ms
ExecStart=/bin/sh -c 'i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; wait'
"""


def test_a_service_that_failed_on_its_tasks_max_is_explained(systemd: Systemd) -> None:
    """A unit whose shell dies on "Cannot fork" under TasksMax=50, restarted until it is
    failed and its cgroup gone: explain --unit still names pids.max, quoting the kernel's
    line for that unit's own cgroup path, and systemd's restarts."""
    unit = systemd.run_path("systemd/system/sp-bomb.service")
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(BOMB)
    assert systemd.run("systemctl", "daemon-reload").returncode == 0
    systemd.run("systemctl", "start", "sp-bomb.service")
    deadline = time.monotonic() + 30
    while systemd.run("systemctl", "is-failed", "sp-bomb.service").stdout.strip() != "failed":
        assert time.monotonic() < deadline, "the bomb never failed"
        time.sleep(0.2)
    done = systemd.run(*systemd.sysprep_command("explain", "--unit", "sp-bomb", "--json"))
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    validate("explain", document)
    first = document["causes"][0]
    assert first["limit"] == "pids.max"
    path = "/system.slice/sp-bomb.service"
    assert any(line.endswith(f"pids controller in {path}") for line in first["evidence"])
    assert all(line.endswith(f" in {path}") for line in first["evidence"] if "kernel log" in line)
    assert any(line.startswith("NRestarts=") for line in document["history"])
