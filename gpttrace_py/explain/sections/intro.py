"""The opening paragraphs: what the program attaches to and does, warnings, how to run it."""

from __future__ import annotations

from .. import lessons
from ..context import Context
from ..doc import Para
from ..model import SPECIAL_KINDS
from .maps import map_role


def intro(ctx: Context) -> list:
    m = ctx.model
    out: list = []
    kinds: dict[str, int] = {}
    for p in m.probes:
        if p.kind not in SPECIAL_KINDS:
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
    counted = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in kinds.items()) or "no event probes"
    does = summary_actions(ctx)
    lang = "bpftrace script" if ctx.bt else "libbpf program" if m.libbpf else "BCC program"
    out.append(Para(f"This {lang} attaches to {counted}. {does}"))
    if m.libbpf:
        out.append(
            Para(
                "This is the kernel side of a libbpf (CO-RE) tool: clang compiles it to a BPF object, and a "
                "loader (C on libbpf's skeleton, or Go on cilium/ebpf) loads it, attaches each function at "
                "the place its SEC() names, and reads its maps."
            )
        )
    elif not ctx.bt:
        out.append(
            Para(
                "A BCC program has two halves: C code that BCC compiles with clang and loads into the "
                "kernel, where it runs at each probe, and Python that loads it, attaches it and reads "
                "its results." + (f" Here {m.python.source_note}." if m.python and m.python.source_note else "")
            )
        )
    if not m.probes:
        out.append(
            Para(
                "No probe was found: this does not look like a complete bpftrace script or BCC "
                "program (use --backend to say which it is).",
                "warn",
            )
        )
    missing = [f for f in ctx.facts if f.available is False]
    if missing:
        names = ", ".join(sorted({f.probe.text for f in missing}))
        out.append(
            Para(
                f"Warning: {len(missing)} probe(s) are NOT AVAILABLE on this kernel ({names}); "
                "see Probes for why and what to use instead.",
                "warn",
            )
        )
    own = lessons.same_program(m)
    if own is not None:
        lesson = f", tutorial lesson {own.lesson}" if own.lesson else ""
        out.append(
            Para(
                f"This is the corpus example {own.id} ({own.title}{lesson}); "
                f"run it with `gpttrace examples run {own.id}`."
            )
        )
    out.append(Para(how_to_run(ctx), "dim"))
    for note in m.notes:
        out.append(Para(note, "dim"))
    return out


def summary_actions(ctx: Context) -> str:
    m = ctx.model
    parts = []
    per_event = [b for i, b in enumerate(m.blocks) if b.prints and ctx.is_event_block(i)]
    aggs = sorted({a.func for mp in m.maps.values() for a in mp.accesses if a.op == "aggregate" and a.func})
    starts = [mp.name for mp in m.maps.values() if map_role(ctx, mp)[0] == "start"]
    if starts:
        parts.append(f"It remembers a start time in {', '.join(starts)} and measures how long each operation takes")
    if per_event and ctx.bt:
        parts.append("it prints one line per event")
    if aggs:
        parts.append("it aggregates in the kernel with " + ", ".join(f"{a}()" for a in aggs))
    if not ctx.bt:
        counts = [mp.name for mp in m.maps.values() if "increment" in mp.ops()]
        if counts:
            parts.append(f"it counts in the kernel in {', '.join(counts)}")
        subs = [mp.name for mp in m.maps.values() if "submit" in mp.ops()]
        if subs:
            parts.append(f"it sends a record per event to user space through {', '.join(subs)}")
        if "bpf_trace_printk" in m.uses:
            parts.append("it writes messages to the kernel trace pipe")
    if not parts:
        return "It runs the blocks described below."
    s = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    s = s[0].upper() + s[1:] + "."
    if ctx.bt and aggs:
        s += " The aggregates are printed when you stop it (Ctrl-C)."
    return s


def how_to_run(ctx: Context) -> str:
    f = ctx.catalog.features
    name = ctx.path if ctx.path and ctx.path != "-" else "PROGRAM"
    if ctx.bt:
        if f.bpftrace:
            return (
                f"Run it with `sudo bpftrace {name}` (bpftrace {f.bpftrace_version or '?'} is at {f.bpftrace}), "
                "or through gpttrace; stop it with Ctrl-C."
            )
        return "bpftrace is not installed here; install it to run this script."
    if ctx.model.libbpf:
        return (
            "Build it with `make` in its project directory (clang, bpftool and libbpf, or Go with bpf2go), "
            "then run the tool it builds as root; stop it with Ctrl-C."
        )
    from ...kernel.features import find_bcc_python

    py = f.bcc_python or find_bcc_python()
    if py:
        return f"Run it with `sudo {py} {name}` ({py} can import bcc); stop it with Ctrl-C."
    return "No Python on this machine can import bcc (install python3-bpfcc or bcc's Python module) to run it."
