"""Render a ProgramSpec as a standalone BCC program: C for the kernel, Python around it.

The program is what a person would write with BCC by hand: a C text with one function per probe
(``TRACEPOINT_PROBE``-style typed tracepoint arguments, ``struct pt_regs`` for uprobes/kprobes,
``struct xdp_md`` / ``struct __sk_buff`` for packets), a ``struct event`` sent through a ring buffer (a
perf buffer on kernels before 5.8), one map per aggregate, and Python that loads every function (the
verifier check), attaches, prints events, and prints the aggregates at the end and every ``interval_s``.

With ``--records`` the program writes bpftrace-compatible JSON records (what ``bpftrace -f json``
prints), so gpttrace formats its output with the same Printer as bpftrace's; without it, it prints text
like the classic BCC tools.

Expressions are compiled from their parsed tree only (see ``spec.expr``); every other value reaches the
program through ``escape`` (identifiers, integers, string literals valid in C and Python, comments).
"""

from __future__ import annotations

import keyword
import struct
from dataclasses import dataclass, field
from functools import lru_cache

from ..kernel.catalog import Catalog
from ..kernel.tracefs import TpField
from ..spec import Aggregate, OutputField, ProbeRef, ProgramSpec
from ..spec import expr as E
from . import lower
from .bpftrace import _default_title, _probe_comment, _ready_title, _value_label
from .escape import Code, comment, environment, ident, integer, slug, string_literal
from .lower import Context
from .program import COLUMN_SEP, AggregateLayout, ProgramLayout, RenderedProgram

STRLEN = 128  # bytes kept of a text value (gpttrace runs bpftrace with BPFTRACE_STRLEN=128 too)
COMM_LEN = 16
MAP_ENTRIES = 10240
STACK_ENTRIES = 16384
RINGBUF_PAGES = 64  # 256 KiB shared by all CPUs
PERF_PAGES = 64  # per CPU
JOIN_ARGS = 8  # join(argv): at most this many arguments ...
JOIN_ARG_LEN = 64  # ... of at most this many bytes each
LOG2_SLOTS = 66  # bpftrace's power-of-two buckets: <0, 0, 1, [2,4) ... [2^63, ...)
PT_REGS_ARGS = 6  # arguments passed in registers (x86-64, arm64 has 8 but keep one rule)

TASK_BUILTINS = ("pid", "tid", "uid", "gid", "comm", "cgroup", "kstack", "ustack")
PACKET_KINDS = ("xdp", "tc")
PERF_KINDS = ("profile", "interval", "software", "hardware")

_SOFTWARE = {"cpu-clock": "CPU_CLOCK", "task-clock": "TASK_CLOCK", "page-faults": "PAGE_FAULTS",
             "faults": "PAGE_FAULTS", "context-switches": "CONTEXT_SWITCHES", "cs": "CONTEXT_SWITCHES",
             "cpu-migrations": "CPU_MIGRATIONS", "migrations": "CPU_MIGRATIONS", "minor-faults": "PAGE_FAULTS_MIN",
             "major-faults": "PAGE_FAULTS_MAJ", "alignment-faults": "ALIGNMENT_FAULTS",
             "emulation-faults": "EMULATION_FAULTS"}
_HARDWARE = {"cpu-cycles": "CPU_CYCLES", "cycles": "CPU_CYCLES", "instructions": "INSTRUCTIONS",
             "cache-references": "CACHE_REFERENCES", "cache-misses": "CACHE_MISSES",
             "branch-instructions": "BRANCH_INSTRUCTIONS", "branches": "BRANCH_INSTRUCTIONS",
             "branch-misses": "BRANCH_MISSES", "bus-cycles": "BUS_CYCLES", "ref-cycles": "REF_CPU_CYCLES"}
_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000}

