"""Render a ProgramSpec as a bpftrace (0.17+) script."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..kernel.catalog import Catalog
from ..spec import Aggregate, OutputField, ProbeRef, ProgramSpec
from ..spec import expr as E
from ..spec.kinds import PACKET_KINDS
from ..spec.model import Filter
from . import lower
from .common import column_width, default_title, probe_comment, ready_title, value_label
from .dialect import Dialect, dialect_for
from .escape import Code, comment, environment, ident, integer, string_literal
from .lower import Context
from .program import COLUMN_SEP, NAME_MARK, AggregateLayout, ProgramLayout, RenderedProgram

_BUILTIN_TEXT = {"delta": "$delta"}
MAX_INLINE_NAMES = 64


def compile_expr(node: E.Node, ctx: Context) -> str:
    """The bpftrace text of an expression tree (no conversions)."""
    if isinstance(node, E.Num):
        return str(node.value)
    if isinstance(node, E.Str):
        return string_literal(node.value)
    if isinstance(node, E.Builtin):
        if node.name in E.PACKET_BUILTINS:
            raise ValueError(
                f"{node.name} is a packet value of xdp/tc probes, which bpftrace cannot attach; use --backend bcc"
            )
        return _BUILTIN_TEXT.get(node.name, node.name)
    if isinstance(node, E.Field):
        return ctx.dialect.field(ident(node.name))
    if isinstance(node, E.Saved):
        return f"$s_{ident(node.name)}"
    if isinstance(node, E.Call):
        if node.fn == "strncmp":
            text, literal, n = node.args
            return f"strncmp({as_text(text, ctx)}, {compile_expr(literal, ctx)}, {compile_expr(n, ctx)})"
        inner = ", ".join(compile_expr(a, ctx) for a in node.args)
        return f"{node.fn}({inner})"
    if isinstance(node, E.Unary):
        return f"{node.op}{_paren(node.operand, ctx)}"
    if isinstance(node, E.Binary):
        if node.op in ("==", "!=") and lower.infer(node.left, ctx) in lower.STRINGY | {"str"}:
            return f"{as_text(node.left, ctx)} {node.op} {as_text(node.right, ctx)}"
        return f"{_paren(node.left, ctx)} {node.op} {_paren(node.right, ctx)}"
    if isinstance(node, E.Ternary):
        return f"{_paren(node.cond, ctx)} ? {_paren(node.then, ctx)} : {_paren(node.other, ctx)}"
    if isinstance(node, E.Index):
        return f"{compile_expr(node.base, ctx)}[{node.index}]"
    raise TypeError(node)


def _paren(node: E.Node, ctx: Context) -> str:
    text = compile_expr(node, ctx)
    return f"({text})" if isinstance(node, (E.Binary, E.Ternary)) else text


def as_text(node: E.Node, ctx: Context) -> str:
    """The expression converted to a printable string where its type needs it."""
    kind = lower.infer(node, ctx)
    text = compile_expr(node, ctx)
    if kind == "ptr_str":
        return f"str({text})"
    if kind in ("ip4", "ip6"):
        return f"ntop({text})"
    if kind == "str" and isinstance(node, (E.Field, E.Saved)) and _is_data_loc(node, ctx):
        return f"str({text})"
    return text


def _is_data_loc(node: E.Node, ctx: Context) -> bool:
    if isinstance(node, E.Saved):
        text, sctx = ctx.saved[node.name]
        return _is_data_loc(E.parse(text), sctx)
    if isinstance(node, E.Field):
        f = ctx.first_field(node.name)
        return f is not None and f.data_loc
    return False


@dataclass
class Column:
    label: str
    fmt: str  # printf conversion
    value: str  # bpftrace text
    join: bool = False
    names: dict[int, str] | None = None  # named by the runner (the table is too large for the program)


class _Builder:
    def __init__(self, spec: ProgramSpec, catalog: Catalog, dialect: Dialect) -> None:
        self.spec = spec
        self.catalog = catalog
        self.dialect = dialect
        self.ctx = lower.main_context(spec, catalog)
        self.ctx.dialect = dialect
        self.begin: list[str] = []
        self.names_maps: list[str] = []
        self.layout = ProgramLayout()

    # Small value-name tables become maps filled in BEGIN; large ones (syscall numbers) would slow the load
    # by seconds, so the runner applies them to aggregate keys instead.
    def names_map(self, out: OutputField, ctx: Context) -> str | None:
        table = lower.value_names(out, ctx)
        if not table or len(table) > MAX_INLINE_NAMES:
            return None
        return self.inline_names(table)

    def inline_names(self, table: dict[int, str]) -> str:
        name = f"@names_{len(self.names_maps)}"
        self.names_maps.append(name)
        for k in sorted(table):
            self.begin.append(f"{name}[{integer(k)}] = {string_literal(table[k], self.arg_max(40))};")
        return name

    def arg_max(self, limit: int) -> int:
        """``limit``, or less if this bpftrace refuses string arguments that long."""
        return min(limit, self.dialect.string_arg_max)

    def column(self, out: OutputField, ctx: Context, last: bool) -> Column:
        node = E.parse(out.expr)
        label = lower.label_for(out)
        kind = lower.infer(node, ctx)
        if kind == "join":
            inner = node.args[0] if isinstance(node, E.Call) and node.fn == "join" else node
            return Column(label, "", compile_expr(inner, ctx), join=True)
        names = lower.value_names(out, ctx)
        if names and len(names) > MAX_INLINE_NAMES:
            return Column(label, f"{NAME_MARK}%ld{NAME_MARK}", compile_expr(node, ctx), names=names)
        if names:
            return Column(label, "%s", f"{self.inline_names(names)}[{compile_expr(node, ctx)}]")
        fmt = out.format
        if fmt == "ip" or kind in ("ip4", "ip6"):
            return Column(
                label, "%s", f"ntop({compile_expr(node, ctx)})" if kind in ("ip4", "ip6", "int") else as_text(node, ctx)
            )
        if fmt == "ksym":
            return Column(label, "%s", f"ksym({compile_expr(node, ctx)})")
        if fmt == "usym":
            return Column(label, "%s", f"usym({compile_expr(node, ctx)})")
        if fmt == "hex":
            return Column(label, "0x%lx", compile_expr(node, ctx))
        if fmt == "oct":  # as modes are written (0644, 4755); octal is asked for modes, which fit in 32 bits
            return Column(label, "%04o", compile_expr(node, ctx))
        if kind in lower.STRINGY or kind == "stack" or fmt == "str":
            return Column(
                label, "%s", as_text(node, ctx) if fmt != "str" or kind != "int" else f"str({compile_expr(node, ctx)})"
            )
        return Column(label, "%ld", compile_expr(node, ctx))

    def print_statements(self) -> tuple[list[str], str | None]:
        """printf statements for one event, and the header line printed in BEGIN."""
        if not self.spec.print:
            return [], None
        cols = [self.column(f, self.ctx, i == len(self.spec.print) - 1) for i, f in enumerate(self.spec.print)]
        widths = [_width(c) for c in cols]
        fmt_parts: list[str] = []
        head_parts: list[str] = []
        args: list[str] = []
        labels: list[str] = []
        stmts: list[str] = []
        for i, (c, w) in enumerate(zip(cols, widths)):
            last = i == len(cols) - 1
            # Columns are separated by COLUMN_SEP and not padded: the runner splits on it (a value with a space
            # stays one field) and pads each column to its width in text output.
            if c.join:
                # join() prints the whole argv array itself, ending the line
                fmt = COLUMN_SEP.join(fmt_parts)
                stmts.append(f"printf({string_literal(fmt + COLUMN_SEP if fmt else '', marks=True)}"
                             f"{''.join(', ' + a for a in args)});")
                stmts.append(f"join({c.value});")
                head_parts.append("%s")
                labels.append(c.label)
                self.layout.widths.append(0)
                break
            if c.fmt.replace(NAME_MARK, "") not in self.dialect.printf_conversions:
                raise ValueError(f"bpftrace {'.'.join(map(str, self.dialect.version))} has no printf {c.fmt!r}")
            if c.names is not None:  # named by the runner
                self.layout.column_names.append((c.names, 0))
                self.layout.named_at.append(i)
            fmt_parts.append(c.fmt)
            head_parts.append("%s" if last or w == 0 else f"%-{w}s")
            args.append(c.value)
            labels.append(c.label)
            self.layout.widths.append(0 if last else w)
        else:
            stmts.append(f"printf({string_literal(COLUMN_SEP.join(fmt_parts) + chr(10), marks=True)}, "
                         f"{', '.join(args)});")
        header_args = ", ".join(string_literal(lab, self.arg_max(40)) for lab in labels)
        header = f"printf({string_literal(' '.join(head_parts) + chr(10))}, {header_args});"
        self.layout.header = " ".join(head_parts) % tuple(labels)
        self.layout.columns = labels
        return stmts, header

    def aggregate_statement(self, agg: Aggregate) -> str:
        keys = [self.key_text(k) for k in agg.keys]
        target = f"@{ident(agg.name or 'x')}" + (f"[{', '.join(keys)}]" if keys else "")
        value = compile_expr(E.parse(agg.value), self.ctx) if agg.value else ""
        if agg.func == "count":
            call = "count()"
        elif agg.func == "lhist":
            assert agg.lhist is not None
            call = f"lhist({value}, {integer(agg.lhist.min)}, {integer(agg.lhist.max)}, {integer(agg.lhist.step)})"
        else:
            call = f"{agg.func}({value})"
        stmt = f"{target} = {call};"
        if agg.filter:
            stmt = f"if ({compile_expr(E.parse(agg.filter), self.ctx)}) {{ {stmt} }}"
        return stmt

    def key_text(self, key: OutputField) -> str:
        node = E.parse(key.expr)
        table = self.names_map(key, self.ctx)
        if table:
            return f"{table}[{compile_expr(node, self.ctx)}]"
        if key.format == "ksym":
            return f"ksym({compile_expr(node, self.ctx)})"
        if key.format == "usym":
            return f"usym({compile_expr(node, self.ctx)})"
        return as_text(node, self.ctx)

    def end_statements(self) -> list[str]:
        out: list[str] = []
        for agg in self.spec.aggregates:
            title = (agg.title or default_title(agg))[:120].replace("%", " percent")
            self.layout.titles.add(title)
            key_names = [lower.value_names(k, self.ctx) for k in agg.keys]
            self.layout.aggregates[agg.name or "x"] = AggregateLayout(
                agg.name or "x",
                agg.func,
                title,
                [lower.label_for(k) for k in agg.keys],
                value_label(agg),
                [t if t and len(t) > MAX_INLINE_NAMES else None for t in key_names],
            )
            # Constant text goes in the format itself: a string argument has a limit (Dialect.string_arg_max).
            out.append(f"printf({string_literal(chr(10) + title + chr(10), 200)});")
            top = f", {integer(agg.top)}" if agg.top else ""
            out.append(f"print(@{ident(agg.name or 'x')}{top});")
        return out

    def clear_statements(self) -> list[str]:
        maps = [f"@{ident(a.name or 'x')}" for a in self.spec.aggregates] + self.names_maps
        if self.spec.start:
            maps += ["@start_ts"] + [f"@start_{ident(s.name)}" for s in self.spec.start.save]
        return [f"clear({m});" for m in maps]

    def filter_terms(self, ctx: Context, use_expr: str | None, extra: Filter | None = None) -> list[str]:
        terms = []
        for f in (self.spec.filter, extra) if extra is not None else (self.spec.filter,):
            if f.comm:
                terms.append(f"comm == {string_literal(f.comm, 16)}")
            if f.pid:
                terms.append(f"pid == {integer(f.pid)}")
        if use_expr:
            terms.append(f"({compile_expr(E.parse(use_expr), ctx)})")
        return terms


def _width(c: Column) -> int:
    if c.names is not None:
        return max(16, len(c.label))
    return column_width(c.label, c.fmt)


_ATTACH_PATH = re.compile(r"[A-Za-z0-9_./+@-]{1,4096}\Z")


def attach_path(path: str) -> str:
    """A library or program path as it goes into an attach point: only characters that cannot end or extend
    the probe (no space, comma, colon, brace, quote or newline); a file found with any other name is refused."""
    if not _ATTACH_PATH.match(path):
        raise ValueError(f"cannot use the file {path!r} in a probe: its name has characters a probe cannot hold")
    return path


def probe_text(probe: ProbeRef, catalog: Catalog) -> str:
    """The bpftrace attach point; library short names become paths."""
    if probe.kind in ("uprobe", "uretprobe"):
        path = attach_path(catalog.uprobe_path(probe.target or "") or probe.target or "")
        return f"{probe.kind}:{path}:{probe.name}"
    if probe.kind == "usdt":
        path = attach_path(catalog.uprobe_path(probe.target or "") or probe.target or "")
        return f"usdt:{path}:{probe.category}:{probe.name}"
    if probe.kind in PACKET_KINDS:
        raise ValueError(f"bpftrace cannot attach {probe.kind} programs; use --backend bcc")
    return probe.text


def render(spec: ProgramSpec, catalog: Catalog, dialect: Dialect | None = None) -> RenderedProgram:
    """The program for bpftrace of ``dialect`` (default: the one this catalog's machine has)."""
    spec = lower.read_saves_only(spec)
    dialect = dialect or dialect_for(catalog.features.bpftrace_version)
    b = _Builder(spec, catalog, dialect)
    print_stmts, header = b.print_statements()
    agg_stmts = [b.aggregate_statement(a) for a in spec.aggregates]
    main_terms = b.filter_terms(b.ctx, spec.filter.expr)
    view: dict[str, object] = {
        "title": comment(spec.title),
        "rationale": comment(spec.rationale) if spec.rationale else None,
        "probes": [Code(probe_text(p, catalog)) for p in spec.probes],
        "probe_list": Code(",\n".join(probe_text(p, catalog) for p in spec.probes)),
        "probe_comments": [comment(probe_comment(p, catalog)) for p in spec.probes],
        "body": [Code(s) for s in print_stmts + agg_stmts],
        "end": [Code(s) for s in b.end_statements()],
        "interval": integer(spec.interval_s) if spec.interval_s else None,
        "lesson": comment(spec.lesson) if spec.lesson else None,
        "separated": len(b.layout.columns) > 1,
    }
    if spec.start:
        end_terms: list[str] = []
        body_terms: list[str] = []
        for conj in E.conjuncts(spec.filter.expr) if spec.filter.expr else []:
            uses_end = any(isinstance(n, E.Saved) or (isinstance(n, E.Builtin) and n.name == "delta")
                           for n in E.walk(conj))
            (body_terms if uses_end else end_terms).append(f"({compile_expr(conj, b.ctx)})")
        sctx = lower.start_context(spec, catalog)
        sctx.dialect = dialect
        start_terms = b.filter_terms(sctx, spec.start.filter.expr, spec.start.filter)  # its comm/pid too
        key = ", ".join(compile_expr(E.parse(k), sctx) for k in spec.start.key)
        end_key = ", ".join(compile_expr(E.parse(k), b.ctx) for k in (spec.end_key or spec.start.key))
        view.update(
            start_probes=[Code(probe_text(p, catalog)) for p in spec.start.probes],
            start_probe_list=Code(",\n".join(probe_text(p, catalog) for p in spec.start.probes)),
            start_comments=[comment(probe_comment(p, catalog)) for p in spec.start.probes],
            start_predicate=Code(" && ".join(start_terms)) if start_terms else None,
            start_key=Code(key),
            end_key=Code(end_key),
            saves=[(ident(s.name), Code(compile_expr(E.parse(s.expr), sctx))) for s in spec.start.save],
            uses_delta=any("delta" in E.builtins_used(x) for x in spec.expressions()),
            end_predicate=Code(" && ".join([f"@start_ts[{end_key}]", *end_terms])),
            # a condition on what the end computes (delta, a saved value) is checked in the body, once it is set
            body_condition=Code(" && ".join(body_terms)) if body_terms else None,
        )
        template = "pair.bt.j2"
    else:
        view["predicate"] = Code(" && ".join(main_terms)) if main_terms else None
        template = "events.bt.j2"
    b.layout.ready = f"Tracing {ready_title(spec.title)}... Hit Ctrl-C to end."
    # In the format itself: a string literal argument has a limit (Dialect.string_arg_max), a format has not.
    ready = f"printf({string_literal(b.layout.ready + chr(10), 200)});"
    view["begin"] = [Code(s) for s in b.begin] + [Code(ready)] + ([Code(header)] if header else [])
    view["clear"] = [Code(s) for s in b.clear_statements()]
    view["interval_clear"] = [Code(f"clear(@{ident(a.name or 'x')});") for a in spec.aggregates]
    text = environment("bpftrace").get_template(template).render(**view)
    return RenderedProgram("bpftrace", text, b.layout)
