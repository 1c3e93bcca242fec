"""The lines of the owned files: merged into what is there, raise-only, and taken back out."""

from __future__ import annotations

import pytest

from sysprep.errors import BadInputError
from sysprep.facts import LIMITS_FILE
from sysprep.facts import SYSCTL_FILE
from sysprep.facts import unit_drop_in
from sysprep.settings.owned import HEADER
from sysprep.settings.owned import Line
from sysprep.settings.owned import changed_lines
from sysprep.settings.owned import merge
from sysprep.settings.owned import unapply

DROP_IN = unit_drop_in("es.service")
NOFILE = [Line(("*", "soft", "nofile"), "65535"), Line(("*", "hard", "nofile"), "65535")]


def test_a_new_file_gets_the_header_and_the_lines() -> None:
    """No file yet: the header, then each line."""
    text = merge(LIMITS_FILE, None, NOFILE).decode()
    assert text == f"{HEADER}\n* soft nofile 65535\n* hard nofile 65535\n"


def test_an_earlier_applys_lines_stay_and_a_shared_key_takes_the_higher_value() -> None:
    """elasticsearch's nofile stays when million-threads adds nproc; a value both name
    keeps the higher (raise-only), in place."""
    earlier = merge(LIMITS_FILE, None, [*NOFILE, Line(("*", "soft", "nproc"), "4096")])
    text = merge(
        LIMITS_FILE,
        earlier,
        [Line(("*", "soft", "nproc"), "2000000"), Line(("*", "soft", "nofile"), "1024")],
    ).decode()
    assert text.splitlines()[1:] == [
        "* soft nofile 65535",  # 1024 would lower it: kept
        "* hard nofile 65535",
        "* soft nproc 2000000",  # raised in place
    ]


def test_another_writers_lines_stay() -> None:
    """A drop-in someone else wrote (an Environment= line, a LimitNOFILE): kept; the
    property both name takes the higher value, soft and hard each."""
    theirs = b"[Service]\nEnvironment=A=1\nLimitNOFILE=65536:100000\n"
    ours = [Line(("Service", "LimitNOFILE"), "80000:80000"), Line(("Service", "TasksMax"), "500")]
    text = merge(DROP_IN, theirs, ours).decode()
    assert text.splitlines() == [
        HEADER,
        "[Service]",
        "Environment=A=1",
        "LimitNOFILE=80000:100000",
        "TasksMax=500",
    ]


def test_a_value_that_cannot_be_compared_is_refused_naming_the_line() -> None:
    """TasksMax=33% cannot be compared with a number: raising it would lose it, keeping it
    would lose the profile's; the plan refuses, naming the line."""
    with pytest.raises(BadInputError, match=r"'TasksMax=33%'.*edit or remove that line"):
        merge(DROP_IN, b"[Service]\nTasksMax=33%\n", [Line(("Service", "TasksMax"), "500")])


def test_exact_values_are_set_as_they_are() -> None:
    """A sysctl the profile sets exactly (several numbers) replaces what is there."""
    line = Line(("net.ipv4.ip_local_port_range",), "1024 65535", exact=True)
    text = merge(SYSCTL_FILE, b"net.ipv4.ip_local_port_range = 2000 60000\n", [line]).decode()
    assert "net.ipv4.ip_local_port_range = 1024 65535" in text.splitlines()


def test_a_file_that_is_not_text_is_refused() -> None:
    """Bytes sysprep could not write back intact: refused, naming the file."""
    with pytest.raises(BadInputError, match="is not UTF-8 text"):
        merge(SYSCTL_FILE, b"\xff\xfe", [Line(("vm.max_map_count",), "262144")])


def test_unapply_takes_back_exactly_the_lines_an_apply_changed() -> None:
    """Between the two applies' bytes, the changed keys; taken out of the later file, the
    first apply's own lines go and the other's stay; a line changed since is named."""
    first = merge(LIMITS_FILE, None, NOFILE)
    second = merge(LIMITS_FILE, first, [Line(("*", "soft", "nproc"), "2000000")])
    changed = changed_lines("limits", None, first, LIMITS_FILE.path)
    data, conflicts = unapply("limits", second, changed, LIMITS_FILE.path)
    assert conflicts == []
    assert data is not None
    # The header was the first apply's too: it goes with it (the file is still sysprep's).
    assert data.decode().splitlines() == ["* soft nproc 2000000"]
    edited = second.replace(b"soft nofile 65535", b"soft nofile 70000")
    _, conflicts = unapply("limits", edited, changed, LIMITS_FILE.path)
    assert conflicts == [("*", "soft", "nofile")]


def test_unapply_of_the_only_apply_leaves_nothing() -> None:
    """What one apply created alone is gone entirely once taken back."""
    first = merge(DROP_IN, None, [Line(("Service", "TasksMax"), "500")])
    changed = changed_lines("systemd", None, first, DROP_IN.path)
    assert unapply("systemd", first, changed, DROP_IN.path) == (None, [])
