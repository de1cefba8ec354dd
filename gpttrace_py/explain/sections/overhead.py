"""The Overhead section: how often the probes fire and what each event costs."""

from __future__ import annotations

from ..context import HIGH_RATES, Context
from ..doc import Item, Para, Section
from .maps import map_role


def overhead_section(ctx: Context) -> Section:
    s = Section("overhead", "Overhead")
    m = ctx.model
    notes: list[Item] = []
    worst = "low"
    per_event_blocks = [i for i, b in enumerate(m.blocks) if b.prints and ctx.is_event_block(i)]
    for f in ctx.facts:
        if f.rate in HIGH_RATES:
            printing = f.probe.block in per_event_blocks
            text = (
                f"fires {'very often' if f.rate == 'very high' else 'often'}"
                + (f" ({f.rate_note})" if f.rate_note else "")
                + "."
            )
            if printing:
                text += (
                    " It prints per event, so every hit crosses to user space: expect CPU use and lost "
                    "events on a busy system. Aggregate instead (count()/hist()), or filter first."
                )
                worst = "high"
            else:
                text += " The work per hit is small and stays in the kernel."
                worst = _max(worst, "moderate")
            notes.append(Item(f.probe.text, text))
        elif f.probe.kind in ("uprobe", "uretprobe"):
            notes.append(Item(f.probe.text, f.rate_note or "each call traps into the kernel (about a microsecond)."))
            worst = _max(worst, "moderate" if f.rate not in HIGH_RATES else "high")
        elif f.probe.kind == "profile":
            notes.append(
                Item(
                    f.probe.text,
                    f"samples at a fixed rate: {f.rate_note or 'see the rate'}; the cost "
                    "does not depend on the workload.",
                )
            )
        if f.matches and len(f.matches) > 20:
            notes.append(
                Item(
                    f.probe.text,
                    f"a wildcard that attaches {len(f.matches)} tracepoints: start-up "
                    "takes longer and every one of them fires.",
                )
            )
            worst = _max(worst, "moderate")
    if per_event_blocks and not notes:
        notes.append(
            Item(
                "Per-event output",
                "each event is copied to user space and formatted there; fine "
                "for rare events (exec, exit, open failures), costly for frequent ones.",
            )
        )
        worst = _max(worst, "moderate")
    aggs = [mp.name for mp in m.maps.values() if map_role(ctx, mp)[0] in ("aggregate", "count", "hist")]
    if aggs:
        notes.append(
            Item(
                "In-kernel aggregation",
                f"{', '.join(aggs)} {'are' if len(aggs) > 1 else 'is'} updated in the kernel (a map update "
                "per event, well under a microsecond) and copied out once at the end.",
            )
        )
    if "str" in m.uses:
        notes.append(Item("str()", "copies up to 64 bytes per call into the event."))
    for name in ("kstack", "ustack", "bpf_get_stackid", ".get_stackid"):
        if name in m.uses:
            notes.append(
                Item(name.lstrip("."), "walks a stack for each event (microseconds); keep it to moderate rates.")
            )
            worst = _max(worst, "moderate")
            break
    if "bpf_trace_printk" in m.uses:
        notes.append(Item("bpf_trace_printk()", "slow and shared system-wide: for debugging, not for production."))
        worst = _max(worst, "moderate")
    if not ctx.bt and not m.libbpf:
        notes.append(
            Item(
                "Start-up",
                "BCC compiles the C text with clang each time it starts: a second or more of "
                "CPU and some hundred MB of memory before tracing begins.",
            )
        )
    if any(mp.name and map_role(ctx, mp)[0] == "start" for mp in m.maps.values()):
        notes.append(
            Item(
                "Start/end maps",
                "one entry per operation in flight; deleting each entry once used keeps the map small.",
            )
        )
    s.blocks.append(Para(f"Expected overhead: {worst}."))
    s.blocks.extend(notes)
    return s


def _max(a: str, b: str) -> str:
    order = ["low", "moderate", "high"]
    return a if order.index(a) >= order.index(b) else b
