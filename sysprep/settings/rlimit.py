"""A resource limit: of a running process (prlimit(2), now), or of processes started later.

Those are persisted only: limits.d at next login, systemd's defaults once sysprep reloads it
(services never read limits.conf: they have no PAM session).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

from sysprep.errors import BadInputError
from sysprep.facts import BY_PROFILE_KEY
from sysprep.facts import LIMITS_FILE
from sysprep.facts import NR_OPEN_MAX
from sysprep.facts import PTHREAD_STACK_MIN
from sysprep.facts import RLIM_INFINITY
from sysprep.facts import RLIMITS
from sysprep.facts import SYSTEMD_FILE
from sysprep.settings import Action
from sysprep.settings import Change
from sysprep.settings import Fix
from sysprep.settings import Gone
from sysprep.settings import Part
from sysprep.settings import Want
from sysprep.settings import WholeValue
from sysprep.settings import only_keys
from sysprep.settings import unjudged
from sysprep.settings import verdict
from sysprep.settings.owned import Line
from sysprep.units import parse_size

if TYPE_CHECKING:
    from sysprep.facts import OwnedFile
    from sysprep.facts import Rlimit
    from sysprep.host import Host
    from sysprep.settings import Situation
    from sysprep.settings import Verdict

# The rlimits a profile may set: every one of the registry (facts.RLIMITS).
PROFILE_RLIMITS = tuple(BY_PROFILE_KEY)

# The smallest values that leave a process working: a stack below PTHREAD_STACK_MIN breaks
# glibc's own threads, and a zero count or size nothing can run under.
_LOWEST = {"RLIMIT_STACK": PTHREAD_STACK_MIN}

Limits = tuple[int, int]  # (soft, hard) as getrlimit(2) says them; RLIM_INFINITY: unlimited


@dataclass(frozen=True)
class RlimitSetting(WholeValue):
    """One rlimit (RLIMIT_NPROC, ...) of process *pid*; None: of processes started later."""

    name: str
    pid: int | None = None
    # The process's start time (clock ticks after boot): with the pid, who it is.
    started: int | None = field(default=None, compare=False)
    kind: ClassVar[str] = "rlimits"
    table: ClassVar[str | None] = "rlimits"

    @property
    def rlimit(self) -> Rlimit:
        """Its row of the rlimit table: spellings and unit."""
        return RLIMITS[self.name]

    @property
    def key(self) -> str:
        """The name and the pid ("RLIMIT_NPROC of pid 42"); the bare name for later ones."""
        return self.name if self.pid is None else f"{self.name} of pid {self.pid}"

    @property
    def takes_effect(self) -> str:
        """A running process's at once (from its next clone); later processes' only persisted."""
        return "now" if self.pid is not None else "only through the files that persist it"

    def read(self, host: Host) -> Limits:
        """(soft, hard) of the process, from /proc/PID/limits (world-readable).

        Gone when the process exited, or when its pid now names another process.
        """
        if self.pid is None:
            return host.rlimit("self", self.name)
        try:
            if self.started is not None and host.process_start(self.pid) != self.started:
                raise Gone(f"pid {self.pid} is now another process", drift=True)
            return host.rlimit(self.pid, self.name)
        except FileNotFoundError:
            raise Gone(f"pid {self.pid} has exited", benign=True) from None

    def identified(self, host: Host) -> RlimitSetting:
        """The same setting, tied to the process now at its pid by its start time."""
        if self.pid is None:
            return self
        try:
            return replace(self, started=host.process_start(self.pid))
        except FileNotFoundError:
            raise Gone(f"pid {self.pid} has exited", benign=True) from None

    def write(self, host: Host, value: Limits) -> None:
        """prlimit(2) the process and read it back."""
        if self.pid is None:
            raise BadInputError(f"{self.name} of future processes is persisted, not written")
        host.set_rlimit(self.pid, self.name, value)

    def show(self, value: Limits) -> str:
        """Soft and hard as "soft:hard", each a number or "unlimited"."""
        return ":".join("unlimited" if v == RLIM_INFINITY else str(v) for v in value)

    def typed(self, value: Limits) -> object:
        """{"soft": ..., "hard": ...}, each a number or null for unlimited."""
        soft, hard = (None if v == RLIM_INFINITY else v for v in value)
        return {"soft": soft, "hard": hard}

    def entry(self, before: Limits, after: Limits) -> dict[str, Any]:
        """{"pid", "started", "name", "before": [soft, hard], "after": [soft, hard]}."""
        return {
            "pid": self.pid,
            "started": self.started,
            "name": self.name,
            "before": list(before),
            "after": list(after),
        }

    def document(self, change: Change) -> dict[str, Any] | None:
        """A changed limit: {"pid", "name", "before", "after", "action"}."""
        if not change.changes:
            return None
        return {**self.entry(change.before, change.after), "action": change.action.value}

    @classmethod
    def from_entry(cls, entry: dict[str, Any], host: Host) -> Change:  # noqa: ARG003
        """A recorded change; ValueError unless pid, name and both pairs are well formed."""
        pairs = (entry["before"], entry["after"])
        started = entry.get("started")  # absent from snapshots older than it
        well_formed = (
            isinstance(entry["pid"], int)
            and (started is None or (isinstance(started, int) and not isinstance(started, bool)))
            and entry["name"] in RLIMITS
            and all(
                isinstance(pair, list)
                and len(pair) == 2  # noqa: PLR2004 - soft and hard
                and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
                for pair in pairs
            )
        )
        if not well_formed:
            raise ValueError(f"rlimit entry {entry!r} is malformed")
        before, after = (tuple(pair) for pair in pairs)
        return Change(cls(entry["name"], entry["pid"], started), before, after, Action.RAISE)

    def persisted(self, change: Change, host: Host) -> tuple[tuple[OwnedFile, Line], ...]:
        """limits.d lines for logins; where systemd runs, its default for every service."""
        item, exact = self.rlimit.limits_conf, change.action is Action.SET
        soft, hard = (self.conf_value(v) for v in change.after)
        lines = [
            (LIMITS_FILE, Line(("*", "soft", item), soft, exact)),
            (LIMITS_FILE, Line(("*", "hard", item), hard, exact)),
        ]
        if host.runs_systemd:
            shown = ":".join(self.systemd_value(v) for v in change.after)
            key = ("Manager", f"Default{self.rlimit.systemd}")
            lines.append((SYSTEMD_FILE, Line(key, shown, exact)))
        return tuple(lines)

    @staticmethod
    def systemd_value(value: int) -> str:
        """One value as a Limit*= takes it: a number, or infinity."""
        return "infinity" if value == RLIM_INFINITY else str(value)

    def conf_value(self, value: int) -> str:
        """limits.conf(5) and ulimit count bytes in KiB."""
        if value == RLIM_INFINITY:
            return "unlimited"
        return str(-(-value // 1024)) if self.rlimit.in_bytes else str(value)

    def fix(self, value: int, *, hard: int | None = None, may_raise_hard: bool = True) -> Fix:
        """The prlimit for a running pid, ulimit for a new one; limits.d and systemd to persist.

        Past the hard limit *hard* (None: unlimited), where this user may not raise it
        (*may_raise_hard*: CAP_SYS_RESOURCE), the command is one that can: as root, or the
        drop-ins, and the most this shell can reach is named.
        """
        spelling = self.rlimit
        shown = self.conf_value(value)
        persist = (
            f"add '* - {spelling.limits_conf} {shown}' to {LIMITS_FILE.path};"
            f" for a systemd service: {spelling.systemd}={value} in a drop-in"
        )
        if self.pid is not None:
            now = f"prlimit --pid {self.pid} {spelling.prlimit}={value}"
            when = f"now for pid {self.pid}"
        else:
            now = f"ulimit {spelling.ulimit} {shown} (in the shell that starts the program)"
            when = "now for programs started from that shell"
        if hard is not None and value > hard and not may_raise_hard:
            reach = f"ulimit {spelling.ulimit} {hard}" if self.pid is None else "as it is"
            now = (
                f"past the hard limit {hard:,}, which needs root with CAP_SYS_RESOURCE: as that"
                f" root, {now}; as this user, the most is {hard:,} ({reach})"
            )
            when = "when run as root; limits.d at next login; systemd at service restart"
            return Fix(self.name, value, now, persist, when)
        return Fix(
            setting=self.name,
            value=value,
            now=now,
            persist=persist,
            takes_effect=f"{when}; limits.d at next login; systemd at service restart",
        )

    @classmethod
    def want(cls, where: str, key: str, value: object, host: Host) -> Want:  # noqa: ARG003
        """A profile's `[rlimits]` entry: one value for both, or {soft = ..., hard = ...}."""
        if key not in PROFILE_RLIMITS:
            raise BadInputError(
                f"{where}: unknown rlimit {key!r}; expected one of {', '.join(PROFILE_RLIMITS)}"
            )
        rlimit = BY_PROFILE_KEY[key]
        if isinstance(value, dict):
            only_keys(where, f"rlimits.{key}.", value, frozenset({"soft", "hard"}))
            soft, hard = value.get("soft"), value.get("hard", value.get("soft"))
        else:
            soft = hard = value
        parsed = tuple(_limit_value(where, f"rlimits.{key}", v, rlimit) for v in (soft, hard))
        highest = _highest(rlimit)
        for number in parsed:
            if number != RLIM_INFINITY and not _LOWEST.get(rlimit.name, 1) <= number <= highest:
                raise BadInputError(
                    f"{where}: rlimits.{key} = {number} is out of range"
                    f" [{_LOWEST.get(rlimit.name, 1)}, {highest}]"
                )
        if parsed[1] != RLIM_INFINITY and (parsed[0] == RLIM_INFINITY or parsed[0] > parsed[1]):
            raise BadInputError(
                f"{where}: rlimits.{key}: soft {_shown(parsed[0])} is above hard"
                f" {_shown(parsed[1])}"
            )
        return Want(cls(rlimit.name), parsed)

    @classmethod
    def plan(cls, wants: tuple[Want, ...], situation: Situation) -> Part:
        """A running process's limits with --pid (prlimit); with --persist, later ones'.

        Those started later get limits.d's lines and systemd's defaults, raise-only against
        this host's own.
        """
        host, changes, persisted, warnings = situation.host, [], [], []
        if situation.persist:
            logins = [cls(w.setting.key).change(host.rlimit("self", w.setting.key), w.value)
                      for w in wants]  # fmt: skip
            persisted = [c for c in logins if c.changes]
            if persisted:
                warnings.append(
                    "limits.d's '*' lines do not apply to root (pam_limits): root's logins keep"
                    " their limits; systemd services read only the systemd drop-in"
                )
        user = situation.app_user
        if wants and user and situation.unit is None:
            warnings.append(
                f"{situation.profile_name} runs as the user {user}: for its service, the place"
                f" is the unit's Limit*= (apply --unit NAME), as services never read limits.d;"
                f" for {user}'s logins, limits.d's lines must name {user} or match it ('*'"
                " does, but not root)"
            )
        if situation.pid is not None:
            changes = [_process_change(want, situation.pid, host) for want in wants]
        elif wants and not situation.persist:
            warnings.append(
                "rlimits are applied only with --persist (limits.d) or --pid (prlimit)"
            )
        return Part(tuple(changes), tuple(persisted), tuple(warnings))

    @classmethod
    def judge(cls, wants: tuple[Want, ...], situation: Situation) -> tuple[Verdict, ...]:
        """The judged process's limits, soft and hard, against the profile's.

        Met when apply would change neither (the default stack of a process yet to start
        is met only at exactly the profile's size).
        """
        verdicts = []
        for want in wants:
            setting = cls(want.setting.key, situation.pid)
            try:
                soft, hard = situation.rlimits[setting.name]
            except (OSError, KeyError) as error:
                reason = f"could not read the process's {setting.name}: {error}"
                verdicts.append(unjudged(setting, want.value, reason))
                continue
            now = (_finite(soft), _finite(hard))
            verdicts.append(verdict(setting.change(now, want.value)))
        return tuple(verdicts)

    def change(self, before: Limits, wanted: Limits) -> Change:
        """Raise-only, soft and hard each: a higher (or unlimited) value is kept.

        Except the soft stack of processes started later: a default size, not a ceiling,
        so it is set as asked (within the hard limit). A running process's is only raised:
        glibc read it at start-up, and lowering it under a grown main stack would crash it.
        """
        after = [_higher(now, asked) for now, asked in zip(before, wanted, strict=True)]
        if self.pid is None and self.name == "RLIMIT_STACK":
            after[0] = wanted[0] if after[1] == RLIM_INFINITY else min(wanted[0], after[1])
        raised = all(_higher(b, a) == a for b, a in zip(before, after, strict=True))
        action = Action.KEEP if tuple(after) == before else Action.RAISE if raised else Action.SET
        return Change(self, before, (after[0], after[1]), action, wanted)


