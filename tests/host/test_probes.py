"""The probes on the real kernel: their JSON contract, the memory guard, signals, the wheel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING
from typing import Any

import psutil
import pytest

from sysprep.cli import run
from sysprep.errors import ExitCode
from sysprep.host import Host
from sysprep.probe_runner import probe_path
from tests.host.test_schemas import SCHEMAS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

THREAD_KEYS = {
    "target",
    "held",
    "stopped_by",
    "create_seconds",
    "per_thread_bytes",
    "maps_per_thread",
}
COST_KEYS = {"rss", "kernel_stack", "page_tables", "slab", "mem_available", "committed"}


def run_probe(name: str, *args: str) -> tuple[int, dict[str, Any]]:
    completed = subprocess.run(
        [sys.executable, "-S", str(probe_path(name)), *args, "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    document = json.loads(completed.stdout) if completed.stdout else {}
    return completed.returncode, document


def oom_kills() -> int:
    for line in Host().read("proc/vmstat").splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


class TestThreadsProbe:
    def test_hold_measures_what_each_thread_costs(self) -> None:
        """3,000 threads alive at once; each costs a 16 KiB kernel stack and ~35 KiB in all."""
        status, document = run_probe("threads", "--count", "3000")
        assert status == 0
        assert set(document) >= THREAD_KEYS
        assert set(document["per_thread_bytes"]) == COST_KEYS
        assert (document["held"], document["stopped_by"]) == (3000, None)
        costs = document["per_thread_bytes"]
        assert 15_000 <= costs["kernel_stack"] <= 17_500
        assert costs["rss"] >= 4096
        # MemAvailable moves with whatever else the kernel frees meanwhile; the counters
        # each thread adds to are the steady measure (and what check --calibrate uses).
        parts = costs["kernel_stack"] + costs["page_tables"] + costs["slab"] + costs["rss"]
        assert 30_000 <= parts <= 45_000
        assert isinstance(costs["mem_available"], int)
        # Committed_AS is host-wide: other processes move it a little meanwhile.
        assert costs["committed"] >= 0.99 * document["stack_bytes"]
        assert document["maps_per_thread"] == 2  # glibc 2.36: stack + guard
        assert document["oom_kills"] == 0

    def test_stack_option_sets_the_stack(self) -> None:
        """--stack 64K gives 64 KiB stacks: Committed_AS grows by about that per thread."""
        status, document = run_probe("threads", "--count", "2000", "--stack", "64K")
        assert status == 0
        assert document["stack_bytes"] == 64 * 1024
        assert 60_000 <= document["per_thread_bytes"]["committed"] <= 80_000

    def test_seed_mode_reports_peak_alive(self) -> None:
        """seed: every thread sleeps 1 s; all are created, at most that many alive at once."""
        status, document = run_probe(
            "threads", "--count", "3000", "--mode", "seed", "--stack", "64K"
        )
        assert status == 0
        assert document["mode"] == "seed"
        assert document["created"] == 3000
        assert 0 < document["held"] <= 3000

    def test_memory_guard_stops_before_the_floor(self) -> None:
        """A floor 64 MiB under MemAvailable stops the probe early, and no OOM kill happens."""
        floor = Host().meminfo()["MemAvailable"] - 64 * 1024 * 1024
        before = oom_kills()
        status, document = run_probe("threads", "--count", "100000", "--memory-floor", str(floor))
        assert status == 1
        assert document["stopped_by"] == "memory"
        assert 0 < document["held"] < 100000
        assert oom_kills() == before

    def test_sigterm_releases_every_thread(self) -> None:
        """SIGTERM stops creation; the probe releases, joins, reports and exits 1."""
        child = subprocess.Popen(
            [
                sys.executable,
                "-S",
                str(probe_path("threads")),
                "--count",
                "30000",
                "--stack",
                "64K",
                "--progress",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stderr is not None
        assert json.loads(child.stderr.readline())["event"] == "progress"
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=60)
        document = json.loads(out)
        assert child.returncode == 1
        assert document["stopped_by"] == "signal"
        assert document["held"] < 30000

    @pytest.mark.parametrize(
        ("args", "error"),
        [
            (["--count", "0"], "invalid count '0'"),
            (["--count", "lots"], "invalid count 'lots'"),
            (["--stack", "8Q"], "invalid size '8Q'"),
            (["--mode", "sleepy"], "invalid mode 'sleepy'"),
            (["--mode=sleepy"], "invalid mode 'sleepy'"),
            (["--cuont", "5"], "unknown option '--cuont'"),
            (["--count"], "--count needs a value"),
            (["--wait=yes"], "--wait takes no value"),
        ],
    )
    def test_bad_arguments_exit_2(self, args: list[str], error: str) -> None:
        """Bad arguments: exit 2, nothing on stdout, the last line of stderr names the problem."""
        completed = subprocess.run(
            [sys.executable, "-S", str(probe_path("threads")), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (completed.returncode, completed.stdout) == (2, "")
        assert completed.stderr.splitlines()[-1].startswith(f"threads.py: error: {error}")

    def test_options_in_both_spellings(self) -> None:
        """--name=value and --name value read the same; --help lists every option, exit 0."""
        status, document = run_probe("threads", "--count=2,000", "--stack", "64K", "--mode=seed")
        assert status == 0
        assert (document["target"], document["stack_bytes"], document["mode"]) == (
            2000,
            65536,
            "seed",
        )
        completed = subprocess.run(
            [sys.executable, "-S", str(probe_path("threads")), "--help"],
            capture_output=True,
            text=True,
            check=True,
        )
        for option in ("--count", "--stack", "--mode", "--memory-floor", "--progress", "--json"):
            assert option in completed.stdout


class TestMapsProbe:
    def test_makes_the_mappings_asked(self) -> None:
        """10,000 mappings, about a quarter KiB of kernel memory each."""
        status, document = run_probe("maps", "--count", "10000")
        assert status == 0
        assert document["held"] >= 10000
        assert document["stopped_by"] is None
        assert 0 < document["per_mapping_bytes"]["slab"] < 2048

    @pytest.mark.root
    def test_stops_at_max_map_count(self, sysctls: Callable[[str, object], None]) -> None:
        """At vm.max_map_count the probe stops, names it, and had used every mapping."""
        sysctls("vm.max_map_count", 20000)
        status, document = run_probe("maps", "--count", "50000")
        assert status == 1
        assert document["stopped_by"] == "vm.max_map_count"
        assert abs(document["maps_before"] + document["held"] - 20000) <= 20

    def test_bad_count_exits_2(self) -> None:
        """A count of zero is refused."""
        assert run_probe("maps", "--count", "0") == (2, {})


class TestProbeCommand:
    def test_json_is_the_probe_document(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`sysprep probe threads --json` prints the probe's document and exits 0."""
        assert run(["probe", "threads", "--count", "2000", "--json"]) == ExitCode.OK
        document = json.loads(capsys.readouterr().out)
        assert (document["probe"], document["held"]) == ("threads", 2000)

    @pytest.mark.root
    def test_default_count_is_checks_capacity(
        self, sysctls: Callable[[str, object], None], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without --count the probe holds what check says this host allows, within 1 %.

        Other tasks take pids between check and probe: when the probe falls short, it is by a
        few threads and at the limit check named.
        """
        sysctls("kernel.pid_max", 5000)
        status = run(["probe", "threads", "--stack", "64K", "--json"])
        document = json.loads(capsys.readouterr().out)
        assert 4000 < document["target"] < 4700
        if status == ExitCode.OK:
            assert document["held"] == document["target"]
        else:
            assert status == ExitCode.NOT_READY
            assert document["stopped_by"] == "kernel.pid_max"
            assert document["target"] - document["held"] <= document["target"] // 100

    @pytest.mark.root
    @pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
    def test_a_signal_leaves_no_process_behind(
        self, signum: int, sysctls: Callable[[str, object], None]
    ) -> None:
        """Ctrl-C or SIGTERM to sysprep stops the probe child; both are gone, exit 130.

        The target is far more than the signal lets it create, so the probe cannot finish
        first: the signal arrives after ~300 threads, and each costs ~30 KiB meanwhile.
        """
        for key, value in (
            ("kernel.pid_max", 4194304),
            ("kernel.threads-max", 400000),
            ("vm.max_map_count", 800000),
        ):
            sysctls(key, value)
        sysprep = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sysprep",
                "probe",
                "threads",
                "--count",
                "300000",
                "--stack",
                "16K",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        probe = _wait_for_probe_with_threads(sysprep.pid, threads=300)
        sysprep.send_signal(signum)
        _, err = sysprep.communicate(timeout=60)
        assert sysprep.returncode == ExitCode.INTERRUPTED
        assert err.strip().splitlines() == [
            "sysprep: error: interrupted: the threads probe stopped and released what it held"
        ]
        assert not psutil.pid_exists(probe) or psutil.Process(probe).status() == "zombie"


def _wait_for_probe_with_threads(parent: int, *, threads: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for child in psutil.Process(parent).children():
            try:
                if child.num_threads() >= threads:
                    return child.pid
            except psutil.NoSuchProcess:  # noqa: PERF203 - polling a process that may exit
                continue
        time.sleep(0.002)
    pytest.fail("the probe never started its threads")


def test_probes_and_profiles_ship_in_the_wheel(tmp_path: Path) -> None:
    """The wheel carries probes/ and profiles/ inside the package; sysprep finds them there."""
    source = probe_path("threads").parents[1]
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("sysprep-*.whl"))
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    code = (
        "import sys; from sysprep import probe_runner, profile; from sysprep.cli import run;"
        "from sysprep.host import Host;"
        "print(probe_runner.probe_path('threads'), file=sys.stderr);"
        "print(profile.find('million-threads', Host()), file=sys.stderr);"
        "sys.exit(run(['probe', 'threads', '--count', '500', '--json']))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert completed.returncode == 0, completed.stderr
    shipped = {p.name for p in (site / "sysprep/schemas").glob("*.schema.json")}
    assert shipped == {p.name for p in SCHEMAS.glob("*.schema.json")}
    assert len(shipped) == 11
    assert completed.stderr.strip().splitlines() == [
        str(site / "sysprep/_probes/threads.py"),
        str(site / "sysprep/_profiles/million-threads.toml"),
    ]
    assert json.loads(completed.stdout)["held"] == 500
