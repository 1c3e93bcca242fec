"""Host or container: decided by namespaces, PID 1's container= and a read-only /proc/sys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sysprep.environment import INIT_CGROUP_NS
from sysprep.environment import INIT_PID_NS
from sysprep.environment import Environment
from sysprep.environment import detect
from sysprep.environment import sysctl_where

if TYPE_CHECKING:
    from tests.fakehost import FakeHost

CHILD_NS = 4026532178


def initial(fake: FakeHost) -> FakeHost:
    return fake.set_namespace("pid", INIT_PID_NS).set_namespace("cgroup", INIT_CGROUP_NS)


def test_the_initial_namespaces_are_a_host(fake: FakeHost) -> None:
    """The initial pid and cgroup namespaces, /proc/sys writable: a host."""
    assert detect(initial(fake).host) == ("host", None, (), True)


def test_a_marker_file_alone_is_not_a_container(fake: FakeHost) -> None:
    """/.dockerenv stays in every image docker built, wherever it boots (this project's VM)."""
    (fake.root / ".dockerenv").touch()
    assert detect(initial(fake).host).kind == "host"


def test_a_pid_namespace_is_a_container_and_the_marker_names_it(fake: FakeHost) -> None:
    """A pid namespace of its own makes a container; /.dockerenv then names docker."""
    (fake.root / ".dockerenv").touch()
    environment = detect(initial(fake).set_namespace("pid", CHILD_NS).host)
    assert environment == (
        "container",
        "docker",
        (f"pid namespace {CHILD_NS} (not the initial one)", "/.dockerenv"),
        False,
    )


def test_a_container_in_the_hosts_pid_namespace_has_host_pid(fake: FakeHost) -> None:
    """A pod with hostPID: true (a cgroup namespace of its own): a container, host_pid."""
    environment = detect(initial(fake).set_namespace("cgroup", CHILD_NS).host)
    assert (environment.kind, environment.host_pid) == ("container", True)


def test_pid_1_says_container(fake: FakeHost) -> None:
    """systemd-nspawn, podman and LXC put container= in PID 1's environment."""
    (fake.root / "proc/1/environ").write_bytes(b"PATH=/bin\0container=podman\0")
    environment = detect(initial(fake).host)
    assert (environment.kind, environment.runtime) == ("container", "podman")


def test_a_read_only_proc_sys_is_a_container(fake: FakeHost) -> None:
    """Runtimes mount /proc/sys read-only: host-wide sysctls are the host's to change."""
    environment = detect(initial(fake).mount_proc_sys_read_only().host)
    assert environment.evidence == ("/proc/sys is mounted read-only",)


def test_where_each_sysctl_can_be_set() -> None:
    """In a container: net.* and (in its own pid namespace) pid_max here, the rest on the host."""
    host, container = ("host", None, ()), ("container", None, ("pid namespace 5",))
    cases = {
        ("vm.max_map_count", host, False): "here",
        ("vm.max_map_count", container, True): "host",
        ("net.core.somaxconn", container, False): "here",
        ("kernel.pid_max", container, True): "here",
        ("kernel.pid_max", container, False): "host",
        ("kernel.threads-max", container, True): "host",
    }
    for (name, environment, own), where in cases.items():
        assert sysctl_where(name, Environment(*environment), own_pid_namespace=own) == where
