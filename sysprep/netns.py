"""A private network namespace for the connections probe; the host's links (pyroute2)."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import socket
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator

NETNS_DIR = "/var/run/netns"
# Older sysprep named its probe namespaces PREFIX<pid of sysprep>-<random> there.
_PREFIX = "sysprep-probe-"
_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1  # netdevice(7)
# Per-namespace sysctls a new namespace does not inherit: copied from the host's, so the
# probe meets the limits `check` read.
COPIED_SYSCTLS = (
    "net/ipv4/ip_local_port_range",
    "net/core/somaxconn",
    "net/ipv4/tcp_max_syn_backlog",
)


@contextlib.contextmanager
def private_namespace() -> Iterator[Callable[[], None]]:
    """A network namespace for one child process and those it forks.

    It yields what the child runs to make and enter it (a preexec function): the child
    unshares it, brings its loopback up and takes the host's copied sysctls. The namespace
    is held by its processes alone, with no name under /run/netns, so it is gone with them,
    whatever kills them (kill -9 of sysprep included). Namespaces an older sysprep named
    there and left behind are removed first.
    """
    remove_stale()
    values = {key: _read(f"/proc/sys/{key}") for key in COPIED_SYSCTLS}

    def enter() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
        _loopback_up()
        for key, value in values.items():  # /proc/sys/net now shows the new namespace
            with open(f"/proc/sys/{key}", "w") as f:  # noqa: PTH123 - in a forked child
                f.write(value)

    yield enter


def _loopback_up() -> None:
    """Bring lo up in this process's network namespace (netdevice(7): SIOCSIFFLAGS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, _SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


def remove_stale() -> list[str]:
    """Remove the probe namespaces an older sysprep named and, killed, left; their names."""
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
