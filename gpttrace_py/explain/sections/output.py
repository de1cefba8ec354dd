"""The Output section: what is printed, when, and through which channel."""

from __future__ import annotations

from ..bt import printf_pairs
from ..context import Context
from ..doc import Item, Para, Section
from ..phrases import expr


def output_section(ctx: Context) -> Section:
    s = Section("output", "Output")
    m = ctx.model
    if ctx.bt:
        for i, b in enumerate(m.blocks):
            kinds = ctx.block_kinds(i)
            if not b.prints:
                continue
            calls = sorted({fn for _, fn in b.prints})
            lines = ", ".join(str(ln) for ln, _ in b.prints[:5])
            if kinds <= {"BEGIN"}:
                s.blocks.append(
                    Item("At start (BEGIN)", f"{', '.join(calls)} on line {lines}: a banner and the column headers.")
                )
            elif kinds <= {"END"}:
                s.blocks.append(
                    Item("When tracing stops (END)", f"{', '.join(calls)} on line {lines}: the final results.")
                )
            elif kinds <= {"interval"}:
                s.blocks.append(
                    Item(
                        "Periodically (interval)",
                        f"{', '.join(calls)} on line {lines}: results so "
                        "far, then usually cleared for the next period.",
                    )
                )
            else:
                fmt = printf_columns(ctx, b)
                s.blocks.append(
                    Item(
                        f"Per event ({ctx.probes_of(i)})",
                        f"{', '.join(calls)} on line {lines} prints as each event happens"
                        + (f": {fmt}" if fmt else "")
                        + ".",
                    )
                )
        auto = [
            mp.name
            for mp in m.maps.values()
            if not ({a.op for a in mp.accesses if ctx.block_kinds(a.block) & {"END"}} & {"clear"})
            and any(a.op in ("aggregate", "assign", "increment") for a in mp.accesses)
        ]
        if auto:
            s.blocks.append(
                Item(
                    "At exit, automatically",
                    "bpftrace prints every map that still has entries: " + ", ".join(auto) + ".",
                )
            )
        if not s.blocks:
            s.blocks.append(Para("Nothing is printed."))
        per_event = any(b.prints and ctx.is_event_block(i) for i, b in enumerate(m.blocks))
        if not per_event and m.maps:
            s.blocks.append(
                Para(
                    "Nothing is printed per event: results are aggregated in the kernel and shown "
                    "at the end, so the output stays small however busy the system is."
                )
            )
        return s
    py = m.python
    subs = [mp for mp in m.maps.values() if "submit" in mp.ops()]
    for mp in subs:
        cbs = [c for c, tb in (py.callbacks.items() if py else []) if tb == mp.name]
        prints = any(py.callback_prints.get(c) for c in cbs) if py else False
        s.blocks.append(
            Item(
                f"Per event, through {mp.name}",
                "the C code sends one record per event (perf_submit/ringbuf); "
                + ("the loader " if m.libbpf else "Python ")
                + (f"receives it in {', '.join(cbs)}()" if cbs else "reads it")
                + (" and prints a line for it" if prints else "")
                + ".",
            )
        )
    if "bpf_trace_printk" in m.uses:
        s.blocks.append(
            Item(
                "Per event, through the trace pipe",
                "bpf_trace_printk() writes a line to /sys/kernel/tracing/trace_pipe; Python prints "
                "those lines with trace_print()/trace_fields(). Other programs' messages appear there too.",
            )
        )
    if py and py.polls:
        s.blocks.append(
            Item(
                "Event loop",
                ", ".join(f"{meth}() on line {ln}" for ln, meth in py.polls[:3])
                + ": waits for events and runs the callbacks, until Ctrl-C.",
            )
        )
    if py and py.table_reads:
        reads = [(ln, tb, meth) for ln, tb, meth in py.table_reads if meth not in ("event",)]
        if reads:
            when = "after sleeping" if py.sleeps else "at the end"
            if py.handles_interrupt:
                when += " (or when you press Ctrl-C)"
            s.blocks.append(
                Item(
                    "Aggregates read from Python",
                    ", ".join(f"{tb}.{meth}() on line {ln}" for ln, tb, meth in reads[:6])
                    + f": the maps' contents are copied out and printed {when}.",
                )
            )
    if not s.blocks:
        s.blocks.append(Para("No output path was found (no perf/ring buffer, trace pipe or map read)."))
    return s


def printf_columns(ctx: Context, b) -> str:
    for st in b.statements:
        pp = printf_pairs(st.text)
        if pp and pp[1]:
            return "one line with " + ", ".join(expr(ctx, arg) for _, arg in pp[1])
    return ""
