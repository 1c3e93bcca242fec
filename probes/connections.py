#!/usr/bin/env python3
"""Hold N TCP connections open at once, exchange a message on each, name what stopped them.

Standalone: Python standard library only. `sysprep probe connections` runs it inside a
private network namespace of its own (made with pyroute2, removed afterwards); run by hand
it uses the current namespace, loopback only:

    python3 connections.py --count 10000 --json

This process is the server: it listens on 127.0.0.1 and accepts every connection, with one
epoll loop (default) or one thread per connection (--server threads, the seed's design).
Forked client processes open the connections from source addresses 127.0.0.2, 127.0.0.3, ...
(all of 127/8 is local on lo), each address giving a whole ephemeral port range, so one
address pair's ~28,000 ports do not cap the count. Every client sends 4 bytes and reads them
back. With all N open the probe counts fds and kernel memory, then closes everything.

stopped_by names the limit with `sysprep check`'s names: RLIMIT_NOFILE (accept: EMFILE),
fs.file-max (ENFILE), net.ipv4.ip_local_port_range (no free port for an address pair),
memory (the MemAvailable floor: 5 % of MemTotal, at least 512 MiB), or signal.

Exit status: 0 all N held, 1 a limit, the memory guard or a signal stopped it, 2 bad arguments.

Its small helpers (meminfo, events, arguments) repeat threads.py's on purpose: each probe is
one file that runs alone on a host with nothing else of sysprep.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import functools
import json
import os
import resource
import select
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from collections.abc import Callable

MIB = 1 << 20
_PORT = 5000  # outside the ephemeral range, so the listener takes no client port
_MESSAGE = b"ping"
_CHECK_INTERVAL = 1024
_WORST_BYTES_PER_CONNECTION = 64 * 1024
_CONNECT_TIMEOUT = 3.0
_ECHO_SECONDS = 10.0  # for every echo of a client process together
_CHILD_EXIT_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1
_IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h, Linux >= 4.2
_WORKER_SECONDS = 600.0
_PORTS_ERRNOS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL)
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def parse_count(text: str) -> int:
    """A positive count; "250_000" and "250,000" are accepted."""
    cleaned = text.replace("_", "").replace(",", "")
    if not cleaned.isdigit() or int(cleaned) <= 0:
        raise argparse.ArgumentTypeError(f"invalid count {text!r} (a whole number > 0)")
    return int(cleaned)


# Kept open for the whole run: at the fd limit, opening it again would fail (EMFILE).
_MEMINFO_FD = os.open("/proc/meminfo", os.O_RDONLY)
# Spare fds, closed before the last look around when the process is at RLIMIT_NOFILE.
_SPARE_FDS = 8


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes, re-read through the fd opened at start."""
    info = {}
    for line in os.pread(_MEMINFO_FD, 1 << 16, 0).decode().splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        info[name] = int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    return info


def port_range() -> tuple[int, int]:
    """net.ipv4.ip_local_port_range of this namespace."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = f.read().split()
    return int(low), int(high)


def open_fds() -> int:
    """File descriptors this process holds."""
    return len(os.listdir("/proc/self/fd"))


def event(**fields: object) -> None:
    """One JSON line on stderr for the process driving the probe."""
    sys.stderr.write(json.dumps(fields) + "\n")
    sys.stderr.flush()


# --- clients (forked processes)


def client(count: int, source: str, port: int, stop_fd: int, report_fd: int) -> None:
    """Open *count* connections from *source*, echo on each, report, hold until told to close."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # never outlive the server
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sockets: list[socket.socket] = []
    error = 0
    for number in range(count):
        if number % _CHECK_INTERVAL == 0 and select.select([stop_fd], [], [], 0)[0]:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.settimeout(_CONNECT_TIMEOUT)
            # Bind the address only; connect() picks the port by hashing the 4-tuple. A plain
            # bind(port 0) scans every socket on the address: quadratic over a run.
            s.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
            s.sendall(_MESSAGE)
        except OSError as failure:
            s.close()
            error = failure.errno or errno.ETIMEDOUT
            break
        sockets.append(s)
    report = {"opened": len(sockets), "echoed": _read_echoes(sockets), "errno": error}
    os.write(report_fd, json.dumps(report).encode() + b"\n")
    select.select([stop_fd], [], [])  # hold every connection until the server is done
    for s in sockets:
        s.close()


def _read_echoes(sockets: list[socket.socket]) -> int:
    """Echoes received, all sockets waited on together: one deadline, not one per socket."""
    by_fd = {s.fileno(): s for s in sockets}
    poller = select.epoll()
    for s in sockets:
        s.setblocking(False)
        poller.register(s.fileno(), select.EPOLLIN)
    echoed = 0
    deadline = time.monotonic() + _ECHO_SECONDS
    while by_fd and time.monotonic() < deadline:
        for fd, _ in poller.poll(0.2):
            with contextlib.suppress(OSError):  # reset: the server never accepted it
                echoed += by_fd[fd].recv(len(_MESSAGE)) == _MESSAGE
            poller.unregister(fd)
            del by_fd[fd]
    poller.close()
    return echoed