def _process_change(want: Want, pid: int, host: Host) -> Change:
    """Raise a running process's limit (prlimit), tied to that process by its start time."""
    try:
        setting = RlimitSetting(want.setting.key, pid).identified(host)
        return setting.change(setting.read(host), want.value)
    except Gone:
        raise BadInputError(f"no process with pid {pid}") from None


def _finite(value: int | None) -> int:
    return RLIM_INFINITY if value is None else value


def _highest(rlimit: Rlimit) -> int:
    """The largest finite value: for nofile what fs.nr_open can ever be, else 2^63 - 1."""
    return NR_OPEN_MAX if rlimit.name == "RLIMIT_NOFILE" else 2**63 - 1


def _higher(now: int, wanted: int) -> int:
    if RLIM_INFINITY in (now, wanted):
        return RLIM_INFINITY
    return max(now, wanted)


def _shown(value: int) -> str:
    return "unlimited" if value == RLIM_INFINITY else str(value)


def _limit_value(where: str, key: str, value: object, rlimit: Rlimit) -> int:
    if value in ("unlimited", "infinity"):
        return RLIM_INFINITY
    if rlimit.in_bytes and isinstance(value, str):
        try:
            return parse_size(value)
        except BadInputError as error:
            raise BadInputError(f"{where}: {key}: {error}") from None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        what = "a size such as 256K or a number of bytes" if rlimit.in_bytes else "a whole number"
        raise BadInputError(f'{where}: {key} must be {what} greater than zero or "unlimited"')
    return value
