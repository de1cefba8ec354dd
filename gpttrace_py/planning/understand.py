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

from ..errors import UnmappableIntent
from . import lexicon as lexicon_mod
from .intent import Intent, _has_phrase

if TYPE_CHECKING:
    from ..kernel.catalog import Catalog
    from ..spec import ProgramSpec

_TOKEN = re.compile(r"[a-z0-9][a-z0-9_'+-]*")


@dataclass
class Accounting:
    """What the plan did with the request: what it could not honour, words it could not place, notes."""

    not_honoured: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- before planning ---------------------------------------------------------------------------------------
def system_action(text: str, lang: str = "en") -> tuple[str, str] | None:
    """(verb, what it would need) when the request asks to change the system rather than observe it: an
    action verb in command position ("kill processes that...", "block connections to port 23", "trace execs
    and kill them"). "who kills processes" and "count dropped packets" are questions, not actions."""
    lex = lexicon_mod.load(lang)
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
        if base in lex.action_objects_needed and (len(words) < 2 or words[1] not in lex.action_objects):
            continue
        return base, lex.system_actions[base]
    return None


def check_request(text: str, catalog: Catalog, unsafe: bool, lang: str = "en") -> None:
    """Refuse, before any planning, what gpttrace must not or cannot do here (exit 2 with the reason)."""
    action = system_action(text, lang)
    if action is not None:
        verb, needs = action
        observe = _observing_version(text, verb)
        suggestions = [observe] if observe else []
        if unsafe and needs.startswith("sending signals"):
            raise UnmappableIntent(
                f"{text.strip()!r} asks to {verb} processes, which changes the system; even with --unsafe the "
                "offline planner writes only tracing programs: write the signal() program yourself and run it "
                "with `gpttrace explain` to check it, or trace first", suggestions)
        if needs.startswith("sending signals") or needs.startswith(("writing", "running", "overriding")):
            raise UnmappableIntent(
                f"this asks to {verb}, which changes the system ({needs}); gpttrace only observes unless you pass "
                "--unsafe, and -y never implies it. It can trace what would be affected instead", suggestions)
        raise UnmappableIntent(
            f"this asks to {verb}, which is enforcement, not a tracing program ({needs}); gpttrace observes "
            "and will not enforce (not even with --unsafe). It can trace what would be affected instead",
            suggestions)
    missing = missing_need(text, catalog, lang)
    if missing is not None:
        raise UnmappableIntent(missing, [])


def missing_need(text: str, catalog: Catalog, lang: str = "en") -> str | None:
    """Why this machine cannot serve the request (hardware counters, kprobes, a subsystem's tracepoints), or
    None when nothing the request names is missing."""
    lex = lexicon_mod.load(lang)
    low = " ".join(text.lower().split())
    for need in lex.needs:
        said = next((p for p in need.phrases if _has_phrase(low, p)), None)
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
            return f"{said!r} needs {need.what}, which this machine does not have: {need.fix}"
    categories = set(catalog.tracepoints.categories())
    for word in _words(low):
        sub = lex.subsystems.get(word)
        if sub is not None and not categories & set(sub.categories):
            return (f"{sub.what} cannot be traced here: this kernel has no {sub.what} tracepoints "
                    f"({', '.join(sub.categories)} are absent from /sys/kernel/tracing/events; the driver or module "
                    f"is not loaded, or the kernel was built without it). `gpttrace doctor` lists what it has")
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
    from .intent import _ordinary_word

    if example.id not in example.tool_names and example not in named_tools(request, _ordinary_word):
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
def account(it: Intent, spec: ProgramSpec, catalog: Catalog, example_text: str = "", lang: str = "en") -> Accounting:
    """Check the plan against the request: slots it did not honour and content words it did not place."""
    acc = Accounting()
    acc.not_honoured = _slots_not_honoured(it, spec)
    vocab = _spec_vocabulary(spec) | _text_vocabulary(example_text)
    lex = lexicon_mod.load(lang)
    for word in content_words(it, lang):
        if not _placed(word, vocab, lex):
            acc.unplaced.append(word)
    names = it.comms or ([it.comm] if it.comm else [])
    idle = [n for n in names if not _running(n)]
    if idle:
        acc.notes.append(f"no process named {', '.join(idle)} is running now; the program waits for one")
    return acc


