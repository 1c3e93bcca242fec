"""Wall time of `sysprep check --runtime jvm` against plain `sysprep check`, interleaved.

Target (issue 14): within 5 %; recognising a runtime reads /proc and never starts one. Also
`check --pid` of a waiting JVM against `check --pid` of a waiting C program. Run by hand:

    .venv/bin/python bench/check_runtime.py [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/check_startup.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/programs.py

from check_startup import compiled_sysprep
from check_startup import wall_times

from tests import programs

TARGET_RATIO = 1.05


def waiting(command: list[str]) -> subprocess.Popen[str]:
    """A hold program started and waiting on stdin (HOLD_WAIT) before its first thread."""
    process = subprocess.Popen(
        [*command, "10"],
        env={"HOLD_WAIT": "1", "PATH": "/usr/bin:/bin"},
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    process.stderr.readline()  # "ready"
    return process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    sysprep = str(compiled_sysprep())
    with tempfile.TemporaryDirectory(prefix="sysprep-bench-") as tmp:
        jvm = waiting(programs.build("jvm", Path(tmp) / "jvm"))
        c = waiting(programs.build("c", Path(tmp) / "c"))
        try:
            pairs = {
                "--runtime jvm": (
                    [sysprep, "check", "--json"],
                    [sysprep, "check", "--json", "--runtime", "jvm"],
                ),
                "--pid of a JVM": (
                    [sysprep, "check", "--json", "--pid", str(c.pid)],
                    [sysprep, "check", "--json", "--pid", str(jvm.pid)],
                ),
            }
            for name, (base, judged) in pairs.items():
                for command in (base, judged):
                    wall_times(command, 2)  # warm the page cache
                samples: dict[int, list[float]] = {0: [], 1: []}
                for _ in range(args.runs):  # interleaved: machine noise hits both alike
                    samples[0] += wall_times(base, 1)
                    samples[1] += wall_times(judged, 1)
                medians = [statistics.median(samples[i]) for i in (0, 1)]
                ratio = medians[1] / medians[0]
                verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
                print(
                    f"{name:16} {medians[1] * 1000:6.1f} ms vs {medians[0] * 1000:6.1f} ms:"
                    f" {ratio:.3f}x (target {TARGET_RATIO}x) {verdict}"
                )
        finally:
            for process in (jvm, c):
                process.kill()
                process.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
