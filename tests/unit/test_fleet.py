"""sysprep fleet on generated documents: many hosts, stale ones, bad ones, other schemas,
explain and watch documents. (Documents of real check runs: tests/host/test_fleet.py.)"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING
from typing import Any

import pytest

from sysprep.cli import run
from sysprep.errors import ExitCode
from sysprep.fleet import judge
from sysprep.fleet import read_fleet
from sysprep.render.fleet import fleet_document
from tests.host.test_schemas import validate

if TYPE_CHECKING:
    from pathlib import Path

NOW = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_document(
    *, ready: bool = True, binding: str = "vm.max_map_count", current: int = 65530,
    capacity: int = 32000, checked_at: str = NOW, profile: tuple[str, bool] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A check --json document of the shape check writes, with what fleet reads."""
    fix = None if ready else {"setting": binding, "value": current * 40,
                              "now": f"sysctl -w {binding}={current * 40}"}  # fmt: skip
    document: dict[str, Any] = {
        "schema_version": 1,
        "ready": ready,
        "capacity": capacity,
        "binding": binding,
        "checked_at": checked_at,
        "limits": [
            {"name": "kernel.threads-max", "status": "ok", "current": 192730, "fix": None},
            {"name": binding, "status": "ok" if ready else "fails", "current": current,
             "fix": fix},
        ],
    }  # fmt: skip
    if profile is not None:
        document["profile"] = {"name": profile[0], "compliant": profile[1]}
    return document


def write(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def report_of(*paths: Path, max_age: float = 86400) -> dict[str, Any]:
    document = fleet_document(judge(read_fleet(list(paths)), max_age=max_age))
    validate("fleet", document)
    return document


def test_a_thousand_hosts_grouped_by_the_limit_that_binds(tmp_path: Path) -> None:
    """900 ready, 60 on vm.max_map_count at two values, 40 on kernel.pid_max: two groups,
    most hosts first, each with the fix of the host that needs the most; the smallest and
    median capacity; the profile's compliance counted."""
    for number in range(1000):
        if number < 900:
            document = check_document(capacity=100000 + number, profile=("es", number % 2 == 0))
        elif number < 960:
            current = 65530 if number < 930 else 131072
            document = check_document(ready=False, current=current, capacity=number)
        else:
            document = check_document(ready=False, binding="kernel.pid_max", current=32768,
                                      capacity=5000 + number)  # fmt: skip
        write(tmp_path / f"host-{number:04}.json", document)
    document = report_of(tmp_path)
    assert document["hosts"] == 1000
    assert len(document["ready"]) == 900
    maps, pid_max = document["not_ready"]
    assert (maps["limit"], len(maps["hosts"])) == ("vm.max_map_count", 60)
    assert (maps["lowest"], maps["highest"]) == (65530, 131072)
    assert maps["fix"] == f"sysctl -w vm.max_map_count={131072 * 40}"
    assert (pid_max["limit"], len(pid_max["hosts"])) == ("kernel.pid_max", 40)
    assert document["capacity"]["smallest"] == 900
    assert document["capacity"]["smallest_host"] == "host-0900"
    assert document["profiles"] == [{"name": "es", "compliant": 450, "judged": 900}]


def test_stale_documents_are_neither_ready_nor_not(tmp_path: Path) -> None:
    """checked_at older than --max-age; a document without it is as old as its file."""
    write(tmp_path / "fresh.json", check_document())
    write(tmp_path / "old.json", check_document(checked_at="2026-01-01T00:00:00Z"))
    undated = check_document()
    del undated["checked_at"]
    old_file = write(tmp_path / "undated.json", undated)
    os.utime(old_file, (time.time() - 7200, time.time() - 7200))
    document = report_of(tmp_path, max_age=3600)
    assert document["ready"] == ["fresh"]
    assert [s["host"] for s in document["stale"]] == ["old", "undated"]
    assert run(["fleet", str(tmp_path), "--max-age", "1h"]) == ExitCode.NOT_READY
    assert run(["fleet", str(tmp_path / "fresh.json"), "--max-age", "1h"]) == ExitCode.OK


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"ready": tru', "not JSON: "),
        (b"[1, 2]", "a JSON list, not a document"),
        (b'{"schema_version": 1, "hello": 1}', "not a check, explain or watch document"),
        (b'{"schema_version": 1, "ready": "yes", "limits": []}', "malformed: TypeError"),
        (b'{"schema_version": 1, "ready": false, "limits": [{"status": "fails"}]}',
         "malformed: KeyError"),
        (b"\xff\xfe", "not JSON: "),
        (b"[" * 100000 + b"]" * 100000, "not JSON: "),
    ],
)  # fmt: skip
def test_a_bad_document_is_one_line_and_the_report_goes_on(
    tmp_path: Path, content: bytes, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "good.json", check_document())
    (tmp_path / "bad.json").write_bytes(content)
    document = report_of(tmp_path)
    assert document["ready"] == ["good"]
    (bad,) = document["bad"]
    assert bad["reason"].startswith(reason), bad
    capsys.readouterr()
    assert run(["fleet", str(tmp_path)]) == ExitCode.OK  # every host it could read is ready
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("left out: ")] == [
        f"left out: {tmp_path / 'bad.json'}: {bad['reason']}"
    ]


