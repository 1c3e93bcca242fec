"""Pid namespaces seen from above: a process's chain of them, and each one's pid_max.

Since Linux 6.14 every pid namespace has its own kernel.pid_max, and a new task takes a pid
at every level of its chain. From the host, a level's tasks are the processes whose chain
holds it; its pid_max and ns_last_pid show only to a task inside it, whatever procfs it
reads (kernel/pid.c looks them up by the reader's active namespace): a forked child is
moved into the level for one read. Needs root (setns(2), NS_GET_PARENT).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
from typing import NamedTuple

from sysprep.facts import RESERVED_PIDS

# ioctl_ns(2): NS_GET_PARENT = _IO(0xb7, 0x2); setns(2)'s CLONE_NEWPID.
_NS_GET_PARENT = 0xB702
_CLONE_NEWPID = 0x20000000


class Level(NamedTuple):
    """One pid namespace of a chain, with what binds there."""

    inode: int
    depth: int  # 1: a child of the caller's namespace
    member: int  # a host pid inside it, to read its sysctls through
    pid_max: int
    last_pid: int  # ns_last_pid: the allocator's cursor
    tasks: int  # tasks of this namespace and those below it
    early: int  # of them, processes whose pid here is below 300 (RESERVED_PIDS)


def chain(pid: int) -> list[int]:
    """The pid namespaces of *pid*, its own first, up to (not including) the caller's."""
    own = os.stat("/proc/self/ns/pid").st_ino  # noqa: PTH116 - beside os.open and fstat
    inodes = []
    fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY)
    try:
        while (inode := os.fstat(fd).st_ino) != own:
            inodes.append(inode)
            try:
                parent = fcntl.ioctl(fd, _NS_GET_PARENT)
            except PermissionError:  # above the caller's own: not ours to see
                break
            os.close(fd)
            fd = parent
    finally:
        os.close(fd)
    return inodes


def levels(pid: int) -> list[Level]:
    """Each pid namespace of *pid*'s chain below the caller's, with its pid_max and tasks."""
    wanted = chain(pid)
    depth = {inode: len(wanted) - index for index, inode in enumerate(wanted)}
    tasks = dict.fromkeys(wanted, 0)
    early = dict.fromkeys(wanted, 0)
    members: dict[int, int] = {}
    for entry in os.scandir("/proc") if wanted else ():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError):
            threads, ns_pids = _status(entry.name)
            for inode in set(chain(int(entry.name))) & set(wanted):
                tasks[inode] += threads
                members.setdefault(inode, int(entry.name))
                early[inode] += ns_pids[depth[inode]] < RESERVED_PIDS
    result = []
    for inode in wanted:
        member = members.get(inode, pid)
        pid_max, last = read_inside(member)
        result.append(
            Level(inode, depth[inode], member, pid_max, last, tasks[inode], early[inode])
        )
    return result


def read_inside(member: int) -> tuple[int, int]:
    """kernel.pid_max and kernel.ns_last_pid as the pid namespace of *member* sees them."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked children
        status = 1
        try:
            os.close(read_end)
            fd = os.open(f"/proc/{member}/ns/pid", os.O_RDONLY)
            if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWPID) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            inside = os.fork()  # setns moves children, not the caller
            if inside == 0:
                values = [_read("/proc/sys/kernel/pid_max"), _read("/proc/sys/kernel/ns_last_pid")]
                os.write(write_end, " ".join(values).encode())
                os._exit(0)
            status = os.waitstatus_to_exitcode(os.waitpid(inside, 0)[1])
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read().decode().split()
    os.waitpid(child, 0)
    if len(data) != 2:  # noqa: PLR2004 - pid_max and ns_last_pid
        raise OSError(f"could not read kernel.pid_max inside the pid namespace of pid {member}")
    return int(data[0]), int(data[1])


def _status(pid: str) -> tuple[int, list[int]]:
    """Threads, and NSpid: the process's pid at each level, the caller's first."""
    threads, ns_pids = 1, []
    with open(f"/proc/{pid}/status") as status:  # noqa: PTH123 - a hot loop over /proc
        for line in status:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
            elif line.startswith("NSpid:"):
                ns_pids = [int(n) for n in line.split()[1:]]
    return threads, ns_pids


def _read(path: str) -> str:
    with open(path) as f:  # noqa: PTH123 - in a forked child
        return f.read().strip()
