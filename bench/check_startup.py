"""Wall time of `sysprep check --json` against `python -c "import typer, psutil"`, same run.

Target (issue "sysprep check"): at most 1.3x. Run by hand, not in CI:

    .venv/bin/python bench/check_startup.py [--runs 30]

The package is byte-compiled first, as `pip install` does: typer and psutil come with their
bytecode, and an editable checkout under PYTHONDONTWRITEBYTECODE=1 would otherwise compile
every sysprep module on every run and measure the compiler.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_RATIO = 1.3


def wall_times(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
        times.append(time.perf_counter() - started)
        # check exits 0 (ready) or 1 (not ready); anything else is a crash, not a timing.
        if done.returncode not in (0, 1):
            sys.exit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()}")
    return times


def compiled_sysprep() -> Path:
    """The venv's `sysprep`, its package byte-compiled first (see the module's docstring)."""
    package = Path(__file__).resolve().parents[1] / "sysprep"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    return Path(sys.executable).with_name("sysprep")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    sysprep = compiled_sysprep()
    commands = {
        "import typer, psutil": [sys.executable, "-c", "import typer, psutil"],
        "sysprep check --json": [str(sysprep), "check", "--json"],
    }
    medians = {}
    for _ in range(2):  # warm the page cache for both before measuring
        for command in commands.values():
            wall_times(command, 1)
    # Interleave the two so that noise from the machine hits both alike.
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            samples[name] += wall_times(command, 1)
    for name, times in samples.items():
        medians[name] = statistics.median(times)
        print(f"{name:24} median {medians[name] * 1000:7.1f} ms  min {min(times) * 1000:7.1f} ms")
    ratio = medians["sysprep check --json"] / medians["import typer, psutil"]
    verdict = "ok" if ratio <= TARGET_RATIO else "over target"
    print(f"ratio {ratio:.2f}x (target <= {TARGET_RATIO}x): {verdict}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
