"""`check --profile`: compliance per setting, raise-only, and the capacity after apply."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sysprep.cli import run
from sysprep.errors import ExitCode

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from tests.fakehost import FakeHost


def check_profile(fake: FakeHost, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()
    run(["--root", str(fake.root), "check", "--profile", "million-threads", "--json", *args])
    return json.loads(capsys.readouterr().out)


def test_stock_host_is_not_compliant(fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """Stock pid_max and max_map_count are below what a million threads need."""
    fake.set_sysctl("kernel.pid_max", 32768)
    document = check_profile(fake, capsys)
    settings = {s["key"]: s for s in document["profile"]["settings"]}
    assert document["profile"]["compliant"] is False
    assert settings["kernel.pid_max"]["ok"] is False
    assert settings["kernel.pid_max"]["actual"] == 32768  # numbers as numbers
    assert settings["kernel.pid_max"]["expected"] > 1_000_000  # what the target needs
    assert document["target"]["threads"] == 1_000_000
    assert document["target"]["stack_bytes"] == 256 * 1024  # the profile's stack


def test_higher_values_count_as_in_place(
    fake: FakeHost, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Raise-only: values above the profile's (a distro's 4194304) are compliant, and with
    the host ready for the target, check --profile exits 0."""
    profile = tmp_path / "raised.toml"
    profile.write_text(
        '[target]\nthreads = 1000\n[sysctl]\n"kernel.pid_max" = 65536\n'
        '"vm.max_map_count" = "auto"\n[rlimits]\nnofile = 4096\n'
    )
    fake.set_sysctl("kernel.pid_max", 4194304).set_sysctl("vm.max_map_count", 2147483642)
    fake.set_limits(RLIMIT_NOFILE=(8192, 524288))
    capsys.readouterr()
    code = run(["--root", str(fake.root), "check", "--profile", str(profile), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert document["profile"]["compliant"] is True, document["profile"]
    assert code == ExitCode.OK
    nofile = next(s for s in document["profile"]["settings"] if s["kind"] == "rlimits")
    assert nofile["expected"] == {"soft": 4096, "hard": 4096}
    assert nofile["actual"] == {"soft": 8192, "hard": 524288}


def test_capacity_after_apply_for_root(fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """For a root process, after the profile the sysctls no longer bind: memory does."""
    fake.set_sysctl("kernel.pid_max", 32768).add_process(7000, uid=0)
    document = check_profile(fake, capsys, "--pid", "7000")
    assert document["binding"] == "kernel.pid_max"
    assert document["profile"]["binding_after"] == "memory"
    assert document["profile"]["capacity_after"] > document["capacity"]


def test_capacity_after_apply_for_a_user(
    fake: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """For uid 1000 the default RLIMIT_NPROC (96,365) binds next: it is per login, not a sysctl."""
    fake.set_sysctl("kernel.pid_max", 32768)
    document = check_profile(fake, capsys)
    assert document["profile"]["binding_after"] == "RLIMIT_NPROC"


def test_threads_option_overrides_the_profile(
    fake: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """--threads still sets the target when a profile is given."""
    assert check_profile(fake, capsys, "--threads", "500")["target"]["threads"] == 500


def test_unknown_profile_is_bad_input(fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """A profile that does not exist: exit 2, one line."""
    assert run(["--root", str(fake.root), "check", "--profile", "nope"]) == ExitCode.BAD_INPUT
    assert "no profile named 'nope'" in capsys.readouterr().err
