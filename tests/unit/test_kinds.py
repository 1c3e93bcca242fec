"""The registry of setting kinds: a kind this test alone defines goes through every command.

ModuleParameter, a module parameter under the fake tree's /sys/module/*/parameters, is one
class here and one registration (settings.kinds.registered): profiles read its table, the
plan and `apply --dry-run --json` show it, apply writes it and its snapshot records it,
check --profile judges it, revert puts it back, and no module of sysprep changed for it.
Then a snapshot written by sysprep 0.1.0 (before units and this registry) still reverts.
"""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

import jsonschema
import pytest

import sysprep
from sysprep.cli import run
from sysprep.errors import BadInputError
from sysprep.errors import ExitCode
from sysprep.settings import Action
from sysprep.settings import Change
from sysprep.settings import Gone
from sysprep.settings import Part
from sysprep.settings import Want
from sysprep.settings import WholeValue
from sysprep.settings import verdict
from sysprep.settings.kinds import registered
from tests.fakehost import SELF_PID

if TYPE_CHECKING:
    from sysprep.facts import OwnedFile
    from sysprep.host import Host
    from sysprep.settings import Situation
    from sysprep.settings import Verdict
    from sysprep.settings.owned import Line
    from tests.fakehost import FakeHost

SCHEMAS = Path(sysprep.__file__).parent / "schemas"
LEGACY = Path(__file__).parents[1] / "data/snapshot-0.1.0-elasticsearch.json"


@dataclass(frozen=True)
class ModuleParameter(WholeValue):
    """A kernel module's parameter, "MODULE.NAME": /sys/module/MODULE/parameters/NAME."""

    name: str
    kind: ClassVar[str] = "module_parameters"
    table: ClassVar[str | None] = "module"
    takes_effect: ClassVar[str] = "now"

    @property
    def key(self) -> str:
        return self.name

    def _path(self, host: Host) -> Path:
        module, _, parameter = self.name.partition(".")
        return host.path(f"sys/module/{module}/parameters/{parameter}")

    def read(self, host: Host) -> int:
        try:
            return int(self._path(host).read_text())
        except FileNotFoundError:
            raise Gone("the module is not loaded") from None

    def write(self, host: Host, value: int) -> None:
        self._path(host).write_text(f"{value}\n")
        if self.read(host) != value:
            raise OSError(0, f"{self.name} reads back another value")

    def show(self, value: int) -> str:
        return str(value)

    def typed(self, value: int) -> object:
        return value

    def entry(self, before: int, after: int) -> dict[str, Any]:
        return {"key": self.name, "before": before, "after": after}

    def document(self, change: Change) -> dict[str, Any]:
        return {**self.entry(change.before, change.after), "action": change.action.value}

    def persisted(self, change: Change, host: Host) -> tuple[tuple[OwnedFile, Line], ...]:  # noqa: ARG002
        return ()

    def change(self, before: int, wanted: int) -> Change:
        action = Action.RAISE if before < wanted else Action.KEEP
        return Change(self, before, wanted if action is Action.RAISE else before, action, wanted)

    @classmethod
    def want(cls, where: str, key: str, value: object, host: Host) -> Want:  # noqa: ARG003
        if not isinstance(value, int) or "." not in key:
            raise BadInputError(f"{where}: module.{key} must be MODULE.NAME = a whole number")
        return Want(cls(key), value)

    @classmethod
    def plan(cls, wants: tuple[Want, ...], situation: Situation) -> Part:
        host = situation.host
        return Part(tuple(cls(w.setting.key).change(cls(w.setting.key).read(host), w.value)
                          for w in wants))  # fmt: skip

    @classmethod
    def judge(cls, wants: tuple[Want, ...], situation: Situation) -> tuple[Verdict, ...]:
        return tuple(verdict(change) for change in cls.plan(wants, situation).changes)

    @classmethod
    def from_entry(cls, entry: dict[str, Any], host: Host) -> Change:  # noqa: ARG003
        if not all(isinstance(entry[k], int) for k in ("before", "after")):
            raise ValueError(f"module parameter entry {entry!r} is malformed")
        return Change(cls(entry["key"]), entry["before"], entry["after"], Action.SET)


def validate(name: str, document: dict[str, Any]) -> None:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


