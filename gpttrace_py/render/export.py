"""Render a ProgramSpec as a standalone project: a libbpf CO-RE program in C, or the same on cilium/ebpf in Go.

Both projects share ``NAME.bpf.c`` (the kernel side) and ``NAME.h`` (the structs both sides read). The kernel
side's expressions are compiled by the BCC renderer's expression compiler (``bcc.cgen.CGen``: plain C with BPF
helpers); everything around them (sections, maps, the ring buffer, the start map of a pair) is written here
in libbpf's style. User space prints the same columns and aggregate tables as gpttrace's BCC programs.

Shapes a project cannot hold yet (stacks, symbols, kprobes, BEGIN/END...) are refused with a reason
(ExportError, exit 2), never rendered into code that does not build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import UsageError
from ..kernel.catalog import Catalog
from ..kernel.tracefs import TpField
from ..spec import ProbeRef, ProgramSpec
from ..spec import expr as E
from . import lower
from .bcc.aggregates import LOG2_SLOTS, AggPlan, lhist_slots, unit_label
from .bcc.builder import Builder
from .bcc.cgen import CGen
from .bcc.ctext import RenderError, indent, wrap
from .bcc.probes import ProbeFn
from .bcc.slots import Slot
from .common import column_width, probe_comment, ready_title
from .escape import Code, comment, environment, ident, string_literal
from .lower import Context

MAP_ENTRIES = 10240
RINGBUF_BYTES = 256 * 1024
EXPORTABLE_SLOTS = {"int", "hex", "oct", "names", "str", "ip4", "ip6", "ip4int", "probe", "func", "join"}
EXPORTABLE_KINDS = ("tracepoint", "uprobe", "uretprobe", "software", "profile")
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,30}\Z")
# Names a struct member cannot have in user space: libc macros (errno, stdin...) and GNU C's predefined
# macros (linux, unix); such a member gets a trailing underscore.
LIBC_MACROS = frozenset(("errno", "stdin", "stdout", "stderr", "environ", "assert", "linux", "unix", "i386",
                         "NULL", "EOF", "BUFSIZ", "major", "minor", "makedev"))
_KERNEL_TYPES = {"s64": "__s64", "u64": "__u64", "u32": "__u32", "u8": "__u8", "char": "char"}
_SIZES = {"__s64": 8, "__u64": 8, "__u32": 4, "__u8": 1, "char": 1}


class ExportError(UsageError):
    """A spec whose shape an exported project cannot hold yet (exit 2): the message says what is missing."""


# --------------------------------------------------------------------------------------------------
# Structs shared by the kernel side and user space


@dataclass
class Member:
    name: str
    ctype: str  # __s64 __u64 __u32 __u8 char
    dims: tuple[int, ...]  # array dimensions
    offset: int = 0

    @property
    def size(self) -> int:
        n = _SIZES[self.ctype]
        for d in self.dims:
            n *= d
        return n

    @property
    def align(self) -> int:
        return _SIZES[self.ctype]

    @property
    def decl(self) -> str:
        return f"{self.ctype} {self.name}{''.join(f'[{d}]' for d in self.dims)};"


@dataclass
class StructLayout:
    name: str
    members: list[Member]
    size: int

    def lines(self) -> list[str]:
        return [f"struct {self.name} {{", *(f"    {m.decl}" for m in self.members), "};"]

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)


def _members(slot: Slot) -> list[Member]:
    out = []
    for _, decl, _ in slot.decls():
        ctype, rest = decl.rstrip(";").split(" ", 1)
        dims = tuple(int(d) for d in re.findall(r"\[(\d+)\]", rest))
        out.append(Member(rest.split("[")[0], _KERNEL_TYPES[ctype], dims))
    return out


def struct_layout(name: str, slots: list[Slot], lead: list[Member] | None = None,
                  trail: list[Member] | None = None) -> StructLayout:
    """Members widest first (so there is little padding), offsets as C lays them out."""
    members = list(lead or [])
    for s in slots:
        members += _members(s)
    members.sort(key=lambda m: -m.align)
    members += trail or []
    offset, widest = 0, 1
    for m in members:
        offset = -(-offset // m.align) * m.align
        m.offset = offset
        offset += m.size
        widest = max(widest, m.align)
    return StructLayout(name, members, -(-offset // widest) * widest or widest)


# --------------------------------------------------------------------------------------------------
# Tracepoint records


def _tp_struct_name(probe: ProbeRef) -> str:
    return f"tp_{ident(probe.category or '')}__{ident(probe.name or '')}"


# Pointers to text and to arrays of text (argv), spaces left out: declared with their own type
_TEXT_POINTERS = frozenset(("char*", "constchar*", "unsignedchar*", "constunsignedchar*", "char**", "constchar**",
                            "char*const*", "constchar*const*"))


def _tp_member(f: TpField) -> str:
    """One field of a tracepoint record as a C member: sized integers, char arrays, text pointers; the
    __data_loc of dynamic text as BCC names it (data_loc_NAME: offset in the low 16 bits, length above)."""
    name = ident(f.name)
    if f.data_loc:
        return f"__u32 data_loc_{name};"
    ctype = f.ctype.strip()
    if "*" in ctype:
        # other pointers are addresses: a number, cast to a pointer where one is read
        return f"{ctype} {name};" if ctype.replace(" ", "") in _TEXT_POINTERS else f"__u64 {name};"
    if f.array:
        each = f.size // f.array
        if each == 1 and "char" in ctype:
            return f"char {name}[{f.array}];"
        return f"{_int_type(each, f.signed)} {name}[{f.array}];"
    return f"{_int_type(f.size, f.signed)} {name};"


def _int_type(size: int, signed: bool) -> str:
    if size not in (1, 2, 4, 8):
        raise ExportError(f"a tracepoint field of {size} bytes cannot be declared as an integer")
    return f"__{'s' if signed else 'u'}{size * 8}"


def tracepoint_struct(catalog: Catalog, probe: ProbeRef) -> list[str]:
    """The record of a tracepoint, from its format file (tracefs): the fields at their offsets."""
    tp = catalog.tracepoint(probe)
    if tp is None:
        raise ExportError(f"{probe.text}: no such tracepoint on this kernel")
    name = _tp_struct_name(probe)
    lines = [f"// The record of {comment(probe.text)}, as its format file lays it out", f"struct {name} {{"]
    at = 0
    for f in sorted(tp.fields, key=lambda f: f.offset):
        if f.offset > at:
            lines.append(f"    char __pad_{at}[{f.offset - at}];")
        elif f.offset < at:
            continue  # (a field overlapping the previous one: never seen, but keep the layout right)
        lines.append(f"    {_tp_member(f)}")
        at = f.offset + f.size
    lines.append("};")
    return lines


# --------------------------------------------------------------------------------------------------
# The kernel side


def _probe_fn(probe: ProbeRef, index: int, name: str, catalog: Catalog) -> tuple[ProbeFn, str]:
    """The function for one probe and its SEC() name."""
    k = probe.kind
    if k not in EXPORTABLE_KINDS:
        raise ExportError(f"{probe.text}: an export supports tracepoints, uprobes/uretprobes and software/profile "
                          f"perf events, not {k} probes yet",
                          "trace it with gpttrace itself, or export a program on a tracepoint")
    if k == "tracepoint":
        fn = ProbeFn(probe, index, name, f"int {name}(struct {_tp_struct_name(probe)} *args)", "args", "0",
                     None, probe.category == "syscalls")
        return fn, f"tracepoint/{probe.category}/{probe.name}"
    if k in ("uprobe", "uretprobe"):
        path = catalog.uprobe_path(probe.target or "")
        if path is None:
            raise ExportError(f"{probe.text}: no library or binary {probe.target!r} found here")
        fn = ProbeFn(probe, index, name, f"int {name}(struct pt_regs *ctx)", "ctx", "0", None, True)
        fn.attach = [path]
        return fn, f"{k}/{path}:{probe.name}"
    fn = ProbeFn(probe, index, name, f"int {name}(struct bpf_perf_event_data *ctx)", "ctx", "0", None, False)
    return fn, "perf_event"


_LOG2 = [
    "// Power-of-two buckets as bpftrace counts them: 0 holds negative values, 1 holds 0,",
    "// n >= 2 holds [2^(n-2), 2^(n-1)).",
    "static __always_inline __u32 log2_slot(__s64 v)",
    "{",
    "    __u64 x = v;",
    "    __u32 n = 0;",
    "",
    "    if (v < 0)",
    "        return 0;",
    "    if (v == 0)",
    "        return 1;",
    "    if (x >> 32) { x >>= 32; n += 32; }",
    "    if (x >> 16) { x >>= 16; n += 16; }",
    "    if (x >> 8) { x >>= 8; n += 8; }",
    "    if (x >> 4) { x >>= 4; n += 4; }",
    "    if (x >> 2) { x >>= 2; n += 2; }",
    "    if (x >> 1) { n += 1; }",
    "    return n + 2;",
    "}",
]
_LHIST = [
    "// Linear buckets: 0 below min, 1.. for each step from min, the last one for max and above.",
    "static __always_inline __u32 lhist_slot(__s64 v, __s64 min, __s64 max, __s64 step)",
    "{",
    "    if (v < min)",
    "        return 0;",
    "    if (v >= max)",
    "        return (__u64)(max - min) / (__u64)step + 1;",
    "    return (__u64)(v - min) / (__u64)step + 1;",
    "}",
]
_LOOKUP_OR_INIT = [
    "// The value under key, created from init first when the key is new.",
    "static __always_inline void *lookup_or_init(void *map, const void *key, const void *init)",
    "{",
    "    void *v = bpf_map_lookup_elem(map, key);",
    "",
    "    if (v)",
    "        return v;",
    "    bpf_map_update_elem(map, key, init, BPF_NOEXIST);",
    "    return bpf_map_lookup_elem(map, key);",
    "}",
]


@dataclass
class AggView:
    """One aggregate: its map, key struct and how user space shows it."""

    name: str
    map: str
    func: str
    title: str
    labels: list[str]
    value_label: str
    unit: str
    top: int
    hist: int  # 0: a table, 1: log2 buckets, 2: linear buckets
    buckets: tuple[int, int, int]
    key: StructLayout | None
    slots: list[Slot]
    nslots: int  # buckets of a histogram


@dataclass
class Project:
    name: str
    spec: ProgramSpec
    bpf_c: str = ""
    header: str = ""
    events: StructLayout | None = None
    event_slots: list[Slot] = field(default_factory=list)
    columns: list[tuple[str, str]] = field(default_factory=list)  # (label, C/Go padding format)
    header_line: str | None = None
    aggs: list[AggView] = field(default_factory=list)
    fns: list[tuple[ProbeFn, str]] = field(default_factory=list)  # every probe function and its section
    names: list[dict[int, str]] = field(default_factory=list)
    ready: str = ""


class _Kernel:
    """Builds NAME.bpf.c and NAME.h from a spec."""

    def __init__(self, spec: ProgramSpec, catalog: Catalog, name: str) -> None:
        self.spec = spec
        self.catalog = catalog
        self.b = Builder(spec, catalog)
        self.p = Project(name, spec)
        self.helpers: dict[str, list[str]] = {"lookup_or_init": _LOOKUP_OR_INIT} if spec.aggregates else {}

    def check_slot(self, slot: Slot, where: str) -> None:
        if slot.member in LIBC_MACROS:
            slot.member += "_"
        if slot.kind not in EXPORTABLE_SLOTS:
            raise ExportError(f"{where}: {slot.kind} values ({'stacks' if 'stack' in slot.kind else 'symbol names'}) "
                              "are not exported yet (user space would need a symbolizer such as blazesym)",
                              "drop that column or key, or trace it with gpttrace itself")

    def build(self) -> Project:
        b, spec, p = self.b, self.spec, self.p
        index = 0
        if spec.start:
            for i, probe in enumerate(spec.start.probes):
                fn, sec = _probe_fn(probe, index, f"start_{i}", self.catalog)
                b.start_fns.append(fn)
                p.fns.append((fn, sec))
                index += 1
        for i, probe in enumerate(spec.probes):
            fn, sec = _probe_fn(probe, index, f"probe_{i}", self.catalog)
            b.fns.append(fn)
            p.fns.append((fn, sec))
            index += 1
        key_slots, saved = b.start_plan() if spec.start else ([], [])
        for s in key_slots + saved:
            self.check_slot(s, "a value saved at the start probe")
        ev_slots, _, _, header = b.event_plan()
        for s, out in zip(ev_slots, spec.print):
            self.check_slot(s, f"column {out.expr!r}")
        plans = b.agg_plans()
        for plan in plans:
            for s, k in zip(plan.slots, plan.agg.keys):
                self.check_slot(s, f"key {k.expr!r} of {plan.title!r}")
        p.event_slots = ev_slots
        p.header_line = header
        p.ready = b.layout.ready = f"Tracing {ready_title(spec.title)}... Hit Ctrl-C to end."  # as gpttrace says
        p.names = b.names

        shared: list[str] = []
        decls: list[str] = []
        if ev_slots:
            p.events = struct_layout("event", ev_slots)
            p.columns = self.columns(ev_slots)
            shared += ["// One printed event: filled in the kernel, sent through the ring buffer.",
                       *p.events.lines(), ""]
            decls += ["// Events go to user space through a ring buffer shared by all CPUs (lesson 8).",
                      "struct {", "    __uint(type, BPF_MAP_TYPE_RINGBUF);",
                      f"    __uint(max_entries, {RINGBUF_BYTES});", "} events SEC(\".maps\");", "",
                      "// Events dropped because the ring buffer was full.",
                      "struct {", "    __uint(type, BPF_MAP_TYPE_ARRAY);", "    __uint(max_entries, 1);",
                      "    __type(key, __u32);", "    __type(value, __u64);", "} lost SEC(\".maps\");", ""]
        for plan in plans:
            agg = self.agg_view(plan)
            p.aggs.append(agg)
            if agg.key:
                shared += [f"// The key of {comment(agg.title)}", *agg.key.lines(), ""]
            decls += self.agg_decl(agg)
        if spec.start:
            self.start_key = struct_layout("start_key_t", key_slots)
            self.start_val = struct_layout("start_t", saved, lead=[Member("ts", "__u64", ())])
            decls += [f"// Start of the pair: {comment(spec.start.probes[0].text)} saves the time"
                      f"{' and values needed later' if saved else ''}, keyed by {comment(', '.join(spec.start.key))}",
                      *self.start_key.lines(), *self.start_val.lines(),
                      "struct {", "    __uint(type, BPF_MAP_TYPE_HASH);", f"    __uint(max_entries, {MAP_ENTRIES});",
                      "    __type(key, struct start_key_t);", "    __type(value, struct start_t);",
                      "} start SEC(\".maps\");", "",
                      "// Scratch space for a struct start_t (it may be larger than the 512-byte BPF stack).",
                      "struct {", "    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);", "    __uint(max_entries, 1);",
                      "    __type(key, __u32);", "    __type(value, struct start_t);",
                      "} start_buf SEC(\".maps\");", ""]
        functions = []
        for fn in b.start_fns:
            functions.append(self.function(fn, self.start_function(fn, key_slots, saved)))
        for fn in b.fns:
            functions.append(self.function(fn, self.main_function(fn, ev_slots, plans)))
        records: list[str] = []
        seen: set[str] = set()
        for fn in b.start_fns + b.fns:
            if fn.kind == "tracepoint" and _tp_struct_name(fn.probe) not in seen:
                seen.add(_tp_struct_name(fn.probe))
                records += ["", *tracepoint_struct(self.catalog, fn.probe)] if records else tracepoint_struct(
                    self.catalog, fn.probe)
        helpers: list[str] = []
        for lines in [*self.helpers.values(), *b.helpers.values()]:
            helpers += [*lines, ""]
        sections = {fn.name: sec for fn, sec in p.fns}
        view = {
            "name": ident(p.name),
            "title": comment(spec.title),
            "rationale": comment(spec.rationale) if spec.rationale else None,
            "records": [Code(x) for x in records],
            "decls": [Code(x) for x in decls],
            "helpers": [Code(x) for x in helpers],
            "functions": [{**f, "section": string_literal(sections[str(f["name"])], 300)} for f in functions],
        }
        p.bpf_c = environment("export").get_template("prog.bpf.c.j2").render(**view)
        p.header = environment("export").get_template("prog.h.j2").render(
            name=ident(p.name), guard=ident(p.name.upper() + "_H"), title=comment(spec.title),
            lines=[Code(x) for x in shared])
        return p

    def columns(self, slots: list[Slot]) -> list[tuple[str, str]]:
        """Each column's label and the printf format of its text (the widths gpttrace's BCC programs use)."""
        out = []
        for i, (s, f) in enumerate(zip(slots, self.spec.print)):
            label = lower.label_for(f)
            last = i == len(slots) - 1 or s.kind == "join"
            conv = {"int": "%d", "hex": "0x%x", "oct": "%04o"}.get(s.kind, "%s")
            w = column_width(label, conv)
            if last:
                fmt = "%s"
            elif s.kind == "oct":
                fmt = "%s" + " " * max(1, w - 4)
            else:
                fmt = f"%-{w}s"
            out.append((label, fmt))
        return out

    def agg_view(self, plan: AggPlan) -> AggView:
        agg = plan.agg
        hist = {"hist": 1, "lhist": 2}.get(agg.func, 0)
        key = None
        if plan.keyed:
            trail = [Member("slot", "__u32", ())] if hist else None
            key = struct_layout(f"{plan.map}_key_t", plan.slots, trail=trail)
        nslots = LOG2_SLOTS if hist == 1 else lhist_slots(plan.buckets) if hist == 2 else 0
        return AggView(agg.name or "x", plan.map, agg.func, plan.title, plan.labels, plan.value_label,
                       unit_label(agg) if hist else "", agg.top or 0, hist, plan.buckets or (0, 0, 1), key,
                       plan.slots, nslots)

    def agg_decl(self, v: AggView) -> list[str]:
        key = f"struct {v.map}_key_t" if v.key else "__u32"
        value = "struct avg_t" if v.func in ("avg", "stats") else "__u64" if v.func == "count" or v.hist else "__s64"
        out = [f"// {comment(v.title)}"]
        if v.func in ("avg", "stats") and "avg_t" not in self.helpers:
            self.helpers["avg_t"] = ["// An average: the total and how many values made it.",
                                     "struct avg_t {", "    __s64 total;", "    __u64 count;", "};"]
        return [*out, "struct {", "    __uint(type, BPF_MAP_TYPE_HASH);", f"    __uint(max_entries, {MAP_ENTRIES});",
                f"    __type(key, {key});", f"    __type(value, {value});", f"}} {v.map} SEC(\".maps\");", ""]

    # -- function bodies ------------------------------------------------------------------------------
    def function(self, fn: ProbeFn, body: list[str]) -> dict[str, object]:

        return {"name": fn.name, "probe": comment(fn.probe.text),
                "comment": comment(probe_comment(fn.probe, self.catalog), 300),
                "head": Code(fn.head), "body": [Code(x) for x in indent(body)]}

    def main_function(self, fn: ProbeFn, ev_slots: list[Slot], plans: list[AggPlan]) -> list[str]:
        spec = self.spec
        if spec.start:
            return self.end_function(fn, ev_slots, plans)
        gen = CGen(self.b, fn, Context(self.catalog, [fn.probe]))
        filt = self.b.filter_lines(gen, spec.filter.comm, spec.filter.pid, spec.filter.expr)
        body = self.body(gen, ev_slots, plans)
        return gen.top_lines() + filt + body + ["return 0;"]

    def body(self, gen: CGen, ev_slots: list[Slot], plans: list[AggPlan]) -> list[str]:
        lines: list[str] = []
        if ev_slots:
            fill: list[str] = []
            for s in ev_slots:
                fill += gen.fill(s, "e->")
            lines += ["// Send one event to user space through the ring buffer.",
                      "struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);",
                      "if (e) {", *indent(fill), "    bpf_ringbuf_submit(e, 0);", "} else {",
                      "    __u32 zero = 0;", "    __u64 *n = bpf_map_lookup_elem(&lost, &zero);",
                      "    if (n)", "        __sync_fetch_and_add(n, 1);  // the buffer was full", "}"]
        for plan, view in zip(plans, self.p.aggs):
            lines += self.agg_lines(gen, plan, view)
        return lines

    def agg_lines(self, gen: CGen, plan: AggPlan, v: AggView) -> list[str]:
        agg = plan.agg
        body, val = gen.agg_prelude(v.map, bool(v.key), plan.slots, agg.value)
        if v.hist:
            if v.hist == 1:
                self.helpers.setdefault("log2", _LOG2)
                slot = f"log2_slot({val})"
            else:
                self.helpers.setdefault("lhist", _LHIST)
                lo, hi, step = v.buckets
                slot = f"lhist_slot({val}, {lo}, {hi}, {step})"
            body.append(f"k.slot = {slot};" if v.key else f"__u32 k = {slot};")
        elif not v.key:
            body.append("__u32 k = 0;")
        if agg.func == "count" or v.hist:
            body += ["__u64 zero = 0;", f"__u64 *v = lookup_or_init(&{v.map}, &k, &zero);", "if (v)",
                     "    __sync_fetch_and_add(v, 1);"]
        elif agg.func == "sum":
            body += [f"__s64 val = {val};", "__s64 zero = 0;", f"__s64 *v = lookup_or_init(&{v.map}, &k, &zero);",
                     "if (v)", "    __sync_fetch_and_add(v, val);"]
        elif agg.func in ("min", "max"):
            op = "<" if agg.func == "min" else ">"
            body += [f"__s64 val = {val};", f"__s64 *v = bpf_map_lookup_elem(&{v.map}, &k);", "if (!v)",
                     f"    bpf_map_update_elem(&{v.map}, &k, &val, BPF_NOEXIST);", f"else if (val {op} *v)",
                     "    *v = val;"]
        else:  # avg, stats
            body += [f"__s64 val = {val};", "struct avg_t zero = {};",
                     f"struct avg_t *v = lookup_or_init(&{v.map}, &k, &zero);", "if (v) {",
                     "    __sync_fetch_and_add(&v->total, val);", "    __sync_fetch_and_add(&v->count, 1);", "}"]
        head = [f"// {comment(v.title)}"]
        if agg.filter:
            c = gen.cond(agg.filter)
            return head + gen.take_pre() + [f"if ({c}) {{", *indent(body), "}"]
        return [*head, "{", *indent(body), "}"]

    def start_function(self, fn: ProbeFn, key_slots: list[Slot], saved: list[Slot]) -> list[str]:
        assert self.spec.start is not None
        gen = CGen(self.b, fn, Context(self.catalog, [fn.probe]))
        sf = self.spec.start.filter
        body = self.b.filter_lines(gen, self.spec.filter.comm, self.spec.filter.pid, None)
        body += self.b.filter_lines(gen, sf.comm, sf.pid, sf.expr)
        body += ["struct start_key_t sk;", "__builtin_memset(&sk, 0, sizeof(sk));"]
        for s in key_slots:
            body += gen.fill(s, "sk.")
        body += ["__u32 zero = 0;", "struct start_t *s = bpf_map_lookup_elem(&start_buf, &zero);", "if (!s)",
                 "    return 0;", "s->ts = bpf_ktime_get_ns();"]
        for s in saved:
            body += gen.fill(s, "s->")
        body += ["bpf_map_update_elem(&start, &sk, s, BPF_ANY);", "return 0;"]
        return gen.top_lines() + body

    def uses_delta(self) -> bool:
        return any("delta" in E.builtins_used(x) for x in self.spec.expressions())

    def end_function(self, fn: ProbeFn, ev_slots: list[Slot], plans: list[AggPlan]) -> list[str]:
        assert self.spec.start is not None
        ctx = Context(self.catalog, [fn.probe], saved=self.b.ctx.saved)
        gen = CGen(self.b, fn, ctx, self.b.saved, in_end=True)
        lines = ["struct start_key_t sk;", "__builtin_memset(&sk, 0, sizeof(sk));"]
        for s, k in zip(self.b.key_slots, self.spec.end_key or self.spec.start.key, strict=True):
            node = E.parse(k)
            if s.kind == "str" and not gen.is_text(node):
                raise ExportError(f"end key {k!r} is a number but the start key is text")
            lines += gen.fill(s, "sk.", node)
        lines += ["struct start_t *st = bpf_map_lookup_elem(&start, &sk);", "if (!st)",
                  "    return 0;  // the start was not seen (it happened before tracing began)",
                  *(["__u64 delta = bpf_ktime_get_ns() - st->ts;"] if self.uses_delta() else [])]
        inner = [*self.body(gen, ev_slots, plans), "bpf_map_delete_elem(&start, &sk);"]
        if self.spec.filter.expr:
            c = gen.cond(self.spec.filter.expr)
            lines += [*gen.take_pre(), f"if ({wrap(c)}) {{", *indent(inner), "}"]
        else:
            lines += inner
        return gen.top_lines() + lines + ["return 0;"]


def kernel_side(spec: ProgramSpec, catalog: Catalog, name: str) -> Project:
    """The shared part of both projects: NAME.bpf.c and NAME.h, with what user space needs to show them."""
    if not NAME_RE.match(name):
        raise ExportError(f"{name!r} is not a project name: lower-case letters, digits and _, starting with a letter")
    try:
        return _Kernel(spec, catalog, name).build()
    except RenderError as exc:
        raise ExportError(str(exc)) from None
