#!/usr/bin/env python3
"""Hold N native threads alive at once and measure what each one costs the host.

Standalone: Python standard library only, so it can be copied to a bare host and run:

    python3 threads.py --count 100000 --json

Threads are created through ctypes with pthread_create(3); their start routine is libc's own
sem_wait(3) on one shared semaphore, so no Python code runs in them and each one blocks in the
kernel until released. With all of them alive the probe reads /proc/meminfo, /proc/self/status
and /proc/self/maps, then posts the semaphore once per thread and joins them all.

A memory guard keeps MemAvailable above a floor (default: 5 % of MemTotal, at least 512 MiB) so
the OOM killer never wakes. SIGINT and SIGTERM stop creation; every thread is still released.

Exit status: 0 the target was reached, 1 a limit or the memory guard stopped it, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import os
import re
import signal
import sys
import time
from typing import Any

MIB = 1 << 20
_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)
_MULTIPLIER = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
# Big enough for pthread_attr_t and sem_t on every 64-bit glibc (56/64 and 32 bytes).
_OPAQUE_BYTES = 128
_MEMINFO_FIELDS = ("KernelStack", "PageTables", "SUnreclaim", "MemAvailable", "Committed_AS")
# Threads between two MemAvailable checks: at most this many, fewer as the floor nears.
_MAX_CHECK_INTERVAL = 4096
_WORST_BYTES_PER_THREAD = 256 * 1024


def parse_size(text: str) -> int:
    """Bytes in "256K", "8M", "8MiB" or "4096"."""
    match = _SIZE.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (use e.g. 256K, 8M)")
    return int(match[1]) * _MULTIPLIER[match[2].upper()]


def parse_count(text: str) -> int:
    """A positive count; "1_000_000" and "1,000,000" are accepted."""
    cleaned = text.replace("_", "").replace(",", "")
    if not cleaned.isdigit() or int(cleaned) <= 0:
        raise argparse.ArgumentTypeError(f"invalid count {text!r} (a whole number > 0)")
    return int(cleaned)


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, _, rest = line.partition(":")
            fields = rest.split()
            info[name] = int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    return info


def self_status(field: str) -> int:
    """A field of /proc/self/status ("VmRSS: 1234 kB" in bytes, "Threads: 3" as is)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                value = line.split()
                return int(value[1]) * (1024 if value[2:] == ["kB"] else 1)
    raise KeyError(field)


def maps_count() -> int:
    """Mappings of this process (compared with vm.max_map_count)."""
    with open("/proc/self/maps", "rb") as f:
        return sum(1 for _ in f)


def oom_kills() -> int | None:
    """oom_kill from /proc/vmstat (Linux ≥ 4.13); it must not move during a probe."""
    try:
        with open("/proc/vmstat") as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def sample() -> dict[str, int]:
    """The counters a thread moves: meminfo fields, user RSS, mappings."""
    info = meminfo()
    values = {name: info.get(name, 0) for name in _MEMINFO_FIELDS}
    values["VmRSS"] = self_status("VmRSS")
    values["maps"] = maps_count()
    return values


class Pthreads:
    """pthread_create/sem_wait/sem_post/pthread_join through ctypes; no Python in the threads."""

    def __init__(self, stack: int | None) -> None:
        # The running program's namespace holds libc and, before glibc 2.34, libpthread.
        libc = ctypes.CDLL(None, use_errno=True)
        self.create = libc.pthread_create
        self.create.argtypes = [ctypes.c_void_p] * 4
        self.create.restype = ctypes.c_int
        self.join = libc.pthread_join
        self.join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
        self.join.restype = ctypes.c_int
        self.post = libc.sem_post
        self.post.argtypes = [ctypes.c_void_p]
        self.start_routine = ctypes.cast(libc.sem_wait, ctypes.c_void_p).value
        self.semaphore = ctypes.create_string_buffer(_OPAQUE_BYTES)
        if libc.sem_init(self.semaphore, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "sem_init failed")
        self.attr = ctypes.create_string_buffer(_OPAQUE_BYTES)
        if stack is None:  # what a C program gets: glibc's default, from RLIMIT_STACK
            libc.pthread_getattr_default_np(self.attr)
        else:
            libc.pthread_attr_init(self.attr)
            rc = libc.pthread_attr_setstacksize(self.attr, ctypes.c_size_t(stack))
            if rc != 0:
                raise OSError(rc, f"pthread_attr_setstacksize({stack}): {os.strerror(rc)}")
        size = ctypes.c_size_t()
        libc.pthread_attr_getstacksize(self.attr, ctypes.byref(size))
        guard = ctypes.c_size_t()
        libc.pthread_attr_getguardsize(self.attr, ctypes.byref(guard))
        self.stack_bytes, self.guard_bytes = size.value, guard.value


