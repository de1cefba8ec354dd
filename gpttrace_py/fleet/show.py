"""Print a merged fleet result: gpttrace's usual text, or bpftrace's own JSON records.

JSON keeps bpftrace's shapes (``{"type": "map", "data": {"@name": {...}}}``, ``{"type": "hist", ...}``,
``{"type": "stats", ...}``) so that whatever reads bpftrace's output reads the merged result too. A record
that belongs to one node carries ``"node"``; one first record, ``{"type": "nodes", ...}``, says which nodes
were merged and which were left out and why.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..render.program import AggregateLayout, ProgramLayout
from ..run.records import Printer
from .merge import Aggregate, FleetResult


def json_records(result: FleetResult, by_node: bool) -> list[dict[str, object]]:
    out: list[dict[str, object]] = [{"type": "nodes", "data": {"merged": result.merged,
                                                                "left_out": result.left_out}}]
    if result.lost:
        out.append({"type": "lost_events", "data": {"events": result.lost}})
    out += [{"type": "printf", "node": node, "data": line + "\n"} for node, line in result.events]
    for agg in result.aggregates:
        if agg.value is not None:
            out.append({"type": agg.kind, "data": {agg.name: agg.value}})
        if by_node or agg.value is None:
            out += [{"type": agg.kind, "node": node, "data": {agg.name: value}}
                    for node, value in agg.per_node.items()]
    return out


def text_lines(result: FleetResult, by_node: bool, write: Callable[[str], None]) -> None:
    width = max((len(node) for node, _ in result.events), default=0)
    for node, line in result.events:
        write(f"{node:<{width}}  {line}")
    for agg in result.aggregates:
        write("")
        write(agg.title or agg.name)
        printer = Printer(_layout(agg), write)
        if agg.value is not None:
            if by_node:
                write(f"-- all {len(agg.per_node)} nodes")
            printer.handle({"type": agg.kind, "data": {agg.name: agg.value}})
        if by_node or agg.value is None:
            for node, value in agg.per_node.items():
                write(f"-- {node}")
                printer.handle({"type": agg.kind, "data": {agg.name: value}})


def summary(result: FleetResult) -> list[str]:
    """What was merged, and what was left out and why: for stderr."""
    lines = [f"merged {len(result.merged)} node(s): {', '.join(result.merged) or 'none'}"]
    lines += [f"left out {node}: {why}" for node, why in result.left_out.items()]
    lines += [f"{node} also printed {len(said)} line(s) that are not bpftrace JSON, first: {said[0][:200]}"
              for node, said in result.said.items()]
    if result.lost:
        lines.append(f"{result.lost} events were lost on the nodes (their kernel buffers were full)")
    return lines + result.notes


def print_json(result: FleetResult, by_node: bool, write: Callable[[str], None]) -> None:
    for record in json_records(result, by_node):
        write(json.dumps(record))


def _layout(agg: Aggregate) -> ProgramLayout:
    func = agg.func or agg.kind
    value_label = {"hist": "COUNT", "lhist": "COUNT"}.get(func, func.upper())
    return ProgramLayout(aggregates={agg.name.lstrip("@"): AggregateLayout(agg.name.lstrip("@"), func,
                                                                             agg.title or agg.name,
                                                                             [k.upper() for k in agg.keys],
                                                                             value_label)})
