"""FakeHost: a temp directory laid out like /proc, /sys and /etc, for hosts this VM is not.

The defaults describe an ordinary x86_64 host with cgroup v2 and systemd, seen by a non-root
user (uid 1000) in its login session; each setter changes one fact and returns self.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sysprep.facts import RLIMITS
from sysprep.host import Host

if TYPE_CHECKING:
    from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

SELF_PID = 4242
_TCP_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt uid\n"


class FakeHost:
    """Builder of a fake host tree under *root*."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.glibc = "2.36"
        self._meminfo: dict[str, int] = {
            "MemTotal": 24 * GIB // KIB,
            "MemFree": 23 * GIB // KIB,
            "MemAvailable": 23 * GIB // KIB,
            "KernelStack": 0,  # filled from the task count in _write_meminfo
            "PageTables": 2048,
            "SUnreclaim": 20000,
            "CommitLimit": 12 * GIB // KIB,
            "Committed_AS": 50 * MIB // KIB,
        }
        self._kernel_stack = 16 * KIB
        self._extra_tasks = 0
        self._processes: dict[int, dict[str, object]] = {}
        sysctls = {
            "kernel.threads-max": 192730,
            "kernel.pid_max": 4194304,
            "kernel.osrelease": "6.18.44",
            "kernel.arch": "x86_64",
            "vm.max_map_count": 65530,
            "vm.overcommit_memory": 0,
            "vm.user_reserve_kbytes": 131072,
            "vm.admin_reserve_kbytes": 8192,
            "fs.nr_open": 1048576,
            "fs.file-max": 9223372036854775807,
            "fs.file-nr": "1024\t0\t9223372036854775807",
            "net.core.somaxconn": 4096,
            "net.ipv4.tcp_max_syn_backlog": 2048,
            "net.ipv4.ip_local_port_range": "32768\t60999",
        }
        for key, value in sysctls.items():
            self.set_sysctl(key, value)
        self._write(
            "proc/cpuinfo", "processor\t: 0\naddress sizes\t: 46 bits physical, 48 bits virtual\n"
        )
        self._write("sys/kernel/slab/task_struct/slab_size", "5888\n")
        self._write("sys/devices/system/cpu/possible", "0-1\n")
        self._write(
            "proc/net/sockstat", "sockets: used 120\nTCP: inuse 5 orphan 0 tw 0 alloc 6 mem 3\n"
        )
        self._write("proc/stat", "cpu  1 0 1 100 0 0 0 0 0 0\nbtime 1796000000\n")
        self._write("proc/net/tcp", _TCP_HEADER)
        self._write("proc/net/tcp6", _TCP_HEADER)
        self._write("run/systemd/system/.keep", "")
        for pid in (1, 2, 3, 350, 900):  # init, kthreadd, a kworker, two daemons
            self.add_process(pid, uid=0)
        self.add_process(SELF_PID, uid=1000)
        (self.root / "proc/self").symlink_to(str(SELF_PID))
        self.set_page_size(4 * KIB)
        self.set_maps(SELF_PID, count=120)
        self.use_cgroup_v2("/user.slice/user-1000.slice/session-1.scope")
        self._write_meminfo()

    @property
    def host(self) -> Host:
        """The Host that reads this tree."""
        return Host(self.root, glibc=self.glibc)

    def _write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    # --- host-wide facts

    def set_sysctl(self, key: str, value: object) -> FakeHost:
        """Write /proc/sys/<key>."""
        self._write("proc/sys/" + key.replace(".", "/"), f"{value}\n")
        return self

    def set_meminfo(self, **kib: int) -> FakeHost:
        """Set /proc/meminfo fields, in kB as the kernel prints them."""
        self._meminfo.update(kib)
        self._write_meminfo()
        return self

    def set_kernel_stack(self, size: int) -> FakeHost:
        """THREAD_SIZE of this kernel: KernelStack grows by it per task."""
        self._kernel_stack = size
        self._write_meminfo()
        return self

    def add_tasks(self, count: int) -> FakeHost:
        """Tasks that /proc/loadavg counts but /proc does not list (e.g. hidepid)."""
        self._extra_tasks += count
        self._write_meminfo()
        return self

    def set_page_size(self, size: int) -> FakeHost:
        """Base page size, as /proc/self/smaps reports it."""
        self._write(
            f"proc/{SELF_PID}/smaps",
            f"00400000-00401000 r-xp 0 0:0 0 /bin/x\nKernelPageSize: {size // KIB} kB\n",
        )
        return self

    def _tasks(self) -> int:
        threads = sum(int(p["threads"]) for p in self._processes.values())  # type: ignore[call-overload]
        return threads + self._extra_tasks

    def _write_meminfo(self) -> None:
        self._meminfo["KernelStack"] = self._tasks() * self._kernel_stack // KIB
        self._write("proc/meminfo", "".join(f"{k}: {v} kB\n" for k, v in self._meminfo.items()))
        self._write("proc/loadavg", f"0.00 0.01 0.05 1/{self._tasks()} 4321\n")

    # --- processes

    def add_process(
        self,
        pid: int,
        *,
        uid: int,
        threads: int = 1,
        tids: list[int] | None = None,
        caps: int = 0,
        vm_size: int = 300 * MIB,
        vm_data: int = 100 * MIB,
    ) -> FakeHost:
        """A process with its status, limits and task directory."""
        tids = tids or [pid, *range(pid + 1, pid + threads)]
        self._processes[pid] = {"threads": len(tids)}
        self._write(
            f"proc/{pid}/status",
            f"Name:\tfake\nPid:\t{pid}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"
            f"VmSize:\t{vm_size // KIB} kB\nVmData:\t{vm_data // KIB} kB\n"
            f"Threads:\t{len(tids)}\nCapEff:\t{caps:016x}\n",
        )
        for tid in tids:
            (self.root / f"proc/{pid}/task/{tid}").mkdir(parents=True, exist_ok=True)
            # /proc/TID resolves on a real kernel too, though readdir does not list it.
            (self.root / f"proc/{tid}").mkdir(exist_ok=True)
        self._write(f"proc/{pid}/cgroup", "0::/system.slice/fake.service\n")
        self._write(f"proc/{pid}/cmdline", "/usr/bin/fake\0")
        self.set_start_time(pid, 1000 + pid)
        self.set_fds(pid, 4)
        self.set_maps(pid, count=40)
        self.set_limits(pid)
        self._write_meminfo()
        return self

    def set_program(
        self,
        pid: int | str,
        argv: list[str],
        *,
        environ: dict[str, str] | None = None,
        binary: bytes = b"",
    ) -> FakeHost:
        """What process *pid* runs: /proc/PID/exe (a link to its binary), cmdline, environ."""
        self._write(f"proc/{pid}/cmdline", "".join(f"{arg}\0" for arg in argv))
        self._write(
            f"proc/{pid}/environ", "".join(f"{k}={v}\0" for k, v in (environ or {}).items())
        )
        image = self.root / "binaries" / str(pid) / argv[0].rsplit("/", 1)[-1]
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(binary)
        exe = self.root / f"proc/{pid}/exe"
        exe.unlink(missing_ok=True)
        exe.symlink_to(image)
        return self

    def set_start_time(self, pid: int, ticks: int) -> FakeHost:
        """/proc/PID/stat with starttime (field 22) *ticks*: a new value is a new process."""
        fields = ["S", "1", str(pid), str(pid), *["0"] * 15, str(ticks), *["0"] * 30]
        self._write(f"proc/{pid}/stat", f"{pid} (fake (x) y) {' '.join(fields)}\n")
        return self

    def set_namespace(self, kind: str, inode: int, pid: int | str = SELF_PID) -> FakeHost:
        """/proc/PID/ns/KIND, the link the kernel shows ("pid:[4026531836]")."""
        link = self.root / f"proc/{pid}/ns/{kind}"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(f"{kind}:[{inode}]")
        return self

    def mount_proc_sys_read_only(self) -> FakeHost:
        """/proc/sys mounted read-only over /proc, as container runtimes do."""
        mountinfo = self.root / "proc/self/mountinfo"
        mountinfo.write_text(
            mountinfo.read_text()
            + "40 22 0:5 / /proc rw,nosuid - proc proc rw\n"
            + "41 40 0:5 /sys /proc/sys ro,nosuid - proc proc rw\n"
        )
        return self

    def set_uid_map(self, inside: int, outside: int, count: int, pid: int = SELF_PID) -> FakeHost:
        """/proc/PID/uid_map: uids from *inside* are the kernel's from *outside* on."""
        self._write(f"proc/{pid}/uid_map", f"{inside:>10} {outside:>10} {count:>10}\n")
        return self

    def set_fds(self, pid: int, count: int) -> FakeHost:
        """/proc/PID/fd with *count* descriptors."""
        fd_dir = self.root / f"proc/{pid}/fd"
        fd_dir.mkdir(parents=True, exist_ok=True)
        for fd in range(count):
            (fd_dir / str(fd)).touch()
        return self

    def add_tcp_sockets(self, *, local_ports: list[int], listening: bool = False) -> FakeHost:
        """Sockets in /proc/net/tcp with these local ports (0A: LISTEN, 01: ESTABLISHED)."""
        state = "0A" if listening else "01"
        rows = [
            f"{i:4}: 0100007F:{port:04X} 0100007F:1388 {state} 00000000:00000000 00:00000000 0"
            for i, port in enumerate(local_ports)
        ]
        path = self.root / "proc/net/tcp"
        path.write_text(path.read_text() + "\n".join(rows) + "\n")
        return self

    def set_limits(self, pid: int = SELF_PID, **limits: tuple[int | None, int | None]) -> FakeHost:
        """/proc/PID/limits; unnamed limits keep ordinary defaults; None = unlimited."""
        values: dict[str, tuple[int | None, int | None]] = {
            "RLIMIT_STACK": (8 * MIB, None),
            "RLIMIT_NPROC": (96365, 96365),
            "RLIMIT_AS": (None, None),
            "RLIMIT_DATA": (None, None),
            "RLIMIT_NOFILE": (1024, 524288),
            "RLIMIT_MEMLOCK": (8 * MIB, 8 * MIB),
            "RLIMIT_FSIZE": (None, None),
        }
        path = self.root / f"proc/{pid}/limits"
        if path.exists():
            values.update(self._read_limits(path))
        values.update(limits)
        rows = ["Limit                     Soft Limit           Hard Limit           Units     "]
        for name, rlimit in RLIMITS.items():
            soft, hard = (("unlimited" if v is None else str(v)) for v in values[name])
            unit = "bytes" if rlimit.in_bytes else "processes"  # read by nobody
            rows.append(f"{rlimit.title:<26}{soft:<21}{hard:<21}{unit}")
        self._write(f"proc/{pid}/limits", "\n".join(rows) + "\n")
        return self

    @staticmethod
    def _read_limits(path: Path) -> dict[str, tuple[int | None, int | None]]:
        host = Host(path.parent.parent.parent)
        return host.rlimits(path.parent.name)

    def set_maps(self, pid: int, *, count: int, top: int = 0x7FFD_0000_0000) -> FakeHost:
        """/proc/PID/maps with *count* mappings, the highest ending at *top*."""
        lines = [
            f"{0x40_0000 + i * 0x1000:x}-{0x40_0000 + (i + 1) * 0x1000:x} r--p 0 0:0 0"
            for i in range(count - 1)
        ]
        lines.append(f"{top - 0x21000:x}-{top:x} rw-p 0 0:0 0 [stack]")
        self._write(f"proc/{pid}/maps", "\n".join(lines) + "\n")
        return self

    # --- cgroups

    def use_cgroup_v2(
        self, path: str, controllers: str = "cpu memory pids", *, enabled: str | None = None
    ) -> FakeHost:
        """A pure cgroup v2 host (systemd's default): one hierarchy at /sys/fs/cgroup.

        *enabled*: the controllers whose files the levels below the root have (the root's
        subtree_control); default: all of *controllers*.
        """
        below = (controllers if enabled is None else enabled).split()
        self._write(f"proc/{SELF_PID}/cgroup", f"0::{path}\n")
        self._write(
            "proc/self/mountinfo",
            "22 1 0:21 / /sys rw - sysfs sysfs rw\n"
            "30 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        )
        top = self.root / "sys/fs/cgroup"
        self._write("sys/fs/cgroup/cgroup.controllers", controllers + "\n")
        self._write("sys/fs/cgroup/cgroup.procs", "")
        level = top
        for part in path.strip("/").split("/"):
            level /= part
            level.mkdir(parents=True, exist_ok=True)
            (level / "cgroup.procs").write_text("")
            (level / "cgroup.type").write_text("domain\n")  # on every cgroup but the root
            if "pids" in below:
                (level / "pids.max").write_text("max\n")
                (level / "pids.current").write_text("1\n")
            if "memory" in below:
                (level / "memory.max").write_text("max\n")
                (level / "memory.current").write_text(f"{100 * MIB}\n")
        return self

    def use_cgroup_v1(self, path: str) -> FakeHost:
        """A v1 host: pids and memory hierarchies of their own, like this VM."""
        self._write(
            f"proc/{SELF_PID}/cgroup",
            f"5:pids:{path}\n4:memory:{path}\n1:name=systemd:{path}\n0::/\n",
        )
        self._write(
            "proc/self/mountinfo",
            "25 24 0:22 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
            "26 24 0:23 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
            "27 24 0:24 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        )
        self._write("sys/fs/cgroup/unified/cgroup.controllers", "\n")
        for controller in ("pids", "memory"):
            level = self.root / "sys/fs/cgroup" / controller
            level.mkdir(parents=True, exist_ok=True)
            (level / "cgroup.procs").write_text("")
            (level / "release_agent").write_text("")  # on a v1 hierarchy's root only
            for part in path.strip("/").split("/"):
                level /= part
                level.mkdir(exist_ok=True)
                (level / "cgroup.procs").write_text("")
                if controller == "pids":
                    (level / "pids.max").write_text("max\n")
                    (level / "pids.current").write_text("1\n")
                else:
                    (level / "memory.limit_in_bytes").write_text("9223372036854771712\n")
                    (level / "memory.usage_in_bytes").write_text(f"{100 * MIB}\n")
        return self

    def add_kernel_log(self, *messages: tuple[float, str]) -> FakeHost:
        """Records in dev/kmsg, as /dev/kmsg gives them: (seconds after boot, message)."""
        path = self.root / "dev/kmsg"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as kmsg:
            for number, (after_boot, message) in enumerate(messages):
                kmsg.write(f"6,{number},{int(after_boot * 1e6)},-;{message}\n")
        return self

    def set_cgroup_file(self, relative: str, value: object) -> FakeHost:
        """Write one cgroup file, e.g. ("pids", "user.slice/pids.max") under /sys/fs/cgroup."""
        path = self.root / "sys/fs/cgroup" / relative.lstrip("/")
        path.write_text(f"{value}\n")
        return self
