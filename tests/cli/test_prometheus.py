"""check --prometheus FILE: node_exporter's textfile format, parsed by Prometheus's own parser."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

from sysprep.cli import run
from sysprep.errors import ExitCode

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from tests.fakehost import FakeHost


def metrics(path: Path) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name → labels → value, as Prometheus reads the file."""
    return {
        family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
        for family in text_string_to_metric_families(path.read_text())
    }


def test_the_figures_are_checks(
    fake: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every limit's current, in use and headroom, and the capacity, as --json says them;
    unlimited is +Inf; written whole (no temp file left beside it)."""
    fake.set_sysctl("kernel.pid_max", 32768)
    out = tmp_path / "prom" / "sysprep.prom"
    out.parent.mkdir()
    code = run(["--root", str(fake.root), "check", "--json", "--prometheus", str(out)])
    assert code == ExitCode.NOT_READY
    document = json.loads(capsys.readouterr().out)
    found = metrics(out)
    labels = (("counts", "threads"), ("limit", "kernel.pid_max"), ("unit", ""))
    pid_max = next(r for r in document["limits"] if r["name"] == "kernel.pid_max")
    assert found["sysprep_limit_current"][labels] == pid_max["current"]
    assert found["sysprep_limit_in_use"][labels] == pid_max["in_use"]
    assert found["sysprep_limit_headroom"][labels] == pid_max["allows"]
    pids = (("counts", "threads"), ("limit", "pids.max"), ("unit", ""))
    assert math.isinf(found["sysprep_limit_headroom"][pids])
    assert found["sysprep_capacity"][()] == document["capacity"]
    assert found["sysprep_ready"][()] == 0
    assert found["sysprep_per_thread_bytes"][()] == document["per_thread_bytes"]
    assert [p.name for p in out.parent.iterdir()] == ["sysprep.prom"]


def test_an_unreadable_limit_is_nan(fake: FakeHost, tmp_path: Path) -> None:
    """A limit that could not be read is NaN: never a number a dashboard could trust."""
    (fake.root / "proc/sys/vm/max_map_count").unlink()
    out = tmp_path / "sysprep.prom"
    run(["--root", str(fake.root), "-q", "check", "--prometheus", str(out)])
    labels = (("counts", "threads"), ("limit", "vm.max_map_count"), ("unit", ""))
    assert math.isnan(metrics(out)["sysprep_limit_current"][labels])
