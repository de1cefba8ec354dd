"""The offline planner: intent parsing + retrieval over the examples corpus + the live probe catalog.

No network and no model. It ranks candidate specs for an intent:
  1. the closest corpus examples (BM25), adapted to the intent (process filter, aggregation, unit, rate),
  2. programs built from the catalog for a syscall or tracepoint the intent names ("trace the fchownat
     syscall", "count sched:sched_wakeup by cpu"),
and keeps the ranked list so that a load failure moves on to the next candidate (or drops the field the
kernel rejected) instead of giving up.

The pieces: what a request names outright (named.py), an example adapted to a request (adapt.py), programs
built from the catalog (catalog_programs.py, catalog_match.py), the shape of an answer (shapes.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ..errors import GpttraceError, UnmappableIntent
from ..kernel.catalog import Catalog
from ..run.failure import LoadFailure
from ..spec import ProgramSpec
from . import edits, named
from . import intent as intent_mod
from .adapt import adapt, any_group_field, column_format, groups_by_field, latency_threshold, set_processes
from .base import PlanContext, PlannerBase
from .catalog_programs import FUNCTION_PROBES, function_spec, names_probe, syscall_spec, tracepoint_spec
from .intent import Intent
from .intent_words import ordinary_word
from .retrieval import Hit, index
from .shapes import errors_only_example, intent_shape, spec_shapes

if TYPE_CHECKING:
    from .catalog_match import Match

MIN_SCORE = 2.0  # below this a corpus hit is not trusted on its own


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

        return refine(request, spec, ctx.catalog)

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
                spec = _safe(partial(syscall_spec, [call], it, catalog))
                source = f"syscall:{call}"
            else:
                spec = _safe(partial(_match_spec, m, it))
                source = f"tracepoint:{tp.category}:{tp.name}"
            # (a process name the spec refuses, e.g. one with control characters, leaves the candidate out)
            spec = _safe(partial(_fitted, spec, it)) if spec is not None else None
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
        named_syscalls = named.syscalls(it, catalog)
        if topic == {"syscall"} and not named_syscalls:
            # system calls in general ("how many system calls does each program make"): not an example about
            # one call (bpf(), connect()) that the question shares only the word "syscall" with
            hits = [h for h in found if not _about_one_call(h)][:10] or hits
        named_tps = named.tracepoints(it, catalog)
        self._named = bool(named_syscalls or named_tps)
        wanted = intent_shape(it)
        by_field = groups_by_field(it)
        for hit in hits:
            # An example already of the asked-for shape (events, count, histogram...) beats one that would
            # have to be converted.
            shapes = spec_shapes(hit.example.spec)
            # "which process is using the network": a ranking, that a sum of bytes answers as well as a count
            fits = wanted in shapes or (wanted == "count" and "sum" in shapes
                                        and not it.has("count", "counts", "how many", "number of", "how often"))
            factor = 1.25 if fits else 0.85
            if errors_only_example(hit.example.spec) != it.errors_only:
                factor *= 0.7
                fits = False
            own = hit.example.spec.filter
            if (own.comm or own.pid) and not (it.comm or it.pid):
                factor *= 0.85  # an example about one program, asked about all of them: its point is lost
            for spec in [hit.example.spec, *hit.example.alternatives]:
                adapted = _safe(partial(adapt, spec, it, catalog))
                if adapted is not None:
                    # "larger than 1 MB" that the example has no size to compare with is a question it misses,
                    # and so is "by file descriptor" when its probes have no such field to count by
                    missed = it.size_bound is not None and f" {it.size_bound[0]} {it.size_bound[1]}" not in (
                        adapted.filter.expr or "")
                    missed = missed or (by_field and not any(k.expr.startswith("args.")
                                                             for a in adapted.aggregates for k in a.keys))
                    score = hit.score * factor * (0.7 if missed else 1.0)
                    out.append(Candidate(adapted, f"corpus:{hit.example.id}", score, fits and not missed))
        named_funcs = [] if named_syscalls else named.functions(it, catalog)
        self._named = self._named or bool(named_funcs)
        if named_syscalls or named_funcs:
            is_named = names_probe(named_syscalls, [fn for _, fn in named_funcs], catalog)
            for cand in out:
                cand.spec = _safe(partial(edits.keep_named, cand.spec, is_named)) or cand.spec
                if named_syscalls and any(is_named(p) for p in cand.spec.all_probes):
                    cand.spec = (_safe(partial(edits.add_named_syscalls, cand.spec, named_syscalls, catalog))
                                 or cand.spec)
        out.sort(key=lambda c: -c.score)
        generated: list[Candidate] = []
        if named_syscalls:
            made = _safe(partial(syscall_spec, named_syscalls, it, catalog))
            if made is not None:
                generated.append(Candidate(made, f"syscall:{named_syscalls[0]}", 0.0))
        for tp in named_tps[:1]:
            made = _safe(partial(tracepoint_spec, [tp], it, catalog))
            if made is not None:
                generated.append(Candidate(made, f"tracepoint:{tp.category}:{tp.name}", 0.0))
        for lib, func in named_funcs[:1]:
            made = _safe(partial(function_spec, lib, func, it, catalog))
            if made is not None:
                generated.append(Candidate(made, f"uprobe:{lib}:{func}", 0.0))
        for cand in generated:
            cand.spec = _safe(partial(_fitted, cand.spec, it)) or cand.spec
        # A named probe beats a corpus hit that does not use it.
        top_ok = bool(out) and out[0].score >= MIN_SCORE
        if generated:
            named_probes = (
                {
                    p.text
                    for s in named_syscalls
                    for ph in ("enter", "exit")
                    if (p := catalog.syscall_tracepoint(s, ph)) is not None
                }
                | {tp.probe for tp in named_tps}
                | {f"{kind}:{lib}:{fn}" for lib, fn in named_funcs for kind in FUNCTION_PROBES}
            )
            corpus_uses_named = [c for c in out if c.fits and named_probes & {p.text for p in c.spec.all_probes}]
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
        for example in named_tools(it.text, ordinary_word):
            if set(example.tool_names) & set(it.explicit_calls + it.syscall_words):
                continue
            for spec in [example.spec, *example.alternatives]:
                adapted = _safe(partial(adapt, spec, it, catalog, tool=True))
                if adapted is not None:
                    out.append(Candidate(adapted, f"corpus:{example.id}", float("inf")))
        return out

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
    placed = [w for w in words if understand.placed(w, vocab, lex)]
    return len(placed), sum(ix.idf.get(stem(w), ix.min_idf) for w in placed)


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
    rest = any_group_field().sub(" ", text)
    return rest if rest.strip() else text


def _about_one_call(hit: Hit) -> bool:
    """An example whose probes are all particular syscalls' tracepoints (not raw_syscalls: every call)."""
    return all(p.is_syscall_enter or p.is_syscall_exit for p in hit.example.spec.all_probes)


