"""The hold programs (bench/hold.c, bench/runtimes/): C, Java, Rust and Go, built and run.

Each starts threads that block until released, until its count is reached or creation fails,
and reports how many it held. A JVM or Go program that a limit aborts never reaches its
report: the last "held N" line it wrote to stderr is the count then. Used by the real-kernel
tests (tests/host/test_runtimes.py) and by bench/runtimes/run.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

BENCH = Path(__file__).resolve().parent.parent / "bench"
RUNTIMES = ("c", "jvm", "rust", "go")
_HELD = re.compile(r"^held (\d+)$", re.MULTILINE)
# What each runtime needs to be built, and the package that brings it.
_NEEDS = {
    "c": (("cc",), "a C compiler (build-essential)"),
    "jvm": (("javac", "java"), "a JDK (openjdk-17-jdk-headless)"),
    "rust": (("rustc",), "rustc (rustup or the distribution's rustc)"),
    "go": (("go",), "Go (golang-go)"),
}


class Held(NamedTuple):
    """One run: threads held when creation failed, whether it lived to report, its output."""

    held: int
    survived: bool  # it reached its report: it did not abort or exit early
    report: dict[str, object]
    stdout: str  # a JVM's crash summary is written here
    stderr: str


def missing(runtime: str) -> str | None:
    """Why *runtime*'s program cannot be built here, or None when it can."""
    tools, package = _NEEDS[runtime]
    absent = [tool for tool in tools if shutil.which(tool) is None]
    return f"{runtime}: {' and '.join(absent)} not installed; needs {package}" if absent else None


def build(runtime: str, workdir: Path, *, xss: str = "256k") -> list[str]:
    """Build *runtime*'s program into *workdir*; the command that runs it (add the count).

    The JVM gets -Xss*xss*, and writes its crash report into *workdir*, without a core dump.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if runtime == "c":
        binary = workdir / "hold_c"
        _run(["cc", "-O2", "-pthread", "-DCOUNT_MAPS", "-o", binary, BENCH / "hold.c"])
        return [str(binary)]
    if runtime == "jvm":
        _run(["javac", "-J-XX:-UsePerfData", "-d", workdir, BENCH / "runtimes/Hold.java"])
        return [
            "java",
            f"-Xss{xss}",
            "-XX:-CreateCoredumpOnCrash",
            "-XX:-UsePerfData",  # no hsperfdata file left in /tmp
            f"-XX:ErrorFile={workdir}/hs_err_%p.log",
            "-cp",
            str(workdir),
            "Hold",
        ]
    if runtime == "rust":
        return [str(compile_rust(BENCH / "runtimes/hold.rs", workdir / "hold_rs"))]
    return [str(compile_go(BENCH / "runtimes/hold.go", workdir / "hold_go"))]


def compile_rust(source: Path, binary: Path) -> Path:
    """rustc -O: *source* into *binary*."""
    _run(["rustc", "-O", "-o", binary, source])
    return binary


def compile_go(source: Path, binary: Path) -> Path:
    """go build: *source* into *binary*, its build cache and module path beside it."""
    workdir = binary.parent
    cache = {"GOCACHE": str(workdir / "go-cache"), "GOPATH": str(workdir / "go-path")}
    _run(["go", "build", "-o", binary, source], env={**os.environ, **cache})
    return binary


def _run(command: list[object], env: dict[str, str] | None = None) -> None:
    subprocess.run([str(arg) for arg in command], check=True, env=env, capture_output=True)


def parse(stdout: str, stderr: str) -> Held:
    """The held count from a run's output: its report, else its last "held N" line."""
    report: dict[str, object] = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            report.update(json.loads(line))
    counts = _HELD.findall(stderr)
    held = report.get("held", int(counts[-1]) if counts else 0)
    assert isinstance(held, int)
    return Held(held, bool(report), report, stdout, stderr)
