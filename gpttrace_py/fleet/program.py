"""The program a fleet runs: planned like a one-shot trace, for bpftrace, bounded in time, and made of
aggregates that the nodes' results can be combined from.

A request goes through ``planning.plan.make_plan`` (refusals apply), is fitted to this kernel and checked
against its catalog like any program gpttrace runs, and is rendered for bpftrace, the engine the pods run.
Two changes make the program fit for a fleet:

* ``avg()`` becomes ``stats()``: bpftrace prints an average without its count, and the averages of several
  nodes cannot be combined without their counts; ``stats()`` prints count, average and total.
* a last probe ends the run after ``seconds`` (``interval:s:N { exit(); }``): END still prints the aggregates,
  and a pod that ends by itself needs nobody to stop it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import GpttraceError, UsageError

if TYPE_CHECKING:
    from ..planning.base import Planner
    from ..planning.plan import Plan
    from ..spec import ProgramSpec

DEFAULT_SECONDS = 60


@dataclass
class FleetProgram:
    text: str  # the bpftrace program as the pods run it (with its time bound)
    seconds: int
    request: str | None = None  # the request it was planned from; None for a saved program
    plan: Plan | None = None
    notes: tuple[str, ...] = ()  # what was changed for the fleet, said on stderr


def bounded(text: str, seconds: int) -> str:
    """The program, ending itself after ``seconds``; ``seconds`` is an int (never text from outside)."""
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
        raise ValueError(f"a run time in whole seconds is needed, not {seconds!r}")
    return text.rstrip("\n") + f"\n\n// gpttrace fleet: end the run after {seconds} s (END prints the aggregates)\n" \
        f"interval:s:{seconds}\n{{\n\texit();\n}}\n"


def combinable(spec: ProgramSpec) -> tuple[ProgramSpec, tuple[str, ...]]:
    """The spec with each avg() collected as stats(), so that the nodes' averages can be combined."""
    averaged = [a for a in spec.aggregates if a.func == "avg"]
    if not averaged:
        return spec, ()
    aggregates = [a.model_copy(update={"func": "stats"}) if a.func == "avg" else a for a in spec.aggregates]
    names = ", ".join(f"@{a.name}" for a in averaged)
    return spec.model_copy(update={"aggregates": aggregates}), (
        f"{names}: avg() is collected as stats() (count, average, total), so that the nodes' averages can be "
        "combined",)


def from_request(request: str, planner: Planner, seconds: int | None, unsafe: bool) -> FleetProgram:
    """Plan ``request`` and render it for bpftrace, as the pods will run it."""
    from ..kernel.catalog import Catalog
    from ..planning import edits
    from ..planning.base import PlanContext
    from ..planning.plan import make_plan
    from ..service.backends import BCC_ONLY_KINDS, render

    catalog = Catalog()
    plan = make_plan(planner, request, PlanContext(catalog=catalog, backend="bpftrace"), unsafe)
    spec, notes = combinable(edits.fit_to_kernel(plan.spec, catalog))
    bcc_only = sorted({p.kind for p in spec.all_probes} & BCC_ONLY_KINDS)
    if bcc_only:
        raise UsageError(f"the planned program attaches {', '.join(bcc_only)}, which needs BCC; a fleet runs bpftrace",
                         "ask for something bpftrace can trace (tracepoints, uprobes, ...)")
    problems = catalog.check_spec(spec)
    if problems:
        raise GpttraceError("the planned program does not fit this kernel: " + "; ".join(map(str, problems)),
                            "rephrase the request, or export a saved program with --program FILE")
    program = render(spec, "bpftrace", catalog)
    chosen = seconds or (int(plan.duration_s) if plan.duration_s and plan.duration_s >= 1 else DEFAULT_SECONDS)
    return FleetProgram(bounded(program.text, chosen), chosen, request, plan, notes)


def from_file(path: str, seconds: int | None) -> FleetProgram:
    """A saved bpftrace program (``gpttrace -o FILE``, or one's own), bounded in time."""
    from ..explain.bt import looks_like_bpftrace

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the program {path}: {exc}") from None
    if not text.strip() or not looks_like_bpftrace(text):
        raise UsageError(f"{path} is not a bpftrace program", "the fleet runs bpftrace programs (.bt) only")
    chosen = seconds or DEFAULT_SECONDS
    return FleetProgram(bounded(text, chosen), chosen)


def check_safety(program: FleetProgram, unsafe: bool) -> list[tuple[str, str]]:
    """Refuse (exit 2) a program that changes the system unless ``unsafe``; what it uses."""
    from .. import safety

    return safety.check(program.text, "bpftrace", unsafe)


def check_loads(program: FleetProgram, unsafe: bool) -> None:
    """Load and attach the program here, then detach: the kernel's verifier sees it before any node does."""
    from .. import safety
    from ..render.program import ProgramLayout, RenderedProgram
    from ..run import LoadFailed, RunOptions, run_program

    safety.preflight("bpftrace")
    text, marker = with_ready_line(program.text)
    try:
        run_program(RenderedProgram("bpftrace", text, ProgramLayout(ready=marker)),
                    RunOptions(dry_run=True, unsafe=unsafe, tracer_name="bpftrace"), lambda line: None,
                    lambda line: None)
    except LoadFailed as exc:
        raise GpttraceError(f"the program does not load on this machine: {exc.failure.summary()}",
                            "fix it, or pass --no-check when this machine is unlike the nodes") from None


def with_ready_line(text: str) -> tuple[str, str]:
    """The program printing a line of its own first thing in BEGIN, which runs once every probe is attached
    (the runner's sign that the program loaded); the line. Only the check runs this text."""
    import os

    from ..explain.bt import analyze

    marker = "gpttrace-ready-" + os.urandom(8).hex()
    statement = f'printf("{marker}\\n");'
    begin = next((b for b in analyze(text).blocks if b.label == "BEGIN"), None)
    if begin is None:
        return text.rstrip("\n") + f"\n\nBEGIN\n{{\n\t{statement}\n}}\n", marker
    start = sum(len(line) for line in text.splitlines(keepends=True)[: begin.start_line - 1])
    brace = text.index("{", start) + 1
    return text[:brace] + f" {statement}" + text[brace:], marker
