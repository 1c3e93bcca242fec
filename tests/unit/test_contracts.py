"""Contracts between the parts: probes name limits as check does, and render knows each probe."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from sysprep.facts import PROBES
from sysprep.facts import SPECIAL_STOPS
from sysprep.limits import ALL_LIMITS
from sysprep.limits.network import NETWORK_LIMITS
from sysprep.render.probe import print_probe

PROBES_DIR = Path(__file__).resolve().parents[2] / "probes"
CHECK_NAMES = {limit.name for limit in (*ALL_LIMITS, *NETWORK_LIMITS)}
# A string that reads like a limit name: a dotted sysctl, an rlimit, a cgroup file.
LIMIT_LIKE = re.compile(r"(RLIMIT_[A-Z]+|[a-z]+\.[a-z0-9_.-]+|CommitLimit)")


@pytest.mark.parametrize("name", sorted(PROBES))
def test_every_stop_a_probe_declares_is_a_check_limit(name: str) -> None:
    """Each stopped_by in the registry is a limit check reports, or a documented special."""
    assert PROBES[name].stops <= CHECK_NAMES | SPECIAL_STOPS


@pytest.mark.parametrize("name", sorted(PROBES))
def test_every_limit_name_in_a_probe_is_declared(name: str) -> None:
    """A limit-like string literal in a probe's source is one its registry entry declares, so
    a probe cannot start blaming a limit that check and the renderer do not know."""
    tree = ast.parse((PROBES_DIR / f"{name}.py").read_text())
    literals = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    limit_like = {text for text in literals if LIMIT_LIKE.fullmatch(text)}
    assert limit_like, "the pattern found no limit name at all: it no longer reads the probe"
    assert limit_like <= PROBES[name].stops


def test_connections_probe_is_told_in_connections(capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: the connections probe's report counts connections and their cost."""
    document = {
        "probe": "connections",
        "held": 300,
        "target": 300,
        "create_seconds": 0.01,
        "create_rate": 30000,
        "stopped_by": None,
        "per_connection_bytes": {"slab": 5120, "mem_available": 3380},
    }
    print_probe(document)
    out = capsys.readouterr().out
    assert "300 of 300 connections alive at once" in out
    assert "per connection: slab 5 KiB" in out
    assert "threads" not in out
