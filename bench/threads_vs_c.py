"""Wall time of the threads probe holding N threads against the same loop in C, same run.

Target (issue "probes"): the probe at most 1.05x the C program. Run by hand, not in CI:

    .venv/bin/python bench/threads_vs_c.py [--count 30000] [--runs 20]

Builds bench/hold.c with cc into a temp directory; all use glibc's default stack. A third
contestant, bench/hold_ctypes.py, runs the same loop through ctypes and nothing else: the
floor for any Python probe, so the report splits the probe's cost into the price of ctypes
and the probe's own. Each prints its create and join phases: the kernel's join phase varies
by +-150 ms from run to run for any of them, so the phases are the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROBE = HERE.parent / "probes" / "threads.py"
FLOOR = HERE / "hold_ctypes.py"
TARGET_RATIO = 1.05
PHASES = ("wall", "create_seconds", "join_seconds")


def measure(command: list[str]) -> dict[str, float]:
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - started
    document = json.loads(out)
    return {"wall": wall, **{phase: document[phase] for phase in PHASES[1:]}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--settle", type=float, default=1.0, help="seconds between runs")
    args = parser.parse_args()
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        print("no C compiler: cannot build the reference", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as build:
        binary = str(Path(build) / "hold")
        subprocess.run(
            [compiler, "-O2", "-pthread", "-o", binary, str(HERE / "hold.c")], check=True
        )
        commands = {
            "C": [binary, str(args.count)],
            "ctypes": [sys.executable, "-S", str(FLOOR), str(args.count)],
            "probe": [sys.executable, "-S", str(PROBE), "--count", str(args.count), "--json"],
        }
        for command in commands.values():  # warm caches
            measure(command)
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
        for run in range(args.runs):
            # Interleaved, in rotating order, so noise hits all alike; and a pause first: the
            # kernel frees the last run's task structs and stacks after it exits (RCU,
            # deferred work), which would otherwise be billed to the next program.
            names = list(commands)
            order = names[run % len(names) :] + names[: run % len(names)]
            for name in order:
                time.sleep(args.settle)
                samples[name].append(measure(commands[name]))
    medians = {
        name: {phase: statistics.median(s[phase] for s in runs) for phase in PHASES}
        for name, runs in samples.items()
    }
    print(f"{args.count:,} threads, {args.runs} runs each, medians (ratio to C):")
    for phase in PHASES:
        c, floor, probe = (medians[name][phase] for name in commands)
        print(
            f"  {phase:15} C {c:.3f} s  ctypes {floor:.3f} s ({floor / c:.3f}x)"
            f"  probe {probe:.3f} s ({probe / c:.3f}x)"
        )
    ratios = {
        name: statistics.median(
            run["wall"] / c["wall"] for run, c in zip(samples[name], samples["C"], strict=True)
        )
        for name in ("ctypes", "probe")
    }
    paired = ratios["probe"]
    print(f"  median paired wall ratio: ctypes {ratios['ctypes']:.3f}x, probe {paired:.3f}x")
    verdict = "ok" if paired <= TARGET_RATIO else "over target"
    print(f"target <= {TARGET_RATIO}x (paired wall): {verdict}")
    return 0 if paired <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
