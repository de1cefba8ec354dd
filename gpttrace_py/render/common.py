"""What both backends write the same way: the comment over each probe, titles, value labels, column widths.

The bpftrace and BCC renderers (and the exported projects) read these, so a program says the same thing about
itself whichever backend runs it.
"""

from __future__ import annotations

from ..kernel.catalog import Catalog
from ..spec import Aggregate, ProbeRef
from ..spec import expr as E
from . import lower

# Columns that hold a process name: padded to the 16 bytes of a comm.
COMM_LABELS = ("COMM", "PCOMM", "PARENT_COMM", "CHILD_COMM", "PREV_COMM", "NEXT_COMM", "PROCESS")


def default_title(agg: Aggregate) -> str:
    what = {
        "count": "count",
        "sum": "total",
        "avg": "average",
        "min": "minimum",
        "max": "maximum",
        "hist": "histogram",
        "lhist": "linear histogram",
        "stats": "count/average/total",
    }[agg.func]
    value = f" of {lower.default_label(E.parse(agg.value)).lower()}" if agg.value else ""
    unit = f" ({agg.unit})" if agg.unit else ""
    by = ""
    if agg.keys:
        by = " by " + ", ".join(lower.label_for(k).lower() for k in agg.keys)
    return f"{what.capitalize()}{value}{unit}{by}"


def ready_title(title: str) -> str:
    """The title as it will read after escaping (the runner compares the line it gets back)."""
    text = title[:80].replace("%", " percent")
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def value_label(agg: Aggregate) -> str:
    if agg.func == "count":
        return "COUNT"
    label = {"sum": "TOTAL", "avg": "AVERAGE", "min": "MIN", "max": "MAX", "stats": "STATS"}.get(agg.func, "COUNT")
    return f"{label}({agg.unit})" if agg.unit and agg.func not in ("hist", "lhist") else label


def probe_comment(probe: ProbeRef, catalog: Catalog) -> str:
    k = probe.kind
    if k == "tracepoint":
        if probe.category == "syscalls":
            phase, _, call = (probe.name or "").removeprefix("sys_").partition("_")
            when = "entry to" if phase == "enter" else "return from"
            return f"fires on {when} the {call}() system call (stable tracepoint)"
        return f"kernel tracepoint {probe.category}:{probe.name} (a stable interface)"
    if k in ("uprobe", "uretprobe"):
        return f"user-space {'return from' if k == 'uretprobe' else 'entry to'} {probe.name}() in {probe.target}"
    if k == "profile":
        return f"samples every CPU {probe.rate} times per {'second' if probe.unit == 'hz' else probe.unit}"
    if k == "interval":
        return f"fires on one CPU every {probe.rate} {probe.unit}"
    if k == "software":
        return f"software perf event {probe.name} (every {probe.rate or 1} events)"
    if k in ("kprobe", "kretprobe"):
        return f"dynamic kernel probe on {probe.name}() (unstable: may change between kernels)"
    if k in ("kfunc", "kretfunc"):
        return f"BTF-typed kernel function probe on {probe.name}() (fentry/fexit)"
    return f"{k} probe"


def column_width(label: str, conv: str) -> int:
    """The text-mode width of an event column with this label and printf conversion."""
    if label in COMM_LABELS:
        return 16
    if conv in ("%d", "%ld"):
        return max(7, len(label))
    if conv == "%s":
        return max(16, len(label))
    return max(10, len(label))
