"""`sysprep check` on a busy host: wall time with 0, 100k and 300k threads alive.

A helper process holds N native threads (64 KiB stacks, blocked in sem_wait) while
`sysprep check --json` and `sysprep check --json --pid HELPER` are timed; check's capacity is
also compared with what the host really had left. Targets (issue "one vocabulary"):
check ≤ 0.3 s and check --pid ≤ 1 s with 300,000 threads alive. Needs root: the bench raises
kernel.pid_max, kernel.threads-max and vm.max_map_count and writes every one back.

    sudo .venv/bin/python bench/check_busy.py [--counts 0,100000,300000] [--runs 5]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

import sysctls

SYSPREP = [sys.executable, "-m", "sysprep"]
RAISED = {"kernel.pid_max": 4194304, "kernel.threads-max": 1000000, "vm.max_map_count": 1000000}


def hold(count: int) -> None:
    """The helper: hold *count* threads, say so on stdout, release them at end of stdin."""
    libc = ctypes.CDLL(None)
    attr = ctypes.create_string_buffer(64)
    libc.pthread_attr_init(attr)
    libc.pthread_attr_setstacksize(attr, ctypes.c_size_t(64 * 1024))
    semaphore = ctypes.create_string_buffer(32)
    libc.sem_init(semaphore, 0, 0)
    tids = (ctypes.c_ulong * max(count, 1))()
    start = ctypes.cast(libc.sem_wait, ctypes.c_void_p)
    made = 0
    while made < count:
        if libc.pthread_create(ctypes.byref(tids, made * 8), attr, start, semaphore) != 0:
            break
        made += 1
    print(made, flush=True)
    sys.stdin.read()
    for _ in range(made):
        libc.sem_post(semaphore)
    for index in range(made):
        libc.pthread_join(tids[index], None)


def timed(command: list[str], runs: int) -> tuple[list[float], dict[str, object]]:
    times, document = [], {}
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
        if done.returncode not in (0, 1):
            sys.exit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()}")
        document = json.loads(done.stdout)
    return times, document


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--counts", default="0,100000,300000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold is not None:
        hold(args.hold)
        return 0
    if os.geteuid() != 0:
        sys.exit("needs root: the bench raises pid_max, threads-max and max_map_count")
    # Byte-compile first, as an install does (PYTHONDONTWRITEBYTECODE would recompile each run).
    subprocess.run([sys.executable, "-m", "compileall", "-q", "sysprep"], check=True)
    with sysctls.written(RAISED):
        print(f"{'threads':>8} {'check s':>8} {'--pid s':>8} {'capacity':>9} {'binding':>20}")
        for count in (int(c) for c in args.counts.split(",")):
            helper = subprocess.Popen(
                [sys.executable, __file__, "--hold", str(count)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert helper.stdout is not None
                held = int(helper.stdout.readline())
                plain, document = timed([*SYSPREP, "check", "--json", "--stack", "64K"], args.runs)
                with_pid, _ = timed(
                    [*SYSPREP, "check", "--json", "--stack", "64K", "--pid", str(helper.pid)],
                    args.runs,
                )
                check_s, pid_s = statistics.median(plain), statistics.median(with_pid)
                print(
                    f"{held:>8,} {check_s:>8.3f} {pid_s:>8.3f}"
                    f" {document['capacity']:>9,} {document['binding']:>20}"
                )
            finally:
                if helper.stdin is not None:
                    helper.stdin.close()
                helper.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
