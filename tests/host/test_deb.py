"""The .deb, for hosts without an index: built by packaging/build-deb, checked by lintian,
installed with dpkg (and by the Ansible role), used (sysprep check, its man pages, its
completions), and removed, leaving no file behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import require_tool
from tests.host.test_ansible import Role

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.root

CHECKOUT = Path(__file__).resolve().parents[2]
# Where the package puts files; each is compared before and after.
PLACES = ("/opt", "/usr/bin", "/usr/share/man/man1", "/usr/share/bash-completion/completions",
          "/usr/share/zsh/vendor-completions", "/usr/share/fish/vendor_completions.d",
          "/usr/lib/systemd/system", "/usr/share/doc", "/etc/sysprep")  # fmt: skip
# lintian's findings, each explained; any other fails the test.
EXPLAINED = {
    # The layout: one virtualenv in /opt/sysprep, as dh-virtualenv's /opt/venvs. A
    # package from outside the Debian archive is an add-on, which the FHS puts in /opt.
    "E: dir-or-file-in-opt",
    # The virtualenv's own interpreter runs sysprep: that is what keeps its packages its own.
    "W: unusual-interpreter /opt/sysprep/bin/python",
    # pyroute2's own test helpers (#!/usr/bin/env python, not executable); never run.
    "W: unusual-interpreter python",
    "W: script-not-executable",
    # Not an upload to Debian: there is no bug to close.
    "W: initial-upload-closes-no-bugs",
}


def _files() -> set[Path]:
    """Every file and directory where the package installs."""
    found = set()
    for place in map(Path, PLACES):
        if place.exists():
            found.add(place)
            found.update(place.rglob("*"))
    return found


def dpkg(*args: str) -> int:
    return subprocess.run(["dpkg", *args], capture_output=True, check=False).returncode


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The package built from this checkout; whatever installs it, it is purged after."""
    require_tool("dpkg")
    if dpkg("-s", "sysprep") == 0:
        pytest.skip("a sysprep package is installed on this host: not replaced by a test")
    if Path("/opt/sysprep").exists():
        pytest.skip("/opt/sysprep exists on this host: not replaced by a test")
    output = tmp_path_factory.mktemp("deb")
    environment = {**os.environ, "PYTHON": sys.executable,
                   "NFPM": require_tool("nfpm")}  # fmt: skip
    done = subprocess.run(
        ["sh", str(CHECKOUT / "packaging/build-deb"), str(output)],
        capture_output=True, text=True, check=False, env=environment,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (package,) = output.glob("sysprep_*_all.deb")
    before = _files()
    try:
        yield package
    finally:
        subprocess.run(["dpkg", "--purge", "sysprep"], capture_output=True, check=False)
        assert _files() == before, sorted(_files() ^ before)


def test_lintian_finds_nothing_unexplained(deb: Path, tmp_path: Path) -> None:
    """Every finding of lintian is one explained above (the /opt layout, the venv's own
    interpreter, third-party helpers); no other error or warning."""
    done = subprocess.run(
        [require_tool("lintian"), "--tag-display-limit", "0", str(deb)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # it leaves its mldbm-* files there
    )  # fmt: skip
    findings = {
        line.split(" [")[0].replace("sysprep: ", "")
        for line in done.stdout.splitlines()
        if line[:2] in ("E:", "W:")
    }
    assert findings <= EXPLAINED, sorted(findings - EXPLAINED)


def test_install_use_and_remove(deb: Path) -> None:
    """dpkg -i; sysprep check from /usr/bin; man sysprep-check with its options; the bash
    completion loads; the timer's units are there, not enabled; dpkg -r, then -P: nothing
    of it is left (the fixture compares every file where it installs)."""
    before = _files()
    assert (
        subprocess.run(["dpkg", "-i", str(deb)], capture_output=True, check=False).returncode == 0
    )
    done = subprocess.run(["/usr/bin/sysprep", "check", "--threads", "1000"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ready for 1,000 threads" in done.stdout
    page = subprocess.run(["man", "-P", "cat", "sysprep-check"], capture_output=True, text=True,
                          check=False, env={**os.environ, "MANWIDTH": "100"})  # fmt: skip
    assert "OPTIONS" in page.stdout, page.stderr
    assert "--threads N" in page.stdout
    for name in ("sysprep", "sysprep-apply", "sysprep-fleet", "sysprep-agent"):
        assert Path(f"/usr/share/man/man1/{name}.1.gz").exists()
    completion = subprocess.run(
        ["bash", "-c", ". /usr/share/bash-completion/completions/sysprep && complete -p sysprep"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "_sysprep_completion" in completion.stdout, completion.stderr
    assert Path("/usr/lib/systemd/system/sysprep-textfile.timer").exists()
    assert not Path("/etc/systemd/system/timers.target.wants/sysprep-textfile.timer").exists()
    assert (
        subprocess.run(["dpkg", "-r", "sysprep"], capture_output=True, check=False).returncode == 0
    )
    assert (
        subprocess.run(["dpkg", "-P", "sysprep"], capture_output=True, check=False).returncode == 0
    )
    assert _files() == before, sorted(_files() ^ before)


def test_the_role_installs_the_package(deb: Path, tmp_path: Path) -> None:
    """sysprep_source: deb: the role copies the package, installs it with apt, and checks;
    a second run changes nothing. The package is purged afterwards."""
    role = Role(tmp_path, sysprep_source="deb", sysprep_deb=str(deb),
                sysprep_venv="/opt/sysprep")  # fmt: skip
    played = role.run(sysprep_action="check", sysprep_threads=1000, sysprep_install=True)
    assert played.failed == 0, played.output
    assert Path("/usr/bin/sysprep").exists()
    again = role.run(sysprep_action="check", sysprep_threads=1000, sysprep_install=True)
    assert (again.changed, again.failed) == (0, 0), again.output
    cached = Path(f"/var/cache/sysprep-{deb.name}")
    cached.unlink()
