"""TOML profiles: find one by name or path, resolve `extends`, validate every key before use."""

from __future__ import annotations

import errno
import os
import stat
import sys
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from sysprep.errors import BadInputError
from sysprep.facts import PROBES
from sysprep.facts import THREADS_MAX_LIMIT
from sysprep.runtimes import RUNTIMES
from sysprep.settings import item_of
from sysprep.settings import only_keys
from sysprep.settings.kinds import tables
from sysprep.units import parse_size

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

if TYPE_CHECKING:
    from sysprep.host import Host
    from sysprep.settings import Want

PACKAGE_DIR = Path(__file__).resolve().parent
# Shipped profiles: inside the wheel, or beside the package in a checkout; then the host's own.
SHIPPED_DIRS = (PACKAGE_DIR / "_profiles", PACKAGE_DIR.parent / "profiles")
HOST_DIR = "etc/sysprep/profiles"
_MAX_BYTES = 1 << 20  # a profile is a few hundred bytes; a huge (or sparse) file is not one

# The keys of a profile besides its tables of settings (settings.kinds.tables()).
_TOP_KEYS = frozenset({"description", "extends", "target", "probes", "application"})
_APPLICATION_KEYS = frozenset({"name", "user", "docs", "checks"})
_CHECK_KEYS = frozenset({"check", "docs"})
_TARGET_KEYS = frozenset({"threads", "stack", "runtime", "connections"})
_PROBE_KEYS = frozenset({"name", "count", "stack"})


@dataclass(frozen=True)
class ProbeWant:
    """A probe that validates the profile after it is applied."""

    name: str
    count: int
    stack: int | None = None


@dataclass(frozen=True)
class AppCheck:
    """An application's own check of one item: its name there, and its documentation page."""

    check: str
    docs: str


@dataclass(frozen=True)
class Application:
    """The application a profile is for: its name, the user it runs as, its own checks.

    *checks* by the item each judges (RLIMIT_NOFILE, vm.max_map_count), from the profile's
    `[application.checks]`, keyed as its tables key them (nofile, "vm.max_map_count").
    """

    name: str
    docs: str
    user: str | None = None
    checks: dict[str, AppCheck] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """A validated profile, `extends` already merged (the child wins, key by key)."""

    name: str
    path: Path
    description: str
    threads: int
    stack: int | None
    wants: tuple[Want, ...]  # table by table (settings.kinds), each in the file's order
    probes: tuple[ProbeWant, ...] = field(default=())
    runtime: str | None = None  # the program the target is for: c, jvm, rust or go
    connections: int | None = None  # concurrent TCP connections the target holds too
    application: Application | None = None  # the application it is for, and its own checks

    def wanted(self, kind: type) -> tuple[Want, ...]:
        """What the profile asks of one kind of setting."""
        return tuple(want for want in self.wants if isinstance(want.setting, kind))


def find(name_or_path: str, host: Host) -> Path:
    """A profile file: a path if it names one, else NAME.toml in the shipped or host dirs."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or "/" in name_or_path:
        if not candidate.is_file():
            raise BadInputError(f"profile {name_or_path}: no such file")
        return candidate
    if not name_or_path.replace("-", "").replace("_", "").isalnum():
        raise BadInputError(f"invalid profile name {name_or_path!r}: letters, digits, - and _")
    for directory in (*SHIPPED_DIRS, host.path(HOST_DIR)):
        path = directory / f"{name_or_path}.toml"
        if path.is_file():
            return path
    known = sorted(
        {p.stem for d in (*SHIPPED_DIRS, host.path(HOST_DIR)) for p in d.glob("*.toml")}
    )
    raise BadInputError(f"no profile named {name_or_path!r}; known: {', '.join(known) or 'none'}")


def load(name_or_path: str, host: Host, *, trust: bool = True) -> Profile:
    """Find, parse, merge `extends` and validate a profile; BadInputError names file and key.

    Without *trust* (apply, as root), a profile writable by group or others, or owned by
    another user than root or the caller, is refused: whoever can write it could make root
    set any sysctl. Shipped profiles are trusted as the code beside them is.
    """
    path = find(name_or_path, host)
    merged = _merged(path, host, seen=(), trust=trust)
    return _validate(path, merged, host)


def _read(path: Path, *, trust: bool) -> dict[str, Any]:
    """Parse a profile file: opened once, then checked (no check-then-open race).

    It must be a regular file of at most _MAX_BYTES of UTF-8 TOML.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # non-blocking: a FIFO cannot hang
    if not trust and _others_may_write(path.parent):
        flags |= os.O_NOFOLLOW  # in /tmp, a symlink is whoever made it's choice of file
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise BadInputError(
                f"{path}: refusing a symlink in a directory others may write;"
                " name the file it points to, or pass --trust-profile"
            ) from None
        raise BadInputError(f"{path}: cannot read: {error.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise BadInputError(f"{path}: not a regular file")
        if not trust:
            _check_trust(path, info)
        data = f.read(_MAX_BYTES + 1)
    if len(data) > _MAX_BYTES:
        raise BadInputError(f"{path}: over {_MAX_BYTES // 1024} KiB: not a profile")
    try:
        return tomllib.loads(data.decode())
    except UnicodeDecodeError as error:
        raise BadInputError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except tomllib.TOMLDecodeError as error:
        raise BadInputError(f"{path}: not valid TOML: {error}") from None
    except RecursionError:
        raise BadInputError(f"{path}: nested too deeply to be a profile") from None


def _others_may_write(directory: Path) -> bool:
    """True when others than its owner may write *directory*, so swap a symlink in it.

    Not on a read-only mount, whatever its mode: a ConfigMap volume is 0777 behind kubelet's
    ..data symlinks, and mounted read-only in the pod; only kubelet writes it.
    """
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return False
        return bool(directory.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH))
    except OSError:
        return True


