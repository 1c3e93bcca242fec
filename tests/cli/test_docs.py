"""README.md cannot drift from the tool: its examples are the real commands' output.

Each example marked `<!-- output: the example host -->` is run on the example host (a fake
tree whose figures never change, tests/screens.py) in a pipe 80 columns wide, and must
print exactly what README.md shows; the JSON sample must show every key of the real
document, with its values; each command's synopsis must name every option it takes. The
examples of the real kernel are checked in tests/host/test_runbook.py. SYSPREP_WRITE_DOCS=1
writes what the commands print into README.md instead (tests/docs.py).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest

from tests.docs import WRITE
from tests.docs import Example
from tests.docs import examples
from tests.docs import settle
from tests.screens import example_host
from tests.screens import report
from tests.screens import reported
from tests.screens import tree

if TYPE_CHECKING:
    from tests.fakehost import FakeHost

README = Path(__file__).resolve().parents[2] / "README.md"
WIDTH = 80
EXAMPLE_HOST = "the example host"
_JSON_SAMPLE = "<!-- output: the example host, `sysprep check --json` (some of its limits) -->"
# Values of the JSON document that differ from run to run.
_VARYING = {"checked_at"}


def test_readme_has_examples_of_the_example_host() -> None:
    """The check report, the fleet report: each run here, not pasted."""
    commands = [step.command for e in examples(README) if e.source == EXAMPLE_HOST
                for step in e.steps]  # fmt: skip
    assert "sysprep check" in commands
    assert any(command.startswith("sysprep fleet") for command in commands)


@pytest.mark.parametrize(
    "example", [e for e in examples(README) if e.source == EXAMPLE_HOST], ids=str
)
def test_readme_example_is_what_sysprep_prints(
    example: Example,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each command of the example, on the example host: exactly the lines README shows."""
    fake = example_host(tmp_path / "host")
    _fleet_reports(fake, tmp_path / "reports", capsys)
    monkeypatch.chdir(tmp_path)
    outputs = []
    for step in example.steps:
        status, out = reported(capsys, WIDTH, [*tree(fake), *step.args])
        outputs.append(out.splitlines())
        if step.exit_status is not None:
            assert status == step.exit_status, step.command
    settle(example, outputs, exact=True)


def _fleet_reports(fake: FakeHost, directory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check --threads 50000 --json` of six hosts, one checked three days ago: two at the
    example host's limits, one with pid_max raised, three tuned (one of them stale)."""
    directory.mkdir()
    tuned = {"kernel.pid_max": 4194304, "vm.max_map_count": 262144}
    hosts = {
        "db-01": {},
        "db-02": {},
        "batch-01": {"kernel.pid_max": 4194304},
        "web-01": tuned,
        "web-02": tuned,
        "web-03": tuned,
    }
    for name, sysctls in hosts.items():
        for key, value in {"kernel.pid_max": 32768, "vm.max_map_count": 65530, **sysctls}.items():
            fake.set_sysctl(key, value)
        document = json.loads(
            report(capsys, WIDTH, [*tree(fake), "check", "-n", "50000", "--json"])
        )
        if name == "web-03":
            document["checked_at"] = _iso(time.time() - 3 * 86400)
        (directory / f"{name}.json").write_text(json.dumps(document))
    fake.set_sysctl("kernel.pid_max", 32768).set_sysctl("vm.max_map_count", 65530)


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def test_the_json_sample_shows_every_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every key of `check --json` (target.runtime, environment, connections, each limit's
    unit...), each with the value the example host gives; some of the limits."""
    lines = README.read_text().splitlines()
    start = lines.index(_JSON_SAMPLE) + 2
    end = lines.index("```", start)
    sample = json.loads("\n".join(lines[start:end]))
    fake = example_host(tmp_path / "host")
    document = json.loads(report(capsys, WIDTH, [*tree(fake), "check", "--json"]))
    if WRITE:
        names = {limit["name"] for limit in sample["limits"]}
        document["limits"] = [limit for limit in document["limits"] if limit["name"] in names]
        lines[start:end] = json.dumps(document, indent=2).splitlines()
        README.write_text("\n".join(lines) + "\n")
        return
    _covers(sample, document, "")


def _covers(sample: Any, real: Any, where: str) -> None:
    """*sample* shows every key of *real* with its value; a list, some of its items."""
    if where.rsplit(".", 1)[-1] in _VARYING:
        assert type(sample) is type(real), where
    elif isinstance(real, dict):
        assert isinstance(sample, dict), where
        assert sorted(sample) == sorted(real), f"{where}: keys differ"
        for key, value in real.items():
            _covers(sample[key], value, f"{where}.{key}")
    elif isinstance(real, list) and real and isinstance(real[0], dict) and "name" in real[0]:
        by_name = {item["name"]: item for item in real}
        assert sample, f"{where}: no item shown"
        for item in sample:
            _covers(item, by_name[item["name"]], f"{where}[{item['name']}]")
    else:
        assert sample == real, f"{where}: {sample!r} in README, {real!r} printed"


def _synopsis(name: str) -> str:
    """README.md's synopsis of `sysprep NAME`: each line of a usage block naming it, with the
    lines that continue it (indented)."""
    text = README.read_text()
    blocks = re.findall(r"^```\n((?:sudo )?sysprep .*?)^```", text, re.DOTALL | re.MULTILINE)
    shown = []
    for block in blocks:
        lines = block.splitlines()
        for index, line in enumerate(lines):
            if re.match(rf"(sudo )?sysprep (\[.*?\] )*{name}\b", line):
                shown.append(line)
                shown += [more for more in lines[index + 1 :] if more.startswith(" ")][:10]
    return "\n".join(shown)


def _commands() -> dict[str, Any]:
    """Every command's click command, by name."""
    import typer.main

    from sysprep.cli import app

    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", _commands())
def test_each_synopsis_names_every_option(name: str) -> None:
    """Each command's synopsis shows each of its options, short and long: `check`'s has
    --prometheus and -n."""
    synopsis = _synopsis(name)
    assert synopsis, f"README.md has no synopsis of `sysprep {name}`"
    for parameter in _commands()[name].params:
        for opt in (*parameter.opts, *parameter.secondary_opts):
            if opt.startswith("-") and opt != "--help":
                found = re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", synopsis)
                assert found, f"the synopsis of `sysprep {name}` lacks {opt}"
