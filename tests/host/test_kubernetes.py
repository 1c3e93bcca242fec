"""The pods of deploy/kubernetes, run by a real container runtime as their specs say.

`podman kube play` does not work on this VM (REAL-HOSTS.md), so each pod runs with the
flags its built spec implies, read from the spec itself: privileged, hostPID, the user,
a read-only root, dropped capabilities, and its volumes — a hostPath as a directory of a
temp "node" (the node's /etc is never touched; the real /sys/fs/cgroup, read-only, is
mounted as the spec says), a ConfigMap as a directory laid out as kubelet lays it out,
mounted read-only. The kernel is the real one: a privileged container writes the host's
sysctls, which the runtime fixture and each test put back.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING
from typing import Any

import pytest

from tests.cli.test_deploy import build
from tests.cli.test_deploy import one
from tests.conftest import read_sysctl
from tests.kubelet import configmap_volume

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.realcontainer import Container
    from tests.realcontainer import Podman

pytestmark = pytest.mark.root

REAL_HOST_PATHS = ("/sys/fs/cgroup",)  # mounted as the spec says: read-only, the host's own
ELASTICSEARCH = 'description = "a test cluster"\nextends = "elasticsearch"\n'
PID_MAX_40000 = (
    'description = "the node\'s pid_max"\n[target]\nthreads = 10\n'
    '[sysctl]\n"kernel.pid_max" = 40000\n'
)


class Pod:
    """A built pod spec's one container, as podman flags, on a temp node *node*."""

    def __init__(self, spec: dict[str, Any], node: Path, configmaps: dict[str, Any]) -> None:
        self.spec = spec
        (self.container,) = spec["containers"]
        self.node = node
        self.configmaps = configmaps

    @property
    def args(self) -> list[str]:
        return list(self.container["args"])

    def flags(self) -> list[str]:
        spec, container = self.spec, self.container
        security = container.get("securityContext", {})
        flags = []
        if security.get("privileged"):
            flags.append("--privileged")
        if spec.get("hostPID"):
            flags.append("--pid=host")
        if "runAsUser" in security:
            flags.append(f"--user={security['runAsUser']}")
        if security.get("readOnlyRootFilesystem"):
            flags.append("--read-only")
        if "ALL" in security.get("capabilities", {}).get("drop", []):
            flags.append("--cap-drop=ALL")
        if security.get("allowPrivilegeEscalation") is False:
            flags.append("--security-opt=no-new-privileges")
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        for mount in container["volumeMounts"]:
            source = self._source(volumes[mount["name"]])
            flags.append(f"--volume={source}:{mount['mountPath']}"
                         + (":ro" if mount.get("readOnly") else ""))  # fmt: skip
        return flags

    def path(self, host_path: str) -> Path:
        """Where the node's *host_path* is, for this test."""
        return self.node / host_path.lstrip("/")

    def _source(self, volume: dict[str, Any]) -> str:
        if "hostPath" in volume:
            host_path = volume["hostPath"]["path"]
            if host_path in REAL_HOST_PATHS:
                return str(host_path)
            path = self.path(host_path)
            if volume["hostPath"].get("type") == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
            assert path.is_dir(), f"hostPath {host_path} (type Directory) is not on the node"
            return str(path)
        name = volume["configMap"]["name"]
        target = self.node.parent / "configmaps" / name
        if not target.exists():
            configmap_volume(target, self.configmaps[name]["data"])
        return str(target)


def agent_pod(
    kustomization: str, node: Path, profile: str | None = None, *, host_pid: bool = True
) -> Pod:
    """The DaemonSet's pod of *kustomization*; its ConfigMap's profile replaced by
    *profile*; hostPID off where *host_pid* is False (a pod without it)."""
    objects = copy.deepcopy(build(kustomization))
    configmaps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    if profile is not None:
        (configmap,) = configmaps.values()
        configmap["data"]["thread-heavy.toml"] = profile
    spec = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    spec["hostPID"] = spec.get("hostPID", False) and host_pid
    return Pod(spec, node, configmaps)


def revert_pod(node: Path) -> Pod:
    return Pod(one(build("kubernetes/revert"), "Job")["spec"]["template"]["spec"], node, {})


def run_agent(podman: Podman, pod: Pod, until: str) -> tuple[str, int]:
    """The pod's agent, until *until* is in its log, then stopped as kubelet stops a pod;
    its output and exit status."""
    agent: Container = podman.detach(*pod.args, flags=pod.flags())
    agent.wait_for(until)
    status = agent.stop()
    return agent.logs(), status


@pytest.fixture
def node(tmp_path: Path) -> Path:
    """A temp node's file system for the pods' hostPaths."""
    path = tmp_path / "node"
    path.mkdir()
    return path


