#!/usr/bin/env python3
"""Hold N native threads alive at once, measure what each costs, name the limit that stops them.

Standalone: Python standard library only, so it can be copied to a bare host and run:

    python3 threads.py --count 100000 --json

Threads are created through ctypes with pthread_create(3) and run a libc function, so no
Python code runs in them:

- hold (default): the start routine is sem_wait(3) on one shared semaphore, so every thread
  blocks in the kernel until released. With all N alive the probe reads /proc/meminfo,
  /proc/self/status and /proc/self/maps, then posts the semaphore N times and joins them all.
- seed: the start routine is sleep(3) of 1 s and every thread is joined at the end, as in the
  blog post sysprep grew from; the probe reports how many were ever alive at once.

When pthread_create fails (always EAGAIN, whatever ran out), the probe compares the counters
with every limit and names the one that bit in "stopped_by", with the names `sysprep check`
uses. A memory guard stops creation before MemAvailable falls below a floor (default: 5 % of
MemTotal, at least 512 MiB; stopped_by "memory") so the OOM killer never wakes. SIGINT and
SIGTERM stop creation (stopped_by "signal"); every thread is still released and joined.

Exit status: 0 the target was reached, 1 a limit, the memory guard or a signal stopped it,
2 bad arguments or no usable libc.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import itertools
import json
import mmap
import os
import resource  # imported up front: a failure at RLIMIT_DATA could not import it
import select
import signal
import sys
import time
from contextlib import contextmanager

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (2 ms of startup)
if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterable
    from collections.abc import Iterator

MIB = 1 << 20
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_MULTIPLIER = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
# Big enough for pthread_attr_t and sem_t on every 64-bit glibc (56/64 and 32 bytes).
_OPAQUE_BYTES = 128
_MEMINFO_FIELDS = ("KernelStack", "PageTables", "SUnreclaim", "MemAvailable", "Committed_AS")
# Threads between two looks at MemAvailable (and progress): fewer as the floor nears.
_CHECK_INTERVAL = 1024
_WORST_BYTES_PER_THREAD = 256 * 1024
_PROGRESS_SECONDS = 0.1
# Mappings per thread are a property of glibc and the kernel, the same for every thread:
# measured over the first checkpoint past this many, not by re-reading 2N lines of maps.
_MAPS_SAMPLE_THREADS = 256
# Pid numbers are handed out from 300 up once they wrap (RESERVED_PIDS, kernel/pid.c).
_INIT_PID_NS = 0xEFFFFFFC
_INIT_CGROUP_NS = 0xEFFFFFFB
_RESERVED_PIDS = 300
_CAP_SYS_ADMIN, _CAP_SYS_RESOURCE = 21, 24
# At vm.max_map_count no new mapping can be made, not even for a read buffer: keep a few
# spare ones (shared anonymous pages never merge) and give them back before looking around.
_SPARE_MAPPINGS = 16
# Likewise at RLIMIT_DATA or RLIMIT_AS nothing can be allocated: a private writable mapping,
# never touched (no RSS), given back before looking around and counted back in.
_SPARE_DATA = 4 << 20
_MAPS_BUFFER = bytearray(1 << 16)


# --- arguments


def parse_size(text: str) -> int:
    """Bytes in "256K", "8M", "8MiB" or "4096"."""
    import re  # only --stack needs it; startup counts against the C reference

    match = re.fullmatch(r"(\d+)\s*([KMGT]?)(?:I?B)?", text.strip(), re.IGNORECASE)
    if match is None or int(match[1]) == 0:
        raise ValueError(f"invalid size {text!r} (use e.g. 256K, 8M)")
    return int(match[1]) * _MULTIPLIER[match[2].upper()]


def parse_count(text: str) -> int:
    """A positive count; "1_000_000" and "1,000,000" are accepted."""
    cleaned = text.replace("_", "").replace(",", "")
    if not cleaned.isdigit() or int(cleaned) <= 0:
        raise ValueError(f"invalid count {text!r} (a whole number > 0)")
    return int(cleaned)


def parse_mode(text: str) -> str:
    """The mode: hold or seed."""
    if text not in ("hold", "seed"):
        raise ValueError(f"invalid mode {text!r} (hold or seed)")
    return text


class Arguments:
    """The options, with their defaults."""

    count: int = 10_000
    stack: int | None = None  # None: glibc's default, as a C program gets
    mode: str = "hold"
    memory_floor: int | None = None
    progress: bool = False
    wait: bool = False
    json: bool = False
    parent: int | None = None


USAGE = """\
usage: threads.py [--count N] [--stack SIZE] [--mode hold|seed] [--memory-floor SIZE]
                  [--progress] [--wait] [--parent PID] [--json]"""
_OPTIONS_HELP = """\
  --count N            threads to create (default 10,000)
  --stack SIZE         thread stack, e.g. 64K (default: glibc's, from RLIMIT_STACK)
  --mode hold|seed     hold all at once (default), or the seed blog's sleep(1) threads
  --memory-floor SIZE  MemAvailable to keep free (default: 5 % of MemTotal, >= 512M)
  --progress           JSON progress lines on stderr
  --wait               print a "ready" line on stderr, wait for a line on stdin first
  --parent PID         end at once when process PID is gone (run as a service for it)
  --json               print one JSON document"""
# Option → how to read its value; None for a flag. argparse is not used: importing and
# setting it up costs ~12 ms, which counts against the C reference (bench/threads_vs_c.py).
_OPTIONS: dict[str, Callable[[str], object] | None] = {
    "--count": parse_count,
    "--stack": parse_size,
    "--mode": parse_mode,
    "--memory-floor": parse_size,
    "--progress": None,
    "--wait": None,
    "--parent": parse_count,
    "--json": None,
}


def parse_arguments(argv: list[str]) -> Arguments:
    """Options as "--name value", "--name=value" or "--flag"; ValueError names a bad one."""
    args = Arguments()
    words = iter(argv)
    for word in words:
        name, has_value, value = word.partition("=")
        if name not in _OPTIONS:
            raise ValueError(f"unknown option {word!r}")
        read = _OPTIONS[name]
        attribute = name[2:].replace("-", "_")
        if read is None:
            if has_value:
                raise ValueError(f"{name} takes no value")
            setattr(args, attribute, True)
            continue
        if not has_value:
            following = next(words, None)
            if following is None:
                raise ValueError(f"{name} needs a value")
            value = following
        setattr(args, attribute, read(value))
    return args


# --- reading /proc


def read_text(path: str) -> str:
    """The text of a small /proc or /sys file."""
    with open(path) as f:
        return f.read()


def read_int(path: str) -> int:
    """A file that holds one integer."""
    return int(read_text(path))


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    info = {}
    for line in read_text("/proc/meminfo").splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        info[name] = int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    return info


def status(pid: int | str = "self") -> dict[str, str]:
    """/proc/PID/status as name → raw value."""
    result = {}
    for line in read_text(f"/proc/{pid}/status").splitlines():
        name, _, value = line.partition(":")
        result[name] = value.strip()
    return result


def status_bytes(fields: dict[str, str], name: str) -> int:
    """A "VmSize: 1234 kB" field in bytes."""
    return int(fields[name].split()[0]) * 1024


def maps_count() -> int:
    """Mappings of this process, read without allocating (see _SPARE_MAPPINGS)."""
    count = 0
    with open("/proc/self/maps", "rb", buffering=0) as f:
        while n := f.readinto(_MAPS_BUFFER):
            count += _MAPS_BUFFER.count(b"\n", 0, n)
    return count


def tasks_total() -> int:
    """Every task on the host: the number after the slash in /proc/loadavg."""
    return int(read_text("/proc/loadavg").split()[3].partition("/")[2])


def oom_kills() -> int | None:
    """oom_kill from /proc/vmstat (Linux ≥ 4.13); it must not move during a probe."""
    try:
        for line in read_text("/proc/vmstat").splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def sample() -> dict[str, int]:
    """The memory counters a thread moves: meminfo fields and user RSS."""
    info = meminfo()
    values = {name: info.get(name, 0) for name in _MEMINFO_FIELDS}
    values["VmRSS"] = status_bytes(status(), "VmRSS")
    return values


def memory_floor(requested: int | None) -> int:
    """MemAvailable to keep: as asked, else 5 % of MemTotal and at least 512 MiB."""
    return requested if requested is not None else max(meminfo()["MemTotal"] // 20, 512 * MIB)


# --- naming the limit that bit


def _every_task() -> tuple[list[int], dict[int, int]]:
    """Every tid on the host, and tasks per real uid."""
    tids: list[int] = []
    by_uid: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = status(name)
            threads = int(fields["Threads"])
            if threads == 1:
                tids.append(int(name))
            else:
                tids.extend(int(tid) for tid in os.listdir(f"/proc/{name}/task"))
        except (OSError, KeyError, ValueError):  # the process exited while we looked
            continue
        uid = int(fields["Uid"].split()[0])
        by_uid[uid] = by_uid.get(uid, 0) + threads
    return tids, by_uid


def _cgroup_mounts(*, v1: bool) -> list[tuple[str, str]]:
    """(root, mount point) of each visible mount of the pids hierarchy (v1 "pids", or v2).

    Of mounts stacked on one mount point only the last is visible.
    """
    mounts: dict[str, str] = {}
    for line in read_text("/proc/self/mountinfo").splitlines():
        before, _, after = line.partition(" - ")
        fstype, _source, options = ([*after.split(), "", "", ""])[:3]
        if (v1 and fstype == "cgroup" and "pids" in options.split(",")) or (
            not v1 and fstype == "cgroup2"
        ):
            fields = before.split()
            mounts[fields[4]] = fields[3]
    return [(root, point) for point, root in mounts.items()]


def _pids_cgroup_headroom() -> tuple[int | None, bool]:
    """(smallest pids.max - pids.current up this process's pids cgroup, all levels seen).

    A container sees its own cgroup mounted as the top (mountinfo's root: its path, or "/"
    of its cgroup namespace): the top has its limit, and the levels above are not there.
    """
    entries = [line.split(":", 2) for line in read_text("/proc/self/cgroup").splitlines()]
    path = next((p for _, names, p in entries if "pids" in names.split(",")), None)
    mounts = _cgroup_mounts(v1=True) if path is not None else []
    if not mounts:
        path = next((p for hierarchy, _, p in entries if hierarchy == "0"), None)
        mounts = _cgroup_mounts(v1=False)
    for shown_root, top in sorted(mounts, key=lambda mount: len(mount[0])):
        root = shown_root.rstrip("/")  # "/" is the empty prefix
        if path is None or (path != root and not path.startswith(root + "/")):
            continue  # not this process's branch, or a mount from outside its namespace
        headroom = None
        level = top + path[len(root) :].rstrip("/")
        while True:  # up to the top: a hierarchy's root has no pids.max, and is skipped
            try:
                limit = read_text(f"{level}/pids.max").strip()
                if limit != "max":
                    left = int(limit) - read_int(f"{level}/pids.current")
                    headroom = left if headroom is None else min(headroom, left)
            except OSError:  # the root, or the pids controller is not enabled here
                pass
            if level == top:
                return headroom, not root and not in_namespace("cgroup", _INIT_CGROUP_NS)
            level = os.path.dirname(level)
    return None, False


def headrooms(stack: int, guard: int, maps_per_thread: int, maps: int) -> dict[str, int]:
    """Threads each limit still allows this process, read at the moment creation failed.

    The spare data mapping was released just before: it is counted back in.
    """
    result: dict[str, int] = {}
    me = status()
    info = meminfo()
    # mmap side first (allocate_stack), then clone (copy_process) — the kernel's own order.
    soft_as = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft_as != resource.RLIM_INFINITY:
        vm_size = status_bytes(me, "VmSize") + _SPARE_DATA
        result["RLIMIT_AS"] = (soft_as - vm_size) // (stack + guard)
    soft_data = resource.getrlimit(resource.RLIMIT_DATA)[0]
    if soft_data != resource.RLIM_INFINITY:
        vm_data = status_bytes(me, "VmData") + _SPARE_DATA
        result["RLIMIT_DATA"] = (soft_data - vm_data) // stack
    max_map_count = read_int("/proc/sys/vm/max_map_count")
    result["vm.max_map_count"] = (max_map_count - maps) // maps_per_thread
    if read_int("/proc/sys/vm/overcommit_memory") == 2:
        result["CommitLimit"] = (info["CommitLimit"] - info["Committed_AS"]) // stack
    tids, by_uid = _every_task()
    uid, caps = int(me["Uid"].split()[0]), int(me["CapEff"], 16)
    soft_nproc = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    exempt = uid == 0 or caps & (1 << _CAP_SYS_RESOURCE | 1 << _CAP_SYS_ADMIN)
    if soft_nproc != resource.RLIM_INFINITY and not exempt:
        result["RLIMIT_NPROC"] = soft_nproc - by_uid.get(uid, 0)
    result["kernel.threads-max"] = read_int("/proc/sys/kernel/threads-max") - tasks_total()
    cgroup, _ = _pids_cgroup_headroom()
    if cgroup is not None:
        result["pids.max"] = cgroup
    pid_max = read_int("/proc/sys/kernel/pid_max")
    in_range = sum(1 for tid in tids if _RESERVED_PIDS <= tid < pid_max)
    result["kernel.pid_max"] = pid_max - _RESERVED_PIDS - in_range
    return result


def in_namespace(kind: str, initial: int) -> bool:
    """True in a *kind* namespace other than the initial one (its inode is fixed: proc_ns.h)."""
    try:
        return os.readlink(f"/proc/self/ns/{kind}") != f"{kind}:[{initial}]"
    except OSError:
        return False


def blame(limits: dict[str, int], held: int) -> str:
    """The limit with the least headroom, if it is (all but) used up; else "unknown"."""
    if not limits:
        return "unknown"
    name = min(limits, key=lambda n: limits[n])  # ties: the kernel's order of checks
    tolerance = max(4, held // 1000)  # other tasks come and go while we look
    return name if limits[name] <= tolerance else "unknown"


# --- threads


class Pthreads:
    """pthread_create, sem_post, pthread_join through ctypes; the threads run libc only."""

    def __init__(self, stack: int | None, start: str) -> None:
        # The running program's namespace holds libc and, before glibc 2.34, libpthread.
        libc = ctypes.CDLL(None, use_errno=True)
        # The calls made once per thread keep the GIL (PyDLL): no Python thread could use it
        # meanwhile, and releasing and retaking it costs ~0.3 us of CPU per call with caches
        # cold from the syscall (user time in bench/threads_vs_c.py). They return their
        # errors, so they also do without use_errno's bookkeeping.
        per_thread = ctypes.PyDLL(None)
        self.create = per_thread.pthread_create
        self.create.argtypes = [ctypes.c_void_p] * 4
        self.create.restype = ctypes.c_int
        self.join = per_thread.pthread_join
        self.join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
        self.join.restype = ctypes.c_int
        self.post = per_thread.sem_post
        self.post.argtypes = [ctypes.c_void_p]
        self.start_routine = ctypes.cast(getattr(libc, start), ctypes.c_void_p).value
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
        size, guard = ctypes.c_size_t(), ctypes.c_size_t()
        libc.pthread_attr_getstacksize(self.attr, ctypes.byref(size))
        libc.pthread_attr_getguardsize(self.attr, ctypes.byref(guard))
        self.stack_bytes, self.guard_bytes = size.value, guard.value
        # Without --stack, pass NULL as a C program does: glibc then takes its defaults
        # itself, and nothing of the attribute object is copied for each thread.
        self.create_attr = None if stack is None else ctypes.addressof(self.attr)


@contextmanager
def deferred_stop_signals(parent: int | None = None) -> Iterator[Callable[[], bool]]:
    """Block SIGINT and SIGTERM for the run; yield a poll telling whether one has arrived.

    Threads created meanwhile inherit the mask, so no signal lands in (and cuts short) a
    native thread, and none can strike between pthread_create and the count of what it made.
    A signal that arrives is consumed before the mask is lifted: the probe finishes cleanly.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        with parent_watch(parent) as parent_gone:
            yield lambda: bool(signal.sigpending() & _STOP_SIGNALS) or parent_gone()
    finally:
        while signal.sigtimedwait(_STOP_SIGNALS, 0) is not None:
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Creator:
    """Creates threads until the target, a refusal, the memory floor, or a signal."""

    def __init__(self, lib: Pthreads, count: int, *, argument: int | None, progress: bool) -> None:
        self.lib = lib
        self.count = count
        self.tids = (ctypes.c_ulong * count)()
        self.argument = argument  # None: the semaphore
        self.progress = progress
        self.created = 0
        self.maps_sample: tuple[int, int] | None = None  # (threads, mappings) early in the run
        self.peak_alive = 0
        self.stopped_by: str | None = None
        self.error: int | None = None

    def run(self, floor: int, stop_arrived: Callable[[], bool], *, sample_alive: bool) -> None:
        """Create threads; every few, look at MemAvailable and signals, report progress."""
        base = ctypes.addressof(self.tids)
        width = ctypes.sizeof(ctypes.c_ulong)
        lib = self.lib
        # Plain ints (or None): ctypes converts a buffer object to void* anew on every call.
        create, attr, start = lib.create, lib.create_attr, lib.start_routine
        argument = ctypes.addressof(lib.semaphore) if self.argument is None else self.argument
        count, created, next_check, last_report = self.count, 0, 0, 0.0
        while created < count:
            if created >= next_check:
                if stop_arrived():
                    self.stopped_by = "signal"
                    break
                margin = meminfo()["MemAvailable"] - floor
                if margin <= 0:
                    self.stopped_by = "memory"
                    break
                next_check = created + max(
                    1, min(_CHECK_INTERVAL, margin // _WORST_BYTES_PER_THREAD)
                )
                if sample_alive:
                    self.peak_alive = max(self.peak_alive, int(status()["Threads"]) - 1)
                if self.maps_sample is None and created >= _MAPS_SAMPLE_THREADS:
                    self.maps_sample = (created, maps_count())
                now = time.monotonic()
                if self.progress and now - last_report >= _PROGRESS_SECONDS:
                    last_report = now
                    event(event="progress", created=created, target=self.count)
            rc = create(base + created * width, attr, start, argument)
            if rc != 0:
                self.error = rc
                break
            created += 1
        self.created = created

    def release(self) -> None:
        """Post the semaphore once per thread (hold mode only)."""
        # map() drives the calls from C: no Python bytecode runs per thread.
        semaphore = ctypes.addressof(self.lib.semaphore)  # an int converts faster than a buffer
        _drain(map(self.lib.post, itertools.repeat(semaphore, self.created)))

    def join(self) -> None:
        """Join every thread created."""
        tids = self.tids[: self.created]
        _drain(map(self.lib.join, tids, itertools.repeat(None, self.created)))


def _drain(calls: Iterable[object]) -> None:
    """Run an iterator of calls to the end, keeping nothing."""
    collections.deque(calls, maxlen=0)


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


def probe(args: Arguments) -> tuple[dict[str, object], int]:
    """Run the threads probe in args.mode; return its JSON document and exit status."""
    seed = args.mode == "seed"
    lib = Pthreads(args.stack, "sleep" if seed else "sem_wait")
    floor = memory_floor(args.memory_floor)
    creator = Creator(lib, args.count, argument=1 if seed else None, progress=args.progress)
    limits: dict[str, int] = {}
    oom_before = oom_kills()
    spares = [mmap.mmap(-1, mmap.PAGESIZE) for _ in range(_SPARE_MAPPINGS)]
    spare_data = mmap.mmap(-1, _SPARE_DATA, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if args.wait:  # let a caller inspect this process before the first thread exists
        event(event="ready", pid=os.getpid())
        sys.stdin.readline()
    with deferred_stop_signals(args.parent) as stop_arrived:
        before = sample()
        maps_before = maps_count()
        started = time.monotonic()
        creator.run(floor, stop_arrived, sample_alive=seed)
        create_seconds = time.monotonic() - started
        for spare in spares:
            spare.close()
        spare_data.close()
        threads, maps = creator.maps_sample or (creator.created, maps_count() + _SPARE_MAPPINGS)
        maps_per_thread = (maps - maps_before) / max(threads, 1)
        if creator.error is not None:
            maps = maps_count() + _SPARE_MAPPINGS  # the spares were closed above
            per_thread = max(1, round(maps_per_thread))
            limits = headrooms(lib.stack_bytes, lib.guard_bytes, per_thread, maps)
            creator.stopped_by = blame(limits, creator.created)
            if (
                creator.stopped_by == "unknown"
                and in_namespace("pid", _INIT_PID_NS)
                and _pids_cgroup_headroom()[1]
            ):
                # Every limit in sight has room, every level of the pids cgroup in sight
                # (a container's parents are not): the pid space of a parent namespace (the
                # host's pid_max, Linux >= 6.14) is the one left, and it cannot be read here.
                creator.stopped_by = "kernel.pid_max"
        during = sample()
        alive = int(status()["Threads"]) - 1
        creator.peak_alive = max(creator.peak_alive, alive)
        released = time.monotonic()
        if not seed:
            creator.release()
        creator.join()
        join_seconds = time.monotonic() - released
    n = max(creator.created, 1)
    delta = {name: during[name] - before[name] for name in during}
    document = {
        "schema_version": 1,  # sysprep/schemas/probe-threads.schema.json
        "probe": "threads",
        "mode": args.mode,
        "target": args.count,
        "held": creator.peak_alive,
        "created": creator.created,
        "stopped_by": creator.stopped_by,
        "errno": None if creator.error is None else errno.errorcode.get(creator.error, "?"),
        "headroom_at_stop": limits or None,
        "stack_bytes": lib.stack_bytes,
        "guard_bytes": lib.guard_bytes,
        "create_seconds": round(create_seconds, 6),
        "create_rate": round(creator.created / create_seconds) if create_seconds > 0 else None,
        "join_seconds": round(join_seconds, 6),
        "per_thread_bytes": {
            "rss": delta["VmRSS"] // n,
            "kernel_stack": delta["KernelStack"] // n,
            "page_tables": delta["PageTables"] // n,
            "slab": delta["SUnreclaim"] // n,
            "mem_available": -delta["MemAvailable"] // n,
            "committed": delta["Committed_AS"] // n,
        },
        "maps_per_thread": round(maps_per_thread, 3),
        "memory_floor": floor,
        "oom_kills": None if oom_before is None else (oom_kills() or 0) - oom_before,
    }
    reached = creator.created == args.count and creator.stopped_by is None
    return document, 0 if reached else 1


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the probe, print one JSON document (or a summary line)."""
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        summary = (__doc__ or "").partition("\n")[0]
        print(f"{summary}\n\n{USAGE}\n\n{_OPTIONS_HELP}")
        return 0
    try:
        args = parse_arguments(argv)
    except ValueError as error:
        print(f"{USAGE}\nthreads.py: error: {error}", file=sys.stderr)
        return 2
    try:
        document, status_code = probe(args)
    except (OSError, AttributeError) as error:  # no libc, or one without these functions
        print(f"threads: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(document))
    else:
        stopped = f"; stopped by {document['stopped_by']}" if document["stopped_by"] else ""
        print(
            f"{args.mode}: {document['held']:,} of {document['target']:,} threads alive at once,"
            f" {document['created']:,} created in {document['create_seconds']:.2f} s{stopped}"
        )
    return status_code


if __name__ == "__main__":
    sys.exit(main())