class Stop(Exception):  # noqa: N818 - a signal, not an error
    """SIGINT or SIGTERM arrived: stop creating, release what is held."""


def _raise_stop(signum: int, _frame: object) -> None:
    raise Stop(signum)


class Held:
    """Threads created by create_until, blocked in sem_wait until release()."""

    def __init__(self, lib: Pthreads, count: int) -> None:
        self.lib = lib
        self.tids = (ctypes.c_ulong * count)()
        self.created = 0
        self.stopped_by: str | None = None
        self.error: int | None = None

    def create_until(self, count: int, floor: int) -> None:
        """Create threads until *count*, a refusal, MemAvailable reaching *floor*, or a signal."""
        base = ctypes.addressof(self.tids)
        width = ctypes.sizeof(ctypes.c_ulong)
        lib = self.lib
        create, attr, start, semaphore = lib.create, lib.attr, lib.start_routine, lib.semaphore
        created, next_check = self.created, self.created
        try:
            while created < count:
                if created >= next_check:  # the memory guard, read every few thousand threads
                    margin = meminfo()["MemAvailable"] - floor
                    if margin <= 0:
                        self.stopped_by = "memory"
                        break
                    step = min(_MAX_CHECK_INTERVAL, margin // _WORST_BYTES_PER_THREAD)
                    next_check = created + max(1, step)
                rc = create(base + created * width, attr, start, semaphore)
                if rc != 0:
                    self.error, self.stopped_by = rc, "error"
                    break
                created += 1
        except Stop:
            self.stopped_by = "signal"
        self.created = created

    def release(self) -> None:
        """Post the semaphore once per thread, then join every one."""
        post, join, semaphore = self.lib.post, self.lib.join, self.lib.semaphore
        for _ in range(self.created):
            post(semaphore)
        for i in range(self.created):
            join(self.tids[i], None)


def memory_floor(requested: int | None) -> int:
    """MemAvailable to keep: as asked, else 5 % of MemTotal and at least 512 MiB."""
    return requested if requested is not None else max(meminfo()["MemTotal"] // 20, 512 * MIB)


def hold(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """Create args.count threads, all alive at once; measure; release and join them."""
    lib = Pthreads(args.stack)
    floor = memory_floor(args.memory_floor)
    held = Held(lib, args.count)
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        oom_before = oom_kills()
        if args.wait:  # let a caller inspect this process before the first thread exists
            sys.stderr.write(json.dumps({"event": "ready", "pid": os.getpid()}) + "\n")
            sys.stderr.flush()
            sys.stdin.readline()
        before = sample()
        started = time.monotonic()
        held.create_until(args.count, floor)
        create_seconds = time.monotonic() - started
        during = sample()
        peak = self_status("Threads") - 1
        released = time.monotonic()
        held.release()
        join_seconds = time.monotonic() - released
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    n = max(held.created, 1)
    delta = {name: during[name] - before[name] for name in during}
    result = {
        "probe": "threads",
        "mode": "hold",
        "target": args.count,
        "held": held.created,
        "peak_alive": peak,
        "stopped_by": held.stopped_by,
        "errno": None if held.error is None else errno.errorcode.get(held.error, str(held.error)),
        "stack_bytes": lib.stack_bytes,
        "guard_bytes": lib.guard_bytes,
        "create_seconds": round(create_seconds, 6),
        "create_rate": round(held.created / create_seconds) if create_seconds > 0 else None,
        "join_seconds": round(join_seconds, 6),
        "per_thread_bytes": {
            "rss": delta["VmRSS"] // n,
            "kernel_stack": delta["KernelStack"] // n,
            "page_tables": delta["PageTables"] // n,
            "slab": delta["SUnreclaim"] // n,
            "mem_available": -delta["MemAvailable"] // n,
            "committed": delta["Committed_AS"] // n,
        },
        "maps_per_thread": round(delta["maps"] / n, 3),
        "memory_floor": floor,
        "oom_kills": None if oom_before is None else (oom_kills() or 0) - oom_before,
    }
    return result, 0 if held.created == args.count else 1


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the probe, print one JSON document (or a summary line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=parse_count, default=10_000, help="threads to hold")
    parser.add_argument("--stack", type=parse_size, help="thread stack (default: glibc's)")
    parser.add_argument("--memory-floor", type=parse_size, help="MemAvailable to keep free")
    parser.add_argument("--wait", action="store_true", help="wait for a line on stdin first")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return 2 if exit_.code else 0
    try:
        result, status = hold(args)
    except OSError as error:
        print(f"threads: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"held {result['held']:,} of {result['target']:,} threads at once"
            f" in {result['create_seconds']:.2f} s"
            + (f"; stopped by {result['stopped_by']}" if result["stopped_by"] else "")
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