# --- the server


class Server:
    """Accepts and echoes; counts what it holds."""

    def __init__(self, *, threads: bool, floor: int, progress: int) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", _PORT))
        self.listener.listen(socket.SOMAXCONN)
        self.listener.setblocking(False)
        self.epoll = select.epoll()
        self.epoll.register(self.listener.fileno(), select.EPOLLIN)
        self.connections: dict[int, socket.socket] = {}
        self.threads = threads
        self.floor = floor
        self.progress = progress
        self.accepted = 0
        self.echoed = 0
        self.stopped_by: str | None = None
        self.error: int | None = None
        self._echo_lock = threading.Lock()
        if threads:
            threading.stack_size(64 * 1024)

    def serve(
        self,
        target: int,
        deadline: float,
        stop_arrived: Callable[[], bool],
        clients_done: Callable[[], bool],
    ) -> None:
        """Accept until *target* echoed, a limit, the floor, a signal, or the clients end."""
        last_report = 0.0
        next_check = 0
        while time.monotonic() < deadline:
            if stop_arrived():
                self.stopped_by = "signal"
                return
            if self.accepted >= next_check:  # the memory guard, every _CHECK_INTERVAL accepts
                next_check = self.accepted + _CHECK_INTERVAL
                if meminfo()["MemAvailable"] < self.floor:
                    self.stopped_by = "memory"
                    return
            if self.progress and time.monotonic() - last_report >= 0.1:
                last_report = time.monotonic()
                event(event="progress", created=self.accepted, target=self.progress)
            for fd, _ in self.epoll.poll(0.05):
                if fd == self.listener.fileno():
                    if not self._accept_all():
                        # A limit: accept no more. Closing the listener resets its backlog
                        # and refuses new connects, so the clients stop at once.
                        self.epoll.unregister(fd)
                        self.listener.close()
                else:
                    self._echo(self.connections[fd])
            if self.echoed >= target or (clients_done() and self._idle()):
                return

    def own_epoll(self) -> None:
        """Give this process an epoll instance of its own.

        After fork the parent's would be shared, and with it the events of another process's
        fds.
        """
        self.epoll.close()
        self.epoll = select.epoll()
        self.epoll.register(self.listener.fileno(), select.EPOLLIN)

    def close(self) -> None:
        """Close every accepted connection, then the listener."""
        for conn in self.connections.values():
            conn.close()
        self.connections.clear()
        self.listener.close()

    def _idle(self) -> bool:
        return not self.epoll.poll(0.2)

    def _accept_all(self) -> bool:
        while True:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return True
            except OSError as failure:
                self.error = failure.errno
                names = {errno.EMFILE: "RLIMIT_NOFILE", errno.ENFILE: "fs.file-max"}
                self.stopped_by = names.get(failure.errno or 0, "unknown")
                return False
            self.accepted += 1
            if self.threads:
                threading.Thread(target=self._echo_blocking, args=(conn,), daemon=True).start()
            else:
                conn.setblocking(False)
                self.connections[conn.fileno()] = conn
                self.epoll.register(conn.fileno(), select.EPOLLIN)

    def _echo(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(len(_MESSAGE))
        except BlockingIOError:
            return
        if data:
            conn.sendall(data)
            self.echoed += 1
        self.epoll.unregister(conn.fileno())  # one message each; hold the socket open

    def _echo_blocking(self, conn: socket.socket) -> None:
        """Thread per connection: echo once, then block until the client closes."""
        data = conn.recv(len(_MESSAGE))
        conn.sendall(data)
        with self._echo_lock:
            self.echoed += 1
        conn.recv(1)
        conn.close()


def client_plan(count: int, sources: int | None) -> tuple[int, list[tuple[str, int]]]:
    """How many source addresses, and (address, connections) for each client process.

    A client process holds at most its hard RLIMIT_NOFILE; an address at most one port range.
    """
    low, high = port_range()
    per_source = high - low + 1 - 16  # a few ports spare for whatever else runs
    chosen = sources or max(1, -(-count // per_source))
    share = -(-count // chosen)
    per_client = max(1, min(per_source, _hard_nofile() - 64))
    plan: list[tuple[str, int]] = []
    remaining = count
    for index in range(chosen):
        address = f"127.0.{2 + index // 250}.{2 + index % 250}"
        left = min(share, remaining)
        while left > 0:
            take = min(left, per_client)
            plan.append((address, take))
            left -= take
            remaining -= take
    return chosen, plan


def _hard_nofile() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 20 if hard == resource.RLIM_INFINITY else hard


def fork(mask: set[signal.Signals], close: list[int], work: Callable[[], None]) -> int:
    """A child process that runs *work* and exits; it never returns into the caller's code."""
    pid = os.fork()
    if pid == 0:
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            for fd in close:
                os.close(fd)
            work()
        finally:
            os._exit(0)
    return pid


def worker(server: Server, halt_fd: int, result_fd: int, release_fd: int) -> None:
    """A forked server worker on the shared listener, within its own fd limit.

    It accepts and echoes until the driver says the clients are done, reports, and holds
    every connection until released.
    """
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    hard = _hard_nofile()
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server.own_epoll()

    def halted() -> bool:
        return bool(select.select([halt_fd], [], [], 0)[0])

    server.serve(1 << 62, time.monotonic() + _WORKER_SECONDS, lambda: False, halted)
    report = {
        "accepted": server.accepted,
        "echoed": server.echoed,
        "stopped_by": server.stopped_by,
        "errno": server.error,
    }
    os.write(result_fd, json.dumps(report).encode() + b"\n")
    select.select([release_fd], [], [])
    server.close()


def _reap(children: list[int]) -> None:
    """Wait for the children to exit; kill any that do not within _CHILD_EXIT_SECONDS."""
    deadline = time.monotonic() + _CHILD_EXIT_SECONDS
    for pid in children:
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.01)


class Lines:
    """JSON lines arriving on a pipe from child processes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.items: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        """Everything received so far."""
        while select.select([self.fd], [], [], 0)[0]:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break
            self.items.extend(json.loads(line) for line in chunk.splitlines() if line)
        return self.items


class Run:
    """One run of the probe: its plan, the server, and the pipes between its processes.

    Phases: start() forks workers and clients, hold() accepts until the target, a limit or
    a signal, release() lets every process close what it holds and reaps them, report()
    turns it into the JSON document.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sources, self.plan = client_plan(args.count, args.sources)
        self.workers = args.workers or max(1, -(-args.count // (_hard_nofile() - 64)))
        self.floor = args.memory_floor
        if self.floor is None:
            self.floor = max(meminfo()["MemTotal"] // 20, 512 * MIB)
        progress = args.count if args.progress and self.workers == 1 else 0
        self.server = Server(threads=args.server == "threads", floor=self.floor, progress=progress)
        self.release_read, self.release_write = os.pipe()  # closing time, for everyone
        self.halt_read, self.halt_write = os.pipe()  # "the clients are done", for workers
        self.reports_read, self.reports_write = os.pipe()
        self.results_read, self.results_write = os.pipe()
        self.reports, self.results = Lines(self.reports_read), Lines(self.results_read)
        self.children: list[int] = []
        self.stopped_by: str | None = None
        self.seconds = 0.0

    def start(self, mask: set[signal.Signals]) -> None:
        """Fork the server workers (when one process's fds are too few), then the clients."""
        if self.workers > 1:
            self.children += [
                fork(
                    mask,
                    [self.reports_read, self.results_read],
                    lambda: worker(
                        self.server, self.halt_read, self.results_write, self.release_read
                    ),
                )
                for _ in range(self.workers)
            ]
        server_fds = [self.server.listener.fileno(), self.server.epoll.fileno()]
        self.children += [
            fork(
                mask,
                [self.reports_read, self.results_read, *server_fds],
                functools.partial(
                    client, count, source, _PORT, self.release_read, self.reports_write
                ),
            )
            for source, count in self.plan
        ]
        os.close(self.reports_write)
        os.close(self.results_write)

    def clients_done(self) -> bool:
        """Every client process has reported."""
        return len(self.reports.poll()) == len(self.plan)

    def hold(self, started: float) -> list[dict[str, Any]]:
        """Accept (here, or in the workers) until all are held or something stops it.

        Returns each server process's outcome: accepted, echoed, stopped_by, errno; keeps
        the seconds the accepting took (not the clients' settling after it).
        """
        deadline = started + self.args.timeout

        def stop_arrived() -> bool:
            return bool(signal.sigpending() & _STOP_SIGNALS)

        if self.workers == 1:
            self.server.serve(self.args.count, deadline, stop_arrived, self.clients_done)
            self.seconds = time.monotonic() - started
            while not self.clients_done() and time.monotonic() < deadline:
                if self.server.stopped_by is not None:
                    break
                time.sleep(0.01)
            return [
                {
                    "accepted": self.server.accepted,
                    "echoed": self.server.echoed,
                    "stopped_by": self.server.stopped_by,
                    "errno": self.server.error,
                }
            ]
        while not self.clients_done() and time.monotonic() < deadline:
            if stop_arrived():
                self.stopped_by = "signal"
                break
            time.sleep(0.01)
        os.write(self.halt_write, b"x")
        waited = time.monotonic() + _CHILD_EXIT_SECONDS  # each worker reports in ~0.2 s
        while len(self.results.poll()) < self.workers and time.monotonic() < waited:
            time.sleep(0.01)
        self.seconds = time.monotonic() - started
        return self.results.items

    def release(self, mask: set[signal.Signals]) -> None:
        """Every process closes what it holds and exits; pending stop signals are eaten."""
        self.server.close()  # first, so TIME_WAIT lands on the server's port, not clients'
        os.write(self.release_write, b"x")
        _reap(self.children)
        while signal.sigtimedwait(_STOP_SIGNALS, 0) is not None:
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def report(
        self,
        outcome: list[dict[str, Any]],
        seconds: float,
        before: tuple[dict[str, int], int],
        after: tuple[dict[str, int], int],
    ) -> dict[str, Any]:
        """The JSON document: what was held, what stopped it, and what each one cost."""
        (info_before, fds_before), (info, fds) = before, after
        held = sum(int(o["echoed"]) for o in outcome)
        stopped_by = self.stopped_by or _blame(outcome, self.reports.items, held, self.args.count)
        error = None
        if stopped_by is not None:  # a worker at its fd limit is normal while others go on
            error = next((o["errno"] for o in outcome if o["errno"]), None)
            error = error or next((r["errno"] for r in self.reports.items if r["errno"]), None)
        n = max(held, 1)
        return {
            "schema_version": 1,  # sysprep/schemas/probe-connections.schema.json
            "probe": "connections",
            "target": self.args.count,
            "held": held,
            "accepted": sum(int(o["accepted"]) for o in outcome),
            "stopped_by": stopped_by,
            "errno": None if error is None else errno.errorcode.get(int(error), str(error)),
            "server": self.args.server,
            "workers": self.workers,
            "sources": self.sources,
            "client_processes": len(self.plan),
            "create_seconds": round(seconds, 6),
            "create_rate": round(held / seconds) if seconds > 0 else None,
            "fds_per_connection": (
                round((fds - fds_before) / n, 3) if self.workers == 1 else None
            ),
            "per_connection_bytes": {
                "slab": (info["SUnreclaim"] - info_before["SUnreclaim"]) // n,
                "mem_available": (info_before["MemAvailable"] - info["MemAvailable"]) // n,
            },
            "memory_floor": self.floor,
        }


def probe(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """Hold args.count connections; measure; close them all."""
    run = Run(args)
    if args.wait:  # let a caller inspect this process (its fds, its limits) first
        event(event="ready", pid=os.getpid())
        sys.stdin.readline()
    mask = {signal.Signals(n) for n in signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)}
    spares = [os.open("/dev/null", os.O_RDONLY) for _ in range(_SPARE_FDS)]
    info_before = meminfo()
    started = time.monotonic()
    try:
        run.start(mask)
        fds_before = open_fds()  # the server's own; accepting starts only below
        outcome = run.hold(started)
        for spare in spares:
            os.close(spare)
        after = (meminfo(), open_fds() + _SPARE_FDS)
    finally:
        run.release(mask)
    document = run.report(outcome, run.seconds, (info_before, fds_before), after)
    return document, 0 if document["held"] >= args.count else 1


def _blame(
    outcome: list[dict[str, Any]], reports: list[dict[str, Any]], held: int, count: int
) -> str | None:
    """What stopped the probe short: a server's limit, the memory floor, or client ports."""
    if held >= count:
        return None
    stops = {str(o["stopped_by"]) for o in outcome}
    for name in ("signal", "memory", "fs.file-max", "RLIMIT_NOFILE"):
        if name in stops:
            return name
    if {int(r["errno"] or 0) for r in reports} & set(_PORTS_ERRNOS):
        return "net.ipv4.ip_local_port_range"
    return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the probe, print one JSON document (or a summary line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=parse_count, default=10_000, help="connections to hold")
    parser.add_argument("--sources", type=parse_count, help="source addresses (default: enough)")
    parser.add_argument("--server", choices=("epoll", "threads"), default="epoll")
    parser.add_argument("--workers", type=parse_count, help="server processes (default: enough)")
    parser.add_argument("--memory-floor", type=parse_count, help="MemAvailable to keep, bytes")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds at most")
    parser.add_argument("--progress", action="store_true", help="JSON progress lines on stderr")
    parser.add_argument("--wait", action="store_true", help="wait for a line on stdin first")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return 2 if exit_.code else 0
    try:
        document, status = probe(args)
    except OSError as error:
        print(f"connections: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(document))
    else:
        stopped = f"; stopped by {document['stopped_by']}" if document["stopped_by"] else ""
        print(f"{document['held']:,} of {document['target']:,} connections held{stopped}")
    return status


if __name__ == "__main__":
    sys.exit(main())
