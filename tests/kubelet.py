"""A directory laid out as kubelet lays out a ConfigMap volume (pkg/volume/util/atomic_writer.go):
the volume 0777, the files 0644 in a timestamped directory (0755), `..data` a symlink to it,
and each key a symlink through `..data`; all root's. Kubelet mounts it read-only in the pod."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def configmap_volume(volume: Path, files: dict[str, str]) -> Path:
    """Lay out *files* (key: text) in *volume* as kubelet does; *volume* is returned."""
    volume.mkdir(mode=0o777, parents=True)
    volume.chmod(0o777)
    stamped = volume / "..2026_12_02_08_00_00.1234567890"
    stamped.mkdir(mode=0o755)
    for key, text in files.items():
        (stamped / key).write_text(text)
        (stamped / key).chmod(0o644)
    (volume / "..data").symlink_to(stamped.name)
    for key in files:
        (volume / key).symlink_to(f"..data/{key}")
    return volume
