"""The Ansible role, run for real: ansible-core against localhost with a local connection.

sysprep is installed once into a temp virtualenv from this checkout; /etc and the state
directory go to a temp tree; conftest writes the sysctls back.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import read_sysctl

pytestmark = pytest.mark.root

CHECKOUT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
_RECAP = re.compile(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)")


class Role:
    """Runs the role with some variables; returns (changed, failed, output)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.venv = base / "venv"
        self.globals = ["--etc-root", str(base / "root"), "--state-dir", str(base / "state")]

    def run(self, *, check_mode: bool = False, **variables: object) -> tuple[int, int, str]:
        playbook = self.base / "playbook.yml"
        role_vars = {
            "sysprep_venv": str(self.venv),
            "sysprep_package": str(CHECKOUT),
            "sysprep_install": not self.venv.exists(),
            "sysprep_global_args": self.globals,
            "sysprep_probe": False,
            **variables,
        }
        play = [
            {
                "hosts": "localhost",
                "connection": "local",
                "gather_facts": False,
                "roles": [{"role": "sysprep", "vars": role_vars}],
            }
        ]
        playbook.write_text(json.dumps(play))  # JSON is YAML
        env = {
            **os.environ,
            "ANSIBLE_ROLES_PATH": str(CHECKOUT / "ansible/roles"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            # Discovery can pick a pyenv shim that does not run; use this interpreter.
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        }
        command = [
            str(PLAYBOOK),
            "-i",
            "localhost,",
            str(playbook),
            *(["--check"] if check_mode else []),
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, check=False, timeout=600
        )
        recap = _RECAP.search(done.stdout)
        assert recap is not None, done.stdout + done.stderr
        return int(recap[2]), int(recap[3]), done.stdout


@pytest.fixture(scope="module")
def role(tmp_path_factory: pytest.TempPathFactory) -> Role:
    if not PLAYBOOK.exists():
        pytest.skip("ansible-core is not installed (pip install -e '.[test]')")
    return Role(tmp_path_factory.mktemp("ansible"))


def test_check_passes_on_a_small_target(role: Role) -> None:
    """Installs sysprep from this checkout, checks 1,000 threads: ready, no failure."""
    _, failed, out = role.run(sysprep_action="check", sysprep_threads=1000)
    assert failed == 0, out  # "changed" counts the installation itself
    assert (role.venv / "bin/sysprep").exists()


def test_check_fails_with_the_binding_limit_and_fix(role: Role) -> None:
    """A million threads on stock limits: the play fails, naming the limit and the fix."""
    _, failed, out = role.run(sysprep_action="check", sysprep_threads=1000000)
    assert failed == 1
    assert "binding limit kernel.pid_max = 32768" in out
    assert "fix: sysctl -w kernel.pid_max=" in out


def test_apply_is_idempotent_and_reverts(role: Role) -> None:
    """Check mode changes nothing; apply changes once; the second apply reports no change;
    revert puts every value back and a second revert has nothing to do."""
    start = {key: read_sysctl(key) for key in ("kernel.pid_max", "vm.max_map_count")}
    assert role.run(check_mode=True, sysprep_action="apply")[:2] == (1, 0)
    assert read_sysctl("kernel.pid_max") == start["kernel.pid_max"]
    assert role.run(sysprep_action="apply")[:2] == (1, 0)
    assert int(read_sysctl("kernel.pid_max")) > int(start["kernel.pid_max"])
    assert role.run(sysprep_action="apply")[:2] == (0, 0)
    assert role.run(sysprep_action="revert")[:2] == (1, 0)
    assert {key: read_sysctl(key) for key in start} == start
    assert role.run(sysprep_action="revert")[:2] == (0, 0)
