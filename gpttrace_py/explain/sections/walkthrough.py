"""The Walkthrough section: each block or BPF function, statement by statement."""

from __future__ import annotations

from ..context import Context
from ..doc import Item, Para, Section, Table
from ..glosses import gloss
from ..phrases import cond, short
from ..source import split_top


def walkthrough(ctx: Context) -> Section:
    s = Section("walkthrough", "Walkthrough")
    m = ctx.model
    for i, b in enumerate(m.blocks):
        label = b.label if ctx.bt or len(b.label) < 90 else f"{b.function}(...)"
        head = f"lines {b.start_line}-{b.end_line}: {label}"
        it = Item(head)
        if not ctx.bt:
            attached = [m.probes[k].text for k in b.probes]
            if attached:
                it.sub.append("Runs at: " + ", ".join(attached) + ".")
            elif b.function == "__outside__" and m.libbpf:
                it.sub.append("Declarations outside the functions (the license the kernel checks, globals).")
            elif b.function == "__outside__":
                it.sub.append(
                    "These statements are pieces of C text the Python code inserts into the functions "
                    "(at placeholders) before compiling."
                )
            else:
                it.sub.append("Not attached directly: called by other functions, or attached by code not found.")
            if b.context and b.context in CONTEXTS:
                it.sub.append(f"Its context `struct {b.context} *` is {CONTEXTS[b.context]}.")
            elif b.context and b.context.startswith("tracepoint__"):
                it.sub.append(
                    f"Its argument `struct {b.context} *args` is the tracepoint's record: BCC builds "
                    "the struct from the tracepoint's format file, so args->FIELD reads a field."
                )
            extra = [x.strip() for x in split_top(b.params or "")[1:] if x.strip()]
            if extra and b.context == "pt_regs":
                it.sub.append(
                    "The parameters after ctx (" + ", ".join(extra) + ") are the probed function's "
                    "arguments; BCC fills them from the registers."
                )
        if b.predicate:
            it.sub.append(f"Predicate /{b.predicate}/: the block runs only when {cond(ctx, b.predicate)}.")
        for st in b.statements:
            said = gloss(ctx, st.text, i)
            pad = "  " * st.depth
            it.sub.append(f"line {st.line}: {pad}`{short(st.text)}`" + (f" - {said}" if said else ""))
        if not b.statements:
            it.sub.append("(empty)")
        s.blocks.append(it)
    if not m.blocks:
        s.blocks.append(Para("No probe blocks or BPF functions were found."))
    if m.structs:
        rows = [[name, "; ".join(fields)] for name, fields in m.structs.items()]
        s.blocks.append(Table(["type", "fields"], rows, "Types the program defines:"))
    return s


CONTEXTS = {
    "pt_regs": "the saved CPU registers of the probed code: PT_REGS_PARM1(ctx).. give the arguments, "
    "PT_REGS_RC(ctx) the return value",
    "xdp_md": "the packet as XDP sees it: the bytes between data and data_end may be read, after a bounds check",
    "__sk_buff": "the kernel's socket buffer: the packet with its metadata (length, protocol, interface)",
    "bpf_perf_event_data": "the perf sample, with the registers of the interrupted code",
    "bpf_raw_tracepoint_args": "the raw tracepoint arguments, ctx->args[0], ctx->args[1], ...",
}
