"""--prometheus FILE: node_exporter's textfile format, parsed by Prometheus's own parser and
checked by promtool; written only where a textfile may be."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import stat
import subprocess
import time
import urllib.request
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sysprep.cli import run
from sysprep.errors import ExitCode
from tests.conftest import readable_tempdir
from tests.conftest import require_tool
from tests.nobody import run_as_nobody

if TYPE_CHECKING:
    from pathlib import Path

    from tests.fakehost import FakeHost


def metrics(path: Path) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name → labels → value, as Prometheus reads the file."""
    return parse(path.read_text())


def parse(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name → labels → value, as Prometheus reads the text."""
    return {
        family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
        for family in text_string_to_metric_families(text)
    }


def limit(name: str) -> tuple[tuple[str, str], ...]:
    return (("limit", name), ("unit", ""))


def test_the_figures_are_checks(
    fake: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every limit's current, in use and headroom, and the capacity, as --json says them;
    unlimited is +Inf; written whole (no temp file left beside it)."""
    fake.set_sysctl("kernel.pid_max", 32768)
    out = tmp_path / "prom" / "sysprep.prom"
    out.parent.mkdir()
    code = run(["--root", str(fake.root), "check", "--json", "--prometheus", str(out)])
    assert code == ExitCode.NOT_READY
    document = json.loads(capsys.readouterr().out)
    found = metrics(out)
    pid_max = next(r for r in document["limits"] if r["name"] == "kernel.pid_max")
    assert found["sysprep_limit_current"][limit("kernel.pid_max")] == pid_max["current"]
    assert found["sysprep_limit_in_use"][limit("kernel.pid_max")] == pid_max["in_use"]
    headroom = found["sysprep_limit_headroom"]
    assert headroom[(("counts", "threads"), *limit("kernel.pid_max"))] == pid_max["allows"]
    assert math.isinf(headroom[(("counts", "threads"), *limit("pids.max"))])
    assert found["sysprep_capacity"][()] == document["capacity"]
    assert found["sysprep_ready"][()] == 0
    assert found["sysprep_per_thread_bytes"][()] == document["per_thread_bytes"]
    assert [p.name for p in out.parent.iterdir()] == ["sysprep.prom"]


def test_bytes_and_counts_are_separate_families(fake: FakeHost, tmp_path: Path) -> None:
    """One unit per metric name: memory and the byte rlimits in *_bytes, counts apart; a
    value not known or not applying is left out, never +Inf."""
    out = tmp_path / "sysprep.prom"
    run(["--root", str(fake.root), "-q", "check", "--prometheus", str(out)])
    found = metrics(out)
    counts, in_bytes = found["sysprep_limit_current"], found["sysprep_limit_current_bytes"]
    assert limit("memory") in in_bytes
    assert limit("memory") not in counts
    assert limit("kernel.threads-max") in counts
    assert limit("RLIMIT_STACK") in in_bytes
    in_use = {**found["sysprep_limit_in_use"], **found["sysprep_limit_in_use_bytes"]}
    assert not any(math.isinf(v) for v in in_use.values())
    assert limit("RLIMIT_STACK") not in in_use  # no use to report: the line is left out
    headroom = found["sysprep_limit_headroom"]
    assert (("counts", "threads"), *limit("RLIMIT_STACK")) not in headroom  # never binds
    ratios = found["sysprep_limit_headroom_ratio"]
    assert ratios
    assert all(0 <= v <= 1 for v in ratios.values())


def test_an_unreadable_limit_has_no_value_and_says_unknown(fake: FakeHost, tmp_path: Path) -> None:
    """A limit that could not be read has no value line at all (never a number a dashboard
    could trust), and its status says unknown."""
    (fake.root / "proc/sys/vm/max_map_count").unlink()
    out = tmp_path / "sysprep.prom"
    run(["--root", str(fake.root), "-q", "check", "--prometheus", str(out)])
    found = metrics(out)
    assert limit("vm.max_map_count") not in found["sysprep_limit_current"]
    status = found["sysprep_limit_status"]
    assert status[(*limit("vm.max_map_count")[:1], ("status", "unknown"), ("unit", ""))] == 1
    assert status[(*limit("vm.max_map_count")[:1], ("status", "ok"), ("unit", ""))] == 0
    assert "sysprep_capacity" not in found  # not known while a limit is not


def test_profile_compliance_is_a_family(fake: FakeHost, tmp_path: Path) -> None:
    """--profile adds sysprep_profile_compliant{profile}."""
    out = tmp_path / "sysprep.prom"
    run(["--root", str(fake.root), "-q", "check", "--profile", "elasticsearch",
         "--prometheus", str(out)])  # fmt: skip
    assert metrics(out)["sysprep_profile_compliant"] == {(("profile", "elasticsearch"),): 0}


def test_promtool_finds_nothing_to_lint(fake: FakeHost, tmp_path: Path) -> None:
    """promtool check metrics (Prometheus's own linter) is clean, with a profile and
    connections too."""
    promtool = require_tool("promtool")
    out = tmp_path / "sysprep.prom"
    run(["--root", str(fake.root), "-q", "check", "--profile", "million-connections",
         "--prometheus", str(out)])  # fmt: skip
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=out.read_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, ""), done.stdout + done.stderr