def _check_trust(path: Path, info: os.stat_result) -> None:
    fix = "fix its owner or mode, or pass --trust-profile"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        mode = f"{stat.S_IMODE(info.st_mode):04o}"
        raise BadInputError(
            f"{path}: refusing a profile writable by group or others ({mode}); {fix}"
        )
    shipped = path.resolve().parent in {d.resolve() for d in SHIPPED_DIRS}
    if not shipped and info.st_uid not in (0, os.geteuid()):
        raise BadInputError(f"{path}: refusing a profile owned by uid {info.st_uid}; {fix}")


def _merged(path: Path, host: Host, seen: tuple[Path, ...], *, trust: bool) -> dict[str, Any]:
    if path.resolve() in seen:
        chain = " -> ".join(p.stem for p in (*seen, path.resolve()))
        raise BadInputError(f"{path}: extends cycle: {chain}")
    data = _read(path, trust=trust)
    parent_name = data.get("extends")
    if parent_name is None:
        return data
    if not isinstance(parent_name, str):
        raise BadInputError(f"{path}: extends must be a profile name (a string)")
    if "/" in parent_name and not parent_name.endswith(".toml"):  # never /etc/shadow
        raise BadInputError(
            f"{path}: extends {parent_name!r}: name a profile, or a profile's .toml file"
        )
    parent = _merged(find(parent_name, host), host, (*seen, path.resolve()), trust=trust)
    merged_tables = (*tables(), "target", "application")
    merged = {**parent, **{k: v for k, v in data.items() if k not in merged_tables}}
    for table in merged_tables:
        merged[table] = {**parent.get(table, {}), **data.get(table, {})}
    checks = [d.get("application", {}).get("checks", {}) for d in (parent, data)]
    if all(isinstance(c, dict) for c in checks) and any(checks):
        merged["application"]["checks"] = {**checks[0], **checks[1]}
    merged.pop("extends", None)
    return merged


def _validate(path: Path, data: dict[str, Any], host: Host) -> Profile:
    where = str(path)
    kinds = tables()
    only_keys(where, "", data, _TOP_KEYS | set(kinds))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise BadInputError(f"{where}: description must be a string")
    target = _table(where, "target", data)
    only_keys(where, "target.", target, _TARGET_KEYS)
    threads = target.get("threads")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads <= 0:
        raise BadInputError(f"{where}: target.threads must be a whole number greater than zero")
    if threads > THREADS_MAX_LIMIT:
        raise BadInputError(
            f"{where}: target.threads = {threads:,} is more than any kernel runs"
            f" (kernel.threads-max is at most {THREADS_MAX_LIMIT:,})"
        )
    stack = _size(where, "target.stack", target["stack"]) if "stack" in target else None
    runtime = target.get("runtime")
    if runtime is not None and runtime not in RUNTIMES:
        raise BadInputError(
            f"{where}: target.runtime = {runtime!r} is not one of {', '.join(RUNTIMES)}"
        )
    connections = target.get("connections")
    if connections is not None and (
        not isinstance(connections, int) or isinstance(connections, bool) or connections <= 0
    ):
        raise BadInputError(
            f"{where}: target.connections must be a whole number greater than zero"
        )
    wants = tuple(
        kind.want(where, key, value, host)
        for table, kind in kinds.items()
        for key, value in _table(where, table, data).items()
    )
    probes_data = data.get("probes", [])
    if not isinstance(probes_data, list):
        raise BadInputError(f"{where}: probes must be an array of tables ([[probes]])")
    probes = tuple(_probe(where, i, entry, threads) for i, entry in enumerate(probes_data))
    application = _application(where, data, wants)
    return Profile(
        path.stem,
        path,
        description,
        threads,
        stack,
        wants,
        probes,
        runtime,
        connections,
        application,
    )


