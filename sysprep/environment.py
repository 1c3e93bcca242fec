"""Where sysprep runs: on a host, or in a container (and which runtime), from the evidence.

Inside a container the host-wide sysctls are the host's, usually read-only, and a pid
namespace has a pid_max of its own (Linux >= 6.14): check says where it is so that its
reader knows which fixes are theirs to make.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import NamedTuple

if TYPE_CHECKING:
    from sysprep.host import Host

# The initial namespaces' inode numbers are fixed (include/linux/proc_ns.h).
INIT_USER_NS = 0xEFFFFFFD
INIT_PID_NS = 0xEFFFFFFC
INIT_CGROUP_NS = 0xEFFFFFFB
# Files container runtimes leave in the root of a container.
_RUNTIME_FILES = (
    ("/.dockerenv", "docker"),
    ("/run/.containerenv", "podman"),
    ("/var/run/secrets/kubernetes.io", "kubernetes"),
)


class Environment(NamedTuple):
    """host or container; the runtime when it can be told; what says so."""

    kind: str
    runtime: str | None
    evidence: tuple[str, ...]
    # In the host's pid namespace (a pod's hostPID: true, podman --pid=host): the host's
    # pid_max and tasks are the ones seen, and its pid_max the one a write would change.
    host_pid: bool = True

    @property
    def in_container(self) -> bool:
        """True inside a container (or any pid or cgroup namespace but the initial ones)."""
        return self.kind == "container"


def detect(host: Host) -> Environment:
    """Read the evidence: namespaces, PID 1's container=, a read-only /proc/sys.

    Any of it makes a container, and the runtimes' marker files then name the runtime. A
    marker file alone does not: images built with docker keep /.dockerenv wherever they
    boot (this project's own VM has one), while its namespaces and /proc/sys are the host's.
    """
    evidence = []
    pid_ns = host.namespace("pid")
    host_pid = pid_ns is None or pid_ns == INIT_PID_NS
    if not host_pid:
        evidence.append(f"pid namespace {pid_ns} (not the initial one)")
    cgroup_ns = host.namespace("cgroup")
    if cgroup_ns is not None and cgroup_ns != INIT_CGROUP_NS:
        evidence.append(f"cgroup namespace {cgroup_ns} (not the initial one)")
    declared = host.init_environment().get("container")
    if declared:
        evidence.append(f"container={declared} (PID 1's environment)")
    if host.proc_sys_read_only():
        evidence.append("/proc/sys is mounted read-only")
    if not evidence:
        return Environment("host", None, ())
    markers = [(path, name) for path, name in _RUNTIME_FILES if host.path(path).exists()]
    runtime = markers[0][1] if markers else declared or None
    evidence += [path for path, _ in markers]
    return Environment("container", runtime, tuple(evidence), host_pid)


def sysctl_where(name: str, environment: Environment, *, own_pid_namespace: bool) -> str:
    """Where sysctl *name* can be set from here: "here", or only on the "host".

    In a container, net.* is its network namespace's and kernel.pid_max its pid
    namespace's (*own_pid_namespace*: a child pid namespace on Linux >= 6.14); every
    other sysctl is the host's.
    """
    if not environment.in_container or name.startswith("net."):
        return "here"
    return "here" if name == "kernel.pid_max" and own_pid_namespace else "host"
