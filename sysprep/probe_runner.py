"""Run a probe from probes/ in a child process and read the one JSON document it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sysprep.errors import SysprepError

PACKAGE_DIR = Path(__file__).resolve().parent
# Installed wheels carry probes/ as sysprep/_probes; a source checkout has it beside the package.
_PROBE_DIRS = (PACKAGE_DIR / "_probes", PACKAGE_DIR.parent / "probes")


class ProbeError(SysprepError):
    """A probe could not run or printed no usable result (not "a limit stopped it")."""


@dataclass(frozen=True)
class ProbeResult:
    """A probe's exit status and JSON document."""

    name: str
    exit_status: int
    document: dict[str, Any]

    @property
    def reached(self) -> bool:
        """True when the probe reached its target (exit status 0)."""
        return self.exit_status == 0


def probe_path(name: str) -> Path:
    """The file of probe *name*, from the installed package or the checkout."""
    for directory in _PROBE_DIRS:
        path = directory / f"{name}.py"
        if path.is_file():
            return path
    raise ProbeError(f"no probe named {name!r} in {' or '.join(map(str, _PROBE_DIRS))}")


def run_probe(name: str, args: list[str], *, timeout: float | None = None) -> ProbeResult:
    """Run probe *name* with *args* (plus --json) in a child process with its own limits."""
    command = [sys.executable, str(probe_path(name)), *args, "--json"]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise ProbeError(f"probe {name} did not finish within {timeout:g} s") from error
    if completed.returncode not in (0, 1):
        detail = completed.stderr.strip().splitlines()[-1:] or ["no message"]
        raise ProbeError(f"probe {name} failed (exit {completed.returncode}): {detail[0]}")
    try:
        document = json.loads(completed.stdout)
    except json.JSONDecodeError as error:
        raise ProbeError(f"probe {name} printed no JSON document: {error}") from error
    return ProbeResult(name, completed.returncode, document)
