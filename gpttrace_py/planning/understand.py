"""What a request asks for, checked against what a plan does.

Three checks, for every planner (offline or LLM):
  * before planning, ``check_request``: a request to change the system (kill, block, drop...) is refused
    without --unsafe and never turned into a trace; a request for something this machine lacks (hardware
    counters, kprobes, a subsystem whose tracepoints are absent) is refused with what is missing;
  * after planning, ``account``: every content word of the request is placed (used by a slot, or by the
    program's probes, fields and worked example) or reported; every slot the request filled (a process, a
    path, a unit, a histogram...) is checked against the program; what the program cannot honour is said;
  * ``describe``: the one-line ``understood:`` record of what the program does, read off the spec itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import MissingFeature, UnmappableIntent
from . import lexicon as lexicon_mod
from .intent import Intent, has_phrase

if TYPE_CHECKING:
    from ..kernel.catalog import Catalog
    from ..spec import ProgramSpec

_TOKEN = re.compile(r"[a-z0-9][a-z0-9_'+-]*")


@dataclass
class Accounting:
    """What the plan did with the request: what it could not honour, words it could not place, notes."""

    not_honoured: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    placed: int = 0  # how many of the request's content words the program accounts for
    notes: list[str] = field(default_factory=list)


# -- before planning ---------------------------------------------------------------------------------------
def system_action(text: str) -> tuple[str, str] | None:
    """(verb, what it would need) when the request asks to change the system rather than observe it: an
    action verb in command position ("kill processes that...", "block connections to port 23", "trace execs
    and kill them"). "who kills processes" and "count dropped packets" are questions, not actions."""
    lex = lexicon_mod.load("en")
    low = " ".join(text.lower().replace("\u2019", "'").split())
    for clause in re.split(r"[.;!?]|,\s*(?:and\s+|then\s+)?|\s(?:and then|then|and)\s", low):
        words = clause.strip().split()
        while words:  # "please", "can you", "i want to": not the verb
            rest = " ".join(words)
            prefix = next((p for p in lex.imperative_prefix if rest == p or rest.startswith(p + " ")), None)
            if prefix is None:
                break
            words = words[len(prefix.split()):]
        if not words:
            continue
        verb = words[0]
        base = verb[:-1] if verb.endswith("s") and verb[:-1] in lex.system_actions else verb
        if base not in lex.system_actions or verb != base:  # "kills ..." at a clause start is a question's noun
            continue
        obj = words[1] if len(words) > 1 else ""
        if base in lex.action_objects_needed and (obj not in lex.action_objects
                                                  or obj in lex.action_objects_not.get(base, ())):
            continue
        return base, lex.system_actions[base]
    return None


def check_request(text: str, catalog: Catalog, unsafe: bool, lang: str = "en", can_act: bool = False) -> None:
    """Refuse, before any planning, what gpttrace must not or cannot do here (exit 2 with the reason, in the
    request's language). ``text`` is the request as the extractors read it (English)."""
    say = lexicon_mod.load(lang).say
    action = system_action(text)
    if action is not None:
        verb, needs = action
        observe = _observing_version(text, verb)
        suggestions = [observe] if observe else []
        shown = lexicon_mod.load(lang).verbs.get(verb, verb)
        changes = needs.startswith(("sending signals", "writing", "running", "overriding", "error injection"))
        if changes and not unsafe:
            raise UnmappableIntent(say("action_signal", verb=shown, needs=needs), suggestions)
        if not changes:
            raise UnmappableIntent(say("action_enforce", verb=shown, needs=needs), suggestions)
        if not can_act:  # the offline planner writes tracing programs only: it would trace, not act
            raise UnmappableIntent(say("action_offline", verb=shown), suggestions)
        # --unsafe and a planner that writes such programs (a model): safety.py still checks what it wrote
    missing = missing_need(text, catalog, lang)
    if missing is not None:
        raise MissingFeature(missing, kprobe_program(text) if not catalog.features.kprobes else None)


def kprobe_program(text: str) -> ProgramSpec | None:
    """For "the kernel function X" on a kernel without kprobes: the program a kernel with them would run (a count
    by process, the time each call takes, or each call), to show and save; None when no function is named."""
    from ..spec import ProgramSpec
    from .intent import parse

    m = (re.search(r"\b(?:function|functions|kprobe|kretprobe|symbol|routine)\s+(?:named\s+|called\s+)?"
                   r"([a-z_][a-z0-9_]{2,63})\b", text, re.IGNORECASE)
         or re.search(r"\b([a-z_][a-z0-9_]{2,63})\s*\(\)", text))
    if m is None:
        return None
    fn = m.group(1)
    it = parse(text)
    base = {"rationale": f"a kprobe fires on every call of the kernel function {fn}() (needs CONFIG_KPROBES)"}
    if "latency" in it.actions:
        return ProgramSpec.model_validate({**base, "title": f"{fn}() latency (us)",
                                           "start": {"probes": [f"kprobe:{fn}"], "key": ["tid"]},
                                           "probes": [f"kretprobe:{fn}"],
                                           "aggregates": [{"func": "hist", "value": "delta / 1000", "unit": "us"}]})
    if "count" in it.actions or it.group_by:
        return ProgramSpec.model_validate({**base, "title": f"{fn}() calls by process", "probes": [f"kprobe:{fn}"],
                                           "aggregates": [{"func": "count",
                                                           "keys": [{"expr": "comm", "label": "COMM"}]}]})
    return ProgramSpec.model_validate({**base, "title": f"{fn}() calls", "probes": [f"kprobe:{fn}"],
                                       "print": [{"expr": "pid", "label": "PID"}, {"expr": "comm", "label": "COMM"}]})


def missing_need(text: str, catalog: Catalog, lang: str = "en") -> str | None:
    """Why this machine cannot serve the request (hardware counters, kprobes, a subsystem's tracepoints), or
    None when nothing the request names is missing."""
    lex = lexicon_mod.load("en")
    say = lexicon_mod.load(lang).say
    low = " ".join(text.lower().split())
    for need in lex.needs:
        said = next((p for p in need.phrases if has_phrase(low, p)
                     and not any(has_phrase(low, f"{w} {p}") for w in need.not_after)), None)
        if said is None:
            continue
        if need.feature.startswith("catalog:"):  # a tracepoint category: does this kernel have it?
            have = need.feature.removeprefix("catalog:") in catalog.tracepoints.categories()
        else:
            have = getattr(catalog.features, need.feature, True)
        if have is None:  # not probed yet (fentry, LSM): ask the kernel now
            from ..kernel.features import probe_loadable

            have = getattr(probe_loadable(catalog.features), need.feature, False)
        if not have:
            return say("needs_missing", said=said, what=need.what, fix=need.fix)
    categories = set(catalog.tracepoints.categories())
    for word in _words(low):
        sub = lex.subsystems.get(word)
        if sub is not None and not categories & set(sub.categories):
            return say("subsystem_missing", what=sub.what, categories=", ".join(sub.categories))
    return None


def unmet_example_need(source: str, catalog: Catalog) -> str | None:
    """Why a plan taken from a needs_only worked example (``corpus:<id>``) cannot run here, or None."""
    example = _example(source)
    if example is None or example.need is None:
        return None
    from ..corpus import unmet_need

    why = unmet_need(example.need, catalog)
    if why is None:
        return None
    name = "/".join(example.tool_names) or example.id
    return (f"{name} ({example.title}) needs {example.need}, and {why}; there is no substitute that runs here "
            f"(its original method: {example.original.method if example.original else example.need})")


def substitute_note(source: str, request: str) -> str | None:
    """The label of a plan taken from a worked example that stands in for a classic tool, or None. An example
    with a purpose of its own (unlinksnoop stands in for filegone) is labelled when the request names the tool."""
    example = _example(source)
    if example is None or not example.substitute:
        return None
    from ..corpus import named_tools
    from .intent_words import ordinary_word

    if example.id not in example.tool_names and example not in named_tools(request, ordinary_word):
        return None
    return f"a substitute for {'/'.join(example.tool_names)}: {' '.join(example.substitute.split())}"


def _example(source: str) -> Any:
    if not source.startswith("corpus:"):
        return None
    from ..corpus import by_id

    return by_id(source.removeprefix("corpus:"))


def _observing_version(text: str, verb: str) -> str | None:
    """"kill processes that execute binaries from /tmp" → "trace processes that execute binaries from /tmp"."""
    m = re.search(rf"\b{re.escape(verb)}s?\b\s*(.*)", text, re.IGNORECASE)
    rest = m.group(1).strip() if m else ""
    rest = re.sub(r"^(?:all|any|every)\s+", "", rest, flags=re.IGNORECASE)
    return f"trace {rest}" if len(rest.split()) >= 2 else None


# -- after planning -----------------------------------------------------------------------------------------
def account(it: Intent, spec: ProgramSpec, catalog: Catalog, example_text: str = "", lang: str = "en",
            starting: tuple[str, ...] = ()) -> Accounting:
    """``it`` is read from the English of the request; ``lang`` is the language its messages are said in;
    ``starting`` names the programs gpttrace itself will start (-c), which need not be running yet."""
    """Check the plan against the request: slots it did not honour and content words it did not place."""
    acc = Accounting()
    acc.not_honoured = _slots_not_honoured(it, spec, catalog)
    vocab = vocabulary(spec, example_text)
    lex = lexicon_mod.load("en")
    for word in content_words(it):
        if placed(word, vocab, lex):
            acc.placed += 1
        else:
            acc.unplaced.append(word)
    names = it.comms or ([it.comm] if it.comm else [])
    idle = [n for n in names if n[:15] not in {s[:15] for s in starting} and not _running(n)]
    if idle:
        acc.notes.append(lexicon_mod.load(lang).say("idle_process", names=", ".join(idle)))
    return acc


def content_words(it: Intent) -> list[str]:
    """The words that say what to trace: the request less filler, shape words, numbers and what the slots
    took (process names, a path, a size bound...)."""
    from ..spec import units
    from .intent import NUMBER_WORDS
    from .intent_words import ACTIONS
    from .vocabulary import STOP_WORDS

    lex = lexicon_mod.load("en")
    text = it.text
    for taken in (it.path, it.threshold_text, it.duration_text, it.latency_text):
        if taken:
            text = text.replace(taken.lower(), " ")
    text = re.sub(r"[\"'`][^\"'`]{1,64}[\"'`]", " ", text)  # a quoted name
    slot_words = {n.lower() for n in [*(it.comms or []), *(it.not_comms or []), it.comm or ""] if n}
    # the words of the shape phrases the request says ("frequency of": a count; "frequency" alone is a topic)
    shape_words = {w for phrases in ACTIONS.values() for p in phrases if has_phrase(text, p) for w in p.split()}
    if it.not_comms:  # "except", "excluding": the exclusion slot took them
        slot_words |= {w for phrase in lex.negation for w in phrase.split()}
    if it.output_format:  # "in octal"
        slot_words |= {w for phrase in lex.formats[it.output_format] for w in phrase.split()}
    out: list[str] = []
    for word in _words(text):
        word = word.strip("'-+")
        bare = word.removesuffix("'s")
        if (not bare or bare in lex.filler or bare in STOP_WORDS or bare in shape_words or bare in units.TIME_WORD
                or bare in slot_words or bare.isdigit() or re.fullmatch(r"\d+\w{0,3}", bare) or bare in NUMBER_WORDS
                or (it.library and bare == it.library)):
            continue
        if bare not in out:
            out.append(bare)
    return out


def _words(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def placed(word: str, vocab: set[str], lex: lexicon_mod.Lexicon) -> bool:
    from .retrieval import stem
    from .vocabulary import SYNONYMS

    forms = {word, stem(word), *word.replace("-", "_").split("_")}
    forms |= {stem(p) for p in forms}
    if forms & vocab:
        return True
    for piece in (*lex.tracepoint_words.get(word, ()), *SYNONYMS.get(word, ())):
        if piece in vocab or stem(piece) in vocab or any(v.startswith(piece) for v in vocab if len(piece) >= 3):
            return True
        if "_" in piece and any(piece in v for v in vocab):  # "add_to_page_cache" in mm_filemap_add_to_page_cache
            return True
    # as names are matched in the catalog: a shared beginning ("allocation"/alloc), the end of a compound
    # ("merges"/backmerge), the word without its inflection ("added"/add)
    from .catalog_match import word_forms

    w = word_forms(word, lex.language)
    return any(w.closeness(v) for v in vocab)


def vocabulary(spec: ProgramSpec, example_text: str = "", groups: bool = True) -> set[str]:
    """The words a program accounts for: its probes, fields, labels and title, its worked example's words, and
    (``groups``) the grouping words of what it keys, prints or filters by."""
    words = _spec_vocabulary(spec) | _text_vocabulary(example_text)
    return words | _group_vocabulary(spec) if groups else words


def example_text(source: str) -> str:
    """The words of the worked example a plan was adapted from (``corpus:<id>``): title, id, tags, the tools it
    covers, paraphrases."""
    example = _example(source)
    if example is None:
        return ""
    return " ".join([example.title, example.id.replace("-", " "), *example.tags, *example.tool_names,
                     *example.paraphrases])


def _spec_vocabulary(spec: ProgramSpec) -> set[str]:
    parts = [spec.title, spec.rationale]
    parts += [p.text for p in spec.all_probes]
    parts += spec.expressions() + spec.start_expressions()
    parts += [f.label or "" for f in spec.print] + [a.title or "" for a in spec.aggregates]
    parts += [k.label or "" for a in spec.aggregates for k in a.keys]
    return _text_vocabulary(" ".join(parts))


def _group_vocabulary(spec: ProgramSpec) -> set[str]:
    """The words of the groupings the program keys, prints or filters by ("process" for comm, "cpu"...)."""
    from .intent_words import GROUP_WORDS

    used = " ".join(spec.expressions() + spec.start_expressions() + [spec.filter.comm or ""])
    used += " comm" if spec.filter.comm else ""
    used += " pid" if spec.filter.pid else ""
    names = {"comm": "comm", "pid": "pid", "tid": "tid", "cpu": "cpu", "uid": "uid", "stack": "stack",
             "file": "file", "port": "port", "device": "dev", "syscall": "id"}
    out: set[str] = set()
    for group, words in GROUP_WORDS.items():
        if re.search(rf"\b\w*{names.get(group, group)}\w*\b", used):
            out |= {w for phrase in words for w in phrase.split()}
    return out


def _text_vocabulary(text: str) -> set[str]:
    from .retrieval import stem

    out: set[str] = set()
    for w in re.findall(r"[a-z0-9]+(?:_[a-z0-9]+)*", text.lower()):
        out.add(w)
        out.add(stem(w))
        for piece in w.split("_"):
            out.add(piece)
            out.add(stem(piece))
    return out


def _slots_not_honoured(it: Intent, spec: ProgramSpec, catalog: Catalog) -> list[str]:
    """The request's filters, shapes and settings that the program does not carry out."""
    from .shapes import intent_shape, spec_shapes

    exprs = " ".join(spec.expressions() + spec.start_expressions())
    missed: list[str] = []
    names = it.comms or ([it.comm] if it.comm else [])
    for name in names:
        if spec.filter.comm != name and f'"{name}"' not in exprs:
            missed.append(f"only process {name}")
    for name in it.not_comms:
        if f'comm != "{name}"' not in exprs:
            missed.append(f"leaving out process {name}")
    if it.pid is not None and spec.filter.pid != it.pid and not re.search(rf"\bpid == {it.pid}\b", exprs):
        missed.append(f"only pid {it.pid}")
    if it.path and it.path.rstrip("/") not in exprs:
        missed.append(f"only {it.path}")
    if (it.protocol is not None and re.search(r"\bargs\.protocol\b", exprs) is None
            and _has_protocol_field(spec, catalog)):
        missed.append(f"only protocol {it.protocol}")
    if it.port is not None and not re.search(rf"\b{it.port}\b", exprs):
        missed.append(f"only port {it.port}")
    if it.size_bound is not None and str(it.size_bound[1]) not in exprs:
        missed.append(f"only sizes {it.size_bound[0]} {it.size_bound[1]} bytes")
    if it.latency_bound is not None and not re.search(rf"\bdelta\s*[<>]=?\s*{it.latency_bound[1]}\b", exprs):
        missed.append(f"only times {it.latency_bound[0]} {it.latency_bound[1] / 1e6:g} ms")
    if it.signal is not None and not re.search(rf"\b{it.signal}\b", exprs):
        missed.append(f"only signal {it.signal}")
    if it.errors_only and not _keeps_failures(spec):
        missed.append("only failures")
    if it.interval_s and spec.interval_s != it.interval_s:
        missed.append(f"every {it.interval_s} s")
    if it.top and not any(a.top == it.top for a in spec.aggregates):
        missed.append(f"top {it.top}")
    if it.unit and any("delta" in e for e in spec.expressions()) and not any(
            a.unit == it.unit for a in spec.aggregates) and not any(
            (f.label or "").lower().endswith(it.unit) for f in spec.print):
        missed.append(f"in {it.unit}")
    if it.output_format and not any(f.format == it.output_format for f in spec.print):
        missed.append(f"in {({'oct': 'octal', 'hex': 'hex', 'int': 'decimal'})[it.output_format]}")
    wanted = intent_shape(it)
    shapes = spec_shapes(spec)
    if wanted == "count" and "count" not in shapes and not any(a.func in ("count", "stats") for a in spec.aggregates):
        missed.append("a count")
    if wanted in ("hist", "latency") and wanted not in shapes and not (wanted == "hist" and "latency" in shapes):
        missed.append("as a histogram" if wanted == "hist" else "the time each one takes")
    return missed


def _has_protocol_field(spec: ProgramSpec, catalog: Catalog) -> bool:
    return any((tp := catalog.tracepoint(p)) is not None and tp.field("protocol") is not None for p in spec.probes)


def _keeps_failures(spec: ProgramSpec) -> bool:
    """Does the program keep only failed calls (a negative result, a non-zero error), or show the result so that
    failures can be told apart (an errno column or key)?"""
    conds = " ".join(filter(None, [spec.filter.expr, spec.start.filter.expr if spec.start else None,
                                   *[a.filter for a in spec.aggregates]]))
    if re.search(r"\b(?:ret|retval|res|error_code|error|err|errno)\b\s*(?:<\s*0|!=\s*0|<=\s*-)", conds):
        return True
    shown = [f.format for f in spec.print] + [k.format for a in spec.aggregates for k in a.keys]
    return "errno" in shown or any(e in ("args.ret", "retval") for e in
                                   [f.expr for f in spec.print] + [k.expr for a in spec.aggregates for k in a.keys])


def _running(name: str) -> bool:
    """Is a process with this comm running now (names are cut to 15 characters by the kernel)?"""
    want = name[:15]
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for pid in entries:
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
                if f.read().rstrip("\n") == want:
                    return True
        except OSError:
            continue
    return False


# -- what the program does, in one line ------------------------------------------------------------------------
def describe(spec: ProgramSpec, duration_s: float | None = None, lang: str = "en") -> str:
    say = lexicon_mod.load(lang).say
    parts = [_subject(spec, lang)]
    parts.append(_shape(spec, lang))
    parts += _filters(spec, lang)
    if spec.interval_s:
        parts.append(f"{say('every')} {spec.interval_s} {say('seconds')}")
    if duration_s:
        parts.append(f"{say('for')} {duration_s:g} {say('seconds')}")
    return " · ".join(p for p in parts if p)


def _subject(spec: ProgramSpec, lang: str = "en") -> str:
    say = lexicon_mod.load(lang).say
    calls: list[str] = []
    others: list[str] = []
    for p in spec.probes:
        if p.kind == "tracepoint" and p.category == "syscalls":
            name = (p.name or "").removeprefix("sys_enter_").removeprefix("sys_exit_")
            if name not in calls:
                calls.append(name)
        elif p.kind == "tracepoint" and p.category == "raw_syscalls":
            if say("every syscall") not in others:
                others.append(say("every syscall"))
        elif p.kind == "profile":
            others.append(f"{say('cpu samples')} ({p.text})")
        elif p.kind == "interval":
            continue
        else:
            others.append(p.text.removeprefix("tracepoint:"))
    what = []
    if calls:
        what.append(f"{', '.join(calls[:4])}{', ...' if len(calls) > 4 else ''} "
                    f"{say('syscalls') if len(calls) > 1 else say('syscall')}")
    what += others[:3] + (["..."] if len(others) > 3 else [])
    if lang != "en":  # the title is English: the probes say what is traced
        return "; ".join(what) or spec.title
    head = spec.title.rstrip(".")
    return f"{head} ({'; '.join(what)})" if what else head


def _shape(spec: ProgramSpec, lang: str = "en") -> str:
    say = lexicon_mod.load(lang).say
    out: list[str] = []
    if spec.print:
        cols = ", ".join((f.label or f.expr) for f in spec.print[:6])
        out.append(f"{say('each_event')} ({cols}{', ...' if len(spec.print) > 6 else ''})")
    for a in spec.aggregates:
        what = say({"count": "count", "sum": "sum", "avg": "average", "min": "minimum", "max": "maximum",
                    "hist": "histogram", "lhist": "linear histogram", "stats": "count/average/total"}[a.func])
        if a.value:
            what += f"{say('of')}{say('latency') if 'delta' in a.value else a.value}"
        if a.unit:
            what += f" ({a.unit})"
        if a.keys:
            what += f" {say('by')} " + ", ".join((k.label or k.expr).lower() for k in a.keys)
        if a.top:
            what += f", {say('top')} {a.top}"
        out.append(what)
    return " + ".join(out)


def _filters(spec: ProgramSpec, lang: str = "en") -> list[str]:
    say = lexicon_mod.load(lang).say
    out: list[str] = []
    for filt in [spec.filter] + ([spec.start.filter] if spec.start else []):
        if filt.comm:
            out.append(f"{say('process')} = {filt.comm}")
        if filt.pid:
            out.append(f"{say('pid')} = {filt.pid}")
        if filt.expr:
            out.append(_condition_words(filt.expr, lang))
    for a in spec.aggregates:
        if a.filter:
            out.append(_condition_words(a.filter, lang))
    return out


def _condition_words(expr: str, lang: str = "en") -> str:
    say = lexicon_mod.load(lang).say
    alts = re.findall(r'comm == "([^"]+)"', expr)
    nots = re.findall(r'comm != "([^"]+)"', expr)
    rest = re.sub(r'\(?\s*comm [!=]= "[^"]+"\s*\)?(?:\s*(?:\|\||&&)\s*)?', "", expr).strip(" ()&|")
    parts = []
    if len(alts) > 1:
        parts.append(f"{say('process')} ∈ {{" + ", ".join(alts) + "}")
    elif alts:
        parts.append(f"{say('process')} = {alts[0]}")
    if nots:
        parts.append(f"{say('process')} ∉ {{" + ", ".join(nots) + "}" if len(nots) > 1
                     else f"{say('process')} ≠ {nots[0]}")
    if rest:
        parts.append(f"{say('where')} {rest}")
    return " · ".join(parts)


def known_word(word: str) -> bool:
    """Does any of gpttrace's vocabularies know this word (the corpus, everyday English it reads, the lexicon,
    tracepoint names)? An unknown word that the plan does not place is likely the very subject asked about."""
    from .retrieval import index, stem
    from .vocabulary import COMMON_WORDS

    lex = lexicon_mod.load("en")
    return (stem(word) in index().idf or word in COMMON_WORDS or word in lex.filler
            or word in lex.tracepoint_words or word in lex.subsystems)
