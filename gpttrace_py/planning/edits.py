"""Edits of a spec: the moves the offline planner adapts examples with and refines programs with.

Each edit takes a spec and returns a new, re-validated spec (specs are never mutated in place).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..kernel.catalog import Catalog
from ..spec import ProbeRef, ProgramSpec, units
from ..spec import expr as E


def _edit(spec: ProgramSpec, **changes: Any) -> ProgramSpec:
    """``spec`` with some of its fields replaced (typed values: a Filter, a list of Aggregates...), validated
    again as a whole; the fields not changed are carried over as they are, not dumped and rebuilt."""
    return ProgramSpec.model_validate({**dict(spec), **changes})


def _data(spec: ProgramSpec) -> dict[str, Any]:
    return spec.model_dump()


def set_process(spec: ProgramSpec, comm: str | None = None, pid: int | None = None) -> ProgramSpec:
    changes = {k: v for k, v in (("comm", comm), ("pid", pid)) if v is not None}
    return _edit(spec, filter=spec.filter.model_copy(update=changes)) if changes else spec


def clear_process(spec: ProgramSpec) -> ProgramSpec:
    """No process filter; the title stops saying whom it watched ("Files opened by PID 1")."""
    if spec.filter.comm is None and spec.filter.pid is None:
        return spec
    data = _data(spec)
    whom = [rf"(?:PID|pid)\s+{spec.filter.pid}"] if spec.filter.pid is not None else []
    whom += [re.escape(spec.filter.comm)] if spec.filter.comm else []
    for who in whom:
        data["title"] = re.sub(rf"\s+(?:by|of|for|from|in)\s+{who}\b", "", data["title"]) or data["title"]
    data["filter"]["comm"] = None
    data["filter"]["pid"] = None
    return ProgramSpec.model_validate(data)


def add_condition(spec: ProgramSpec, condition: str, at_start: bool = False) -> ProgramSpec:
    """``condition`` and-ed to the filter of the main probes (or, ``at_start``, of the start probes of a pair)."""
    new = E.parse(condition)
    if at_start and spec.start is None:
        raise ValueError("no start probes to filter")
    holder = spec.start.filter if at_start and spec.start else spec.filter
    old = holder.expr
    if old and new in E.conjuncts(old):
        return spec  # already one of the conditions
    expr = E.unparse(E.Binary("&&", E.parse(old), new)) if old else E.unparse(new)
    filt = holder.model_copy(update={"expr": expr})
    if at_start and spec.start:
        return _edit(spec, start=spec.start.model_copy(update={"filter": filt}))
    return _edit(spec, filter=filt)


def _saved_keys(spec: ProgramSpec, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``keys`` read where the pair saved them: a pair that saves ``comm`` or ``pid`` at its start does so
    because its end fires elsewhere (a TCP handshake completes in softirq context, in whatever process runs), so
    "by process" there means by ``start.comm``."""
    bare = {s.name for s in spec.start.save if s.expr == s.name} if spec.start else set()
    if not bare:
        return keys
    return [{**k, "expr": E.builtins_to_saved(k["expr"], bare), "label": k.get("label") or k["expr"].upper()}
            if E.builtins_used(k["expr"]) & bare else k for k in keys]


def _reads_delta(text: str) -> bool:
    return "delta" in E.builtins_used(text)


def uses_delta(spec: ProgramSpec) -> bool:
    return any(_reads_delta(x) for x in spec.expressions())


def set_unit(spec: ProgramSpec, unit: str) -> ProgramSpec:
    """Rewrite every ``delta`` (optionally already divided) to the requested unit."""
    if unit not in units.NS or not uses_delta(spec):
        return spec
    factor = units.NS[unit]
    scaled: E.Node = E.Builtin("delta") if factor == 1 else E.Binary("/", E.Builtin("delta"), E.Num(factor))
    data = _data(spec)

    def fix(text: str) -> str:
        return E.rewrite(text, lambda n: scaled if _delta_scale(n) is not None else None)

    for f in data["print"]:
        if _reads_delta(f["expr"]):
            f["expr"] = fix(f["expr"])
            if f.get("label") and re.search(r"(NS|US|MS|_S)\)?$|\((ns|us|ms|s)\)$", f["label"]):
                f["label"] = re.sub(r"(NS|US|MS|S)$", unit.upper(), f["label"])
    data["title"] = re.sub(r"\((?:ns|us|µs|ms|s|nsecs|usecs|msecs)\)", f"({unit})", data["title"])
    for a in data["aggregates"]:
        if a.get("value") and _reads_delta(a["value"]):
            a["value"] = fix(a["value"])
            a["unit"] = unit
            if a.get("title"):
                a["title"] = re.sub(r"\((?:ns|us|µs|ms|s|nsecs|usecs|msecs)\)", f"({unit})", a["title"])
            if a.get("lhist"):
                a["func"] = "hist"
                a["lhist"] = None
    return ProgramSpec.model_validate(data)


