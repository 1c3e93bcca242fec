"""`sysprep fleet` over 10,000 hosts' check documents, against Python parsing them alone.

Target (issue "Fleets"): the report in at most 2x the time Python alone takes to json.load
the same files, and memory flat per host. Generates DIR/HOST/check.json from one real
`check --json` (capacity, binding and readiness varied per host; a few bad and stale
ones), then times both as whole processes and prints peak RSS at 1,000 and 10,000 hosts.

    .venv/bin/python bench/fleet_10k.py [--hosts 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PARSE_ONLY = (
    "import json, sys, pathlib\n"
    "for path in sorted(pathlib.Path(sys.argv[1]).rglob('*.json')):\n"
    "    try:\n"
    "        json.loads(path.read_bytes())\n"
    "    except ValueError:\n"
    "        pass\n"
)


def generate(directory: Path, hosts: int) -> None:
    real = subprocess.run(
        [sys.executable, "-m", "sysprep", "check", "--json", "--profile", "million-threads"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    template = json.loads(real.stdout)
    for number in range(hosts):
        document = dict(template)
        document["capacity"] = 30000 + number * 7 % 100000
        document["ready"] = number % 10 != 0
        if number % 1000 == 1:
            document["checked_at"] = "2026-01-01T00:00:00Z"  # stale
        host = directory / f"host-{number:05}"
        host.mkdir()
        text = json.dumps(document, indent=1)
        (host / "check.json").write_text(text if number % 2000 != 3 else text[:100])  # bad


def timed(command: list[str], runs: int) -> float:
    """Median wall seconds of *command* over *runs* runs."""
    walls = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=False)
        walls.append(time.monotonic() - start)
    return statistics.median(walls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for hosts in (args.hosts // 10, args.hosts):
            directory = Path(tmp) / str(hosts)
            directory.mkdir()
            generate(directory, hosts)
            parse = timed([sys.executable, "-c", PARSE_ONLY, str(directory)], args.runs)
            fleet = timed(
                [sys.executable, "-m", "sysprep", "fleet", str(directory), "--json"], args.runs
            )
            peak = _peak([sys.executable, "-m", "sysprep", "fleet", str(directory), "--json"])
            print(
                f"{hosts:,} hosts: python json.loads alone {parse:.2f} s, sysprep fleet"
                f" {fleet:.2f} s = {fleet / parse:.2f}x (target <= 2x); peak RSS {peak:.1f} MiB"
            )
    return 0


def _peak(command: list[str]) -> float:
    """Peak RSS of one run of *command*, in MiB (from /usr/bin/time's own accounting)."""
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)  # fmt: skip
    return int(done.stderr.strip().splitlines()[-1]) / 1024


if __name__ == "__main__":
    sys.exit(main())
