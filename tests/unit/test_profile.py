"""Profiles as they are read: extends, mode sysctls, and what never passes as a number."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sysprep.errors import BadInputError
from sysprep.profile import load

if TYPE_CHECKING:
    from tests.fakehost import FakeHost


@pytest.mark.parametrize("parent", ["/etc/shadow", "/proc/self/environ", "../../etc/passwd"])
def test_extends_names_a_profile_never_any_file(fake: FakeHost, parent: str) -> None:
    """extends takes a profile's name or its .toml file: /etc/shadow is never read."""
    profile = fake.root / "child.toml"
    profile.write_text(f'extends = "{parent}"\n[target]\nthreads = 10\n')
    with pytest.raises(BadInputError, match=r"name a profile, or a profile's \.toml file"):
        load(str(profile), fake.host, trust=False)


def test_a_mode_sysctl_is_set_exactly(fake: FakeHost) -> None:
    """vm.overcommit_memory 2 is a mode, not "more" than 0: set as asked, never raised."""
    fake.set_sysctl("vm.overcommit_memory", 1)
    profile = fake.root / "mode.toml"
    profile.write_text('[target]\nthreads = 10\n[sysctl]\n"vm.overcommit_memory" = 0\n')
    (want,) = load(str(profile), fake.host).wants
    assert want.exact is True
    change = want.setting.change("1", 0, exact=want.exact)  # type: ignore[attr-defined]
    assert (change.action.value, change.after) == ("set", "0")
