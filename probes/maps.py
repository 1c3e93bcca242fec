#!/usr/bin/env python3
"""Prove vm.max_map_count cheaply: make N mappings in one process, without a single thread.

Standalone: Python standard library only, so it can be copied to a bare host and run:

    python3 maps.py --count 2000000 --json

One read-only reservation of N pages, then madvise(MADV_DONTDUMP) on every other page: each
call changes the flags of one page, splitting the reservation, so the page and the gap after
it become two mappings. (mprotect would split it the same way; mmap.madvise is a C method,
so the loop costs Python far less than a ctypes call per page.) Read-only private pages are
neither touched nor charged, so the only cost is the kernel's: a vm_area_struct and
maple-tree nodes, about 0.25 KiB per mapping. A memory guard stops before
MemAvailable falls below a floor (5 % of MemTotal, at least 512 MiB), so the OOM killer never
wakes. The reservation is unmapped with one munmap at the end, also on SIGINT or SIGTERM.

Exit status: 0 the target was reached, 1 a limit, the memory guard or a signal stopped it,
2 bad arguments.

Its small helpers (meminfo, counting maps, signals, arguments) repeat threads.py's on
purpose: each probe is one file that runs alone on a host with nothing else of sysprep.
"""

from __future__ import annotations

import argparse
import errno
import json
import mmap
import os
import select
import signal
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator

MIB = 1 << 20
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)  # the module has it from 3.13
_CHECK_INTERVAL = 4096
_WORST_BYTES_PER_MAPPING = 4096
_PROGRESS_SECONDS = 0.1
# At the limit no new mapping can be made, not even for a read buffer: keep a few spare ones
# (shared anonymous pages never merge) and give them back before looking around.
_SPARE_MAPPINGS = 16
_MAPS_BUFFER = bytearray(1 << 16)


def parse_count(text: str) -> int:
    """A positive count; "2_000_000" and "2,000,000" are accepted."""
    cleaned = text.replace("_", "").replace(",", "")
    if not cleaned.isdigit() or int(cleaned) <= 0:
        raise argparse.ArgumentTypeError(f"invalid count {text!r} (a whole number > 0)")
    return int(cleaned)


def parse_size(text: str) -> int:
    """Bytes, with an optional K, M or G suffix."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    factor = units.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in units else text
    if not digits.isdigit() or int(digits) == 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (use e.g. 512M)")
    return int(digits) * factor


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, _, rest = line.partition(":")
            fields = rest.split()
            info[name] = int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    return info


def maps_count() -> int:
    """Mappings of this process, read without allocating (see _SPARE_MAPPINGS)."""
    count = 0
    with open("/proc/self/maps", "rb", buffering=0) as f:
        while n := f.readinto(_MAPS_BUFFER):
            count += _MAPS_BUFFER.count(b"\n", 0, n)
    return count


def max_map_count() -> int:
    """The per-process limit on mappings."""
    with open("/proc/sys/vm/max_map_count") as f:
        return int(f.read())


@contextmanager
def deferred_stop_signals(parent: int | None = None) -> Iterator[Callable[[], bool]]:
    """Block SIGINT and SIGTERM for the run; yield a poll telling whether one has arrived.

    The loop polls between chunks, so a signal never cuts a count short; one that arrives is
    consumed before the mask is lifted, and the probe unmaps, reports and exits cleanly.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        with parent_watch(parent) as parent_gone:
            yield lambda: bool(signal.sigpending() & _STOP_SIGNALS) or parent_gone()
    finally:
        while signal.sigtimedwait(_STOP_SIGNALS, 0) is not None:
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def parent_watch(parent: int | None) -> Iterator[Callable[[], bool]]:
    """Yield a poll telling whether process *parent* has exited.

    A probe run as a transient service for it (systemd-run) is not its child: the kernel's
    parent-death signal cannot reach it, so it looks, and stops as at a signal. It looks
    through a pidfd, which reads as exited the moment the process dies: a killed sysprep
    can stay an unreaped zombie for seconds (its reaper is busy), alive to kill(pid, 0).
    """
    if parent is None:
        yield lambda: False
        return
    try:
        pidfd = os.pidfd_open(parent)
    except ProcessLookupError:
        yield lambda: True
        return
    except OSError:  # no pidfd_open (Linux < 5.3): a zombie then counts as alive
        yield lambda: not _exists(parent)
        return
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    try:
        yield lambda: bool(poller.poll(0))
    finally:
        os.close(pidfd)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, and another user's (a dynamic user runs the probe)
        return True
    return True