def content_words(it: Intent, lang: str = "en") -> list[str]:
    """The words that say what to trace: the request less filler, shape words, numbers and what the slots
    took (process names, a path, a size bound...)."""
    from .intent import ACTIONS, UNITS
    from .vocabulary import STOP_WORDS

    lex = lexicon_mod.load(lang)
    text = it.text
    for taken in (it.path, it.threshold_text, it.duration_text):
        if taken:
            text = text.replace(taken.lower(), " ")
    text = re.sub(r"[\"'`][^\"'`]{1,64}[\"'`]", " ", text)  # a quoted name
    slot_words = {n.lower() for n in [*(it.comms or []), *(it.not_comms or []), it.comm or ""] if n}
    shape_words = {w for phrases in ACTIONS.values() for p in phrases for w in p.split()}
    if it.not_comms:  # "except", "excluding": the exclusion slot took them
        slot_words |= {w for phrase in lex.negation for w in phrase.split()}
    if it.output_format:  # "in octal"
        slot_words |= {w for phrase in lex.formats[it.output_format] for w in phrase.split()}
    out: list[str] = []
    for word in _words(text):
        word = word.strip("'-+")
        bare = word.removesuffix("'s")
        if (not bare or bare in lex.filler or bare in STOP_WORDS or bare in shape_words or bare in UNITS
                or bare in slot_words or bare.isdigit() or re.fullmatch(r"\d+\w{0,3}", bare)
                or (it.library and bare == it.library)):
            continue
        if bare not in out:
            out.append(bare)
    return out


