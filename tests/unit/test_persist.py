"""The drop-ins --persist writes: sysctl.d, limits.d, and systemd's only where it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sysprep.plan import build_plan
from sysprep.profile import load
from sysprep.settings.files import FileSetting
from sysprep.settings.sysctl import SysctlSetting
from sysprep.settings.sysctl_d import later_overrides

SYSCTL_FILE = "/etc/sysctl.d/90-sysprep.conf"

if TYPE_CHECKING:
    from tests.fakehost import FakeHost


def written(fake: FakeHost, profile: str) -> dict[str, str]:
    plan = build_plan(load(profile, fake.host), fake.host, persist=True)
    return {c.setting.key: c.after.data.decode() for c in plan.of(FileSetting)}


def test_sysctl_file_holds_the_raised_values(fake: FakeHost) -> None:
    """Only the sysctls apply changes go to sysctl.d."""
    files = written(fake, "elasticsearch")
    assert files["/etc/sysctl.d/90-sysprep.conf"].splitlines()[1:] == ["vm.max_map_count = 262144"]


def test_limits_file_counts_stack_in_kib(fake: FakeHost) -> None:
    """limits.conf's stack item is in KiB; unlimited is spelled out."""
    lines = written(fake, "million-threads")["/etc/security/limits.d/90-sysprep.conf"].splitlines()
    assert "* soft stack 256" in lines
    assert "* hard stack unlimited" in lines
    assert "* soft nproc 2000000" in lines


def test_systemd_drop_in_where_systemd_runs(fake: FakeHost) -> None:
    """/run/systemd/system exists: a system.conf.d drop-in sets the services' defaults."""
    drop_in = written(fake, "elasticsearch")["/etc/systemd/system.conf.d/90-sysprep.conf"]
    # nproc 4096 and an unlimited address space: this host already has more, so not written.
    assert drop_in.splitlines()[1:] == ["[Manager]", "DefaultLimitNOFILE=65535:524288"]


def test_no_systemd_drop_in_without_systemd(fake: FakeHost) -> None:
    """Without systemd there is no drop-in to write."""
    (fake.root / "run/systemd/system/.keep").unlink()
    (fake.root / "run/systemd/system").rmdir()
    assert "/etc/systemd/system.conf.d/90-sysprep.conf" not in written(fake, "elasticsearch")


def test_later_files_and_sysctl_conf_override(fake: FakeHost) -> None:
    """Files sorting after 90-sysprep.conf, in any sysctl.d directory, and /etc/sysctl.conf win."""
    (fake.root / "usr/lib/sysctl.d").mkdir(parents=True)
    (fake.root / "usr/lib/sysctl.d/99-vendor.conf").write_text("vm.max_map_count=65530\n")
    (fake.root / "usr/lib/sysctl.d/50-pid-max.conf").write_text("kernel.pid_max = 4194304\n")
    (fake.root / "etc").mkdir()
    (fake.root / "etc/sysctl.conf").write_text("# comment\n-kernel.pid_max = 32768\n")
    found = later_overrides(fake.host, {"vm.max_map_count", "kernel.pid_max"})
    after = "after /etc/sysctl.d/90-sysprep.conf"
    assert found == [
        f"/usr/lib/sysctl.d/99-vendor.conf sets vm.max_map_count {after}",
        f"/etc/sysctl.conf sets kernel.pid_max {after}",
    ]


