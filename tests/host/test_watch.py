"""watch on the real kernel: a holder of threads in a real pids cgroup, sampled once."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.host.test_explain import held
from tests.host.test_schemas import validate

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.realsystemd import Systemd

pytestmark = pytest.mark.root


@contextlib.contextmanager
def holding(cgroup: Path, tasks: int) -> Iterator[subprocess.Popen[str]]:
    """A holder of threads in *cgroup*, stopped by its pids.max of *tasks*; killed after."""

    def join() -> None:
        (cgroup / "cgroup.procs").write_text("0\n")
        (cgroup / "pids.max").write_text(f"{tasks}\n")

    holder = held(join)
    try:
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_once_json_reports_the_cgroup_headroom_and_warns(pids_cgroup: Path) -> None:
    """A holder of 150 threads whose cgroup allows 200: pids.max has 49 left of 200 (24.5 %);
    --warn 30 exits 1, --warn 10 exits 0; the document follows its schema."""
    with holding(pids_cgroup, 151) as holder:  # threads until the cgroup's 151 tasks
        (pids_cgroup / "pids.max").write_text("200\n")
        command = [sys.executable, "-m", "sysprep", "watch", "--pid", str(holder.pid), "--once"]
        done = subprocess.run(
            [*command, "--json", "--warn", "30"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 1, done.stderr
        document = json.loads(done.stdout)
        validate("watch", document)
        pids = next(row for row in document["limits"] if row["limit"] == "pids.max")
        assert (pids["used"], pids["limit_value"], pids["headroom"]) == (151, 200, 49)
        prom = Path(tempfile.mkdtemp()) / "watch.prom"
        calm = subprocess.run(
            [*command, "--json", "--warn", "10", "--prometheus", str(prom)],
            capture_output=True,
            check=False,
        )
        assert calm.returncode == 0
        families = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
        headroom = {s.labels["limit"]: s.value for s in families["sysprep_limit_headroom"].samples}
        assert headroom["pids.max"] == 49
        shutil.rmtree(prom.parent)


def test_it_needs_a_process() -> None:
    """watch needs a process: --pid and --unit together, or neither, is refused."""
    done = subprocess.run(
        [sys.executable, "-m", "sysprep", "watch"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "sysprep: error: watch needs one of --pid or --unit"


def test_watch_and_check_read_the_same_model(pids_cgroup: Path) -> None:
    """For the same holder at the same moment, watch --once --json and check --pid --json
    give every limit the same current value and the same in-use count: one model, two views.
    (The host-wide task count may move between the two runs: a few kernel tasks at most.)"""
    with holding(pids_cgroup, 120) as holder:
        pid = str(holder.pid)
        base = [sys.executable, "-m", "sysprep"]
        watched = subprocess.run(
            [*base, "watch", "--pid", pid, "--once", "--json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        checked = subprocess.run(
            [*base, "check", "--pid", pid, "--json", "--threads", "1", "--connections", "1"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        rows = {row["limit"]: row for row in json.loads(watched.stdout)["limits"]}
        limits = {r["name"]: r for r in json.loads(checked.stdout)["limits"]}
        assert set(rows) >= {"kernel.threads-max", "kernel.pid_max", "pids.max",
                             "vm.max_map_count", "RLIMIT_NOFILE", "memory"}  # fmt: skip
        for name, row in rows.items():
            assert row["limit_value"] == limits[name]["current"] or name == "memory", name
            if name in ("kernel.threads-max", "kernel.pid_max", "memory"):  # host-wide
                continue
            assert row["used"] == limits[name]["in_use"], name
        assert (rows["pids.max"]["used"], rows["pids.max"]["limit_value"]) == (120, 120)
        for name in ("kernel.threads-max", "kernel.pid_max"):
            assert abs(rows[name]["used"] - limits[name]["in_use"]) <= 5, name


def test_the_textfile_is_never_written_over_a_fifo(tmp_path: Path) -> None:
    """watch --prometheus refuses a FIFO (or any file not its own) before the first refresh:
    one line, exit 2, the FIFO still a FIFO."""
    fifo = tmp_path / "textfile"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "sysprep", "watch", "--pid", str(os.getpid()), "--once",
         "--prometheus", str(fifo)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"sysprep: error: --prometheus {fifo}: refusing to replace a FIFO"
    )
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


WATCH = [sys.executable, "-m", "sysprep", "watch"]


def _watching(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*WATCH, *args, "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_watched_process_that_exits_is_one_line() -> None:
    """The process exits under a live watch: one line, exit 1, never a traceback."""
    sleeper = subprocess.Popen(["sleep", "60"])
    watching = _watching("--pid", str(sleeper.pid))
    time.sleep(1.0)
    sleeper.kill()
    sleeper.wait()
    _, err = watching.communicate(timeout=30)
    assert watching.returncode == 1, err
    assert err.strip().splitlines() == [
        f"sysprep: error: pid {sleeper.pid} has exited: nothing left to watch"
    ]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_ends_watch_in_one_line(signum: signal.Signals) -> None:
    """SIGTERM, SIGHUP and Ctrl-C: one line, exit 130."""
    watching = _watching("--pid", str(os.getpid()))
    time.sleep(1.0)
    watching.send_signal(signum)
    _, err = watching.communicate(timeout=30)
    assert watching.returncode == 130, err
    assert err.strip().splitlines() == ["sysprep: interrupted"]


@pytest.mark.parametrize(
    "options", [["--interval", "inf"], ["--interval", "nan"], ["--interval", "1e308"],
                ["--warn", "nan"]],
)  # fmt: skip
def test_an_interval_or_warning_that_is_not_a_number_is_bad_input(options: list[str]) -> None:
    """inf, nan and 1e308 seconds, and a nan warning (which would never warn): exit 2."""
    done = subprocess.run(
        [*WATCH, "--pid", str(os.getpid()), "--once", *options],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1


def test_a_zombie_is_refused() -> None:
    """A zombie has no limits in use to follow: one line, exit 2, never healthy headroom."""
    child = subprocess.Popen(["true"])
    time.sleep(0.5)  # exited, not yet reaped: a zombie
    try:
        done = subprocess.run([*WATCH, "--pid", str(child.pid), "--once"],
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "is a zombie" in done.stderr
    finally:
        child.wait()


def test_another_users_process_is_watched() -> None:
    """A process of uid 65534, watched by this root without CAP_SYS_RESOURCE: its limits
    come from /proc/PID/limits (world-readable), never from prlimit(2)."""
    sleeper = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "sleep", "60"])  # fmt: skip
    try:
        time.sleep(0.3)
        done = subprocess.run([*WATCH, "--pid", str(sleeper.pid), "--once", "--json"],
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode in (0, 1), done.stderr
        rows = {row["limit"] for row in json.loads(done.stdout)["limits"]}
        assert {"RLIMIT_NPROC", "RLIMIT_NOFILE"} <= rows
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_restarted_service_is_followed(systemd: Systemd) -> None:
    """watch --unit of a service restarted under it follows its new main pid, in one line."""
    started = systemd.run("systemd-run", "--unit=sp-watched", "/bin/sleep", "300")
    assert started.returncode == 0, started.stderr
    watching = subprocess.Popen(
        ["nsenter", "-t", str(systemd.pid), "-a",
         *systemd.sysprep_command("watch", "--unit", "sp-watched", "--interval", "0.2")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    time.sleep(1.5)
    assert systemd.run("systemctl", "restart", "sp-watched").returncode == 0
    time.sleep(1.5)
    os.killpg(watching.pid, signal.SIGINT)  # nsenter forks: the whole group, as a terminal
    out, err = watching.communicate(timeout=30)
    assert err.strip().splitlines() == ["sysprep: interrupted"]  # nsenter dies of it too
    assert "sp-watched.service: pid " in out
    assert "has exited; following its main pid" in out
