"""Pid namespaces on the real kernel (6.18: each has its own kernel.pid_max since 6.14).

Each test makes its namespace with `unshare --pid --fork --mount-proc`; the namespace dies
with its last process, and nothing else is left (no mount outlives the private one).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import psutil
import pytest

from sysprep.cli import run
from sysprep.probe_runner import probe_path

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.root

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]
SYSPREP = f"{sys.executable} -m sysprep"
PROBE = f"{sys.executable} -S {probe_path('threads')}"


def in_namespace(script: str) -> dict[str, Any]:
    """Run *script* (sh) in a new pid namespace; it prints JSON documents, one a line."""
    done = subprocess.run(
        [*UNSHARE, "sh", "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert lines, done.stderr
    return {"check": lines[0], **({"probe": lines[1]} if len(lines) > 1 else {})}


def compact(command: str) -> str:
    """A command whose JSON document is printed on one line."""
    one_line = "import json, sys; print(json.dumps(json.load(sys.stdin)))"
    return f"{command} | {sys.executable} -c '{one_line}'"


def test_check_knows_it_is_in_a_pid_namespace() -> None:
    """The initial namespaces: a host. unshare's: a container, with the evidence."""
    outside = subprocess.run(
        [sys.executable, "-m", "sysprep", "check", "--json", "--threads", "10"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(outside.stdout)["environment"]["kind"] == "host"
    inside = in_namespace(compact(f"{SYSPREP} check --json --threads 10"))["check"]
    assert inside["environment"]["kind"] == "container"
    assert inside["environment"]["evidence"][0].startswith("pid namespace ")


def test_the_namespaces_own_pid_max_is_predicted_within_1_percent() -> None:
    """pid_max 12345 in the namespace, far below the host's: check inside and the probe
    inside agree within 1 % and name kernel.pid_max (sysprep 0.1: 11,969 vs 12,338); the
    parent level cannot be read from inside, so the host is not called ready."""
    result = in_namespace(
        "echo 12345 > /proc/sys/kernel/pid_max && "
        + compact(f"{SYSPREP} check --json --stack 64K --threads 20000")
        + " && "
        + compact(f"{PROBE} --count 20000 --stack 65536 --json")
    )
    check, probe = result["check"], result["probe"]
    assert (check["binding"], probe["stopped_by"]) == ("kernel.pid_max", "kernel.pid_max")
    assert abs(probe["held"] - check["capacity"]) <= check["capacity"] / 100, (check, probe)
    parent = next(r for r in check["limits"] if r["name"] == "kernel.pid_max (parent namespaces)")
    assert parent["status"] == "unknown"
    assert check["ready"] is False


def test_the_probe_names_pid_max_when_the_hosts_ran_out(
    sysctls: Callable[[str, object], None],
) -> None:
    """The namespace's own pid_max is 4194304, the host's 9000: the probe stops at the
    host's and names kernel.pid_max, not "unknown" (sysprep 0.1)."""
    sysctls("kernel.pid_max", 9000)
    result = in_namespace(compact(f"{PROBE} --count 20000 --stack 65536 --json"))
    probe = result["check"]
    assert probe["stopped_by"] == "kernel.pid_max"
    assert 8000 < probe["held"] < 9000


# A process that becomes uid 100000, makes a user namespace, waits for its maps, then sleeps
# as that namespace's root: root of a container mapped from another uid than the host's root.
MAPPED_ROOT = """
import ctypes, os, sys
os.setgroups([]); os.setresgid(100000, 100000, 100000); os.setresuid(100000, 100000, 100000)
if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:  # CLONE_NEWUSER
    sys.exit(3)
print("ready", flush=True)
sys.stdin.readline()
os.execv("/bin/sleep", ["sleep", "60"])
"""


def test_root_of_a_user_namespace_mapped_from_another_uid_counts() -> None:
    """Root of a user namespace mapped from uid 100000 is not the kernel's root: check --pid
    of it counts it against RLIMIT_NPROC, and says other containers of that uid count too."""
    process = subprocess.Popen(
        [sys.executable, "-S", "-c", MAPPED_ROOT],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        assert process.stdout.readline().strip() == "ready"
        proc = Path(f"/proc/{process.pid}")
        (proc / "uid_map").write_text("0 100000 1\n")
        (proc / "setgroups").write_text("deny\n")
        (proc / "gid_map").write_text("0 100000 1\n")
        process.stdin.write("go\n")
        process.stdin.flush()
        time.sleep(0.3)  # the sleep it becomes
        done = subprocess.run(
            [sys.executable, "-m", "sysprep", "check", "--pid", str(process.pid), "--json",
             "--threads", "10"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        nproc = next(r for r in json.loads(done.stdout)["limits"] if r["name"] == "RLIMIT_NPROC")
        assert nproc["allows"] is not None  # counted, not "root is exempt"
        assert "the same uid's tasks in every other container count too" in nproc["note"]
    finally:
        process.kill()
        process.wait()


def test_in_a_container_host_wide_settings_are_the_hosts(tmp_path: Path) -> None:
    """A read-only /proc/sys in a mount namespace, as runtimes give containers: check's fix
    for vm.max_map_count says "on the host", and apply refuses up front (exit 1) and
    changes nothing."""
    etc, state = tmp_path / "etc-root", tmp_path / "state"
    etc.mkdir()
    sysprep = f"{SYSPREP} --etc-root {etc} --state-dir {state}"
    script = (
        "mount -o bind,ro /proc/sys /proc/sys && "
        + compact(f"{SYSPREP} check --json --threads 100000")
        + f" && {sysprep} apply elasticsearch --no-probe; echo $?"
    )
    done = subprocess.run(
        ["unshare", "--mount", *UNSHARE[1:], "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    check_line, status = done.stdout.strip().splitlines()
    check = json.loads(check_line)
    assert "/proc/sys is mounted read-only" in check["environment"]["evidence"]
    fix = next(r["fix"] for r in check["limits"] if r["name"] == "vm.max_map_count")
    assert fix["where"] == "host"
    assert fix["now"].startswith("on the host: sysctl -w vm.max_map_count=")
    assert status == "1"
    refusal = (
        "sysprep: error: vm.max_map_count is the host's, not this container's, and /proc/sys is"
        " read-only here: set it on the host (sysctl -w vm.max_map_count=262144), or apply"
        " from a privileged container in the host's user namespace (on Kubernetes:"
        " deploy/kubernetes, the apply overlay); nothing was changed"
    )
    assert done.stderr.strip().splitlines() == [refusal]
    assert not list(etc.rglob("*"))


@pytest.mark.parametrize(("outer", "inner"), [(12345, 30000), (30000, 12345)])
def test_nested_namespaces_from_the_host(
    outer: int, inner: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two pid namespaces, the tighter pid_max at each level in turn: `check --pid` from the
    host predicts the paused probe's threads within 1 %, and both name kernel.pid_max."""
    script = (
        f"echo {outer} > /proc/sys/kernel/pid_max && exec {' '.join(UNSHARE)} sh -c"
        f" 'echo {inner} > /proc/sys/kernel/pid_max && exec {PROBE} --count 40000"
        " --stack 65536 --wait --json'"
    )
    process = subprocess.Popen(
        [*UNSHARE, "sh", "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        assert json.loads(process.stderr.readline())["event"] == "ready"
        (probe,) = [
            child.pid
            for child in psutil.Process(process.pid).children(recursive=True)
            if child.cmdline()[:2] == [sys.executable, "-S"]
        ]
        capsys.readouterr()
        run(["check", "--pid", str(probe), "--stack", "64K", "--threads", "40000", "--json"])
        predicted = json.loads(capsys.readouterr().out)
        out, err = process.communicate("go\n", timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    held = json.loads(out)
    pid_max = next(r for r in predicted["limits"] if r["name"] == "kernel.pid_max")
    print(
        f"outer {outer}, inner {inner}: check --pid {predicted['capacity']}, held {held['held']}"
    )
    assert predicted["binding"] == held["stopped_by"] == "kernel.pid_max", (pid_max, err)
    assert abs(held["held"] - predicted["capacity"]) <= predicted["capacity"] / 100, pid_max
    level = 2 if inner < outer else 1
    assert f"(level {level} of 2): its own pid_max binds" in pid_max["note"]


def test_nested_check_inside_when_its_own_level_is_the_tighter() -> None:
    """Inside the inner of two namespaces, its own pid_max the tighter: check inside and
    the probe inside agree within 1 %; the outer level is reported unknown, not passed."""
    inner = (
        "echo 12345 > /proc/sys/kernel/pid_max && "
        + compact(f"{SYSPREP} check --json --stack 64K --threads 20000")
        + " && "
        + compact(f"{PROBE} --count 20000 --stack 65536 --json")
    )
    result = in_namespace(
        f'echo 30000 > /proc/sys/kernel/pid_max && exec {" ".join(UNSHARE)} sh -c "{inner}"'
    )
    check, probe = result["check"], result["probe"]
    assert (check["binding"], probe["stopped_by"]) == ("kernel.pid_max", "kernel.pid_max")
    assert abs(probe["held"] - check["capacity"]) <= check["capacity"] / 100
    parent = next(r for r in check["limits"] if r["name"] == "kernel.pid_max (parent namespaces)")
    assert parent["status"] == "unknown"


def test_a_profile_inside_a_pid_namespace_never_promises_the_hosts_pid_max() -> None:
    """Inside a pid namespace its own pid_max (4194304) shows, while the host's binds: check
    --profile says kernel.pid_max is unknown, promises no capacity after apply, and exits 1;
    apply --dry-run says apply would refuse it, naming hostPID."""
    documents = in_namespace(
        compact(f"{SYSPREP} check --profile million-threads --threads 100 --json")
        + "; "
        + compact(f"{SYSPREP} apply million-threads --dry-run --json")
    )
    profile = documents["check"]["profile"]
    pid_max = next(s for s in profile["settings"] if s["key"] == "kernel.pid_max")
    assert (pid_max["status"], pid_max["ok"]) == ("unknown", False)
    assert "hostPID" in pid_max["reason"]
    assert (profile["compliant"], profile["capacity_after"]) == (False, None)
    warnings = documents["probe"]["warnings"]
    assert any(w.startswith("apply would refuse: kernel.pid_max: inside a pid namespace")
               and "hostPID: true" in w for w in warnings)  # fmt: skip


def test_root_of_a_user_namespace_mapped_from_root_is_exempt_from_nproc() -> None:
    """In a user namespace whose uid 0 is the host's uid 0 (unshare --map-root-user by root),
    the kernel sees INIT_USER: RLIMIT_NPROC does not bind it, however low, and check says
    so (ulimit -u 50 here, far below the tasks root runs)."""
    script = compact(f"ulimit -u 50; {SYSPREP} check --json --threads 10")
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", *UNSHARE[1:], "sh", "-c", script],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    document = json.loads(done.stdout)
    nproc = next(r for r in document["limits"] if r["name"] == "RLIMIT_NPROC")
    assert (nproc["status"], nproc["note"]) == ("ok", "root is exempt"), nproc
