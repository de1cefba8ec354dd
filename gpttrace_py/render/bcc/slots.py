"""Slots: one member of a struct (the event, a map key, the saved start values) and how Python shows it."""

from __future__ import annotations

import keyword
from dataclasses import dataclass

from ...spec import expr as E
from ..escape import slug
from .ctext import JOIN_ARG_LEN, JOIN_ARGS

_C_WORDS = frozenset((
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern", "float",
    "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed", "sizeof",
    "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "bool", "true", "false",
    "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "size_t", "NULL", "asm", "typeof", "min", "max"))


@dataclass
class Slot:
    member: str
    kind: str  # int hex oct names str ip4 ip6 ip4int kstack ustack ksym usym probe func join
    signed: bool = True
    size: int = 0  # bytes of text
    names: int | None = None  # NAMES_<n> table
    limit: int | None = None  # frames of a stack
    node: E.Node | None = None  # the value (None for slots filled by hand)

    def decls(self) -> list[tuple[int, str, str]]:
        """(alignment, C declaration, ctypes type) per struct member."""
        m = self.member
        if self.kind in ("int", "hex", "oct", "names"):
            c = "s64" if self.signed and self.kind not in ("hex", "oct") else "u64"
            return [(8, f"{c} {m};", "ct.c_int64" if c == "s64" else "ct.c_uint64")]
        if self.kind == "str":
            return [(1, f"char {m}[{self.size}];", f"ct.c_char * {self.size}")]
        if self.kind in ("ip4", "ip6"):
            n = 4 if self.kind == "ip4" else 16
            return [(1, f"u8 {m}[{n}];", f"ct.c_ubyte * {n}")]
        if self.kind == "ip4int":
            return [(4, f"u32 {m};", "ct.c_uint32")]
        if self.kind == "kstack":
            return [(8, f"s64 {m};", "ct.c_int64")]
        if self.kind == "ustack":
            return [(8, f"s64 {m};", "ct.c_int64"), (4, f"u32 {m}_pid;", "ct.c_uint32")]
        if self.kind == "ksym":
            return [(8, f"u64 {m};", "ct.c_uint64")]
        if self.kind == "usym":
            return [(8, f"u64 {m};", "ct.c_uint64"), (4, f"u32 {m}_pid;", "ct.c_uint32")]
        if self.kind in ("probe", "func"):
            return [(4, f"u32 {m};", "ct.c_uint32")]
        if self.kind == "join":
            return [(1, f"char {m}[{JOIN_ARGS}][{JOIN_ARG_LEN}];", f"(ct.c_char * {JOIN_ARG_LEN}) * {JOIN_ARGS}")]
        raise AssertionError(self.kind)

    def py(self, obj: str) -> str:
        """Python text of the displayed value of this member of ``obj``."""
        v = f"{obj}.{self.member}"
        if self.kind in ("int", "hex", "oct"):
            return v
        if self.kind == "names":
            return f"name_of(NAMES_{self.names}, {v})"
        if self.kind == "str":
            return f"text({v})"
        if self.kind in ("ip4", "ip6"):
            return f"ntop(bytes({v}))"
        if self.kind == "ip4int":
            return f"ntop({v}.to_bytes(4, sys.byteorder))"
        if self.kind == "kstack":
            return f"kstack(b, {v}, {self.limit or 127})"
        if self.kind == "ustack":
            return f"ustack(b, {v}, {v}_pid, {self.limit or 127})"
        if self.kind == "ksym":
            return f"ksym(b, {v})"
        if self.kind == "usym":
            return f"usym(b, {v}, {v}_pid)"
        if self.kind == "probe":
            return f"PROBE_NAMES[{v}]"
        if self.kind == "func":
            return f"FUNC_NAMES[{v}]"
        if self.kind == "join":
            return f"joined({v})"
        raise AssertionError(self.kind)

    @property
    def is_number(self) -> bool:
        return self.kind in ("int", "hex", "oct")


def struct_lines(name: str, slots: list[Slot], lead: list[tuple[int, str, str]] | None = None,
                 trail: list[tuple[int, str, str]] | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """The C declaration of a struct of slots (widest members first, so there is no padding inside) and its
    ctypes fields in the same order."""
    members = list(lead or [])
    for s in slots:
        members += s.decls()
    members.sort(key=lambda m: -m[0])
    members += trail or []
    c = [f"struct {name} {{"] + [f"    {decl}" for _, decl, _ in members] + ["};"]
    fields = [(decl.split()[1].split("[")[0].rstrip(";"), ctype) for _, decl, ctype in members]
    return c, fields


def member_name(label: str, taken: set[str]) -> str:
    base = slug(label, "value")
    if base in _C_WORDS or keyword.iskeyword(base) or base.startswith("_"):
        base = f"{base}_"
    name, i = base, 2
    while name in taken or f"{name}_pid" in taken:
        name, i = f"{base}{i}", i + 1
    taken.add(name)
    return name
