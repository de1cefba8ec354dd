"""The Filters section: predicates, if-conditions, early returns and Python placeholders."""

from __future__ import annotations

from ..context import Context
from ..doc import Item, Para, Section
from ..phrases import cond


def filters_section(ctx: Context) -> Section:
    s = Section("filters", "Filters")
    m = ctx.model
    for f in m.filters:
        where = ctx.probes_of(f.block) if ctx.bt else ctx.block_label(f.block)
        if f.kind == "predicate":
            s.blocks.append(
                Item(
                    f"line {f.line}, predicate /{f.cond}/",
                    f"on {where}: the block runs only when {cond(ctx, f.cond)}. Events that fail it "
                    "cost almost nothing: the check runs in the kernel.",
                )
            )
        elif f.kind == "early-return":
            s.blocks.append(
                Item(
                    f"line {f.line}, `if ({f.cond}) return`",
                    f"in {where}: stops early, recording nothing, when {cond(ctx, f.cond)}.",
                )
            )
        else:
            s.blocks.append(
                Item(
                    f"line {f.line}, `if ({f.cond})`",
                    f"in {where}: the statements under it run only when {cond(ctx, f.cond)}.",
                )
            )
    if m.python:
        for line, placeholder, repl in m.python.placeholders:
            shown = repl if len(repl) < 90 else repl[:87] + "..."
            s.blocks.append(
                Item(
                    f"line {line}, placeholder {placeholder}",
                    f"the Python code replaces {placeholder} in the C text with `{' '.join(shown.split())}` "
                    "before compiling: options become code, so unused filters cost nothing.",
                )
            )
    if not s.blocks:
        s.blocks.append(
            Para(
                "No filter: every event of every probe is handled (all processes, system-wide). "
                + (
                    'Add a predicate like /comm == "nginx"/ or /pid == 1234/ after a probe to narrow it.'
                    if ctx.bt
                    else "An early `if (...) return 0;` in the C function narrows it."
                )
            )
        )
    return s