def numeric_value(spec: ProgramSpec) -> str | None:
    """The value worth a histogram: an aggregate's value, else a latency, else a numeric printed column."""
    for a in spec.aggregates:
        if a.value:
            return a.value
    if uses_delta(spec):
        for f in spec.print:
            if _reads_delta(f.expr):
                return f.expr
        return "delta / 1000"
    return None


def to_histogram(spec: ProgramSpec, value: str | None = None, linear: tuple[int, int, int] | None = None,
                 keys: list[dict[str, Any]] | None = None) -> ProgramSpec:
    value = value or numeric_value(spec)
    if value is None:
        return spec
    data = _data(spec)
    old = data["aggregates"][0] if data["aggregates"] else {}
    agg: dict[str, Any] = {
        "func": "lhist" if linear else "hist",
        "value": value,
        "keys": _saved_keys(spec, keys) if keys is not None else [],
        "unit": old.get("unit") or (unit_of(value) if _reads_delta(value) else None),
    }
    if linear:
        agg["lhist"] = {"min": linear[0], "max": linear[1], "step": linear[2]}
    data["aggregates"] = [agg]
    data["print"] = []
    data["interval_s"] = data.get("interval_s")
    return ProgramSpec.model_validate(data)


def _delta_scale(node: E.Node) -> int | None:
    """The divisor of ``delta`` (1) or ``delta / N`` (N) at ``node``; None for any other node."""
    if node == E.Builtin("delta"):
        return 1
    if isinstance(node, E.Binary) and node.op == "/" and node.left == E.Builtin("delta") and isinstance(
            node.right, E.Num):
        return node.right.value
    return None


def unit_of(value: str) -> str:
    scales = [f for n in E.walk(E.parse(value)) if (f := _delta_scale(n)) is not None]
    factor = scales[0] if scales else 1
    return units.name_of(factor)


def to_aggregate(spec: ProgramSpec, func: str, keys: list[dict[str, Any]], value: str | None = None) -> ProgramSpec:
    """Replace printing/aggregation with one aggregate ``func(value)`` by ``keys``."""
    data = _data(spec)
    if func != "count" and value is None:
        value = numeric_value(spec)
        if value is None:
            func = "count"
    agg: dict[str, Any] = {"func": func, "keys": _saved_keys(spec, keys), "value": value if func != "count" else None}
    old = data["aggregates"][0] if data["aggregates"] else None
    if old and old.get("unit") and func in ("sum", "avg", "min", "max", "stats"):
        agg["unit"] = old["unit"]
    data["aggregates"] = [agg]
    data["print"] = []
    return ProgramSpec.model_validate(data)


def retitle(spec: ProgramSpec, title: str) -> ProgramSpec:
    return spec if title == spec.title else _edit(spec, title=title)


def set_keys(spec: ProgramSpec, keys: list[dict[str, Any]]) -> ProgramSpec:
    if not spec.aggregates:
        return to_aggregate(spec, "count", keys)
    data = _data(spec)
    for a in data["aggregates"]:
        if a["func"] not in ("hist", "lhist") or keys:
            a["keys"] = _saved_keys(spec, keys)
        a["title"] = None
    return ProgramSpec.model_validate(data)


def set_rate(spec: ProgramSpec, hz: int) -> ProgramSpec:
    data = _data(spec)
    data["probes"] = [f"profile:hz:{hz}" if p.startswith("profile:") else p for p in data["probes"]]
    data["title"] = re.sub(r"\b\d+\s*(?:Hz|hz|hertz)\b", f"{hz} Hz", data["title"])
    return ProgramSpec.model_validate(data)


def set_interval(spec: ProgramSpec, seconds: int | None) -> ProgramSpec:
    return _edit(spec, interval_s=seconds)


def set_top(spec: ProgramSpec, n: int | None) -> ProgramSpec:
    """Print only the n largest entries of each count/sum map (None: all of them)."""
    data = _data(spec)
    for a in data["aggregates"]:
        if a["func"] not in ("hist", "lhist"):
            a["top"] = n
    return ProgramSpec.model_validate(data)


