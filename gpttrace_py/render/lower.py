"""Backend-neutral lowering of a spec: types of expressions, column labels, value-name tables.

Both renderers start here, so a spec means the same thing whichever backend runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..kernel.catalog import Catalog
from ..kernel.tracefs import TpField
from ..spec import OutputField, ProbeRef, ProgramSpec, units
from ..spec import expr as E
from .dialect import Dialect, dialect_for

# Types of values: 'int', 'str' (text in the event), 'ptr_str' (pointer to text), 'ip4'/'ip6' (raw address
# bytes), 'stack', 'sym' (function name), 'join' (argv array printed joined).
STRINGY = {"str", "ptr_str", "ip4", "ip6", "sym"}


@dataclass
class Context:
    catalog: Catalog
    probes: list[ProbeRef]
    saved: dict[str, tuple[str, Context]] = field(default_factory=dict)
    dialect: Dialect = field(default_factory=lambda: dialect_for(None))  # the bpftrace written for

    def fields(self, name: str) -> Iterator[TpField]:
        """The field ``name`` of each of the probes that has one, in probe order."""
        for p in self.probes:
            f = self.catalog.field(p, name)
            if f is not None:
                yield f

    def first_field(self, name: str) -> TpField | None:
        """The field ``name`` of the first probe that has one."""
        return next(self.fields(name), None)

    def field_kind(self, name: str) -> str:
        f = self.first_field(name)
        return {"ptr": "int", "array": "int"}.get(f.kind, f.kind) if f is not None else "int"

    def symbols(self, name: str) -> dict[int, str] | None:
        for p in self.probes:
            table = self.catalog.symbols(p, name)
            if table:
                return table
        return None


def infer(node: E.Node, ctx: Context) -> str:
    if isinstance(node, E.Num):
        return "int"
    if isinstance(node, E.Str):
        return "str"
    if isinstance(node, E.Builtin):
        return {"comm": "str", "kstack": "stack", "ustack": "stack", "func": "sym", "probe": "sym"}.get(
            node.name, "int"
        )
    if isinstance(node, E.Field):
        return ctx.field_kind(node.name)
    if isinstance(node, E.Saved):
        text, sctx = ctx.saved[node.name]
        return infer(E.parse(text), sctx)
    if isinstance(node, E.Call):
        return {
            "str": "str",
            "ntop": "str",
            "ksym": "sym",
            "usym": "sym",
            "join": "join",
            "kstack": "stack",
            "ustack": "stack",
            "strncmp": "int",
        }[node.fn]
    if isinstance(node, E.Ternary):
        return infer(node.then, ctx)
    if isinstance(node, E.Index):
        return "ptr_str" if isinstance(node.base, E.Field) and ctx_field_is_argv(node.base, ctx) else "int"
    return "int"


def ctx_field_is_argv(node: E.Field, ctx: Context) -> bool:
    f = ctx.first_field(node.name)
    return f is not None and f.ctype.replace(" ", "").endswith("char*const*")


def default_label(node: E.Node) -> str:
    if isinstance(node, E.Builtin):
        return {"delta": "LAT_NS", "nsecs": "TIME_NS", "kstack": "KSTACK", "ustack": "USTACK"}.get(
            node.name, node.name.upper()
        )
    if isinstance(node, (E.Field, E.Saved)):
        return node.name.upper()
    if isinstance(node, E.Call) and node.args:
        return default_label(node.args[0])
    if isinstance(node, E.Call):
        return node.fn.upper()
    if isinstance(node, E.Binary) and node.op in ("/", "*"):
        inner = default_label(node.left)
        if isinstance(node.right, E.Num) and inner.endswith("_NS"):
            unit = units.name_of(node.right.value)  # "ns" for a factor that is not a unit's
            return inner[:-3] + (f"_{unit.upper()}" if unit != "ns" else "")
        return inner
    if isinstance(node, E.Index):
        return f"{default_label(node.base)}{node.index}"
    return "VALUE"


def value_names(out: OutputField, ctx: Context) -> dict[int, str] | None:
    """The number → name table for a column: given in the spec, or read from the tracepoint's print format
    when the column is a bare field the format prints symbolically."""
    if out.names:
        return dict(out.names)
    if out.format in ("auto", "names"):
        node = E.parse(out.expr)
        if isinstance(node, E.Field):
            table = ctx.symbols(node.name)
            if table is None and node.name == "id" and any(p.category == "raw_syscalls" for p in ctx.probes):
                from ..kernel.syscalls import number_to_name

                # raw_syscalls' id is a syscall number; the runner names it (an architecture without a table: none)
                table = number_to_name()
            return table
    return None


def label_for(out: OutputField) -> str:
    return out.label or default_label(E.parse(out.expr))


def main_context(spec: ProgramSpec, catalog: Catalog) -> Context:
    ctx = Context(catalog, list(spec.probes))
    if spec.start:
        sctx = Context(catalog, list(spec.start.probes))
        ctx.saved = {s.name: (s.expr, sctx) for s in spec.start.save}
    return ctx


def start_context(spec: ProgramSpec, catalog: Catalog) -> Context:
    assert spec.start is not None
    return Context(catalog, list(spec.start.probes))


def read_saves_only(spec: ProgramSpec) -> ProgramSpec:
    """``spec`` without the start values nothing at the end reads: a save no print, key, value or filter uses
    would be copied into a map and out again for nothing (a failed exec counted by process kept its path)."""
    if not spec.start or not spec.start.save:
        return spec
    read = set().union(*(E.saved_used(x) for x in spec.expressions()))
    kept = [s for s in spec.start.save if s.name in read]
    if len(kept) == len(spec.start.save):
        return spec
    return spec.model_copy(update={"start": spec.start.model_copy(update={"save": kept})})
