"""The Ansible role, run for real: ansible-core against localhost with a local connection.

sysprep is installed into temp virtualenvs, from this checkout (as from an index) and from
a wheelhouse with no index; /etc, the state directory and the facts directory go to a temp
tree; conftest writes the sysctls back. ansible-lint's production profile is held too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import read_sysctl
from tests.conftest import require_tool

pytestmark = pytest.mark.root

CHECKOUT = Path(__file__).resolve().parents[2]
ROLES = CHECKOUT / "ansible/roles"
_RECAP = re.compile(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)")


class Played:
    """What a run of ansible-playbook did: the recap's counts and the whole output."""

    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        recap = _RECAP.search(done.stdout)
        assert recap is not None, done.stdout + done.stderr
        self.changed, self.failed = int(recap[2]), int(recap[3])
        self.output = done.stdout + done.stderr


class Role:
    """Runs the role against localhost with some variables."""

    def __init__(self, base: Path, **variables: object) -> None:
        self.base = base
        self.venv = base / "venv"
        self.facts = base / "facts.d"
        self.variables = {
            "sysprep_venv": str(self.venv),
            "sysprep_python": sys.executable,
            "sysprep_package": str(CHECKOUT),
            "sysprep_global_args": ["--etc-root", str(base / "root"), "--state-dir",
                                    str(base / "state")],
            "sysprep_facts_dir": str(self.facts),
            "sysprep_probe": False,
            **variables,
        }  # fmt: skip

    def run(
        self, *flags: str, then: list[dict[str, Any]] | None = None, **variables: object
    ) -> Played:
        """The role, with *flags* (--check, --diff) and *variables*; *then*: tasks of a
        second play on the same host, as a later play reads what the role left."""
        role_vars = {
            **self.variables,
            "sysprep_install": not (self.venv / "bin/sysprep").exists(),
            **variables,
        }
        plays: list[dict[str, Any]] = [
            {"hosts": "localhost", "connection": "local", "gather_facts": False,
             "roles": [{"role": "sysprep", "vars": role_vars}]},
        ]  # fmt: skip
        if then is not None:
            plays.append({"hosts": "localhost", "connection": "local", "gather_facts": True,
                          "module_defaults": {"ansible.builtin.setup": {
                              "fact_path": str(self.facts)}},
                          "tasks": then})  # fmt: skip
        playbook = self.base / "playbook.yml"
        playbook.write_text(json.dumps(plays))  # JSON is YAML
        done = subprocess.run(
            [require_tool("ansible-playbook"), "-i", "localhost,", str(playbook), *flags],
            capture_output=True, text=True, env=_environment(), check=False, timeout=600,
        )  # fmt: skip
        return Played(done)


def _environment() -> dict[str, str]:
    return {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(ROLES),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        # Discovery can pick a pyenv shim that does not run; use this interpreter.
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }


@pytest.fixture(scope="module")
def role(tmp_path_factory: pytest.TempPathFactory) -> Role:
    return Role(tmp_path_factory.mktemp("ansible"))


def test_check_passes_on_a_small_target(role: Role) -> None:
    """Installs sysprep from this checkout, checks 1,000 threads: ready, no failure."""
    played = role.run(sysprep_action="check", sysprep_threads=1000)
    assert played.failed == 0, played.output  # "changed" counts the installation itself
    assert (role.venv / "bin/sysprep").exists()


def test_check_fails_with_the_binding_limit_and_fix(role: Role) -> None:
    """A million threads on stock limits: the play fails, naming the limit and the fix."""
    played = role.run(sysprep_action="check", sysprep_threads=1000000)
    assert played.failed == 1
    assert "binding limit kernel.pid_max = 32768" in played.output
    assert "fix: sysctl -w kernel.pid_max=" in played.output


