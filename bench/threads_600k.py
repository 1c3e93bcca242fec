"""Hold 600,000 threads at once on this host, with the limits raised for the run and restored.

Target (issue "probes"): at least 600,000 threads alive at once on the 24 GiB VM, no OOM
kill, and the true per-thread cost. Needs root. Run by hand, not in CI:

    sudo .venv/bin/python bench/threads_600k.py [--count 600000] [--stack 64K]

It first asks `sysprep check` what the raised host allows, then runs the threads probe and
prints both, with the probe's measured cost per thread.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import sysctls

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=600_000)
    parser.add_argument("--stack", default="64K")
    args = parser.parse_args()
    raised = {
        "kernel.pid_max": args.count + 100_000,
        "kernel.threads-max": args.count + 100_000,
        "vm.max_map_count": 2 * args.count + 100_000,
    }
    with sysctls.written(raised):
        check = subprocess.run(
            [
                sys.executable,
                "-m",
                "sysprep",
                "check",
                "--threads",
                str(args.count),
                "--stack",
                args.stack,
                "--calibrate",
                "--json",
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        predicted = json.loads(check.stdout)
        print(
            f"check: capacity {predicted['capacity']:,}, binding {predicted['binding']},"
            f" {predicted['per_thread_bytes']:,} B/thread (calibrated)"
        )
        started = time.monotonic()
        probe = subprocess.run(
            [
                sys.executable,
                "-S",
                str(ROOT / "probes/threads.py"),
                "--count",
                str(args.count),
                "--stack",
                args.stack,
                "--json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - started
    result = json.loads(probe.stdout)
    held, stopped = result["held"], result["stopped_by"]
    print(f"probe: held {held:,} of {args.count:,} at once; stopped by {stopped}")
    print(
        f"  create {result['create_seconds']:.1f} s ({result['create_rate']:,}/s),"
        f" join {result['join_seconds']:.1f} s, wall {wall:.1f} s, OOM kills {result['oom_kills']}"
    )
    print(f"  per thread: {json.dumps(result['per_thread_bytes'])}")
    print(
        f"  maps per thread {result['maps_per_thread']}, memory floor {result['memory_floor']:,} B"
    )
    return 0 if result["held"] >= args.count and result["oom_kills"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