def sysprep_json(
    capsys: pytest.CaptureFixture[str], fake: FakeHost, state: Path, *args: str
) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    tree = ["--root", str(fake.root), "--etc-root", str(fake.root), "--state-dir", str(state)]
    code = run([*tree, *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture(name="parameter")
def _parameter(fake: FakeHost) -> Path:
    """/sys/module/toy/parameters/depth of the fake tree, 16 to start with."""
    path = fake.root / "sys/module/toy/parameters/depth"
    path.parent.mkdir(parents=True)
    path.write_text("16\n")
    return path


def test_a_kind_registered_by_a_test_goes_through_every_command(
    fake: FakeHost, parameter: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dry run, apply, snapshot, compliance and revert of a kind no module of sysprep knows."""
    profile = tmp_path / "toy.toml"
    profile.write_text('[target]\nthreads = 10\n[module]\n"toy.depth" = 64\n')
    state = tmp_path / "state"
    with registered(ModuleParameter):
        code, plan = sysprep_json(capsys, fake, state, "apply", str(profile), "--dry-run")
        assert code == ExitCode.OK
        validate("apply", plan)
        assert plan["module_parameters"] == [
            {"key": "toy.depth", "before": 16, "after": 64, "action": "raise"}
        ]
        assert parameter.read_text() == "16\n"  # a dry run changes nothing

        code, before = sysprep_json(capsys, fake, state, "check", "--profile", str(profile))
        (judged,) = [s for s in before["profile"]["settings"] if s["kind"] == "module_parameters"]
        assert (judged["expected"], judged["actual"], judged["ok"]) == (64, 16, False)
        assert code == ExitCode.NOT_READY  # not compliant, though ready for 10 threads
        validate("check", before)

        code, _ = sysprep_json(capsys, fake, state, "apply", str(profile), "--no-probe")
        assert code == ExitCode.OK
        assert parameter.read_text() == "64\n"
        (snapshot,) = (state / "snapshots").glob("*.json")
        recorded = json.loads(snapshot.read_text())["module_parameters"]
        assert recorded == [{"key": "toy.depth", "before": 16, "after": 64}]

        code, after = sysprep_json(capsys, fake, state, "check", "--profile", str(profile))
        assert after["profile"]["compliant"] is True
        assert code == ExitCode.OK

        code, reverted = sysprep_json(capsys, fake, state, "revert")
        assert (code, reverted["restored"]) == (ExitCode.OK, ["toy.depth"])
        assert parameter.read_text() == "16\n"


def test_a_snapshot_of_an_unknown_kind_is_refused_not_half_reverted(
    fake: FakeHost, parameter: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sysprep that does not know a kind refuses the snapshot that holds one, naming it:
    reverting the rest would leave that setting changed without a word."""
    profile = tmp_path / "toy.toml"
    profile.write_text('[target]\nthreads = 10\n[module]\n"toy.depth" = 64\n')
    state = tmp_path / "state"
    with registered(ModuleParameter):
        sysprep_json(capsys, fake, state, "apply", str(profile), "--no-probe")
    code = run(
        [
            "--root",
            str(fake.root),
            "--etc-root",
            str(fake.root),
            "--state-dir",
            str(state),
            "revert",
        ]
    )
    assert code == ExitCode.BAD_INPUT
    assert "a kind this sysprep does not know: 'module_parameters'" in capsys.readouterr().err
    assert parameter.read_text() == "64\n"


def test_a_profile_table_of_an_unregistered_kind_is_an_unknown_key(
    fake: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the kind, its table is one more unknown key: one line, exit 2."""
    profile = tmp_path / "toy.toml"
    profile.write_text('[target]\nthreads = 10\n[module]\n"toy.depth" = 64\n')
    assert run(["--root", str(fake.root), "check", "--profile", str(profile)]) == 2
    assert "unknown key 'module'" in capsys.readouterr().err


def test_a_snapshot_written_by_0_1_0_still_reverts(
    fake: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sysprep 0.1.0's snapshot of `apply elasticsearch --persist --pid` (no units list):
    the host it left is put back, byte for byte and value for value."""
    document = json.loads(LEGACY.read_text())
    assert "units" not in document
    fake.set_sysctl("vm.max_map_count", 262144)
    fake.set_limits(SELF_PID, RLIMIT_NOFILE=(65535, 524288))
    for entry in document["files"]:
        path = fake.root / entry["path"].lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(entry["after"]))
    snapshots = tmp_path / "state/snapshots"
    snapshots.mkdir(parents=True)
    copy = snapshots / f"{document['id']}.json"
    shutil.copyfile(LEGACY, copy)
    copy.chmod(0o600)
    code, reverted = sysprep_json(capsys, fake, tmp_path / "state", "revert")
    assert code == ExitCode.OK, reverted
    assert fake.host.sysctl("vm.max_map_count") == "65530"
    assert fake.host.rlimit(SELF_PID, "RLIMIT_NOFILE") == (1024, 524288)
    assert not (fake.root / "etc").exists()  # every file and the directories apply made
