"""What the scanners find in a program: probes, blocks, maps, names used, filters, output."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..spec import kinds

# Families of probe kinds, from the one registry (spec/kinds.py)
SPECIAL_KINDS = kinds.of_family("special")  # BEGIN and END: once, at start and at the end
KERNEL_FUNCTION_KINDS = kinds.of_family("kernel-function")
TIMER_KINDS = kinds.of_family("timer")
PERF_KINDS = kinds.of_family("perf")
PACKET_KINDS = kinds.of_family("packet")


@dataclass
class Probe:
    text: str  # as written in the program (or the attach point a BCC call names)
    kind: str  # canonical kind: tracepoint, kprobe, uprobe, profile, BEGIN, xdp, ...
    line: int
    category: str | None = None
    name: str | None = None
    target: str | None = None  # uprobe/usdt binary, xdp/tc interface
    unit: str | None = None
    rate: str | None = None
    wildcard: bool = False
    handler: str | None = None  # BCC: the C function that runs
    via: str | None = None  # BCC: how it is attached (attach_kprobe(), TRACEPOINT_PROBE, kprobe__ prefix, ...)
    block: int | None = None  # index of the block that runs

    @property
    def canonical(self) -> str:
        k = self.kind
        if k in SPECIAL_KINDS:
            return k
        if k in ("tracepoint", "usdt") and self.category:
            return (
                f"{k}:{self.category}:{self.name}"
                if k == "tracepoint"
                else f"usdt:{self.target}:{self.category}:{self.name}"
            )
        if k in kinds.USER_KINDS:
            return f"{k}:{self.target}:{self.name}"
        if k in TIMER_KINDS:
            return f"{k}:{self.unit}:{self.rate}" if self.unit else f"{k}:{self.rate}"
        if k in PERF_KINDS:
            return f"{k}:{self.name}" + (f":{self.rate}" if self.rate else "")
        if k == "xdp":
            return f"xdp:{self.target}"
        if k == "tc":
            return f"tc:{self.target}:{self.name}"
        return f"{k}:{self.name}"


@dataclass
class Access:
    op: str  # assign, aggregate, read, delete, clear, print, zero, increment, update, lookup, submit, ...
    line: int
    block: int | None
    key: str | None = None
    value: str | None = None
    func: str | None = None  # aggregate function or map method


@dataclass
class MapInfo:
    name: str
    line: int
    macro: str | None = None  # BCC declaration macro (BPF_HASH, ...)
    map_type: str | None = None
    key_type: str | None = None
    value_type: str | None = None
    size: str | None = None
    accesses: list[Access] = field(default_factory=list)

    def ops(self) -> set[str]:
        return {a.op for a in self.accesses}


@dataclass
class Use:
    """One name the program uses: builtin, function, helper, macro, map method, Python API, or unknown."""

    name: str
    category: str  # builtin, function, helper, macro, c_builtin, map_method, python, unknown
    lines: list[int] = field(default_factory=list)
    blocks: set[int] = field(default_factory=set)
    note: str | None = None  # for unknown names: what it probably is


@dataclass
class Variable:
    name: str
    line: int
    value: str | None = None
    block: int | None = None


@dataclass
class Filter:
    kind: str  # predicate, if, early-return, placeholder
    cond: str
    line: int
    block: int | None


@dataclass
class Statement:
    line: int
    text: str
    depth: int = 0


@dataclass
class Block:
    """A bpftrace probe block, or a BPF C function."""

    label: str  # the header as written, or the C function signature
    start_line: int
    end_line: int
    probes: list[int] = field(default_factory=list)  # indexes into ProgramModel.probes
    predicate: str | None = None
    statements: list[Statement] = field(default_factory=list)
    prints: list[tuple[int, str]] = field(default_factory=list)  # (line, function) of output calls
    fields_used: list[str] = field(default_factory=list)  # args->NAME
    function: str | None = None  # BCC: the C function name
    context: str | None = None  # BCC: the type of the function's first parameter
    params: str | None = None  # BCC: the parameter list


@dataclass
class PythonSide:
    """The user-space half of a BCC program."""

    bpf_names: list[str] = field(default_factory=list)
    source_note: str | None = None  # where the C text came from
    placeholders: list[tuple[int, str, str]] = field(default_factory=list)  # (line, placeholder, replacement)
    callbacks: dict[str, str] = field(default_factory=dict)  # callback function -> map it reads
    callback_prints: dict[str, bool] = field(default_factory=dict)
    polls: list[tuple[int, str]] = field(default_factory=list)  # (line, method)
    table_reads: list[tuple[int, str, str]] = field(default_factory=list)  # (line, map, method)
    sleeps: bool = False
    loops: bool = False
    handles_interrupt: bool = False


@dataclass
class ProgramModel:
    backend: str  # bpftrace or bcc
    text: str
    blocks: list[Block] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    maps: dict[str, MapInfo] = field(default_factory=dict)
    uses: dict[str, Use] = field(default_factory=dict)
    variables: dict[str, Variable] = field(default_factory=dict)
    filters: list[Filter] = field(default_factory=list)
    structs: dict[str, list[str]] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)
    defines: dict[str, str] = field(default_factory=dict)
    python: PythonSide | None = None
    libbpf: bool = False  # C for libbpf (SEC() sections, vmlinux.h), loaded by a C or Go program, not BCC
    c_line_offset: int = 0
    notes: list[str] = field(default_factory=list)
    title: str | None = None  # the program's own description, from its first comment

    def take_directives(self, directives: list[tuple[int, str]]) -> None:
        """The #include and #define lines of a C-like program (a bpftrace script or a BCC program's C)."""
        for _line, directive in directives:
            d = directive.strip()
            if d.startswith("#include"):
                self.includes.append(d.split(None, 1)[1] if " " in d else d)
            elif d.startswith("#define"):
                parts = d.split(None, 2)
                name = re.match(r"\w+", parts[1]) if len(parts) >= 2 else None
                if name:
                    self.defines[name.group(0)] = parts[2] if len(parts) > 2 else ""

    def use(self, name: str, category: str, line: int, block: int | None = None, note: str | None = None) -> Use:
        u = self.uses.get(name)
        if u is None:
            u = self.uses[name] = Use(name, category, note=note)
        if line not in u.lines:
            u.lines.append(line)
        if block is not None:
            u.blocks.add(block)
        return u

    def map(self, name: str, line: int) -> MapInfo:
        m = self.maps.get(name)
        if m is None:
            m = self.maps[name] = MapInfo(name, line)
        return m
