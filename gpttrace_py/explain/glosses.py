"""One statement in words: what a bpftrace statement or a line of BPF C does."""

from __future__ import annotations

import re

from .bt import printf_pairs
from .context import Context
from .phrases import cond, expr, first_sentence, keys, lower_first
from .source import split_top


def gloss(ctx: Context, text: str, block: int) -> str:
    return _gloss_bt(ctx, text, block) if ctx.bt else _gloss_c(ctx, text, block)


def _gloss_bt(ctx: Context, t: str, block: int) -> str:
    mm = re.match(r"(else if|if|while)\s*\((.*)\)$", t, re.S)
    if mm:
        word = {"if": "if", "else if": "otherwise, if", "while": "while"}[mm.group(1)]
        return f"{word} {cond(ctx, mm.group(2))}:"
    if t == "else":
        return "otherwise:"
    if t.startswith("unroll"):
        return "repeat the next block a fixed number of times (unrolled by the compiler)"
    mm = re.match(r"(@\w*)\s*(?:\[(.*)\])?\s*=\s*(\w+)\s*\((.*)\)$", t, re.S)
    if mm and (function := ctx.glossary.bt_function(mm.group(3))) and function.kind == "aggregate":
        mp, key, fn, arg = mm.groups()
        per = f", one per {keys(ctx, key)}" if key else ""
        return {
            "count": f"count this event in {mp}{per}",
            "sum": f"add {expr(ctx, arg)} to the total in {mp}{per}",
            "avg": f"average {expr(ctx, arg)} in {mp}{per}",
            "min": f"keep the smallest {expr(ctx, arg)} in {mp}{per}",
            "max": f"keep the largest {expr(ctx, arg)} in {mp}{per}",
            "stats": f"keep count/average/total of {expr(ctx, arg)} in {mp}{per}",
            "hist": f"add {expr(ctx, arg)} to the power-of-two histogram {mp}{per}",
            "lhist": f"add {expr(ctx, split_top(arg)[0])} to the linear histogram {mp}{per}",
        }.get(fn, "")
    mm = re.match(r"(@\w*)\s*(?:\[(.*)\])?\s*(\+\+|--|\+=|-=)\s*(.*)$", t, re.S)
    if mm:
        mp, key, op, val = mm.groups()
        what = (
            "add one to"
            if op == "++"
            else "subtract one from"
            if op == "--"
            else (f"add {expr(ctx, val)} to" if op == "+=" else f"subtract {expr(ctx, val)} from")
        )
        return f"{what} {mp}" + (f" for {keys(ctx, key)}" if key else "")
    mm = re.match(r"(@\w*)\s*(?:\[(.*)\])?\s*=\s*(.*)$", t, re.S)
    if mm:
        mp, key, val = mm.groups()
        if re.fullmatch(r"nsecs|elapsed", val.strip()):
            return f"remember the time now in {mp}" + (f", under {keys(ctx, key)}" if key else "")
        return f"save {expr(ctx, val)} in {mp}" + (f" under {keys(ctx, key)}" if key else "")
    mm = re.match(r"(\$\w+)\s*=\s*(.*)$", t, re.S)
    if mm:
        var, val = mm.groups()
        if re.search(r"nsecs\s*-\s*@", val):
            return f"{var} = the time since the start saved in the map (a duration in ns)"
        return f"{var} = {expr(ctx, val)}, for the rest of this block"
    mm = re.match(r"(delete|clear|print|zero)\s*\((.*)\)$", t, re.S)
    if mm:
        fn, arg = mm.groups()
        am = re.match(r"(@\w*)\s*(?:\[(.*)\])?", arg.strip())
        mp = am.group(1) if am else arg
        if fn == "delete":
            return f"forget the entry of {mp}" + (f" for {keys(ctx, am.group(2))}" if am and am.group(2) else "")
        if fn == "clear":
            return f"empty {mp}" + (" (so it is not printed again at exit)" if ctx.block_kinds(block) & {"END"} else "")
        if fn == "zero":
            return f"reset the values of {mp} to zero"
        return f"print {mp} now"
    pp = printf_pairs(t)
    if pp:
        _fmt, pairs = pp
        desc = ", ".join(f"{conv} = {expr(ctx, arg)}" for conv, arg in pairs)
        where = "a header line" if ctx.block_kinds(block) <= {"BEGIN"} and ctx.block_kinds(block) else "a line"
        marks = (
            (
                "; a number between \\x1e marks is replaced by its name by gpttrace (there are too many "
                "names to load into the program)"
            )
            if "\\x1e" in _fmt
            else ""
        )
        return f"print {where}" + (f" ({desc})" if desc else "") + marks
    mm = re.match(r"(\w+)\s*\(", t)
    if mm:
        fn = mm.group(1)
        if fn == "exit":
            return "stop tracing (END still runs)"
        if fn == "time":
            return "print the current time"
        if fn == "join":
            return "print the strings of the array on one line"
        if fn == "system":
            return "run a shell command (changes the system)"
        e = ctx.glossary.bt_function(fn)
        if e:
            return first_sentence(e.text)
    return ""


