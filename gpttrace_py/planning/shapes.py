"""The shape of an answer: what form a request asks for (events, a count, a sum, a histogram, a latency, a
profile, one number) and what forms a program gives."""

from __future__ import annotations

import re

from ..spec import ProgramSpec
from . import edits
from .intent import Intent

BYTES_COUNTED = ("count bytes", "count the bytes", "count of bytes", "how many bytes", "number of bytes",
                 "count data", "count the data")  # a sum of sizes, not a count of events


def intent_shape(it: Intent) -> str:
    """What form of answer the intent asks for: latency, hist, profile, sum, count or events."""
    if "latency" in it.actions:
        return "latency"
    if "hist" in it.actions or "lhist" in it.actions:
        return "hist"
    if "profile" in it.actions:
        return "profile"
    if "sum" in it.actions and (it.has(*BYTES_COUNTED) or not it.has("count", "how many", "number of")):
        return "sum"
    if {"avg", "max", "min"} & it.actions:
        return "stat"
    if "count" in it.actions or it.group_by or re.search(r"\b(?:which|what) (?:syscalls|system calls)\b", it.text):
        return "count"  # "which syscalls does nginx make": a count by syscall
    return "events"



def errors_only_example(spec: ProgramSpec) -> bool:
    """An example that keeps only failures (ret < 0, a non-zero error code)."""
    conds = [spec.filter.expr or "", spec.start.filter.expr if spec.start and spec.start.filter.expr else ""]
    conds += [a.filter or "" for a in spec.aggregates]
    return any(re.search(r"\b(ret|retval|error_code|error)\s*(<\s*0|!=\s*0)", c) for c in conds)


def spec_shapes(spec: ProgramSpec) -> set[str]:
    shapes: set[str] = set()
    if edits.uses_delta(spec):
        shapes.add("latency")
    if spec.print:
        shapes.add("events")
    for a in spec.aggregates:
        shapes.add({"hist": "hist", "lhist": "hist", "count": "count", "sum": "sum"}.get(a.func, "stat"))
        if any(k.expr in ("kstack", "ustack") or k.expr.startswith(("kstack(", "ustack(")) for k in a.keys):
            shapes.add("profile")
    if any(p.kind == "profile" for p in spec.probes):
        shapes.add("profile")
    return shapes



def stat_asked(it: Intent) -> str | None:
    """"average", "maximum", "minimum": the one number asked for, if any."""
    return next((f for f in ("avg", "max", "min") if f in it.actions), None)

