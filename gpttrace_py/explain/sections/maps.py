"""The Maps section: what each map is for (its role), who writes and reads it, and its fate at exit."""

from __future__ import annotations

import re

from ..context import Context
from ..doc import Item, Para, Section, Table
from ..model import MapInfo
from ..phrases import expr, first_sentence, keys

KEY_REASONS = {
    "tid": "the start and the end of one operation happen on the same thread, and several threads can be in the "
    "middle of the same operation at once",
    "pid": "one entry per process",
    "cpu": "the two events of a pair happen on the same CPU (an interrupt cannot move)",
}


def map_role(ctx: Context, mp: MapInfo) -> tuple[str, str]:
    """(role, sentence) for a map."""
    k: str | None  # a key expression as written
    acc = mp.accesses
    ops = mp.ops()
    if ctx.bt:
        aggs = [a for a in acc if a.op == "aggregate"]
        key = next((a.key for a in acc if a.key and a.op in ("aggregate", "assign", "increment")), None)
        keyed = f"keyed by {keys(ctx, key)}" if key else "with a single value (no key)"
        if aggs:
            fn = aggs[0].func
            why = {
                "count": "Counting happens in the kernel (per CPU), so only the totals cross to user space: "
                "cheap even for frequent events.",
                "hist": "A histogram keeps the whole distribution, tail included, in a few dozen counters "
                "instead of one line per event.",
                "lhist": "A linear histogram shows the distribution in equal-width buckets.",
                "sum": "The sum is kept in the kernel per CPU and added up when printed.",
                "avg": "The average is kept in the kernel (sum and count) and computed when printed.",
                "min": "The kernel keeps only the extreme value.",
                "max": "The kernel keeps only the extreme value.",
                "stats": "Count, average and total in one entry.",
            }.get(fn or "", "")
            name = {
                "count": "a count map",
                "hist": "a power-of-two histogram",
                "lhist": "a linear histogram",
                "sum": "a running total",
                "avg": "a running average",
                "min": "a minimum",
                "max": "a maximum",
                "stats": "running statistics",
            }.get(fn or "", "an aggregation")
            return "aggregate", f"{name} {keyed}. {why}"
        assigns = [a for a in acc if a.op == "assign"]
        timed = [a for a in assigns if a.value and re.search(r"\b(nsecs|elapsed)\b", a.value)]
        reads = [a for a in acc if a.op == "read"]
        begin_only = assigns and all(ctx.block_kinds(a.block) <= {"BEGIN"} for a in assigns)
        if timed and (reads or "delete" in ops):
            k = timed[0].key or ""
            reason = KEY_REASONS.get(k.strip(), "the start and the end events both know this key")
            return "start", (
                f"a start map keyed by {keys(ctx, timed[0].key)} for latency: it remembers when "
                f"something began ({ctx.probes_of(timed[0].block)}), so that a later probe can "
                f"compute how long it took. Keyed by {k or 'nothing'} because {reason}."
            )
        if begin_only and assigns and all(a.key for a in assigns):
            return "table", (
                "a lookup table filled in BEGIN (it turns numbers into names when printing); it "
                "never changes while tracing."
            )
        if assigns and (reads or "delete" in ops) and assigns[0].key:
            return "saved", (
                f"saves {expr(ctx, assigns[0].value or '?')} {keyed} at "
                f"{ctx.probes_of(assigns[0].block)}, for a later probe to use; the same "
                "start/end pattern as a latency map."
            )
        if "increment" in ops:
            return "counter", (
                f"a counter {keyed}, updated with ++/+=. Unlike count() it is not kept per CPU, "
                "so simultaneous updates on different CPUs can be lost; count() is the safe way."
            )
        if assigns and not assigns[0].key:
            return "global", "a global variable (one value) shared by all probes."
        if assigns:
            return "assoc", f"an associative array {keyed}, written by the program."
        return "read", "only read here (never written by this program)."
    # BCC
    t = mp.map_type or "?"
    e = ctx.glossary.bcc(mp.macro or "")
    decl = f"{mp.macro}({mp.name})" if mp.macro else mp.name
    key = f"key type {mp.key_type}" if mp.key_type else ""
    val = f"value type {mp.value_type}" if mp.value_type else ""
    kv = ", ".join(x for x in (key, val, f"up to {mp.size} entries" if mp.size else "") if x)
    if "submit" in ops or t in ("perf_event_array", "ringbuf"):
        rec = next((a.value for a in mp.accesses if a.op == "submit" and a.value), None)
        cb = [c for c, tb in (ctx.model.python.callbacks.items() if ctx.model.python else []) if tb == mp.name]
        return "events", (
            f"an event channel to user space ({decl}): each record"
            + (f" ({rec})" if rec else "")
            + " sent from the kernel"
            + (
                f" reaches the Python callback {', '.join(cb)}()"
                if cb
                else " is read by the loader"
                if ctx.model.libbpf
                else " is read by Python"
            )
            + ". One record per event: the output is as frequent as the events."
        )
    if t == "histogram" or (mp.macro == "BPF_HISTOGRAM"):
        log2 = any(a.key and "log2" in a.key for a in mp.accesses)
        return "hist", (
            f"a {'power-of-two ' if log2 else ''}histogram ({decl}, {kv}): the kernel adds one to "
            "the bucket of each value; Python prints the buckets as a bar chart."
        )
    if t == "stack_trace":
        return "stacks", (
            f"a stack store ({decl}): get_stackid() saves each distinct stack once and returns an "
            "id, which other maps use as a key; Python turns ids back into function names."
        )
    if "increment" in ops:
        k = next((a.key for a in mp.accesses if a.op == "increment"), None)
        return "count", (
            f"a count map ({decl}, {kv}) keyed by {k}: counting happens in the kernel, and only "
            "the totals are read by Python."
        )
    updates = [a for a in mp.accesses if a.op == "update"]
    if updates and ({"lookup", "delete"} & ops):
        k = updates[0].key or "?"
        clock = ctx.model.uses.get("bpf_ktime_get_ns")
        clocked = any(a.value and re.search(r"ts|time|start", a.value) for a in updates) or bool(
            clock and any(a.block in clock.blocks for a in updates)
        )
        fields = ctx.model.structs.get(mp.key_type or "", [])
        key_desc = f"{k}, a {mp.key_type} holding {'; '.join(fields)}" if fields else k
        reason = (
            "keyed per thread: the start and end of one operation happen on the same thread"
            if re.search(r"tid|pid|\bid\b", key_desc)
            else f"keyed by {key_desc}"
        )
        if fields and "keyed per thread" in reason:
            reason += f" (the key {mp.key_type} holds {'; '.join(fields)})"
        what = "a start map for latency: it remembers when" if clocked else "a map that saves a value when"
        return "start", (
            f"{what} something began ({decl}, {kv}) so that a later probe can find it with "
            f"lookup() and delete() it afterwards; {reason}."
        )
    base = first_sentence(e.text) if e else f"a {t} map"
    return "other", f"{base} ({decl}" + (f", {kv}" if kv else "") + ")."


