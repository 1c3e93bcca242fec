"""A private network namespace for the connections probe (pyroute2), removed afterwards."""

from __future__ import annotations

import contextlib
import ctypes
import os
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator

NETNS_DIR = "/var/run/netns"
# Probe namespaces are named PREFIX<pid of sysprep>-<random>, so a stale one can be told.
_PREFIX = "sysprep-probe-"
_CLONE_NEWNET = 0x40000000
# Per-namespace sysctls a new namespace does not inherit: copied from the host's, so the
# probe meets the limits `check` read.
COPIED_SYSCTLS = (
    "net/ipv4/ip_local_port_range",
    "net/core/somaxconn",
    "net/ipv4/tcp_max_syn_backlog",
)


@contextlib.contextmanager
def private_namespace() -> Iterator[Callable[[], None]]:
    """Create a namespace with its loopback up; remove it, whatever happens.

    It yields what a child process runs to enter it (a preexec function).
    """
    from pyroute2 import NetNS
    from pyroute2 import netns

    remove_stale()
    name = f"{_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:6]}"
    netns.create(name)
    try:
        with NetNS(name) as ns:
            (lo,) = ns.link_lookup(ifname="lo")
            ns.link("set", index=lo, state="up")
        yield entering(name)
    finally:
        netns.remove(name)


def remove_stale() -> list[str]:
    """Remove the probe namespaces whose sysprep is gone (killed with -9); their names."""
    from pyroute2 import netns

    removed = []
    for name in netns.listnetns():
        owner = name.removeprefix(_PREFIX).split("-")[0]
        if name.startswith(_PREFIX) and owner.isdigit() and not _alive(int(owner)):
            netns.remove(name)
            removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def entering(name: str) -> Callable[[], None]:
    """A preexec_fn: move the child into namespace *name* and give it the host's sysctls."""
    values = {key: _read(f"/proc/sys/{key}") for key in COPIED_SYSCTLS}
    path = f"{NETNS_DIR}/{name}"

    def enter() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {path}")
        finally:
            os.close(fd)
        for key, value in values.items():  # /proc/sys/net now shows the new namespace
            with open(f"/proc/sys/{key}", "w") as f:  # noqa: PTH123 - in a forked child
                f.write(value)

    return enter


def links() -> list[dict[str, object]]:
    """The host's links over netlink: name, state, MTU, txqueuelen."""
    from pyroute2 import IPRoute

    with IPRoute() as ip:
        return [
            {
                "name": link.get_attr("IFLA_IFNAME"),
                "state": link.get_attr("IFLA_OPERSTATE"),
                "mtu": link.get_attr("IFLA_MTU"),
                "txqueuelen": link.get_attr("IFLA_TXQLEN"),
            }
            for link in ip.get_links()
        ]


def _read(path: str) -> str:
    with open(path) as f:  # noqa: PTH123
        return f.read()
