"""Time the maps probe making 2,100,000 mappings, with vm.max_map_count raised and restored.

Target (issue "probes"): 2,100,000 mappings in at most 3 s. Needs root. Run by hand:

    sudo .venv/bin/python bench/maps_2m.py [--count 2100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import sysctls

PROBE = Path(__file__).resolve().parents[1] / "probes" / "maps.py"
TARGET_SECONDS = 3.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=2_100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    with sysctls.written({"vm.max_map_count": args.count + 100_000}):
        for _ in range(args.runs):
            out = subprocess.run(
                [sys.executable, "-S", str(PROBE), "--count", str(args.count), "--json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results.append(json.loads(out))
    seconds = [r["create_seconds"] for r in results]
    median = statistics.median(seconds)
    print(f"{args.count:,} mappings: held {results[-1]['held']:,}, create seconds {seconds}")
    print(
        f"  median {median:.2f} s ({results[-1]['create_rate']:,}/s);"
        f" kernel memory per mapping {results[-1]['per_mapping_bytes']}"
    )
    verdict = "ok" if median <= TARGET_SECONDS else "over target"
    print(f"target <= {TARGET_SECONDS} s: {verdict}")
    return 0 if median <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
