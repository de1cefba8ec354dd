"""System call names and numbers, and which of them this kernel can trace.

The numbers differ between architectures; each has its table (``syscalls_<arch>.json``, next to this file):

- x86_64: the kernel's arch/x86/entry/syscalls/syscall_64.tbl (as /usr/include/x86_64-linux-gnu/asm/unistd_64.h
  gives it), with the kernel headers' newer entries added when they are installed.
- aarch64 (arm64): the generic table, /usr/include/asm-generic/unistd.h (linux-libc-dev) as arm64 configures it
  (64-bit, with __ARCH_WANT_RENAMEAT, _NEW_STAT, _SET_GET_RLIMIT, _TIME32_SYSCALLS, _SYS_CLONE3, _MEMFD_SECRET),
  expanded by the C preprocessor; numbers from 424 on are the same on every architecture, and those the header
  lacked (451 on) come from the x86_64 table. The table's "source" says so too.

On any other architecture the numbers are unknown: ``number_to_name()`` is empty, so a syscall number is shown
as a number, never named from another architecture's table. Names are the same nearly everywhere, so a name
is a syscall's name if any table has it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .tracefs import TracepointIndex

# os.uname().machine → the table's name
ARCHITECTURES = {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
# the installed kernel headers' list, read for entries newer than the table
HEADERS = {
    "x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    "aarch64": Path("/usr/include/aarch64-linux-gnu/asm/unistd_64.h"),  # generated since Linux 6.11
}
_DEFINE = re.compile(r"#define __NR_(\w+)\s+(\d+)")


@dataclass(frozen=True)
class SyscallTable:
    arch: str | None  # None: an architecture without a table (the numbers are unknown)
    numbers: dict[str, int]  # name → number on this architecture
    names: frozenset[str]  # every syscall name known (all architectures' when the numbers are unknown)
    aliases: dict[str, str]  # tracepoint name → syscall name ('newstat' → 'stat')


def _read(arch: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(Path(__file__).with_name(f"syscalls_{arch}.json").read_text())
    return data


def _pairs(data: dict[str, object], key: str) -> dict[str, int] | dict[str, str]:
    value = data.get(key, {})
    assert isinstance(value, dict)
    return dict(value)


@lru_cache(maxsize=4)
def table(machine: str | None = None) -> SyscallTable:
    """The table of ``machine`` (default: this one's, ``os.uname().machine``)."""
    arch = ARCHITECTURES.get(machine or os.uname().machine)
    if arch is None:
        names: set[str] = set()
        aliases: dict[str, str] = {}
        for known in sorted(set(ARCHITECTURES.values())):
            data = _read(known)
            names.update(_pairs(data, "syscalls"))
            aliases.update({k: str(v) for k, v in _pairs(data, "tracepoint_aliases").items()})
        return SyscallTable(None, {}, frozenset(names), aliases)
    data = _read(arch)
    numbers = {k: int(v) for k, v in _pairs(data, "syscalls").items()}
    header = HEADERS.get(arch)
    if header is not None and header.exists():
        for line in header.read_text().splitlines():
            m = _DEFINE.match(line)
            if m:
                numbers.setdefault(m.group(1), int(m.group(2)))
    aliases = {k: str(v) for k, v in _pairs(data, "tracepoint_aliases").items()}
    return SyscallTable(arch, numbers, frozenset(numbers), aliases)


def is_syscall(name: str) -> bool:
    """A system call's name (this architecture's table, and the kernel headers' when installed)."""
    return name in table().names


def number_to_name() -> dict[int, str]:
    """Number → name on this architecture; empty where the numbers are unknown (they are shown as numbers)."""
    numbers = table().numbers
    return {v: k for k, v in sorted(numbers.items(), key=lambda kv: (kv[1], len(kv[0])))}


def canonical(tracepoint_name: str) -> str:
    """'newstat' (the tracepoint's name) → 'stat' (the syscall's name)."""
    return table().aliases.get(tracepoint_name, tracepoint_name)


def traceable(index: TracepointIndex) -> list[str]:
    """Syscalls with an enter tracepoint on this kernel, by tracepoint name."""
    return sorted(
        n[len("sys_enter_") :] for n in index.categories().get("syscalls", set()) if n.startswith("sys_enter_")
    )


def tracepoint_name(index: TracepointIndex, syscall: str) -> str | None:
    """The tracepoint suffix for a syscall name ('stat' → 'newstat'), or None when this kernel lacks it."""
    have = set(traceable(index))
    if syscall in have:
        return syscall
    for tp, canon in table().aliases.items():
        if canon == syscall and tp in have:
            return tp
    return None
