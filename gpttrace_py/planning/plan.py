"""A Plan: the program spec, with what was understood, what could not be honoured, and how long to run.

``make_plan`` is the one way any planner's answer becomes a Plan: the request is read (its language: English is
read as it is, Chinese through its lexicon, others refused), checked (actions and missing features are refused
before planning), planned, and the spec is checked against every part of the request (understand.py). A request
whose subject the program does not cover is refused, not guessed. What the user reads is in the request's
language.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import MissingFeature, UnmappableIntent
from . import lexicon, understand
from .language import Reading, read

if TYPE_CHECKING:
    from ..spec import ProgramSpec
    from .base import PlanContext, Planner


@dataclass
class Plan:
    spec: ProgramSpec
    source: str = ""  # 'corpus:<id>', 'syscall:<name>', 'tracepoint:<cat>:<name>', 'uprobe:...', 'llm', ...
    duration_s: float | None = None  # a duration asked in words ("for 2 seconds")
    accounting: understand.Accounting = field(default_factory=understand.Accounting)
    language: str = "en"  # what the request was written in, and what the user reads about the plan in
    read_as: str = ""  # the request as the planner read it (English), when it was written in another language

    def understood(self) -> str:
        return understand.describe(self.spec, self.duration_s, self.language)

    @property
    def not_honoured(self) -> list[str]:
        return self.accounting.not_honoured + [repr(w) for w in self.accounting.unplaced]

    def record(self) -> dict[str, Any]:
        out = {"type": "plan", "understood": self.understood(), "source": self.source,
               "not_honoured": self.not_honoured, "notes": list(self.accounting.notes),
               "duration_s": self.duration_s, "language": self.language}
        if self.read_as:
            out["read_as"] = self.read_as
        return out


def make_plan(planner: Planner, request: str, ctx: PlanContext, unsafe: bool = False,
              starting: tuple[str, ...] = ()) -> Plan:
    """Read the request, check it, plan it, and check the plan against it."""
    reading = read(request)
    understand.check_request(reading.text, ctx.catalog, unsafe, reading.language,
                             can_act=planner.name != "offline")
    ctx.source = ""
    try:
        spec = planner.plan(reading.text, ctx)
    except UnmappableIntent as exc:
        if reading.language == "en":
            raise
        say = lexicon.load(reading.language).say
        raise UnmappableIntent(say("no_match", request=repr(request.strip()[:60])) + _unknown(reading),
                               exc.suggestions) from None
    return check_plan(reading, spec, ctx, suggest=planner.suggestions, source=planner.name, starting=starting)


class NeedMissing(MissingFeature):
    """The request reached a worked example that only the original method answers, and this machine lacks what
    that needs. ``spec`` is the original, for ``--dry-run -o FILE`` to save (it is never loaded here)."""

    def __init__(self, message: str, spec: ProgramSpec, entry_id: str) -> None:
        super().__init__(message, spec)
        self.hint = (f"`gpttrace examples show {entry_id}` shows its program; --dry-run -o FILE saves it for a "
                     "machine that has what it needs")
        self.spec = spec


def check_plan(reading: Reading | str, spec: ProgramSpec, ctx: PlanContext,
               suggest: Callable[[str], list[str]] | None = None,
               source: str = "", starting: tuple[str, ...] = ()) -> Plan:
    """The spec as a Plan for this request; refused (exit 2) when it leaves the request's subject out."""
    from .intent import parse

    refusal = understand.unmet_example_need(ctx.source, ctx.catalog)
    if refusal is not None:
        raise NeedMissing(refusal, spec, ctx.source.removeprefix("corpus:"))
    if isinstance(reading, str):
        reading = read(reading)
    say = lexicon.load(reading.language).say
    it = parse(reading.text)
    acc = understand.account(it, spec, ctx.catalog, understand.example_text(ctx.source), reading.language, starting)
    acc.unplaced += reading.unknown  # words of the request its language's lexicon did not know
    substitute = understand.substitute_note(ctx.source, reading.text)
    if substitute:
        acc.notes.append(substitute)
    unknown = [w for w in acc.unplaced if not understand.known_word(w)]
    placed = acc.placed
    # refused: nothing placed; more words unplaced than placed, when some of them no vocabulary knows (the very
    # subject, likely) or there are two or more; as many, when they are words of a language read through its
    # lexicon that the lexicon does not know (its function words are all there: what is left is content)
    if acc.unplaced and (placed <= 0 or (reading.unknown and len(acc.unplaced) >= placed)
                         or ((unknown or len(acc.unplaced) >= 2) and len(acc.unplaced) > placed)):
        words = ", ".join(repr(w) for w in acc.unplaced)
        raise UnmappableIntent(say("could_not_map", words=words, title=spec.title),
                               suggest(reading.text) if suggest else [])
    return Plan(spec, ctx.source or source, it.duration_s, acc, reading.language,
                reading.text if reading.language != "en" else "")


def _unknown(reading: Reading) -> str:
    if not reading.unknown:
        return ""
    return "; " + lexicon.load(reading.language).say("not_understood", words=", ".join(map(repr, reading.unknown)))
