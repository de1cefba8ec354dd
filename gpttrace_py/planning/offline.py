"""The offline planner: intent parsing + retrieval over the examples corpus + the live probe catalog.

No network and no model. It ranks candidate specs for an intent:
  1. the closest corpus examples (BM25), adapted to the intent (process filter, aggregation, unit, rate),
  2. programs built from the catalog for a syscall or tracepoint the intent names ("trace the fchownat
     syscall", "count sched:sched_wakeup by cpu"),
and keeps the ranked list so that a load failure moves on to the next candidate (or drops the field the
kernel rejected) instead of giving up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..errors import UnmappableIntent, UsageError
from ..kernel.catalog import Catalog
from ..kernel.syscalls import number_to_name
from ..kernel.tracefs import Tracepoint
from ..run.failure import LoadFailure
from ..spec import ProbeRef, ProgramSpec
from ..spec import expr as E
from . import edits
from . import intent as intent_mod
from .base import PlanContext, PlannerBase
from .intent import Intent, _ordinary_word
from .retrieval import Hit, index
from .vocabulary import COMMON_WORDS

MIN_SCORE = 2.0  # below this a corpus hit is not trusted on its own

# Syscall names that are also everyday words: only taken as a syscall when written as one ("read()",
# "the read syscall", "read calls").
AMBIGUOUS_SYSCALLS = {
    "read",
    "write",
    "open",
    "close",
    "kill",
    "exit",
    "time",
    "sync",
    "pause",
    "select",
    "poll",
    "link",
    "mount",
    "stat",
    "socket",
    "listen",
    "connect",
    "accept",
    "bind",
    "shutdown",
    "alarm",
    "wait4",
    "uname",
    "times",
    "brk",
    "pipe",
    "dup",
    "chroot",
    "ioctl",
    "fork",
    "clone",
    "access",
    "madvise",
    "msync",
    "flock",
    "futex",
    "reboot",
    "acct",
    "sysinfo",
    "capget",
    "capset",
    "kcmp",
    "personality",
    "quotactl",
    "rename",
    "truncate",
    "umask",
    "vhangup",
    "syslog",
    "tee",
    "splice",
}

# ambiguous names that are calls when they are the means ("sent by kill", "bytes moved by read"); not "by time"
MEANS_SYSCALLS = ("kill", "read", "write", "open", "close", "connect", "accept", "bind", "listen")

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

GROUP_KEYS: dict[str, list[dict[str, Any]]] = {
    "comm": [{"expr": "comm", "label": "COMM"}],
    "pid": [{"expr": "pid", "label": "PID"}, {"expr": "comm", "label": "COMM"}],
    "tid": [{"expr": "tid", "label": "TID"}, {"expr": "comm", "label": "COMM"}],
    "cpu": [{"expr": "cpu", "label": "CPU"}],
    "uid": [{"expr": "uid", "label": "UID"}],
    "stack": [{"expr": "kstack", "label": "KSTACK"}],
}


@dataclass
class Candidate:
    spec: ProgramSpec
    source: str  # 'corpus:<id>', 'syscall:<name>', 'tracepoint:<name>'
    score: float
    fits: bool = True  # the example already has the asked-for shape and scope


@dataclass
class _State:
    intent: str
    candidates: list[Candidate] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)


class OfflinePlanner(PlannerBase):
    name = "offline"

    def __init__(self) -> None:
        self._state: _State | None = None
        self.last_candidates: list[Candidate] = []
        self._named = False  # the last request named a syscall, function or tracepoint

    # -- Planner protocol ----------------------------------------------------------------------------
    def plan(self, intent: str, ctx: PlanContext) -> ProgramSpec:
        it = _parse(intent)
        self._check_named_syscalls(it, ctx.catalog)
        cands = self.candidates(it, ctx.catalog)
        if not cands:
            raise UnmappableIntent(f"no tracing program matches {_quote(intent)}", self.suggestions(intent))
        self._state = _State(intent, cands, [cands[0].spec.model_dump_json()])
        self.last_candidates = cands
        ctx.source = cands[0].source
        spec = cands[0].spec
        if ctx.backend in ("bpftrace", "bcc"):
            spec = edits.set_backend(spec, ctx.backend)
        return spec

    def refine(self, request: str, spec: ProgramSpec, ctx: PlanContext) -> ProgramSpec:
        from .refine import refine

        return refine(request, spec, ctx.catalog, self)

    def revise(self, intent: str, spec: ProgramSpec, failure: LoadFailure, ctx: PlanContext) -> ProgramSpec | None:
        state = self._state if self._state and self._state.intent == intent else None
        # 1. a field the kernel does not have: drop what reads it
        m = re.search(
            r"(?:no field|field named|Unknown field|does not contain a field named)\s*'?\"?(\w+)", failure.message
        )
        if m:
            smaller = edits.drop_field(spec, m.group(1))
            if smaller is not None and (state is None or smaller.model_dump_json() not in state.tried):
                if state:
                    state.tried.append(smaller.model_dump_json())
                return smaller
        # 2. the next candidate that was not tried yet
        if state is None:
            return None
        for cand in state.candidates:
            text = cand.spec.model_dump_json()
            if text not in state.tried:
                state.tried.append(text)
                return cand.spec
        return None

    # -- candidates ----------------------------------------------------------------------------------
    def candidates(self, it: Intent, catalog: Catalog) -> list[Candidate]:
        """Corpus examples and named calls, ranked; a program built on the tracepoints whose names the request
        says goes first when it accounts for more of the request's words than the best of those."""
        ranked = self._ranked(it, catalog)
        tools = self._named_tools(it, catalog)
        if tools:  # a classic tool by name: its worked example (adapted to the request), then the rest
            return tools + [c for c in ranked if c.source not in {t.source for t in tools}]
        from . import catalog_match, understand

        words = understand.content_words(it)
        if not self._named:  # (a named call has put the examples that use it first)
            ranked = _most_placed_first(ranked, words, catalog)
        ranked = _runnable_first(ranked, words, catalog)
        if (ranked and ranked[0].fits and not _cannot_run_here(ranked[0].source, catalog)
                and _placed_weight(words, ranked[0].spec, ranked[0].source)[0] == len(words)):
            return ranked  # the best example accounts for every word: the catalog has nothing to add
        found = catalog_match.match(words, it, catalog)
        if not found:
            return ranked
        built = []
        for m in found:
            tp = m.tracepoint
            if tp.category == "syscalls":
                call = tp.name.removeprefix("sys_enter_")
                spec = _safe(lambda call=call: syscall_spec([call], it, catalog))
                source = f"syscall:{call}"
            else:
                spec = _safe(lambda m=m: ProgramSpec.model_validate(catalog_match.spec_for(m, it)))
                source = f"tracepoint:{tp.category}:{tp.name}"
            # (a process name the spec refuses, e.g. one with control characters, leaves the candidate out)
            spec = (_safe(lambda s=spec: _latency_threshold(_column_format(_set_processes(s, it), it), it))
                    if spec is not None else None)
            if spec is not None:
                built.append(Candidate(spec, source, m.score))
        if not built or self._named:
            return ranked + built  # the request named a call, a function or a tracepoint: that comes first
        mine = _placed_weight(words, built[0].spec, "")
        theirs = _placed_weight(words, ranked[0].spec, ranked[0].source) if ranked else (0, 0.0)
        wanted = intent_shape(it)
        fits = wanted in ("events", "count") or wanted in spec_shapes(built[0].spec)
        if (mine > theirs and (fits or not ranked)) or (mine[0] >= theirs[0] and _cannot_run_here(ranked[0].source,
                                                                                                  catalog)):
            # it says more of the request, in the shape asked; or the example could only run with a missing
            # feature and this kernel's program says as many of the request's words
            return built[:1] + ranked + built[1:]
        return ranked + built

    def _ranked(self, it: Intent, catalog: Catalog) -> list[Candidate]:
        out: list[Candidate] = []
        query = _without_process(it)  # a program's name says whom to watch, not what to trace
        topic = index().topic_terms(query)
        found = index().search(query, limit=18)
        hits = [h for h in found[:6] if not topic or h.matched & topic]
        named_syscalls = self.named_syscalls(it, catalog)
        if topic == {"syscall"} and not named_syscalls:
            # system calls in general ("how many system calls does each program make"): not an example about
            # one call (bpf(), connect()) that the question shares only the word "syscall" with
            hits = [h for h in found if not _about_one_call(h)][:10] or hits
        named_tps = self.named_tracepoints(it, catalog)
        self._named = bool(named_syscalls or named_tps)
        wanted = intent_shape(it)
        by_field = _groups_by_field(it)
        for hit in hits:
            # An example already of the asked-for shape (events, count, histogram...) beats one that would
            # have to be converted.
            shapes = spec_shapes(hit.example.spec)
            # "which process is using the network": a ranking, that a sum of bytes answers as well as a count
            fits = wanted in shapes or (wanted == "count" and "sum" in shapes
                                        and not it.has("count", "counts", "how many", "number of", "how often"))
            factor = 1.25 if fits else 0.85
            if _errors_only_example(hit.example.spec) != it.errors_only:
                factor *= 0.7
                fits = False
            own = hit.example.spec.filter
            if (own.comm or own.pid) and not (it.comm or it.pid):
                factor *= 0.85  # an example about one program, asked about all of them: its point is lost
            for spec in [hit.example.spec, *hit.example.alternatives]:
                adapted = _safe(lambda s=spec: adapt(s, it, catalog))
                if adapted is not None:
                    # "larger than 1 MB" that the example has no size to compare with is a question it misses,
                    # and so is "by file descriptor" when its probes have no such field to count by
                    missed = it.size_bound is not None and f" {it.size_bound[0]} {it.size_bound[1]}" not in (
                        adapted.filter.expr or "")
                    missed = missed or (by_field and not any(k.expr.startswith("args.")
                                                             for a in adapted.aggregates for k in a.keys))
                    score = hit.score * factor * (0.7 if missed else 1.0)
                    out.append(Candidate(adapted, f"corpus:{hit.example.id}", score, fits and not missed))
        named_funcs = [] if named_syscalls else self.named_functions(it, catalog)
        self._named = self._named or bool(named_funcs)
        if named_syscalls or named_funcs:
            named = _names_probe(named_syscalls, [fn for _, fn in named_funcs], catalog)
            for cand in out:
                cand.spec = _safe(lambda s=cand.spec: edits.keep_named(s, named)) or cand.spec
                if named_syscalls and any(named(p) for p in cand.spec.all_probes):
                    cand.spec = (_safe(lambda s=cand.spec: edits.add_named_syscalls(s, named_syscalls, catalog))
                                 or cand.spec)
        out.sort(key=lambda c: -c.score)
        generated: list[Candidate] = []
        if named_syscalls:
            spec = _safe(lambda: syscall_spec(named_syscalls, it, catalog))
            if spec is not None:
                generated.append(Candidate(spec, f"syscall:{named_syscalls[0]}", 0.0))
        for tp in named_tps[:1]:
            spec = _safe(lambda tp=tp: tracepoint_spec([tp], it, catalog))
            if spec is not None:
                generated.append(Candidate(spec, f"tracepoint:{tp.category}:{tp.name}", 0.0))
        for lib, func in named_funcs[:1]:
            spec = _safe(lambda lib=lib, func=func: function_spec(lib, func, it, catalog))
            if spec is not None:
                generated.append(Candidate(spec, f"uprobe:{lib}:{func}", 0.0))
        for cand in generated:
            cand.spec = _safe(lambda s=cand.spec: _latency_threshold(_column_format(_set_processes(s, it), it), it)
                              ) or cand.spec
        # A named probe beats a corpus hit that does not use it.
        top_ok = bool(out) and out[0].score >= MIN_SCORE
        if generated:
            named = (
                {
                    p.text
                    for s in named_syscalls
                    for ph in ("enter", "exit")
                    if (p := catalog.syscall_tracepoint(s, ph)) is not None
                }
                | {tp.probe for tp in named_tps}
                | {f"{kind}:{lib}:{fn}" for lib, fn in named_funcs for kind in ("uprobe", "uretprobe")}
            )
            corpus_uses_named = [c for c in out if c.fits and named & {p.text for p in c.spec.all_probes}]
            rest = [c for c in out if c not in corpus_uses_named]
            # ... unless the question only wants a count and the example prints every event besides
            chatty = wanted == "count" and bool(corpus_uses_named) and bool(corpus_uses_named[0].spec.print)
            if corpus_uses_named and corpus_uses_named[0].score >= MIN_SCORE and not (
                chatty and not generated[0].spec.print and generated[0].spec.aggregates
            ):
                return corpus_uses_named + generated + rest
            return generated + corpus_uses_named + rest
        if not top_ok:
            if not out or index().known_terms(query) == 0:
                return []
            # weak evidence: accept only when at least two content words agree with the example
            if out[0].score < MIN_SCORE / 2:
                return []
        return out

    def _named_tools(self, it: Intent, catalog: Catalog) -> list[Candidate]:
        """Candidates from the worked examples of the classic tools the request names; a word written as a
        syscall ("the cachestat syscall", "cachestat()") names the call, not the tool."""
        from ..corpus import named_tools

        out: list[Candidate] = []
        for example in named_tools(it.text, _ordinary_word):
            if set(example.tool_names) & set(it.explicit_calls + it.syscall_words):
                continue
            for spec in [example.spec, *example.alternatives]:
                adapted = _safe(lambda s=spec: adapt(s, it, catalog, tool=True))
                if adapted is not None:
                    out.append(Candidate(adapted, f"corpus:{example.id}", float("inf")))
        return out

    def named_syscalls(self, it: Intent, catalog: Catalog) -> list[str]:
        """Syscalls the intent names: written as one ("chmod()", "chmod calls", "the chmod syscall"), or a word
        that can only be a syscall name ("fchownat", "openat")."""
        found: list[str] = []

        def add(name: str) -> None:
            name = name.removeprefix("sys_enter_").removeprefix("sys_exit_")
            if name not in found and catalog.syscall_tracepoint(name) is not None:
                found.append(name)

        for n in it.explicit_calls + it.names:
            add(n)
        for w in it.words:
            w = w.removeprefix("sys_enter_").removeprefix("sys_exit_")
            if len(w) > 3 and w not in AMBIGUOUS_SYSCALLS and w not in COMMON_WORDS:
                add(w)
        # a word that is also plain English names the call when it is the means: "signals sent by kill"
        for m in re.finditer(r"\b(?:by|with|via|using|through)\s+(?:the\s+)?([a-z_][a-z0-9_]*)\b", it.text):
            if m.group(1) in MEANS_SYSCALLS:
                add(m.group(1))
        # ... and "reads" and "writes" as nouns: "count reads by process", "histogram of writes"
        for m in re.finditer(r"\b(?:count|counts|counting|trace|show|log|number of|histogram of|distribution of|"
                             r"sizes? of|how many|total|all|slow|large|small|big|failed)\s+(?:the\s+|all\s+)?"
                             r"(read|write)s(?:\s+(?:and|or|&)\s+(read|write)s)?\b", it.text):
            for name in m.groups():
                if name:
                    add(name)
        # ... and the object of "call": "who calls brk the most", "programs calling sync"
        for m in re.finditer(r"\bcall(?:s|ed|ing)?\s+(?:the\s+)?([a-z_][a-z0-9_]*)\b", it.text):
            if m.group(1) not in COMMON_WORDS:
                add(m.group(1))
        # ... and an amount read or written: "how much data does each process read"
        if re.search(r"\b(?:how much|bytes|data|amount)\b", it.text) and not it.has("disk", "disks", "block"):
            m = re.search(r"\b(read|write|written|wrote|reads|writes|reading|writing)\b", it.text)
            if m:
                add("read" if m.group(1).startswith("read") else "write")
        # ... and how they went: "connect errors", "failed accepts", "read failures"
        means = "|".join(n for n in MEANS_SYSCALLS if n != "open")  # failed opens: the corpus has openat's
        for m in re.finditer(rf"\b({means})\s+(?:attempts?|errors?|failures?)\b"
                             rf"|\b(?:failed|failing|unsuccessful)\s+({means})(?:s|es)?\b", it.text):
            add(m.group(1) or m.group(2))
        # ... and the objects some calls make, when their making is asked about: "pipe creation", "new sockets"
        for m in re.finditer(r"\b(pipe|socket)s?\s+(?:creation|created|being created|made|opened)\b"
                             r"|\b(?:new|creat\w*|make|makes|making|open\w*)\s+(?:a\s+|an\s+|new\s+)?(pipe|socket)s?\b",
                             it.text):
            add(m.group(1) or m.group(2))
        # ... and when its time is asked for: "write latency", "how long open takes"
        for m in re.finditer(r"\b([a-z_][a-z0-9_]*)\s+(?:latenc(?:y|ies)|durations?|call times?)\b"
                             r"|\bhow long (?:does |do |did )?(?:each |an? |the )?([a-z_][a-z0-9_]*)\s+"
                             r"(?:calls?\s+)?takes?\b", it.text):
            if (m.group(1) or m.group(2)) in MEANS_SYSCALLS:
                add(m.group(1) or m.group(2))
        return found

    def _check_named_syscalls(self, it: Intent, catalog: Catalog) -> None:
        """'trace the frobnicate syscall' on a kernel without it: say so, with the nearest names."""
        import difflib

        for name in it.syscall_words:
            if catalog.syscall_tracepoint(name) is None:
                near = difflib.get_close_matches(name, catalog.syscalls(), n=4, cutoff=0.6)
                raise UnmappableIntent(
                    f"this kernel has no traceable syscall named {name!r}",
                    [f"trace the {n} syscall" for n in near] or self.suggestions(it.text),
                )

    def named_functions(self, it: Intent, catalog: Catalog) -> list[tuple[str, str]]:
        """(library, function) pairs the intent names: "malloc()", "SSL_write calls", "getaddrinfo in libc"."""
        from ..kernel.uprobes import function_symbols

        if not catalog.features.uprobes:
            return []
        libs = [it.library] if it.library else []
        libs += [lib for lib in ("libc", "libssl", "libcrypto", "bash") if lib not in libs]
        wanted = list(dict.fromkeys(it.explicit_calls + it.names + [w for w in it.words if w in KNOWN_FUNCTIONS]))
        out: list[tuple[str, str]] = []
        raw_words = {w: w for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", it.raw)}
        for name in wanted:
            original = next((w for w in raw_words if w.lower() == name), name)
            if _ordinary_word(name) and name not in KNOWN_FUNCTIONS:
                continue
            for lib in libs:
                path = catalog.uprobe_path(lib)
                if path and original in function_symbols(path):
                    out.append((lib, original))
                    break
        return out

    def named_tracepoints(self, it: Intent, catalog: Catalog) -> list[Tracepoint]:
        out: list[Tracepoint] = []
        cats = catalog.tracepoints.categories()
        for w in it.words:
            cat, _, name = w.partition(":")
            if name and cat in cats and name in cats[cat]:
                tp = catalog.tracepoints.get(cat, name)
            elif not w.startswith("sys_") and ("_" in w or (len(w) >= 5 and not _ordinary_word(w)
                                                            and catalog.syscall_tracepoint(w) is None)):
                tp = next(
                    (catalog.tracepoints.get(c, w) for c, ns in cats.items() if w in ns and c != "syscalls"), None
                )
            else:
                tp = None
            if tp is not None and tp not in out:
                out.append(tp)
        return out

    def suggestions(self, intent: str, limit: int = 4) -> list[str]:
        hits = index().search(intent, limit=limit)
        if len(hits) < limit:
            from ..corpus import load

            extra = [
                e
                for e in load()
                if e.id in ("opensnoop", "execsnoop", "syscount", "runqlat", "tcpconnect", "biolatency", "profile")
            ]
            hits += [Hit(e, 0.0) for e in extra if e not in [h.example for h in hits]]
        return [
            next((p for p in h.example.paraphrases if len(p.split()) >= 3), h.example.title.lower())
            for h in hits[:limit]
        ]


def _most_placed_first(ranked: list[Candidate], words: list[str], catalog: Catalog,
                       among: int = 4) -> list[Candidate]:
    """Of the best few candidates of the asked shape that run here, the one that accounts for more of the
    request's words goes first ("bytes sent over tcp": the example about TCP and UDP before the one about UDP
    alone)."""
    if len(ranked) < 2 or not words or ranked[0].source.startswith(("syscall:", "uprobe:", "tracepoint:")):
        return ranked
    top = ranked[:among]
    counts = [-1 if _cannot_run_here(c.source, catalog) else _placed_weight(words, c.spec, c.source)[0]
              for c in top]
    best = max(range(len(top)), key=lambda i: (counts[i], -i))
    if best == 0 or counts[best] <= counts[0] or (top[0].fits and not top[best].fits):
        return ranked
    return [top[best], *[c for i, c in enumerate(ranked) if i != best]]


def _runnable_first(ranked: list[Candidate], words: list[str], catalog: Catalog) -> list[Candidate]:
    """An example that only a missing feature could run (a needs_only entry) yields the first place to the next
    example that runs here and says as many of the request's words; with none, it stays first (and the plan
    is refused with what it needs, rather than answered with something that does less)."""
    if not ranked or not _cannot_run_here(ranked[0].source, catalog):
        return ranked
    need = _placed_weight(words, ranked[0].spec, ranked[0].source)[0]
    for i, cand in enumerate(ranked[1:], 1):
        if cand.source.startswith("corpus:") and not _cannot_run_here(cand.source, catalog) \
                and _placed_weight(words, cand.spec, cand.source)[0] >= need:
            return [cand, *ranked[:i], *ranked[i + 1:]]
    return ranked


def _cannot_run_here(source: str, catalog: Catalog) -> bool:
    """The candidate is a worked example whose program is an original that needs what this machine lacks."""
    from . import understand

    return understand.unmet_example_need(source, catalog) is not None


def _placed_weight(words: list[str], spec: ProgramSpec, source: str) -> tuple[int, float]:
    """How much of the request a candidate's probes, fields and example account for: how many of its content
    words they place, then how specific those are (a word the corpus rarely uses says more; one it never uses
    counts as the commonest one)."""
    from . import lexicon, understand
    from .retrieval import index, stem

    vocab = understand.vocabulary(spec, understand.example_text(source), groups=False)
    lex = lexicon.load()
    ix = index()
    placed = [w for w in words if understand._placed(w, vocab, lex)]
    return len(placed), sum(ix.idf.get(stem(w), ix.min_idf) for w in placed)


def _set_processes(spec: ProgramSpec, it: Intent) -> ProgramSpec:
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


def _without_process(it: Intent) -> str:
    text = it.text
    for name in [it.comm or "", *it.comms, *it.not_comms]:
        if name:
            text = re.sub(rf"(?<![\w-]){re.escape(name.lower())}\S*", " ", text)
    if it.pid:
        text = re.sub(rf"\b{it.pid}\b", " ", text)
    for said in (it.threshold_text, it.duration_text, it.latency_text):  # which events, how long
        if said:
            text = text.replace(said, " ")
    # "by process name" groups by process: the name is not a topic (syscalls by name, irqs by name)
    text = re.sub(r"\b(process|program|command|task|thread)(?:'s)?\s+names?\b", r"\1", text)
    # ... and "by file name" says how to count, not what: "count execs by file name" is about execs, not opens
    rest = _any_group_field().sub(" ", text)
    return rest if rest.strip() else text


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


def _about_one_call(hit: Hit) -> bool:
    """An example whose probes are all particular syscalls' tracepoints (not raw_syscalls: every call)."""
    return all(p.is_syscall_enter or p.is_syscall_exit for p in hit.example.spec.all_probes)


def _errors_only_example(spec: ProgramSpec) -> bool:
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


def _parse(intent: str) -> Intent:
    text = intent.strip()
    if not text:
        raise UsageError("the intent is empty", 'say what to trace, e.g. gpttrace "trace files opened by nginx"')
    if len(text) > intent_mod.MAX_INTENT:
        raise UsageError(
            f"the intent is {len(text)} characters long; the limit is {intent_mod.MAX_INTENT}",
            "say what to trace in a sentence or two",
        )
    if any(_control(c) for c in text):  # C0, DEL and C1 controls are no part of a request
        text = "".join(" " if _control(c) else c for c in text)
    return intent_mod.parse(text)


def _control(c: str) -> bool:
    return c not in "\t\n" and (ord(c) < 32 or 0x7F <= ord(c) <= 0x9F)


def _quote(text: str) -> str:
    short = " ".join(text.split())[:60]
    return repr(short + ("..." if len(text) > 60 else ""))


def _safe(make: Any) -> ProgramSpec | None:
    try:
        return make()
    except (ValueError, KeyError, TypeError):
        return None


# -- adapting a corpus spec to an intent ---------------------------------------------------------------
def adapt(spec: ProgramSpec, it: Intent, catalog: Catalog, tool: bool = False) -> ProgramSpec:
    """The example adapted to the request; ``tool``: the request named the classic tool the example covers, whose
    columns (the result included) are what was asked for."""
    spec = edits.fit_to_kernel(spec, catalog)
    # An example's own process filter is an illustration: the intent's (or none) replaces it.
    spec = edits.clear_process(spec)
    spec = _set_processes(spec, it)
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
    keys = _field_keys(spec.probes, it, catalog) + _group_keys(it)
    keys = keys[:4]
    if keys and keys[0]["expr"].startswith("args.") and not any(k["expr"] == "comm" for k in keys):
        # the title said whom the example counted by: "File opens by process" becomes "File opens by path"
        by = "by " + FIELD_NAMES.get(keys[0]["expr"].removeprefix("args."), keys[0]["label"].lower())
        spec = _retitle_by(spec, by)
    all_hist = bool(spec.aggregates) and all(a.func in ("hist", "lhist") for a in spec.aggregates)
    if wants_hist and not all_hist:
        spec = edits.to_histogram(spec, keys=keys if it.group_by or _groups_by_field(it) else [])
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
    stat = _stat_asked(it)
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
    spec = _latency_threshold(spec, it)
    if spec.print and spec.start is None:
        spec = _asked_columns(spec, it, catalog)
    return _column_format(spec, it)


def _column_format(spec: ProgramSpec, it: Intent) -> ProgramSpec:
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


def _group_keys(it: Intent) -> list[dict[str, Any]]:
    """Map keys for the groupings the question names that are no probe field: by process, pid, cpu..."""
    return [k for g in it.group_by if g in GROUP_KEYS for k in GROUP_KEYS[g]]


def _stat_asked(it: Intent) -> str | None:
    """"average", "maximum", "minimum": the one number asked for, if any."""
    return next((f for f in ("avg", "max", "min") if f in it.actions), None)


def _retitle_by(spec: ProgramSpec, by: str) -> ProgramSpec:
    """The title, saying ``by`` where it said whom the example counted by ("File opens by process")."""
    return edits.retitle(spec, re.sub(r"\bby (?:process(?: name)?|comm|program)\b", by, spec.title))


def _counts_events(spec: ProgramSpec, it: Intent, keys: list[dict[str, Any]] | None = None) -> bool:
    """Is an example that prints each event asked for as a count instead ("count writes", "opens by file")?"""
    if keys is None:
        keys = [{}] if it.group_by or _groups_by_field(it) else []
    return (bool(spec.print) and not spec.aggregates and ("count" in it.actions or bool(keys))
            and not it.has("trace", "show", "print", "watch", "snoop", "log", "list"))


def _counts_instead(spec: ProgramSpec, it: Intent) -> bool:
    """An example that sums or histograms a value, asked for how many times ("count softirqs by vector")?"""
    return (intent_shape(it) == "count" and it.has("count", "counts", "counting", "how many", "number of", "how often",
                                                  "tally", "frequency of")
            and bool(spec.aggregates) and not spec.print
            and all(a.func not in ("count", "stats") for a in spec.aggregates)
            and not it.has("time", "bytes", "how long", "total", "sum", "amount", "latency", "size", "sizes")
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


def _field_column(probes: list[Any], fields: tuple[str, ...], catalog: Catalog) -> dict[str, Any] | None:
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
def _any_group_field() -> re.Pattern[str]:
    """"by <any of GROUP_FIELDS>" in one pattern: most questions have none, and one pattern is compiled once."""
    return re.compile(_group_field_phrase("|".join(f"(?:{words})" for words in GROUP_FIELDS)))


def _groups_by_field(it: Intent) -> bool:
    return _any_group_field().search(it.text) is not None


def _field_keys(probes: list[Any], it: Intent, catalog: Catalog) -> list[dict[str, Any]]:
    """Map keys for "by <field>" when every one of ``probes`` has that field: "count opens by file name" keys
    the count by args.filename. A pair's main probes (the exits) rarely hold such fields: none then."""
    keys: list[dict[str, Any]] = []
    if not _groups_by_field(it):
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


def _latency_threshold(spec: ProgramSpec, it: Intent) -> ProgramSpec:
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


# -- programs built from the catalog ---------------------------------------------------------------------
def _names_probe(syscalls: list[str], functions: list[str], catalog: Catalog) -> Callable[[ProbeRef], bool | None]:
    """Does the intent name this probe (True), a sibling of it (False), or neither sort (None)? A named
    syscall also names its family (open: openat, openat2), whose members an example may use instead."""
    calls = {m for n in syscalls for m in syscall_family(n, catalog)}

    def named(probe: ProbeRef) -> bool | None:
        if calls and probe.kind == "tracepoint" and probe.category == "syscalls":
            return (probe.name or "").removeprefix("sys_enter_").removeprefix("sys_exit_") in calls
        if functions and probe.kind in ("uprobe", "uretprobe"):
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
    keys = _group_keys(it) or GROUP_KEYS["comm"]
    wants_latency = "latency" in it.actions
    size_field = next((f.name for f in common if f.name in ("count", "len", "size", "length")), None)
    base: dict[str, Any] = {
        "rationale": f"the syscalls:sys_enter_{family[0]} tracepoint fires on every {family[0]}() call"
    }
    if wants_latency:
        unit = it.unit or "us"
        value = "delta" if unit == "ns" else f"delta / {edits.UNIT_FACTORS[unit]}"
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
    stat = _stat_asked(it)
    if "hist" in it.actions or "sum" in it.actions or stat:
        use_ret = bool(exit_) and (
            it.has("returned", "actual", "result", "return") or not size_field or "read" in label
        )
        value = "args.ret" if use_ret else f"args.{size_field}"
        probes = exit_ if use_ret else enter
        cond = "args.ret >= 0" if use_ret else None
        if "hist" in it.actions:
            aggs = [{"func": "hist", "value": value, "unit": "bytes" if size_field else None, "filter": cond}]
        elif stat and "sum" not in it.actions:
            by = _group_keys(it)
            aggs = [{"func": stat, "value": value, "keys": by, "unit": "bytes" if size_field else None,
                     "filter": cond}]
        else:
            aggs = [
                {"func": "sum", "value": value, "keys": keys, "unit": "bytes" if size_field else None, "filter": cond}
            ]
        return ProgramSpec.model_validate({**base, "title": f"{label}() sizes", "probes": probes, "aggregates": aggs})
    failed = it.errors_only and bool(exit_)
    counted = exit_ if failed else enter  # a failure shows at the exit, in its result
    field_keys = _field_keys(counted, it, catalog)
    if (("count" in it.actions or it.group_by or field_keys)
            and not it.has("trace", "show", "print", "watch", "log", "snoop")):
        keys = (field_keys + _group_keys(it))[:4] or keys
        by = FIELD_NAMES.get(keys[0]["expr"].removeprefix("args."), keys[0]["expr"].removeprefix("args."))
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


def _field_columns(fields: Any, limit: int) -> list[dict[str, Any]]:
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
    keys = _group_keys(it)
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


KNOWN_FUNCTIONS = {
    "malloc",
    "free",
    "calloc",
    "realloc",
    "getaddrinfo",
    "gethostbyname",
    "ssl_write",
    "ssl_read",
    "readline",
    "fopen",
    "mmap",
    "pthread_create",
    "pthread_mutex_lock",
    "strlen",
    "memcpy",
    "posix_memalign",
    "aligned_alloc",
    "dlopen",
}


def function_spec(lib: str, func: str, it: Intent, catalog: Catalog) -> ProgramSpec:
    """A program for a named user-space function: count its calls, time them, or print each call."""
    keys = _group_keys(it) or GROUP_KEYS["comm"]
    base: dict[str, Any] = {"rationale": f"a uprobe on {func}() in {lib} fires on every call, in every process"}
    entry, ret = f"uprobe:{lib}:{func}", f"uretprobe:{lib}:{func}"
    if "latency" in it.actions:
        unit = it.unit or "us"
        value = "delta" if unit == "ns" else f"delta / {edits.UNIT_FACTORS[unit]}"
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


def syscall_names_key() -> dict[str, Any]:
    return {"expr": "args.id", "label": "SYSCALL", "names": number_to_name()}
