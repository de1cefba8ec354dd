"""User-space probe targets: a library or program name resolved to a file, and its function symbols.

A target is used only when it is a regular ELF file of at most MAX_TARGET_BYTES that every user may read
(``usable``); anything else gets the one message TARGET_ERROR, whatever the reason, so that the answers do not
tell a model (or whoever wrote the request) whether a root-only file exists. Symbols are read through the
section headers: only the symbol and string tables are read, never the whole file."""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
import subprocess
from functools import lru_cache

MAX_TARGET_BYTES = 1 << 30  # a uprobe target larger than this is refused
MAX_SYMBOL_BYTES = 64 << 20  # symbol and string tables read at most
TARGET_ERROR = ("cannot use {target!r} as a uprobe target: it must be a library or program name found here, or the "
                "path of a regular ELF file that every user can read (at most 1 GiB)")

LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
            "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/local/lib")


@lru_cache(maxsize=64)
def resolve_target(target: str) -> str | None:
    """'libc' → '/lib/x86_64-linux-gnu/libc.so.6'; 'bash' → '/usr/bin/bash'; a path → itself if it exists."""
    if "/" in target:
        return target if usable(target) else None
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
                    if usable(path):
                        return os.path.realpath(path) if e == stem + ".so" else path
        found = _ldconfig().get(stem)
        if found and usable(found):
            return found
    exe = shutil.which(target, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return os.path.realpath(exe) if exe and usable(exe) else None


_SAFE_PATH = re.compile(r"[A-Za-z0-9_./+@-]{1,4096}\Z")  # what an attach point can hold (render.attach_path)


def usable(path: str) -> bool:
    """A regular ELF file of at most MAX_TARGET_BYTES that every user may read, with a name an attach point can
    hold (opened without blocking: a FIFO or a device is refused by its fstat, not read)."""
    if not _SAFE_PATH.match(path):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_TARGET_BYTES or not st.st_mode & 0o004:
            return False
        return os.pread(fd, 4, 0) == b"\x7fELF"
    except OSError:
        return False
    finally:
        os.close(fd)


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
    """Names of defined function symbols in an ELF file (.symtab and .dynsym), read through its section headers:
    the header, the section table, and the symbol and string tables only (at most MAX_SYMBOL_BYTES)."""
    if not usable(path):
        return frozenset()
    try:
        with open(path, "rb") as fh:
            return frozenset(_function_symbols(fh.fileno()))
    except (OSError, struct.error, ValueError):
        return frozenset()


def _function_symbols(fd: int) -> set[str]:
    head = os.pread(fd, 64, 0)
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
        return set()
    endian = "<" if head[5] == 1 else ">"
    size = os.fstat(fd).st_size
    shoff = struct.unpack_from(endian + "Q", head, 0x28)[0]
    shentsize, shnum = struct.unpack_from(endian + "HH", head, 0x3A)
    if shentsize < 64 or shoff + shnum * shentsize > size:
        return set()
    table = os.pread(fd, shnum * shentsize, shoff)
    sections = []
    for i in range(shnum):
        _name, stype, _flags, _addr, s_off, s_size, s_link, _info, _align, s_entsize = struct.unpack_from(
            endian + "IIQQQQIIQQ", table, i * shentsize
        )
        sections.append((stype, s_off, s_size, s_link, s_entsize))
    budget = MAX_SYMBOL_BYTES
    names: set[str] = set()
    for stype, s_off, s_size, s_link, s_entsize in sections:
        if stype not in (2, 11) or s_entsize < 24 or s_link >= len(sections):  # SHT_SYMTAB, SHT_DYNSYM
            continue
        str_off, str_size = sections[s_link][1], sections[s_link][2]
        budget -= s_size + str_size
        if budget < 0 or s_off + s_size > size or str_off + str_size > size:
            break
        symbols = os.pread(fd, s_size, s_off)
        strings = os.pread(fd, str_size, str_off)
        for j in range(len(symbols) // s_entsize):
            st_name, st_info, _other, st_shndx = struct.unpack_from(endian + "IBBH", symbols, j * s_entsize)
            if st_info & 0xF != 2 or st_shndx == 0 or st_name >= len(strings):  # STT_FUNC, defined
                continue
            end = strings.find(b"\0", st_name)
            name = strings[st_name : end if end >= 0 else len(strings)].decode("ascii", "replace").split("@")[0]
            if name:
                names.add(name)
    return names
