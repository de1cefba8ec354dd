"""Combine what several nodes printed (bpftrace's ``-f json`` lines) into one fleet-wide result.

Each node's output is a file (the node is named after the file) or a stream of ``kubectl logs --prefix``
lines (the node is named after the pod). Counts and sums are added, min and max taken, ``stats()`` added
(the fleet's average is its total over its count), histograms (log2 and linear) added bucket by bucket.

bpftrace prints count(), sum(), min() and max() alike (``{"type": "map"}``), so how to combine a map comes
from the program (``--program``): each map's aggregate function, and whether the program clears it after
printing it (then each print is an interval, and a node's prints add up; else the last print is its total).
Histograms and stats() say what they are; an avg() cannot be combined without its counts, and is shown per node.

A node that printed nothing, or no bpftrace JSON, or stopped before printing its aggregates, is left out and
reported; it does not stop the others from being merged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

AGGREGATE_KINDS = ("map", "hist", "stats")
_PREFIX = re.compile(r"\[pod/([^/\]\s]+)/[^\]\s]+\] ?(.*)\Z", re.DOTALL)  # kubectl logs --prefix
_SUFFIXES = (".json", ".jsonl", ".log", ".txt", ".out")
STATS_FIELDS = {"count", "average", "total"}


@dataclass
class MapUse:
    """How a program fills a map: the aggregate function ('sum' for ++ and +=), and whether it clears it."""

    func: str | None
    cleared: bool = False
    keys: list[str] = field(default_factory=list)  # the key's parts as the program writes them


@dataclass
class Node:
    """What one node printed."""

    name: str
    lines: list[str] = field(default_factory=list)
    order: list[int] = field(default_factory=list)  # each line's place among all the lines read
    records: list[dict[str, Any]] = field(default_factory=list)
    placed: list[int] = field(default_factory=list)  # each record's place among all the lines read
    other: list[str] = field(default_factory=list)  # lines that are not bpftrace JSON (errors, warnings)

    def __post_init__(self) -> None:
        for place, line in zip(self.order or range(len(self.lines)), self.lines):
            text = line.strip()
            if not text:
                continue
            try:
                record = json.loads(text)
            except ValueError:
                record = None
            if isinstance(record, dict) and isinstance(record.get("type"), str):
                self.records.append(record)
                self.placed.append(place)
            else:
                self.other.append(text)

    @property
    def attached(self) -> bool:
        return any(r["type"] == "attached_probes" for r in self.records)

    @property
    def has_aggregates(self) -> bool:
        return any(r["type"] in AGGREGATE_KINDS for r in self.records)

    def problem(self, aggregates_expected: bool) -> str | None:
        """Why this node is left out of the aggregates; None when it is not."""
        said = f": {self.other[0][:200]}" if self.other else ""
        if not self.lines or not any(line.strip() for line in self.lines):
            return "printed nothing (its pod failed before bpftrace ran, or its log is empty)"
        if not self.records:
            return f"printed no bpftrace JSON{said}"
        if not self.attached:
            return f"never attached its probes{said}"
        if aggregates_expected and not self.has_aggregates:
            return f"ended before printing its aggregates (stopped before END?){said}"
        return None

    @property
    def lost(self) -> int:
        return sum(int((r.get("data") or {}).get("events", 0) or 0) for r in self.records
                   if r["type"] == "lost_events" and isinstance(r.get("data"), dict))


@dataclass
class Aggregate:
    """One map, merged over the nodes (``value`` None when it cannot be), with each node's own value."""

    name: str
    kind: str  # bpftrace's record type: map, hist or stats
    func: str | None
    title: str | None = None
    keys: list[str] = field(default_factory=list)  # the key's parts, when the program was given
    value: Any = None
    per_node: dict[str, Any] = field(default_factory=dict)
    why_not: str | None = None  # why it was not combined


@dataclass
class FleetResult:
    merged: list[str]  # the nodes whose aggregates were combined
    left_out: dict[str, str]  # node -> why
    aggregates: list[Aggregate]
    events: list[tuple[str, str]]  # (node, line) in each node's order
    lost: int
    notes: list[str] = field(default_factory=list)
    said: dict[str, list[str]] = field(default_factory=dict)  # a merged node's lines that are not JSON


# -- reading --------------------------------------------------------------------------------------------
def node_name(path: str) -> str:
    name = Path(path).name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def split_prefixed(default: str, lines: list[str]) -> dict[str, list[str]]:
    """A stream's lines by node: ``kubectl logs --prefix`` lines by pod, the others under ``default``
    (an empty stream is ``default``'s: a node that printed nothing)."""
    return {name: [text for _, text in numbered] for name, numbered in _split(default, lines, 0).items()}


def _split(default: str, lines: list[str], first: int) -> dict[str, list[tuple[int, str]]]:
    """``split_prefixed``, each line with its place (from ``first``) in the order read."""
    nodes: dict[str, list[tuple[int, str]]] = {} if lines else {default: []}
    for place, line in enumerate(lines, first):
        m = _PREFIX.match(line.rstrip("\n"))
        name, text = (m.group(1), m.group(2)) if m else (default, line.rstrip("\n"))
        nodes.setdefault(name, []).append((place, text))
    return nodes


