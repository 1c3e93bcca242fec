"""Fixtures: fake hosts for unit tests, sysctl restoration and the `root` gate for host tests."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.fakehost import FakeHost

PIDS_V1 = Path("/sys/fs/cgroup/pids")  # the cgroup v1 pids hierarchy (this VM has one)

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator

    from tests.realcontainer import Podman
    from tests.realsystemd import Systemd

PROC_SYS = Path("/proc/sys")
# Where every test on the real kernel starts: a stock kernel's defaults (this VM's), written
# before each one whatever the host had, so that a host whose limits are already raised (a
# systemd host's pid_max 4194304, a tuned host's max_map_count) runs the same tests. Each
# value is written back to the host's own after the test, pass or fail.
STOCK_SYSCTLS = {
    "kernel.pid_max": "32768",
    "kernel.threads-max": "192730",
    "vm.max_map_count": "65530",
    "vm.swappiness": "60",
    "vm.overcommit_memory": "0",
    "fs.file-max": "2466177",
    "fs.nr_open": "1048576",
    "net.core.somaxconn": "4096",
    "net.ipv4.tcp_max_syn_backlog": "2048",
    "net.ipv4.ip_local_port_range": "32768 60999",
}
# Every sysctl a test (or the sysprep it runs) may change; restored after each test.
GUARDED_SYSCTLS = tuple(STOCK_SYSCTLS)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-root",
        action="store_true",
        help="fail, instead of skipping, the tests marked root when not root (default on CI)",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") and os.geteuid() != 0:
        # CI runs as root: a root test that would skip there is a failure instead.
        if item.config.getoption("--require-root") or os.environ.get("CI") == "true":
            pytest.fail("needs root (--require-root)")
        pytest.skip("needs root")


def require_tool(name: str) -> str:
    """The path of command *name*, this interpreter's own (a venv's script) first; a skip
    naming it where missing (a failure on CI, whose .ci/run installs every tool a test
    needs)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    path = shutil.which(name, path=search)
    if path is None:
        why = f"{name} is not installed (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return path


@contextmanager
def readable_tempdir(prefix: str = "sysprep-test-") -> Iterator[Path]:
    """A temp directory uid 65534 can reach (pytest's own tmp_path is root-only), removed."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A temp directory uid 65534 can reach, for one test."""
    with readable_tempdir() as directory:
        yield directory


@pytest.fixture
def pids_cgroup() -> Iterator[Path]:
    """A fresh v1 pids cgroup, removed afterwards (its tasks are gone by then)."""
    if not (PIDS_V1 / "cgroup.procs").exists():
        pytest.skip("no cgroup v1 pids hierarchy on this host")
    path = PIDS_V1 / f"sysprep-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        path.rmdir()


@pytest.fixture(scope="module")
def systemd() -> Iterator[Systemd]:
    """A real systemd, booted once per test module as ../shared/REAL-HOSTS.md says."""
    from tests.realsystemd import SYSTEMD
    from tests.realsystemd import booted_systemd

    if not SYSTEMD.exists() or not shutil.which("nsenter"):
        pytest.skip("no systemd to boot here")
    with booted_systemd() as booted:
        yield booted


@pytest.fixture(scope="session")
def sysprep_image() -> Iterator[str]:
    """The sysprep image, built once per session from this checkout as users build it."""
    from tests.realcontainer import built_image
    from tests.realcontainer import missing

    why = missing()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(why)  # CI installs it: a container test that skips there is a failure
        pytest.skip(why)
    with built_image() as image:
        yield image


@pytest.fixture(scope="module")
def podman(sysprep_image: str) -> Iterator[Podman]:
    """A real container runtime (podman + runc), as ../shared/REAL-HOSTS.md says; per module,
    every container, cgroup and sysctl it changed is put back."""
    from tests.realcontainer import container_runtime

    with container_runtime(sysprep_image) as runtime:
        yield runtime


@pytest.fixture(name="fake")
def _fake(tmp_path: Path) -> FakeHost:
    """A fake host tree: an ordinary cgroup v2 systemd host, seen by uid 1000."""
    return FakeHost(tmp_path / "host")


def read_sysctl(key: str) -> str:
    return " ".join((PROC_SYS / key.replace(".", "/")).read_text().split())


def write_sysctl(key: str, value: object) -> None:
    (PROC_SYS / key.replace(".", "/")).write_text(f"{value}\n")


@pytest.fixture
def sysctls() -> Iterator[Callable[[str, object], None]]:
    """Yield set(key, value); every sysctl set is written back afterwards, pass or fail."""
    saved: dict[str, str] = {}

    def set_(key: str, value: object) -> None:
        saved.setdefault(key, read_sysctl(key))
        write_sysctl(key, value)

    try:
        yield set_
    finally:
        for key, value in reversed(saved.items()):
            write_sysctl(key, value)


@pytest.fixture(autouse=True)
def _stock_sysctls(request: pytest.FixtureRequest) -> Iterator[None]:
    """A real-kernel test starts from STOCK_SYSCTLS; every one is written back, pass or fail."""
    saved = {key: read_sysctl(key) for key in GUARDED_SYSCTLS}
    try:
        if request.node.get_closest_marker("root") and os.geteuid() == 0:
            for key, value in STOCK_SYSCTLS.items():
                if saved[key] != value:
                    write_sysctl(key, value)
        yield
    finally:
        for key, value in saved.items():
            if os.geteuid() == 0 and read_sysctl(key) != value:
                write_sysctl(key, value)


@pytest.fixture(autouse=True)
def _wide_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports are read 200 columns wide (a pipe's are 80): a test of what a report says is
    not one of where it wraps. tests/cli/test_layout.py sets each width it tests."""
    monkeypatch.setenv("COLUMNS", "200")
