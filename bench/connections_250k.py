"""Hold 250,000 TCP connections at once in a private network namespace.

Target (issue "network"): at least 250,000 held connections on this 24 GiB machine, with
the kernel memory per connection. Needs root (the namespace). Run by hand:

    sudo .venv/bin/python bench/connections_250k.py [--count 250000]

One server process holds at most its hard RLIMIT_NOFILE, so the probe shards the server
across worker processes on one listener, and the clients across processes and source
addresses; every connection still exchanges a message and all are open at once.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=250_000)
    args = parser.parse_args()
    sysprep = str(Path(sys.executable).with_name("sysprep"))
    started = time.monotonic()
    out = subprocess.run(
        [sysprep, "probe", "connections", "--count", str(args.count), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    if not out.stdout:
        print(out.stderr, file=sys.stderr)
        return 2
    d = json.loads(out.stdout)
    print(
        f"held {d['held']:,} of {d['target']:,} connections at once; stopped by {d['stopped_by']}"
    )
    print(
        f"  {d['create_seconds']:.1f} s to open and echo all"
        f" ({d['create_rate']:,}/s); wall {wall:.1f} s"
    )
    print(
        f"  {d['workers']} server workers, {d['client_processes']} client processes,"
        f" {d['sources']} source addresses"
    )
    print(f"  kernel memory per connection (both ends): {d['per_connection_bytes']}")
    return 0 if d["held"] >= args.count else 1


if __name__ == "__main__":
    sys.exit(main())
