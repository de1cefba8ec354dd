"""A Plan: the program spec, with what was understood, what could not be honoured, and how long to run.

``make_plan`` is the one way any planner's answer becomes a Plan: the request is checked first (actions and
missing features are refused before planning), the planner plans, and the spec is checked against every part
of the request (understand.py). A request whose subject the program does not cover is refused, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import UnmappableIntent
from . import understand

if TYPE_CHECKING:
    from ..spec import ProgramSpec
    from .base import PlanContext, Planner


@dataclass
class Plan:
    spec: ProgramSpec
    source: str = ""  # 'corpus:<id>', 'syscall:<name>', 'tracepoint:<cat>:<name>', 'uprobe:...', 'llm', ...
    duration_s: float | None = None  # a duration asked in words ("for 2 seconds")
    accounting: understand.Accounting = field(default_factory=understand.Accounting)

    def understood(self) -> str:
        return understand.describe(self.spec, self.duration_s)

    @property
    def not_honoured(self) -> list[str]:
        return self.accounting.not_honoured + [repr(w) for w in self.accounting.unplaced]

    def record(self) -> dict[str, Any]:
        return {"type": "plan", "understood": self.understood(), "source": self.source,
                "not_honoured": self.not_honoured, "notes": list(self.accounting.notes),
                "duration_s": self.duration_s}


def make_plan(planner: Planner, request: str, ctx: PlanContext, unsafe: bool = False) -> Plan:
    """Check the request, plan it, and check the plan against it."""
    understand.check_request(request, ctx.catalog, unsafe)
    ctx.source = ""
    spec = planner.plan(request, ctx)
    return check_plan(request, spec, ctx, suggest=getattr(planner, "suggestions", None))


class NeedMissing(UnmappableIntent):
    """The request reached a worked example that only the original method answers, and this machine lacks what
    that needs. ``spec`` is the original, for ``--dry-run -o FILE`` to save (it is never loaded here)."""

    def __init__(self, message: str, spec: ProgramSpec, entry_id: str) -> None:
        super().__init__(message)
        self.hint = (f"`gpttrace examples show {entry_id}` shows its program; --dry-run -o FILE saves it for a "
                     "machine that has what it needs")
        self.spec = spec


def check_plan(request: str, spec: ProgramSpec, ctx: PlanContext, suggest: Any = None) -> Plan:
    """The spec as a Plan for this request; refused (exit 2) when it leaves the request's subject out or when
    it is a classic tool's original method that needs what this machine lacks."""
    from .intent import parse

    refusal = understand.unmet_example_need(ctx.source, ctx.catalog)
    if refusal is not None:
        raise NeedMissing(refusal, spec, ctx.source.removeprefix("corpus:"))
    it = parse(request)
    basis = _example_text(ctx.source)
    acc = understand.account(it, spec, ctx.catalog, basis)
    substitute = understand.substitute_note(ctx.source, request)
    if substitute:
        acc.notes.append(substitute)
    placed = len(understand.content_words(it)) - len(acc.unplaced)
    if acc.unplaced and (placed == 0 or (len(acc.unplaced) >= 2 and len(acc.unplaced) > placed)):
        words = ", ".join(repr(w) for w in acc.unplaced)
        raise UnmappableIntent(
            f"could not map {words} to anything gpttrace can trace here; the nearest program it found "
            f"({spec.title}) would leave {'it' if len(acc.unplaced) == 1 else 'them'} out",
            suggest(request) if suggest else [])
    return Plan(spec, ctx.source or getattr(ctx, "planner_name", ""), it.duration_s, acc)


def _example_text(source: str) -> str:
    """The words of the worked example a plan was adapted from: its title, tags and paraphrases."""
    if not source.startswith("corpus:"):
        return ""
    from ..corpus import by_id

    example = by_id(source.removeprefix("corpus:"))
    if example is None:
        return ""
    return " ".join([example.title, example.id.replace("-", " "), *example.tags, *example.tool_names,
                     *example.paraphrases])
