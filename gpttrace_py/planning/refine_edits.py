"""The edits a chat refinement makes in more than one step: regroup or re-aggregate the events, make a histogram,
show the return value or the latency (pairing entry probes with their exits), keep only failures."""

from __future__ import annotations

import re
from typing import Any

from ..errors import UsageError
from ..kernel.catalog import Catalog
from ..spec import Aggregate, ProbeRef, ProgramSpec
from ..spec import expr as E
from ..spec.kinds import RETURN_KIND
from . import edits
from .grouping import GROUP_KEYS


class RefineError(UsageError):
    """The request could not be applied to the current program."""



def regroup(spec: ProgramSpec, func: str | None, keys: list[dict[str, Any]] | None) -> tuple[ProgramSpec, str]:
    """Count (or sum/avg/...) the events, by ``keys`` (default: the current keys, else by process)."""
    current = spec.aggregates[0] if spec.aggregates else None
    if keys is None:
        keys = [k.model_dump() for k in current.keys] if current and current.keys else GROUP_KEYS["comm"]
    by = ", ".join(k["expr"] for k in keys) or "nothing"
    if current is not None and (func is None or func == current.func):
        new = _prune_start(edits.set_keys(spec, keys))
        what = agg_words(new.aggregates[0])
        return _retitle(new, what), what
    func = func or "count"
    value_words = ""
    if func != "count":
        value = _numeric_value(spec)
        if value is None:
            raise RefineError(f"this program has no number to {func}", "ask for a size or a latency first")
        new = edits.to_aggregate(spec, func, keys, value=value)
        value_words = f" of {_value_words(value)}"
        if "delta" in value:
            new = _set_agg_unit(new, edits.unit_of(value))
    else:
        new = edits.to_aggregate(spec, "count", keys)
    if current is not None and current.top:
        new = edits.set_top(new, current.top)
    new = _prune_start(new)
    what = f"{func}{value_words} by {by}"
    return _retitle(new, what), what


def make_histogram(spec: ProgramSpec, linear: bool = False) -> tuple[ProgramSpec, str]:
    value = _numeric_value(spec)
    if value is None:
        raise RefineError("this program has no number to make a histogram of",
                          "ask for a size, a latency or a return value first")
    keys = None
    if spec.aggregates and spec.aggregates[0].keys and spec.aggregates[0].func not in ("hist", "lhist"):
        keys = [k.model_dump() for k in spec.aggregates[0].keys if k.expr in ("comm", "pid", "cpu", "uid", "tid")]
        keys = keys or []
    elif spec.aggregates:  # a histogram made again (of another value, or linear): one per key as before
        keys = [k.model_dump() for k in spec.aggregates[0].keys]
    lin = (0, 1000, 50) if linear else None
    new = edits.to_histogram(spec, value=value, linear=lin, keys=keys)
    if "delta" in value:
        new = _set_agg_unit(new, edits.unit_of(value))
    new = _prune_start(new)
    what = f"{'linear ' if linear else ''}histogram of {_value_words(value)}"
    return _retitle(new, what), what


def _numeric_value(spec: ProgramSpec) -> str | None:
    value = edits.numeric_value(spec)
    if value is not None:
        return value
    if spec.start is not None:
        return "delta / 1000"  # the pair measures a time even when it does not print it
    for f in spec.print:
        if re.fullmatch(r"(?:args|start)\.(?:count|len|size|bytes|length|nr_bytes|bytes_req|bytes_alloc)", f.expr):
            return f.expr
    for f in spec.print:
        if f.expr in ("args.ret", "retval"):
            return f.expr
    return None


def add_return_value(spec: ProgramSpec, catalog: Catalog) -> tuple[ProgramSpec, str]:
    """Show (or key aggregates by) the return value: on exit/return probes as they are, else by pairing the entry
    probes with their exit probes and carrying the arguments over with ``start``."""
    ret = _return_expr(spec)
    if ret is None:
        spec = _pair_with_exit(spec, catalog)
        ret = _return_expr(spec)
        assert ret is not None
    if any(ret == f.expr for f in spec.print) or any(ret == k.expr for a in spec.aggregates for k in a.keys):
        return spec, "return value shown"
    data = spec.model_dump()
    column = {"expr": ret, "label": "RET", "format": "auto"}
    if data["print"]:
        at = next((i + 1 for i, f in enumerate(data["print"]) if f["expr"] == "comm"), len(data["print"]))
        data["print"].insert(at, column)
    else:
        for a in data["aggregates"]:
            if len(a["keys"]) < 4:
                a["keys"].append(column)
                a["title"] = None
    return ProgramSpec.model_validate(data), "return value shown"


def add_latency(spec: ProgramSpec, catalog: Catalog) -> tuple[ProgramSpec, str]:
    """Measure how long each call takes: a program of entry probes is paired with their exits (as for the return
    value); then each line gets its latency, or the summary becomes a histogram of it, by the same keys."""
    if edits.uses_delta(spec):
        return spec, "latency"
    if spec.start is None:
        spec = _pair_with_exit(spec, catalog)
    if spec.aggregates:
        return make_histogram(spec)
    else:
        data = spec.model_dump()
        data["print"].append({"expr": "delta / 1000", "label": "LAT_US"})
        new = ProgramSpec.model_validate(data)
    return _retitle(new, "latency (us)"), "latency (us)"


