"""What every planner offers, and the conversation state that refinements and retries build on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..kernel.catalog import Catalog
from ..run.failure import LoadFailure
from ..spec import ProgramSpec


@dataclass
class Attempt:
    spec: ProgramSpec
    failure: LoadFailure | None = None
    program: str | None = None


@dataclass
class Conversation:
    """State kept across turns: the current spec, every attempt and error, the intents asked.

    The one-shot CLI uses one for its retry loop; the chat REPL keeps one for the whole session."""

    intents: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    spec: ProgramSpec | None = None

    def record(self, spec: ProgramSpec, failure: LoadFailure | None = None, program: str | None = None) -> None:
        self.attempts.append(Attempt(spec, failure, program))
        self.spec = spec

    @property
    def failures(self) -> list[LoadFailure]:
        return [a.failure for a in self.attempts if a.failure is not None]


@dataclass
class PlanContext:
    catalog: Catalog
    backend: str = "auto"  # what the user asked for: auto, bpftrace, bcc
    conversation: Conversation = field(default_factory=Conversation)
    source: str = ""  # what the last plan was made from: 'corpus:<id>', 'syscall:<name>', 'tracepoint:...', 'llm'


class Planner(Protocol):
    name: str

    def plan(self, intent: str, ctx: PlanContext) -> ProgramSpec:
        """A spec for a new intent; raises UnmappableIntent when there is none."""
        ...

    def refine(self, request: str, spec: ProgramSpec, ctx: PlanContext) -> ProgramSpec:
        """The current spec changed as the request says ("only pid 42", "as a histogram")."""
        ...

    def revise(self, intent: str, spec: ProgramSpec, failure: LoadFailure, ctx: PlanContext) -> ProgramSpec | None:
        """A corrected spec after a load failure, or None when the planner has nothing else to try."""
        ...
