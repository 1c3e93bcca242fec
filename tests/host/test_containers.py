"""sysprep in a real container (podman + runc, cgroup v1 here), as REAL-HOSTS.md runs one.

Inside, a runtime mounts the container's own cgroup as the top of each hierarchy
(mountinfo's root is its path on the host, or "/" of a cgroup namespace), while
/proc/self/cgroup names the host's path: sysprep used to look for that path below the top,
find nothing, and report no limit at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING
from typing import Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tests.realcontainer import Podman

pytestmark = pytest.mark.root

PIDS_LIMIT = 1234
LIMITED = ("--pids-limit", str(PIDS_LIMIT), "--memory", "512m")
HOSTS_CGROUPS = ("--volume", "/sys/fs/cgroup:/sys/fs/cgroup:ro")  # as a pod's hostPath
PRIVATE_CGROUPS = ("--cgroupns", "private")


def check(podman: Podman, flags: Sequence[str], *args: str) -> dict[str, Any]:
    """`sysprep check --json` of 100,000 threads of 64 KiB in a fresh container."""
    done = podman.sysprep("check", "--json", "--threads", "100000", "--stack", "64K", *args,
                          flags=flags)  # fmt: skip
    assert done.stdout.startswith("{"), done.stderr
    return dict(json.loads(done.stdout))


def limit(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in document["limits"] if entry["name"] == name)


@pytest.mark.parametrize("namespace", [(), PRIVATE_CGROUPS], ids=["host-cgroupns", "cgroupns"])
def test_check_in_a_container_reads_its_own_limits(podman: Podman, namespace: tuple[str]) -> None:
    """--pids-limit 1234 --memory 512m: pids.max binds at 1,233 (sysprep is the one task),
    memory.max is 512 MiB; both are the container's own level, the levels above are named as
    unseen, and the fix is podman's, on the host, for this container."""
    document = check(podman, (*LIMITED, *namespace))
    pids = limit(document, "pids.max")
    assert (document["binding"], document["capacity"]) == ("pids.max", PIDS_LIMIT - 1)
    assert (pids["current"], pids["in_use"]) == (PIDS_LIMIT, 1)
    assert pids["note"].startswith(
        "/sys/fs/cgroup/pids; the levels above /sys/fs/cgroup/pids (a pod's, the host's) are"
        " not mounted here"
    )
    assert pids["fix"]["where"] == "host"
    assert pids["fix"]["now"].startswith("on the host: podman update --pids-limit 100001 ")
    memory = limit(document, "memory.max")
    assert (memory["status"], memory["current"]) == ("fails", 512 * 1024 * 1024)
    assert memory["fix"]["now"].startswith("on the host: podman update --memory ")
    assert document["environment"]["kind"] == "container"
    assert document["environment"]["host_pid"] is False


def test_the_probe_in_a_container_holds_what_check_predicts(podman: Podman) -> None:
    """The threads probe, in a container like check's, holds its prediction within 1 % and
    names pids.max."""
    predicted = check(podman, LIMITED)["capacity"]
    done = podman.sysprep("probe", "threads", "--json", "--count", "5000", "--stack", "64K",
                          flags=LIMITED)  # fmt: skip
    probe = json.loads(done.stdout)
    assert probe["stopped_by"] == "pids.max"
    assert abs(probe["held"] - predicted) <= predicted / 100, (probe["held"], predicted)


@pytest.mark.parametrize("namespace", [(), PRIVATE_CGROUPS], ids=["host-cgroupns", "cgroupns"])
def test_the_hosts_cgroups_mounted_in_show_every_level(
    podman: Podman, namespace: tuple[str]
) -> None:
    """A DaemonSet mounts the host's /sys/fs/cgroup over the runtime's: the container's level
    is found there by its path (or, in a cgroup namespace, where the mount's root "/../.."
    leads and cgroup.procs holds it), with every level above it in sight."""
    document = check(podman, (*LIMITED, *HOSTS_CGROUPS, *namespace))
    pids = limit(document, "pids.max")
    assert (pids["current"], document["capacity"]) == (PIDS_LIMIT, PIDS_LIMIT - 1)
    assert pids["note"].startswith("/sys/fs/cgroup/pids/libpod_parent/libpod-")
    assert "not mounted here" not in pids["note"]
    container = pids["note"].split("libpod-", 1)[1][:12]
    assert pids["fix"]["now"] == f"on the host: podman update --pids-limit 100001 {container}"


def test_from_the_host_check_pid_reads_the_containers_limits(podman: Podman) -> None:
    """From the host, `check --pid` of a process in the container reads its cgroup, every
    level seen; the fix is podman's, here."""
    pid = podman.start("sleep", "300", flags=LIMITED)
    done = subprocess.run(
        [sys.executable, "-m", "sysprep", "check", "--json", "--pid", str(pid), "--threads",
         "100000", "--stack", "64K"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    pids = limit(json.loads(done.stdout), "pids.max")
    assert (pids["current"], pids["in_use"]) == (PIDS_LIMIT, 1)
    assert "not mounted here" not in pids["note"]
    assert pids["fix"]["where"] == "here"
    assert pids["fix"]["now"].startswith("podman update --pids-limit 100001 ")