def set_backend(spec: ProgramSpec, backend: str) -> ProgramSpec:
    return _edit(spec, backend=backend)


def drop_field(spec: ProgramSpec, field: str) -> ProgramSpec | None:
    """Remove every column/key/filter that reads ``args.<field>``; None when nothing would be left."""
    data = _data(spec)

    def ok(text: str | None) -> bool:
        return not text or field not in E.fields_used(text)

    data["print"] = [f for f in data["print"] if ok(f["expr"])]
    aggs = []
    for a in data["aggregates"]:
        if not ok(a.get("value")) or not ok(a.get("filter")):
            continue
        a["keys"] = [k for k in a["keys"] if ok(k["expr"])]
        aggs.append(a)
    data["aggregates"] = aggs
    if not ok(data["filter"].get("expr")):
        data["filter"]["expr"] = None
    if data.get("start"):
        data["start"]["save"] = [s for s in data["start"]["save"] if ok(s["expr"])]
    if not data["print"] and not data["aggregates"]:
        return None
    try:
        return ProgramSpec.model_validate(data)
    except ValueError:
        return None


def fit_to_kernel(spec: ProgramSpec, catalog: Catalog) -> ProgramSpec:
    """Drop probes this kernel lacks from a list that still has others (open vs openat on arm64)."""
    data = _data(spec)
    changed = False
    for holder in ([data] + ([data["start"]] if data.get("start") else [])):
        probes = holder["probes"]
        present = [p for p in probes if catalog.check_probe(ProbeRef.model_validate(p)) is None]
        if present and len(present) != len(probes):
            holder["probes"] = present
            changed = True
    return ProgramSpec.model_validate(data) if changed else spec


def keep_named(spec: ProgramSpec, named: Callable[[ProbeRef], bool | None]) -> ProgramSpec:
    """Narrow an example to what the intent names: in a probe list holding probes the intent named (``named``
    says True) next to siblings it did not (False: malloc's neighbour free, openat's neighbour open), keep the
    named ones. Probes of another sort (None) stay; a list without a named probe stays whole. The title and
    rationale lose the names of what was dropped ("malloc/free calls" becomes "malloc calls")."""
    data = _data(spec)
    dropped: list[str] = []
    for holder in [data] + ([data["start"]] if data.get("start") else []):
        refs = [ProbeRef.model_validate(p) for p in holder["probes"]]
        verdicts = [named(r) for r in refs]
        if True in verdicts and False in verdicts:
            holder["probes"] = [r.text for r, v in zip(refs, verdicts) if v is not False]
            dropped += [r.name or "" for r, v in zip(refs, verdicts) if v is False]
    if not dropped:
        return spec
    for name in {n.removeprefix("sys_enter_").removeprefix("sys_exit_") for n in dropped if n}:
        n = re.escape(name)
        for part in ("title", "rationale"):
            data[part] = re.sub(rf"(?:/|,\s*|\s+and\s+){n}\b(?:\(\))?|\b{n}(?:\(\))?(?:/|,\s*)", "", data[part])
    return ProgramSpec.model_validate(data)


