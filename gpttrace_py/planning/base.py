"""What every planner offers the trace service (``Planner``), and the conversation state that refinements and
retries build on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: the trace service imports this module before it knows it must plan
    from ..kernel.catalog import Catalog
    from ..run.failure import LoadFailure
    from ..service.options import PlannedProgram
    from ..spec import ProgramSpec
    from ..ui import UI


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


@dataclass
class ReplySettings:
    """How the trace at hand wants a planner that asks a model to answer: its reply budget, where it reports."""

    retries: int  # corrected replies after the first (--retries)
    ui: UI
    progress: bool  # say on stderr that a reply is awaited (off under --json)


class BasicPlanner(Protocol):
    """The least a planner does: a spec for a request, a refinement, a correction after a load failure."""

    @property
    def name(self) -> str: ...

    def plan(self, intent: str, ctx: PlanContext) -> ProgramSpec:
        """A spec for a new intent; raises UnmappableIntent when there is none."""
        ...

    def refine(self, request: str, spec: ProgramSpec, ctx: PlanContext) -> ProgramSpec:
        """The current spec changed as the request says ("only pid 42", "as a histogram")."""
        ...

    def revise(self, intent: str, spec: ProgramSpec, failure: LoadFailure, ctx: PlanContext) -> ProgramSpec | None:
        """A corrected spec after a load failure, or None when the planner has nothing else to try."""
        ...


@runtime_checkable
class Planner(BasicPlanner, Protocol):
    """Everything the trace service (service/trace.py) asks of a planner. PlannerBase answers the parts a planner
    has nothing to add to."""

    def suggestions(self, intent: str) -> list[str]:
        """Requests it can map that are near ``intent`` (shown with a refusal)."""
        ...

    def prepare(self, settings: ReplySettings) -> None:
        """Before a trace: its reply budget and where to report."""
        ...

    def take_rejected(self) -> list[LoadFailure]:
        """Replies it turned down itself (not a valid spec) since the last call, already shown: they count as
        attempts of the trace."""
        ...

    def recall(self, intent: str, backend: str) -> PlannedProgram | None:
        """The program that ran the last time this request was asked, when the planner remembers one."""
        ...

    def loaded(self, intent: str, backend: str, planned: PlannedProgram) -> None:
        """The program planned for this request loaded and attached."""
        ...

    def stale(self, intent: str, backend: str) -> None:
        """The program recalled for this request does not load any more."""
        ...


class PlannerBase:
    """A Planner whose subclasses plan, refine and revise, with answers for the parts of the protocol a planner
    may have nothing to add to: no suggestions, no replies of its own to turn down, nothing remembered."""

    @property
    def name(self) -> str:
        raise NotImplementedError

    def plan(self, intent: str, ctx: PlanContext) -> ProgramSpec:
        raise NotImplementedError

    def refine(self, request: str, spec: ProgramSpec, ctx: PlanContext) -> ProgramSpec:
        raise NotImplementedError

    def revise(self, intent: str, spec: ProgramSpec, failure: LoadFailure, ctx: PlanContext) -> ProgramSpec | None:
        raise NotImplementedError

    def suggestions(self, intent: str) -> list[str]:
        return []

    def prepare(self, settings: ReplySettings) -> None:
        return None

    def take_rejected(self) -> list[LoadFailure]:
        return []

    def recall(self, intent: str, backend: str) -> PlannedProgram | None:
        return None

    def loaded(self, intent: str, backend: str, planned: PlannedProgram) -> None:
        return None

    def stale(self, intent: str, backend: str) -> None:
        return None


class _Basic(PlannerBase):
    """A planner that offers only the basic methods (a test's, a script's), with PlannerBase's answers for the
    rest."""

    def __init__(self, planner: BasicPlanner) -> None:
        self.planner = planner

    @property
    def name(self) -> str:
        return self.planner.name

    def plan(self, intent: str, ctx: PlanContext) -> ProgramSpec:
        return self.planner.plan(intent, ctx)

    def refine(self, request: str, spec: ProgramSpec, ctx: PlanContext) -> ProgramSpec:
        return self.planner.refine(request, spec, ctx)

    def revise(self, intent: str, spec: ProgramSpec, failure: LoadFailure, ctx: PlanContext) -> ProgramSpec | None:
        return self.planner.revise(intent, spec, failure, ctx)


def full_planner(planner: BasicPlanner) -> Planner:
    """``planner`` as a Planner: itself when it is one, else with PlannerBase's answers for what it lacks."""
    if isinstance(planner, (PlannerBase, Planner)):  # PlannerBase first: it does not ask for the planner's name
        return planner
    return _Basic(planner)
