"""`sysprep agent` on an idle node: CPU per cycle and resident memory.

Targets (issue "Kubernetes nodes"): a cycle costs at most 1 % of one core at a 60 s
interval (0.6 s of CPU), and the agent's RSS stays under 40 MiB. Runs the agent as the
check DaemonSet does (--profile million-threads, all three reports) at --interval 10 for
--cycles cycles into a temp directory, then reads its CPU time and peak RSS. The first
cycle (imports, the first reads) is counted apart from the steady ones.

    .venv/bin/python bench/agent_footprint.py [--cycles 6]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

INTERVAL = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cycles", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        agent = subprocess.Popen(
            [sys.executable, "-m", "sysprep", "--state-dir", str(out / "state"), "agent",
             f"--interval={INTERVAL}", "--profile=million-threads", f"--npd={out / 'npd'}",
             f"--nfd={out / 'nfd'}", f"--prometheus={out / 'sysprep.prom'}"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert agent.stdout is not None
        process = psutil.Process(agent.pid)
        agent.stdout.readline()  # the first cycle is done
        first = process.cpu_times()
        for _ in range(args.cycles):
            agent.stdout.readline()
        steady = process.cpu_times()
        peak = int(Path(f"/proc/{agent.pid}/status").read_text().split("VmHWM:")[1].split()[0])
        rss = process.memory_info().rss
        agent.terminate()
        agent.wait()
    start = first.user + first.system
    per_cycle = (steady.user + steady.system - start) / args.cycles
    print(f"first cycle (start-up included): {start:.2f} s of CPU")
    print(f"steady cycle: {per_cycle * 1000:.0f} ms of CPU, over {args.cycles} cycles")
    print(f"at a 60 s interval: {100 * per_cycle / 60:.2f} % of one core (target <= 1 %)")
    print(f"at the DaemonSet's 5 m: {100 * per_cycle / 300:.3f} % of one core")
    print(f"RSS {rss / 2**20:.1f} MiB, peak {peak / 1024:.1f} MiB (target < 40 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
