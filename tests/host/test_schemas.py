"""Every --json output validates against its schema in sysprep/schemas (shipped with sysprep)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import jsonschema
import pytest

import sysprep
from sysprep.cli import run
from sysprep.errors import ExitCode
from tests.host.test_apply import Tree

if TYPE_CHECKING:
    from tests.fakehost import FakeHost

SCHEMAS = Path(sysprep.__file__).parent / "schemas"


def validate(name: str, document: dict[str, Any]) -> None:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


def output(
    capsys: pytest.CaptureFixture[str], args: list[str], codes: tuple[int, ...]
) -> dict[str, Any]:
    capsys.readouterr()
    assert run(args) in codes
    return dict(json.loads(capsys.readouterr().out))


def test_every_schema_is_a_valid_schema() -> None:
    """Eleven schemas, one per --json document, each valid JSON Schema 2020-12."""
    names = sorted(p.name for p in SCHEMAS.glob("*.schema.json"))
    assert len(names) == 11
    for path in SCHEMAS.glob("*.schema.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--threads", "10"],
        ["--connections", "5000"],
        ["--connections", "5000", "--sources", "2"],
        ["--profile", "million-threads"],
        ["--threads", "100", "--connections", "100"],
    ],
)
def test_check_on_fake_hosts(
    fake: FakeHost, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    """check --json, with each optional part, matches check.schema.json."""
    document = output(capsys, ["--root", str(fake.root), "check", *args, "--json"], (0, 1))
    validate("check", document)


def test_unknown_limit_still_matches(fake: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable limit (nulls everywhere) is still a valid document."""
    (fake.root / "proc/sys/kernel/pid_max").unlink()
    validate("check", output(capsys, ["--root", str(fake.root), "check", "--json"], (1,)))


@pytest.mark.root
def test_check_on_this_host_with_links(capsys: pytest.CaptureFixture[str]) -> None:
    """On the real host, --connections adds links read over netlink."""
    document = output(capsys, ["check", "--connections", "1000", "--json"], (0, 1))
    assert document["links"]
    validate("check", document)


@pytest.mark.root
def test_apply_revert_snapshots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The plan, apply, snapshots and revert documents on the real kernel."""
    tree = Tree(tmp_path)
    validate(
        "apply",
        output(
            capsys,
            [*tree.options, "apply", "million-connections", "--dry-run", "--persist", "--json"],
            (0,),
        ),
    )
    validate(
        "apply",
        output(
            capsys,
            [*tree.options, "apply", "elasticsearch", "--persist", "--no-probe", "--json"],
            (0,),
        ),
    )
    validate("snapshots", output(capsys, [*tree.options, "snapshots", "--json"], (0,)))
    validate("revert", output(capsys, [*tree.options, "revert", "--json"], (0,)))


@pytest.mark.root
@pytest.mark.parametrize(
    ("probe", "args"),
    [
        ("threads", ["--count", "300"]),
        ("threads", ["--count", "300", "--mode", "seed"]),
        ("maps", ["--count", "1000"]),
        ("connections", ["--count", "300"]),
        ("connections", ["--count", "300", "--server", "threads"]),
    ],
)
def test_probe_documents(capsys: pytest.CaptureFixture[str], probe: str, args: list[str]) -> None:
    """Each probe's document matches its schema."""
    document = output(capsys, ["probe", probe, *args, "--json"], (ExitCode.OK,))
    validate(f"probe-{probe}", document)


def test_profiles_documents_match_their_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """`profiles --json` lists every shipped profile; `profiles show NAME --json` adds each
    setting line with the source it cites."""
    listed = output(capsys, ["profiles", "--json"], (0,))
    validate("profiles", listed)
    assert {"elasticsearch", "opensearch", "cassandra", "kafka"} <= {
        p["name"] for p in listed["profiles"]
    }
    shown = output(capsys, ["profiles", "show", "elasticsearch-memlock", "--json"], (0,))
    validate("profiles", shown)
    (profile,) = shown["profiles"]
    memlock = next(s for s in profile["settings"] if s["key"] == "memlock")
    assert memlock["file"] == "elasticsearch-memlock.toml"
    nofile = next(s for s in profile["settings"] if s["key"] == "nofile")
    assert (nofile["file"], nofile["table"]) == ("elasticsearch.toml", "rlimits")
    assert "increase to at least [65535]" in nofile["source"]
