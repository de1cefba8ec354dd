"""Tracepoints of the running kernel, read from tracefs: names, fields and their symbolic values."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def tracefs_root() -> Path | None:
    """The mounted tracefs, or None. ``GPTTRACE_TRACEFS`` overrides (tests point it at a fake tree)."""
    override = os.environ.get("GPTTRACE_TRACEFS")
    candidates = (override,) if override else TRACEFS_CANDIDATES
    for c in candidates:
        if c and os.path.isdir(os.path.join(c, "events")):
            return Path(c)
    return None


def tracefs_missing() -> str:
    """Why no tracefs can be read: not mounted, or (not root) mounted where only root may read it."""
    if os.geteuid() != 0 and not os.environ.get("GPTTRACE_TRACEFS"):
        for c in TRACEFS_CANDIDATES:
            if os.path.isdir(c) and not os.access(c, os.R_OK | os.X_OK):
                return f"tracefs ({c}) can only be read by root: run gpttrace as root (sudo gpttrace ...)"
    return "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)"


@dataclass(frozen=True)
class TpField:
    name: str
    ctype: str  # the C type as written in the format file, without the name
    size: int
    signed: bool
    array: int | None = None  # element count of a fixed array
    data_loc: bool = False
    offset: int = 0  # where the field starts in the tracepoint's record (the format file's offset)

    @property
    def kind(self) -> str:
        """A coarse type: 'str' (read as text), 'ptr_str' (user/kernel pointer to text), 'ip4'/'ip6',
        'int', 'array'."""
        t = self.ctype.replace("const ", "").strip()
        if self.data_loc and "char" in t:
            return "str"
        if t in ("char", "unsigned char", "signed char") and self.array:
            return "str"
        if t in ("char *", "char*", "unsigned char *"):
            return "ptr_str"
        if self.array == 4 and t in ("__u8", "u8", "unsigned char", "uint8_t") and "addr" in self.name:
            return "ip4"
        if self.array == 16 and t in ("__u8", "u8", "unsigned char", "uint8_t") and "addr" in self.name:
            return "ip6"
        if self.array or "[" in t or self.data_loc:
            return "array"
        if "*" in t:
            return "ptr"
        return "int"


@dataclass(frozen=True)
class Tracepoint:
    category: str
    name: str
    fields: tuple[TpField, ...]
    symbols: dict[str, dict[int, str]] = field(default_factory=dict)  # field -> value -> name
    print_fmt: str = ""

    @property
    def probe(self) -> str:
        return f"tracepoint:{self.category}:{self.name}"

    def field(self, name: str) -> TpField | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def user_fields(self) -> tuple[TpField, ...]:
        """The fields worth showing: not the common_* header nor the syscall number."""
        return tuple(f for f in self.fields if not f.name.startswith("common_") and f.name != "__syscall_nr")


_FIELD_RE = re.compile(r"field:(?P<decl>[^;]+);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);\s*signed:(?P<signed>\d)")
_SYMBOLIC_RE = re.compile(
    r"__print_symbolic\(\s*REC->(?P<field>\w+)\s*,(?P<body>(?:\s*\{\s*-?\w+\s*,\s*\"[^\"]*\"\s*\}\s*,?)+)\)"
)
_PAIR_RE = re.compile(r"\{\s*(-?\w+)\s*,\s*\"([^\"]*)\"\s*\}")


def parse_format(category: str, name: str, text: str) -> Tracepoint:
    fields: list[TpField] = []
    for m in _FIELD_RE.finditer(text):
        decl = m.group("decl").strip()
        data_loc = decl.startswith("__data_loc ")
        if data_loc:
            decl = decl[len("__data_loc ") :]
        array = None
        am = re.match(r"(?P<head>.*?)(?P<name>\w+)\s*\[(?P<n>\d*)\]\s*$", decl)
        if am:
            ctype, fname = am.group("head").strip(), am.group("name")
            array = int(am.group("n")) if am.group("n") else None
        else:
            nm = re.match(r"(?P<head>.*?)(?P<name>\w+)\s*$", decl)
            if not nm:
                continue
            ctype, fname = nm.group("head").strip(), nm.group("name")
        fields.append(TpField(fname, ctype, int(m.group("size")), m.group("signed") == "1", array, data_loc,
                              int(m.group("off"))))
    fmt = text.split("print fmt:", 1)[1].strip() if "print fmt:" in text else ""
    symbols: dict[str, dict[int, str]] = {}
    for sm in _SYMBOLIC_RE.finditer(fmt):
        table: dict[int, str] = {}
        for value, label in _PAIR_RE.findall(sm.group("body")):
            try:
                table[int(value, 0)] = label
            except ValueError:
                continue  # a symbolic constant we cannot evaluate (e.g. IOPRIO_CLASS_RT)
        if table:
            symbols.setdefault(sm.group("field"), _completed(table))
    return Tracepoint(category, name, tuple(fields), symbols, fmt)


def _completed(table: dict[int, str]) -> dict[int, str]:
    """A print format names only the values its tracepoint was written for: sock:sock_send_length lists
    AF_INET/AF_INET6 and TCP/SCTP/MPTCP, yet fires for Unix sockets and UDP too, which printed blank. A table
    of socket constants (AF_*, IPPROTO_*) gets the rest of its family from the system's own definitions (the
    socket module's, read from the C headers); the kernel's names stay first."""
    prefix = next((p for p in ("AF_", "IPPROTO_") if all(v.startswith(p) for v in table.values())), None)
    if prefix is None:
        return table
    import socket

    out = dict(table)
    for name, value in vars(socket).items():
        # 0 is "the family's default protocol" (what a Unix socket has), not IP: left unnamed
        if name.startswith(prefix) and isinstance(value, int) and not (prefix == "IPPROTO_" and value == 0):
            out.setdefault(int(value), name)
    return out


class TracepointIndex:
    """Lazily read tracepoint listing and formats of one tracefs tree."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._names: dict[str, set[str]] | None = None

    @property
    def available(self) -> bool:
        return self.root is not None

    def categories(self) -> dict[str, set[str]]:
        if self._names is None:
            names: dict[str, set[str]] = {}
            if self.root is not None:
                events = self.root / "events"
                try:
                    for cat in os.scandir(events):
                        if not cat.is_dir():
                            continue
                        names[cat.name] = {e.name for e in os.scandir(cat.path) if e.is_dir()}
                except OSError:
                    pass
            self._names = names
        return self._names

    def exists(self, category: str, name: str) -> bool:
        return name in self.categories().get(category, set())

    def all_names(self) -> list[tuple[str, str]]:
        return sorted((c, n) for c, ns in self.categories().items() for n in ns)

    def get(self, category: str, name: str) -> Tracepoint | None:
        return _read_tracepoint(str(self.root), category, name) if self.exists(category, name) else None


@lru_cache(maxsize=512)
def _read_tracepoint(root: str, category: str, name: str) -> Tracepoint | None:
    try:
        text = Path(root, "events", category, name, "format").read_text()
    except OSError:
        return None
    return parse_format(category, name, text)