def read_nodes(sources: list[tuple[str, list[str]]]) -> list[Node]:
    """Nodes from (default node name, lines) sources; a name that two sources give is a usage error."""
    nodes: dict[str, Node] = {}
    first = 0
    for default, lines in sources:
        for name, numbered in _split(default, lines, first).items():
            if name in nodes:
                raise UsageError(f"two outputs are both named {name!r}",
                                 "name each node's file after its node (node-a.json, node-b.json, ...)")
            nodes[name] = Node(name, [text for _, text in numbered], [place for place, _ in numbered])
        first += len(lines)
    return list(nodes.values())


def map_uses(program_text: str) -> dict[str, MapUse]:
    """Each map of a bpftrace program: how it is filled, and whether the program clears it."""
    from ..explain.bt import analyze

    uses: dict[str, MapUse] = {}
    for name, info in analyze(program_text).maps.items():
        funcs = set()
        for access in info.accesses:
            if access.op == "aggregate":
                funcs.add(access.func)
            elif access.op == "increment":
                funcs.add("sum")
            elif access.op == "assign":
                funcs.add(None)
        func = funcs.pop() if len(funcs) == 1 else None
        key = next((a.key for a in info.accesses if a.op in ("aggregate", "increment") and a.key), None)
        uses[name] = MapUse(func, any(a.op in ("clear", "zero") for a in info.accesses),
                            [part.strip() for part in key.split(",")] if key else [])
    return uses


def program_from(text: str) -> str:
    """The bpftrace program in ``text``: a program, or the manifests ``gpttrace export k8s`` printed."""
    if not re.match(r"\s*(apiVersion|kind|---)\b", text):
        return text
    import yaml

    from .k8s import trace_container

    try:
        objects = [o for o in yaml.safe_load_all(text) if isinstance(o, dict)]
        args = trace_container(objects)["args"]
        return str(args[args.index("-e") + 1]).replace("$$", "$")  # as the kubelet passes it to bpftrace
    except (yaml.YAMLError, KeyError, StopIteration, ValueError, IndexError, TypeError):
        raise UsageError("--program: no gpttrace trace container with a program (-e) in these manifests",
                         "give the manifests `gpttrace export k8s` printed, or the .bt program") from None


# -- combining ------------------------------------------------------------------------------------------
def merge(nodes: list[Node], uses: dict[str, MapUse] | None) -> FleetResult:
    """Combine the nodes' aggregates; ``uses`` from the program (None: it was not given)."""
    expected = any(n.has_aggregates for n in nodes)
    left_out = {n.name: why for n in nodes if (why := n.problem(expected)) is not None}
    good = [n for n in nodes if n.name not in left_out]
    events = [(n.name, line) for _, n, line in sorted(((place, n, line) for n in nodes for place, line in _events(n)),
                                                      key=lambda e: e[0])]
    result = FleetResult([n.name for n in good], left_out, [], events, sum(n.lost for n in nodes),
                         said={n.name: n.other for n in good if n.other})
    names: dict[str, str] = {}  # map name -> record type, in the order first seen
    titles: dict[str, str] = {}
    for n in good:
        for name, (kind, title) in _printed(n).items():
            names.setdefault(name, kind)
            if title and name not in titles:
                titles[name] = title
    for name, kind in names.items():
        agg = _combined(name, kind, titles.get(name), good, uses)
        if agg.why_not:
            result.notes.append(f"{name}: {agg.why_not}; shown per node")
        result.aggregates.append(agg)
    return result


def _combined(name: str, kind: str, title: str | None, good: list[Node], uses: dict[str, MapUse] | None) -> Aggregate:
    """One map over the nodes: each node's value (its prints folded), and the fleet's when they combine."""
    use = (uses or {}).get(name)
    if uses is not None and use is None:
        raise UsageError(f"the nodes printed {name}, which the program given does not fill",
                         "give the program these nodes ran")
    func = use.func if use else _self_described(kind, [v for n in good for v in _prints(n, name)])
    if uses is None and func is None:
        raise UsageError(f"{name}: count(), sum(), min() and max() all print as plain numbers; cannot tell "
                         "how to combine it", "give the program with --program FILE (the .bt file, or the "
                         "manifests gpttrace export k8s printed)")
    agg = Aggregate(name, kind, func, title, use.keys if use else [])
    for n in good:
        prints = _prints(n, name)
        if len(prints) > 1 and use is None:
            raise UsageError(f"{n.name} printed {name} {len(prints)} times: are they running totals or "
                             "intervals?", "give the program with --program FILE to say")
        if prints:  # printed and cleared on an interval: each print is an interval; else the last is the total
            agg.per_node[n.name] = _fold(func, prints) if use and use.cleared and func else prints[-1]
    if func in COMBINE:
        agg.value = _fold(func, list(agg.per_node.values()))
    else:
        agg.why_not = _why_not(func)
    return agg


