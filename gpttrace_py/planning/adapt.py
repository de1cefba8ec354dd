"""A worked example adapted to a request: its process filter, grouping, aggregation, unit, interval, top N,
and the request's filters (errors, port, protocol, signal, path, size, latency) where its probes carry them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ..kernel.catalog import Catalog
from ..kernel.tracefs import Tracepoint
from ..spec import ProbeRef, ProgramSpec
from ..spec import expr as E
from . import edits, lexicon
from .grouping import GROUP_KEYS, group_keys
from .intent import Intent
from .shapes import intent_shape, stat_asked


def adapt(spec: ProgramSpec, it: Intent, catalog: Catalog, tool: bool = False) -> ProgramSpec:
    """The example adapted to the request; ``tool``: the request named the classic tool the example covers, whose
    columns (the result included) are what was asked for."""
    spec = edits.fit_to_kernel(spec, catalog)
    # An example's own process filter is an illustration: the intent's (or none) replaces it.
    spec = edits.clear_process(spec)
    spec = set_processes(spec, it)
    if not tool and not wants_result(it):
        # a count of the calls ("count writes by file descriptor") needs none of what the exit sees
        spec = (edits.without_result(spec) or (_counts_events(spec, it) and edits.without_result(spec, False))
                or spec)
    is_profile = any(p.kind == "profile" for p in spec.probes)
    if is_profile:
        if it.hz:
            spec = edits.set_rate(spec, it.hz)
        if it.user_stack and not it.kernel_stack:
            spec = _stack_keys(spec, "ustack")
        elif it.kernel_stack and not it.user_stack:
            spec = _stack_keys(spec, "kstack")
    wants_hist = "hist" in it.actions or "lhist" in it.actions
    keys = field_keys(spec.probes, it, catalog) + group_keys(it)
    keys = keys[:4]
    if keys and keys[0]["expr"].startswith("args.") and not any(k["expr"] == "comm" for k in keys):
        # the title said whom the example counted by: "File opens by process" becomes "File opens by path"
        by = "by " + FIELD_NAMES.get(keys[0]["expr"].removeprefix("args."), keys[0]["label"].lower())
        spec = _retitle_by(spec, by)
    all_hist = bool(spec.aggregates) and all(a.func in ("hist", "lhist") for a in spec.aggregates)
    if wants_hist and not all_hist:
        spec = edits.to_histogram(spec, keys=keys if it.group_by or groups_by_field(it) else [])
    elif wants_hist and keys and not is_profile:  # "a histogram ..., per CPU": one histogram for each
        if [k.expr for k in spec.aggregates[0].keys] != [k["expr"] for k in keys]:
            spec = edits.set_keys(spec, keys)
    elif not wants_hist and _counts_events(spec, it, keys):
        spec = edits.to_aggregate(spec, "count", keys or GROUP_KEYS["comm"])
    elif _counts_instead(spec, it):  # "count softirqs by vector": an example of their time, asked as a count
        now = keys or [k.model_dump(exclude_none=True) for k in spec.aggregates[0].keys]
        spec = edits.to_aggregate(spec, "count", now)
        title = re.sub(r"\s*\((?:us|ms|ns|s|bytes)\)", "", spec.title)
        spec = edits.retitle(spec, re.sub(r"\s+(?:time|latency|bytes|sizes?|duration)\b", "", title) + " (count)")
    elif keys and spec.aggregates and not is_profile and not wants_hist:
        current = [k.expr for k in spec.aggregates[0].keys]
        if current != [k["expr"] for k in keys]:
            spec = edits.set_keys(spec, keys)
    if ((it.comm or it.pid) and not it.group_by and spec.aggregates
            and all(p.category == "raw_syscalls" for p in spec.probes)
            and all({k.expr for k in a.keys} <= {"comm", "pid"} and a.keys for a in spec.aggregates)):
        # "count syscalls made by ls": by process, for one process, is one line; by syscall says more
        spec = edits.set_keys(spec, [{"expr": "args.id", "label": "SYSCALL"}])
        spec = _retitle_by(spec, "by syscall")
    stat = stat_asked(it)
    if stat and not wants_hist and all_hist and spec.aggregates[0].value:  # (no edit above changed the funcs)
        # "average read latency per process": the example's histogram, as the one number asked for
        now = keys or [k.model_dump(exclude_none=True) for k in spec.aggregates[0].keys]
        spec = edits.to_aggregate(spec, stat, now, spec.aggregates[0].value)
        word = {"avg": "Average", "max": "Maximum", "min": "Minimum"}[stat]
        spec = edits.retitle(spec, f"{word} {spec.title[:1].lower()}{spec.title[1:]}")
    if it.unit:
        spec = edits.set_unit(spec, it.unit)
    if it.interval_s:
        spec = edits.set_interval(spec, it.interval_s)
    if it.top and spec.aggregates:
        spec = edits.set_top(spec, it.top)
    elif spec.aggregates and not it.has(*RANKING_WORDS) and not any(
            k.expr in ("kstack", "ustack") for a in spec.aggregates for k in a.keys):
        spec = edits.set_top(spec, None)  # an example's top 20 hides what was not asked to be left out
    if it.errors_only:
        spec = _errors_only(spec)
    if it.port:
        spec = _port_filter(spec, it.port, catalog)
    if it.protocol is not None:
        spec = _protocol_filter(spec, it.protocol, catalog)
    if it.signal is not None:
        spec = _signal_filter(spec, it.signal, catalog)
    if it.path:
        spec = _path_filter(spec, it, catalog)
    if it.size_bound:
        spec = _size_threshold(spec, *it.size_bound)
    spec = latency_threshold(spec, it)
    if spec.print and spec.start is None:
        spec = _asked_columns(spec, it, catalog)
    return column_format(spec, it)


def column_format(spec: ProgramSpec, it: Intent) -> ProgramSpec:
    """"the mode in octal", "flags in hex": the columns the request names (else its one hex column) in that
    format."""
    if it.output_format is None or not spec.print:
        return spec
    fields = [(i, f.expr.split(".", 1)[1]) for i, f in enumerate(spec.print)
              if f.expr.startswith(("args.", "start.")) and "." in f.expr]
    words = it.text.split()
    named = [i for i, name in fields
             if re.search(rf"\b{re.escape(name)}s?\b", it.text) or (spec.print[i].label or "").lower() in words]
    chosen = named or [i for i, f in enumerate(spec.print) if f.format == "hex"][:1]
    if not chosen:
        return spec
    data = spec.model_dump()
    for i in chosen:
        data["print"][i]["format"] = it.output_format
    return ProgramSpec.model_validate(data)



def _retitle_by(spec: ProgramSpec, by: str) -> ProgramSpec:
    """The title, saying ``by`` where it said whom the example counted by ("File opens by process")."""
    return edits.retitle(spec, re.sub(r"\bby (?:process(?: name)?|comm|program)\b", by, spec.title))


def _counts_events(spec: ProgramSpec, it: Intent, keys: list[dict[str, Any]] | None = None) -> bool:
    """Is an example that prints each event asked for as a count instead ("count writes", "opens by file")?"""
    if keys is None:
        keys = [{}] if it.group_by or groups_by_field(it) else []
    return (bool(spec.print) and not spec.aggregates and ("count" in it.actions or bool(keys))
            and not it.has("trace", "show", "print", "watch", "snoop", "log", "list"))


def _counts_instead(spec: ProgramSpec, it: Intent) -> bool:
    """An example that sums or histograms a value, asked for how many times ("count softirqs by vector")?"""
    words = lexicon.load()
    return (intent_shape(it) == "count" and it.has(*words.count_words)
            and bool(spec.aggregates) and not spec.print
            and all(a.func not in ("count", "stats") for a in spec.aggregates)
            and not it.has(*words.measure_words)
            and not any(p.kind == "profile" for p in spec.probes))


# a question that asks for the largest entries only: an example's "top N" stays
RANKING_WORDS = ("top", "most", "busiest", "heaviest", "largest", "biggest", "hottest", "worst", "slowest",
                 "highest", "frequent", "frequently", "often", "hammering", "hogging")

PATH_LIKE = ("filename", "pathname", "path")

FD_FIELD_WORDS = r"file descriptors?|fds?"
# what a question groups by that is one of the probes' own fields ("by file name", "per destination port")
GROUP_FIELDS: dict[str, tuple[str, ...]] = {
    r"file ?names?|paths?|files?(?! descriptors?)": PATH_LIKE,
    FD_FIELD_WORDS: ("fd",),
    r"(?:destination|dest|remote) ports?|dports?|ports?": ("dport",),
    r"(?:source|local) ports?|sports?": ("sport",),
    r"signals?(?: numbers?)?": ("sig",),
    r"(?:destination|remote) (?:address(?:es)?|ips?)|daddrs?": ("daddr",),
    r"devices?|disks?": ("dev",),
    r"errnos?|errors?|error codes?|return values?|results?": ("ret",),
}

FIELD_NAMES = {"comm": "process", "pid": "process", "ret": "result", "filename": "path", "pathname": "path",
               "fd": "file descriptor", "dport": "destination port", "sport": "source port", "sig": "signal",
               "daddr": "destination address", "dev": "device"}

# what a question calls a tracepoint field ("with the path", "and their flags"): the fields it may be, in order
FIELD_WORDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("path", "paths", "full path", "file name", "file names", "filename", "filenames", "pathname"): PATH_LIKE,
    ("flags",): ("flags",),
    ("mode", "modes", "permissions"): ("mode",),
    ("fd", "fds", "file descriptor", "file descriptors"): ("fd",),
    ("signal", "signals", "signal number"): ("sig",),
    ("size", "sizes", "length"): ("count", "len", "size", "length"),
}


def _field_column(probes: Sequence[ProbeRef | str], fields: tuple[str, ...], catalog: Catalog) -> dict[str, Any] | None:
    """A column (or map key) of the first of ``fields`` that every one of ``probes`` (a spec's main probes)
    has; None if no field does, or one of them is no tracepoint."""
    tps = [catalog.tracepoint(p) for p in probes]
    name = next((f for f in fields if tps and all(tp is not None and tp.field(f) for tp in tps)), None)
    if name is None:
        return None
    return {"expr": f"args.{name}", "label": "PATH" if name in PATH_LIKE else name.upper()}


def _group_field_phrase(words: str) -> str:
    return (rf"\b(?:by|per|for each|grouped by|broken down by)\s+(?:[a-z]+(?: name)? and\s+)?"
            rf"(?:the\s+|its\s+|their\s+)?(?:{words})\b")


@lru_cache(maxsize=1)
def any_group_field() -> re.Pattern[str]:
    """"by <any of GROUP_FIELDS>" in one pattern: most questions have none, and one pattern is compiled once."""
    return re.compile(_group_field_phrase("|".join(f"(?:{words})" for words in GROUP_FIELDS)))


def groups_by_field(it: Intent) -> bool:
    return any_group_field().search(it.text) is not None


def field_keys(probes: Sequence[ProbeRef | str], it: Intent, catalog: Catalog) -> list[dict[str, Any]]:
    """Map keys for "by <field>" when every one of ``probes`` has that field: "count opens by file name" keys
    the count by args.filename. A pair's main probes (the exits) rarely hold such fields: none then."""
    keys: list[dict[str, Any]] = []
    if not groups_by_field(it):
        return keys
    for words, fields in GROUP_FIELDS.items():
        if re.search(_group_field_phrase(words), it.text):
            key = _field_column(probes, fields, catalog)
            if key is not None:
                keys.append(key)
    return keys


def _asked_columns(spec: ProgramSpec, it: Intent, catalog: Catalog) -> ProgramSpec:
    """A field the question asks to see that the example does not print, when every probe has it: "trace
    program starts with their path" adds sched_process_exec's filename."""
    printed = {f for col in spec.print for f in E.fields_used(col.expr)}
    added = [col for words, fields in FIELD_WORDS.items() if it.has(*words)
             if (col := _field_column(spec.probes, fields, catalog)) is not None
             and col["expr"].removeprefix("args.") not in printed]
    if not added:
        return spec
    data = spec.model_dump()
    data["print"] += added
    return ProgramSpec.model_validate(data)


RESULT_WORDS = ("result", "results", "return", "returns", "returned", "return value", "retval", "succeed",
                "succeeds", "succeeded", "success", "successful", "worked", "whether", "failure", "errno", "status",
                "outcome", "denied", "refused")
FD_WORDS = ("fd", "fds", "descriptor", "descriptors")  # an open's result; a write's argument
_BY_FD = re.compile(_group_field_phrase(FD_FIELD_WORDS))


def wants_result(it: Intent) -> bool:
    """Does the question ask what a call returned (the exit half of a syscall pair)? Errors (it.errors_only:
    "failed", "errors"...) and latency need the exit too; a file descriptor does unless it is what a count is
    keyed by ("writes by file descriptor": an argument)."""
    return (it.errors_only or "latency" in it.actions or it.has(*RESULT_WORDS)
            or (it.has(*FD_WORDS) and not _BY_FD.search(it.text)))


def _stack_keys(spec: ProgramSpec, which: str) -> ProgramSpec:
    data = spec.model_dump()
    for a in data["aggregates"]:
        for k in a["keys"]:
            if k["expr"] in ("kstack", "ustack"):
                k["expr"] = which
                k["label"] = which.upper()
        a["title"] = None
    return ProgramSpec.model_validate(data)


def _errors_only(spec: ProgramSpec) -> ProgramSpec:
    exits = any(p.is_syscall_exit for p in spec.probes)
    if exits and ("ret" in " ".join(spec.expressions()) or spec.start is not None):
        return edits.add_condition(spec, "args.ret < 0")
    return spec


def _port_filter(spec: ProgramSpec, port: int, catalog: Catalog) -> ProgramSpec:
    fields = {f.name for p in spec.probes if (tp := catalog.tracepoint(p)) for f in tp.fields}
    if {"sport", "dport"} <= fields:
        return edits.add_condition(spec, f"args.sport == {port} || args.dport == {port}")
    return spec


def _protocol_filter(spec: ProgramSpec, protocol: int, catalog: Catalog) -> ProgramSpec:
    """"udp sends": only that protocol, where every probe carries one (an example about another is no answer)."""
    tps = [catalog.tracepoint(p) for p in spec.probes]
    if not tps or not all(tp is not None and tp.field("protocol") is not None for tp in tps):
        return spec
    exprs = " ".join(spec.expressions())
    other = re.search(r"\bargs\.protocol\s*==\s*(\d+)", exprs)
    if other and int(other.group(1)) != protocol:
        raise ValueError("the example is about another protocol")
    return edits.add_condition(spec, f"args.protocol == {protocol}")


def _argument_tracepoints(spec: ProgramSpec, catalog: Catalog) -> list[Tracepoint | None]:
    """Where a filter on a call's arguments goes: a pair's start probes (the entry, where they are read), else
    the probes; their tracepoints (None for a probe that is no tracepoint)."""
    return [catalog.tracepoint(p) for p in (spec.start.probes if spec.start is not None else spec.probes)]


def _signal_filter(spec: ProgramSpec, number: int, catalog: Catalog) -> ProgramSpec:
    """"who sends SIGKILL": only that signal, where the probes (or a pair's start) have it."""
    tps = _argument_tracepoints(spec, catalog)
    if tps and all(tp is not None and tp.field("sig") is not None for tp in tps):
        return edits.add_condition(spec, f"args.sig == {number}", at_start=spec.start is not None)
    return spec


SIZE_FIELDS = ("count", "ret", "bytes", "len", "size", "length", "nr_bytes")


def latency_threshold(spec: ProgramSpec, it: Intent) -> ProgramSpec:
    """"slower than 10 ms", "over 500 us": only the events whose measured time (delta, in ns) is beyond it; a
    program that measures no time is left as it is (and the check says the bound was not honoured)."""
    if it.latency_bound is None or not edits.uses_delta(spec):
        return spec
    op, ns = it.latency_bound
    return edits.add_condition(spec, f"delta {op} {ns}")


def _size_threshold(spec: ProgramSpec, op: str, size: int) -> ProgramSpec:
    """"reads larger than 1 MB", "under 100 bytes": only events whose size (the aggregated value, else a printed
    size column) is within it; a size that is a call's result is no size when negative (an error). A program
    with no size in bytes is left as it is."""
    values = [a.value for a in spec.aggregates if a.value] + [f.expr for f in spec.print]
    for value in values:
        if value.startswith("args.") and value.removeprefix("args.") in SIZE_FIELDS:
            cond = f"{value} {op} {size}"
            if op in ("<", "<=") and value == "args.ret":
                cond = f"{value} >= 0 && {cond}"
            return edits.add_condition(spec, cond)
    return spec


PATH_FIELDS = ("filename", "pathname", "path", "oldname", "newname")
BPFTRACE_MAX_LITERAL = 63  # bytes of a string literal bpftrace 0.17 accepts (64 with its NUL)


def _path_filter(spec: ProgramSpec, it: Intent, catalog: Catalog) -> ProgramSpec:
    """"who opens /etc/passwd": only events on that file, compared where the path is read (the start probe
    of a pair). A directory ("files in /tmp", "under /etc", "/var/log/") keeps the paths that start with it
    (as the program sees them: a path relative to the working directory does not)."""
    path = it.path or ""
    before = it.raw[: it.raw.find(path)].rstrip().lower() if path in it.raw else ""
    directory = path.endswith("/") or before.endswith(("in", "under", "inside", "below", "within", "beneath",
                                                        "from", "of files in", "into"))
    prefix = path.rstrip("/") + "/"
    if len((prefix if directory else path).encode()) > min(BPFTRACE_MAX_LITERAL, E.STRNCMP_MAX):
        return spec  # bpftrace 0.17 refuses a longer literal: show every path instead
    tps = _argument_tracepoints(spec, catalog)
    for name in PATH_FIELDS:
        if tps and all(tp is not None and (f := tp.field(name)) is not None and f.kind in ("str", "ptr_str")
                       for tp in tps):
            cond = (f'strncmp(str(args.{name}), "{prefix}", {len(prefix.encode())}) == 0' if directory
                    else f'str(args.{name}) == "{path}"')
            return edits.add_condition(spec, cond, at_start=spec.start is not None)
    return spec



def set_processes(spec: ProgramSpec, it: Intent) -> ProgramSpec:
    """The request's processes: one (the filter's comm), alternatives ("cat or head": comm == each, or-ed) and
    exclusions ("not by systemd": comm != each), and a pid."""
    if it.comms:
        spec = edits.add_condition(spec, " || ".join(f'comm == "{n}"' for n in it.comms))
    elif it.comm:
        spec = edits.set_process(spec, comm=it.comm)
    if it.not_comms:
        spec = edits.add_condition(spec, " && ".join(f'comm != "{n}"' for n in it.not_comms))
    if it.pid:
        spec = edits.set_process(spec, pid=it.pid)
    return spec