def _words(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _placed(word: str, vocab: set[str], lex: lexicon_mod.Lexicon) -> bool:
    from .retrieval import stem
    from .vocabulary import SYNONYMS

    forms = {word, stem(word), *word.replace("-", "_").split("_")}
    forms |= {stem(p) for p in forms}
    if forms & vocab:
        return True
    for piece in (*lex.tracepoint_words.get(word, ()), *SYNONYMS.get(word, ())):
        if piece in vocab or stem(piece) in vocab or any(v.startswith(piece) for v in vocab if len(piece) >= 3):
            return True
    # a shared beginning of 4+ letters: "allocation" and alloc, "temperature" and temp, "orders" and order
    return len(word) >= 4 and any(len(v) >= 4 and (word.startswith(v) or v.startswith(word)) for v in vocab)


def _spec_vocabulary(spec: ProgramSpec) -> set[str]:
    parts = [spec.title, spec.rationale]
    parts += [p.text for p in spec.all_probes]
    parts += spec.expressions() + spec.start_expressions()
    parts += [f.label or "" for f in spec.print] + [a.title or "" for a in spec.aggregates]
    parts += [k.label or "" for a in spec.aggregates for k in a.keys]
    return _text_vocabulary(" ".join(parts))


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


def _slots_not_honoured(it: Intent, spec: ProgramSpec) -> list[str]:
    """The request's filters, shapes and settings that the program does not carry out."""
    from .offline import intent_shape, spec_shapes

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
    if it.port is not None and not re.search(rf"\b{it.port}\b", exprs):
        missed.append(f"only port {it.port}")
    if it.size_bound is not None and str(it.size_bound[1]) not in exprs:
        missed.append(f"only sizes {it.size_bound[0]} {it.size_bound[1]} bytes")
    if it.signal is not None and not re.search(rf"\b{it.signal}\b", exprs):
        missed.append(f"only signal {it.signal}")
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
    if wanted in ("hist", "latency") and wanted not in shapes and not (wanted == "hist" and "latency" in shapes):
        missed.append("as a histogram" if wanted == "hist" else "the time each one takes")
    return missed


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
def describe(spec: ProgramSpec, duration_s: float | None = None) -> str:
    parts = [_subject(spec)]
    parts.append(_shape(spec))
    parts += _filters(spec)
    if spec.interval_s:
        parts.append(f"every {spec.interval_s} s")
    if duration_s:
        parts.append(f"for {duration_s:g} s")
    return " · ".join(p for p in parts if p)


def _subject(spec: ProgramSpec) -> str:
    calls: list[str] = []
    others: list[str] = []
    for p in spec.probes:
        if p.kind == "tracepoint" and p.category == "syscalls":
            name = (p.name or "").removeprefix("sys_enter_").removeprefix("sys_exit_")
            if name not in calls:
                calls.append(name)
        elif p.kind == "tracepoint" and p.category == "raw_syscalls":
            if "every syscall" not in others:
                others.append("every syscall")
        elif p.kind == "profile":
            others.append(f"CPU samples at {p.rate or 99} Hz" if getattr(p, "rate", None) else "CPU samples")
        elif p.kind in ("interval",):
            continue
        else:
            others.append(p.text.removeprefix("tracepoint:"))
    what = []
    if calls:
        what.append(f"{', '.join(calls[:4])}{', ...' if len(calls) > 4 else ''} syscall{'s' if len(calls) > 1 else ''}")
    what += others[:3] + (["..."] if len(others) > 3 else [])
    head = spec.title.rstrip(".")
    return f"{head} ({'; '.join(what)})" if what else head


def _shape(spec: ProgramSpec) -> str:
    out: list[str] = []
    if spec.print:
        cols = ", ".join((f.label or f.expr) for f in spec.print[:6])
        out.append(f"each event ({cols}{', ...' if len(spec.print) > 6 else ''})")
    for a in spec.aggregates:
        what = {"count": "count", "sum": "sum", "avg": "average", "min": "minimum", "max": "maximum",
                "hist": "histogram", "lhist": "linear histogram", "stats": "count/average/total"}[a.func]
        if a.value:
            what += f" of {_value_words(a.value)}"
        if a.unit:
            what += f" ({a.unit})"
        if a.keys:
            what += " by " + ", ".join((k.label or k.expr).lower() for k in a.keys)
        if a.top:
            what += f", top {a.top}"
        out.append(what)
    return " + ".join(out)


def _value_words(value: str) -> str:
    if "delta" in value:
        return "latency"
    return value


def _filters(spec: ProgramSpec) -> list[str]:
    out: list[str] = []
    for filt in [spec.filter] + ([spec.start.filter] if spec.start else []):
        if filt.comm:
            out.append(f"process = {filt.comm}")
        if filt.pid:
            out.append(f"pid = {filt.pid}")
        if filt.expr:
            out.append(_condition_words(filt.expr))
    for a in spec.aggregates:
        if a.filter:
            out.append(_condition_words(a.filter))
    return out


def _condition_words(expr: str) -> str:
    alts = re.findall(r'comm == "([^"]+)"', expr)
    nots = re.findall(r'comm != "([^"]+)"', expr)
    rest = re.sub(r'\(?\s*comm [!=]= "[^"]+"\s*\)?(?:\s*(?:\|\||&&)\s*)?', "", expr).strip(" ()&|")
    parts = []
    if len(alts) > 1:
        parts.append("process ∈ {" + ", ".join(alts) + "}")
    elif alts:
        parts.append(f"process = {alts[0]}")
    if nots:
        parts.append("process ∉ {" + ", ".join(nots) + "}" if len(nots) > 1 else f"process ≠ {nots[0]}")
    if rest:
        parts.append(f"where {rest}")
    return " · ".join(parts)


def record(spec: ProgramSpec, acc: Accounting | None, duration_s: float | None, source: str) -> dict[str, Any]:
    """The plan as the first --json record and the log's: what was understood and what was not honoured."""
    return {"type": "plan", "understood": describe(spec, duration_s), "source": source,
            "not_honoured": (acc.not_honoured + [f"the word {w!r}" for w in acc.unplaced]) if acc else [],
            "notes": acc.notes if acc else [], "duration_s": duration_s}
