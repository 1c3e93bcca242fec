"""The seed post's experiment, measured: a million Rust threads vs a million goroutines.

Run by hand as root (README "A million threads vs a million goroutines"):

    .venv/bin/python bench/seed/run.py [--count 1000000]

Builds the post's two programs as published (seed.rs, seed.go: each task sleeps 1 s, then all
are joined) and runs them, then `sysprep probe threads --mode seed` (C threads that sleep(1),
joined at the end). For each: wall time, user and system CPU, max RSS (wait4), and the peak
of OS threads alive at once, sampled every 10 ms over the process and its children. The
post's sysctls are raised first, as far as the kernel takes them (its threads-max of
2,000,000,000 is refused), and put back afterwards, also on failure. A run is killed if
MemAvailable falls below 5 % of RAM (at least 512 MiB): the OOM killer never wakes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/sysctls.py
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/programs.py

import sysctls

from tests import programs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# The post's sysctls, as far as this kernel takes them: threads-max stops at its maximum.
RAISED = {
    "vm.max_map_count": 4_200_000,
    "kernel.threads-max": 2_000_000,
    "kernel.pid_max": 4194304,
}
MIB = 1 << 20


class Sampler(threading.Thread):
    """Peak OS threads of a process and its children; kills it before memory runs out."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.killed = False
        self.done = threading.Event()
        total = psutil.virtual_memory().total
        self.floor = max(total // 20, 512 * MIB)

    def run(self) -> None:
        while not self.done.wait(0.01):
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.num_threads() for p in tree))
            except psutil.Error:  # it or a child exited while we looked
                continue
            if psutil.virtual_memory().available < self.floor:
                self.killed = True
                os.killpg(self.process.pid, signal.SIGKILL)
                return


def measure(name: str, command: list[str]) -> dict[str, object]:
    """Run *command* to its end: time, CPU, max RSS and peak threads alive."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    sampler = Sampler(process.pid)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    sampler.done.set()
    sampler.join()
    assert process.stdout is not None
    assert process.stderr is not None
    out, err = process.stdout.read(), process.stderr.read()
    result: dict[str, object] = {
        "program": name,
        "exit": os.waitstatus_to_exitcode(status),
        "seconds": round(seconds, 2),
        "user_seconds": round(usage.ru_utime, 2),
        "system_seconds": round(usage.ru_stime, 2),
        "max_rss_kib": usage.ru_maxrss,
        "peak_threads_alive": sampler.peak,
        "killed_for_memory": sampler.killed,
    }
    if out.startswith(b"{"):
        probe = json.loads(out)
        result["probe"] = {key: probe[key] for key in ("held", "created", "stopped_by")}
    if result["exit"] != 0:
        result["stderr"] = err.decode(errors="replace")[-300:]
    return result


def build(workdir: Path) -> dict[str, list[str]]:
    """The post's programs that can be built here."""
    commands = {}
    for runtime, name, source in (
        ("rust", "rust threads (seed.rs)", "seed.rs"),
        ("go", "goroutines (seed.go)", "seed.go"),
    ):
        if programs.missing(runtime):
            print(f"{runtime}: skipped: {programs.missing(runtime)}")
            continue
        compile_program = programs.compile_rust if runtime == "rust" else programs.compile_go
        commands[name] = [str(compile_program(HERE / source, workdir / f"seed_{runtime}"))]
    return commands


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sysprep-seed-") as tmp:
        commands = build(Path(tmp))
        commands["C threads (sysprep probe threads --mode seed)"] = [
            sys.executable, "-m", "sysprep", "probe", "threads", "--mode", "seed",
            "--count", str(args.count), "--json",
        ]  # fmt: skip
        with sysctls.written(RAISED):
            for name, command in commands.items():
                extra = [] if "probe" in name else [str(args.count)]
                print(json.dumps(measure(name, [*command, *extra])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
