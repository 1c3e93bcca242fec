"""`check --unit` of a stopped service against plain `check`, inside a real systemd.

Target (issue "Services, not shells"): at most 1.5x the wall time of plain check (one
`systemctl show` for the unit, one for the manager). Boots systemd as tests/realsystemd.py
does (REAL-HOSTS.md's recipe) and puts the host back afterwards. Needs root.

    sudo .venv/bin/python bench/check_unit.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.realsystemd import booted_systemd


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", "sysprep"], check=True)
    with booted_systemd() as systemd:
        unit = systemd.run_path("systemd/system/bench-app.service")
        unit.parent.mkdir(parents=True, exist_ok=True)
        unit.write_text("[Service]\nTasksMax=1234\nLimitNPROC=5000\nExecStart=/bin/true\n")
        systemd.run("systemctl", "daemon-reload")
        inside = ["nsenter", "-t", str(systemd.pid), "-a", sys.executable, "-m", "sysprep"]
        plain, unit_times = [], []
        for _ in range(args.runs):  # paired, alternating: drift hits both alike
            plain.append(wall([*inside, "check", "--json"]))
            unit_times.append(wall([*inside, "check", "--unit", "bench-app", "--json"]))
    ratios = [u / p for u, p in zip(unit_times, plain, strict=True)]
    print(f"check          median {statistics.median(plain) * 1000:6.1f} ms")
    print(f"check --unit   median {statistics.median(unit_times) * 1000:6.1f} ms")
    print(f"ratio (paired) median {statistics.median(ratios):.2f}x (target <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