def _why_not(func: str | None) -> str:
    if func == "avg":
        return "avg() prints no count, and averages cannot be combined without their counts (use stats())"
    if func is None:
        return "assigned, not aggregated: the nodes' values cannot be combined"
    return f"{func}() cannot be combined"


def _self_described(kind: str, values: list[Any]) -> str | None:
    """The function of a map whose printed shape says it: hist, stats, avg (bpftrace prints avg as stats)."""
    if kind == "hist":
        return "hist"
    if kind != "stats":
        return None
    return "stats" if all(_is_stats(v) or (isinstance(v, dict) and all(_is_stats(x) for x in v.values()))
                          for v in values) else "avg"


def _is_stats(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == STATS_FIELDS


def _printed(node: Node) -> dict[str, tuple[str, str | None]]:
    """Each map the node printed: its record type, and its title (the printf just before it)."""
    out: dict[str, tuple[str, str | None]] = {}
    for i, record in enumerate(node.records):
        if record["type"] in AGGREGATE_KINDS and isinstance(record.get("data"), dict):
            prev = node.records[i - 1] if i else None
            title = None
            if prev and prev["type"] == "printf" and isinstance(prev.get("data"), str) and prev["data"].strip():
                title = prev["data"].strip().splitlines()[-1]
            for name in record["data"]:
                out.setdefault(name, (record["type"], title))
    return out


def _prints(node: Node, name: str) -> list[Any]:
    return [r["data"][name] for r in node.records
            if r["type"] in AGGREGATE_KINDS and isinstance(r.get("data"), dict) and name in r["data"]
            and r["data"][name] not in ({}, [], None)]


def _events(node: Node) -> list[tuple[int, str]]:
    """The node's printf output that is not an aggregate's title, as lines, each with the place read of the
    record that ended it (a stream of several pods keeps its order)."""
    out: list[tuple[int, str]] = []
    text = ""
    for i, record in enumerate(node.records):
        nxt = node.records[i + 1] if i + 1 < len(node.records) else None
        data = record.get("data")
        if record["type"] == "printf" and isinstance(data, str):
            if nxt is None or nxt["type"] not in AGGREGATE_KINDS:
                text += data
        elif record["type"] in ("time", "join") and isinstance(data, str):
            text += data if record["type"] == "time" else data + "\n"
        *done, text = text.split("\n")
        out += [(node.placed[i], line) for line in done if line.strip()]
    if text.strip():
        out.append((node.placed[-1], text))
    return out


# -- the combining rules ---------------------------------------------------------------------------------
def _add(a: int, b: int) -> int:
    return a + b


def _stats(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    count, total = a["count"] + b["count"], a["total"] + b["total"]
    average = (abs(total) // count) * (1 if total >= 0 else -1) if count else 0  # bpftrace's integer average
    return {"count": count, "average": average, "total": total}


def _hist(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    buckets: dict[tuple[Any, Any], int] = {}
    for given in [*a, *b]:
        key = (given.get("min"), given.get("max"))
        buckets[key] = buckets.get(key, 0) + int(given.get("count", 0))
    ordered = sorted(buckets.items(), key=lambda kv: (kv[0][0] is not None, kv[0][0] or 0, kv[0][1] is None))
    out = []
    for (lo, hi), count in ordered:
        bucket: dict[str, Any] = {}
        if lo is not None:
            bucket["min"] = lo
        if hi is not None:
            bucket["max"] = hi
        bucket["count"] = count
        out.append(bucket)
    return _fill_gaps(out)


def _fill_gaps(buckets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Empty buckets between two nodes' ranges (bpftrace leaves out empty buckets at the ends of each)."""
    out: list[dict[str, Any]] = []
    for bucket in buckets:
        if out and "max" in out[-1] and "min" in bucket and "min" in out[-1]:
            prev = out[-1]
            width = prev["max"] - prev["min"] + 1
            lo = prev["max"] + 1
            linear = width == bucket.get("max", bucket["min"]) - bucket["min"] + 1 and (width > 1 or lo > 1)
            while lo < bucket["min"]:
                hi = lo + width - 1 if linear else max(lo, 2 * lo - 1)
                out.append({"min": lo, "max": hi, "count": 0})
                lo = hi + 1
        out.append(bucket)
    return out


COMBINE: dict[str, Callable[[Any, Any], Any]] = {
    "count": _add, "sum": _add, "min": min, "max": max, "stats": _stats, "hist": _hist, "lhist": _hist}


def _fold(func: str | None, values: list[Any]) -> Any:
    """Combine values of one map (each a value, or a dict of them by key) with ``func``'s rule."""
    if func not in COMBINE or not values:
        return values[-1] if values else None
    rule = COMBINE[func]
    keyed = isinstance(values[0], dict) and not (func == "stats" and _is_stats(values[0]))
    if not keyed:
        total = values[0]
        for v in values[1:]:
            total = rule(total, v)
        return total
    out: dict[str, Any] = {}
    for value in values:
        for key, v in value.items():
            out[key] = rule(out[key], v) if key in out else (_hist(v, []) if rule is _hist else v)
    return out
