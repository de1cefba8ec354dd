"""Offline refinement: plain-language edits of the current program, without a model.

A chat message such as "only for pid 1234", "just nginx", "make it a histogram", "in milliseconds", "add the
return value", "use BCC instead", "count by process instead", "every 2 seconds", "at 99 Hz" or "top 5" is read
by a set of small matchers; each one that fires applies one edit from ``edits`` to the spec. Run settings
("run it for 5 seconds") are not part of a spec: ``run_request`` reads them so the caller can apply them.

``is_refinement`` decides whether a message modifies the current program or asks for a new one: a message
made only of modifiers (and filler words) refines; one that also names a new topic ("trace reads by nginx")
plans anew.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..kernel.catalog import Catalog
from ..spec import ProgramSpec, units
from . import edits
from .grouping import GROUP_KEYS
from .intent_words import NOT_PROCESS
from .refine_edits import RefineError, add_latency, add_return_value, agg_words, errors_only, make_histogram, regroup

_GROUP_WORDS: list[tuple[str, tuple[str, ...]]] = [
    ("pid", ("pid", "pids", "process id", "process ids")),
    ("tid", ("tid", "tids", "thread", "threads", "thread id")),
    ("comm", ("process", "processes", "process name", "command", "commands", "comm", "program", "programs",
              "application", "app", "task", "tasks", "name", "executable", "binary")),
    ("cpu", ("cpu", "cpus", "core", "cores", "processor")),
    ("uid", ("user", "users", "uid", "uids")),
    ("ustack", ("user stack", "user stacks", "ustack", "user-space stack")),
    ("stack", ("stack", "stacks", "kernel stack", "kernel stacks", "kstack", "call stack", "backtrace")),
    ("syscall", ("syscall", "syscalls", "system call", "system calls", "probe", "probes")),
]

# Words that carry no topic of their own in a refinement ("make it ...", "... instead, please").
FILLER = {
    "make", "it", "its", "it's", "them", "they", "that", "this", "these", "those", "instead", "only", "just", "now",
    "please", "use", "using", "add", "also", "and", "then", "as", "a", "an", "the", "to", "into", "with", "of",
    "for", "by", "per", "in", "on", "at", "show", "display", "print", "include", "including", "turn", "convert",
    "change", "switch", "rather", "one", "ones", "same", "program", "script", "output", "but", "too", "again",
    "can", "could", "you", "would", "i", "want", "me", "let", "lets", "let's", "do", "so", "thanks", "thank", "ok",
    "okay", "results", "data", "event", "events", "group", "grouped", "grouping", "sort", "sorted", "limit", "keep",
    "filter", "filtered", "restrict", "limited", "run", "trace", "tracing", "back", "be", "is", "are",
    "from", "each", "every", "how", "about", "what", "try", "anything", "everything", "all", "any",
    "there", "here", "value", "values", "column", "columns", "table", "view", "like", "way", "form", "mode",
    "set", "put", "give", "get", "rate", "frequency", "sampling", "interval", "unit", "units", "kind", "type",
    "aggregate", "aggregated", "summary", "summarize", "summarise", "time", "times", "backend", "via", "over",
    "than", "not", "no", "don't", "dont", "without", "remove", "drop", "clear", "reset", "whole", "entire",
    "system", "wide", "system-wide", "new", "first", "last", "up", "down", "yes", "sure", "well",
}

# Words that name something to trace: a message that still has one after its modifiers asks for a new program.
TOPIC_WORDS = {
    "file", "files", "open", "opens", "opened", "opening", "read", "reads", "write", "writes", "exec", "execs",
    "executed", "spawn", "spawned", "network", "tcp", "udp", "socket", "sockets", "connect", "connections",
    "accept", "disk", "block", "io", "i/o", "latency", "latencies", "syscall", "syscalls", "signal", "signals",
    "kill", "kills", "memory", "malloc", "page", "faults", "fault", "scheduler", "sched", "wakeup", "wakeups",
    "context", "switches", "irq", "irqs", "interrupts", "softirq", "dns", "http", "ssl", "tls", "cpu", "profile",
    "profiling", "oom", "mount", "mounts", "unlink", "deleted", "delete", "rename", "chmod", "chown", "fork",
    "forks", "exit", "exits", "clone", "futex", "locks", "lock", "mmap", "brk", "sleep", "nanosleep", "poll",
    "epoll", "select", "pipe", "pipes", "stat", "stats", "ext4", "xfs", "vfs", "nfs", "packets", "packet",
    "retransmits", "drops", "queue", "runqueue", "runq", "bio", "requests", "fsync", "sync", "threads",
}


@dataclass
class Refinement:
    spec: ProgramSpec
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration: float | None = None
    run: bool = False
    understood: bool = False  # at least one matcher fired (even if it changed nothing)


@dataclass
class _Match:
    name: str
    spans: list[tuple[int, int]]
    apply: Callable[[ProgramSpec, Catalog], tuple[ProgramSpec, str]] | None = None


# -- public API ----------------------------------------------------------------------------------------
def refine(request: str, spec: ProgramSpec, catalog: Catalog) -> ProgramSpec:
    """The current spec changed as ``request`` says; RefineError when nothing in it can be applied."""
    result = apply(request, spec, catalog)
    if not result.understood:
        raise RefineError(f"cannot tell how to change the program from {_quote(request)}",
                          'try e.g. "only for pid 1234", "just nginx", "make it a histogram", "in milliseconds", '
                          '"add the return value", "count by process instead", "every 2 seconds", "top 5"')
    return result.spec


def apply(request: str, spec: ProgramSpec, catalog: Catalog) -> Refinement:
    """Apply every modifier ``request`` contains, in a fixed order; errors of a single edit become RefineError."""
    text = _normalize(request)
    result = Refinement(spec=spec)
    duration, run, _ = run_request(request)
    result.duration, result.run = duration, run
    matches = _matches(text)
    result.understood = bool(matches) or duration is not None or run
    for m in matches:
        if m.apply is None:
            continue
        new, what = m.apply(result.spec, catalog)
        if new.model_dump() != result.spec.model_dump():
            result.spec = new
            result.changes.append(what)
        else:
            result.notes.append(f"{what}: already so")
    return result


def run_request(request: str) -> tuple[float | None, bool, str]:
    """Run settings in a message: (duration in seconds or None, whether it asks to run now, the rest of it).

    "run it for 5 seconds" → (5.0, True, ""), "for 10s" → (10.0, False, ""), "run it" → (None, True, "")."""
    text = _normalize(request)
    duration = None
    rest = text
    m = re.search(r"\b(?:for|during)\s+(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?)\b", rest)
    if m:
        duration = float(m.group(1)) * (60 if m.group(2).startswith("m") else 1)
        rest = rest[: m.start()] + " " + rest[m.end():]
    run = False
    m = re.match(r"^\s*(?:now\s+|ok\s+|okay\s+|please\s+|and\s+|then\s+)*(?:(?:re)?run\b"
                 r"(?:\s+(?:it|this|that|the program|again))?|start\s+(?:it|this|that|the program)\b)", rest)
    if m:
        run = True
        rest = rest[m.end():]
    rest = re.sub(r"\b(?:please|again|now)\b", " ", rest)
    rest = " ".join(rest.replace(",", " ").split()).strip(" .!")
    return duration, run, rest


def is_refinement(request: str, spec: ProgramSpec | None, catalog: Catalog | None = None) -> bool:
    """True when ``request`` modifies the current program rather than asking for a new one."""
    if spec is None:
        return False
    text = _normalize(request)
    duration, run, rest = run_request(request)
    if not rest:
        return duration is not None or run
    matches = _matches(rest)
    if not matches:
        return False
    left = leftover_words(rest, matches)
    if not left:
        return True
    return not any(_is_topic(w, catalog) for w in left) and len(left) <= 2 and bool(text)


def understands(request: str) -> bool:
    """Whether any modifier (or run setting) in ``request`` is recognised."""
    duration, run, rest = run_request(request)
    return duration is not None or run or bool(_matches(_normalize(rest)))


def leftover_words(text: str, matches: list[_Match] | None = None) -> list[str]:
    """Content words of ``text`` that no modifier explains and that are not filler."""
    text = _normalize(text)
    matches = _matches(text) if matches is None else matches
    chars = list(text)
    for m in matches:
        for a, b in m.spans:
            for i in range(a, b):
                chars[i] = " "
    words = re.findall(r"[a-z0-9_][a-z0-9_.+:'-]*", "".join(chars))
    return [w for w in words if w not in FILLER and not w.isdigit()]


def describe_changes(old: ProgramSpec, new: ProgramSpec) -> list[str]:
    """What differs between two specs, in words (for a refinement done by any planner)."""
    out: list[str] = []
    if old.backend != new.backend:
        out.append(f"backend {new.backend}")
    if [p.text for p in old.all_probes] != [p.text for p in new.all_probes]:
        out.append("probes " + ", ".join(p.text for p in new.probes))
    if old.filter != new.filter:
        nf = new.filter
        parts = [f"comm {nf.comm}" if nf.comm else "", f"pid {nf.pid}" if nf.pid else "", nf.expr or ""]
        out.append("filter: " + (", ".join(p for p in parts if p) or "none"))
    if [f.expr for f in old.print] != [f.expr for f in new.print]:
        out.append("columns: " + (", ".join(f.label or f.expr for f in new.print) or "none"))
    if old.aggregates != new.aggregates:
        out.append("aggregates: " + (", ".join(agg_words(a) for a in new.aggregates) or "none"))
    if old.interval_s != new.interval_s:
        out.append(f"every {new.interval_s} s" if new.interval_s else "print at the end only")
    return out


# -- matchers --------------------------------------------------------------------------------------------
def _matches(text: str) -> list[_Match]:
    out: list[_Match] = []
    for finder in (_m_backend, _m_all_processes, _m_pid, _m_comm, _m_errors, _m_return, _m_aggregate, _m_latency,
                   _m_histogram, _m_unit, _m_rate, _m_interval, _m_top):
        m = finder(text)
        if m is not None:
            out.append(m)
    return out


def _m_backend(text: str) -> _Match | None:
    m = re.search(r"\b(?:(?:switch|change|go|back)\s+to\s+|use\s+|using\s+|with\s+|in\s+|via\s+|as\s+(?:an?\s+)?)?"
                  r"(bcc|bpftrace)(?:\s+(?:python|program|script|backend|instead|version))*\b", text)
    if not m:
        return None
    backend = m.group(1)
    return _Match("backend", [m.span()], lambda s, c: (edits.set_backend(s, backend), f"backend {backend}"))


def _m_all_processes(text: str) -> _Match | None:
    m = re.search(r"\b(?:for\s+|of\s+|from\s+)?(?:all|any|every)\s+process(?:es)?\b|"
                  r"\b(?:remove|drop|clear|no|without)\s+(?:the\s+|any\s+)?(?:process\s+)?filters?\b|"
                  r"\bsystem[- ]wide\b", text)
    if not m:
        return None

    def do(spec: ProgramSpec, catalog: Catalog) -> tuple[ProgramSpec, str]:
        data = spec.model_dump()
        data["filter"]["comm"] = None
        data["filter"]["pid"] = None
        return ProgramSpec.model_validate(data), "no process filter"

    return _Match("all", [m.span()], do)


def _m_pid(text: str) -> _Match | None:
    m = re.search(r"\b(?:only\s+|just\s+)?(?:for\s+|of\s+|from\s+|in\s+)?(?:the\s+)?(?:pid|process\s+id|process|task)"
                  r"\s*(?:=|==|:|is|number)?\s*(\d{1,7})\b(?:\s+only)?", text)
    if not m:
        return None
    pid = int(m.group(1))
    if not 1 <= pid <= 4194304:
        return None
    return _Match("pid", [m.span()], lambda s, c: (edits.set_process(s, pid=pid), f"only pid {pid}"))


_COMM_PATTERNS = (
    # "only nginx", "just the nginx processes", "only for nginx", "only from process nginx"
    r"\b(?:only|just)\s+(?:for\s+|from\s+|by\s+|in\s+|of\s+)?(?:the\s+)?"
    r"(?:process(?:es)?\s+|command\s+|program\s+|comm\s+)?(?:named\s+|called\s+)?(?P<name>[a-z][\w.+-]*)"
    r"(?:\s+(?:process(?:es)?|program|daemon|server|command|binary|ones))?\b",
    # "for nginx only", "nginx only"
    r"\b(?:for\s+|from\s+|by\s+|of\s+)?(?P<name>[a-z][\w.+-]*)"
    r"(?:\s+(?:process(?:es)?|program|daemon|server))?\s+only\b",
    # "filter on nginx", "restrict it to nginx", "limit to nginx"
    r"\b(?:filter(?:ed)?|restrict(?:ed)?|limit(?:ed)?)\s+(?:it\s+|them\s+)?(?:on|to|by|for)\s+(?:the\s+)?"
    r"(?:process(?:es)?\s+)?(?P<name>[a-z][\w.+-]*)\b",
    # "process named nginx", "comm == nginx", "processes called nginx"
    r"\b(?:process(?:es)?\s+|program\s+|command\s+)?(?:named|called)\s+(?P<name>[a-z][\w.+-]*)\b",
    r"\bcomm\s*(?:==|=|is)\s*(?P<name>[a-z][\w.+-]*)\b",
    # "for nginx", "by nginx" when the name is a well-known process
    r"\b(?:for|by|from|of|in)\s+(?:the\s+)?(?P<name>[a-z][\w.+-]*)(?:\s+(?:process(?:es)?|program|daemon|server))?\b",
)


def _m_comm(text: str) -> _Match | None:
    from .vocabulary import KNOWN_PROCESSES, NOT_A_PROCESS

    original = text
    for i, pattern in enumerate(_COMM_PATTERNS):
        for m in re.finditer(pattern, original):
            name = m.group("name").rstrip(".:")
            if (not name or name in NOT_PROCESS or name in FILLER or name in _MODIFIER_WORDS
                    or name.isdigit() or len(name) > 15):
                continue
            if i == len(_COMM_PATTERNS) - 1 and name not in KNOWN_PROCESSES:
                continue  # "for nginx" yes, "for reads" no
            if name in NOT_A_PROCESS and name not in KNOWN_PROCESSES:
                continue
            if name in TOPIC_WORDS and name not in KNOWN_PROCESSES:
                continue
            def do(spec: ProgramSpec, catalog: Catalog, comm: str = name) -> tuple[ProgramSpec, str]:
                return edits.set_process(spec, comm=comm), f"only {comm}"

            return _Match("comm", [m.span()], do)
    return None


_MODIFIER_WORDS = {"histogram", "histograms", "hist", "distribution", "count", "counts", "errors", "failures",
                   "failed", "top", "milliseconds", "microseconds", "nanoseconds", "seconds", "ms", "us", "ns",
                   "return", "returns", "retval", "result", "bcc", "bpftrace", "average", "avg", "sum", "total",
                   "max", "maximum", "min", "minimum", "latency", "hz", "hertz", "pid", "process", "processes",
                   "every", "each", "linear", "log2", "stack", "stacks", "cpu", "user", "thread", "threads"}


def _m_errors(text: str) -> _Match | None:
    m = re.search(r"\b(?:only\s+|just\s+)?(?:the\s+)?(?:errors?|failures?|failed(?:\s+(?:ones|calls))?|"
                  r"failing(?:\s+ones)?|unsuccessful(?:\s+ones)?)(?:\s+only)?\b", text)
    if not m:
        return None
    return _Match("errors", [m.span()], errors_only)


def _m_return(text: str) -> _Match | None:
    m = re.search(r"\b(?:the\s+|its\s+|their\s+)?(?:return(?:ed)?\s+(?:value|values|code|codes|status)|retval|"
                  r"return|returns|exit\s+codes?)\b", text) or re.search(
        r"\b(?:with|add|show|include|print|and|plus)\s+(?:the\s+|its\s+|their\s+)?(?:results?|outcomes?)\b", text)
    if not m:
        return None
    return _Match("return", [m.span()], add_return_value)


def _m_aggregate(text: str) -> _Match | None:
    spans: list[tuple[int, int]] = []
    func = None
    fm = re.search(r"\b(count|counts|counting|tally|how many|sum|total|totals|average|avg|mean|maximum|max|minimum|min)"
                   r"(?:\s+(?:them|it|those|these|of\s+them|calls|events))?\b", text)
    if fm:
        word = fm.group(1)
        func = {"count": "count", "counts": "count", "counting": "count", "tally": "count", "how many": "count",
                "sum": "sum", "total": "sum", "totals": "sum", "average": "avg", "avg": "avg", "mean": "avg",
                "maximum": "max", "max": "max", "minimum": "min", "min": "min"}[word]
        spans.append(fm.span())
    keys: list[dict[str, Any]] | None = None
    km = re.search(r"\b(?:by|per|for\s+each|grouped\s+by|group\s+by|broken\s+down\s+by|keyed\s+by|split\s+by)\s+"
                   r"(?:the\s+)?([a-z -]{2,30}?)"
                   r"(?=$|[,.;:!?)]|\s(?:and|with|in|as|for|on|every|instead|only|please|then|too)\b)", text)
    if km:
        phrase = km.group(1).strip()
        for key, words in _GROUP_WORDS:
            if any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", phrase) for w in words):
                keys = GROUP_KEYS[key]
                spans.append(km.span())
                break
    if func is None and keys is None:
        return None

    def do(spec: ProgramSpec, catalog: Catalog) -> tuple[ProgramSpec, str]:
        new, what = regroup(spec, func, keys)
        first_keys = [a.keys[0].expr for a in new.aggregates if a.keys]
        if new.filter.comm and first_keys and first_keys[0] == "comm" and not (keys is None and spec.aggregates):
            # Counting by process name under a filter on one name gives a one-row table: count them all.
            data = new.model_dump()
            data["filter"]["comm"] = None
            new = ProgramSpec.model_validate(data)
            what += f" (every process, not only {spec.filter.comm})"
        return new, what

    return _Match("aggregate", spans, do)


def _m_latency(text: str) -> _Match | None:
    """"latency", "how long they take": the time of each call, measured on the current program (its process
    filter and grouping stay), not a new program about latency in general."""
    m = re.search(r"\b(?:the\s+|its\s+|their\s+)?(?:latenc(?:y|ies)|durations?|time\s+spent|how\s+long"
                  r"(?:\s+(?:it|they|each(?:\s+call)?)\s+takes?)?)\b", text)
    if not m:
        return None

    def do(spec: ProgramSpec, catalog: Catalog) -> tuple[ProgramSpec, str]:
        return add_latency(spec, catalog)

    return _Match("latency", [m.span()], do)


def _m_histogram(text: str) -> _Match | None:
    m = re.search(r"\b(?:an?\s+|as\s+an?\s+|into\s+an?\s+|to\s+an?\s+)?(?:(linear)\s+)?(?:log2?\s+|power-of-2\s+)?"
                  r"(histograms?|hist|distributions?|buckets)\b", text)
    if not m:
        return None
    linear = bool(m.group(1))

    def do(spec: ProgramSpec, catalog: Catalog) -> tuple[ProgramSpec, str]:
        return make_histogram(spec, linear=linear)

    return _Match("histogram", [m.span()], do)


def _m_unit(text: str) -> _Match | None:
    m = re.search(r"\b(?:in|as|into|to|using|show\s+in)\s+"
                  r"(nanoseconds?|microseconds?|milliseconds?|seconds|ns|us|µs|ms|usecs?|msecs?|nsecs?)\b", text)
    m = m or re.search(r"\b(nanoseconds|microseconds|milliseconds|ns|µs|ms|usecs|msecs|nsecs)\b", text)
    if not m:
        return None
    word = m.group(1)
    unit = units.time_unit(word)
    if unit is None:  # (the patterns match only words of units.TIME_WORDS)
        return None

    def do(spec: ProgramSpec, catalog: Catalog) -> tuple[ProgramSpec, str]:
        if not edits.uses_delta(spec):
            raise RefineError(f"this program measures no time, so it has nothing to show in {unit}",
                              'ask for a latency first: "make it a histogram" of a start/end pair, or "read() latency"')
        return edits.set_unit(spec, unit), f"times in {unit}"

    return _Match("unit", [m.span()], do)


def _m_rate(text: str) -> _Match | None:
    m = re.search(r"\b(?:at\s+|to\s+|with\s+)?(\d{1,5})\s*"
                  r"(?:hz|hertz|samples?\s+(?:per|a)\s+second|times\s+(?:per|a)\s+second)\b", text)
    if not m:
        return None
    hz = int(m.group(1))

    def do(spec: ProgramSpec, catalog: Catalog) -> tuple[ProgramSpec, str]:
        if not any(p.kind == "profile" for p in spec.probes):
            raise RefineError("this program does not sample at a rate (it has no profile probe)",
                              'ask for a profile first, e.g. "profile on-CPU stacks"')
        if not 1 <= hz <= 10000:
            raise RefineError(f"{hz} Hz is out of range", "choose a rate between 1 and 10000 Hz (99 is usual)")
        new = edits.set_rate(spec, hz)
        hz_re = re.compile(r"\b\d+\s*Hz\b")
        new = new.model_copy(update={"title": hz_re.sub(f"{hz} Hz", new.title),
                                     "rationale": re.sub(r"profile:hz:\d+", f"profile:hz:{hz}",
                                                         hz_re.sub(f"{hz} Hz", new.rationale))})
        return new, f"sampling at {hz} Hz"

    return _Match("rate", [m.span()], do)


def _m_interval(text: str) -> _Match | None:
    m = re.search(r"\b(?:print\s+|show\s+|report\s+|output\s+)?(?:it\s+|them\s+)?(?:every|each|per)\s+(?:(\d+)\s*)?"
                  r"(s|sec|secs|seconds?|minutes?|mins?)\b", text)
    if m:
        n = int(m.group(1) or 1) * (60 if m.group(2).startswith("min") else 1)
    else:
        m = re.search(r"\b(?:only\s+)?(?:at\s+the\s+end|when\s+(?:it\s+)?stops?|no\s+interval)\b", text)
        if not m:
            return None
        n = 0

    def do(spec: ProgramSpec, catalog: Catalog) -> tuple[ProgramSpec, str]:
        if not spec.aggregates:
            raise RefineError("this program prints each event as it happens; only aggregates are printed at intervals",
                              'count or sum them first, e.g. "count by process"')
        if n > 3600:
            raise RefineError("intervals longer than an hour are not supported", "choose at most 3600 seconds")
        return edits.set_interval(spec, n or None), (f"print every {n} s" if n else "print at the end only")

    return _Match("interval", [m.span()], do)


def _m_top(text: str) -> _Match | None:
    m = re.search(r"\b(?:only\s+|just\s+|show\s+)?(?:the\s+)?(?:top|first|largest|biggest)\s+(\d{1,4})\b"
                  r"(?:\s+(?:only|entries|rows|ones))?", text)
    if not m:
        return None
    n = int(m.group(1))

    def do(spec: ProgramSpec, catalog: Catalog) -> tuple[ProgramSpec, str]:
        if not any(a.func not in ("hist", "lhist") for a in spec.aggregates):
            raise RefineError("only counts and totals have a top N",
                              'count them first, e.g. "count by process", then "top 5"')
        if not 1 <= n <= 1000:
            raise RefineError(f"top {n} is out of range", "choose between 1 and 1000")
        return edits.set_top(spec, n), f"top {n}"

    return _Match("top", [m.span()], do)


def _is_topic(word: str, catalog: Catalog | None) -> bool:
    from ..corpus import CorpusError
    from .retrieval import index, stem

    if word in TOPIC_WORDS or stem(word) in TOPIC_WORDS:
        return True
    if ":" in word or word.endswith("()"):
        return True
    try:
        if index().known_terms(word) and stem(word) not in {stem(f) for f in FILLER}:
            return True
    except CorpusError:  # a broken corpus entry: the word is judged without it
        pass
    if catalog is not None and len(word) > 3:
        name = word.removesuffix("s")
        if catalog.syscall_tracepoint(word) is not None or catalog.syscall_tracepoint(name) is not None:
            return True
    return False


def _normalize(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").lower().split())


def _quote(text: str) -> str:
    short = " ".join(text.split())[:60]
    return repr(short + ("..." if len(text) > 60 else ""))
