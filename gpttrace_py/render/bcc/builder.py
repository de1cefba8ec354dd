"""The builder of one BCC program: its probe functions, the event struct and its columns, the maps of the
aggregates, the start/end pair and the filters, collected while the C generator compiles each function."""

from __future__ import annotations

from collections.abc import Callable

from ...kernel.catalog import Catalog
from ...spec import OutputField, ProgramSpec
from ...spec import expr as E
from .. import lower
from ..common import column_width, default_title, value_label
from ..escape import ident, integer, string_literal
from ..lower import Context
from ..program import COLUMN_SEP, AggregateLayout, ProgramLayout
from . import packets
from .aggregates import LHIST_SLOT_HELPER, LOG2_SLOT_HELPER, LOG2_SLOTS, AggPlan, lhist_slots, unit_label
from .cgen import CGen
from .ctext import COMM_LEN, MAP_ENTRIES, STRLEN, RenderError, c_comment, indent, wrap
from .probes import ProbeFn, make_probe_fn
from .slots import Slot, member_name, struct_lines


class Builder:
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
        return packets.parse_lines(fn.kind)

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
            for f in ctx.fields(node.name):
                if f.kind == "str" and f.array:
                    return min(f.array, STRLEN)
        if isinstance(node, E.Saved) and node.name in self.saved:
            return self.saved[node.name].size
        return STRLEN

    def signed(self, node: E.Node, ctx: Context) -> bool:
        if isinstance(node, E.Field):
            f = ctx.first_field(node.name)
            return f.signed if f is not None else True
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
                for f in ctx.fields(inner.name):
                    if f.array in (4, 16):
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
            w = column_width(label, conv)
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
                    "if (e) {", *indent(fill), "    events.ringbuf_submit(e, 0);", "} else {",
                    "    count_lost();  // the buffer was full", "}"]
        return ["// Build the event in per-CPU scratch space (it is larger than the BPF stack), then send it.",
                "int zero = 0;",
                "struct event *e = event_buf.lookup(&zero);",
                "if (e) {", *indent(fill), f"    events.perf_submit({gen.fn.ctx}, e, sizeof(*e));", "}"]

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
            title = agg.title or default_title(agg)
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
                                 title, value_label(agg), buckets))
            self.layout.titles.add(title)
            self.layout.aggregates[agg.name or "x"] = AggregateLayout(
                agg.name or "x", agg.func, title, [lower.label_for(k) for k in agg.keys], value_label(agg),
                [None for _ in agg.keys])
        return plans

    def agg_decls(self, plans: list[AggPlan]) -> list[str]:
        out: list[str] = []
        for p in plans:
            func = p.agg.func
            out.append("")
            out.append(f"// {c_comment(p.title)}")
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
                size = LOG2_SLOTS if func == "hist" else lhist_slots(p.buckets)
                out.append(f"BPF_HISTOGRAM({p.map}, {key}, {MAP_ENTRIES if p.keyed else size});")
            elif func == "count":
                out.append(f"BPF_HASH({p.map}, {key}, u64, {MAP_ENTRIES});")
            else:
                out.append(f"BPF_HASH({p.map}, {key}, s64, {MAP_ENTRIES});")
        return out

    def agg_lines(self, gen: CGen, p: AggPlan) -> list[str]:
        agg = p.agg
        func = agg.func
        body, val = gen.agg_prelude(p.map, p.keyed, p.slots, agg.value)
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
                self.helpers.setdefault("log2_slot", LOG2_SLOT_HELPER)
                slot = f"log2_slot({val})"
            else:
                self.helpers.setdefault("lhist_slot", LHIST_SLOT_HELPER)
                lo, hi, step = p.buckets or (0, 1, 1)
                slot = f"lhist_slot({val}, {lo}, {hi}, {step})"
            if p.keyed:
                body.append(f"k.slot = {slot};")
            else:
                body.append(f"int k = {slot};")
            body += ["u64 zero = 0;", f"u64 *v = {p.map}.lookup_or_try_init(&k, &zero);", "if (v)",
                     "    __sync_fetch_and_add(v, 1);"]
        head = [f"// {c_comment(p.title)}"]
        if agg.filter:
            c = gen.cond(agg.filter)
            return head + gen.take_pre() + [f"if ({c}) {{", *indent(body), "}"]
        return [*head, "{", *indent(body), "}"]

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
                f'    "unit": {string_literal(unit_label(p.agg), 40) if p.agg.func in ("hist", "lhist") else "None"},',
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
        return gen.top_lines() + body

    def end_function(self, fn: ProbeFn, body_fn: Callable[[CGen], list[str]]) -> list[str]:
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
            lines += [*gen.take_pre(), f"if ({c}) {{", *indent(inner), "}"]
        else:
            lines += inner
        lines += [f"return {fn.ret};"]
        return gen.top_lines() + lines

    # -- filters --------------------------------------------------------------------------------------
    def filter_lines(self, gen: CGen, comm: str | None, pid: int | None, expr: str | None) -> list[str]:
        out: list[str] = []
        ret = gen.fn.ret
        if comm:
            c, _ = gen.value(E.Binary("==", E.Builtin("comm"), E.Str(comm)))
            out += [f"// only the process named {c_comment(comm, 16)}", *gen.take_pre(),
                    f"if (!{c})", f"    return {ret};"]
        if pid:
            c, _ = gen.value(E.Binary("==", E.Builtin("pid"), E.Num(pid)))
            out += [f"if (!{c})", f"    return {ret};"]
        if expr:
            c = gen.cond(expr)
            out += [f"// filter: {c_comment(expr)}", *gen.take_pre(), f"if (!{wrap(c)})", f"    return {ret};"]
        return out
