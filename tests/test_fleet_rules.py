"""The merge's rules on their own (no kernel): what bpftrace's JSON shapes combine into, and what is refused."""

from __future__ import annotations

import json

import pytest

from gpttrace_py.errors import UsageError
from gpttrace_py.fleet import merge as fleet


def node(name: str, *records: dict) -> tuple[str, list[str]]:
    return name, [json.dumps({"type": "attached_probes", "data": {"probes": 1}})] + [json.dumps(r) for r in records]


def hist(*buckets: tuple[int, int, int]) -> list[dict[str, int]]:
    return [{"min": lo, "max": hi, "count": n} for lo, hi, n in buckets]


def test_histograms_from_disjoint_ranges_are_joined_without_holes():
    a = node("a", {"type": "hist", "data": {"@h": hist((4, 7, 2), (8, 15, 1))}})
    b = node("b", {"type": "hist", "data": {"@h": hist((64, 127, 5))}})
    result = fleet.merge(fleet.read_nodes([a, b]), None)
    assert result.aggregates[0].value == hist((4, 7, 2), (8, 15, 1), (16, 31, 0), (32, 63, 0), (64, 127, 5))
    c = node("c", {"type": "hist", "data": {"@l": hist((0, 9, 1))}})
    d = node("d", {"type": "hist", "data": {"@l": hist((40, 49, 3))}})
    value = fleet.merge(fleet.read_nodes([c, d]), {"@l": fleet.MapUse("lhist")}).aggregates[0].value
    assert value == hist((0, 9, 1), (10, 19, 0), (20, 29, 0), (30, 39, 0), (40, 49, 3))


def test_stats_combine_by_count_and_total_and_avg_is_not_combined():
    a = node("a", {"type": "stats", "data": {"@s": {"x": {"count": 2, "average": 5, "total": 10}}, "@a": 5}})
    b = node("b", {"type": "stats", "data": {"@s": {"x": {"count": 1, "average": 1, "total": 1}}, "@a": 1}})
    result = fleet.merge(fleet.read_nodes([a, b]), None)
    stats, avg = result.aggregates
    assert stats.value == {"x": {"count": 3, "average": 3, "total": 11}}  # not (5 + 1) / 2
    assert avg.value is None and avg.per_node == {"a": 5, "b": 1} and "avg()" in avg.why_not


def test_a_program_says_how_plain_maps_combine_and_whether_prints_are_intervals():
    program = ("tracepoint:a:b { @lo = min(arg0); @hi[comm] = max(arg0); @n++; @last = arg0; }\n"
               "interval:s:1 { print(@n); clear(@n); }\n")
    uses = fleet.map_uses(program)
    assert {k: (u.func, u.cleared) for k, u in uses.items()} == {
        "@lo": ("min", False), "@hi": ("max", False), "@n": ("sum", True), "@last": (None, False)}
    a = node("a", {"type": "map", "data": {"@n": 2}}, {"type": "map", "data": {"@n": 3}},
             {"type": "map", "data": {"@lo": 4, "@hi": {"x": 9}, "@last": 1}})
    b = node("b", {"type": "map", "data": {"@n": 10}}, {"type": "map", "data": {"@lo": 2, "@hi": {"x": 7, "y": 1},
                                                                                   "@last": 2}})
    merged = {a.name: a for a in fleet.merge(fleet.read_nodes([a, b]), uses).aggregates}
    assert merged["@n"].value == 15 and merged["@lo"].value == 2 and merged["@hi"].value == {"x": 9, "y": 1}
    assert merged["@last"].value is None and merged["@last"].per_node == {"a": 1, "b": 2}


def test_what_cannot_be_told_is_a_usage_error():
    a = node("a", {"type": "map", "data": {"@c": 1}})
    with pytest.raises(UsageError, match="cannot tell how to combine"):
        fleet.merge(fleet.read_nodes([a]), None)
    with pytest.raises(UsageError, match="does not fill"):
        fleet.merge(fleet.read_nodes([a]), {"@other": fleet.MapUse("count")})
    with pytest.raises(UsageError, match="running totals or intervals"):
        h = {"type": "hist", "data": {"@h": hist((1, 1, 1))}}
        fleet.merge(fleet.read_nodes([node("a", h, h)]), None)
    with pytest.raises(UsageError, match="both named"):
        fleet.read_nodes([a, a])


def test_node_names_come_from_files_or_kubectl_prefixes():
    assert fleet.node_name("/x/worker-1.json") == "worker-1" and fleet.node_name("w2.log") == "w2"
    lines = ['[pod/gpttrace-a/trace] {"type": "attached_probes", "data": {"probes": 1}}', "plain line"]
    assert fleet.split_prefixed("stdin", lines) == {
        "gpttrace-a": ['{"type": "attached_probes", "data": {"probes": 1}}'], "stdin": ["plain line"]}
    assert fleet.split_prefixed("empty", []) == {"empty": []}


def test_events_keep_their_node_and_a_stream_keeps_its_order():
    def printf(pod: str, text: str) -> str:
        return f"[pod/{pod}/trace] " + json.dumps({"type": "printf", "data": text})

    attached = json.dumps({"type": "attached_probes", "data": {"probes": 1}})
    stream = [f"[pod/p1/trace] {attached}", f"[pod/p2/trace] {attached}", printf("p1", "one "),
              printf("p2", "two\n"), printf("p1", "1\n"), printf("p2", "three\n")]
    result = fleet.merge(fleet.read_nodes([("stdin", stream)]), None)
    assert result.events == [("p2", "two"), ("p1", "one 1"), ("p2", "three")]
    files = [node("b", {"type": "printf", "data": "b1\n"}), node("a", {"type": "printf", "data": "a1\n"})]
    assert fleet.merge(fleet.read_nodes(files), None).events == [("b", "b1"), ("a", "a1")]
