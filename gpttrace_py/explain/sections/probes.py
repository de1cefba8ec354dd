"""The Probes section: each probe's kind, what fires it, availability here, fields and alternatives."""

from __future__ import annotations

import re

from ...spec import kinds
from ..context import HIGH_RATES, Context
from ..doc import Item, Para, Section, Table
from ..model import SPECIAL_KINDS
from ..probe_facts import ProbeFacts, field_hint, stable_alternatives

# probes of a kernel function or an LSM hook: a tracepoint may see the same thing more stably
FUNCTION_OR_HOOK_KINDS = kinds.of_family("kernel-function", "security")


def probes_section(ctx: Context) -> Section:
    s = Section("probes", "Probes")
    if not ctx.model.probes:
        s.blocks.append(
            Para(
                "No probe found: nothing attaches this program to an event."
                + (
                    ""
                    if ctx.bt
                    else " (BCC attaches functions named kprobe__*, tracepoint__*, "
                    "TRACEPOINT_PROBE(), or the ones passed to attach_*() calls.)"
                )
            )
        )
        return s
    kinds_seen: list[str] = []
    for p in ctx.model.probes:
        if p.kind not in kinds_seen:
            kinds_seen.append(p.kind)
    intro = []
    for k in kinds_seen:
        e = ctx.glossary.probe_kind(k)
        if e:
            intro.append(Item(k, e.text + (f" Stability: {e.get('stability')}." if e.get("stability") else "")))
        else:
            intro.append(Item(k, "a probe kind not in the glossary", style="warn"))
    s.blocks.append(Para("Kinds of probes used:"))
    s.blocks.extend(intro)
    s.blocks.append(Para(""))
    done: set[str] = set()
    for f in ctx.facts:
        key = f"{f.probe.text}@{f.probe.block}"
        if key in done:
            continue
        done.add(key)
        s.blocks.append(probe_item(ctx, f))
    return s


def probe_item(ctx: Context, f: ProbeFacts) -> Item:
    p = f.probe
    head = p.text
    if ctx.bt and p.canonical != p.text and not p.wildcard and p.kind not in SPECIAL_KINDS:
        head += f" (= {p.canonical})"
    it = Item(head, f"line {p.line}", style="warn" if f.available is False else "")
    it.sub.append(f"Fires {f.fires}.")
    stable = f.stability
    it.sub.append(f"Stability: {stable} ({p.kind}).")
    if p.via:
        runs = (
            f", runs the C function {p.handler}" if p.handler and not p.via.endswith("attached by BCC itself") else ""
        )
        it.sub.append(f"Attached by: {p.via}{runs}.")
    if p.block is not None and p.block < len(ctx.model.blocks):
        b = ctx.model.blocks[p.block]
        it.sub.append(
            f"Runs: {'the block' if ctx.bt else 'the function ' + (b.function or '?') + '()'} at lines "
            f"{b.start_line}-{b.end_line}."
        )
    elif not ctx.bt and p.handler:
        it.sub.append(f"Runs: {p.handler}() (its definition was not found in the C text).")
    if f.resolved:
        it.sub.append(f"Binary: {p.target} is {f.resolved} here.")
    if f.available is True:
        it.sub.append("On this kernel: available.")
    elif f.available is None:
        it.sub.append("On this kernel: cannot tell before it runs" + (f" ({f.reason})" if f.reason else "") + ".")
    else:
        it.sub.append(Item("NOT AVAILABLE on this kernel", (f.reason or "unknown reason") + ".", style="warn"))
    alts, note = list(f.alternatives), f.alternative_note
    if p.kind in FUNCTION_OR_HOOK_KINDS:
        more, note2 = stable_alternatives(p, ctx.catalog, ctx.glossary)
        alts = [a for a in more if a not in alts] + alts
        note = note2 or note
    if alts:
        ctx.suggested += [a for a in alts if a not in ctx.suggested]
        label = "Use instead" if f.available is False else "Stable alternative"
        text = ", ".join(f"`{a}`" for a in alts)
        if note:
            text += f" ({note})"
        if p.kind == "lsm":
            text += ". A tracepoint only observes; it cannot refuse the operation like an LSM hook"
        it.sub.append(Item(label, text + ".", style="ok"))
    elif f.available is False and p.kind in FUNCTION_OR_HOOK_KINDS:
        words = sorted(re.findall(r"[a-z]{3,}", (p.name or "").lower()), key=len, reverse=True)
        word = words[0] if words else "NAME"
        it.sub.append(
            Item(
                "Use instead",
                "no tracepoint here matches this function; look for one with "
                f"`bpftrace -l 'tracepoint:*{word}*'` or `gpttrace \"...\"` in plain words.",
                style="ok",
            )
        )
    if f.matches:
        shown = ", ".join(f.matches[:8]) + (", ..." if len(f.matches) > 8 else "")
        it.sub.append(f"Matches {len(f.matches)} tracepoint(s) here: {shown}.")
    tp = f.tracepoint
    if tp is not None:
        used = (
            set(ctx.model.blocks[p.block].fields_used)
            if p.block is not None and p.block < len(ctx.model.blocks)
            else set()
        )
        rows = []
        for fld in tp.user_fields:
            t = fld.ctype + (f"[{fld.array}]" if fld.array else "")
            if fld.data_loc:
                t = f"__data_loc {t}"
            hint = field_hint(fld)
            sym = tp.symbols.get(fld.name)
            if sym:
                hint += (
                    "; values: "
                    + ", ".join(f"{k}={v}" for k, v in list(sorted(sym.items()))[:6])
                    + (", ..." if len(sym) > 6 else "")
                )
            rows.append([("*" if fld.name in used else " ") + fld.name, t, hint])
        where = f" (from {f.format_path})" if f.format_path else ""
        if rows:
            it.sub.append(
                Table(["field", "type", "how to use it"], rows, f"Fields, read as args->NAME{where}; * = used here:")
            )
        else:
            it.sub.append(f"Fields: none besides the common header{where}.")
    if (
        ctx.bt
        and p.kind in ("kprobe", "kretprobe", "uprobe", "uretprobe")
        and p.block is not None
        and p.block < len(ctx.model.blocks)
        and ctx.model.blocks[p.block].fields_used
    ):
        it.sub.append(
            Item(
                "Problem",
                f"the block reads args->{ctx.model.blocks[p.block].fields_used[0]}, but a "
                f"{p.kind} has no args in bpftrace {ctx.catalog.features.bpftrace_version or ''}: "
                "use arg0, arg1, ... (or retval in a return probe).",
                style="warn",
            )
        )
    for name in f.missing_fields:
        have = ", ".join(x.name for x in tp.user_fields) if tp else ""
        it.sub.append(
            Item(
                "Problem",
                f"the program reads args->{name}, which this tracepoint does not have (it has: {have}).",
                style="warn",
            )
        )
    if f.rate in HIGH_RATES:
        it.sub.append(f"Rate: {f.rate}" + (f" ({f.rate_note})" if f.rate_note else "") + ".")
    return it
