"""Fixtures: fake hosts for unit tests, sysctl restoration and the `root` gate for host tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.fakehost import FakeHost

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator

PROC_SYS = Path("/proc/sys")
# Every sysctl a test (or the sysprep it runs) may change; restored after each test.
GUARDED_SYSCTLS = (
    "kernel.pid_max",
    "kernel.threads-max",
    "vm.max_map_count",
    "vm.swappiness",
    "fs.file-max",
    "fs.nr_open",
    "net.core.somaxconn",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.ip_local_port_range",
)


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
def _restore_guarded_sysctls() -> Iterator[None]:
    """Whatever a test does, the sysctls sysprep may touch are written back, pass or fail."""
    saved = {key: read_sysctl(key) for key in GUARDED_SYSCTLS}
    try:
        yield
    finally:
        for key, value in saved.items():
            if os.geteuid() == 0 and read_sysctl(key) != value:
                write_sysctl(key, value)