def test_other_schema_versions_and_older_documents(tmp_path: Path) -> None:
    """A document of another schema version is named, not read; of two documents of one
    host (a "host" field names it), the newer counts and the older is named superseded."""
    write(tmp_path / "v2.json", {**check_document(), "schema_version": 2})
    write(tmp_path / "a.json", {**check_document(ready=False), "host": "db-1",
                                "checked_at": "2026-11-01T00:00:00Z"})  # fmt: skip
    write(tmp_path / "b.json", {**check_document(), "host": "db-1"})
    document = report_of(tmp_path, max_age=366 * 86400)
    assert document["other_schema"] == [{"source": str(tmp_path / "v2.json"),
                                         "schema_version": 2}]  # fmt: skip
    assert document["ready"] == ["db-1"]
    assert document["superseded"] == [{"host": "db-1", "source": str(tmp_path / "a.json")}]


def test_explain_and_watch_documents_where_they_fit(tmp_path: Path) -> None:
    """explain: hosts by the first cause's limit; watch: hosts whose tightest headroom is
    under the watch's --warn, by that limit."""
    cause = {"limit": "pids.max", "weight": 2, "evidence": [], "fix": None}
    write(tmp_path / "web-1/explain.json",
          {"schema_version": 1, "causes": [cause], "notes": [], "history": []})  # fmt: skip
    write(tmp_path / "web-2/explain.json",
          {"schema_version": 1, "causes": [], "notes": [], "history": []})  # fmt: skip
    low = {"limit": "RLIMIT_NPROC", "headroom_pct": 3.0}
    ok = {"limit": "kernel.pid_max", "headroom_pct": 80.0}
    write(tmp_path / "db-1/watch.json",
          {"schema_version": 1, "pid": 7, "warn_pct": 10.0, "limits": [ok, low]})  # fmt: skip
    document = report_of(tmp_path)
    assert document["explained"] == [{"limit": "pids.max", "hosts": ["web-1"]}]
    assert document["watched"] == [{"limit": "RLIMIT_NPROC", "hosts": ["db-1"]}]


def test_no_document_or_no_path_is_bad_input(tmp_path: Path) -> None:
    assert run(["fleet", str(tmp_path)]) == ExitCode.BAD_INPUT
    assert run(["fleet", str(tmp_path / "missing")]) == ExitCode.BAD_INPUT
    assert run(["fleet", str(tmp_path), "--max-age", "soon"]) == ExitCode.BAD_INPUT
