"""Application profiles: every rlimit of the registry in them, each failure in the
application's own terms, `sysprep profiles` and `profiles show` (issue "profiles for the
applications users run"). The real-kernel twin, each item made to fail in turn with prlimit,
a lowered sysctl and a real systemd unit's Limit*=, is tests/host/test_compliance.py, which
takes every shipped profile."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from sysprep.cli import run
from sysprep.errors import ExitCode
from sysprep.facts import RLIMITS
from sysprep.plan import build_plan
from sysprep.profile import load
from sysprep.settings.files import FileSetting
from sysprep.settings.rlimit import PROFILE_RLIMITS
from sysprep.settings.unit import PROPERTIES
from tests.fakehost import SELF_PID

if TYPE_CHECKING:
    from pathlib import Path

    from tests.fakehost import FakeHost

APPLICATIONS = ("elasticsearch", "elasticsearch-memlock", "opensearch", "cassandra", "kafka")


def test_every_rlimit_of_the_registry_is_everywhere_rlimits_are() -> None:
    """fsize and memlock: a profile's keys, a unit's Limit*= (no list beside the registry)."""
    assert {"fsize", "memlock"} <= set(PROFILE_RLIMITS)
    assert {"LimitFSIZE", "LimitMEMLOCK"} <= set(PROPERTIES)
    assert set(PROFILE_RLIMITS) == {r.profile for r in RLIMITS.values()}


def test_fsize_and_memlock_persist_as_limits_d_and_systemd_lines(
    fake: FakeHost, tmp_path: Path
) -> None:
    """Below the profile's: limits.d's lines and systemd's defaults, in KiB and bytes."""
    fake.set_limits(RLIMIT_FSIZE=(1 << 30, 1 << 30), RLIMIT_MEMLOCK=(65536, 65536))
    profile = tmp_path / "both.toml"
    profile.write_text('[target]\nthreads = 10\n[rlimits]\nfsize = "unlimited"\nmemlock = "64M"\n')
    plan = build_plan(load(str(profile), fake.host), fake.host, persist=True)
    files = {c.setting.key: c.after.data.decode() for c in plan.of(FileSetting)}
    limits = files["/etc/security/limits.d/90-sysprep.conf"]
    assert "* soft fsize unlimited\n* hard fsize unlimited\n" in limits
    assert "* soft memlock 65536\n* hard memlock 65536\n" in limits
    systemd = files["/etc/systemd/system.conf.d/90-sysprep.conf"]
    assert "DefaultLimitFSIZE=infinity:infinity\n" in systemd
    assert "DefaultLimitMEMLOCK=67108864:67108864\n" in systemd


@pytest.mark.parametrize("profile", APPLICATIONS)
def test_each_application_profile_loads_with_its_source(profile: str, fake: FakeHost) -> None:
    """A JVM target, the application's name, user and page, a check for each item."""
    loaded = load(profile, fake.host)
    assert loaded.runtime == "jvm"
    application = loaded.application
    assert application is not None
    assert application.docs.startswith("https://")
    assert application.user
    assert loaded.path.read_text().startswith("# ")
    assert "Source: https://" in loaded.path.read_text()
    assert "vm.max_map_count" in application.checks


def test_a_failed_item_is_said_in_the_applications_terms(
    fake: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """nofile 1024 against Elasticsearch's 65535: its check's name, found and required,
    where a service and a login set it, and the check's page; in text and in JSON."""
    fake.set_sysctl("vm.max_map_count", 262144)
    fake.set_limits(RLIMIT_NPROC=(4096, 4096), RLIMIT_NOFILE=(1024, 4096))
    args = ["--root", str(fake.root), "check", "--profile", "elasticsearch"]
    assert run(args) == ExitCode.NOT_READY
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "Elasticsearch's file descriptor check fails: RLIMIT_NOFILE is 1024:4096, it requires"
        " 65535:65535" in out
    )
    assert "for the service: LimitNOFILE=65535 in its unit's drop-in" in out
    assert "for a login as elasticsearch: 'elasticsearch - nofile 65535'" in out
    assert "elasticsearch/reference/current/_file_descriptor_check.html" in out
    assert "maximum map count check" not in out  # met: no word of it
    assert run([*args, "--json"]) == ExitCode.NOT_READY
    settings = json.loads(capsys.readouterr().out)["profile"]["settings"]
    nofile = next(s for s in settings if s["key"] == "RLIMIT_NOFILE")
    assert nofile["application"]["check"] == "file descriptor check"
    assert nofile["application"]["found"] == "1024:4096"
    assert next(s for s in settings if s["key"] == "vm.max_map_count")["application"] is None


