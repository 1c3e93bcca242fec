"""The lines of the files sysprep owns: merged into what is there, and taken back out.

sysprep writes one file of each kind (facts.OWNED_FILES, a service's drop-in), but it is not
the only writer: an earlier apply, an operator or another tool may have lines there. A line
is keyed by what it sets — a sysctl (sysctl.d), a domain, type and item (limits.conf), a
section and a property (a systemd drop-in) — and:

- merging a profile's lines keeps every line already there; a key the profile also names
  takes the higher value (raise-only), in place; a value that cannot be compared refuses
  the plan, naming the line; new keys go at the end (of their section);
- undoing an apply takes back exactly the lines it changed: each key back to the line it
  had before, where the line is still the one that apply wrote; the others are named.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from typing import NamedTuple

from sysprep.errors import BadInputError

if TYPE_CHECKING:
    from sysprep.facts import OwnedFile

HEADER = "# Managed by sysprep: apply --persist merges lines in, revert takes its own back"
# The header's key; it matches sysprep 0.1.0's too ("# Written by `sysprep apply ...").
HEADER_KEY = ("#sysprep",)
_HEADERS = ("# Managed by sysprep:", "# Written by `sysprep apply")
_INFINITE = frozenset({"infinity", "unlimited", "-1"})
_SIZE = re.compile(r"(\d+)([kmgtpe]?)")
_SECTION = re.compile(r"\[([A-Za-z0-9_-]+)\]")
Key = tuple[str, ...]
Changed = dict[Key, tuple[str | None, str | None]]  # key → (its line before, after)


class Line(NamedTuple):
    """A line sysprep wants in an owned file: what it sets (*key*) and the value.

    *exact*: the value is set as it is (several numbers, or a profile's exact = true), not
    only ever raised.
    """

    key: Key
    value: str
    exact: bool = False


class Slot(NamedTuple):
    """One line of a file as it is: its text, and what it sets (None: nothing keyed)."""

    text: str
    key: Key | None = None
    value: str = ""


def text_of(syntax: str, key: Key, value: str) -> str:
    """A line as the file's syntax writes it (without its newline)."""
    if syntax == "sysctl":
        return f"{key[0]} = {value}"
    if syntax == "limits":
        return f"{' '.join(key)} {value}"
    return f"{key[1]}={value}"  # systemd: (section, property)


def parse(syntax: str, data: bytes | None, path: str) -> list[Slot]:
    """The lines of a file; BadInputError when it is not text sysprep can keep intact."""
    if data is None:
        return []
    try:
        text = data.decode()
    except UnicodeDecodeError as error:
        raise BadInputError(
            f"{path} is not UTF-8 text (byte {error.start}): sysprep merges only into what"
            " it can keep intact; move it away, or apply without --persist"
        ) from None
    slots, section = [], ""
    for line in text.splitlines():
        slot = _slot(syntax, line, section)
        if slot.key is not None and slot.key[0] == "[":
            section = slot.key[1]
        slots.append(slot)
    return slots


def merge(owned: OwnedFile, data: bytes | None, lines: list[Line]) -> bytes:
    """*data* (None: no file yet) with *lines* merged in, raise-only.

    BadInputError names a line whose value cannot be compared with the profile's: raising
    it would lose what it says, keeping it would lose the profile's.
    """
    syntax = owned.syntax
    out = parse(syntax, data, owned.path)
    if _find(out, HEADER_KEY) is None:
        out.insert(0, Slot(HEADER, HEADER_KEY))
    for line in lines:
        index = _find(out, line.key)
        if index is not None:
            value = _kept(syntax, out[index], line, owned)
            out[index] = Slot(text_of(syntax, line.key, value), line.key, value)
            continue
        at = len(out)
        if syntax == "systemd":
            if _find(out, ("[", line.key[0])) is None:
                out.append(Slot(f"[{line.key[0]}]", ("[", line.key[0])))
            at = _end_of_section(out, line.key[0])
        out.insert(at, Slot(text_of(syntax, line.key, line.value), line.key, line.value))
    return ("\n".join(slot.text for slot in out) + "\n").encode()


def changed_lines(syntax: str, before: bytes | None, after: bytes | None, path: str) -> Changed:
    """The keyed lines an apply changed, from the file before and after it."""
    old = {s.key: s.text for s in parse(syntax, before, path) if s.key is not None}
    new = {s.key: s.text for s in parse(syntax, after, path) if s.key is not None}
    keys = [*old, *(key for key in new if key not in old)]
    return {key: (old.get(key), new.get(key)) for key in keys if old.get(key) != new.get(key)}


def unapply(
    syntax: str, data: bytes | None, changed: Changed, path: str
) -> tuple[bytes | None, list[Key]]:
    """*data* with each *changed* key's line as it was before the apply, and the conflicts.

    A line goes back where it is still the one the apply wrote; the keys where it is not
    (changed since) come back apart. A section header the apply added goes only once
    nothing else stands under it. None: nothing is left of the file.
    """
    out = parse(syntax, data, path)
    conflicts = []
    # A section header goes last, and only once nothing else stands under it.
    structural = [k for k in changed if k[0] == "["]
    for key in [*(k for k in changed if k not in structural), *structural]:
        old, new = changed[key]
        index = _find(out, key)
        now = None if index is None else out[index].text
        if now == old:
            continue
        if index is None or now != new:
            conflicts.append(key)
            continue
        if old is not None:
            out[index] = _slot(syntax, old, key[0] if syntax == "systemd" else "")
        elif key in structural and _still_needed(out, index):
            continue
        else:
            del out[index]
    if not any(slot.text.strip() for slot in out):
        return None, conflicts
    return ("\n".join(slot.text for slot in out) + "\n").encode(), conflicts


def _slot(syntax: str, line: str, section: str) -> Slot:
    """What one line sets, in the section it stands in."""
    stripped = line.strip()
    if stripped.startswith(_HEADERS):
        return Slot(line, HEADER_KEY)
    if not stripped or stripped.startswith(("#", ";")):
        return Slot(line)
    if syntax == "sysctl":
        name, sep, value = stripped.partition("=")
        name = name.strip().lstrip("-")
        if "/" in name:  # procps takes /proc/sys paths too
            name = name.translate(str.maketrans("/.", "./"))
        return Slot(line, (name,), " ".join(value.split())) if sep and name else Slot(line)
    if syntax == "limits":
        fields = stripped.split()
        return Slot(line, tuple(fields[:3]), fields[3]) if len(fields) == 4 else Slot(line)  # noqa: PLR2004
    match = _SECTION.fullmatch(stripped)
    if match:
        return Slot(line, ("[", match[1]))
    name, sep, value = stripped.partition("=")
    return Slot(line, (section, name.strip()), value.strip()) if sep and section else Slot(line)


def _find(slots: list[Slot], key: Key) -> int | None:
    """The last line that sets *key* (the one that wins)."""
    return next((i for i in range(len(slots) - 1, -1, -1) if slots[i].key == key), None)


def _end_of_section(slots: list[Slot], section: str) -> int:
    """Where a new property of *section* goes: after the section's last line."""
    start = _find(slots, ("[", section))
    assert start is not None  # noqa: S101 - merge() adds the section first
    for index in range(start + 1, len(slots)):
        key = slots[index].key
        if key is not None and key[0] == "[":
            return index
    return len(slots)


def _still_needed(slots: list[Slot], index: int) -> bool:
    """True when a section header still stands over other lines."""
    for slot in slots[index + 1 :]:
        if slot.key is not None and slot.key[0] == "[":
            return False
        if slot.key is not None:
            return True
    return False


def _kept(syntax: str, slot: Slot, line: Line, owned: OwnedFile) -> str:
    """The value a key keeps where the file says one and the profile another.

    The higher of the two (soft and hard each), unless the profile's is exact.
    """
    if line.exact or slot.value == line.value:
        return line.value
    theirs, ours = _numbers(syntax, slot.value), _numbers(syntax, line.value)
    if theirs is None or ours is None or len(theirs) != len(ours):
        raise BadInputError(
            f"{owned.path}: '{slot.text.strip()}' sets a value sysprep cannot compare with"
            f" {line.value}; edit or remove that line, then apply again"
        )
    higher = [max(a, b) for a, b in zip(theirs, ours, strict=True)]
    if higher == list(theirs):
        return slot.value
    if higher == list(ours):
        return line.value
    return ":".join(_shown(syntax, v) for v in higher)  # soft of one, hard of the other


def _numbers(syntax: str, value: str) -> tuple[float, ...] | None:
    """A value as numbers (soft:hard as two, a size in bytes, infinity); None if not one."""
    parts = value.split(":") if syntax == "systemd" else [value]
    numbers = []
    for part in parts:
        text = part.strip().lower()
        if text in _INFINITE:
            numbers.append(float("inf"))
            continue
        match = _SIZE.fullmatch(text)
        if match is None:
            return None
        power = "kmgtpe".find(match[2]) + 1 if match[2] else 0
        numbers.append(float(int(match[1]) * 1024**power))
    return tuple(numbers)


def _shown(syntax: str, value: float) -> str:
    if value == float("inf"):
        return "infinity" if syntax == "systemd" else "unlimited"
    return str(int(value))