def maps_section(ctx: Context) -> Section:
    s = Section("maps", "Maps")
    m = ctx.model
    if not m.maps:
        s.blocks.append(
            Para("No maps: the program keeps no state between events" + (" and prints as it goes." if ctx.bt else "."))
        )
        return s
    if ctx.bt:
        s.blocks.append(
            Para(
                "Maps (the @names) live in the kernel and keep their values between events; "
                "every probe can read and write them. Local $variables live only while one block runs."
            )
        )
    elif m.libbpf:
        s.blocks.append(
            Para(
                'Maps are declared as structs placed in the ".maps" section; they live in the kernel, keep '
                "values between events, and the loader reads them through their file descriptors."
            )
        )
    else:
        s.blocks.append(
            Para(
                "Maps are declared in the C text with BPF_* macros; they live in the kernel, keep "
                'values between events, and Python reads them as b["name"].'
            )
        )
    for mp in m.maps.values():
        role, sentence = map_role(ctx, mp)
        it = Item(mp.name, sentence)
        by_op: dict[str, list[str]] = {}
        for a in mp.accesses:
            where = ctx.probes_of(a.block) if ctx.bt else ctx.block_label(a.block)
            by_op.setdefault(a.op, [])
            label = f"line {a.line} ({where})"
            if label not in by_op[a.op]:
                by_op[a.op].append(label)
        names = {
            "assign": "written",
            "aggregate": "updated",
            "increment": "incremented",
            "read": "read",
            "lookup": "looked up",
            "update": "written",
            "delete": "deleted",
            "clear": "cleared",
            "print": "printed",
            "zero": "zeroed",
            "submit": "sent to user space",
            "stackid": "stacks stored",
            "reserve": "reserved",
        }
        for op, places in by_op.items():
            it.sub.append(f"{names.get(op, op)}: {', '.join(places[:4])}" + (" ..." if len(places) > 4 else ""))
        if ctx.bt:
            it.sub.append(bt_map_fate(ctx, mp))
        elif m.python:
            reads = [(ln, meth) for ln, tb, meth in m.python.table_reads if tb == mp.name]
            if reads:
                it.sub.append("read from Python: " + ", ".join(f"{meth}() on line {ln}" for ln, meth in reads))
        if role == "start" and "delete" not in mp.ops() and "clear" not in mp.ops():
            it.sub.append(
                Item("Note", "entries are never deleted, so the map keeps growing until it is full.", style="warn")
            )
        s.blocks.append(it)
    if ctx.bt and m.variables:
        rows = [[v.name, f"line {v.line}", ctx.block_label(v.block), v.value or ""] for v in m.variables.values()]
        s.blocks.append(
            Table(
                ["variable", "first set", "block", "value"],
                rows,
                "Scratch $variables (local to one run of one block):",
            )
        )
    return s


def bt_map_fate(ctx: Context, mp: MapInfo) -> str:
    end_ops = {a.op for a in mp.accesses if ctx.block_kinds(a.block) & {"END"}}
    if "print" in end_ops and "clear" in end_ops:
        return "At exit: printed by print() in END, then cleared so bpftrace does not print it twice."
    if "clear" in end_ops:
        return "At exit: cleared in END, so bpftrace does not print it (it is working state, not a result)."
    if "print" in {a.op for a in mp.accesses}:
        return "Printed by print(); whatever is left at exit is printed again automatically."
    return "At exit: bpftrace prints it automatically (every map that still has entries)."
