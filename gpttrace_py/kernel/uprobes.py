"""User-space probe targets: a library or program name resolved to a file, and its function symbols."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from functools import lru_cache
from pathlib import Path

LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
            "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/local/lib")


@lru_cache(maxsize=64)
def resolve_target(target: str) -> str | None:
    """'libc' → '/lib/x86_64-linux-gnu/libc.so.6'; 'bash' → '/usr/bin/bash'; a path → itself if it exists."""
    if "/" in target:
        return target if os.path.isfile(target) else None
    name = target if target.startswith("lib") or ".so" in target else None
    if name:
        stem = name.split(".so")[0]
        for d in LIB_DIRS:
            try:
                entries = sorted(os.listdir(d))
            except OSError:
                continue
            exact = [e for e in entries if e == name]
            versioned = [e for e in entries if e.startswith(stem + ".so.")]
            plain = [e for e in entries if e == stem + ".so"]
            for group in (exact, versioned, plain):
                for e in sorted(group, key=len):
                    path = os.path.join(d, e)
                    if _is_elf(path):
                        return os.path.realpath(path) if e == stem + ".so" else path
        found = _ldconfig().get(stem)
        if found:
            return found
    exe = shutil.which(target, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return os.path.realpath(exe) if exe else None


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


@lru_cache(maxsize=1)
def _ldconfig() -> dict[str, str]:
    for exe in ("/sbin/ldconfig", "/usr/sbin/ldconfig"):
        if os.path.exists(exe):
            try:
                out = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=5).stdout
            except (OSError, subprocess.SubprocessError):
                return {}
            table: dict[str, str] = {}
            for line in out.splitlines()[1:]:
                lib, _, path = line.strip().partition(" => ")
                stem = lib.split(" ")[0].split(".so")[0]
                table.setdefault(stem, path.strip())
            return table
    return {}


@lru_cache(maxsize=32)
def function_symbols(path: str) -> frozenset[str]:
    """Names of defined function symbols in an ELF file (.symtab and .dynsym)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return frozenset()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only
        return frozenset()
    endian = "<" if data[5] == 1 else ">"
    shoff = struct.unpack_from(endian + "Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from(endian + "HH", data, 0x3A)
    sections = []
    for i in range(shnum):
        off = shoff + i * shentsize
        if off + 64 > len(data):
            break
        _name, stype, _flags, _addr, s_off, s_size, s_link, _info, _align, s_entsize = struct.unpack_from(
            endian + "IIQQQQIIQQ", data, off
        )
        sections.append((stype, s_off, s_size, s_link, s_entsize))
    names: set[str] = set()
    for stype, s_off, s_size, s_link, s_entsize in sections:
        if stype not in (2, 11) or not s_entsize or s_link >= len(sections):  # SHT_SYMTAB, SHT_DYNSYM
            continue
        str_off = sections[s_link][1]
        for j in range(s_size // s_entsize):
            st_name, st_info, _other, st_shndx = struct.unpack_from(endian + "IBBH", data, s_off + j * s_entsize)
            if st_info & 0xF != 2 or st_shndx == 0:  # STT_FUNC, defined
                continue
            end = data.find(b"\0", str_off + st_name)
            name = data[str_off + st_name : end].decode("ascii", "replace").split("@")[0]
            if name:
                names.add(name)
    return frozenset(names)
