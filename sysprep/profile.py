"""TOML profiles: find one by name or path, resolve `extends`, validate every key before use."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from sysprep.errors import BadInputError
from sysprep.facts import PROBES
from sysprep.units import parse_size

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

if TYPE_CHECKING:
    from sysprep.host import Host

PACKAGE_DIR = Path(__file__).resolve().parent
# Shipped profiles: inside the wheel, or beside the package in a checkout; then the host's own.
SHIPPED_DIRS = (PACKAGE_DIR / "_profiles", PACKAGE_DIR.parent / "profiles")
HOST_DIR = "etc/sysprep/profiles"

# Bounds the kernel enforces (proc_dointvec_minmax), checked before anything is written.
SYSCTL_BOUNDS = {
    "kernel.threads-max": (1, 0x3FFFFFFF),  # FUTEX_TID_MASK
    "kernel.pid_max": (301, 4 * 1024 * 1024),  # PID_MAX_LIMIT on 64-bit
    "vm.max_map_count": (0, 2**31 - 1),
}
# The sysctls the capacity model can size from the target ("auto").
AUTO_SYSCTLS = frozenset(SYSCTL_BOUNDS)
RLIMITS = {
    "stack": "RLIMIT_STACK",
    "nproc": "RLIMIT_NPROC",
    "nofile": "RLIMIT_NOFILE",
    "as": "RLIMIT_AS",
}
_SIZE_RLIMITS = frozenset({"stack", "as"})
_TOP_KEYS = frozenset({"description", "extends", "target", "sysctl", "rlimits", "probes"})
_TARGET_KEYS = frozenset({"threads", "stack"})
_PROBE_KEYS = frozenset({"name", "count", "stack"})
AUTO = "auto"


@dataclass(frozen=True)
class SysctlWant:
    """A sysctl value a profile asks for: at least *value* (raise-only), or exactly it."""

    key: str
    value: int | str  # AUTO: sized by the capacity model from the target
    exact: bool = False


@dataclass(frozen=True)
class RlimitWant:
    """Soft and hard values of one rlimit (None: unlimited)."""

    name: str  # RLIMIT_NPROC, ...
    soft: int | None
    hard: int | None


@dataclass(frozen=True)
class ProbeWant:
    """A probe that validates the profile after it is applied."""

    name: str
    count: int
    stack: int | None = None


@dataclass(frozen=True)
class Profile:
    """A validated profile, `extends` already merged (the child wins, key by key)."""

    name: str
    path: Path
    description: str
    threads: int
    stack: int | None
    sysctls: tuple[SysctlWant, ...]
    rlimits: tuple[RlimitWant, ...]
    probes: tuple[ProbeWant, ...] = field(default=())


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


def load(name_or_path: str, host: Host) -> Profile:
    """Find, parse, merge `extends` and validate a profile; BadInputError names file and key."""
    path = find(name_or_path, host)
    merged = _merged(path, host, seen=())
    return _validate(path, merged, host)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise BadInputError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise BadInputError(f"{path}: cannot read: {error.strerror}") from None


def _merged(path: Path, host: Host, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path.resolve() in seen:
        chain = " -> ".join(p.stem for p in (*seen, path.resolve()))
        raise BadInputError(f"{path}: extends cycle: {chain}")
    data = _read(path)
    parent_name = data.get("extends")
    if parent_name is None:
        return data
    if not isinstance(parent_name, str):
        raise BadInputError(f"{path}: extends must be a profile name (a string)")
    parent = _merged(find(parent_name, host), host, (*seen, path.resolve()))
    merged = {
        **parent,
        **{k: v for k, v in data.items() if k not in ("sysctl", "rlimits", "target")},
    }
    for table in ("sysctl", "rlimits", "target"):
        merged[table] = {**parent.get(table, {}), **data.get(table, {})}
    merged.pop("extends", None)
    return merged


def _validate(path: Path, data: dict[str, Any], host: Host) -> Profile:
    where = str(path)
    _only(where, "", data, _TOP_KEYS)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise BadInputError(f"{where}: description must be a string")
    target = _table(where, "target", data)
    _only(where, "target.", target, _TARGET_KEYS)
    threads = target.get("threads")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads <= 0:
        raise BadInputError(f"{where}: target.threads must be a whole number greater than zero")
    stack = _size(where, "target.stack", target["stack"]) if "stack" in target else None
    sysctls = tuple(
        _sysctl(where, key, value, host) for key, value in _table(where, "sysctl", data).items()
    )
    rlimits = tuple(
        _rlimit(where, key, value) for key, value in _table(where, "rlimits", data).items()
    )
    probes_data = data.get("probes", [])
    if not isinstance(probes_data, list):
        raise BadInputError(f"{where}: probes must be an array of tables ([[probes]])")
    probes = tuple(_probe(where, i, entry, threads) for i, entry in enumerate(probes_data))
    return Profile(path.stem, path, description, threads, stack, sysctls, rlimits, probes)


def _only(where: str, prefix: str, data: dict[str, Any], allowed: frozenset[str]) -> None:
    for key in data:
        if key not in allowed:
            hint = f"; expected one of {', '.join(sorted(allowed))}"
            raise BadInputError(f"{where}: unknown key '{prefix}{key}'{hint}")


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


def _sysctl(where: str, key: str, value: object, host: Host) -> SysctlWant:
    try:
        proc_path = host.sysctl_path(key)
    except BadInputError:
        raise BadInputError(
            f"{where}: sysctl {key!r} is not a sysctl name (it would leave /proc/sys)"
        ) from None
    if not proc_path.is_file():
        raise BadInputError(f"{where}: sysctl {key!r} does not exist on this kernel (/proc/sys)")
    exact = False
    if isinstance(value, dict):
        _only(where, f"sysctl.{key}.", value, frozenset({"value", "exact"}))
        exact = value.get("exact", False)
        if not isinstance(exact, bool):
            raise BadInputError(f"{where}: sysctl {key!r}: exact must be true or false")
        value = value.get("value")
    if value == AUTO:
        if key not in AUTO_SYSCTLS:
            raise BadInputError(
                f'{where}: sysctl {key!r}: "auto" is only for {", ".join(sorted(AUTO_SYSCTLS))}'
            )
        return SysctlWant(key, AUTO, exact)
    if isinstance(value, str):  # several numbers, e.g. ip_local_port_range "1024 65535"
        if not all(part.lstrip("-").isdigit() for part in value.split()) or not value.split():
            raise BadInputError(
                f'{where}: sysctl {key!r} must be a whole number, "auto" or numbers'
                f' such as "1024 65535", not {value!r}'
            )
        return SysctlWant(key, " ".join(value.split()), exact=True)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadInputError(
            f'{where}: sysctl {key!r} must be a whole number or "auto", not {value!r}'
        )
    low, high = SYSCTL_BOUNDS.get(key, (-(2**63), 2**63 - 1))
    if not low <= value <= high:
        raise BadInputError(f"{where}: sysctl {key!r} = {value} is out of range [{low}, {high}]")
    return SysctlWant(key, value, exact)


def _rlimit(where: str, key: str, value: object) -> RlimitWant:
    if key not in RLIMITS:
        raise BadInputError(
            f"{where}: unknown rlimit {key!r}; expected one of {', '.join(RLIMITS)}"
        )
    if isinstance(value, dict):
        _only(where, f"rlimits.{key}.", value, frozenset({"soft", "hard"}))
        soft, hard = value.get("soft"), value.get("hard", value.get("soft"))
    else:
        soft = hard = value
    parsed = [
        _limit_value(where, f"rlimits.{key}", v, size=key in _SIZE_RLIMITS) for v in (soft, hard)
    ]
    if parsed[0] is not None and parsed[1] is not None and parsed[0] > parsed[1]:
        raise BadInputError(f"{where}: rlimits.{key}: soft {parsed[0]} is above hard {parsed[1]}")
    return RlimitWant(RLIMITS[key], parsed[0], parsed[1])


def _limit_value(where: str, key: str, value: object, *, size: bool) -> int | None:
    if value in ("unlimited", "infinity"):
        return None
    if size:
        return _size(where, key, value)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BadInputError(
            f'{where}: {key} must be a whole number greater than zero or "unlimited"'
        )
    return value


def _probe(where: str, index: int, entry: object, threads: int) -> ProbeWant:
    key = f"probes[{index}]"
    if not isinstance(entry, dict):
        raise BadInputError(f"{where}: {key} must be a table")
    _only(where, f"{key}.", entry, _PROBE_KEYS)
    name = entry.get("name")
    if name not in PROBES:
        raise BadInputError(f"{where}: {key}.name must be one of {', '.join(sorted(PROBES))}")
    count = entry.get("count", threads)
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
        raise BadInputError(f"{where}: {key}.count must be a whole number greater than zero")
    stack = _size(where, f"{key}.stack", entry["stack"]) if "stack" in entry else None
    return ProbeWant(name, count, stack)