def _return_expr(spec: ProgramSpec) -> str | None:
    if spec.probes and all(p.is_syscall_exit for p in spec.probes):
        return "args.ret"
    if spec.probes and all(p.is_return for p in spec.probes):
        return "retval"
    return None


def _is_raw_enter(p: ProbeRef) -> bool:
    return p.kind == "tracepoint" and p.category == "raw_syscalls" and p.name == "sys_enter"



def _pair_with_exit(spec: ProgramSpec, catalog: Catalog) -> ProgramSpec:
    if spec.start is not None:
        raise RefineError("this program already pairs two probes, and its end probes have no return value",
                          "ask for the calls with their result as a new program")
    exits: list[str] = []
    syscall = all(p.is_syscall_enter or _is_raw_enter(p) for p in spec.probes)
    for p in spec.probes:
        if _is_raw_enter(p):
            exits.append("tracepoint:raw_syscalls:sys_exit")  # every system call's exit
        elif syscall:
            name = "sys_exit_" + (p.name or "").removeprefix("sys_enter_")
            if catalog.tracepoints.available and catalog.tracepoint(f"syscalls:{name}") is None:
                raise RefineError(f"this kernel has no syscalls:{name} tracepoint")
            exits.append(f"tracepoint:syscalls:{name}")
        elif p.kind in RETURN_KIND:
            exits.append(p.text.replace(p.kind, RETURN_KIND[p.kind], 1))
        else:
            raise RefineError(f"{p.text} has no return value",
                              "return values exist for syscalls and for kernel or user functions")
    data = spec.model_dump()
    # the arguments the program reads: tracepoint fields (args.X) of a syscall, arg0..arg9 of a function
    used: list[str] = []
    for text in spec.expressions():
        nodes = list(E.walk(E.parse(text)))
        names = ([n.name for n in nodes if isinstance(n, E.Field)] if syscall
                 else [n.name for n in nodes if isinstance(n, E.Builtin) and re.fullmatch(r"arg\d", n.name)])
        used += [n for n in dict.fromkeys(names) if n not in used]
    if len(used) > 8:
        raise RefineError("too many arguments to carry to the return probe", "drop some columns first")

    def move(text: str | None) -> str | None:  # read at the return probe, from what the entry saved
        if text is None:
            return None
        return E.fields_to_saved(text, set(used)) if syscall else E.builtins_to_saved(text, set(used))

    for f in data["print"]:
        f["expr"] = move(f["expr"])
    for a in data["aggregates"]:
        a["value"] = move(a["value"])
        a["filter"] = move(a["filter"])
        for k in a["keys"]:
            k["expr"] = move(k["expr"])
    data["filter"]["expr"] = move(data["filter"]["expr"])
    data["start"] = {"probes": data["probes"], "key": ["tid"],
                     "save": [{"name": n, "expr": f"args.{n}" if syscall else n} for n in used]}
    data["probes"] = exits
    data["title"] = _shorten(f"{_subject(spec.title)} - with the return value")
    return ProgramSpec.model_validate(data)


def errors_only(spec: ProgramSpec, catalog: Catalog) -> tuple[ProgramSpec, str]:
    ret = _return_expr(spec)
    if ret is None:
        spec, _ = add_return_value(spec, catalog)
        ret = _return_expr(spec)
    cond = f"{ret} < 0"
    if spec.filter.expr and cond in spec.filter.expr:
        return spec, "only failures"
    return edits.add_condition(spec, cond), "only failures"


def _prune_start(spec: ProgramSpec) -> ProgramSpec:
    """Drop values saved at the start probes that nothing reads any more."""
    if spec.start is None or not spec.start.save:
        return spec
    used = set()
    for text in spec.expressions():
        used |= E.saved_used(text)
    keep = [s for s in spec.start.save if s.name in used]
    if len(keep) == len(spec.start.save):
        return spec
    data = spec.model_dump()
    data["start"]["save"] = [s.model_dump() for s in keep]
    return ProgramSpec.model_validate(data)


def _set_agg_unit(spec: ProgramSpec, unit: str) -> ProgramSpec:
    data = spec.model_dump()
    for a in data["aggregates"]:
        if a.get("value") and "delta" in a["value"]:
            a["unit"] = unit
    return ProgramSpec.model_validate(data)


def agg_words(a: Aggregate) -> str:
    what = {"count": "count", "sum": "total", "avg": "average", "min": "minimum", "max": "maximum",
            "hist": "histogram", "lhist": "linear histogram", "stats": "stats"}[a.func]
    value = f" of {a.value}" if a.value else ""
    by = f" by {', '.join(k.expr for k in a.keys)}" if a.keys else ""
    top = f", top {a.top}" if a.top else ""
    return f"{what}{value}{by}{top}"


def _value_words(value: str) -> str:
    m = re.fullmatch(r"delta(?:\s*/\s*(\d+))?", value.strip())
    if m:
        return f"latency ({edits.unit_of(value)})"
    m = re.fullmatch(r"(?:args|start)\.(\w+)", value.strip())
    if m:
        return "return value" if m.group(1) == "ret" else m.group(1)
    return "return value" if value == "retval" else value


def _subject(title: str) -> str:
    return title.split(" - ", 1)[0].strip()


def _shorten(title: str) -> str:
    return title if len(title) <= 120 else title[:117] + "..."


def _retitle(spec: ProgramSpec, what: str) -> ProgramSpec:
    return spec.model_copy(update={"title": _shorten(f"{_subject(spec.title)} - {what}")})

