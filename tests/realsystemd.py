"""A real systemd for tests and benchmarks, booted as ../shared/REAL-HOSTS.md says, and only so.

systemd 252 runs as PID 1 of a private pid and mount namespace, with private /run, /tmp and
/var/tmp (systemd-tmpfiles would empty the host's /tmp), basic.target only and
systemd-sysctl masked. PID 1 still changes global sysctls (fs.file-max,
net.unix.max_dgram_qlen): every sysctl is recorded first and each difference written back.
Its cgroups are removed, deepest first, in every hierarchy. Units go in its private /run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from collections.abc import Iterator

SYSTEMD = Path("/lib/systemd/systemd")
CGROUPS = Path("/sys/fs/cgroup")
# Counters and values that move on their own: not settings systemd changed.
MOVING = ("fs.dentry-state", "fs.file-nr", "fs.inode-", "kernel.ns_last_pid", "random.")


def _sysctls() -> dict[str, str]:
    out = subprocess.run(["sysctl", "-a"], capture_output=True, text=True, check=False).stdout
    values = {}
    for line in out.splitlines():
        key, _, value = line.partition(" = ")
        if not any(m in key for m in MOVING):
            values[key] = value
    return values


def _cgroup_dirs() -> set[Path]:
    return {p for p in CGROUPS.glob("*/**") if p.is_dir()}


class Systemd:
    """A running systemd in its namespaces: run commands inside, write its /run."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-a", *command],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def run_path(self, relative: str) -> Path:
        """A path of the namespace's private /run, as the host reaches it."""
        return Path(f"/proc/{self.pid}/root/run") / relative

    def sysprep(self, *args: str) -> dict[str, Any]:
        done = self.run(sys.executable, "-m", "sysprep", *args)
        assert done.stdout, done.stderr
        return dict(json.loads(done.stdout))


@contextlib.contextmanager
def booted_systemd() -> Iterator[Systemd]:
    """systemd as PID 1 of private namespaces; afterwards, the host as it was."""
    sysctls, cgroups = _sysctls(), _cgroup_dirs()
    boot = subprocess.Popen(
        [
            "setsid", "unshare", "--pid", "--fork", "--mount", "--mount-proc",
            "--propagation", "private", "sh", "-c",
            (
                "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /tmp"
                " && mount -t tmpfs tmpfs /var/tmp && exec env container=sysprep-test"
                f" {SYSTEMD} --system systemd.unit=basic.target"
                " systemd.mask=systemd-sysctl.service"
            ),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pid = None
    try:
        deadline = time.monotonic() + 30
        while pid is None and time.monotonic() < deadline:
            time.sleep(0.1)
            with_comm = [p for p in _children(boot.pid) if _comm(p) == "systemd"]
            pid = with_comm[0] if with_comm else None
        assert pid is not None, "systemd did not start"
        booted = Systemd(pid)
        state = booted.run("systemctl", "is-system-running", "--wait", timeout=60).stdout
        assert state.strip() in ("running", "degraded"), state
        yield booted
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGKILL)  # PID 1 of the namespace: everything in it dies
        boot.wait(timeout=30)
        time.sleep(0.2)
        for path in sorted(_cgroup_dirs() - cgroups, key=lambda p: len(p.parts), reverse=True):
            path.rmdir()
        now = _sysctls()
        for key, value in sysctls.items():
            if now.get(key) != value:
                subprocess.run(["sysctl", "-qw", f"{key}={value}"], check=False)
        assert _sysctls() == sysctls, "systemd left a sysctl changed"


def _children(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            with (task / "children").open() as f:
                kids = [int(k) for k in f.read().split()]
            found += kids
            todo += kids
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
