"""What sysprep reads of an executable: is it Go (and which Go), is it dynamically linked.

Reads the ELF headers and 64 bytes of one section; never runs the program.

Go writes its build info into the section ".go.buildinfo" (Go >= 1.13): 16 bytes of magic and
flags, then (Go >= 1.18, flag bit 2) the Go version as a varint-prefixed string at offset 32
(src/debug/buildinfo/buildinfo.go).
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING
from typing import NamedTuple

if TYPE_CHECKING:
    from typing import BinaryIO

_MAGIC = b"\x7fELF"
_GO_MAGIC = b"\xff Go buildinf:"
_GO_INLINE_STRINGS = 0x2
_IDENT = 16  # e_ident: magic, class, byte order, ...
_GO_HEADER = 32  # magic, pointer size, flags, padding; then the version string
_VARINT_MORE = 0x80
_PT_INTERP = 3
_MAX_SECTIONS = 4096  # more is not a binary we can trust to read
# The most of a section-name table read: names are short, and a file may claim any size.
_MAX_NAMES = 1 << 20


class Executable(NamedTuple):
    """What sysprep needs to know of a program's binary."""

    dynamic: bool  # it names an interpreter (ld.so): glibc's pthread_create makes its threads
    go_version: str | None  # "go1.19.8"; "go" when the build info predates Go 1.18


class _Layout(NamedTuple):
    header: str  # struct format of the ELF header fields we read
    program: str  # of one program header: (type, offset, filesz)
    section: str  # of one section header: (name, offset, size)


# e_phoff, e_shoff, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
_LAYOUTS = {
    2: _Layout("16x 2x 2x 4x 8x Q Q 4x 2x H H H H H", "I 4x Q 16x Q", "I 4x 8x 8x Q Q"),  # 64-bit
    1: _Layout("16x 2x 2x 4x 4x I I 4x 2x H H H H H", "I I 8x I", "I 4x 4x 4x I I"),  # 32-bit
}


def read_executable(binary: BinaryIO) -> Executable:
    """The facts of the ELF file *binary*; ValueError when it is not one we can read.

    Every offset and size the file states is bounded by the file's own size and by what is
    needed: a crafted header claiming 2^64 - 1 bytes costs nothing.
    """
    ident = binary.read(_IDENT)
    if len(ident) < _IDENT or not ident.startswith(_MAGIC) or ident[4] not in _LAYOUTS:
        raise ValueError("not an ELF executable")
    order = "<" if ident[5] == 1 else ">"
    layout = _LAYOUTS[ident[4]]
    binary.seek(0)
    header = binary.read(struct.calcsize(order + layout.header))
    phoff, shoff, phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack(
        order + layout.header, header
    )
    dynamic = any(
        kind == _PT_INTERP
        for kind, _, _ in _entries(binary, order + layout.program, phoff, phentsize, phnum)
    )
    sections = list(_entries(binary, order + layout.section, shoff, shentsize, shnum))
    if not sections or shstrndx >= len(sections):
        return Executable(dynamic, None)
    _, names_at, names_size = sections[shstrndx]
    names = _read_at(binary, names_at, min(names_size, _MAX_NAMES))
    for name, offset, size in sections:
        if names[name : names.find(b"\0", name)] == b".go.buildinfo":
            return Executable(dynamic, _go_version(_read_at(binary, offset, min(size, 64))))
    return Executable(dynamic, None)


def _entries(
    binary: BinaryIO, entry: str, offset: int, size: int, count: int
) -> list[tuple[int, int, int]]:
    if not offset or not count or count > _MAX_SECTIONS or size < struct.calcsize(entry):
        return []
    table = _read_at(binary, offset, size * count)
    return [struct.unpack_from(entry, table, i * size) for i in range(len(table) // size)]


def _read_at(binary: BinaryIO, offset: int, size: int) -> bytes:
    """At most *size* bytes at *offset*, never past the end of the file."""
    end = binary.seek(0, os.SEEK_END)
    if not 0 <= offset < end:
        return b""
    binary.seek(offset)
    return binary.read(max(min(size, end - offset), 0))


def _go_version(data: bytes) -> str | None:
    """The Go version ("go1.19.8") at the start of a .go.buildinfo section; "go" before 1.18."""
    if not data.startswith(_GO_MAGIC) or len(data) <= _GO_HEADER:
        return None
    if not data[15] & _GO_INLINE_STRINGS:
        return "go"  # before Go 1.18 the strings are pointers into the data segment
    length = data[_GO_HEADER]  # a varint; a version string is shorter than 128 bytes
    start = _GO_HEADER + 1
    version = data[start : start + length] if length < _VARINT_MORE else b""
    return version.decode(errors="replace") or "go"
