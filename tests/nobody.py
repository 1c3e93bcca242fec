"""Run the sysprep command line as uid 65534, from a root test process."""

from __future__ import annotations

import os
import subprocess
import sys

NOBODY = 65534


def run_as_nobody(
    args: list[str], prefix: list[str] | None = None, path: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`sysprep ARGS` as uid 65534 (*prefix*: e.g. nsenter into a namespace first; *path*:
    where sysprep is imported from there, by the base interpreter).

    A first run, still as root, against an empty tree imports every module that run needs,
    so neither the checkout nor the interpreter has to be readable by that user.
    """
    code = (
        f"import sys; sys.path[:0] = {path or []!r}\n"
        "import contextlib, io, os, sys, sysprep.cli\n"
        "out, err = io.StringIO(), io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        "    sysprep.cli.run(['--root', '/nonexistent', 'check'])\n"
        "    sysprep.cli.run(['--root', '/nonexistent', 'apply', 'elasticsearch'])\n"
        "import sysprep.apply, sysprep.profile, sysprep.snapshot, sysprep.plan\n"
        "import sysprep.settings.sysctl_d\n"
        "import sysprep.report, sysprep.systemd, sysprep.render.check, sysprep.settings.unit\n"
        f"os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
        f"sys.exit(sysprep.cli.run({args!r}))\n"
    )
    return subprocess.run(
        [
            *(prefix or []),
            os.path.realpath(sys.executable) if path else sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