def _application(where: str, data: dict[str, Any], wants: tuple[Want, ...]) -> Application | None:
    """The `[application]` table: its name, docs, user, and checks of items of the profile."""
    from sysprep.facts import BY_PROFILE_KEY

    table = _table(where, "application", data)
    if not table:
        return None
    only_keys(where, "application.", table, _APPLICATION_KEYS)
    texts = {key: table.get(key) for key in ("name", "docs", "user")}
    for key, value in texts.items():
        if (value is not None or key != "user") and not (isinstance(value, str) and value):
            raise BadInputError(f"{where}: application.{key} must be a non-empty string")
    items = {item_of(want.setting) for want in wants}
    checks = {}
    raw = table.get("checks", {})
    if not isinstance(raw, dict):
        raise BadInputError(f"{where}: [application.checks] must be a table")
    for key, entry in raw.items():
        item = BY_PROFILE_KEY[key].name if key in BY_PROFILE_KEY else key
        if item not in items:
            raise BadInputError(
                f"{where}: application.checks.{key} names no item of this profile; name one"
                " of its [sysctl] or [rlimits] keys"
            )
        if not isinstance(entry, dict):
            raise BadInputError(f"{where}: application.checks.{key} must be a table")
        only_keys(where, f"application.checks.{key}.", entry, _CHECK_KEYS)
        if not all(isinstance(entry.get(k), str) and entry[k] for k in _CHECK_KEYS):
            raise BadInputError(
                f"{where}: application.checks.{key} needs check and docs (strings)"
            )
        checks[item] = AppCheck(entry["check"], entry["docs"])
    return Application(texts["name"], texts["docs"], texts["user"], checks)  # type: ignore[arg-type]


def _table(where: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise BadInputError(f"{where}: [{name}] must be a table")
    return table


def _size(where: str, key: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        try:
            return parse_size(value)
        except BadInputError as error:
            raise BadInputError(f"{where}: {key}: {error}") from None
    raise BadInputError(f"{where}: {key} must be a size such as 256K or a number of bytes")


def _probe(where: str, index: int, entry: object, threads: int) -> ProbeWant:
    key = f"probes[{index}]"
    if not isinstance(entry, dict):
        raise BadInputError(f"{where}: {key} must be a table")
    only_keys(where, f"{key}.", entry, _PROBE_KEYS)
    name = entry.get("name")
    if name not in PROBES:
        raise BadInputError(f"{where}: {key}.name must be one of {', '.join(sorted(PROBES))}")
    count = entry.get("count", threads)
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
        raise BadInputError(f"{where}: {key}.count must be a whole number greater than zero")
    if "stack" in entry and "stack" not in PROBES[name].options:
        raise BadInputError(f"{where}: {key}.stack: the {name} probe takes no stack size")
    stack = _size(where, f"{key}.stack", entry["stack"]) if "stack" in entry else None
    return ProbeWant(name, count, stack)


@dataclass(frozen=True)
class Line:
    """One `key = value` line of a profile, its comment (the source it cites), its file."""

    table: str  # "" for the top level; "rlimits", "application.checks", ...
    key: str
    text: str  # the line as written, its comment aside
    comment: str
    origin: Path


def available(host: Host) -> list[Path]:
    """Every profile `find` knows: shipped first, then the host's own, each name once."""
    found: dict[str, Path] = {}
    for directory in (*SHIPPED_DIRS, host.path(HOST_DIR)):
        for path in (
            sorted(directory.glob("*.toml"), key=lambda p: p.stem) if directory.is_dir() else ()
        ):
            found.setdefault(path.stem, path)
    return list(found.values())


def chain(path: Path, host: Host) -> list[Path]:
    """*path*, then the profile it extends, and so on (loaded, so validated first)."""
    paths = [path]
    while (parent := _read(paths[-1], trust=True).get("extends")) is not None:
        paths.append(find(parent, host))
    return paths


def lines(path: Path, host: Host) -> list[Line]:
    """The settings of *path* as `show` prints them, `extends` resolved (the child's wins).

    Each `key = value` line with its comment, in the file's order, base first.
    """
    resolved: dict[tuple[str, str], Line] = {}
    for origin in reversed(chain(path, host)):
        table = ""
        for raw in origin.read_text().splitlines():
            text, _, comment = raw.partition(" #")
            stripped = text.strip()
            if stripped.startswith("["):
                table = stripped.strip("[]")
            elif "=" in stripped and not raw.startswith("#") and table != "probes":
                key = stripped.partition("=")[0].strip().strip('"')
                if table:  # the top level (description, extends) is the title's
                    resolved[(table, key)] = Line(table, key, stripped, comment.strip(), origin)
    tables = list(dict.fromkeys(table for table, _ in resolved))
    return sorted(resolved.values(), key=lambda line: tables.index(line.table))
