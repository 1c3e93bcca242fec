"""The program that holds the threads: C (glibc), a JVM, Rust's std, or Go.

Each changes the answer: its default thread stack and what sets it, the mappings one thread
takes, the threads it starts for itself, how it fails at a limit, and limits of its own (Go's
10,000 OS threads). The figures are measured on kernel 6.18, glibc 2.36, openjdk 17.0.15,
rustc 1.95.0 and go 1.19.8 (bench/runtimes/run.py; README "Runtimes").

Which runtime is judged: --runtime, else the profile's [target] runtime, else the one
recognised in the program (the --pid or running --unit process from /proc, a stopped
--unit's ExecStart), else C.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from typing import NamedTuple

from sysprep.errors import BadInputError
from sysprep.facts import DEFAULT_MAX_MAP_COUNT
from sysprep.units import KIB
from sysprep.units import MIB
from sysprep.units import parse_size

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from sysprep.host import Host

RUNTIMES = ("c", "jvm", "rust", "go")
HOTSPOT_STACK = 1 * MIB  # -Xss / -XX:ThreadStackSize default on Linux x86_64 and aarch64
HOTSPOT_MAX_STACK = 1 << 30  # ThreadStackSize's range ends at 1 GiB (1048576 KiB)
RUST_STACK = 2 * MIB  # std::thread's default (library/std/src/thread/mod.rs)
RUST_SIGNAL_STACK = 8 * KIB  # SIGSTKSZ: std maps one per thread, below a guard page
GO_G0_STACK = 16 * KIB  # a Go M's g0 stack, from the Go heap (runtime/proc.go allocm)
GO_SIGNAL_STACK = 32 * KIB  # its gsignal stack, also from the Go heap (runtime/os_linux.go)
GO_MAX_THREADS = 10_000  # runtime/proc.go sched.maxmcount; debug.SetMaxThreads changes it
# Mappings a small program of each runtime holds at start, before its threads (measured).
_BASELINE_MAPS = {"c": 24, "jvm": 211, "rust": 30, "go": 26}
# The JVM's own mappings grow as it runs (heap, code cache, metaspace, malloc arenas and the
# files an application maps): the fix leaves it as many again as a stock kernel allows.
JVM_MAP_MARGIN = DEFAULT_MAX_MAP_COUNT
# JVM options that take their value as the next argument; anything else not starting with "-"
# is the main class, after which the arguments are the program's.
_JAVA_VALUE_OPTIONS = frozenset(
    {
        "-cp", "-classpath", "--class-path", "-p", "--module-path", "--upgrade-module-path",
        "--add-modules", "--limit-modules", "--add-exports", "--add-opens", "--add-reads",
        "--patch-module", "--enable-native-access",
    }
)  # fmt: skip
_JAVA_MAIN = frozenset({"-jar", "-m", "--module", "--source"})
_THREAD_STACK_SIZE = re.compile(r"-XX:ThreadStackSize=(\d+)([kKmMgG]?)")


class RuntimeUse(NamedTuple):
    """The runtime judged, how it was chosen, and its thread stack setting where one is made."""

    name: str  # one of RUNTIMES
    chosen: str  # "--runtime", "profile", "detected" or "assumed"
    evidence: str = ""  # "/proc/1234/exe is java", "Go build info: go1.19.8"
    stack: int | None = None  # the runtime's own stack size; None: its default rule
    stack_source: str = ""  # "-Xss256k on its command line", "RUST_MIN_STACK"
    cgo: bool = False  # a Go binary linked with glibc: its threads are pthreads

    def default_stack(self) -> tuple[int | None, str]:
        """The stack this runtime gives a thread (None: glibc's, from RLIMIT_STACK), and why."""
        if self.stack is not None:
            return self.stack, self.stack_source
        if self.name == "jvm":
            return HOTSPOT_STACK, "HotSpot's default (-Xss)"
        if self.name == "rust":
            return RUST_STACK, "Rust std's default (RUST_MIN_STACK)"
        if self.name == "go" and not self.cgo:
            return GO_G0_STACK, "Go's g0 stack, from the Go heap"
        return None, "glibc default"

    def maps_per_thread(self, glibc: int) -> int:
        """Mappings one thread adds, given glibc's (1 or 2) for a pthread stack.

        A JVM turns off glibc's guard and fences its own zones inside the stack: 2 either way.
        Rust's std adds a signal stack and its guard page. Pure Go maps nothing per thread.
        """
        return {"jvm": 2, "rust": glibc + 2, "go": glibc if self.cgo else 0}.get(self.name, glibc)

    def guard_bytes(self, page: int) -> int:
        """Address space mapped per thread beyond the stack and never written."""
        return {"jvm": 0, "rust": 2 * page, "go": page if self.cgo else 0}.get(self.name, page)

    def signal_stack(self) -> int:
        """Writable bytes per thread beyond its stack: the runtime's signal stack."""
        return {"rust": RUST_SIGNAL_STACK, "go": GO_SIGNAL_STACK}.get(self.name, 0)

    @property
    def starts_threads(self) -> bool:
        """True when the runtime starts threads of its own (GC, JIT, scheduler)."""
        return self.name in ("jvm", "go")

    def own_threads(self, cpus: int) -> int:
        """Threads the runtime starts beside the main thread, on a host with *cpus* CPUs.

        HotSpot (G1): compiler, service and GC threads; GC workers scale with the CPUs
        (ParallelGCThreads, ConcGCThreads). Measured with openjdk 17: 19 at 2 CPUs, 21 at 4,
        33 at 16. Go: sysmon and an M per P up to about five (2 at GOMAXPROCS=1, 3 at 2, 6
        at 8 or more).
        """
        if self.name == "jvm":
            # HotSpot's ParallelGCThreads: every CPU up to 8, then 5/8 of the rest
            parallel = min(cpus, 8) + max(cpus - 8, 0) * 5 // 8
            return 16 + parallel + max((parallel + 2) // 4, 1)
        if self.name == "go":
            return 1 + min(cpus, 5)
        return 0

    def baseline_maps(self) -> int:
        """Mappings a small program of this runtime holds at start (no --pid to read)."""
        return _BASELINE_MAPS[self.name]

    def at_map_limit(self) -> str:
        """What the program does when vm.max_map_count runs out, for the limit's note."""
        if self.name == "jvm":
            return (
                "the JVM usually aborts there (hs_err: Native memory allocation (mmap)"
                " failed) rather than fail one thread"
            )
        if self.name == "rust":
            return "std may abort the process there (its signal stack cannot be mapped)"
        if self.name == "go" and not self.cgo:
            return "Go's threads map nothing of their own: their stacks are in the Go heap"
        return ""


class Program(NamedTuple):
    """The program to judge, as far as it can be read without starting it."""

    shown: str  # where it was read: "/proc/1234/exe", "ExecStart of demo.service"
    exe: str  # its executable's path ("" when unreadable)
    binary: Path  # the file to read its ELF headers from
    argv: list[str]
    environ: dict[str, str] | None  # None: not readable (another user's process)


def running_program(host: Host, pid: int) -> Program:
    """Process *pid*, from /proc (its cmdline is anyone's to read; exe and environ, root's)."""
    try:
        argv = host.cmdline(pid)
    except OSError:  # it exited; its other files say so
        argv = []
    try:
        environ: dict[str, str] | None = host.environ(pid)
    except OSError:
        environ = None
    exe = host.exe_name(pid)
    return Program(f"/proc/{pid}/exe", exe, host.path(f"proc/{pid}/exe"), argv, environ)


def choose(host: Host, explicit: str | None, chosen: str, program: Program | None) -> RuntimeUse:
    """The runtime to judge: *explicit* (from *chosen*: --runtime or profile), else detected.

    *program*: the running process or a stopped service's ExecStart; None for a program yet
    to start from here, which inherits this process's environment.
    """
    if explicit is not None:
        use = RuntimeUse(explicit, chosen)
        if explicit == "go" and program is not None:
            use = use._replace(cgo=_executable(program)[1])
    elif program is None:
        use = RuntimeUse("c", "assumed", "a C program (glibc); --runtime names another")
    else:
        use = detect(program)
    if program is not None:
        argv, environ = program.argv, program.environ
    else:
        argv, environ = [], _own_environment(host)
    return _with_stack_setting(use, argv, environ)


def detect(program: Program) -> RuntimeUse:
    """The runtime of *program*, from its files; never starts it or a runtime.

    A JVM by its executable's name or argv[0], Go by its binary's build info, else C.
    """
    exe, argv = program.exe, program.argv
    if exe.rsplit("/", 1)[-1] == "java":
        return RuntimeUse("jvm", "detected", f"{program.shown} is {exe}")
    if argv and argv[0].rsplit("/", 1)[-1] == "java":  # the launcher, whatever exe says
        return RuntimeUse("jvm", "detected", f"its argv[0] is {argv[0]}")
    go_version, cgo = _executable(program)
    if go_version is not None:
        linked = "; cgo: its threads are glibc's" if cgo else ""
        return RuntimeUse("go", "detected", f"Go build info: {go_version}{linked}", cgo=cgo)
    binary = exe or "its binary"
    return RuntimeUse(
        "c", "assumed", f"{binary} is neither a JVM nor Go; for a Rust program: --runtime rust"
    )


def _executable(program: Program) -> tuple[str | None, bool]:
    """(Go version or None, dynamically linked) of the program's binary; (None, False) unread."""
    from sysprep.elf import read_executable

    try:
        with program.binary.open("rb") as binary:
            found = read_executable(binary)
    except (OSError, ValueError):
        return None, False
    return found.go_version, found.dynamic


def _own_environment(host: Host) -> dict[str, str] | None:
    try:
        return host.environ("self")
    except OSError:
        return None


def _with_stack_setting(
    use: RuntimeUse, argv: Sequence[str], environ: dict[str, str] | None
) -> RuntimeUse:
    """The stack size the runtime was told (-Xss, RUST_MIN_STACK), where it was told one.

    Without its environment (another user's process), only its command line is read.
    """
    if use.name not in ("jvm", "rust"):
        return use
    environ = environ or {}
    found = java_stack(argv, environ) if use.name == "jvm" else rust_stack(environ)
    if found is None:
        return use
    return use._replace(stack=found[0], stack_source=found[1])


def java_stack(argv: Sequence[str], environ: dict[str, str]) -> tuple[int, str] | None:
    """The thread stack a JVM takes, and where it was set; None: HotSpot's default.

    The last -Xss or -XX:ThreadStackSize (in KiB) of JAVA_TOOL_OPTIONS, then
    JDK_JAVA_OPTIONS, then the JVM options of its command line: the last one wins.
    """
    found = None
    sources = (
        ("JAVA_TOOL_OPTIONS", environ.get("JAVA_TOOL_OPTIONS", "").split()),
        ("JDK_JAVA_OPTIONS", environ.get("JDK_JAVA_OPTIONS", "").split()),
        ("its command line", _jvm_options(argv)),
    )
    for where, options in sources:
        for option in options:
            size = _java_stack_option(option)
            if size is not None:
                found = size, f"{option} in {where}"
    return found


def _jvm_options(argv: Sequence[str]) -> list[str]:
    """The JVM's own options: argv after the launcher, up to the main class or -jar."""
    options, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        if arg in _JAVA_MAIN or not arg.startswith("-"):
            break
        skip = arg in _JAVA_VALUE_OPTIONS
        options.append(arg)
    return options


def _java_stack_option(option: str) -> int | None:
    """The size an -Xss or -XX:ThreadStackSize option sets; None: none the JVM would take.

    HotSpot refuses to start with one past 1 GiB ("Invalid thread stack size"), or one it
    cannot parse: there is then no JVM to judge by it.
    """
    try:
        if option.startswith("-Xss"):
            size = parse_size(option[4:])
        elif match := _THREAD_STACK_SIZE.fullmatch(option):  # KiB unless a suffix says
            size = parse_size(match[1] + (match[2] or "K"))
        else:
            return None
    except BadInputError:
        return None
    return size if 0 < size <= HOTSPOT_MAX_STACK else None


def rust_stack(environ: dict[str, str]) -> tuple[int, str] | None:
    """RUST_MIN_STACK, in bytes, as std reads it: ASCII digits into a usize, else ignored."""
    text = environ.get("RUST_MIN_STACK", "")
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**64:
        return None
    return int(text), f"RUST_MIN_STACK={text}"