_C_WORDS = frozenset((
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern", "float",
    "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed", "sizeof",
    "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "bool", "true", "false",
    "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "size_t", "NULL", "asm", "typeof", "min", "max"))
_COMM_LABELS = ("COMM", "PCOMM", "PARENT_COMM", "CHILD_COMM", "PREV_COMM", "NEXT_COMM", "PROCESS")


class RenderError(ValueError):
    """A spec the BCC backend cannot express; the message says why (and what to write instead)."""


# --------------------------------------------------------------------------------------------------
# Probes: one C function each


@dataclass
class ProbeFn:
    probe: ProbeRef
    index: int  # position in PROBE_NAMES
    name: str  # the C function
    head: str  # the line that opens it
    ctx: str  # the variable holding the probe's context
    ret: str  # what it returns (XDP_PASS, TC_ACT_UNSPEC, 0)
    prog_type: str | None  # BPF.<TYPE> for load_func; None when BCC loads it itself (kfunc, lsm, usdt)
    user: bool  # pointers seen here point to user memory
    attach: list[str] = field(default_factory=list)  # Python lines that attach it
    comment: str = ""
    prologue: list[str] = field(default_factory=list)  # first lines of the body

    @property
    def kind(self) -> str:
        return self.probe.kind


def _args_used(exprs: list[str]) -> int:
    """How many argN the expressions reach (max N + 1)."""
    n = 0
    for text in exprs:
        for node in E.walk(E.parse(text)):
            if isinstance(node, E.Builtin) and node.name.startswith("arg") and node.name[3:].isdigit():
                n = max(n, int(node.name[3:]) + 1)
    return n


def make_probe_fn(probe: ProbeRef, index: int, name: str, catalog: Catalog, exprs: list[str],
                  declared: set[str] | None = None) -> ProbeFn:
    """The C function for one probe. ``declared`` collects the tracepoint argument structs already declared."""
    k = probe.kind
    fname = string_literal(name)
    cmt = _probe_comment(probe, catalog)
    if k == "tracepoint":
        cat, ev = ident(probe.category or ""), ident(probe.name or "")
        struct = f"struct tracepoint__{cat}__{ev}"
        fn = ProbeFn(probe, index, name, f"int {name}({struct} *args)", "args", "0",
                     "BPF.TRACEPOINT", cat == "syscalls",
                     [f"b.attach_tracepoint(tp={string_literal(f'{cat}:{ev}')}, fn_name={fname})"], cmt)
        if declared is not None:
            if struct in declared:
                # BCC declares the struct (from the tracepoint's format file) before each function whose
                # parameter has its type; a second declaration would not compile, so take a plain pointer.
                fn.head = f"int {name}(void *ctx)"
                fn.prologue = [f"{struct} *args = ctx;  // the same arguments as above"]
            declared.add(struct)
        return fn
    if k == "rawtracepoint":
        return ProbeFn(probe, index, name, f"int {name}(struct bpf_raw_tracepoint_args *ctx)", "ctx", "0",
                       "BPF.RAW_TRACEPOINT", False,
                       [f"b.attach_raw_tracepoint(tp={string_literal(probe.name or '')}, fn_name={fname})"],
                       f"raw tracepoint {probe.name} (arguments as raw u64 values)")
    if k in ("kprobe", "kretprobe"):
        how = "attach_kretprobe" if k == "kretprobe" else "attach_kprobe"
        return ProbeFn(probe, index, name, f"int {name}(struct pt_regs *ctx)", "ctx", "0", "BPF.KPROBE", False,
                       [f"b.{how}(event={string_literal(probe.name or '')}, fn_name={fname})"], cmt)
    if k in ("uprobe", "uretprobe"):
        path = catalog.uprobe_path(probe.target or "") or probe.target or ""
        how = "attach_uretprobe" if k == "uretprobe" else "attach_uprobe"
        return ProbeFn(probe, index, name, f"int {name}(struct pt_regs *ctx)", "ctx", "0", "BPF.KPROBE", True,
                       [f"b.{how}(name={string_literal(path, 255)}, sym={string_literal(probe.name or '')}, "
                        f"fn_name={fname})"], cmt)
    if k == "usdt":
        path = catalog.uprobe_path(probe.target or "") or probe.target or ""
        return ProbeFn(probe, index, name, f"int {name}(struct pt_regs *ctx)", "ctx", "0", None, True,
                       [f"usdt_path={string_literal(path, 255)}, "
                        f"usdt_probe={string_literal(f'{probe.category}:{probe.name}')}"],
                       f"USDT probe {probe.category}:{probe.name} in {probe.target}")
    if k in ("kfunc", "kretfunc", "lsm"):
        fn = ident(probe.name or "")
        nargs = _args_used(exprs)
        params = [f"u64 arg{i}" for i in range(nargs)]
        macro = {"kfunc": "KFUNC_PROBE", "kretfunc": "KRETFUNC_PROBE", "lsm": "LSM_PROBE"}[k]
        if k == "kretfunc":
            total = btf_func_arg_count(fn)
            if total is None:
                raise RenderError(f"kretfunc:{fn}: no function {fn} in the kernel's BTF (/sys/kernel/btf/vmlinux)")
            if nargs > total:
                raise RenderError(f"kretfunc:{fn}: {fn}() has {total} arguments, arg{nargs - 1} does not exist")
            params = [f"u64 arg{i}" for i in range(total)] + ["s64 ret"]
        elif k == "kfunc":
            total = btf_func_arg_count(fn)
            if total is not None and nargs > total:
                raise RenderError(f"kfunc:{fn}: {fn}() has {total} arguments, arg{nargs - 1} does not exist")
        head = f"{macro}({', '.join([fn, *params])})"
        cname = {"kfunc": "kfunc__", "kretfunc": "kretfunc__", "lsm": "lsm__"}[k] + fn
        note = ("BCC loads and attaches it while compiling (the kernel must permit "
                + ("BPF LSM programs)" if k == "lsm" else "fentry/fexit programs)"))
        what = f"BPF LSM hook {fn} (runs at the security check; returning 0 allows it)" if k == "lsm" else cmt
        return ProbeFn(probe, index, cname, head, "ctx", "0", None, False, [], f"{what}; {note}")
    if k in PERF_KINDS:
        head = f"int {name}(struct bpf_perf_event_data *ctx)"
        if k == "profile":
            rate = int(probe.rate or 49)
            timing = (f"sample_freq={integer(rate)}" if probe.unit == "hz"
                      else f"sample_period={integer(rate * _UNIT_NS[probe.unit or 's'])}")
            attach = [f"b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK, "
                      f"fn_name={fname}, {timing})"]
        elif k == "interval":
            period = int(probe.rate or 1) * _UNIT_NS[probe.unit or "s"]
            attach = [f"b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK, "
                      f"fn_name={fname}, sample_period={integer(period)}, cpu=0)"]
            cmt = f"fires on CPU 0 every {probe.rate} {probe.unit} (a cpu-clock perf event)"
        elif k == "software":
            config = _SOFTWARE[probe.name or ""]
            attach = [f"b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.{config}, "
                      f"fn_name={fname}, sample_period={integer(int(probe.rate or 1))})"]
        else:
            config = _HARDWARE[probe.name or ""]
            attach = [f"b.attach_perf_event(ev_type=PerfType.HARDWARE, ev_config=PerfHWConfig.{config}, "
                      f"fn_name={fname}, sample_period={integer(int(probe.rate or 1000000))})"]
            cmt = f"hardware perf event {probe.name} (every {probe.rate or 1000000} events)"
        return ProbeFn(probe, index, name, head, "ctx", "0", "BPF.PERF_EVENT", False, attach, cmt)
    if k == "xdp":
        dev = string_literal(probe.target or "", 15)
        return ProbeFn(probe, index, name, f"int {name}(struct xdp_md *ctx)", "ctx", "XDP_PASS", "BPF.XDP", False,
                       [f"attach_xdp(b, {fname}, {dev}, cleanups)"],
                       f"XDP: runs for every packet received on {probe.target}, before the network stack; "
                       "XDP_PASS lets it through")
    if k == "tc":
        dev = string_literal(probe.target or "", 15)
        direction = string_literal(probe.name or "ingress")
        return ProbeFn(probe, index, name, f"int {name}(struct __sk_buff *skb)", "skb", "TC_ACT_UNSPEC",
                       "BPF.SCHED_CLS", False, [f"attach_tc(b, {fname}, {dev}, {direction}, cleanups)"],
                       f"tc program on {probe.target} {probe.name} (a tcx link); "
                       "TC_ACT_UNSPEC lets the packet go on to the next program")
    raise RenderError(f"{probe.text}: BEGIN/END probes are bpftrace-only; use --backend bpftrace, or print from "
                      "an interval probe")


@lru_cache(maxsize=1)
def _btf_functions(path: str = "/sys/kernel/btf/vmlinux") -> dict[str, int]:
    """Kernel function name → number of arguments, read from the kernel's BTF."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return {}
    if len(data) < 24 or struct.unpack_from("<H", data, 0)[0] != 0xEB9F:
        return {}
    hdr_len, type_off, type_len, str_off, _str_len = struct.unpack_from("<IIIII", data, 4)
    types_at = hdr_len + type_off
    strings_at = hdr_len + str_off
    extra = {1: 4, 3: 12, 14: 4, 17: 4}  # kind → fixed bytes after the common header
    per_member = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}  # kind → bytes per vlen entry
    protos: dict[int, int] = {}
    funcs: list[tuple[int, int]] = []
    pos, end, tid = types_at, types_at + type_len, 1
    unpack = struct.Struct("<III").unpack_from
    while pos + 12 <= end:
        name_off, info, size_type = unpack(data, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        pos += 12
        if kind == 13:
            # a trailing parameter of type 0 marks a variadic function; it is not an argument
            protos[tid] = vlen - (1 if vlen and struct.unpack_from("<I", data, pos + 8 * (vlen - 1) + 4)[0] == 0 else 0)
        elif kind == 12:
            funcs.append((name_off, size_type))
        pos += extra.get(kind, 0) + per_member.get(kind, 0) * vlen
        tid += 1
    out: dict[str, int] = {}
    for name_off, proto in funcs:
        if proto in protos:
            s = strings_at + name_off
            out.setdefault(data[s:data.index(b"\0", s)].decode("ascii", "replace"), protos[proto])
    return out


def btf_func_arg_count(name: str) -> int | None:
    return _btf_functions().get(name)


# --------------------------------------------------------------------------------------------------
# Slots: one member of a struct (event, map key, saved start values) and how Python shows it


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


def _c_comment(text: str, limit: int = 200) -> Code:
    """Text for a // comment inside the C text, which sits in a Python r\"\"\"...\"\"\" string: no quotes (they could
    end the string) and no backslashes (one at the end of the line would continue the comment)."""
    return comment(text.replace('"', "'").replace("\\", "/"), limit)


def _check_c_text(program_text: str, c_lines: list[str]) -> None:
    """The C text must be exactly what was built: nothing in it may end the Python string early."""
    for ln in c_lines:
        if '"""' in ln or ln.rstrip().endswith("\\"):
            raise RenderError("internal error: a line of the C text would break the program's quoting")
    c = c_text_of(program_text)
    if any(ln not in c for ln in c_lines if ln.strip()):
        raise RenderError("internal error: the C text was cut short")


def _c_char(b: int) -> str:
    c = chr(b)
    return f"'{c}'" if " " <= c <= "~" and c not in "'\\" else str(b)


# --------------------------------------------------------------------------------------------------
# Expressions → C, for one probe function


class CGen:
    """Compiles expression trees to C inside one probe function.

    ``value`` gives an integer C expression; ``fill`` gives statements that store a value into a struct
    member. Text values are read into buffers first: those statements collect in ``pre`` and the caller
    places them before the code that uses the expression."""

    def __init__(self, builder: _Builder, fn: ProbeFn, ctx: Context, saved: dict[str, Slot] | None = None,
                 in_end: bool = False) -> None:
        self.b = builder
        self.fn = fn
        self.ctx = ctx
        self.saved = saved or {}
        self.in_end = in_end  # an end probe of a pair: delta and start.NAME exist
        self.pre: list[str] = []
        self.top: dict[str, list[str]] = {}  # statements at the top of the function (packet parsing, usdt args)
        self.ntemp = 0

    def take_pre(self) -> list[str]:
        out, self.pre = self.pre, []
        return out

    def temp(self, prefix: str = "t") -> str:
        self.ntemp += 1
        return f"{prefix}{self.ntemp}"

    # -- fields ---------------------------------------------------------------------------------------
    def tp_field(self, name: str) -> TpField:
        if self.fn.kind != "tracepoint":
            raise RenderError(f"args.{name}: only tracepoints have named fields; at {self.fn.probe.text} use "
                              "arg0..arg9 or retval")
        f = self.b.catalog.field(self.fn.probe, name)
        if f is None:
            tp = self.b.catalog.tracepoint(self.fn.probe)
            have = ", ".join(x.name for x in tp.user_fields) if tp else "(tracepoint not found)"
            raise RenderError(f"{self.fn.probe.text} has no field {name!r}; fields: {have}")
        return f

    # -- integers -------------------------------------------------------------------------------------
    def value(self, node: E.Node) -> tuple[str, bool]:
        """(C expression, signed) of an integer value."""
        if isinstance(node, E.Num):
            if node.value >= 1 << 64:
                raise RenderError(f"{node.value} does not fit in 64 bits")
            return (f"{node.value}ULL" if node.value >= 1 << 63 else str(node.value)), False
        if isinstance(node, E.Str):
            raise RenderError(f'the text "{node.value[:40]}" can only be compared (== or !=) with a text value')
        if isinstance(node, E.Builtin):
            return self.builtin(node.name)
        if isinstance(node, E.Field):
            f = self.tp_field(node.name)
            kind = f.kind
            if kind == "int":
                return f"args->{ident(f.name)}", f.signed
            if kind in ("ptr", "ptr_str"):
                return f"(u64)args->{ident(f.name)}", False
            if kind == "str":
                raise RenderError(f"args.{f.name} is text: compare it with == \"...\" or print it")
            raise RenderError(f"args.{f.name} is an array: use args.{f.name}[i] or ntop(args.{f.name})")
        if isinstance(node, E.Saved):
            slot = self.saved_slot(node.name)
            if not slot.is_number and slot.kind != "names":
                raise RenderError(f"start.{node.name} is not a number here: compare it with == \"...\" or print it")
            return f"st->{slot.member}", slot.signed
        if isinstance(node, E.Call):
            if node.fn == "strncmp":
                return self.prefix_differs(node), False
            raise RenderError(f"{node.fn}() gives text or a stack, not a number")
        if isinstance(node, E.Unary):
            inner, signed = self.value(node.operand)
            if node.op == "!":
                return f"!{_wrap(inner)}", False
            if node.op == "-":
                return f"-(s64){_wrap(inner)}", True
            return f"~{_wrap(inner)}", signed
        if isinstance(node, E.Binary):
            if node.op in ("==", "!=") and (self.is_text(node.left) or self.is_text(node.right)):
                return self.text_compare(node), False
            left, ls = self.value(node.left)
            right, rs = self.value(node.right)
            if node.op in ("/", "%"):
                # BPF divides unsigned 64-bit numbers only
                return f"((u64){_wrap(left)} {node.op} (u64){_wrap(right)})", False
            if node.op in ("<", "<=", ">", ">="):
                cast = "(s64)" if ls or rs else "(u64)"
                return f"({cast}{_wrap(left)} {node.op} {cast}{_wrap(right)})", False
            if node.op in ("==", "!=", "&&", "||"):
                return f"({left} {node.op} {right})", False
            return f"({left} {node.op} {right})", ls or rs
        if isinstance(node, E.Ternary):
            if self.is_text(node.then) or self.is_text(node.other):
                raise RenderError("choosing between texts with ?: is not supported by the BCC backend")
            c, _ = self.value(node.cond)
            a, sa = self.value(node.then)
            o, so = self.value(node.other)
            return f"({c} ? {a} : {o})", sa or so
        if isinstance(node, E.Index):
            if not isinstance(node.base, E.Field):
                raise RenderError("only a tracepoint array field can be indexed (args.FIELD[i])")
            f = self.tp_field(node.base.name)
            if f.array is not None and node.index >= f.array:
                raise RenderError(f"args.{f.name} has {f.array} elements; [{node.index}] is outside it")
            if "*" in f.ctype and not f.array:  # a pointer to an array in user or kernel memory
                t = self.temp()
                self.pre += [f"u64 {t} = 0;",
                             f"bpf_probe_read_{self.space}(&{t}, sizeof({t}), &args->{ident(f.name)}[{node.index}]);"]
                return t, False
            return f"args->{ident(f.name)}[{node.index}]", f.signed
        raise TypeError(node)

    @property
    def space(self) -> str:
        return "user" if self.fn.user else "kernel"

    def builtin(self, name: str) -> tuple[str, bool]:
        k = self.fn.kind
        if k in PACKET_KINDS and name in TASK_BUILTINS:
            raise RenderError(f"{name} is not available at {self.fn.probe.text}: xdp/tc programs run for packets, "
                              "not in a process; use pkt_len, ip_proto, ip_src, src_port, ... or cpu")
        if name in E.PACKET_BUILTINS:
            if k not in PACKET_KINDS:
                raise RenderError(f"{name} is a packet value, only at xdp:IFACE or tc:IFACE:DIRECTION probes")
            self.top["packet"] = self.b.packet_parse(self.fn)
            return name, False
        simple = {
            "pid": ("(bpf_get_current_pid_tgid() >> 32)", False),
            "tid": ("(u32)bpf_get_current_pid_tgid()", False),
            "uid": ("(u32)bpf_get_current_uid_gid()", False),
            "gid": ("(bpf_get_current_uid_gid() >> 32)", False),
            "cpu": ("bpf_get_smp_processor_id()", False),
            "nsecs": ("bpf_ktime_get_ns()", False),
            "cgroup": ("bpf_get_current_cgroup_id()", False),
        }
        if name in simple:
            return simple[name]
        if name == "delta":
            if not self.in_end:
                raise RenderError("delta exists only at the end probes of a start/end pair")
            return "delta", False
        if name == "retval":
            if k in ("kretprobe", "uretprobe"):
                return "PT_REGS_RC(ctx)", True
            if k == "kretfunc":
                return "ret", True
            hint = "; at a syscall exit tracepoint use args.ret" if k == "tracepoint" else ""
            raise RenderError(f"retval is only set at return probes (uretprobe, kretprobe, kretfunc){hint}")
        if name.startswith("arg") and name[3:].isdigit():
            n = int(name[3:])
            if k in ("kprobe", "uprobe"):
                if n >= PT_REGS_ARGS:
                    raise RenderError(f"{name}: only the first {PT_REGS_ARGS} arguments (arg0..arg5) are in registers")
                return f"PT_REGS_PARM{n + 1}(ctx)", False
            if k in ("kfunc", "kretfunc", "lsm"):
                return name, False
            if k == "rawtracepoint":
                return f"ctx->args[{n}]", False
            if k == "usdt":
                var = f"usdt_arg{n}"
                self.top[var] = [f"u64 {var} = 0;", f"bpf_usdt_readarg({n + 1}, ctx, &{var});"]
                return var, True
            if k == "tracepoint":
                raise RenderError(f"{name}: tracepoints have named fields; use args.FIELD")
            raise RenderError(f"{name} is not available at {self.fn.probe.text}")
        if name in ("comm", "func", "probe"):
            raise RenderError(f"{name} is text: compare it with == \"...\" or print it")
        if name in ("kstack", "ustack"):
            raise RenderError(f"{name} is a stack: use it as a map key or a printed column")
        raise RenderError(f"unknown builtin {name}")

    def saved_slot(self, name: str) -> Slot:
        if not self.in_end or name not in self.saved:
            raise RenderError(f"start.{name} is only available at the end probes of a start/end pair")
        return self.saved[name]

    # -- text -----------------------------------------------------------------------------------------
    def is_text(self, node: E.Node) -> bool:
        if isinstance(node, E.Saved) and self.in_end and node.name in self.saved:
            return self.saved[node.name].kind == "str"
        if isinstance(node, E.Builtin) and node.name in ("func", "probe"):
            return True
        return lower.infer(node, self.ctx) in ("str", "ptr_str") or (
            isinstance(node, E.Call) and node.fn == "str")

    def read_str(self, node: E.Node, dst: str, size: int) -> list[str]:
        """Statements that put the text of ``node`` into the char array ``dst`` of ``size`` bytes."""
        if isinstance(node, E.Builtin) and node.name == "comm":
            if self.fn.kind in PACKET_KINDS:
                self.builtin("comm")
            return [f"bpf_get_current_comm(&{dst}, {min(size, COMM_LEN)});"]
        if isinstance(node, E.Str):
            data = node.value.encode("utf-8", "replace")[: size - 1] + b"\0"
            return [" ".join(f"{dst}[{i}] = {_c_char(c)};" for i, c in enumerate(data))]
        if isinstance(node, E.Saved):
            slot = self.saved_slot(node.name)
            if slot.kind != "str":
                raise RenderError(f"start.{node.name} is not text")
            return [f"bpf_probe_read_kernel_str(&{dst}, {min(size, slot.size)}, st->{slot.member});"]
        if isinstance(node, E.Field):
            f = self.tp_field(node.name)
            name = ident(f.name)
            if f.data_loc:
                return [f"bpf_probe_read_kernel_str(&{dst}, {size}, (char *)args + (args->data_loc_{name} & 0xFFFF));"]
            if f.kind == "str":
                return [f"bpf_probe_read_kernel_str(&{dst}, {size}, args->{name});"]
            if f.kind in ("ptr_str", "ptr", "int"):
                return [f"bpf_probe_read_{self.space}_str(&{dst}, {size}, (void *)args->{name});"]
            raise RenderError(f"args.{f.name} is not text")
        if isinstance(node, E.Call) and node.fn == "str":
            limit = size
            if len(node.args) == 2:
                n = node.args[1]
                assert isinstance(n, E.Num)
                if n.value < 1:
                    raise RenderError("str(x, n) needs n >= 1")
                limit = min(size, n.value)
            inner = node.args[0]
            if self.is_text(inner):
                return self.read_str(inner, dst, limit)
            ptr, _ = self.value(inner)
            return [*self.take_pre(), f"bpf_probe_read_{self.space}_str(&{dst}, {limit}, (void *)({ptr}));"]
        if isinstance(node, E.Index) and isinstance(node.base, E.Field):
            f = self.tp_field(node.base.name)
            p = self.temp("p")
            return [f"const char *{p} = NULL;",
                    f"bpf_probe_read_{self.space}(&{p}, sizeof({p}), &args->{ident(f.name)}[{node.index}]);",
                    f"bpf_probe_read_{self.space}_str(&{dst}, {size}, {p});"]
        if isinstance(node, E.Builtin) and node.name in ("func", "probe"):
            return self.read_str(E.Str(self.b.probe_label(self.fn, node.name)), dst, size)
        raise RenderError("this value is not text")

    def text_ref(self, node: E.Node, need: int | None = None) -> tuple[str, int]:
        """A char array holding the text of ``node``, read into a temporary if needed (of ``need`` bytes at
        most: the BPF stack has 512)."""
        if isinstance(node, E.Saved):
            slot = self.saved_slot(node.name)
            return f"st->{slot.member}", slot.size
        size = self.b.text_size(node, self.ctx)
        if need is not None:
            size = min(size, need)
        t = self.temp()
        self.pre += [f"char {t}[{size}];", *self.read_str(node, t, size)]
        return t, size

    def text_compare(self, node: E.Binary) -> str:
        left, right = node.left, node.right
        if isinstance(left, E.Str) and not isinstance(right, E.Str):
            left, right = right, left
        if isinstance(right, E.Str):
            if isinstance(left, E.Str):
                same = left.value == right.value
            elif isinstance(left, E.Builtin) and left.name in ("func", "probe"):
                same = self.b.probe_label(self.fn, left.name) == right.value
            else:
                if not self.is_text(left):
                    raise RenderError(f'"{right.value[:40]}" is text; the other side of {node.op} is a number')
                data = right.value.encode("utf-8", "replace")
                # one byte more than the literal and its NUL: a longer text cannot look equal when cut short
                buf, size = self.text_ref(left, len(data) + 2)
                if len(data) >= size:
                    eq = "0"  # longer than the text can be
                else:
                    eq = "(" + " && ".join(f"{buf}[{i}] == {_c_char(c)}" for i, c in enumerate(data + b"\0")) + ")"
                return f"!{eq}" if node.op == "!=" else eq
            return "1" if same == (node.op == "==") else "0"
        if not (self.is_text(left) and self.is_text(right)):
            raise RenderError(f"{node.op} compares a text with a number")
        a, sa = self.text_ref(left)
        c, sc = self.text_ref(right)
        n = min(sa, sc)
        self.b.need_streq(n)
        eq = f"str_eq_{n}({a}, {c})"
        return f"!{eq}" if node.op == "!=" else eq

    def prefix_differs(self, node: E.Call) -> str:
        """strncmp(x, "text", n) as bpftrace has it: 0 when the first n characters agree (a shorter x ends with
        its NUL where "text" goes on, and differs)."""
        text, literal, n = node.args
        assert isinstance(literal, E.Str) and isinstance(n, E.Num)
        if not self.is_text(text):
            raise RenderError("strncmp() compares a text with a literal")
        data = (literal.value.encode("utf-8", "replace") + b"\0")[: n.value]
        buf, size = self.text_ref(text, len(data) + 1)
        if len(data) > size:
            return "1"  # the text cannot hold that many characters
        return "!(" + " && ".join(f"{buf}[{i}] == {_c_char(c)}" for i, c in enumerate(data)) + ")"

    def cond(self, text: str) -> str:
        c, _ = self.value(E.parse(text))
        return c

    # -- storing values -------------------------------------------------------------------------------
    def fill(self, slot: Slot, dst: str, node: E.Node | None = None) -> list[str]:
        """Statements storing the slot's value into ``dst.<member>`` (dst like 'e->' or 'k.')."""
        node = node if node is not None else slot.node
        assert node is not None
        m = f"{dst}{slot.member}"
        k = slot.kind
        if isinstance(node, E.Saved) and k not in ("int", "hex", "oct", "names", "str"):
            src = self.saved_slot(node.name)
            if src.kind != k:
                raise RenderError(f"start.{node.name} cannot be shown as {k}")
            extra = [f"{m}_pid = st->{src.member}_pid;"] if k in ("ustack", "usym") else []
            if k in ("ip4", "ip6"):
                return [f"__builtin_memcpy({m}, st->{src.member}, sizeof({m}));"]
            return [f"{m} = st->{src.member};", *extra]
        if k in ("int", "hex", "oct", "names"):
            v, _ = self.value(node)
            return [*self.take_pre(), f"{m} = {v};"]
        if k == "str":
            return [*self.take_pre(), *self.read_str(node, m, slot.size)]
        if k in ("ip4", "ip6"):
            inner = node.args[0] if isinstance(node, E.Call) and node.fn == "ntop" else node
            if isinstance(inner, E.Field):
                f = self.tp_field(inner.name)
                return [f"bpf_probe_read_kernel(&{m}, sizeof({m}), args->{ident(f.name)});"]
            raise RenderError("an IPv4/IPv6 address array must be a tracepoint field")
        if k == "ip4int":
            inner = node.args[0] if isinstance(node, E.Call) and node.fn == "ntop" else node
            v, _ = self.value(inner)
            return [*self.take_pre(), f"{m} = (u32)({v});"]
        if k in ("kstack", "ustack"):
            if self.fn.kind in PACKET_KINDS:
                self.builtin(k)
            self.b.need_stacks()
            if k == "kstack":
                return [f"{m} = stacks.get_stackid({self.fn.ctx}, 0);"]
            return [f"{m} = stacks.get_stackid({self.fn.ctx}, BPF_F_USER_STACK);",
                    f"{m}_pid = bpf_get_current_pid_tgid() >> 32;"]
        if k in ("ksym", "usym"):
            inner = node.args[0] if isinstance(node, E.Call) and node.fn in ("ksym", "usym") else node
            v, _ = self.value(inner)
            out = [*self.take_pre(), f"{m} = {v};"]
            if k == "usym":
                out.append(f"{m}_pid = bpf_get_current_pid_tgid() >> 32;")
            return out
        if k in ("probe", "func"):
            return [f"{m} = {self.fn.index};"]
        if k == "join":
            inner = node.args[0] if isinstance(node, E.Call) else node
            if not isinstance(inner, E.Field):
                raise RenderError("join() takes an argv field of a tracepoint, e.g. join(args.argv)")
            f = self.tp_field(inner.name)
            return [
                "#pragma unroll",
                f"for (int i = 0; i < {JOIN_ARGS}; i++)",
                f"    {m}[i][0] = 0;",
                "#pragma unroll",
                f"for (int i = 0; i < {JOIN_ARGS}; i++) {{",
                "    const char *arg = NULL;",
                f"    bpf_probe_read_{self.space}(&arg, sizeof(arg), &args->{ident(f.name)}[i]);",
                "    if (!arg)",
                "        break;",
                f"    bpf_probe_read_{self.space}_str(&{m}[i], {JOIN_ARG_LEN}, arg);",
                "}",
            ]
        raise AssertionError(k)


def _wrap(text: str) -> str:
    simple = text.replace("_", "").replace("->", "").replace(".", "").isalnum()
    return text if simple or (text.startswith("(") and text.endswith(")") and _balanced(text[1:-1])) else f"({text})"


def _balanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += c == "("
        depth -= c == ")"
        if depth < 0:
            return False
    return depth == 0


# --------------------------------------------------------------------------------------------------
# The program


@dataclass
class AggPlan:
    agg: Aggregate
    map: str  # C map name
    slots: list[Slot]
    keyed: bool
    labels: list[str]
    title: str
    value_label: str
    buckets: tuple[int, int, int] | None = None  # lhist (min, max, step)


class _Builder:
    def __init__(self, spec: ProgramSpec, catalog: Catalog) -> None:
        self.spec = spec
        self.catalog = catalog
        self.ctx = lower.main_context(spec, catalog)
        self.sctx = lower.start_context(spec, catalog) if spec.start else None
        self.ringbuf = bool(getattr(catalog.features, "ringbuf", True))
        self.layout = ProgramLayout()
        self.names: list[dict[int, str]] = []
        self.helpers: dict[str, list[str]] = {}
        self.stacks = False
        self.packet = False
        self.tc = False
        self.usdt: list[ProbeFn] = []
        self.fns: list[ProbeFn] = []
        self.start_fns: list[ProbeFn] = []
        self.saved: dict[str, Slot] = {}
        self.key_slots: list[Slot] = []

    # -- shared pieces --------------------------------------------------------------------------------
    def names_table(self, table: dict[int, str]) -> int:
        for i, t in enumerate(self.names):
            if t == table:
                return i
        self.names.append(dict(table))
        return len(self.names) - 1

    def need_streq(self, n: int) -> None:
        self.helpers.setdefault(f"str_eq_{n}", [
            f"// 1 when the texts in a and b are equal (compared up to {n} bytes or the first NUL)",
            f"static __always_inline int str_eq_{n}(const char *a, const char *b)",
            "{",
            "#pragma unroll",
            f"    for (int i = 0; i < {n}; i++) {{",
            "        if (a[i] != b[i])",
            "            return 0;",
            "        if (a[i] == 0)",
            "            break;",
            "    }",
            "    return 1;",
            "}",
        ])

    def need_stacks(self) -> None:
        self.stacks = True

    def packet_parse(self, fn: ProbeFn) -> list[str]:
        self.packet = True
        if fn.kind == "tc":
            self.tc = True
            src = ["void *data = (void *)(long)skb->data;", "void *data_end = (void *)(long)skb->data_end;",
                   "u64 pkt_len = skb->len;", "u32 ifindex = skb->ifindex;"]
        else:
            src = ["void *data = (void *)(long)ctx->data;", "void *data_end = (void *)(long)ctx->data_end;",
                   "u64 pkt_len = data_end - data;", "u32 ifindex = ctx->ingress_ifindex;"]
        return [
            "// The packet: Ethernet, then IPv4 or IPv6, then the TCP/UDP ports (0 where a header is absent)",
            *src,
            "u16 eth_proto = 0, src_port = 0, dst_port = 0;",
            "u8 ip_proto = 0;",
            "u32 ip_src = 0, ip_dst = 0;",
            "void *l4 = NULL;",
            "struct eth_hdr *eth = data;",
            "if ((void *)(eth + 1) <= data_end) {",
            "    eth_proto = NET16(eth->proto);",
            "    if (eth_proto == 0x0800) {  // IPv4",
            "        struct ipv4_hdr *ip = (void *)(eth + 1);",
            "        if ((void *)(ip + 1) <= data_end) {",
            "            ip_proto = ip->protocol;",
            "            ip_src = ip->saddr;",
            "            ip_dst = ip->daddr;",
            "            l4 = (void *)ip + (ip->version_ihl & 0x0F) * 4;",
            "        }",
            "    } else if (eth_proto == 0x86DD) {  // IPv6 (extension headers are not followed)",
            "        struct ipv6_hdr *ip6 = (void *)(eth + 1);",
            "        if ((void *)(ip6 + 1) <= data_end) {",
            "            ip_proto = ip6->nexthdr;",
            "            l4 = (void *)(ip6 + 1);",
            "        }",
            "    }",
            "}",
            "if (l4 && (ip_proto == 6 || ip_proto == 17)) {  // TCP or UDP: both start with the two ports",
            "    struct ports_hdr *ports = l4;",
            "    if ((void *)(ports + 1) <= data_end) {",
            "        src_port = NET16(ports->source);",
            "        dst_port = NET16(ports->dest);",
            "    }",
            "}",
        ]

    def probe_label(self, fn: ProbeFn, which: str) -> str:
        p = fn.probe
        if which == "func":
            return p.name or p.text
        return p.text

    def text_size(self, node: E.Node, ctx: Context) -> int:
        if isinstance(node, E.Builtin) and node.name == "comm":
            return COMM_LEN
        if isinstance(node, E.Call) and node.fn == "str" and len(node.args) == 2:
            n = node.args[1]
            if isinstance(n, E.Num) and n.value >= 1:
                return min(n.value, STRLEN)
        if isinstance(node, E.Field):
            for p in ctx.probes:
                f = self.catalog.field(p, node.name)
                if f is not None and f.kind == "str" and f.array:
                    return min(f.array, STRLEN)
        if isinstance(node, E.Saved) and node.name in self.saved:
            return self.saved[node.name].size
        return STRLEN

    def signed(self, node: E.Node, ctx: Context) -> bool:
        if isinstance(node, E.Field):
            for p in ctx.probes:
                f = self.catalog.field(p, node.name)
                if f is not None:
                    return f.signed
            return True
        if isinstance(node, E.Builtin):
            return node.name == "retval"
        if isinstance(node, E.Saved):
            slot = self.saved.get(node.name)
            return slot.signed if slot else True
        if isinstance(node, E.Unary):
            return node.op == "-" or (node.op == "~" and self.signed(node.operand, ctx))
        if isinstance(node, E.Binary):
            if node.op in ("==", "!=", "<", "<=", ">", ">=", "&&", "||", "/", "%"):
                return False
            return self.signed(node.left, ctx) or self.signed(node.right, ctx)
        if isinstance(node, E.Ternary):
            return self.signed(node.then, ctx) or self.signed(node.other, ctx)
        if isinstance(node, E.Index) and isinstance(node.base, E.Field):
            return self.signed(node.base, ctx)
        return False

    def slot_for(self, out: OutputField, ctx: Context, member: str) -> Slot:
        """How a column or key is stored and shown (mirrors the bpftrace renderer's column rules)."""
        node = E.parse(out.expr)
        kind = lower.infer(node, ctx)
        if kind == "join":
            return Slot(member, "join", node=node)
        table = lower.value_names(out, ctx)
        if table:
            return Slot(member, "names", signed=self.signed(node, ctx), names=self.names_table(table), node=node)
        fmt = out.format
        if isinstance(node, E.Builtin) and node.name in ("ip_src", "ip_dst"):
            return Slot(member, "ip4int", node=node)
        if fmt == "ip" or kind in ("ip4", "ip6") or (isinstance(node, E.Call) and node.fn == "ntop"):
            inner = node.args[0] if isinstance(node, E.Call) and node.fn == "ntop" else node
            ik = lower.infer(inner, ctx)
            if isinstance(inner, E.Field):
                for p in ctx.probes:
                    f = self.catalog.field(p, inner.name)
                    if f is not None and f.array in (4, 16):
                        ik = "ip4" if f.array == 4 else "ip6"
            if isinstance(inner, E.Saved) and inner.name in self.saved:
                return Slot(member, self.saved[inner.name].kind, node=node)
            if ik in ("ip4", "ip6"):
                return Slot(member, ik, node=node)
            return Slot(member, "ip4int", node=node)
        if fmt == "ksym" or (isinstance(node, E.Call) and node.fn == "ksym"):
            return Slot(member, "ksym", node=node)
        if fmt == "usym" or (isinstance(node, E.Call) and node.fn == "usym"):
            return Slot(member, "usym", node=node)
        if isinstance(node, E.Builtin) and node.name in ("func", "probe"):
            return Slot(member, node.name, node=node)
        if kind == "stack" or fmt == "stack":
            if isinstance(node, E.Saved) and node.name in self.saved:
                s = self.saved[node.name]
                return Slot(member, s.kind, limit=s.limit, node=node)
            which = node.name if isinstance(node, E.Builtin) else node.fn if isinstance(node, E.Call) else ""
            if which not in ("kstack", "ustack"):
                raise RenderError(f"{out.expr!r} is not a stack (use kstack or ustack)")
            limit = None
            if isinstance(node, E.Call) and node.args and isinstance(node.args[0], E.Num):
                limit = node.args[0].value
            return Slot(member, which, limit=limit, node=node)
        if fmt in ("hex", "oct"):
            return Slot(member, fmt, signed=False, node=node)
        if kind in ("str", "ptr_str") or fmt == "str":
            if kind == "int" and fmt == "str":
                node = E.Call("str", (node,))
            if isinstance(node, E.Saved) and node.name in self.saved and self.saved[node.name].kind != "str":
                s = self.saved[node.name]
                return Slot(member, s.kind, signed=s.signed, size=s.size, limit=s.limit, node=node)
            return Slot(member, "str", size=self.text_size(node, ctx), node=node)
        if isinstance(node, E.Saved) and node.name in self.saved:
            s = self.saved[node.name]
            return Slot(member, s.kind, signed=s.signed, size=s.size, names=s.names, limit=s.limit, node=node)
        return Slot(member, "int", signed=self.signed(node, ctx), node=node)

    # -- probe functions ------------------------------------------------------------------------------
    def make_fns(self) -> None:
        seen: set[str] = set()
        declared: set[str] = set()
        index = 0
        if self.spec.start:
            for i, p in enumerate(self.spec.start.probes):
                fn = make_probe_fn(p, index, f"start_{i}", self.catalog, self.spec.start_expressions(), declared)
                self.start_fns.append(fn)
                index += 1
        for i, p in enumerate(self.spec.probes):
            fn = make_probe_fn(p, index, f"probe_{i}", self.catalog, self.spec.expressions(), declared)
            self.fns.append(fn)
            index += 1
        for fn in self.start_fns + self.fns:
            if fn.name in seen:
                raise RenderError(f"{fn.probe.text} appears twice; BCC names its function {fn.name} and needs one")
            seen.add(fn.name)
            if fn.kind == "usdt":
                self.usdt.append(fn)

    # -- events ---------------------------------------------------------------------------------------
    def event_plan(self) -> tuple[list[Slot], list[str], str | None, str | None]:
        """Slots of struct event, the Python values of each column, the line format, the header."""
        if not self.spec.print:
            return [], [], None, None
        taken: set[str] = set()
        slots: list[Slot] = []
        convs: list[str] = []
        heads: list[str] = []
        labels: list[str] = []
        values: list[str] = []
        fields = list(self.spec.print)
        for i, out in enumerate(fields):
            label = lower.label_for(out)
            slot = self.slot_for(out, self.ctx, member_name(label, taken))
            slots.append(slot)
            last = i == len(fields) - 1 or slot.kind == "join"
            conv = {"int": "%d", "hex": "0x%x", "oct": "%04o"}.get(slot.kind, "%s")
            w = _width(label, conv)
            convs.append(conv)  # not padded: separated by COLUMN_SEP, padded by the runner (or Output.event)
            self.layout.widths.append(0 if last else w)
            heads.append("%s" if last or w == 0 else f"%-{w}s")
            labels.append(label)
            values.append(slot.py("e"))
            if slot.kind == "join":
                break  # like bpftrace's join(), the joined arguments end the line
        self.layout.header = " ".join(heads) % tuple(labels)
        self.layout.columns = labels
        return slots, values, COLUMN_SEP.join(convs), self.layout.header

    def emit_lines(self, gen: CGen, slots: list[Slot]) -> list[str]:
        fill: list[str] = []
        for s in slots:
            fill += gen.fill(s, "e->")
        if self.ringbuf:
            return ["// Send one event to user space through the ring buffer.",
                    "struct event *e = events.ringbuf_reserve(sizeof(struct event));",
                    "if (e) {", *_indent(fill), "    events.ringbuf_submit(e, 0);", "} else {",
                    "    count_lost();  // the buffer was full", "}"]
        return ["// Build the event in per-CPU scratch space (it is larger than the BPF stack), then send it.",
                "int zero = 0;",
                "struct event *e = event_buf.lookup(&zero);",
                "if (e) {", *_indent(fill), f"    events.perf_submit({gen.fn.ctx}, e, sizeof(*e));", "}"]

    # -- aggregates -----------------------------------------------------------------------------------
    def agg_plans(self) -> list[AggPlan]:
        plans = []
        for agg in self.spec.aggregates:
            name = ident(agg.name or "x")
            taken: set[str] = {"slot"}
            slots = [self.slot_for(k, self.ctx, member_name(lower.label_for(k), taken)) for k in agg.keys]
            for s in slots:
                if s.kind == "join":
                    raise RenderError("join() can only be printed, not used as a map key")
            title = agg.title or _default_title(agg)
            buckets = None
            if agg.func == "lhist":
                assert agg.lhist is not None
                lh = agg.lhist
                if lh.max <= lh.min:
                    raise RenderError("lhist needs max > min")
                if (lh.max - lh.min) // lh.step > 1000:
                    raise RenderError("lhist with more than 1000 buckets; use a larger step")
                buckets = (lh.min, lh.max, lh.step)
            plans.append(AggPlan(agg, f"agg_{name}", slots, bool(agg.keys), [lower.label_for(k) for k in agg.keys],
                                 title, _value_label(agg), buckets))
            self.layout.titles.add(title)
            self.layout.aggregates[agg.name or "x"] = AggregateLayout(
                agg.name or "x", agg.func, title, [lower.label_for(k) for k in agg.keys], _value_label(agg),
                [None for _ in agg.keys])
        return plans

    def agg_decls(self, plans: list[AggPlan]) -> list[str]:
        out: list[str] = []
        for p in plans:
            func = p.agg.func
            out.append("")
            out.append(f"// {_c_comment(p.title)}")
            hist = func in ("hist", "lhist")
            slots = p.slots
            if p.keyed:
                trail = [(4, "u32 slot;", "ct.c_uint32")] if hist else None
                lines, _ = struct_lines(f"{p.map}_key_t", slots, trail=trail)
                out += lines
            key = f"struct {p.map}_key_t" if p.keyed else ("int" if hist else "u32")
            if func in ("avg", "stats"):
                out += [f"struct {p.map}_value_t {{", "    s64 total;", "    u64 count;", "};"]
                out.append(f"BPF_HASH({p.map}, {key}, struct {p.map}_value_t, {MAP_ENTRIES});")
            elif hist:
                size = LOG2_SLOTS if func == "hist" else _lhist_slots(p.buckets)
                out.append(f"BPF_HISTOGRAM({p.map}, {key}, {MAP_ENTRIES if p.keyed else size});")
            elif func == "count":
                out.append(f"BPF_HASH({p.map}, {key}, u64, {MAP_ENTRIES});")
            else:
                out.append(f"BPF_HASH({p.map}, {key}, s64, {MAP_ENTRIES});")
        return out

    def agg_lines(self, gen: CGen, p: AggPlan) -> list[str]:
        agg = p.agg
        func = agg.func
        body: list[str] = []
        if p.keyed:
            body += [f"struct {p.map}_key_t k;", "__builtin_memset(&k, 0, sizeof(k));"]
            for s in p.slots:
                body += gen.fill(s, "k.")
        val = ""
        if agg.value:
            v, _ = gen.value(E.parse(agg.value))
            body += gen.take_pre()
            val = v
        if func == "count":
            if not p.keyed:
                body.append("u32 k = 0;")
            body += ["u64 zero = 0;", f"u64 *v = {p.map}.lookup_or_try_init(&k, &zero);", "if (v)",
                     "    __sync_fetch_and_add(v, 1);"]
        elif func == "sum":
            if not p.keyed:
                body.append("u32 k = 0;")
            body += [f"s64 val = {val};", "s64 zero = 0;", f"s64 *v = {p.map}.lookup_or_try_init(&k, &zero);",
                     "if (v)", "    __sync_fetch_and_add(v, val);"]
        elif func in ("min", "max"):
            if not p.keyed:
                body.append("u32 k = 0;")
            op = "<" if func == "min" else ">"
            body += [f"s64 val = {val};", f"s64 *v = {p.map}.lookup(&k);", "if (!v)",
                     f"    {p.map}.update(&k, &val);", f"else if (val {op} *v)", "    *v = val;"]
        elif func in ("avg", "stats"):
            if not p.keyed:
                body.append("u32 k = 0;")
            body += [f"s64 val = {val};", f"struct {p.map}_value_t zero = {{}};",
                     f"struct {p.map}_value_t *v = {p.map}.lookup_or_try_init(&k, &zero);", "if (v) {",
                     "    __sync_fetch_and_add(&v->total, val);", "    __sync_fetch_and_add(&v->count, 1);", "}"]
        else:
            if func == "hist":
                self.helpers.setdefault("log2_slot", _LOG2_SLOT)
                slot = f"log2_slot({val})"
            else:
                self.helpers.setdefault("lhist_slot", _LHIST_SLOT)
                lo, hi, step = p.buckets or (0, 1, 1)
                slot = f"lhist_slot({val}, {lo}, {hi}, {step})"
            if p.keyed:
                body.append(f"k.slot = {slot};")
            else:
                body.append(f"int k = {slot};")
            body += ["u64 zero = 0;", f"u64 *v = {p.map}.lookup_or_try_init(&k, &zero);", "if (v)",
                     "    __sync_fetch_and_add(v, 1);"]
        head = [f"// {_c_comment(p.title)}"]
        if agg.filter:
            c = gen.cond(agg.filter)
            return head + gen.take_pre() + [f"if ({c}) {{", *_indent(body), "}"]
        return [*head, "{", *_indent(body), "}"]

    def agg_python(self, plans: list[AggPlan]) -> list[str]:
        out = []
        for p in plans:
            key = ("lambda b, k: (" + "".join(f"{s.py('k')}, " for s in p.slots) + ")") if p.keyed else "None"
            hist = "None"
            if p.agg.func == "hist":
                hist = '("log2",)'
            elif p.agg.func == "lhist" and p.buckets:
                lo, hi, step = p.buckets
                hist = f'("linear", {integer(lo)}, {integer(hi)}, {integer(step)})'
            labels = "[" + ", ".join(string_literal(lab, 40) for lab in p.labels) + "]"
            out += [
                "{",
                f'    "name": {string_literal(p.agg.name or "x")},',
                f'    "map": {string_literal(p.map)},',
                f'    "func": {string_literal(p.agg.func)},',
                f'    "title": {string_literal(p.title, 200)},',
                f'    "labels": {labels},',
                f'    "value_label": {string_literal(p.value_label, 40)},',
                f'    "unit": {string_literal(_unit_label(p.agg), 40) if p.agg.func in ("hist", "lhist") else "None"},',
                f'    "top": {integer(p.agg.top) if p.agg.top else "None"},',
                f'    "hist": {hist},',
                f'    "key": {key},',
                "},",
            ]
        return out

    # -- start/end pairs ------------------------------------------------------------------------------
    def start_plan(self) -> tuple[list[Slot], list[Slot]]:
        """Slots of the start key and of the saved values."""
        assert self.spec.start is not None and self.sctx is not None
        taken: set[str] = {"ts"}
        key_slots = []
        for i, k in enumerate(self.spec.start.key):
            out = OutputField(expr=k)
            s = self.slot_for(out, self.sctx, member_name(f"k{i}_{lower.label_for(out)}", taken))
            if s.kind not in ("int", "names", "hex", "oct", "str", "ip4int"):
                raise RenderError(f"start key {k!r}: a key must be a number or a text")
            if s.kind in ("names", "hex", "oct"):
                s.kind = "int"
            key_slots.append(s)
        saved = []
        for sv in self.spec.start.save:
            s = self.slot_for(OutputField(expr=sv.expr), self.sctx, member_name(sv.name, taken))
            if s.kind == "names":
                s.kind = "int"
            saved.append(s)
            self.saved[sv.name] = s
        self.key_slots = key_slots
        return key_slots, saved

    def start_function(self, fn: ProbeFn, key_slots: list[Slot], saved: list[Slot]) -> list[str]:
        assert self.spec.start is not None and self.sctx is not None
        gen = CGen(self, fn, Context(self.catalog, [fn.probe]))
        body: list[str] = []
        sf = self.spec.start.filter
        body += self.filter_lines(gen, self.spec.filter.comm, self.spec.filter.pid, None)
        body += self.filter_lines(gen, sf.comm, sf.pid, sf.expr)  # the start's own filter, comm/pid too
        body += ["struct start_key_t sk;", "__builtin_memset(&sk, 0, sizeof(sk));"]
        for s in key_slots:
            body += gen.fill(s, "sk.")
        body += ["int zero = 0;", "struct start_t *s = start_buf.lookup(&zero);", "if (!s)", f"    return {fn.ret};",
                 "s->ts = bpf_ktime_get_ns();"]
        for s in saved:
            body += gen.fill(s, "s->")
        body += ["start.update(&sk, s);", f"return {fn.ret};"]
        return _top(gen) + body

    def end_function(self, fn: ProbeFn, body_fn) -> list[str]:
        assert self.spec.start is not None
        ctx = Context(self.catalog, [fn.probe], saved=self.ctx.saved)
        gen = CGen(self, fn, ctx, self.saved, in_end=True)
        lines = ["struct start_key_t sk;", "__builtin_memset(&sk, 0, sizeof(sk));"]
        end_key = self.spec.end_key or self.spec.start.key
        for s, k in zip(self.key_slots, end_key, strict=True):
            node = E.parse(k)
            if s.kind == "str" and not gen.is_text(node):
                raise RenderError(f"end key {k!r} is a number but the start key is text")
            lines += gen.fill(s, "sk.", node)
        lines += ["struct start_t *st = start.lookup(&sk);", "if (!st)",
                  f"    return {fn.ret};  // the start was not seen (it happened before tracing began)",
                  "u64 delta = bpf_ktime_get_ns() - st->ts;"]
        inner = [*body_fn(gen), "start.delete(&sk);"]
        if self.spec.filter.expr:
            # (like bpftrace: a start that does not pass the filter stays, so the same event can be both a
            # start and a rejected end, as in SYN_SENT → ESTABLISHED on one tracepoint)
            c = gen.cond(self.spec.filter.expr)
            lines += [*gen.take_pre(), f"if ({c}) {{", *_indent(inner), "}"]
        else:
            lines += inner
        lines += [f"return {fn.ret};"]
        return _top(gen) + lines

    # -- filters --------------------------------------------------------------------------------------
    def filter_lines(self, gen: CGen, comm: str | None, pid: int | None, expr: str | None) -> list[str]:
        out: list[str] = []
        ret = gen.fn.ret
        if comm:
            c, _ = gen.value(E.Binary("==", E.Builtin("comm"), E.Str(comm)))
            out += [f"// only the process named {_c_comment(comm, 16)}", *gen.take_pre(),
                    f"if (!{c})", f"    return {ret};"]
        if pid:
            c, _ = gen.value(E.Binary("==", E.Builtin("pid"), E.Num(pid)))
            out += [f"if (!{c})", f"    return {ret};"]
        if expr:
            c = gen.cond(expr)
            out += [f"// filter: {_c_comment(expr)}", *gen.take_pre(), f"if (!{_wrap(c)})", f"    return {ret};"]
        return out


_PACKET_HEADERS = [
    "// The packet headers used here, declared directly: the kernel's uapi headers for them (linux/ip.h,",
    "// linux/in.h, ...) would cost clang about a second to parse on every start.",
    "struct eth_hdr {",
    "    u8 dst[6];",
    "    u8 src[6];",
    "    u16 proto;  // network byte order",
    "} __attribute__((packed));",
    "struct ipv4_hdr {",
    "    u8 version_ihl;  // version (high 4 bits), header length in 32-bit words (low 4 bits)",
    "    u8 tos;",
    "    u16 tot_len;",
    "    u16 id;",
    "    u16 frag_off;",
    "    u8 ttl;",
    "    u8 protocol;",
    "    u16 check;",
    "    u32 saddr;",
    "    u32 daddr;",
    "} __attribute__((packed));",
    "struct ipv6_hdr {",
    "    u32 version_class_flow;",
    "    u16 payload_len;",
    "    u8 nexthdr;",
    "    u8 hop_limit;",
    "    u8 saddr[16];",
    "    u8 daddr[16];",
    "} __attribute__((packed));",
    "struct ports_hdr {",
    "    u16 source;",
    "    u16 dest;",
    "} __attribute__((packed));",
    "#define NET16(x) __builtin_bswap16(x)  // network to host byte order (x86-64 and arm64 are little-endian)",
]

_LOG2_SLOT = [
    "// bpftrace's power-of-two buckets: 0 holds negative values, 1 holds 0, n >= 2 holds [2^(n-2), 2^(n-1)).",
    "static __always_inline u32 log2_slot(s64 v)",
    "{",
    "    if (v < 0)",
    "        return 0;",
    "    if (v == 0)",
    "        return 1;",
    "    return bpf_log2l(v) + 1;",
    "}",
]
_LHIST_SLOT = [
    "// Linear buckets: 0 below min, 1.. for each step from min, the last one for max and above.",
    "static __always_inline u32 lhist_slot(s64 v, s64 min, s64 max, s64 step)",
    "{",
    "    if (v < min)",
    "        return 0;",
    "    if (v >= max)",
    "        return (u64)(max - min) / (u64)step + 1;",
    "    return (u64)(v - min) / (u64)step + 1;",
    "}",
]


def _enum_placeholders(catalog: Catalog, probes: list[ProbeRef]) -> list[str]:
    """Declarations of the enum types that tracepoint fields have (``enum skb_drop_reason reason``).

    BCC copies each field's type from the format file into the argument struct it declares; an enum there
    would need the kernel header that defines it. A placeholder enum of the same size is enough to read the
    field as a number (and the format file gives the names, see ``lower.value_names``)."""
    seen: dict[str, int] = {}
    for p in probes:
        tp = catalog.tracepoint(p)
        for f in tp.fields if tp else ():
            words = f.ctype.replace("const ", "").split()
            if len(words) == 2 and words[0] == "enum" and not f.array and "*" not in f.ctype:
                seen.setdefault(ident(words[1]), f.size)
    out = []
    for name, size in sorted(seen.items()):
        value, packed = {1: ("0", True), 2: ("0x100", True), 4: ("0", False), 8: ("0x100000000", False)}.get(
            size, ("0", False))
        out.append(f"enum {name} {{ gpttrace_{name}_placeholder = {value} }}"
                   f"{' __attribute__((packed))' if packed else ''};  // {size} bytes, as in the tracepoint")
    if out:
        out.insert(0, "// Enum types of tracepoint fields, declared so that BCC's argument structs compile.")
    return out


def _unit_label(agg: Aggregate) -> str:
    """What a histogram counts, for the text layout (BCC tools print e.g. 'usecs')."""
    if agg.unit:
        return agg.unit
    return lower.default_label(E.parse(agg.value)).lower() if agg.value else "value"


def _lhist_slots(buckets: tuple[int, int, int] | None) -> int:
    lo, hi, step = buckets or (0, 1, 1)
    return (hi - lo) // step + 2


def _indent(lines: list[str], n: int = 4) -> list[str]:
    pad = " " * n
    return [ln if ln.startswith("#") else pad + ln for ln in lines]


def _top(gen: CGen) -> list[str]:
    out: list[str] = []
    for lines in gen.top.values():
        out += lines
    return out


def _width(label: str, conv: str) -> int:
    if label in _COMM_LABELS:
        return 16
    if conv == "%d":
        return max(7, len(label))
    if conv == "%s":
        return max(16, len(label))
    return max(10, len(label))


def render(spec: ProgramSpec, catalog: Catalog) -> RenderedProgram:
    spec = lower.read_saves_only(spec)
    b = _Builder(spec, catalog)
    b.make_fns()
    if spec.start:
        key_slots, saved = b.start_plan()
    else:
        key_slots, saved = [], []
    ev_slots, ev_values, ev_format, header = b.event_plan()
    plans = b.agg_plans()

    def body(gen: CGen) -> list[str]:
        lines: list[str] = []
        if ev_slots:
            lines += b.emit_lines(gen, ev_slots)
        for p in plans:
            lines += b.agg_lines(gen, p)
        return lines

    functions: list[dict[str, object]] = []
    start_functions: list[dict[str, object]] = []
    for fn in b.start_fns:
        start_functions.append(_fn_view(fn, b.start_function(fn, key_slots, saved)))
    for fn in b.fns:
        if spec.start:
            lines = b.end_function(fn, body)
        else:
            gen = CGen(b, fn, Context(catalog, [fn.probe]))
            filt = b.filter_lines(gen, spec.filter.comm, spec.filter.pid, spec.filter.expr)
            main = body(gen)
            lines = _top(gen) + filt + main + [f"return {fn.ret};"]
        functions.append(_fn_view(fn, lines))

    # C declarations
    decls: list[str] = []
    event_fields: list[tuple[str, str]] = []
    if ev_slots:
        lines, event_fields = struct_lines("event", ev_slots)
        decls += ["// One printed event, filled in the kernel and read by Python (class Event below).", *lines]
        if b.ringbuf:
            decls += [f"BPF_RINGBUF_OUTPUT(events, {RINGBUF_PAGES});  // {RINGBUF_PAGES} pages shared by all CPUs",
                      "BPF_ARRAY(lost, u64, 1);  // events dropped because the ring buffer was full", "",
                      "static __always_inline void count_lost(void)", "{", "    int zero = 0;",
                      "    u64 *n = lost.lookup(&zero);", "    if (n)", "        __sync_fetch_and_add(n, 1);", "}"]
        else:
            decls += ["BPF_PERF_OUTPUT(events);  // this kernel has no BPF ring buffer (before 5.8)",
                      "BPF_PERCPU_ARRAY(event_buf, struct event, 1);"]
    start_decls: list[str] = []
    if spec.start:
        kl, _ = struct_lines("start_key_t", key_slots)
        sl, _ = struct_lines("start_t", saved, lead=[(8, "u64 ts;", "ct.c_uint64")])
        start_decls = [f"// Start: {_c_comment(spec.start.probes[0].text)}"
                       f"{' (and others)' if len(spec.start.probes) > 1 else ''} saves the time"
                       f"{' and values needed later' if saved else ''}, keyed by "
                       f"{_c_comment(', '.join(spec.start.key))}.", *kl, *sl,
                       f"BPF_HASH(start, struct start_key_t, struct start_t, {MAP_ENTRIES});",
                       "BPF_PERCPU_ARRAY(start_buf, struct start_t, 1);  // scratch space, larger than the BPF stack"]
    agg_decls = b.agg_decls(plans)
    if b.stacks:
        agg_decls += ["", f"BPF_STACK_TRACE(stacks, {STACK_ENTRIES});  // stack ids → return addresses"]
    # Kernel headers are parsed by clang on every compile (a large one such as linux/sched.h costs most of a
    # second), so include only what the functions use.
    kinds = {fn.kind for fn in b.fns + b.start_fns}
    includes = []
    if kinds & {"kprobe", "kretprobe", "uprobe", "uretprobe", "usdt"}:
        includes.append("#include <uapi/linux/ptrace.h>")
    # (perf event functions only pass their struct bpf_perf_event_data pointer on, so it needs no header)
    if b.packet:
        includes += _PACKET_HEADERS
    if "tc" in kinds:
        includes += ["#define TC_ACT_UNSPEC (-1)  // from linux/pkt_cls.h (TCX_NEXT): let the packet continue"]
    helpers: list[str] = []
    for lines in b.helpers.values():
        helpers += ["", *lines]
    includes += _enum_placeholders(catalog, [fn.probe for fn in b.start_fns + b.fns])

    c_parts = {
        "includes": includes,
        "decls": decls,
        "start_decls": start_decls,
        "agg_decls": agg_decls,
        "helpers": helpers,
    }
    c_text_lines = [ln for part in c_parts.values() for ln in part]
    for f in start_functions + functions:
        c_text_lines += [str(f["probe"]), str(f["comment"]), str(f["head"]), *(str(x) for x in f["body"])]  # type: ignore[attr-defined]

    b.layout.ready = f"Tracing {_ready_title(spec.title)}... Hit Ctrl-C to end."
    all_fns = b.start_fns + b.fns
    loads = [(string_literal(fn.name), fn.prog_type) for fn in all_fns if fn.prog_type]
    perf = any(fn.kind in PERF_KINDS for fn in all_fns)
    imports = ["BPF"] + (["PerfType", "PerfSWConfig", "PerfHWConfig"] if perf else []) + (["USDT"] if b.usdt else [])
    usdt = [(string_literal(fn.name), fn.attach[0]) for fn in b.usdt]
    view: dict[str, object] = {
        "title": comment(spec.title),
        "rationale": comment(spec.rationale) if spec.rationale else None,
        "lesson": comment(spec.lesson) if spec.lesson else None,
        "imports": Code(", ".join(imports)),
        "c": {k: [Code(ln) for ln in v] for k, v in c_parts.items()},
        "functions": functions,
        "start_functions": start_functions,
        "start_comment": _c_comment(f"Start: remember when this happened, keyed by {', '.join(spec.start.key)}")
        if spec.start else None,
        "loads": [(Code(n), Code(t)) for n, t in loads],
        "autoloaded": [string_literal(fn.name) for fn in all_fns if fn.prog_type is None and fn.kind != "usdt"],
        "usdt": [(Code(n), Code(a)) for n, a in usdt],
        "attach": [Code(line) for fn in all_fns for line in (fn.attach if fn.kind != "usdt" else [])],
        "probe_names": [string_literal(fn.probe.text, 300) for fn in all_fns],
        "func_names": [string_literal(b.probe_label(fn, "func"), 300) for fn in all_fns],
        "names": [(integer(i), [(integer(k), string_literal(v, 40)) for k, v in sorted(t.items())])
                  for i, t in enumerate(b.names)],
        "title_literal": string_literal(spec.title, 400),
        "ready": string_literal(b.layout.ready),
        "header": string_literal(header, 400) if header else None,
        "event_fields": [(string_literal(n), Code(t)) for n, t in event_fields],
        "event_format": string_literal(ev_format, 400, marks=True) if ev_format else None,
        "event_widths": [integer(w) for w in b.layout.widths],
        "event_values": Code("".join(f"{v}, " for v in ev_values)),
        "ringbuf": b.ringbuf,
        "ringbuf_pages": integer(RINGBUF_PAGES),
        "perf_pages": integer(PERF_PAGES),
        "aggregates": [Code(ln) for ln in b.agg_python(plans)],
        "interval": integer(spec.interval_s) if spec.interval_s else integer(0),
        "tc": any(fn.kind == "tc" for fn in all_fns),
        "xdp": any(fn.kind == "xdp" for fn in all_fns),
    }
    template = "pair.py.j2" if spec.start else "events.py.j2"
    text = environment("bcc").get_template(template).render(**view)
    _check_c_text(text, c_text_lines)
    return RenderedProgram("bcc", text, b.layout)


def _fn_view(fn: ProbeFn, lines: list[str]) -> dict[str, object]:
    return {
        "probe": _c_comment(fn.probe.text),
        "comment": _c_comment(fn.comment, 300),
        "head": Code(fn.head),
        "body": [Code(ln) for ln in _indent(fn.prologue + lines)],
    }


def c_text_of(program_text: str) -> str:
    """The C text inside a rendered BCC program (between the BPF_TEXT quotes)."""
    start = program_text.index('BPF_TEXT = r"""') + len('BPF_TEXT = r"""')
    return program_text[start:program_text.index('"""', start)]


def c_first_line(program_text: str) -> int:
    """The line of the program file holding line 1 of the C text."""
    before = program_text[: program_text.index('BPF_TEXT = r"""')]
    return before.count("\n") + 1


__all__ = ["RenderError", "btf_func_arg_count", "c_first_line", "c_text_of", "render"]