@pytest.mark.parametrize("what", ["fifo", "symlink", "directory", "socket", "device", "other"])
def test_only_a_regular_file_of_its_own_is_replaced(
    fake: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    """A FIFO, a symlink (as /dev/stdout is), a directory, a socket, a device node (made
    with mknod here, never the real /dev/null) or another user's file at the path: one line,
    exit 2, the thing untouched; the report is printed all the same."""
    path = tmp_path / "target"
    if what == "fifo":
        os.mkfifo(path)
    elif what == "symlink":
        (tmp_path / "elsewhere").write_text("x")
        path.symlink_to(tmp_path / "elsewhere")
    elif what == "directory":
        path.mkdir()
    elif what == "socket":
        import socket

        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    elif what == "device":
        if os.geteuid() != 0:
            pytest.skip("mknod needs root")
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    else:
        path.write_text("someone else's\n")
        if os.geteuid() != 0:
            pytest.skip("chown needs root")
        os.chown(path, 65534, 65534)
    before = path.lstat()
    capsys.readouterr()
    code = run(["--root", str(fake.root), "check", "--prometheus", str(path)])
    out, err = capsys.readouterr()
    assert code == ExitCode.BAD_INPUT
    assert "can this host run" in out.lower()  # the report, before the refusal
    assert err.count("\n") == 1
    assert err.startswith(f"sysprep: error: --prometheus {path}: refusing")
    after = path.lstat()
    assert (after.st_mode, after.st_ino, after.st_uid) == (
        before.st_mode,
        before.st_ino,
        before.st_uid,
    )


@pytest.mark.parametrize("where", ["missing", "proc", "sys", "readonly"])
def test_a_textfile_goes_only_into_a_directory_that_is_there(
    fake: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """A missing parent directory is never created; /proc and /sys are the kernel's; a
    directory the caller may not write says so. One line each, exit 2, -q keeps the code."""
    path = {
        "missing": tmp_path / "no" / "such" / "sysprep.prom",
        "proc": tmp_path / "proc-link" / "sysprep.prom",
        "sys": tmp_path / "sys-link" / "sysprep.prom",
        "readonly": tmp_path / "ro" / "sysprep.prom",
    }[where]
    if where == "proc":
        (tmp_path / "proc-link").symlink_to("/proc/sys/kernel")
    elif where == "sys":
        (tmp_path / "sys-link").symlink_to("/sys/kernel")
    elif where == "readonly":
        (tmp_path / "ro").mkdir(mode=0o555)
    if where == "readonly" and os.geteuid() == 0:  # root writes any directory: be nobody
        with readable_tempdir() as tree:
            shutil.copytree(fake.root, tree / "host", symlinks=True)
            (tree / "ro").mkdir(mode=0o755)
            args = ["--root", str(tree / "host"), "-q", "check"]
            done = run_as_nobody([*args, "--prometheus", str(tree / "ro/sysprep.prom")])
            assert done.returncode == ExitCode.BAD_INPUT, done.stderr
            assert not (tree / "ro/sysprep.prom").exists()
        return
    capsys.readouterr()
    code = run(["--root", str(fake.root), "-q", "check", "--prometheus", str(path)])
    assert code == ExitCode.BAD_INPUT
    assert not (tmp_path / "no").exists()


def test_an_own_file_is_replaced(fake: FakeHost, tmp_path: Path) -> None:
    """The caller's own regular file (last refresh's) is replaced atomically."""
    path = tmp_path / "sysprep.prom"
    path.write_text("old\n")
    assert run(["--root", str(fake.root), "-q", "check", "--prometheus", str(path)]) in (0, 1)
    assert "sysprep_ready" in path.read_text()


def test_node_exporter_scrapes_the_textfile(fake: FakeHost, tmp_path: Path) -> None:
    """A real node_exporter (Debian's), on 127.0.0.1 with the textfile as its only
    collector, serves sysprep's series as written, and node_textfile_scrape_error 0."""
    exporter = require_tool("prometheus-node-exporter")
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    run(["--root", str(fake.root), "-q", "check", "--profile", "elasticsearch",
         "--prometheus", str(textfiles / "sysprep.prom")])  # fmt: skip
    with socket.socket() as probe:  # a free port: bound, then let go for node_exporter
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [exporter, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
         "--collector.textfile", f"--collector.textfile.directory={textfiles}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        scraped = _scrape(f"http://127.0.0.1:{port}/metrics", process)
    finally:
        process.terminate()
        process.wait(timeout=10)
    served, written = parse(scraped), metrics(textfiles / "sysprep.prom")
    assert served["node_textfile_scrape_error"] == {(): 0}
    for name in written:
        assert served[name] == written[name], name
    assert served["sysprep_profile_compliant"] == {(("profile", "elasticsearch"),): 0}
    mtimes = served["node_textfile_mtime_seconds"]
    assert [dict(labels)["file"].endswith("sysprep.prom") for labels in mtimes] == [True]


def _scrape(url: str, process: subprocess.Popen[str]) -> str:
    """The metrics page, once node_exporter listens (a few seconds at most)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as page:  # noqa: S310 - 127.0.0.1
                return str(page.read().decode())
        except OSError:  # noqa: PERF203 - not listening yet: try again
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = process.stderr.read() if process.stderr else ""
                raise AssertionError(f"node_exporter did not serve {url}: {stderr}") from None
            time.sleep(0.1)
