"""`sysprep watch` beside a process with 100,000 threads: CPU per refresh.

Target (issue "explain, watch"): a refresh at least once a second using under 5 % of one
core. Runs watch --interval 1 for --seconds, writing its Prometheus file each refresh, and
reads its CPU time. Needs root: raises pid_max, threads-max and max_map_count for the holder
and writes them back.

    sudo .venv/bin/python bench/watch_cpu.py [--threads 100000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sysctls
from check_busy import RAISED


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root: the bench raises pid_max, threads-max and max_map_count")
    with sysctls.written(RAISED), tempfile.TemporaryDirectory() as tmp:
        holder = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("check_busy.py")),
                "--hold",
                str(args.threads),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None
        held = int(holder.stdout.readline())
        prom = Path(tmp) / "watch.prom"
        watch = subprocess.Popen(
            [sys.executable, "-m", "sysprep", "watch", "--pid", str(holder.pid), "--interval", "1",
             "--prometheus", str(prom)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(args.seconds)
        cpu = psutil.Process(watch.pid).cpu_times()
        watch.terminate()
        watch.wait()
        if holder.stdin is not None:
            holder.stdin.close()
        holder.wait()
        used = cpu.user + cpu.system
        print(f"threads held {held:,}; watch ran {args.seconds:.0f} s at 1 refresh/s")
        print(f"CPU {used:.2f} s = {100 * used / args.seconds:.1f} % of one core (target < 5 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