def test_apply_check_diff_idempotence_and_revert(role: Role) -> None:
    """Check mode changes nothing; with --diff it shows each setting before and after, and
    each line a drop-in gains; apply changes once; a second apply reports changed=0; revert
    puts every value back and a second revert has nothing to do."""
    start = {key: read_sysctl(key) for key in ("kernel.pid_max", "vm.max_map_count")}
    planned = role.run("--check", "--diff", sysprep_action="apply", sysprep_persist=True)
    assert (planned.changed, planned.failed) == (1, 0), planned.output
    assert read_sysctl("kernel.pid_max") == start["kernel.pid_max"]
    assert "--- before: now" in planned.output
    assert "+++ after: sysprep apply million-threads" in planned.output
    assert "-sysctl kernel.pid_max = 32768" in planned.output
    assert re.search(r"\+sysctl kernel\.pid_max = \d{7}", planned.output)
    assert re.search(r"\+/etc/sysctl\.d/90-sysprep\.conf: kernel\.pid_max = \d+", planned.output)
    applied = role.run(sysprep_action="apply")
    assert (applied.changed, applied.failed) == (1, 0), applied.output
    assert int(read_sysctl("kernel.pid_max")) > int(start["kernel.pid_max"])
    again = role.run(sysprep_action="apply")
    assert (again.changed, again.failed) == (0, 0), again.output
    reverted = role.run(sysprep_action="revert")
    assert (reverted.changed, reverted.failed) == (1, 0), reverted.output
    assert {key: read_sysctl(key) for key in start} == start
    assert role.run(sysprep_action="revert").changed == 0


def test_facts_for_the_plays_that_follow(role: Role) -> None:
    """facts installs an executable sysprep.fact; a later play reads ansible_local.sysprep:
    the check --json document, ready or not (not ready is a fact, not a failure). Absent
    removes it."""
    read = [{"name": "Read the fact", "ansible.builtin.debug": {"msg": (
        "ready={{ ansible_local.sysprep.ready }} capacity={{ ansible_local.sysprep.capacity }}"
        " binding={{ ansible_local.sysprep.binding }}")}}]  # fmt: skip
    played = role.run(sysprep_action="facts", sysprep_threads=1000000, then=read)
    assert played.failed == 0, played.output
    fact = role.facts / "sysprep.fact"
    assert fact.stat().st_mode & 0o777 == 0o755
    assert re.search(r"ready=False capacity=\d+ binding=kernel\.pid_max", played.output)
    again = role.run(sysprep_action="facts", sysprep_threads=1000000)
    assert again.changed == 0, again.output
    removed = role.run(sysprep_action="facts", sysprep_facts_state="absent")
    assert (removed.changed, removed.failed) == (1, 0)
    assert not fact.exists()


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"sysprep_action": "upgrade"}, "value of sysprep_action must be one of: check, apply,"),
        ({"sysprep_threads": "lots"}, "sysprep_threads"),
        ({"sysprep_source": "ftp"}, "value of sysprep_source must be one of: index,"),
        ({"sysprep_global_args": "--state-dir /srv"},
         "sysprep_global_args must be a list, e.g."),
    ],
)  # fmt: skip
def test_argument_specs_refuse_a_bad_variable(
    role: Role, variables: dict[str, object], message: str
) -> None:
    """A wrong choice or type fails the play before any task of the role runs."""
    played = role.run(sysprep_install=True, **variables)
    assert played.failed == 1
    assert message in played.output, played.output
    assert "TASK [sysprep : Install sysprep" not in played.output


def test_install_from_a_wheelhouse_without_an_index(tmp_path: Path) -> None:
    """The wheels of sysprep and what it needs, made here; the role copies them to the host
    and installs with --no-index: an air-gapped host."""
    wheels = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels),
         str(CHECKOUT)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    offline = Role(tmp_path / "role", sysprep_source="wheelhouse",
                   sysprep_wheelhouse=str(wheels))  # fmt: skip
    (tmp_path / "role").mkdir()
    played = offline.run(sysprep_action="check", sysprep_threads=1000)
    assert played.failed == 0, played.output
    assert (offline.venv / "bin/sysprep").exists()
    assert list((tmp_path / "role/venv-wheels").glob("sysprep-*.whl"))


def test_ansible_lint_production_profile() -> None:
    """ansible-lint's strictest profile passes on the role (ansible/.ansible-lint)."""
    done = subprocess.run(
        [require_tool("ansible-lint"), "roles/sysprep"],
        capture_output=True, text=True, check=False, cwd=CHECKOUT / "ansible",
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
             "NO_COLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Profile 'production' was required, and it passed" in done.stdout + done.stderr
