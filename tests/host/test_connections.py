"""The connections probe on the real kernel, in namespaces it makes and removes.

Every test asserts that no network namespace and no probe process is left behind.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import psutil
import pytest

from sysprep.cli import run
from sysprep.errors import ExitCode
from sysprep.host import Host
from sysprep.netns import NETNS_DIR
from sysprep.probe_runner import probe_path

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator

pytestmark = pytest.mark.root


def namespaces() -> list[str]:
    directory = Path(NETNS_DIR)
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def probe_processes() -> list[int]:
    """Processes running the connections probe (the driver, its workers and clients)."""
    probe = str(probe_path("connections"))
    return [p.pid for p in psutil.process_iter(["cmdline"]) if probe in (p.info["cmdline"] or [])]


@pytest.fixture(autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    before = namespaces()
    yield
    assert namespaces() == before, "a network namespace was left behind"
    assert probe_processes() == [], "a probe process was left behind"


def sysprep_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = run(list(args))
    out = capsys.readouterr().out
    return code, json.loads(out) if out else {}


def test_probe_holds_connections_in_its_own_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    """3,000 connections, a message on each, one fd each on the server; the netns is gone after."""
    code, document = sysprep_json(capsys, "probe", "connections", "--count", "3000", "--json")
    assert code == ExitCode.OK
    assert (document["held"], document["stopped_by"]) == (3000, None)
    assert document["fds_per_connection"] == 1.0
    assert 1000 < document["per_connection_bytes"]["slab"] < 20_000


def test_thread_per_connection_server(capsys: pytest.CaptureFixture[str]) -> None:
    """--server threads: the seed's one thread per client, measured the same way."""
    code, document = sysprep_json(
        capsys, "probe", "connections", "--count", "2000", "--server", "threads", "--json"
    )
    assert code == ExitCode.OK
    assert (document["server"], document["held"]) == ("threads", 2000)
    # A thread each: its task_struct shows in slab (its stack pages, in KernelStack, do not).
    assert document["per_connection_bytes"]["slab"] > 10_000


def test_nofile_prediction_matches_the_probe(capsys: pytest.CaptureFixture[str]) -> None:
    """RLIMIT_NOFILE set low on the waiting server: check and the probe agree within 1 %."""
    with Host().network_namespace() as enter:
        child = subprocess.Popen(
            [
                sys.executable,
                "-S",
                str(probe_path("connections")),
                "--count",
                "8000",
                "--workers",
                "1",
                "--wait",
                "--json",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=enter,  # noqa: PLW1509
        )
        try:
            assert child.stderr is not None
            pid = json.loads(child.stderr.readline())["pid"]
            hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)[1]
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (3000, hard))
            _, predicted = sysprep_json(
                capsys, "check", "--pid", str(pid), "--connections", "8000", "--json"
            )
            out, _ = child.communicate("go\n", timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
    result = json.loads(out)
    capacity = predicted["connections"]["capacity"]
    assert predicted["connections"]["binding"] == "RLIMIT_NOFILE"
    assert result["stopped_by"] == "RLIMIT_NOFILE"
    assert abs(result["held"] - capacity) <= capacity / 100, (capacity, result["held"])


def test_port_range_prediction_matches_the_probe(
    sysctls: Callable[[str, object], None], capsys: pytest.CaptureFixture[str]
) -> None:
    """2,000 ports for one address pair: check --sources 1 and the probe agree within 1 %."""
    sysctls("net.ipv4.ip_local_port_range", "40000 41999")
    _, predicted = sysprep_json(
        capsys, "check", "--connections", "5000", "--sources", "1", "--json"
    )
    code, result = sysprep_json(
        capsys, "probe", "connections", "--count", "5000", "--sources", "1", "--json"
    )
    capacity = predicted["connections"]["capacity"]
    assert predicted["connections"]["binding"] == "net.ipv4.ip_local_port_range"
    assert code == ExitCode.NOT_READY
    assert result["stopped_by"] == "net.ipv4.ip_local_port_range"
    assert abs(result["held"] - capacity) <= capacity / 100, (capacity, result["held"])


def test_signal_removes_namespace_and_processes() -> None:
    """SIGTERM to sysprep mid-probe: exit 130, namespace removed, every process gone."""
    sysprep = subprocess.Popen(
        [sys.executable, "-m", "sysprep", "probe", "connections", "--count", "200000", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(probe_processes()) < 3:
        time.sleep(0.05)
    assert probe_processes(), "the probe never started"
    sysprep.send_signal(signal.SIGTERM)
    _, err = sysprep.communicate(timeout=120)
    assert sysprep.returncode == ExitCode.INTERRUPTED, err
    time.sleep(0.2)
    assert not any(name.startswith("sysprep-probe-") for name in namespaces())


def test_kill_9_of_sysprep_leaves_no_probe_and_no_namespace() -> None:
    """kill -9 of `sysprep probe connections`: the probe and its client and server processes
    die with it at once (parent-death SIGKILL), and their network namespace with them: it
    has no name under /run/netns for anyone to remove."""
    sysprep = subprocess.Popen(
        [sys.executable, "-m", "sysprep", "probe", "connections", "--count", "40000", "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    family: list[psutil.Process] = []
    while time.monotonic() < deadline and len(family) < 3:  # the probe and some clients
        family = psutil.Process(sysprep.pid).children(recursive=True)
        time.sleep(0.01)
    assert len(family) >= 3, "the probe never started its clients"
    inode = Path(f"/proc/{family[0].pid}/ns/net").stat().st_ino
    assert inode != Path("/proc/self/ns/net").stat().st_ino  # in a namespace of its own
    assert not [name for name in namespaces() if name.startswith("sysprep-probe-")]
    sysprep.kill()
    sysprep.wait()
    _, alive = psutil.wait_procs(family, timeout=2)
    assert alive == [], f"still running 2 s after sysprep died: {alive}"
    assert not [name for name in namespaces() if name.startswith("sysprep-probe-")]


def test_an_older_versions_leftover_namespace_is_removed() -> None:
    """A namespace an older sysprep named under /run/netns, its sysprep dead: the next run
    of the probe removes it."""
    stale = "sysprep-probe-4194305-abcdef"  # above any pid: its owner is never alive
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        assert run(["probe", "connections", "--count", "100", "--json"]) == ExitCode.OK
        assert stale not in namespaces()
    finally:
        subprocess.run(["ip", "netns", "delete", stale], check=False, capture_output=True)
