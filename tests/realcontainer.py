"""A real container runtime for tests, run as ../shared/REAL-HOSTS.md says, and only so.

podman with runc (crun refuses this VM's hybrid cgroups), no network, and explicit rlimits
(root here lacks CAP_SYS_RESOURCE: podman's default nofile and nproc cannot be set). The
image is the one users build: deploy/kubernetes/build-image, this checkout's wheel on a base
bootstrapped offline from Debian's packages (mmdebstrap: python3, pip and procps).

Everything a container may change is put back afterwards: every sysctl (a privileged
container writes the host's), the containers (labelled, removed), the cgroups podman made
(libpod_parent and below, deepest first). The sysprep image goes with the test session;
the base stays: it is the tests' own, and making it again takes half a minute.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tests.hoststate import CHECKOUT
from tests.hoststate import cgroup_dirs
from tests.hoststate import remove_cgroups
from tests.hoststate import restore_sysctls
from tests.hoststate import sysctls

if TYPE_CHECKING:
    from collections.abc import Iterator
    from collections.abc import Sequence

BASE = "localhost/sysprep-test-base:bookworm.2"
IMAGE = "localhost/sysprep-test:session"
LABEL = "sysprep-test=1"
RUNC = ("--runtime", "runc")
RLIMITS = ("--ulimit", "nofile=10000:10000", "--ulimit", "nproc=20000:20000")
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
BUILD_IMAGE = CHECKOUT / "deploy/kubernetes/build-image"


def missing() -> str | None:
    """Why no container can be run here; None when podman, runc and mmdebstrap are there."""
    for tool in ("podman", "runc", "mmdebstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (.ci/run installs it)"
    return None


def ensure_base() -> None:
    """The tests' base image, bootstrapped from Debian's archive once (about 30 s)."""
    exists = subprocess.run(["podman", "image", "exists", BASE], check=False)
    if exists.returncode == 0:
        return
    with tempfile.TemporaryDirectory(prefix="sysprep-image-") as work:
        tar = Path(work) / "base.tar"
        with DEBIAN_SOURCES.open() as sources:
            subprocess.run(
                ["mmdebstrap", "--quiet", "--variant=minbase",
                 "--include=python3,python3-pip,procps", "bookworm", str(tar)],
                stdin=sources, check=True, capture_output=True,
            )  # fmt: skip
        subprocess.run(["podman", "import", str(tar), BASE], check=True, capture_output=True)


@contextlib.contextmanager
def built_image() -> Iterator[str]:
    """The sysprep image of this checkout, built as users build it, offline on the base;
    removed afterwards."""
    ensure_base()
    done = subprocess.run(
        [str(BUILD_IMAGE), "--base", BASE, "--tag", IMAGE, "--", *RUNC, "--network", "none",
         *RLIMITS],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    try:
        yield IMAGE
    finally:
        subprocess.run(["podman", "rmi", "--force", IMAGE], capture_output=True, check=False)


class Podman:
    """Runs containers of the sysprep image (its entrypoint: sysprep)."""

    def __init__(self, image: str) -> None:
        self.image = image

    def command(self, *args: str, flags: Sequence[str] = ()) -> list[str]:
        """The podman command line for `sysprep ARGS` in a fresh container with *flags*
        (--entrypoint sh in them: a shell's ARGS instead)."""
        return [
            "podman", *RUNC, "run", "--network", "none", "--label", LABEL, *RLIMITS,
            *flags, self.image, *args,
        ]  # fmt: skip

    def sysprep(
        self, *args: str, flags: Sequence[str] = (), timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """`sysprep ARGS` in a fresh container, removed when it ends."""
        return subprocess.run(
            self.command(*args, flags=("--rm", *flags)),
            capture_output=True, text=True, check=False, timeout=timeout,
        )  # fmt: skip

    def shell(
        self, script: str, flags: Sequence[str] = (), timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """A shell *script* in a fresh container, removed when it ends."""
        return self.sysprep("-c", script, flags=("--entrypoint", "sh", *flags), timeout=timeout)

    def detach(self, *args: str, flags: Sequence[str] = ()) -> Container:
        """`sysprep ARGS` in a container left running (removed with the runtime)."""
        started = subprocess.run(
            self.command(*args, flags=("--detach", *flags)),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        return Container(started.stdout.strip())

    def start(self, program: str, *args: str, flags: Sequence[str] = ()) -> int:
        """Start `PROGRAM ARGS` in a container left running (removed with the runtime); its
        pid on the host."""
        started = subprocess.run(
            self.command(*args, flags=("--detach", "--entrypoint", program, *flags)),
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        inspected = subprocess.run(
            ["podman", "inspect", "--format", "{{.State.Pid}}", started.stdout.strip()],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return int(inspected.stdout)


class Container:
    """A container left running: its output, and a stop as a pod's (SIGTERM, then a grace)."""

    def __init__(self, identity: str) -> None:
        self.id = identity

    def logs(self) -> str:
        done = subprocess.run(["podman", "logs", self.id], capture_output=True, text=True,
                              check=False)  # fmt: skip
        return done.stdout + done.stderr

    def wait_for(self, text: str, timeout: float = 120) -> str:
        """Its output once *text* is in it; AssertionError with the output after *timeout*."""
        deadline = time.monotonic() + timeout
        while text not in (output := self.logs()):
            assert time.monotonic() < deadline, f"no {text!r} in the container's output: {output}"
            time.sleep(0.2)
        return output

    def stop(self, grace: int = 30) -> int:
        """SIGTERM, as kubelet stops a pod, SIGKILL after *grace* seconds; its exit status."""
        subprocess.run(["podman", "stop", "--time", str(grace), self.id], capture_output=True,
                       check=True)  # fmt: skip
        done = subprocess.run(["podman", "wait", self.id], capture_output=True, text=True,
                              check=True)  # fmt: skip
        return int(done.stdout.strip())


@contextlib.contextmanager
def container_runtime(image: str) -> Iterator[Podman]:
    """podman, ready to run containers of *image*; afterwards, the host as it was."""
    saved, cgroups = sysctls(), cgroup_dirs()
    try:
        yield Podman(image)
    finally:
        try:
            _remove_containers()
            remove_cgroups(cgroups)
        finally:
            restore_sysctls(saved)
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
