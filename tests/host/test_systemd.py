"""check --unit against a real systemd (tests/realsystemd.py boots it, as REAL-HOSTS.md says)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sysprep.probe_runner import probe_path
from tests import programs
from tests.host.test_schemas import validate
from tests.nobody import run_as_nobody

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator

    from tests.fakehost import FakeHost
    from tests.realsystemd import Systemd

pytestmark = pytest.mark.root

SYSTEM_PYTHON = "/usr/bin/python3"


def _unit(systemd: Systemd, name: str, body: str) -> None:
    path = systemd.run_path(f"systemd/system/{name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    assert systemd.run("systemctl", "daemon-reload").returncode == 0


def test_no_such_unit_is_one_line(systemd: Systemd) -> None:
    """A unit systemd does not know: one line, exit 2."""
    done = systemd.run(*systemd.sysprep_command("check", "--unit", "nope"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["sysprep: error: no unit nope.service (not-found)"]


def test_a_stopped_unit_is_judged_by_its_tasks_max_as_the_probe_run_as_it_finds(
    systemd: Systemd,
) -> None:
    """A service not running, TasksMax=1234 and LimitSTACK=256K: check --unit predicts what
    the threads probe, run as that very unit, holds (within 1 %), and names pids.max."""
    probe = systemd.run_path("probe-threads.py")
    shutil.copyfile(probe_path("threads"), probe)
    properties = "TasksMax=1234\nLimitSTACK=262144\nLimitNPROC=100000\n"
    _unit(systemd, "sp-app.service", f"[Service]\n{properties}ExecStart=/bin/true\n")
    check = systemd.sysprep("check", "--unit", "sp-app", "--threads", "5000", "--json")
    validate("check", check)
    assert check["unit"]["running"] is False
    assert check["target"]["stack_bytes"] == 262144  # LimitSTACK soft, as glibc takes it
    assert check["binding"] == "pids.max"
    pids = next(r for r in check["limits"] if r["name"] == "pids.max")
    assert pids["note"] == "sp-app.service: TasksMax=1,234 in the unit"
    assert pids["fix"]["persist"].startswith(
        "[Service] TasksMax=5001 in /etc/systemd/system/sp-app.service.d/90-sysprep.conf"
    )
    _unit(
        systemd,
        "sp-probe.service",
        f"[Service]\nType=oneshot\n{properties}StandardOutput=file:/run/probe.json\n"
        f"ExecStart={SYSTEM_PYTHON} -S /run/probe-threads.py --count 5000 --json\n",
    )
    systemd.run("systemctl", "start", "sp-probe.service", timeout=120)
    held = json.loads(systemd.run_path("probe.json").read_text())
    assert held["stopped_by"] == "pids.max"
    assert abs(held["held"] - check["capacity"]) <= check["capacity"] / 100, (check, held)


def test_a_running_unit_is_judged_through_its_main_pid(systemd: Systemd) -> None:
    """A running service: its main pid's cgroup (TasksMax=777) and rlimits, named so."""
    started = systemd.run(
        "systemd-run", "--unit=sp-running", "-p", "TasksMax=777", "-p", "LimitNPROC=5555",
        "/bin/sleep", "300",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    check = systemd.sysprep("check", "--unit", "sp-running.service", "--json", "--threads", "999")
    validate("check", check)
    assert check["unit"]["running"] is True
    assert check["target"]["pid"] == check["unit"]["main_pid"]
    pids = next(r for r in check["limits"] if r["name"] == "pids.max")
    assert (pids["current"], pids["status"]) == (777, "fails")
    assert pids["note"] == "sp-running.service: TasksMax=777 in the unit"
    nproc = next(r for r in check["limits"] if r["name"] == "RLIMIT_NPROC")
    assert nproc["current"] == 5555


def test_the_probe_runs_as_the_unit(systemd: Systemd) -> None:
    """`probe threads --unit`: a transient service with the unit's properties holds what
    check --unit predicts (within 1 %), stopped by the same limit."""
    _unit(systemd, "sp-probed.service", "[Service]\nTasksMax=2345\nExecStart=/bin/true\n")
    check = systemd.sysprep("check", "--unit", "sp-probed", "--threads", "9000", "--json")
    done = systemd.run(
        *systemd.sysprep_command(
            "probe", "threads", "--unit", "sp-probed", "--count", "9000", "--stack", "64K",
            "--json",
        )
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    held = json.loads(done.stdout)
    assert (check["binding"], held["stopped_by"]) == ("pids.max", "pids.max")
    assert abs(held["held"] - check["capacity"]) <= check["capacity"] / 100, (check, held)


UNIT_PROFILE = """
description = "a service's own limits"
[target]
threads = 20000
[unit]
TasksMax = "auto"
LimitNOFILE = { soft = 16384, hard = 16384 }
LimitSTACK = "256K"
"""


def _state(systemd: Systemd, unit: str) -> tuple[dict[str, str], bool]:
    shown = systemd.run(
        "systemctl", "show", unit, "--property=TasksMax,LimitNOFILE,LimitNOFILESoft,LimitSTACK"
    ).stdout
    drop_in = Path(f"/etc/systemd/system/{unit}.d")
    return dict(line.split("=", 1) for line in shown.split()), drop_in.exists()


@pytest.fixture
def unit_profile(systemd: Systemd) -> Iterator[Path]:
    """The profile in the namespace's /run; the real /etc drop-in removed whatever happens."""
    profile = systemd.run_path("unit-profile.toml")
    profile.write_text(UNIT_PROFILE)
    _unit(systemd, "sp-tuned.service", "[Service]\nTasksMax=1234\nExecStart=/bin/true\n")
    yield Path("/run/unit-profile.toml")
    shutil.rmtree("/etc/systemd/system/sp-tuned.service.d", ignore_errors=True)


def test_apply_unit_sets_its_drop_in_and_revert_takes_it_back(
    systemd: Systemd, unit_profile: Path
) -> None:
    """apply --unit writes the unit's drop-in (systemd reads the values back), revert puts
    /etc and the properties back exactly."""
    options = ["--state-dir", "/run/sysprep-state"]
    start = _state(systemd, "sp-tuned.service")
    applied = systemd.run(
        *systemd.sysprep_command(
            *options, "apply", str(unit_profile), "--unit", "sp-tuned", "--no-probe", "--json"
        )
    )
    assert applied.returncode == 0, applied.stderr
    document = json.loads(applied.stdout)
    (drop_in,) = document["files"]
    assert drop_in["path"] == "/etc/systemd/system/sp-tuned.service.d/90-sysprep.conf"
    assert drop_in["action"] == "create"
    assert {"before": None, "after": "TasksMax=20480"} in drop_in["lines"]
    tuned, exists = _state(systemd, "sp-tuned.service")
    assert exists
    assert (tuned["TasksMax"], tuned["LimitNOFILESoft"]) == ("20480", "16384")
    assert tuned["LimitSTACK"] == start[0]["LimitSTACK"]  # infinity already: raise-only keeps it
    reverted = systemd.run(*systemd.sysprep_command(*options, "revert"))
    assert reverted.returncode == 0, reverted.stderr
    assert _state(systemd, "sp-tuned.service") == start


def test_kill_9_during_a_unit_apply_then_revert(systemd: Systemd, unit_profile: Path) -> None:
    """SIGKILL right after the drop-in is written: revert takes it back and reloads."""
    options = ["--state-dir", "/run/sysprep-state-kill"]
    start = _state(systemd, "sp-tuned.service")
    fault = "SYSPREP_TEST_FAULT=after-write-1:SIGKILL"
    killed = subprocess.run(
        ["nsenter", "-t", str(systemd.pid), "-a", "env", fault,
         *systemd.sysprep_command(
             *options, "apply", str(unit_profile), "--unit", "sp-tuned", "--no-probe"
         )],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert _state(systemd, "sp-tuned.service")[1]
    reverted = systemd.run(*systemd.sysprep_command(*options, "revert"))
    assert reverted.returncode == 0, reverted.stderr
    assert _state(systemd, "sp-tuned.service") == start


def test_a_normal_user_checks_a_unit_but_cannot_apply_to_it(
    systemd: Systemd, unit_profile: Path
) -> None:
    """uid 65534: check --unit works (systemctl show needs no privilege); apply exits 3."""
    inside = ["nsenter", "-t", str(systemd.pid), "-a"]
    checked = run_as_nobody(
        ["check", "--unit", "sp-tuned", "--json"], prefix=inside, path=systemd.python_path
    )
    assert checked.returncode in (0, 1), checked.stderr
    assert json.loads(checked.stdout)["unit"]["tasks_max"] == 1234
    refused = run_as_nobody(
        ["--state-dir", "/run/sysprep-nobody", "apply", str(unit_profile), "--unit", "sp-tuned"],
        prefix=inside,
        path=systemd.python_path,
    )
    assert refused.returncode == 3, refused.stderr
    assert not Path("/etc/systemd/system/sp-tuned.service.d").exists()


def test_a_stopped_jvm_service_is_recognised_and_predicted(systemd: Systemd) -> None:
    """A JVM service not running yet: check --unit reads its runtime from ExecStart, its
    -Xss from Environment=, counts the JVM's own threads, and predicts what the JVM then
    holds under the unit's TasksMax (within 1 %), naming pids.max."""
    if programs.missing("jvm"):
        pytest.skip(programs.missing("jvm"))
    command = programs.build("jvm", systemd.run_path("hold-jvm"))
    java = shutil.which("java")
    assert java is not None
    options = " ".join(arg for arg in command[1:] if arg.startswith("-XX:"))
    exec_start = f"{java} {options} -cp /run/hold-jvm Hold 100000"
    _unit(
        systemd,
        "sp-jvm.service",
        "[Service]\nType=oneshot\nTasksMax=1500\nLimitNPROC=100000\n"
        'Environment="JAVA_TOOL_OPTIONS=-Xss384k"\n'
        "StandardOutput=file:/run/hold.out\nStandardError=file:/run/hold.err\n"
        f"ExecStart={exec_start}\n",
    )
    check = systemd.sysprep("check", "--unit", "sp-jvm", "--threads", "5000", "--json")
    validate("check", check)
    runtime = check["target"]["runtime"]
    assert (runtime["name"], runtime["chosen"]) == ("jvm", "detected")
    assert runtime["evidence"] == f"ExecStart of sp-jvm.service is {java}"
    assert runtime["stack_source"] == "-Xss384k in JAVA_TOOL_OPTIONS"
    assert check["target"]["stack_bytes"] == 384 * 1024
    assert check["binding"] == "pids.max"
    systemd.run("systemctl", "start", "sp-jvm.service", timeout=120)
    held = programs.parse(
        systemd.run_path("hold.out").read_text(), systemd.run_path("hold.err").read_text()
    ).held
    print(f"stopped JVM unit: check {check['capacity']}, the JVM held {held}")
    assert abs(held - check["capacity"]) <= check["capacity"] / 100, (check["capacity"], held)


def test_a_second_apply_keeps_the_firsts_unit_values(systemd: Systemd) -> None:
    """Two profiles applied in turn to one service's drop-in, which someone else already
    wrote an Environment= line in: LimitNOFILE of the first stays beside TasksMax of the
    second (systemd reads both back), the other line stays, and the two reverts, oldest
    first, leave the drop-in and the properties as they were."""
    options = ["--state-dir", "/run/sysprep-state-two"]
    _unit(systemd, "sp-two.service", "[Service]\nExecStart=/bin/true\n")
    drop_in = Path("/etc/systemd/system/sp-two.service.d/90-sysprep.conf")
    try:
        drop_in.parent.mkdir(parents=True)
        drop_in.write_text("[Service]\nEnvironment=FROM_SOMEONE=1\n")
        assert systemd.run("systemctl", "daemon-reload").returncode == 0
        start = _state(systemd, "sp-two.service"), drop_in.read_bytes()
        first = systemd.run_path("nofile.toml")
        first.write_text("[target]\nthreads = 100\n[unit]\nLimitNOFILE = 16384\n")
        second = systemd.run_path("tasks.toml")
        second.write_text("[target]\nthreads = 100\n[unit]\nTasksMax = 50000\n")
        ids = []
        for profile in ("/run/nofile.toml", "/run/tasks.toml"):
            done = systemd.run(*systemd.sysprep_command(
                *options, "apply", profile, "--unit", "sp-two", "--no-probe", "--json"
            ))  # fmt: skip
            assert done.returncode == 0, done.stderr
            ids.append(json.loads(done.stdout)["snapshot"])
        shown, _ = _state(systemd, "sp-two.service")
        assert (shown["LimitNOFILESoft"], shown["TasksMax"]) == ("16384", "50000")
        assert "Environment=FROM_SOMEONE=1" in drop_in.read_text().splitlines()
        for snapshot in ids:  # the oldest first: revert ID, then the last
            done = systemd.run(*systemd.sysprep_command(*options, "revert", snapshot))
            assert done.returncode == 0, done.stderr
        assert (_state(systemd, "sp-two.service"), drop_in.read_bytes()) == start
    finally:
        shutil.rmtree(drop_in.parent, ignore_errors=True)
        systemd.run("systemctl", "daemon-reload")


def test_a_failed_restart_gives_the_service_back(systemd: Systemd) -> None:
    """apply --unit --restart whose new limits make the service fail to start: the drop-in
    is rolled back, the service restarted with its former settings, and the one line says
    so with its state: active again, as it was."""
    _unit(
        systemd,
        "sp-picky.service",
        "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        "ExecStart=/bin/sh -c 'test $(ulimit -n) -lt 5000'\n",
    )
    assert systemd.run("systemctl", "start", "sp-picky").returncode == 0
    profile = systemd.run_path("picky.toml")
    profile.write_text("[target]\nthreads = 100\n[unit]\nLimitNOFILE = 16384\n")
    options = ["--state-dir", "/run/sysprep-state-picky"]
    try:
        done = systemd.run(*systemd.sysprep_command(
            *options, "apply", "/run/picky.toml", "--unit", "sp-picky", "--restart", "--no-probe"
        ))  # fmt: skip
        assert done.returncode == 1, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith("sysprep: error: apply picky failed: systemctl restart")
        assert line.endswith(
            "rolled back every change; sp-picky.service restarted with its former settings: active"
        )
        assert systemd.run("systemctl", "is-active", "sp-picky").stdout.strip() == "active"
        assert not Path("/etc/systemd/system/sp-picky.service.d/90-sysprep.conf").exists()
    finally:
        shutil.rmtree("/etc/systemd/system/sp-picky.service.d", ignore_errors=True)


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("LimitNOFILE = 3000000000", "is out of range [1, 2147483584]"),
        ("LimitNOFILE = 2000000000", "is more than systemd can give sp-bounded.service here"),
        ("TasksMax = 99999999", "is out of range [1, 4194304]"),
        ('LimitSTACK = "18446744073709551615"', "is out of range [1, 9223372036854775807]"),
    ],
)
def test_unit_values_past_what_systemd_can_give_are_refused(
    systemd: Systemd, entry: str, why: str
) -> None:
    """Past the kernel's bound, or past PID 1's own hard limit (this VM's systemd lacks
    CAP_SYS_RESOURCE: it would set a lower limit than the unit had), a [unit] value is one
    line, exit 2, and no drop-in."""
    _unit(systemd, "sp-bounded.service", "[Service]\nExecStart=/bin/true\n")
    systemd.run_path("bounded.toml").write_text(f"[target]\nthreads = 100\n[unit]\n{entry}\n")
    done = systemd.run(*systemd.sysprep_command(
        "--state-dir", "/run/sysprep-state-bounded", "apply", "/run/bounded.toml",
        "--unit", "sp-bounded", "--no-probe",
    ))  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert why in done.stderr
    assert done.stderr.count("\n") == 1
    assert not Path("/etc/systemd/system/sp-bounded.service.d").exists()


def test_quoted_numbers_are_numbers_in_the_unit_table(fake: FakeHost) -> None:
    """TasksMax = "5000" reads as 5000, as a [sysctl] value does."""
    from sysprep.profile import load

    profile = fake.root / "quoted.toml"
    profile.write_text('[target]\nthreads = 10\n[unit]\nTasksMax = "5000"\n')
    (want,) = load(str(profile), fake.host).wants
    assert want.value == 5000


def test_default_tasks_max_takes_effect_and_revert_puts_the_manager_back(
    systemd: Systemd,
) -> None:
    """apply --persist of a [unit] TasksMax without --unit: the manager's DefaultTasksMax is
    raised at once (sysprep reloads it, and says so), and revert puts it back at once."""
    options = ["--state-dir", "/run/sysprep-state-default"]
    before = systemd.run("systemctl", "show", "-p", "DefaultTasksMax").stdout.strip()
    systemd.run_path("default.toml").write_text(
        "[target]\nthreads = 100\n[unit]\nTasksMax = 60000\n"
    )
    written = [Path("/etc/systemd/system.conf.d"), Path("/etc/systemd/system/user-.slice.d")]
    made = [d for d in written if not d.exists()]
    try:
        done = systemd.run(*systemd.sysprep_command(
            *options, "apply", "/run/default.toml", "--persist", "--no-probe"
        ))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "takes effect now (sysprep reloads systemd)" in done.stdout
        shown = systemd.run("systemctl", "show", "-p", "DefaultTasksMax").stdout.strip()
        assert shown == "DefaultTasksMax=60000"
        reverted = systemd.run(*systemd.sysprep_command(*options, "revert"))
        assert reverted.returncode == 0, reverted.stderr
        assert systemd.run("systemctl", "show", "-p", "DefaultTasksMax").stdout.strip() == before
    finally:
        for directory in made:
            shutil.rmtree(directory, ignore_errors=True)
        systemd.run("systemctl", "daemon-reload")


def test_a_dynamic_user_service_is_judged_stopped(systemd: Systemd) -> None:
    """DynamicUser=yes: its user is made when it starts. Stopped, it is checked (no task of
    that user runs yet: RLIMIT_NPROC counts none), explained and tuned like any service."""
    _unit(
        systemd,
        "sp-dyn.service",
        "[Service]\nDynamicUser=yes\nUser=sp-dyn-user\nLimitNPROC=500\nExecStart=/bin/true\n",
    )
    check = systemd.sysprep("check", "--unit", "sp-dyn", "--threads", "100", "--json")
    validate("check", check)
    assert check["unit"]["uid"] is None
    nproc = next(r for r in check["limits"] if r["name"] == "RLIMIT_NPROC")
    assert (nproc["in_use"], nproc["allows"]) == (0, 500)
    assert "dynamic user" in nproc["note"]
    explained = systemd.run(*systemd.sysprep_command("explain", "--unit", "sp-dyn"))
    assert explained.returncode in (0, 1), explained.stderr
    systemd.run_path("dyn.toml").write_text("[target]\nthreads = 100\n[unit]\nTasksMax = 40000\n")
    try:
        done = systemd.run(*systemd.sysprep_command(
            "--state-dir", "/run/sysprep-state-dyn", "apply", "/run/dyn.toml", "--unit", "sp-dyn",
            "--no-probe",
        ))  # fmt: skip
        assert done.returncode == 0, done.stderr
        reverted = systemd.run(*systemd.sysprep_command("--state-dir", "/run/sysprep-state-dyn",
                                                        "revert"))  # fmt: skip
        assert reverted.returncode == 0, reverted.stderr
    finally:
        shutil.rmtree("/etc/systemd/system/sp-dyn.service.d", ignore_errors=True)


def test_a_small_tasks_max_is_predicted_exactly(systemd: Systemd) -> None:
    """TasksMax=20: the service's main process is its first task, so check --unit says 19
    more threads, and the probe run as that unit holds 19 (once it said 20)."""
    _unit(systemd, "sp-small.service", "[Service]\nTasksMax=20\nExecStart=/bin/true\n")
    check = systemd.sysprep("check", "--unit", "sp-small", "--threads", "500", "--json")
    done = systemd.run(*systemd.sysprep_command(
        "probe", "threads", "--unit", "sp-small", "--count", "500", "--stack", "64K", "--json"
    ))  # fmt: skip
    held = json.loads(done.stdout)
    assert (check["binding"], held["stopped_by"]) == ("pids.max", "pids.max")
    assert check["capacity"] == held["held"] == 19


def test_an_argument_with_a_space_hides_no_later_xss(systemd: Systemd) -> None:
    """ExecStart=/usr/bin/java "-Dname=a b" -Xss256k ...: systemctl show would split the
    quoted argument; the argv read over D-Bus keeps it whole, and -Xss256k is found."""
    _unit(
        systemd,
        "sp-spaced.service",
        '[Service]\nExecStart=/usr/bin/java "-Dname=a b" -Xss256k -jar app.jar\n',
    )
    check = systemd.sysprep("check", "--unit", "sp-spaced", "--threads", "10", "--json")
    runtime = check["target"]["runtime"]
    assert (runtime["name"], runtime["stack_source"]) == ("jvm", "-Xss256k in its command line")
    assert check["target"]["stack_bytes"] == 256 * 1024


def test_a_killed_sysprep_takes_its_probe_unit_along(
    systemd: Systemd, sysctls: Callable[[str, object], None]
) -> None:
    """kill -9 of `sysprep probe threads --unit` mid-run (160,000 threads take it about four
    seconds to create): the transient service it started, systemd's child and not its own,
    notices, releases what it made and ends within two seconds, long before it would have
    finished."""
    sysctls("vm.max_map_count", 400000)  # and pids and tasks for them, beside the host's own
    sysctls("kernel.pid_max", 400000)
    sysctls("kernel.threads-max", 400000)
    _unit(systemd, "sp-long.service", "[Service]\nTasksMax=infinity\nExecStart=/bin/true\n")
    probing = subprocess.Popen(
        ["nsenter", "-t", str(systemd.pid), "-a", *systemd.sysprep_command(
            "probe", "threads", "--unit", "sp-long", "--count", "160000", "--stack", "64K",
            "--json")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip

    def probe_units() -> list[str]:
        listed = systemd.run("systemctl", "list-units", "--no-legend", "sysprep-probe-*")
        return listed.stdout.split()

    deadline = time.monotonic() + 20
    while not probe_units():
        assert time.monotonic() < deadline, "the probe's unit never started"
        time.sleep(0.1)
    time.sleep(0.3)
    os.killpg(probing.pid, signal.SIGKILL)  # nsenter and sysprep under it, as kill -9 would
    probing.wait()
    deadline = time.monotonic() + 2.0
    while probe_units():
        assert time.monotonic() < deadline, f"the probe's unit outlived sysprep: {probe_units()}"
        time.sleep(0.05)
