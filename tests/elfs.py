"""Minimal ELF64 files for tests: section headers, named sections and optionally PT_INTERP."""

from __future__ import annotations

import struct

GO_MAGIC = b"\xff Go buildinf:"


def go_build_info(version: str) -> bytes:
    """A Go >= 1.18 .go.buildinfo section: magic, pointer size, inline-strings flag, version."""
    header = GO_MAGIC + bytes([8, 0x2]) + bytes(16)
    return header + bytes([len(version)]) + version.encode() + bytes([0])


def elf64(
    sections: dict[str, bytes], *, interp: bool = False, names_claim: int | None = None
) -> bytes:
    """An x86_64 ELF file with these sections (and .shstrtab), little-endian.

    *names_claim*: the size the section-name table's header claims (a crafted binary's lie).
    """
    names = b"\0" + b"".join(name.encode() + b"\0" for name in (*sections, ".shstrtab"))
    body = b""
    placed = []  # (name offset, file offset, size)
    data_start = 64 + (56 if interp else 0)
    name_at = 1
    for name, data in (*sections.items(), (".shstrtab", names)):
        placed.append((name_at, data_start + len(body), len(data)))
        name_at += len(name) + 1
        body += data
    shoff = data_start + len(body)
    header = struct.pack(
        "<4sBBBB8xHHIQQQIHHHHHH",
        b"\x7fELF", 2, 1, 1, 0,  # 64-bit, little-endian, version 1, System V
        2, 62, 1, 0x401000,  # ET_EXEC, x86_64, version, entry
        64 if interp else 0, shoff, 0, 64, 56, 1 if interp else 0, 64, len(placed) + 1,
        len(placed),  # the last section is .shstrtab
    )  # fmt: skip
    program = struct.pack("<IIQQQQQQ", 3, 4, 0, 0, 0, 0, 0, 1) if interp else b""
    table = bytes(64)  # section 0 is the null section
    for index, (name, offset, size) in enumerate(placed):
        claimed = names_claim if names_claim is not None and index == len(placed) - 1 else size
        table += struct.pack("<IIQQQQIIQQ", name, 1, 0, 0, offset, claimed, 0, 0, 1, 0)
    return header + program + body + table
