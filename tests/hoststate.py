"""What a real runtime in a test (a booted systemd, a podman container) may leave behind on
the host, recorded before and put back after: every sysctl, the cgroups it made. And the
code those runtimes run: sysprep, its probes and profiles, and the packages it imports."""

from __future__ import annotations

import errno
import importlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
CGROUPS = Path("/sys/fs/cgroup")
# Counters and values that move on their own: not settings anything changed.
MOVING = (
    "fs.dentry-state",
    "fs.file-nr",
    "fs.inode-",
    "fs.quota.",
    "kernel.ns_last_pid",
    "random.",
)


def sysctls() -> dict[str, str]:
    """Every sysctl the host has, but the counters."""
    out = subprocess.run(["sysctl", "-a"], capture_output=True, text=True, check=False).stdout
    values = {}
    for line in out.splitlines():
        key, _, value = line.partition(" = ")
        if not any(m in key for m in MOVING):
            values[key] = value
    return values


def restore_sysctls(before: dict[str, str]) -> None:
    """Write back each sysctl that differs from *before*."""
    now = sysctls()
    for key, value in before.items():
        if now.get(key) != value:
            subprocess.run(["sysctl", "-qw", f"{key}={value}"], check=False)


def cgroup_dirs() -> set[Path]:
    """Cgroups below each hierarchy's root (the roots are mount points, not cgroups)."""
    return {p for p in CGROUPS.glob("*/*/**") if p.is_dir() and not p.is_symlink()}


def remove_cgroups(before: set[Path], wait: float = 10) -> None:
    """Remove the cgroups made since *before*, deepest first.

    A process still on its way out (podman's conmon, after `podman rm`) keeps its cgroup
    busy for a moment: each is retried until *wait* seconds have passed.
    """
    deadline = time.monotonic() + wait
    for path in sorted(cgroup_dirs() - before, key=lambda p: len(p.parts), reverse=True):
        while True:
            try:
                path.rmdir()
                break
            except OSError as error:
                if error.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def copy_code(code: Path) -> None:
    """sysprep, its probes and profiles into *code*, the packages it imports into code/site:
    a runtime's own Python imports them from there (python -c, or PYTHONPATH)."""
    for module in ("sysprep.cli", "sysprep.report", "sysprep.systemd", "sysprep.apply"):
        importlib.import_module(module)  # so that every package it needs is loaded
    importlib.import_module("rich.table")
    site = code / "site"
    site.mkdir(parents=True, exist_ok=True)
    skip = shutil.ignore_patterns("__pycache__")
    for name in ("sysprep", "probes", "profiles"):
        shutil.copytree(CHECKOUT / name, code / name, dirs_exist_ok=True, ignore=skip)
    for top in _imported_packages():
        target = site / top.name
        if top.is_dir():
            shutil.copytree(top, target, dirs_exist_ok=True, ignore=skip)
        else:
            shutil.copyfile(top, target)


def _imported_packages() -> set[Path]:
    """The top-level packages (or modules) of site-packages that sysprep has imported."""
    found = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        for root in sys.path:
            if root.endswith("site-packages") and path.startswith(root + os.sep):
                top = Path(root) / Path(path).relative_to(root).parts[0]
                if not top.name.startswith("_"):  # setuptools' _distutils_hack and the like
                    found.add(top)
    return found