def add_named_syscalls(spec: ProgramSpec, calls: list[str], catalog: Catalog) -> ProgramSpec:
    """Widen an example to syscalls the intent names that it lacks: "open and openat calls" against an example
    on openat alone gets sys_enter_open/sys_exit_open next to openat's, in the probe lists already holding a
    syscall tracepoint, when the added tracepoint carries every field the spec reads there."""
    data = _data(spec)
    read = {f for x in spec.expressions() + spec.start_expressions() for f in E.fields_used(x)}
    added = False
    for holder in [data] + ([data["start"]] if data.get("start") else []):
        refs = [ProbeRef.model_validate(p) for p in holder["probes"]]
        phases = {"enter" for r in refs if r.is_syscall_enter} | {"exit" for r in refs if r.is_syscall_exit}
        if len(phases) != 1:
            continue
        phase = phases.pop()
        tps = [catalog.tracepoint(r) for r in refs]
        have = set.intersection(*({f.name for f in tp.user_fields} for tp in tps if tp)) if any(tps) else set()
        needed = read & have
        present = [(r.name or "").removeprefix(f"sys_{phase}_") for r in refs]
        for call in calls:
            probe = catalog.syscall_tracepoint(call, phase)
            tp = catalog.tracepoint(probe) if probe is not None else None
            if probe is None or tp is None or probe.text in holder["probes"] \
                    or not needed <= {f.name for f in tp.user_fields}:
                continue
            holder["probes"].append(probe.text)
            added = True
            # the title names the calls: "Files opened (openat)" becomes "Files opened (openat/open)"
            for holder_of_title in [data, *data["aggregates"]]:  # and so does each summary's title
                title = holder_of_title.get("title") or ""
                near = next((n for n in present if re.search(rf"\b{re.escape(n)}\b", title)), None)
                if near and not re.search(rf"\b{re.escape(call)}\b", title):
                    holder_of_title["title"] = re.sub(rf"\b{re.escape(near)}\b", f"{near}/{call}", title, count=1)
    if not added:
        return spec
    # several calls in one list: each line and each summary says which call it was ("connect and accept")
    column = {"expr": "probe", "label": "CALL"}
    if data["print"] and not any("probe" in E.builtins_used(f["expr"]) for f in data["print"]):
        after = next((i + 1 for i, f in enumerate(data["print"]) if f["expr"] == "comm"), 0)
        data["print"].insert(after, dict(column))
    for a in data["aggregates"]:
        if len(a["keys"]) < 4 and not any("probe" in E.builtins_used(k["expr"]) for k in a["keys"]):
            a["keys"].append(dict(column))
    return ProgramSpec.model_validate(data)


STATUS_LABELS = {"RET", "RESULT", "FD", "ERR", "ERRNO", "STATUS", "RC"}


# builtins a call can change: read at the exit they say what the call did (setresuid: the user id after it)
CHANGED_BY_CALL = frozenset({"uid", "gid"})


def without_result(spec: ProgramSpec, keep_data: bool = True) -> ProgramSpec | None:
    """A syscall start/end pair kept only to print the result at the exit, made one probe per call at the entry:
    the arguments the start saved are read where they are, the result column goes. ``None`` when the pair does
    more than that: a latency (delta), aggregates, or a filter on what the exit sees; or, with ``keep_data``,
    when the result is the data itself (bytes read) rather than how the call went. Each exit tracepoint costs
    its attach and, at detach, a wait for the kernel's grace periods (~70 ms on a small VM)."""
    start = spec.start
    if (start is None or spec.aggregates or uses_delta(spec) or spec.end_key
            or not all(p.is_syscall_exit for p in spec.probes)
            or not all(p.is_syscall_enter for p in start.probes)
            or any(k != "tid" for k in start.key)
            or (spec.filter.expr and E.fields_used(spec.filter.expr))
            or any(E.builtins_used(f.expr) & CHANGED_BY_CALL for f in spec.print)):
        return None

    def at_exit(expr: str) -> bool:  # reads what the exit sees: the result
        return bool(E.fields_used(expr)) or "retval" in E.builtins_used(expr)

    if keep_data and any((f.label or "").upper() not in STATUS_LABELS for f in spec.print if at_exit(f.expr)):
        return None  # what the call returned is the data itself (bytes read), not only how it went
    saved = {s.name: s.expr for s in start.save}
    data = _data(spec)
    columns = []
    for col in data["print"]:
        if at_exit(col["expr"]):
            continue
        col["expr"] = E.substitute_saved(col["expr"], saved)  # each start.X read where it was saved
        columns.append(col)
    if not columns:
        return None
    data["print"] = columns
    data["probes"] = list(data["start"]["probes"])
    own = data["start"]["filter"]
    for name in ("comm", "pid"):
        data["filter"][name] = data["filter"][name] or own.get(name)
    terms = [E.parse(E.substitute_saved(x, saved)) for x in (data["filter"]["expr"], own.get("expr")) if x]
    data["filter"]["expr"] = E.unparse(terms[0] if len(terms) == 1 else E.Binary("&&", *terms)) if terms else None
    data["start"] = None
    data["end_key"] = None
    data["title"] = re.sub(r",?\s+(?:with|and) (?:the|its) (?:result|return value)s?\b", "", data["title"])
    names = "/".join(p.removeprefix("tracepoint:syscalls:sys_enter_") for p in data["probes"][:3])
    many = len(data["probes"]) > 1
    data["rationale"] = (f"The sys_enter_{names} tracepoint{'s fire' if many else ' fires'} as each call starts, "
                         f"with its arguments; ask for the result to add the exit tracepoint{'s' if many else ''}.")
    return ProgramSpec.model_validate(data)
