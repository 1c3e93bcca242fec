"""A real container runtime for tests, run as ../shared/REAL-HOSTS.md says, and only so.

podman with runc (crun refuses this VM's hybrid cgroups), an image bootstrapped offline from
Debian's packages (mmdebstrap: python3 and procps, no sysprep), no network, and explicit
rlimits (root here lacks CAP_SYS_RESOURCE: podman's default nofile and nproc cannot be set).
sysprep runs inside from a copy of the checkout mounted read-only, on the image's own
python3, as the Containerfile's image would run it.

Everything a container may change is put back afterwards: every sysctl (a privileged
container writes the host's), the containers (labelled, removed), the cgroups podman made
(libpod_parent and below, deepest first). The image stays: it is the tests' own, and
making it again takes half a minute.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tests.hoststate import cgroup_dirs
from tests.hoststate import copy_code
from tests.hoststate import remove_cgroups
from tests.hoststate import restore_sysctls
from tests.hoststate import sysctls

if TYPE_CHECKING:
    from collections.abc import Iterator
    from collections.abc import Sequence

IMAGE = "localhost/sysprep-test-base:bookworm"
LABEL = "sysprep-test=1"
CODE = "/opt/sysprep"  # where the copy of the checkout is mounted inside
RLIMITS = ("--ulimit", "nofile=10000:10000", "--ulimit", "nproc=20000:20000")
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")


def missing() -> str | None:
    """Why no container can be run here; None when podman, runc and mmdebstrap are there."""
    for tool in ("podman", "runc", "mmdebstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (.ci/run installs it)"
    return None


def ensure_image() -> None:
    """The tests' base image, bootstrapped from Debian's archive once (about 30 s)."""
    exists = subprocess.run(["podman", "image", "exists", IMAGE], check=False)
    if exists.returncode == 0:
        return
    with tempfile.TemporaryDirectory(prefix="sysprep-image-") as work:
        tar = Path(work) / "base.tar"
        with DEBIAN_SOURCES.open() as sources:
            subprocess.run(
                ["mmdebstrap", "--quiet", "--variant=minbase", "--include=python3,procps",
                 "bookworm", str(tar)],
                stdin=sources, check=True, capture_output=True,
            )  # fmt: skip
        subprocess.run(["podman", "import", str(tar), IMAGE], check=True, capture_output=True)


class Podman:
    """Runs containers of the base image with sysprep's code mounted in."""

    def __init__(self, code: Path) -> None:
        self.code = code

    def command(self, *command: str, flags: Sequence[str] = ()) -> list[str]:
        """The podman command line for *command* in a fresh container with *flags*."""
        return [
            "podman", "--runtime", "runc", "run", "--network", "none",
            "--label", LABEL, *RLIMITS,
            "--volume", f"{self.code}:{CODE}:ro",
            "--env", f"PYTHONPATH={CODE}:{CODE}/site",
            *flags, IMAGE, *command,
        ]  # fmt: skip

    def run(
        self, *command: str, flags: Sequence[str] = (), timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run *command* in a fresh container, with podman's *flags* (--pids-limit N, ...)."""
        return subprocess.run(
            self.command(*command, flags=("--rm", *flags)),
            capture_output=True, text=True, check=False, timeout=timeout,
        )  # fmt: skip

    def start(self, *command: str, flags: Sequence[str] = ()) -> int:
        """Start *command* in a container left running (removed with the runtime); its pid
        on the host."""
        started = subprocess.run(
            self.command(*command, flags=("--detach", *flags)),
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        inspected = subprocess.run(
            ["podman", "inspect", "--format", "{{.State.Pid}}", started.stdout.strip()],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return int(inspected.stdout)

    def sysprep(
        self, *args: str, flags: Sequence[str] = (), timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """`sysprep ARGS` in a fresh container, on the image's python3."""
        return self.run("python3", "-m", "sysprep", *args, flags=flags, timeout=timeout)


@contextlib.contextmanager
def container_runtime() -> Iterator[Podman]:
    """podman, ready to run containers; afterwards, the host as it was."""
    ensure_image()
    saved, cgroups = sysctls(), cgroup_dirs()
    code = Path(tempfile.mkdtemp(prefix="sysprep-code-"))
    try:
        code.chmod(0o755)
        copy_code(code)
        yield Podman(code)
    finally:
        try:
            _remove_containers()
            remove_cgroups(cgroups)
        finally:
            restore_sysctls(saved)
            shutil.rmtree(code)
        assert sysctls() == saved, "a container left a sysctl changed"


def _remove_containers() -> None:
    """Every container of the tests, running or not (a test killed mid-run leaves them)."""
    listed = subprocess.run(
        ["podman", "ps", "--all", "--quiet", "--filter", f"label={LABEL}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    if listed.stdout.split():
        subprocess.run(["podman", "rm", "--force", *listed.stdout.split()], check=True,
                       capture_output=True)  # fmt: skip
