"""Connection limits on fake hosts: fds, the file table, ports, backlogs, conntrack, memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sysprep.capacity import check
from sysprep.limits.base import Status
from sysprep.limits.base import Target
from sysprep.limits.inspection import Inspection
from sysprep.limits.network import Backlog
from sysprep.limits.network import Conntrack
from sysprep.limits.network import FileMax
from sysprep.limits.network import Nofile
from sysprep.limits.network import NrOpen
from sysprep.limits.network import PortRange
from tests.fakehost import SELF_PID

if TYPE_CHECKING:
    from tests.fakehost import FakeHost

SERVER = Target(threads=0, connections=100_000)


def inspect(fake: FakeHost, target: Target = SERVER) -> Inspection:
    return Inspection(fake.host, target)


def test_nofile_is_soft_limit_minus_open_fds(fake: FakeHost) -> None:
    """Every accepted connection is an fd: headroom is the soft limit minus fds held."""
    fake.set_fds(SELF_PID, 10)
    reading = Nofile().read(inspect(fake))
    assert (reading.current, reading.in_use, reading.allows) == (1024, 10, 1014)
    assert reading.status is Status.FAILS
    assert reading.fix is not None
    assert reading.fix.now == "ulimit -n 100010 (in the shell that starts the program)"


def test_nr_open_caps_every_process(fake: FakeHost) -> None:
    """fs.nr_open bounds what any process may hold."""
    fake.set_fds(SELF_PID, 10).set_sysctl("fs.nr_open", 50_000)
    assert NrOpen().read(inspect(fake)).allows == 50_000 - 10


def test_file_max_counts_the_whole_host(fake: FakeHost) -> None:
    """fs.file-max minus the files allocated (first field of fs.file-nr)."""
    fake.set_sysctl("fs.file-max", 90_000).set_sysctl("fs.file-nr", "4000\t0\t90000")
    reading = FileMax().read(inspect(fake))
    assert (reading.in_use, reading.allows) == (4000, 86_000)


def test_backlog_fails_below_a_burst(fake: FakeHost) -> None:
    """A SYN backlog of 2048 is short of a 4096 burst; it never bounds held connections."""
    reading = Backlog("net.ipv4.tcp_max_syn_backlog").read(inspect(fake))
    assert (reading.status, reading.allows, reading.needed) == (Status.FAILS, None, 4096)
    assert Backlog("net.core.somaxconn").read(inspect(fake)).status is Status.OK


def test_port_range_does_not_bind_a_server(fake: FakeHost) -> None:
    """Accepted connections use no ephemeral port."""
    assert PortRange().read(inspect(fake)).allows is None


def test_port_range_binds_a_client_per_source(fake: FakeHost) -> None:
    """A load generator: sources x (ports in range - ports in use); listeners do not count."""
    fake.set_sysctl("net.ipv4.ip_local_port_range", "40000\t41999")
    fake.add_tcp_sockets(local_ports=[40000, 40001, 5000]).add_tcp_sockets(
        local_ports=[40002], listening=True
    )
    client = Target(threads=0, connections=100_000, sources=3)
    reading = PortRange().read(inspect(fake, client))
    assert reading.in_use == 2
    assert reading.allows == 3 * (2000 - 2)


def test_conntrack_only_when_loaded(fake: FakeHost) -> None:
    """Without the module there is no table; with it, max minus entries in use."""
    assert Conntrack().read(inspect(fake)).note == "conntrack is not loaded"
    fake.set_sysctl("net.netfilter.nf_conntrack_max", 65536).set_sysctl(
        "net.netfilter.nf_conntrack_count", 536
    )
    assert Conntrack().read(inspect(fake)).allows == 65_000


def test_threads_and_connections_judged_together(fake: FakeHost) -> None:
    """A thread-per-client server: both capacities, and the threads' memory comes first."""
    fake.set_sysctl("kernel.pid_max", 32768).set_limits(RLIMIT_NOFILE=(200_000, 200_000))
    result = check(fake.host, Target(threads=100_000, connections=100_000, stack_bytes=256 * 1024))
    assert result.binding is not None
    assert result.binding.name == "kernel.pid_max"
    assert result.connections_binding is not None
    assert result.connections_binding.name == "RLIMIT_NOFILE"
    memory = next(r for r in result.readings if r.name == "memory (connections)")
    assert "for the threads" in memory.note


def test_only_connections_skips_thread_limits(fake: FakeHost) -> None:
    """check --connections alone judges no thread limit."""
    result = check(fake.host, SERVER)
    assert {r.unit for r in result.readings} == {"connections"}
    assert result.capacity is None
