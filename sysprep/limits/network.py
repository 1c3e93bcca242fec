"""Limits on concurrent TCP connections: fds, the file table, ports, backlog, conntrack, memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sysprep.facts import SYSCTL_FILE
from sysprep.limits.base import Reading
from sysprep.limits.base import Status
from sysprep.limits.base import measured
from sysprep.limits.base import unbounded
from sysprep.limits.memory import memory_floor
from sysprep.limits.memory import thread_cost
from sysprep.limits.rlimit import rlimit_fix
from sysprep.limits.sysctl import sysctl_minus_in_use
from sysprep.settings import Fix
from sysprep.settings.sysctl import SysctlSetting
from sysprep.units import KIB
from sysprep.units import format_size

if TYPE_CHECKING:
    from sysprep.limits.inspection import Inspection

# A burst of new clients waits in these queues; a few thousand absorbs one (Linux ≥ 5.4
# defaults somaxconn to 4096).
BURST = 4096
# Slab objects of one idle, accepted TCP socket: the socket, its inode, file and dentry, and
# an epoll entry. Fallback sizes where /sys/kernel/slab is not readable.
_SOCKET_SLABS = {
    "TCP": 2432,
    "sock_inode_cache": 1024,
    "filp": 256,
    "dentry": 192,
    "eppoll_entry": 128,
}
_TCP_TABLES = ("proc/net/tcp", "proc/net/tcp6")
_LISTEN = "0A"


def _wanted(inspection: Inspection) -> int:
    return inspection.target.connections or 0


class Nofile:
    """RLIMIT_NOFILE: every accepted connection is one fd of the process."""

    name = "RLIMIT_NOFILE"
    unit = "connections"
    counts = "fds"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is the soft limit minus the fds the process holds."""
        soft, hard = inspection.rlimits[self.name]
        in_use = inspection.open_fds
        needed = in_use + _wanted(inspection)
        note = f"hard limit {'unlimited' if hard is None else f'{hard:,}'}; fs.nr_open caps it"
        return measured(
            self.name,
            inspection.target,
            current=soft,
            in_use=in_use,
            allows=None if soft is None else soft - in_use,
            needed=needed,
            fix=rlimit_fix(self.name, inspection, needed),
            note=note,
            unit=self.unit,
        )


class NrOpen:
    """fs.nr_open: no process may hold more fds, whatever its RLIMIT_NOFILE says."""

    name = "fs.nr_open"
    unit = "connections"
    counts = "fds"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is nr_open minus the fds the process holds."""
        return sysctl_minus_in_use(self.name, inspection, inspection.open_fds, unit=self.unit)


class FileMax:
    """fs.file-max: open files of the whole host (fs.file-nr counts them)."""

    name = "fs.file-max"
    unit = "connections"
    counts = "files"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is file-max minus the files allocated host-wide."""
        allocated = int(inspection.host.sysctl("fs.file-nr").split()[0])
        return sysctl_minus_in_use(self.name, inspection, allocated, unit=self.unit)


class Backlog:
    """An accept queue (somaxconn) or SYN queue: bounds bursts of new clients, not the total."""

    unit = "connections"
    counts = "connections"

    def __init__(self, name: str) -> None:
        self.name = name

    def read(self, inspection: Inspection) -> Reading:
        """Does not bound held connections; fails below a burst of min(N, 4096)."""
        current = inspection.host.sysctl_int(self.name)
        needed = min(_wanted(inspection), BURST)
        ok = current >= needed
        return Reading(
            self.name,
            Status.OK if ok else Status.FAILS,
            current=current,
            needed=needed,
            fix=None
            if ok
            else SysctlSetting(self.name).fix(needed, where=inspection.sysctl_where(self.name)),
            note="queue for a burst of new clients; does not bound those held",
            unit=self.unit,
        )


