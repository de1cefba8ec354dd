"""System call names and numbers, and which of them this kernel can trace."""

from __future__ import annotations

import json
import platform
import re
from functools import lru_cache
from pathlib import Path

from .tracefs import TracepointIndex

_HEADER = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, int], dict[str, str]]:
    data = json.loads((Path(__file__).with_name("syscalls_x86_64.json")).read_text())
    numbers: dict[str, int] = dict(data["syscalls"])
    if platform.machine() == "x86_64" and _HEADER.exists():
        for line in _HEADER.read_text().splitlines():
            m = re.match(r"#define __NR_(\w+)\s+(\d+)", line)
            if m:
                numbers.setdefault(m.group(1), int(m.group(2)))
    return numbers, dict(data.get("tracepoint_aliases", {}))


def is_syscall(name: str) -> bool:
    """A system call's name on this architecture (x86_64's table, and the kernel headers' when installed)."""
    return name in _table()[0]


def number_to_name() -> dict[int, str]:
    numbers, _ = _table()
    return {v: k for k, v in sorted(numbers.items(), key=lambda kv: (kv[1], len(kv[0])))}


def canonical(tracepoint_name: str) -> str:
    """'newstat' (the tracepoint's name) → 'stat' (the syscall's name)."""
    return _table()[1].get(tracepoint_name, tracepoint_name)


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
    for tp, canon in _table()[1].items():
        if canon == syscall and tp in have:
            return tp
    return None