def _gloss_c(ctx: Context, t: str, block: int) -> str:
    mm = re.match(r"(else if|if|while|for|switch)\s*\((.*)\)$", t, re.S)
    if mm:
        if mm.group(1) in ("if", "else if"):
            return ("otherwise, if " if mm.group(1) == "else if" else "if ") + cond(ctx, mm.group(2)) + ":"
        if mm.group(1) == "for":
            return "a loop (bounded, so the verifier can prove it ends)"
        return ""
    if t == "else":
        return "otherwise:"
    mm = re.match(r"return\b\s*(.*)$", t, re.S)
    if mm:
        val = mm.group(1).strip()
        kinds = ctx.block_kinds(block)
        if val.startswith("XDP_") or val.startswith("TC_ACT_"):
            e = ctx.glossary.bcc(val)
            return f"hand the packet back with the verdict {val}" + (
                f" ({first_sentence(e.text).split(' - ')[-1]})" if e else ""
            )
        if (
            kinds & {"kprobe", "kretprobe", "tracepoint", "uprobe", "uretprobe", "rawtracepoint", "perf_event"}
            or not kinds
        ):
            return "leave the function (for tracing programs the return value is ignored)"
        return f"return {val}"
    mm = re.search(r"\b(\w+)\s*\.\s*(\w+)\s*\((.*)\)", t, re.S)
    if mm and mm.group(1) in ctx.model.maps:
        mp, meth, args = mm.groups()
        a = split_top(args)
        return {
            "increment": f"count one more in {mp} for key {a[0] if a else '?'}"
            + (f" (adding {a[1]})" if len(a) > 1 else ""),
            "atomic_increment": f"count one more in {mp} for key {a[0] if a else '?'}",
            "update": f"save {a[1] if len(a) > 1 else '?'} in {mp} under {a[0] if a else '?'}",
            "insert": f"save {a[1] if len(a) > 1 else '?'} in {mp} under {a[0] if a else '?'} unless already there",
            "lookup": f"look up {a[0] if a else '?'} in {mp} (NULL when absent)",
            "lookup_or_init": f"find or create the entry {a[0] if a else '?'} of {mp}",
            "lookup_or_try_init": f"find or create the entry {a[0] if a else '?'} of {mp}",
            "delete": f"remove {a[0] if a else '?'} from {mp}",
            "perf_submit": f"send {a[1] if len(a) > 1 else 'the record'} to user space through {mp} (one event)",
            "ringbuf_output": f"send {a[0] if a else 'the record'} to user space through {mp} (one event)",
            "ringbuf_reserve": f"reserve a record in {mp}",
            "ringbuf_submit": f"send the reserved record through {mp} (one event)",
            "ringbuf_discard": f"give back the reserved record of {mp}",
            "get_stackid": f"store the current stack in {mp}; the id identifies it",
        }.get(meth, "")
    if "bpf_get_current_pid_tgid()" in t:
        lhs = re.match(r"(?:[\w\s\*]+?\s)?\**([\w.>-]+?)\s*=(?!=)", t)
        name = f"{lhs.group(1)} = " if lhs else ""
        if re.search(r"bpf_get_current_pid_tgid\(\)\s*\)?\s*>>\s*32", t):
            return name + "the process id (the upper 32 bits of bpf_get_current_pid_tgid())"
        if re.match(r"\s*(u32|__u32|pid_t|int|u32\s+\w+)\b", t) or "(u32)" in t:
            return name + "the thread id (u32 keeps the lower 32 bits of bpf_get_current_pid_tgid())"
    calls = [c for c in re.findall(r"\b(\w+)\s*\(", t) if ctx.glossary.bcc(c)]
    if calls:
        e = ctx.glossary.bcc(calls[0])
        assert e is not None
        short = e.get("short") or first_sentence(e.text)
        lhs = re.match(r"(?:[\w\s\*]+?\s)?\**([\w.>-]+?)\s*=(?!=)\s*", t)
        return (f"{lhs.group(1)} = " if lhs else "") + lower_first(short)
    return ""
