"""sysprep fleet on documents real `check --json` runs wrote, with limits lowered each a
different way, as a fleet's hosts would differ."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.host.test_schemas import validate

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.root

TARGET = ("--threads", "20000", "--stack", "64K")


def checked(directory: Path, host: str, *args: str, prefix: tuple[str, ...] = ()) -> None:
    """`check --json` on this host, kept as DIRECTORY/HOST/check.json (Ansible's fetch)."""
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "sysprep", "check", "--json", *TARGET, *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    (directory / host).mkdir(parents=True)
    (directory / host / "check.json").write_text(done.stdout)


def fleet(*args: str) -> tuple[int, dict[str, object], str]:
    command = [sys.executable, "-m", "sysprep", "fleet", *args]
    document = subprocess.run([*command, "--json"], capture_output=True, text=True, check=False)
    text = subprocess.run(command, capture_output=True, text=True, check=False)
    assert document.returncode == text.returncode, text.stderr
    return document.returncode, json.loads(document.stdout), text.stdout


def test_hosts_grouped_by_what_binds_them(
    tmp_path: Path, sysctls: Callable[[str, object], None], pids_cgroup: Path
) -> None:
    """Five hosts: two with vm.max_map_count lowered (to 20,000 and 30,000), one with
    kernel.threads-max lowered, one in a pids cgroup of 5,000, one ready. The report groups
    the four by the limit that binds, with each group's fix, and counts the ready one."""
    fetched = tmp_path / "fetched"
    checked(fetched, "ready-1")
    sysctls("vm.max_map_count", 20000)
    checked(fetched, "maps-1")
    sysctls("vm.max_map_count", 30000)
    checked(fetched, "maps-2")
    sysctls("vm.max_map_count", 65530)
    sysctls("kernel.threads-max", 10000)
    checked(fetched, "threads-1")
    sysctls("kernel.threads-max", 192730)
    (pids_cgroup / "pids.max").write_text("5000\n")
    join = f'echo $$ > {pids_cgroup}/cgroup.procs && exec "$0" "$@"'
    checked(fetched, "pids-1", prefix=("sh", "-c", join))
    status, document, text = fleet(str(fetched))
    validate("fleet", document)
    assert status == 1
    assert document["hosts"] == 5
    assert document["ready"] == ["ready-1"]
    groups = {g["limit"]: g for g in document["not_ready"]}  # type: ignore[attr-defined]
    assert groups["vm.max_map_count"]["hosts"] == ["maps-1", "maps-2"]
    assert (groups["vm.max_map_count"]["lowest"], groups["vm.max_map_count"]["highest"]) == (
        20000, 30000,
    )  # fmt: skip
    assert groups["vm.max_map_count"]["fix"].startswith("sysctl -w vm.max_map_count=")
    assert groups["kernel.threads-max"]["hosts"] == ["threads-1"]
    assert groups["pids.max"]["hosts"] == ["pids-1"]
    assert groups["pids.max"]["fix"].startswith("echo ")
    capacity = document["capacity"]
    assert capacity["smallest_host"] in ("threads-1", "pids-1")  # type: ignore[index]
    assert "2 hosts: vm.max_map_count = 20,000 to 30,000 → sysctl -w vm.max_map_count=" in text
    assert text.startswith("5 hosts: 1 ready, 4 not ready, 0 stale")
