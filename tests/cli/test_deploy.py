"""deploy/: the Kubernetes manifests, node-problem-detector's plugin and the alert rules,
checked offline as a cluster would take them (kubectl kustomize, the Kubernetes schemas,
yamllint, promtool). What the pods do when run is proved with a real container runtime in
tests/host/test_kubernetes.py."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_tool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUSTOMIZATIONS = ["kubernetes/base", "kubernetes/apply", "kubernetes/revert",
                  "node-problem-detector", "prometheus"]  # fmt: skip
PLUGIN = DEPLOY / "node-problem-detector/sysprep-npd.sh"


def build(kustomization: str) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize` makes of deploy/KUSTOMIZATION, offline."""
    done = subprocess.run(
        [require_tool("kubectl"), "kustomize", str(DEPLOY / kustomization)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [o for o in yaml.safe_load_all(done.stdout) if o]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def pod(kustomization: str, kind: str = "DaemonSet") -> dict[str, Any]:
    return dict(one(build(kustomization), kind)["spec"]["template"]["spec"])


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_kustomization_builds_and_validates(kustomization: str, tmp_path: Path) -> None:
    """Each builds offline, and each object passes the Kubernetes 1.32 schemas, strictly (no
    unknown field); the PrometheusRule, a CRD, has none there and is checked below."""
    objects = [o for o in build(kustomization) if o["kind"] != "PrometheusRule"]
    if not objects:
        return
    built = tmp_path / "built.yaml"
    built.write_text(yaml.safe_dump_all(objects))
    done = subprocess.run(
        [require_tool("kubernetes-validate"), "--strict", "--quiet", "-k", "1.32.0",
         str(built)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_yamllint() -> None:
    """Every YAML file under deploy/ passes yamllint, warnings included (.yamllint.yml)."""
    done = subprocess.run(
        [require_tool("yamllint"), "--strict", str(DEPLOY)],
        capture_output=True, text=True, check=False, cwd=DEPLOY.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout


def test_the_check_daemonset_reads_only() -> None:
    """The base: hostPID, and nothing beyond reading; the node's cgroups read-only; every
    capability dropped; no API token; on every Linux node, tainted too, a rolling update."""
    daemonset = one(build("kubernetes/base"), "DaemonSet")
    spec = daemonset["spec"]["template"]["spec"]
    (agent,) = spec["containers"]
    security = agent["securityContext"]
    assert spec["hostPID"] is True
    assert "privileged" not in security
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert spec["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m for m in agent["volumeMounts"]}
    assert mounts["/sys/fs/cgroup"]["readOnly"] is True
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["priorityClassName"] == "system-node-critical"
    assert agent["resources"]["requests"]
    assert "memory" not in agent["resources"]["limits"]  # its own would be judged
    assert daemonset["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == "10%"
    assert agent["args"][0] == "agent"
    assert "--apply" not in agent["args"]


def test_the_apply_overlay_is_privileged_with_the_nodes_files() -> None:
    """apply: privileged, hostPID, on the nodes labelled sysprep/tune=true; the profile from
    a ConfigMap, read-only; the node's drop-in directories under --etc-root, and the state
    directory a hostPath, so that a new pod, and the revert Job, find the snapshots."""
    objects = build("kubernetes/apply")
    spec = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    (agent,) = spec["containers"]
    assert agent["securityContext"]["privileged"] is True
    assert spec["hostPID"] is True
    assert spec["nodeSelector"]["sysprep/tune"] == "true"
    args = agent["args"]
    assert args[:2] == ["--etc-root=/host", "agent"]
    assert {"--apply", "--persist", "--profile=/etc/sysprep/profile/thread-heavy.toml"} <= set(
        args
    )
    mounts = {m["mountPath"]: m["name"] for m in agent["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    host_paths = {path: volumes[name].get("hostPath", {}).get("path")
                  for path, name in mounts.items()}  # fmt: skip
    assert host_paths["/host/etc/sysctl.d"] == "/etc/sysctl.d"
    assert host_paths["/host/etc/security/limits.d"] == "/etc/security/limits.d"
    assert host_paths["/var/lib/sysprep"] == "/var/lib/sysprep"
    profile = volumes[mounts["/etc/sysprep/profile"]]["configMap"]["name"]
    configmap = one(objects, "ConfigMap")
    assert configmap["metadata"]["name"] == profile
    assert 'extends = "million-threads"' in configmap["data"]["thread-heavy.toml"]


def test_the_revert_job_runs_where_and_as_apply_ran() -> None:
    """revert: privileged, hostPID (a pid_max set from the node's namespace is reverted
    only from there), the same state directory and drop-ins, on the node named."""
    spec = pod("kubernetes/revert", "Job")
    applying = pod("kubernetes/apply")
    (revert,) = spec["containers"]
    (agent,) = applying["containers"]
    assert revert["args"] == ["--etc-root=/host", "revert"]
    assert revert["securityContext"]["privileged"] is True
    assert spec["hostPID"] is True
    assert spec["restartPolicy"] == "Never"
    assert spec["nodeSelector"]["kubernetes.io/hostname"] == "NODE-TO-REVERT"

    def host_paths(pod_spec: dict[str, Any], container: dict[str, Any]) -> set[tuple[str, str]]:
        volumes = {v["name"]: v for v in pod_spec["volumes"]}
        return {(m["mountPath"], volumes[m["name"]]["hostPath"]["path"])
                for m in container["volumeMounts"] if "hostPath" in volumes[m["name"]]
                and m["mountPath"] in ("/var/lib/sysprep", "/host/etc/sysctl.d",
                                       "/host/etc/security/limits.d")}  # fmt: skip

    assert host_paths(spec, revert) == host_paths(applying, agent)
    assert len(host_paths(spec, revert)) == 3


def test_the_reports_go_where_their_readers_look() -> None:
    """The agent's files: NFD's features.d, node_exporter's textfile directory (Debian's),
    and the verdict file node-problem-detector's plugin reads by default."""
    (agent,) = pod("kubernetes/base")["containers"]
    args = dict(a.split("=", 1) for a in agent["args"] if a.startswith("--"))
    assert args["--nfd"] == "/etc/kubernetes/node-feature-discovery/features.d/sysprep"
    assert args["--prometheus"] == "/var/lib/prometheus/node-exporter/sysprep.prom"
    monitor = json.loads((DEPLOY / "node-problem-detector/sysprep-monitor.json").read_text())
    (rule,) = monitor["rules"]
    assert rule["args"][0] == args["--npd"]
    assert rule["path"] == "/custom-config/sysprep-npd.sh"
    assert monitor["pluginConfig"]["max_output_length"] == 80
    assert monitor["conditions"][0]["type"] == "ThreadCapacity"
    configmap = one(build("node-problem-detector"), "ConfigMap")
    assert set(configmap["data"]) == {"sysprep-monitor.json", "sysprep-npd.sh"}


@pytest.mark.parametrize(
    ("verdict", "status", "line"),
    [
        ("0 ready for 1,000 threads: room for 32,000 (kernel.pid_max)\n", 0,
         "ready for 1,000 threads: room for 32,000 (kernel.pid_max)"),
        ("1 not ready for 1,000 threads: pids.max allows 499\n", 1,
         "not ready for 1,000 threads: pids.max allows 499"),
        ("2 unknown: could not read kernel.pid_max\n", 2,
         "unknown: could not read kernel.pid_max"),
        ("ready\n", 2, "unknown: malformed sysprep verdict in {path}"),
        ("", 2, "unknown: malformed sysprep verdict in {path}"),
    ],
)  # fmt: skip
def test_the_npd_plugin_passes_the_agents_verdict(
    tmp_path: Path, verdict: str, status: int, line: str
) -> None:
    """node-problem-detector's contract: the agent's line on stdout, its status the exit."""
    path = tmp_path / "npd"
    path.write_text(verdict)
    done = subprocess.run(["sh", str(PLUGIN), str(path), "15"], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert (done.returncode, done.stdout) == (status, line.format(path=path) + "\n")


def test_the_npd_plugin_never_passes_a_stale_or_missing_verdict(tmp_path: Path) -> None:
    """An OK older than the agent's three cycles, or none at all: unknown."""
    path = tmp_path / "npd"
    path.write_text("0 ready for 1,000 threads: room for 32,000 (kernel.pid_max)\n")
    old = time.time() - 16 * 60
    os.utime(path, (old, old))
    done = subprocess.run(["sh", str(PLUGIN), str(path), "15"], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stdout.startswith("unknown: sysprep verdict older than 15 minutes")
    path.unlink()
    done = subprocess.run(["sh", str(PLUGIN), str(path)], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stdout.startswith("unknown: no sysprep verdict at")


def test_the_alert_rules(tmp_path: Path) -> None:
    """promtool: the rules check, their unit tests pass (not ready for 15 minutes, headroom
    under 10 %, a stale textfile), and the PrometheusRule carries the same groups."""
    promtool = require_tool("promtool")
    rules = DEPLOY / "prometheus/sysprep.rules.yml"
    for command in (
        ["check", "rules", str(rules)],
        ["test", "rules", str(DEPLOY / "prometheus/sysprep.rules.test.yml")],
    ):
        done = subprocess.run([promtool, *command], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    rule = one(build("prometheus"), "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(rules.read_text())
    spec_only = tmp_path / "spec.yml"  # promtool reads the PrometheusRule's groups as well
    spec_only.write_text(yaml.safe_dump(rule["spec"]))
    done = subprocess.run([promtool, "check", "rules", str(spec_only)], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout
