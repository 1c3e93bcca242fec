"""Where sysprep writes: the root under which /etc lives, and its state directory."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

DEFAULT_STATE_DIR = Path("/var/lib/sysprep")


class Paths(NamedTuple):
    """The root of /etc ("/" in production, a temp tree in tests) and the state directory."""

    etc_root: Path
    state_dir: Path

    def file(self, owned: str) -> Path:
        """Where an owned file such as /etc/sysctl.d/90-sysprep.conf lives under etc_root."""
        return self.etc_root / owned.lstrip("/")