def test_fsize_fails_elasticsearchs_check(
    fake: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a host sysprep called compliant could fail Elasticsearch's max file size
    check; a 1 GiB RLIMIT_FSIZE now fails the profile, by that check's name."""
    fake.set_sysctl("vm.max_map_count", 262144)
    fake.set_limits(RLIMIT_NPROC=(4096, 4096), RLIMIT_NOFILE=(65535, 65535),
                    RLIMIT_FSIZE=(1 << 30, 1 << 30))  # fmt: skip
    args = ["--root", str(fake.root), "check", "--pid", str(SELF_PID), "--profile"]
    assert run([*args, "elasticsearch", "--threads", "10"]) == ExitCode.NOT_READY
    out = " ".join(capsys.readouterr().out.split())
    assert "Elasticsearch's max file size check fails: RLIMIT_FSIZE is 1073741824" in out
    fake.set_limits(RLIMIT_FSIZE=(None, None))
    assert run([*args, "elasticsearch", "--threads", "10"]) == ExitCode.OK


def test_dry_run_says_where_the_applications_limits_go(
    fake: FakeHost, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Cassandra runs as cassandra: the plan says limits.d's lines must name it, and that a
    service's place is its unit's Limit*=."""
    tree = ["--root", str(fake.root), "--etc-root", str(fake.root), "--state-dir", str(tmp_path)]
    assert run([*tree, "apply", "cassandra", "--persist", "--dry-run"]) == ExitCode.OK
    out = " ".join(capsys.readouterr().out.split())
    assert "cassandra runs as the user cassandra: for its service, the place is the unit's" in out
    assert "limits.d's lines must name cassandra" in out


def test_profiles_lists_and_shows(fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """Every shipped profile with its description; one shown with extends resolved and each
    setting's source comment; a wrong word is one line, exit 2."""
    assert run(["--root", str(fake.root), "profiles"]) == ExitCode.OK
    listed = capsys.readouterr().out
    for name in (*APPLICATIONS, "million-threads"):
        assert any(line == name or line.startswith(f"{name} ") for line in listed.splitlines())
    assert run(["profiles", "show", "elasticsearch-memlock"]) == ExitCode.OK
    shown = " ".join(capsys.readouterr().out.split())
    assert 'memlock = "unlimited"' in shown
    assert 'nofile = 65535 # "max file descriptors [4096] for elasticsearch process' in shown
    assert "(from elasticsearch)" in shown
    assert run(["profiles", "shw", "kafka"]) == ExitCode.BAD_INPUT
    assert "sysprep profiles show NAME" in capsys.readouterr().err


def test_an_application_check_of_no_item_is_refused(fake: FakeHost, tmp_path: Path) -> None:
    """[application.checks] naming an item the profile does not set: one line, exit 2."""
    profile = tmp_path / "bad.toml"
    profile.write_text(
        '[target]\nthreads = 10\n[rlimits]\nnofile = 100\n[application]\nname = "X"\n'
        'docs = "https://x"\n[application.checks]\nnproc = { check = "c", docs = "d" }\n'
    )
    assert (
        run(["--root", str(fake.root), "check", "--profile", str(profile)]) == ExitCode.BAD_INPUT
    )


def test_an_application_check_of_a_units_limit_is_its_rlimits(
    fake: FakeHost, tmp_path: Path
) -> None:
    """A check keyed nofile judges the profile's [unit] LimitNOFILE too: the item both set is
    RLIMIT_NOFILE, as check --unit's verdict names it."""
    profile = tmp_path / "service.toml"
    profile.write_text(
        '[target]\nthreads = 10\n[unit]\nLimitNOFILE = 100\n[application]\nname = "X"\n'
        'docs = "https://x"\n[application.checks]\nnofile = { check = "c", docs = "d" }\n'
    )
    application = load(str(profile), fake.host).application
    assert application is not None
    assert list(application.checks) == ["RLIMIT_NOFILE"]
