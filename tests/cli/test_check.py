"""`sysprep check` through the real entry point: exit codes, one-line errors, the JSON shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sysprep.cli import run
from sysprep.errors import ExitCode

if TYPE_CHECKING:
    from tests.fakehost import FakeHost

LIMIT_KEYS = {"name", "current", "in_use", "allows", "needed", "status", "fix", "note", "unit"}


def check(fake: FakeHost, *args: str) -> list[str]:
    return ["--root", str(fake.root), "check", *args]


def test_json_names_binding_limit(fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """Not ready: exit 1, and the document names the limit that binds."""
    fake.set_sysctl("kernel.pid_max", 32768)
    assert run(check(fake, "--json")) == ExitCode.NOT_READY
    document = json.loads(capsys.readouterr().out)
    assert document["ready"] is False
    assert document["binding"] == "kernel.pid_max"
    assert document["capacity"] == 32768 - 300 - 3
    runtime = document["target"].pop("runtime")
    assert document["target"] == {"threads": 1_000_000, "stack_bytes": 8 << 20, "pid": None}
    assert (runtime["name"], runtime["chosen"], runtime["own_threads"]) == ("c", "assumed", 0)
    assert isinstance(document["per_thread_bytes"], int)
    assert all(set(limit) == LIMIT_KEYS for limit in document["limits"])
    pid_max = next(limit for limit in document["limits"] if limit["name"] == "kernel.pid_max")
    assert pid_max["status"] == "fails"
    assert pid_max["fix"]["now"] == f"sysctl -w kernel.pid_max={pid_max['needed']}"


def test_ready_exits_zero(fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """A target every limit allows: exit 0, ready true."""
    assert run(check(fake, "--threads", "1000", "--json")) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["ready"] is True


def test_table_has_capacity_line(fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """The human report ends the table with capacity and the binding limit."""
    fake.set_sysctl("kernel.threads-max", 5000)
    assert run(check(fake)) == ExitCode.NOT_READY
    out = capsys.readouterr().out
    tasks = fake.host.tasks_total()
    assert (
        f"can start ~{5000 - tasks:,} more threads; binding limit: kernel.threads-max = 5,000"
        in out
    )
    assert "sysctl -w kernel.threads-max=" in out


def test_unknown_limit_makes_host_not_ready(
    fake: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreadable limit is reported as unknown and the exit status is not 0."""
    (fake.root / "proc/sys/vm/max_map_count").unlink()
    assert run(check(fake, "--threads", "10", "--json")) == ExitCode.NOT_READY
    limits = json.loads(capsys.readouterr().out)["limits"]
    assert next(lim for lim in limits if lim["name"] == "vm.max_map_count")["status"] == "unknown"


def test_pid_judges_that_process(fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """--pid reads that process's rlimits and mappings."""
    fake.add_process(7000, uid=1000).set_limits(7000, RLIMIT_NPROC=(500, 500)).set_maps(
        7000, count=30
    )
    run(check(fake, "--pid", "7000", "--json"))
    document = json.loads(capsys.readouterr().out)
    assert document["target"]["pid"] == 7000
    assert document["binding"] == "RLIMIT_NPROC"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "0"], "invalid thread count '0'"),
        (["--threads", "-5"], "invalid thread count '-5'"),
        (["--threads", "lots"], "invalid thread count 'lots'"),
        (["--stack", "8Q"], "invalid size '8Q'"),
        (["--stack", "4K"], "PTHREAD_STACK_MIN"),
        (["--pid", "0"], "invalid pid 0"),
        (["--pid", "-3"], "invalid pid -3"),
        (["--pid", "abc"], "invalid --pid 'abc': a whole number (see sysprep check --help)"),
        (["--pid", "999999"], "no process with pid 999999"),
        (["--calibrate"], "--calibrate starts real threads"),
        (["--frobnicate"], "sysprep check has no option --frobnicate"),
        (["-q"], "-q is an option of sysprep itself: give it before the command (sysprep -q"),
        (["--sources", "2"], "--sources says where --connections are made from"),
        (["--sources", "0", "--connections", "5"], "invalid --sources 0: at least 1"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    fake: FakeHost, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Each bad input: exit 2, one line on stderr naming it, nothing on stdout."""
    assert run(check(fake, *args)) == ExitCode.BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("sysprep: error: ")
    assert message in captured.err


def test_a_crash_is_never_ready_or_not_ready(
    fake: FakeHost, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception exits 70 with its traceback, not 0 or 1."""
    import sysprep.report

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(sysprep.report, "check", explode)
    assert run(check(fake, "--json")) == ExitCode.INTERNAL
    assert "RuntimeError: boom" in capsys.readouterr().err


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """--help is not an error."""
    assert run(["check", "--help"]) == ExitCode.OK
    assert "--threads" in capsys.readouterr().out


def test_console_script_and_module_agree(fake: FakeHost) -> None:
    """`python -m sysprep` runs the same entry point and exit status."""
    completed = subprocess.run(
        [sys.executable, "-m", "sysprep", *check(fake, "--threads", "0")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == ExitCode.BAD_INPUT
    assert completed.stderr.startswith("sysprep: error: invalid thread count")


def test_check_json_path_stays_light(fake: FakeHost) -> None:
    """`check --json` imports neither rich, psutil nor pyroute2 (keeps check fast)."""
    code = (
        "import sys; from sysprep.cli import run;"
        f"status = run({check(fake, '--json')!r});"
        "heavy = sorted(m for m in ('rich', 'psutil', 'pyroute2') if m in sys.modules);"
        "print(heavy, file=sys.stderr); sys.exit(0 if not heavy else 99)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr


def test_unit_without_a_running_systemd_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """check --unit where systemd is not PID 1 (this project's VM): one line, exit 2."""
    if Path("/run/systemd/system").is_dir():
        pytest.skip("systemd runs here")
    assert run(["check", "--unit", "demo"]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        (
            "sysprep: error: --unit demo.service: systemd is not running here (no"
            " /run/systemd/system); judge the process with --pid, or run check where the"
            " service runs"
        )
    ]


def test_unit_and_pid_together_are_refused(
    fake: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """--unit names a service, --pid a process: one or the other."""
    assert run(["check", "--unit", "demo", "--pid", "1"]) == ExitCode.BAD_INPUT
    assert "give --unit or --pid, not both" in capsys.readouterr().err
    assert fake