class PortRange:
    """net.ipv4.ip_local_port_range: ports for outbound connections, per source address."""

    name = "net.ipv4.ip_local_port_range"
    unit = "connections"
    counts = "ports"

    def read(self, inspection: Inspection) -> Reading:
        """With --sources K: K × (ports in the range - ports in use); a server needs none."""
        low, high = (int(v) for v in inspection.host.sysctl(self.name).split())
        in_use = _local_ports_in_use(inspection, low, high)
        per_pair = high - low + 1 - in_use
        sources = inspection.target.sources
        note = f"{per_pair:,} ports per source/destination address pair"
        if sources is None:
            return measured(
                self.name,
                inspection.target,
                current=high - low + 1,
                in_use=in_use,
                allows=None,
                note=note + "; inbound connections use none",
                unit=self.unit,
            )
        wanted = -(-_wanted(inspection) // sources)
        fix = Fix(
            setting=self.name,
            value=None,
            now=f"sysctl -w {self.name}='1024 65535', or more source addresses (--sources)",
            persist=f"add '{self.name} = 1024 65535' to {SYSCTL_FILE.path}",
            takes_effect="now; the drop-in at every boot",
        )
        return measured(
            self.name,
            inspection.target,
            current=high - low + 1,
            in_use=in_use,
            allows=per_pair * sources,
            needed=wanted + in_use,
            fix=fix,
            note=f"{note}, {sources} source address(es)",
            unit=self.unit,
        )


class Conntrack:
    """net.netfilter.nf_conntrack_max: every tracked connection takes an entry, when loaded."""

    name = "net.netfilter.nf_conntrack_max"
    unit = "connections"
    counts = "entries"

    def read(self, inspection: Inspection) -> Reading:
        """Headroom is the table size minus entries in use; unbounded without conntrack."""
        host = inspection.host
        if not host.sysctl_path(self.name).exists():
            return unbounded(
                self.name, inspection.target, "conntrack is not loaded", unit=self.unit
            )
        in_use = host.sysctl_int("net.netfilter.nf_conntrack_count")
        return sysctl_minus_in_use(self.name, inspection, in_use, unit=self.unit)


class ConnectionMemory:
    """Memory: an idle connection's socket, inode, file and dentry, on top of the threads'."""

    name = "memory (connections)"
    unit = "connections"
    counts = "bytes"

    def read(self, inspection: Inspection) -> Reading:
        """(MemAvailable - floor - the threads' memory) / memory per connection."""
        cost = connection_cost(inspection)
        meminfo = inspection.meminfo
        wanted_threads = inspection.target.threads
        threads = wanted_threads * thread_cost(inspection).total if wanted_threads else 0
        available = meminfo["MemAvailable"] - memory_floor(meminfo) - threads
        sockstat = _sockstat_pages(inspection) * inspection.shape.page_size
        needed = cost * _wanted(inspection)
        fix = Fix(
            setting=self.name,
            value=needed,
            now=f"free memory, or hold at most {max(available, 0) // cost:,} connections",
            persist="add RAM",
            takes_effect="now",
        )
        note = f"{format_size(cost)} per idle connection; TCP buffers now {format_size(sockstat)}"
        if threads:
            note += f"; after {format_size(threads)} for the threads"
        return measured(
            self.name,
            inspection.target,
            current=meminfo["MemAvailable"],
            in_use=sockstat,
            allows=available // cost,
            room=available,
            needed=needed,
            fix=fix,
            note=note,
            unit=self.unit,
        )


def connection_cost(inspection: Inspection) -> int:
    """Bytes of kernel memory per idle accepted connection, from this kernel's slab sizes."""
    if inspection.connection_bytes is None:
        inspection.connection_bytes = _slab_cost(inspection)
    return inspection.connection_bytes


def _slab_cost(inspection: Inspection) -> int:
    total = 0
    for cache, fallback in _SOCKET_SLABS.items():
        try:
            total += inspection.host.slab_object_size(cache)
        except (OSError, ValueError):  # noqa: PERF203 - five small files, once per check
            total += fallback
    return max(total, 2 * KIB)


def _local_ports_in_use(inspection: Inspection, low: int, high: int) -> int:
    """TCP sockets whose local port lies in [low, high] (listeners excluded)."""
    ports = set()
    for table in _TCP_TABLES:
        try:
            lines = inspection.host.read(table).splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] != _LISTEN and low <= port <= high:
                ports.add(port)
    return len(ports)


def _sockstat_pages(inspection: Inspection) -> int:
    """Pages of TCP buffer memory, /proc/net/sockstat ("TCP: inuse 5 ... mem 3")."""
    for line in inspection.host.read("proc/net/sockstat").splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("mem") + 1])
    return 0


NETWORK_LIMITS = (
    Nofile(),
    NrOpen(),
    FileMax(),
    Backlog("net.core.somaxconn"),
    Backlog("net.ipv4.tcp_max_syn_backlog"),
    PortRange(),
    Conntrack(),
    ConnectionMemory(),
)
