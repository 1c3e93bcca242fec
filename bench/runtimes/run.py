"""Threads held by real C, JVM, Rust and Go programs, against `sysprep check --runtime`.

Run by hand as root, not in CI (tests/host/test_runtimes.py is the CI's version):

    .venv/bin/python bench/runtimes/run.py [--max-map-count 10000] [--runs 5]

Builds each runtime's hold program (tests/programs.py: bench/hold.c, Hold.java, hold.rs,
hold.go; a runtime whose compiler is missing is skipped and named). Each program first holds
1000 threads on the host as it is, which gives its mappings and OS threads per thread; then
vm.max_map_count is lowered and it holds threads until creation fails, --runs times, which
gives the counts it really reached and how often the process survived. Beside each: what
`sysprep check --runtime X` predicted at that limit, and the limit it named. vm.max_map_count
is put back afterwards, also on failure. Not beside the test suite: both write sysctls.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/sysctls.py
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/programs.py

import sysctls

from tests import programs

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = 1000
LIMITED = 100_000  # more than any lowered limit allows


def hold(command: list[str], count: int, workdir: Path) -> programs.Held:
    done = subprocess.run(
        [*command, str(count)], check=False, capture_output=True, text=True, cwd=workdir
    )
    return programs.parse(done.stdout, done.stderr)


def predicted(runtime: str) -> dict[str, object]:
    """What `sysprep check --runtime RUNTIME` says for a program started from here."""
    done = subprocess.run(
        [sys.executable, "-m", "sysprep", "check", "--runtime", runtime, "--json"],
        check=False,  # its exit status says whether the target is met; the JSON is the figure
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    report = json.loads(done.stdout)
    return {"capacity": report["capacity"], "binding": report["binding"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-map-count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sysprep-runtimes-") as tmp:
        for runtime in programs.RUNTIMES:
            if programs.missing(runtime):
                print(f"{runtime}: skipped: {programs.missing(runtime)}")
                continue
            workdir = Path(tmp) / runtime
            command = programs.build(runtime, workdir)
            sample = hold(command, SAMPLE, workdir)
            if not sample.survived or sample.held != SAMPLE:
                sys.exit(f"{runtime}: could not hold {SAMPLE} threads on the host as it is")
            report = sample.report
            maps = (int(report["maps_peak"]) - int(report["maps_before"])) / SAMPLE  # type: ignore[call-overload]
            with sysctls.written({"vm.max_map_count": args.max_map_count}):
                check = predicted(runtime)
                runs = [hold(command, LIMITED, workdir) for _ in range(args.runs)]
            print(
                json.dumps(
                    {
                        "runtime": runtime,
                        "maps_per_thread": maps,
                        "maps_at_start": report["maps_before"],
                        "os_threads_at_start": report.get("threads_before"),
                        "max_map_count": args.max_map_count,
                        "check": check,
                        "held": [run.held for run in runs],
                        "survived": sum(run.survived for run in runs),
                    }
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