def event(**fields: object) -> None:
    """One JSON line on stderr for the process driving the probe."""
    sys.stderr.write(json.dumps(fields) + "\n")
    sys.stderr.flush()


def split_pages(
    region: mmap.mmap, calls: int, floor: int, stop_arrived: Callable[[], bool], *, progress: int
) -> tuple[int | None, str | None]:
    """Split *region* with madvise on every other page; return (errno, stopped_by) at the end."""
    page = mmap.PAGESIZE
    madvise, dontdump = region.madvise, mmap.MADV_DONTDUMP
    last_report = 0.0
    try:
        for first in range(0, calls, _CHECK_INTERVAL):
            if stop_arrived():
                return None, "signal"
            if meminfo()["MemAvailable"] - floor < _CHECK_INTERVAL * _WORST_BYTES_PER_MAPPING:
                return None, "memory"
            if progress and time.monotonic() - last_report >= _PROGRESS_SECONDS:
                last_report = time.monotonic()
                event(event="progress", created=2 * first, target=progress)
            last = min(first + _CHECK_INTERVAL, calls)
            for offset in range(page + 2 * page * first, page + 2 * page * last, 2 * page):
                madvise(dontdump, offset, page)
    except OSError as failure:
        return failure.errno, None
    return None, None


def probe(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """Make args.count new mappings; measure; unmap them all."""
    page = mmap.PAGESIZE
    calls = (args.count + 1) // 2  # each call adds the page and the gap after it
    floor = args.memory_floor
    if floor is None:
        floor = max(meminfo()["MemTotal"] // 20, 512 * MIB)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE
    region = mmap.mmap(-1, (2 * calls + 1) * page, flags=flags, prot=mmap.PROT_READ)
    try:
        spares = [mmap.mmap(-1, page) for _ in range(_SPARE_MAPPINGS)]
        before, info_before = maps_count(), meminfo()
        with deferred_stop_signals(args.parent) as stop_arrived:
            started = time.monotonic()
            progress = args.count if args.progress else 0
            error, stopped_by = split_pages(region, calls, floor, stop_arrived, progress=progress)
            seconds = time.monotonic() - started
        for spare in spares:
            spare.close()
        held = maps_count() + _SPARE_MAPPINGS - before
        info, limit = meminfo(), max_map_count()
    finally:
        region.close()
    if error is not None:
        # madvise reports a split refused at the limit as EAGAIN, mprotect as ENOMEM.
        refused = error in (errno.ENOMEM, errno.EAGAIN)
        stopped_by = "vm.max_map_count" if refused and before + held + 2 > limit else "unknown"
    n = max(held, 1)
    document = {
        "schema_version": 1,  # sysprep/schemas/probe-maps.schema.json
        "probe": "maps",
        "target": args.count,
        "held": held,
        "stopped_by": stopped_by,
        "errno": None if error is None else errno.errorcode.get(error, "?"),
        "max_map_count": limit,
        "maps_before": before,
        "create_seconds": round(seconds, 6),
        "create_rate": round(held / seconds) if seconds > 0 else None,
        "per_mapping_bytes": {
            "slab": (info["SUnreclaim"] - info_before["SUnreclaim"]) // n,
            "mem_available": (info_before["MemAvailable"] - info["MemAvailable"]) // n,
        },
        "memory_floor": floor,
    }
    return document, 0 if held >= args.count and stopped_by is None else 1


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the probe, print one JSON document (or a summary line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=parse_count, default=100_000, help="mappings to make")
    parser.add_argument("--memory-floor", type=parse_size, help="MemAvailable to keep free")
    parser.add_argument("--progress", action="store_true", help="JSON progress lines on stderr")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--parent", type=int, help="end at once when process PID is gone")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return 2 if exit_.code else 0
    try:
        document, status = probe(args)
    except OSError as error:
        print(f"maps: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(document))
    else:
        stopped = f"; stopped by {document['stopped_by']}" if document["stopped_by"] else ""
        print(
            f"{document['held']:,} of {document['target']:,} mappings"
            f" in {document['create_seconds']:.2f} s{stopped}"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
