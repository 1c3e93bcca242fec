"""A real systemd for tests and benchmarks, booted as ../shared/REAL-HOSTS.md says, and only so.

systemd 252 runs as PID 1 of a private pid and mount namespace, with private /run, /tmp and
/var/tmp (systemd-tmpfiles would empty the host's /tmp), basic.target only and
systemd-sysctl masked. PID 1 still changes global sysctls (fs.file-max,
net.unix.max_dgram_qlen): every sysctl is recorded first and each difference written back.
Its cgroups are removed, deepest first, in every hierarchy, and the mount points it adds to
the host's /sys/fs/cgroup tmpfs with them. Units go in its private /run.
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

from tests.hoststate import CGROUPS
from tests.hoststate import cgroup_dirs
from tests.hoststate import copy_code
from tests.hoststate import remove_cgroups
from tests.hoststate import restore_sysctls
from tests.hoststate import sysctls

if TYPE_CHECKING:
    from collections.abc import Iterator

SYSTEMD = Path("/lib/systemd/systemd")
# The interpreter itself: the venv's link may sit under /tmp, which the namespace hides.
BASE_PYTHON = os.path.realpath(sys.executable)


def _mount_points() -> set[str]:
    """The names at the top of /sys/fs/cgroup: the hierarchies' mount points and links."""
    return {p.name for p in CGROUPS.iterdir()}


def _tmpfs_options() -> str:
    """The superblock options of the tmpfs at /sys/fs/cgroup ("rw,…" or "ro,…")."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(CGROUPS):
            return fields[-1]
    return ""


def _restore_mount_points(before: set[str], options: str) -> None:
    """Remove the mount points PID 1 added to the host's /sys/fs/cgroup tmpfs, and give the
    tmpfs back the options it had: systemd mounts the hierarchies it misses (cpu,cpuacct,
    net_cls,net_prio, perf_event, hugetlb) on directories it makes there, then remounts the
    shared superblock read-only, which the host sees too."""
    added = _mount_points() - before
    if not added and _tmpfs_options() == options:
        return
    subprocess.run(["mount", "-o", "remount,rw", str(CGROUPS)], check=True)
    for name in sorted(added, key=lambda n: not (CGROUPS / n).is_symlink()):
        path = CGROUPS / name
        path.unlink() if path.is_symlink() else path.rmdir()
    if options.startswith("ro"):
        subprocess.run(["mount", "-o", "remount,ro", str(CGROUPS)], check=True)


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

    def install_code(self) -> None:
        """Copy sysprep and what it imports into the namespace's /run: its /tmp is private,
        and the checkout may sit under /tmp (CI)."""
        copy_code(self.run_path("sysprep-code"))

    @property
    def python(self) -> list[str]:
        """A Python inside the namespace that imports the copied sysprep first."""
        prelude = "import sys; sys.path[:0] = ['/run/sysprep-code', '/run/sysprep-code/site']"
        return [BASE_PYTHON, "-c", f"{prelude}\nfrom sysprep.__main__ import main\nmain()"]

    @property
    def python_path(self) -> list[str]:
        """The paths the copied code is imported from."""
        return ["/run/sysprep-code", "/run/sysprep-code/site"]

    def sysprep_command(self, *args: str) -> list[str]:
        """`sysprep ARGS` inside the namespace."""
        return [*self.python, *args]

    def sysprep(self, *args: str) -> dict[str, Any]:
        done = self.run(*self.sysprep_command(*args))
        assert done.stdout, done.stderr
        return dict(json.loads(done.stdout))


@contextlib.contextmanager
def booted_systemd() -> Iterator[Systemd]:
    """systemd as PID 1 of private namespaces; afterwards, the host as it was."""
    saved, cgroups = sysctls(), cgroup_dirs()
    mount_points, tmpfs = _mount_points(), _tmpfs_options()
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
        # Until its private bus socket is up, systemctl fails at once rather than waits.
        state, deadline = "", time.monotonic() + 60
        while state not in ("running", "degraded") and time.monotonic() < deadline:
            done = booted.run("systemctl", "is-system-running", "--wait", timeout=60)
            state = done.stdout.strip()
            if state not in ("running", "degraded"):
                time.sleep(0.2)
        assert state in ("running", "degraded"), (state, done.stderr)
        booted.install_code()
        yield booted
    finally:
        # systemd is PID 1 of the namespace: everything in it dies with it. A boot that failed
        # before systemd was seen may still have started it: every descendant goes.
        for child in [pid] if pid is not None else _children(boot.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        boot.wait(timeout=30)
        time.sleep(0.2)
        try:
            remove_cgroups(cgroups)
            _restore_mount_points(mount_points, tmpfs)
        finally:
            restore_sysctls(saved)
        assert sysctls() == saved, "systemd left a sysctl changed"


def _children(pid: int) -> list[int]:
    """pid's descendants. The boot's short-lived ones (sh's mounts) may be gone before their
    /proc entry is read: those are skipped."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