def _files(fake: FakeHost, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = fake.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_slash_spelling_counts(fake: FakeHost) -> None:
    """procps reads `kernel/pid_max = …` in /etc/sysctl.conf as kernel.pid_max."""
    _files(fake, {"etc/sysctl.conf": "kernel/pid_max = 32768\nnet/ipv4/conf/eth0.1/rp_filter=1\n"})
    found = later_overrides(fake.host, {"kernel.pid_max", "net.ipv4.conf.eth0/1.rp_filter"})
    assert found == [
        "/etc/sysctl.conf sets kernel.pid_max after /etc/sysctl.d/90-sysprep.conf",
        "/etc/sysctl.conf sets net.ipv4.conf.eth0/1.rp_filter after /etc/sysctl.d/90-sysprep.conf",
    ]


def test_a_file_reached_through_a_symlink_is_warned_about_once(fake: FakeHost) -> None:
    """Debian links /etc/sysctl.d/99-sysctl.conf to ../sysctl.conf: one file, one warning."""
    _files(fake, {"etc/sysctl.conf": "vm.max_map_count = 65530\n"})
    (fake.root / "etc/sysctl.d").mkdir(parents=True, exist_ok=True)
    (fake.root / "etc/sysctl.d/99-sysctl.conf").symlink_to("../sysctl.conf")
    found = later_overrides(fake.host, {"vm.max_map_count"})
    assert found == ["/etc/sysctl.d/99-sysctl.conf sets vm.max_map_count after " + SYSCTL_FILE]


def test_a_name_in_etc_hides_the_vendors(fake: FakeHost) -> None:
    """/etc/sysctl.d/99-vendor.conf replaces /usr/lib/sysctl.d/99-vendor.conf (sysctl.d(5))."""
    _files(
        fake,
        {
            "usr/lib/sysctl.d/99-vendor.conf": "vm.max_map_count = 65530\n",
            "etc/sysctl.d/99-vendor.conf": "# masked by the operator\n",
        },
    )
    assert later_overrides(fake.host, {"vm.max_map_count"}) == []


def test_the_drop_in_never_lowers_an_earlier_vendor_value(fake: FakeHost) -> None:
    """50-pid-max.conf's 4194304 is applied before 90-sysprep.conf at boot: the drop-in keeps
    4194304 rather than the ~1M apply raises pid_max to now, and says so."""
    fake.set_sysctl("kernel.pid_max", 32768)
    _files(fake, {"usr/lib/sysctl.d/50-pid-max.conf": "kernel.pid_max = 4194304\n"})
    plan = build_plan(load("million-threads", fake.host), fake.host, persist=True)
    (pid_max,) = (c for c in plan.of(SysctlSetting) if c.setting.key == "kernel.pid_max")
    assert int(pid_max.after) < 4194304
    drop_in = next(c for c in plan.of(FileSetting) if c.setting.key == SYSCTL_FILE)
    assert "kernel.pid_max = 4194304\n" in drop_in.after.data.decode()
    assert any("50-pid-max.conf sets kernel.pid_max = 4194304 at boot" in w for w in plan.warnings)


def test_values_raised_without_persist_are_persisted_later(fake: FakeHost) -> None:
    """Regression: `apply` without --persist, then `apply --persist`, wrote no sysctl.d line
    for the sysctls already raised (nothing to change now), so a reboot dropped them."""
    fake.set_sysctl("kernel.pid_max", 32768)
    raised = build_plan(load("million-threads", fake.host), fake.host)
    for change in raised.of(SysctlSetting):
        fake.set_sysctl(change.setting.key, change.after)
    drop_in = written(fake, "million-threads")[SYSCTL_FILE].splitlines()[1:]
    assert drop_in == [f"{c.setting.key} = {c.after}" for c in raised.of(SysctlSetting)]


def test_a_value_above_the_profiles_is_persisted_as_it_is(fake: FakeHost) -> None:
    """threads-max scales with RAM: a large host's default, above the profile's, is kept at
    boot rather than lowered to the profile's."""
    fake.set_sysctl("kernel.threads-max", 8_000_000)
    assert "kernel.threads-max = 8000000" in written(fake, "million-threads")[SYSCTL_FILE]


def test_no_line_where_an_earlier_file_sets_enough_at_boot(fake: FakeHost) -> None:
    """50-pid-max.conf sets 4194304 before the drop-in: pid_max needs no line of sysprep's."""
    _files(fake, {"usr/lib/sysctl.d/50-pid-max.conf": "kernel.pid_max = 4194304\n"})
    assert "kernel.pid_max" not in written(fake, "million-threads")[SYSCTL_FILE]


def test_a_kernel_default_is_not_pinned(fake: FakeHost) -> None:
    """A 1 TiB host's threads-max default (RAM / 128 KiB), above the profile's: the boot
    sets it again, so the drop-in has no line for it (nor for max_map_count's 65530 where a
    profile asks less)."""
    fake.set_meminfo(MemTotal=1 << 30)  # KiB: 1 TiB
    fake.set_sysctl("kernel.threads-max", (1 << 40) // (8 * 16384))
    assert "kernel.threads-max" not in written(fake, "million-threads")[SYSCTL_FILE]
