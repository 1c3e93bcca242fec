"""Threads held by real C, JVM and Rust programs, against `sysprep check`'s prediction.

Groundwork for issue 14 (runtimes). Run by hand as root, not in CI:

    .venv/bin/python bench/runtimes/run.py [--max-map-count 10000] [--xss 256k]

Builds hold.c, Hold.java and hold.rs into a temp directory (a runtime whose compiler is
missing is skipped and named). Each program first holds 1000 threads on the host as it is,
which gives its mappings per thread; then vm.max_map_count is lowered and each holds threads
until creation fails, which gives the count it really reached and whether the process
survived. vm.max_map_count is put back afterwards, also on failure. The lowered limit must be
the tightest one (about 5,000 threads at the default 10000), or the count is another limit's.
Not beside the test suite: both write sysctls, and each would see the other's values.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sysctls

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SAMPLE = 1000
LIMITED = 100_000  # more than any lowered limit allows
HELD = re.compile(r"^held (\d+)$", re.MULTILINE)


def build(workdir: Path, xss: str) -> dict[str, list[str]]:
    """The command that runs each runtime's program, for the runtimes that can be built."""
    commands: dict[str, list[str]] = {}
    if shutil.which("cc"):
        source = HERE.parent / "hold.c"
        subprocess.run(
            ["cc", "-O2", "-pthread", "-DCOUNT_MAPS", "-o", workdir / "hold_c", source], check=True
        )
        commands["c"] = [str(workdir / "hold_c")]
    if shutil.which("javac") and shutil.which("java"):
        subprocess.run(["javac", "-d", workdir, HERE / "Hold.java"], check=True)
        commands["jvm"] = ["java", f"-Xss{xss}", "-cp", str(workdir), "Hold"]
    if shutil.which("rustc"):
        subprocess.run(["rustc", "-O", "-o", workdir / "hold_rs", HERE / "hold.rs"], check=True)
        commands["rust"] = [str(workdir / "hold_rs")]
    return commands


def hold(command: list[str], count: int, workdir: Path) -> dict[str, int | bool]:
    """One run: its JSON lines, or, when the process died, the last count it wrote."""
    done = subprocess.run(
        [*command, str(count)], check=False, capture_output=True, text=True, cwd=workdir
    )
    counts = HELD.findall(done.stderr)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result: dict[str, int | bool] = {}
    for line in lines:
        result.update(json.loads(line))
    result.setdefault("held", int(counts[-1]) if counts else 0)
    result["survived"] = bool(lines)  # it reached its report: it did not abort or exit early
    return result


def predicted() -> dict[str, object]:
    """What `sysprep check` says today: for a C program with glibc's default stack."""
    done = subprocess.run(
        [sys.executable, "-m", "sysprep", "check", "--json"],
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
    parser.add_argument("--xss", default="256k", help="the JVM's -Xss (default 256k)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sysprep-runtimes-") as tmp:
        workdir = Path(tmp)
        commands = build(workdir, args.xss)
        for missing in sorted({"c", "jvm", "rust"} - commands.keys()):
            print(f"{missing}: skipped, its compiler is not installed")
        lowered = {"vm.max_map_count": args.max_map_count}
        for runtime, command in commands.items():
            sample = hold(command, SAMPLE, workdir)
            if not sample["survived"] or sample["held"] != SAMPLE:
                sys.exit(f"{runtime}: could not hold {SAMPLE} threads on the host as it is")
            per_thread = (sample["maps_peak"] - sample["maps_before"]) / SAMPLE
            with sysctls.written(lowered):
                limited = hold(command, LIMITED, workdir)
            print(
                json.dumps(
                    {
                        "runtime": runtime,
                        "maps_per_thread": per_thread,
                        "max_map_count": args.max_map_count,
                        "held": limited["held"],
                        "survived": limited["survived"],
                    }
                )
            )
        with sysctls.written(lowered):
            print(json.dumps({"sysprep_check_for_c": predicted()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
