"""Aggregates: how each map is planned, the C helpers that bucket a histogram, and the labels it prints."""

from __future__ import annotations

from dataclasses import dataclass

from ...spec import Aggregate
from ...spec import expr as E
from .. import lower
from .slots import Slot

LOG2_SLOTS = 66  # bpftrace's power-of-two buckets: <0, 0, 1, [2,4) ... [2^63, ...)


@dataclass
class AggPlan:
    agg: Aggregate
    map: str  # C map name
    slots: list[Slot]
    keyed: bool
    labels: list[str]
    title: str
    value_label: str
    buckets: tuple[int, int, int] | None = None  # lhist (min, max, step)


LOG2_SLOT_HELPER = [
    "// bpftrace's power-of-two buckets: 0 holds negative values, 1 holds 0, n >= 2 holds [2^(n-2), 2^(n-1)).",
    "static __always_inline u32 log2_slot(s64 v)",
    "{",
    "    if (v < 0)",
    "        return 0;",
    "    if (v == 0)",
    "        return 1;",
    "    return bpf_log2l(v) + 1;",
    "}",
]
LHIST_SLOT_HELPER = [
    "// Linear buckets: 0 below min, 1.. for each step from min, the last one for max and above.",
    "static __always_inline u32 lhist_slot(s64 v, s64 min, s64 max, s64 step)",
    "{",
    "    if (v < min)",
    "        return 0;",
    "    if (v >= max)",
    "        return (u64)(max - min) / (u64)step + 1;",
    "    return (u64)(v - min) / (u64)step + 1;",
    "}",
]


def unit_label(agg: Aggregate) -> str:
    """What a histogram counts, for the text layout (BCC tools print e.g. 'usecs')."""
    if agg.unit:
        return agg.unit
    return lower.default_label(E.parse(agg.value)).lower() if agg.value else "value"


def lhist_slots(buckets: tuple[int, int, int] | None) -> int:
    lo, hi, step = buckets or (0, 1, 1)
    return (hi - lo) // step + 2