def test_the_check_daemonset_reports_on_the_node(podman: Podman, node: Path) -> None:
    """The base pod, as its spec runs it (hostPID, read-only, no capability): one cycle
    writes the verdict, the feature file and the textfile into the node's directories;
    SIGTERM ends it with status 0."""
    pod = agent_pod("kubernetes/base", node)
    output, status = run_agent(podman, pod, " check: ")
    assert status == 0, output
    assert output.rstrip().endswith("stopping on SIGTERM; nothing is reverted")
    verdict = pod.path("/var/lib/sysprep/npd").read_text()
    assert verdict.split(" ", 1)[0] in ("0", "1", "2")
    features = pod.path("/etc/kubernetes/node-feature-discovery/features.d/sysprep").read_text()
    assert "sysprep-compliant-million-threads=false\n" in features
    textfile = pod.path("/var/lib/prometheus/node-exporter/sysprep.prom").read_text()
    assert 'sysprep_profile_compliant{profile="million-threads"} 0' in textfile


def test_privileged_without_host_pid_sets_the_nodes_sysctls(podman: Podman, node: Path) -> None:
    """The apply pod without hostPID: elasticsearch's max_map_count is set on the host (on
    the node), persisted in the node's sysctl.d, and the agent's SIGTERM reverts nothing;
    the revert Job's pod puts it back and removes the drop-in."""
    assert read_sysctl("vm.max_map_count") == "65530"
    pod = agent_pod("kubernetes/apply", node, ELASTICSEARCH, host_pid=False)
    output, status = run_agent(podman, pod, " check: ")
    assert status == 0, output
    assert "apply /etc/sysprep/profile/thread-heavy.toml: applied vm.max_map_count, " in output
    assert read_sysctl("vm.max_map_count") == "262144"  # the host's, not reverted on SIGTERM
    drop_in = pod.path("/etc/sysctl.d/90-sysprep.conf")
    assert "vm.max_map_count = 262144" in drop_in.read_text()
    revert = revert_pod(node)
    done = podman.sysprep(*revert.args, flags=revert.flags())
    assert done.returncode == 0, done.stdout + done.stderr
    assert read_sysctl("vm.max_map_count") == "65530"
    assert not drop_in.exists()


def test_without_host_pid_the_nodes_pid_max_is_refused(podman: Podman, node: Path) -> None:
    """million-threads from a privileged pod without hostPID: its pid namespace's 4194304
    is not the node's; the apply is refused whole, naming hostPID, and nothing changes."""
    before = {key: read_sysctl(key) for key in ("kernel.pid_max", "kernel.threads-max")}
    pod = agent_pod("kubernetes/apply", node, 'extends = "million-threads"\n', host_pid=False)
    output, status = run_agent(podman, pod, " check: ")
    assert status == 0, output
    assert "failed: kernel.pid_max: inside a pid namespace" in output
    assert "the node's needs hostPID: true" in output
    assert {key: read_sysctl(key) for key in before} == before
    assert not pod.path("/etc/sysctl.d/90-sysprep.conf").exists()


def test_privileged_with_host_pid_sets_the_nodes_pid_max(
    podman: Podman, node: Path, sysctls: Callable[[str, object], None]
) -> None:
    """The apply pod as shipped (hostPID): kernel.pid_max is the host's, raised to 40000;
    the revert Job (hostPID too) puts back 32768."""
    sysctls("kernel.pid_max", 32768)
    pod = agent_pod("kubernetes/apply", node, PID_MAX_40000)
    output, status = run_agent(podman, pod, " check: ")
    assert status == 0, output
    assert "applied kernel.pid_max, /etc/sysctl.d/90-sysprep.conf; snapshot " in output
    assert read_sysctl("kernel.pid_max") == "40000"
    revert = revert_pod(node)
    done = podman.sysprep(*revert.args, flags=revert.flags())
    assert done.returncode == 0, done.stdout + done.stderr
    assert read_sysctl("kernel.pid_max") == "32768"


def test_unprivileged_the_read_only_proc_sys_is_refused(podman: Podman, node: Path) -> None:
    """The apply overlay's agent with the base's security (unprivileged): /proc/sys is
    read-only there; the apply is refused, naming why and the node-level way, and nothing
    changes on the host or the node."""
    pod = agent_pod("kubernetes/apply", node, ELASTICSEARCH)
    base = agent_pod("kubernetes/base", node)
    pod.container["securityContext"] = base.container["securityContext"]
    output, status = run_agent(podman, pod, " check: ")
    assert status == 0, output
    assert (
        "failed: vm.max_map_count is the host's, not this container's, and /proc/sys is"
        " read-only here" in output
    ), output
    assert read_sysctl("vm.max_map_count") == "65530"
    assert not pod.path("/etc/sysctl.d/90-sysprep.conf").exists()
