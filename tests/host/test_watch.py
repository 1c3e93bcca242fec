"""watch on the real kernel: a holder of threads in a real pids cgroup, sampled once."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.host.test_explain import held
from tests.host.test_schemas import validate

if TYPE_CHECKING:
    from collections.abc import Iterator

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