def _fitted(spec: ProgramSpec, it: Intent) -> ProgramSpec:
    """A program built for a named call or tracepoint, with the request's processes, column format and latency
    bound."""
    return latency_threshold(column_format(set_processes(spec, it), it), it)


def _match_spec(m: Match, it: Intent) -> ProgramSpec:
    from . import catalog_match

    return ProgramSpec.model_validate(catalog_match.spec_for(m, it))


def _parse(intent: str) -> Intent:
    text = intent_mod.checked_text(intent)
    if any(_control(c) for c in text):  # C0, DEL and C1 controls are no part of a request
        text = "".join(" " if _control(c) else c for c in text)
    return intent_mod.parse(text)


def _control(c: str) -> bool:
    return c not in "\t\n" and (ord(c) < 32 or 0x7F <= ord(c) <= 0x9F)


def _quote(text: str) -> str:
    short = " ".join(text.split())[:60]
    return repr(short + ("..." if len(text) > 60 else ""))


def _safe(make: Callable[[], ProgramSpec]) -> ProgramSpec | None:
    """What ``make`` builds, or None when the candidate does not fit the request: a spec the grammar refuses
    (pydantic's ValidationError), an edit that does not apply (ValueError), or one the package refuses. Any
    other error is a bug, and is raised."""
    try:
        return make()
    except (ValidationError, ValueError, GpttraceError):
        return None
