"""Wall time of `sysprep apply million-threads --no-probe` and `sysprep revert`, real kernel.

Target (issue "apply/revert"): at most 0.5 s each. Needs root; /etc and the state directory
go to a temp tree, the sysctls are the real ones and are reverted by the run itself (and
written back from a saved copy if anything fails). Run by hand:

    sudo .venv/bin/python bench/apply_revert.py [--runs 10] [--persist]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sysctls

KEYS = ("kernel.pid_max", "kernel.threads-max", "vm.max_map_count")
TARGET_SECONDS = 0.5


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--persist", action="store_true", help="also write the drop-ins")
    args = parser.parse_args()
    sysprep = str(Path(sys.executable).with_name("sysprep"))
    applies, reverts = [], []
    with sysctls.restored(KEYS), tempfile.TemporaryDirectory() as tmp:
        options = ["--etc-root", tmp, "--state-dir", f"{tmp}/state"]
        extra = ["--persist"] if args.persist else []
        for _ in range(args.runs):
            applies.append(
                timed([sysprep, *options, "apply", "million-threads", "--no-probe", *extra])
            )
            reverts.append(timed([sysprep, *options, "revert"]))
    verdict = (
        "ok"
        if max(statistics.median(applies), statistics.median(reverts)) <= TARGET_SECONDS
        else "over"
    )
    print(f"apply  median {statistics.median(applies):.3f} s  max {max(applies):.3f} s")
    print(f"revert median {statistics.median(reverts):.3f} s  max {max(reverts):.3f} s")
    print(f"target <= {TARGET_SECONDS} s each: {verdict}")
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
