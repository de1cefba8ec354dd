"""Programs built from the catalog for what a request names: a syscall (and its family: open, openat,
openat2), a tracepoint, a user-space function. Each prints the calls, or counts, sums, times them as asked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..kernel.catalog import Catalog
from ..kernel.tracefs import TpField, Tracepoint
from ..spec import ProbeRef, ProgramSpec, units
from ..spec.kinds import RETURN_KIND
from .adapt import FIELD_NAMES, field_keys, wants_result
from .grouping import GROUP_KEYS, group_keys
from .intent import Intent
from .shapes import stat_asked

# a user-space function's entry and return probes (not usdt, the other user-function kind)
FUNCTION_PROBES = ("uprobe", RETURN_KIND["uprobe"])

SYSCALL_FAMILY_PATTERNS = (
    "{x}",
    "{x}at",
    "{x}at2",
    "f{x}at",
    "f{x}at2",
    "new{x}",
    "new{x}at",
    "newf{x}at",
    "l{x}",
    "newl{x}",
    "{x}x",
    "{x}2",
    "{x}64",
    "p{x}64",
    "{x}v",
    "p{x}v",
    "p{x}v2",
    "{x}3",
    "{x}4",
    "{x}ve",
    "clock_{x}",  # glibc's nanosleep() is clock_nanosleep
)


def names_probe(syscalls: list[str], functions: list[str], catalog: Catalog) -> Callable[[ProbeRef], bool | None]:
    """Does the intent name this probe (True), a sibling of it (False), or neither sort (None)? A named
    syscall also names its family (open: openat, openat2), whose members an example may use instead."""
    calls = {m for n in syscalls for m in syscall_family(n, catalog)}

    def named(probe: ProbeRef) -> bool | None:
        if calls and probe.kind == "tracepoint" and probe.category == "syscalls":
            return (probe.name or "").removeprefix("sys_enter_").removeprefix("sys_exit_") in calls
        if functions and probe.kind in FUNCTION_PROBES:
            return probe.name in functions
        return None

    return named


def syscall_family(name: str, catalog: Catalog) -> list[str]:
    family = []
    for pat in SYSCALL_FAMILY_PATTERNS:
        cand = pat.format(x=name)
        tp = catalog.syscall_tracepoint(cand)
        if tp is not None and cand not in family:
            family.append(cand)
    if name not in family and catalog.syscall_tracepoint(name):
        family.insert(0, name)
    return family


def _syscall_probes(names: list[str], phase: str, catalog: Catalog) -> list[str]:
    out = []
    for n in names:
        p = catalog.syscall_tracepoint(n, phase)
        if p is not None and p.text not in out:
            out.append(p.text)
    return out


def syscall_spec(names: list[str], it: Intent, catalog: Catalog) -> ProgramSpec:
    """A program for named syscalls: print their arguments, or count/sum/histogram them as asked."""
    # "the open syscall" is that call alone; "open()" is also what libc makes of it (openat)
    exact = [n for n in names if n in it.syscall_words or n.endswith(("at", "at2", "64", "v"))]
    family: list[str] = []
    for n in names:
        members = [n] if n in exact else syscall_family(n, catalog)
        # keep the members that carry every argument the named one has (chmod → fchmodat, not fchmod)
        base_tp = catalog.tracepoint(catalog.syscall_tracepoint(members[0]) or "") if members else None
        # the members must carry the named call's text arguments (a path): chmod → fchmodat, not fchmod
        base_fields = {f.name for f in base_tp.user_fields if f.kind in ("ptr_str", "str")} if base_tp else set()
        for m in members:
            tp = catalog.tracepoint(catalog.syscall_tracepoint(m) or "")
            if tp and base_fields <= {f.name for f in tp.user_fields} and m not in family:
                family.append(m)
    if not family:
        raise ValueError("no traceable syscall")
    enter = _syscall_probes(family, "enter", catalog)
    exit_ = _syscall_probes(family, "exit", catalog)
    tps = [catalog.tracepoint(p) for p in enter]
    common = [f for f in tps[0].user_fields if all(t.field(f.name) for t in tps if t)] if tps and tps[0] else []
    label = "/".join(family[:3]) + ("..." if len(family) > 3 else "")
    keys = group_keys(it) or GROUP_KEYS["comm"]
    wants_latency = "latency" in it.actions
    size_field = next((f.name for f in common if f.name in ("count", "len", "size", "length")), None)
    base: dict[str, Any] = {
        "rationale": f"the syscalls:sys_enter_{family[0]} tracepoint fires on every {family[0]}() call"
    }
    if wants_latency:
        unit = it.unit or "us"
        value = "delta" if unit == "ns" else f"delta / {units.NS[unit]}"
        data = {
            **base,
            "title": f"{label}() latency ({unit})",
            "start": {"probes": enter, "key": ["tid"]},
            "probes": exit_,
        }
        if "hist" in it.actions or not ({"count", "avg", "sum", "max", "trace"} & it.actions):
            data["aggregates"] = [{"func": "hist", "value": value, "unit": unit}]
        elif "avg" in it.actions or "max" in it.actions:
            data["aggregates"] = [
                {"func": "avg" if "avg" in it.actions else "max", "value": value, "unit": unit, "keys": keys}
            ]
        else:
            data["print"] = [
                {"expr": "pid"},
                {"expr": "comm"},
                {"expr": "args.ret", "label": "RET"},
                {"expr": value, "label": f"LAT_{unit.upper()}"},
            ]
        return ProgramSpec.model_validate(data)
    stat = stat_asked(it)
    if "hist" in it.actions or "sum" in it.actions or stat:
        use_ret = bool(exit_) and (
            it.has("returned", "actual", "result", "return") or not size_field or "read" in label
        )
        value = "args.ret" if use_ret else f"args.{size_field}"
        probes = exit_ if use_ret else enter
        cond = "args.ret >= 0" if use_ret else None
        aggs: list[dict[str, Any]]
        if "hist" in it.actions:
            aggs = [{"func": "hist", "value": value, "unit": "bytes" if size_field else None, "filter": cond}]
        elif stat and "sum" not in it.actions:
            aggs = [{"func": stat, "value": value, "keys": group_keys(it), "unit": "bytes" if size_field else None,
                     "filter": cond}]
        else:
            aggs = [
                {"func": "sum", "value": value, "keys": keys, "unit": "bytes" if size_field else None, "filter": cond}
            ]
        return ProgramSpec.model_validate({**base, "title": f"{label}() sizes", "probes": probes, "aggregates": aggs})
    failed = it.errors_only and bool(exit_)
    counted = exit_ if failed else enter  # a failure shows at the exit, in its result
    by_field = field_keys(counted, it, catalog)
    if (("count" in it.actions or it.group_by or by_field)
            and not it.has("trace", "show", "print", "watch", "log", "snoop")):
        keys = (by_field + group_keys(it))[:4] or keys
        named_by: str = keys[0]["expr"].removeprefix("args.")
        by = FIELD_NAMES.get(named_by, named_by)
        by = "error" if failed and by == "result" else by
        return ProgramSpec.model_validate(
            {
                **base,
                "title": f"{'Failed ' if failed else ''}{label}() calls by {by}",
                "probes": counted,
                "filter": {"expr": "args.ret < 0"} if failed else {},
                "aggregates": [{"func": "count", "keys": keys}],
            }
        )
    cols: list[dict[str, Any]] = [{"expr": "pid", "label": "PID"}, {"expr": "comm", "label": "COMM"}]
    if len(family) > 1:
        cols.append({"expr": "probe", "label": "PROBE"})
    cols += _field_columns(common, limit=6)
    wants_ret = wants_result(it)
    if wants_ret and exit_:
        saves = [{"name": c["expr"].split(".", 1)[1], "expr": c["expr"]} for c in cols if c["expr"].startswith("args.")]
        for c in cols:
            if c["expr"].startswith("args."):
                c["expr"] = "start." + c["expr"].split(".", 1)[1]
        cols.insert(2, {"expr": "args.ret", "label": "RET"})
        data = {
            **base,
            "title": f"{label}() calls with their result",
            "start": {"probes": enter, "save": saves[:8]},
            "probes": exit_,
            "print": [c for c in cols if c["expr"] != "probe"],
        }
        if it.errors_only:
            data["title"] = f"Failed {label}() calls, with the error"
            data["filter"] = {"expr": "args.ret < 0"}
    else:
        data = {**base, "title": f"{label}() calls", "probes": enter, "print": cols}
    return ProgramSpec.model_validate(data)


def _field_columns(fields: Sequence[TpField], limit: int) -> list[dict[str, Any]]:
    cols: list[dict[str, Any]] = []
    strings = [f for f in fields if f.kind in ("ptr_str", "str")]
    others = [f for f in fields if f.kind not in ("ptr_str", "str")]
    for f in others + strings:  # text last: it is the widest column
        if len(cols) >= limit:
            break
        if f.kind in ("ptr", "array") and f.kind != "ptr_str":
            fmt = "hex" if f.kind == "ptr" else "auto"
            if f.kind == "array":
                continue
            cols.append({"expr": f"args.{f.name}", "label": f.name.upper(), "format": fmt})
        else:
            fmt = "hex" if f.name in ("flags", "mode", "prot") else "auto"
            cols.append({"expr": f"args.{f.name}", "label": f.name.upper(), "format": fmt})
    return cols


def tracepoint_spec(tps: list[Tracepoint], it: Intent, catalog: Catalog) -> ProgramSpec:
    tp = tps[0]
    keys = group_keys(it)
    base: dict[str, Any] = {
        "rationale": f"the {tp.category}:{tp.name} tracepoint is named in the request",
        "probes": [tp.probe],
    }
    if "count" in it.actions or keys:
        return ProgramSpec.model_validate(
            {
                **base,
                "title": f"{tp.name} events by {(keys or GROUP_KEYS['comm'])[0]['expr']}",
                "aggregates": [{"func": "count", "keys": keys or GROUP_KEYS["comm"]}],
            }
        )
    cols = [{"expr": "pid", "label": "PID"}, {"expr": "comm", "label": "COMM"}, *_field_columns(tp.user_fields, 7)]
    return ProgramSpec.model_validate({**base, "title": f"{tp.category}:{tp.name} events", "print": cols})



def function_spec(lib: str, func: str, it: Intent, catalog: Catalog) -> ProgramSpec:
    """A program for a named user-space function: count its calls, time them, or print each call."""
    keys = group_keys(it) or GROUP_KEYS["comm"]
    base: dict[str, Any] = {"rationale": f"a uprobe on {func}() in {lib} fires on every call, in every process"}
    entry, ret = (f"{kind}:{lib}:{func}" for kind in FUNCTION_PROBES)
    if "latency" in it.actions:
        unit = it.unit or "us"
        value = "delta" if unit == "ns" else f"delta / {units.NS[unit]}"
        return ProgramSpec.model_validate(
            {
                **base,
                "title": f"{func}() latency ({unit})",
                "start": {"probes": [entry], "key": ["tid"]},
                "probes": [ret],
                "aggregates": [{"func": "hist", "value": value, "unit": unit}],
            }
        )
    if "hist" in it.actions and func in ("malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc"):
        size = {"calloc": "arg0 * arg1", "realloc": "arg1", "posix_memalign": "arg2"}.get(func, "arg0")
        return ProgramSpec.model_validate(
            {
                **base,
                "title": f"{func}() request sizes (bytes)",
                "probes": [entry],
                "aggregates": [{"func": "hist", "value": size, "unit": "bytes"}],
            }
        )
    if ("count" in it.actions or it.group_by) and not it.has("trace", "print", "show each", "log", "watch"):
        return ProgramSpec.model_validate(
            {
                **base,
                "title": f"{func}() calls by {keys[0]['expr']}",
                "probes": [entry],
                "aggregates": [{"func": "count", "keys": keys}],
            }
        )
    if it.has("return", "returns", "result", "returned"):
        return ProgramSpec.model_validate(
            {
                **base,
                "title": f"{func}() returns",
                "probes": [ret],
                "print": [{"expr": "pid"}, {"expr": "comm"}, {"expr": "retval", "label": "RET"}],
            }
        )
    return ProgramSpec.model_validate(
        {
            **base,
            "title": f"{func}() calls",
            "probes": [entry],
            "print": [{"expr": "pid"}, {"expr": "comm"}, {"expr": "arg0", "label": "ARG0"}],
            "aggregates": [{"func": "count", "keys": GROUP_KEYS["comm"]}],
        }
    )
