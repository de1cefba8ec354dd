"""One trace, end to end: intent → spec → (catalog check) → program → load/run → events, with retries.

Loading is the verifier check and happens once: the run itself loads and attaches. When the load fails,
the error goes back to the planner, which revises the spec; each attempt is shown on stderr.
"""

from __future__ import annotations

import shlex
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ExitCode, GpttraceError, UsageError
from .kernel.catalog import Catalog
from .planning.base import Conversation, PlanContext, Planner
from .render.program import RenderedProgram
from .run.failure import LoadFailure
from .spec import ProgramSpec
from .ui import UI

BCC_ONLY_KINDS = {"xdp", "tc"}
DEFAULT_NONINTERACTIVE_SECONDS = 600.0


@dataclass
class TraceOptions:
    backend: str = "auto"
    retries: int = 3
    yes: bool = False
    command: list[str] | None = None
    duration: float | None = None
    json_out: bool = False
    dry_run: bool = False
    show_spec: bool = False
    output: str | None = None
    explain: bool = False
    unsafe: bool = False
    max_seconds: float | None = None  # default run time when nobody is there to press Ctrl-C
    stop_event: threading.Event | None = None  # lets a REPL stop a running trace


@dataclass
class TraceResult:
    code: ExitCode
    spec: ProgramSpec | None = None
    program: RenderedProgram | None = None
    attempts: list[LoadFailure] = field(default_factory=list)
    events: int = 0


def parse_command(text: str | None) -> list[str] | None:
    if text is None:
        return None
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"cannot split the -c command: {exc}", "check its quotes") from None
    if not argv:
        raise UsageError("the -c command is empty")
    return argv


def choose_backend(spec: ProgramSpec, requested: str, catalog: Catalog) -> str:
    kinds = {p.kind for p in spec.all_probes}
    wanted = requested if requested != "auto" else spec.backend
    if wanted in ("bpftrace", "bcc"):
        if wanted == "bpftrace" and kinds & BCC_ONLY_KINDS:
            raise UsageError(f"bpftrace cannot attach {', '.join(sorted(kinds & BCC_ONLY_KINDS))} programs",
                             "use --backend bcc (or auto)")
        return wanted
    if kinds & BCC_ONLY_KINDS:
        return "bcc"
    if catalog.features.bpftrace is None and catalog.features.bcc_python is not None:
        return "bcc"
    return "bpftrace"


def render(spec: ProgramSpec, backend: str, catalog: Catalog) -> RenderedProgram:
    if backend == "bcc":
        try:
            from .render import bcc
        except ImportError:
            raise UsageError("the BCC backend is not available in this build", "use --backend bpftrace") from None
        return bcc.render(spec, catalog)
    from .render import bpftrace

    return bpftrace.render(spec, catalog)


def _catalog_failure(spec: ProgramSpec, catalog: Catalog, backend: str) -> LoadFailure | None:
    problems = catalog.check_spec(spec)
    if not problems:
        return None
    return LoadFailure(backend=backend, stage="catalog", message="; ".join(str(p) for p in problems),
                       log="\n".join(str(p) for p in problems))


def trace(intent: str, planner: Planner, options: TraceOptions, ui: UI, catalog: Catalog | None = None,
          conversation: Conversation | None = None, spec: ProgramSpec | None = None) -> TraceResult:
    """Plan (unless a spec is given), then render, check, run, and retry on load failures."""
    from .planning import edits
    from .run import LoadFailed, RunOptions, run_program

    catalog = catalog or Catalog()
    conversation = conversation or Conversation()
    ctx = PlanContext(catalog=catalog, backend=options.backend, conversation=conversation)
    if spec is None:
        spec = planner.plan(intent, ctx)
    conversation.intents.append(intent)
    total = max(1, options.retries + 1)
    failures: list[LoadFailure] = []
    confirmed_text: str | None = None
    for attempt in range(1, total + 1):
        spec = edits.fit_to_kernel(spec, catalog)
        try:
            backend = choose_backend(spec, options.backend, catalog)
        except UsageError:
            if attempt == total:
                raise
            backend = "bcc"
        failure = _catalog_failure(spec, catalog, backend)
        program: RenderedProgram | None = None
        if failure is None:
            try:
                program = render(spec, backend, catalog)
            except (ValueError, TypeError) as exc:
                failure = LoadFailure(backend=backend, stage="render", message=str(exc))
        if failure is not None or program is None:
            assert failure is not None
            failures.append(failure)
            conversation.record(spec, failure)
            ui.attempt_failed(attempt, total, failure)
            revised = planner.revise(intent, spec, failure, ctx) if attempt < total else None
            if revised is None:
                break
            spec = revised
            continue
        from . import safety

        uses = safety.check(program.text, program.backend, options.unsafe)
        if options.show_spec:
            ui.show_spec(spec)
        ui.show_program(program, spec, getattr(planner, "name", ""))
        if options.output:
            _save(program, options.output, ui)
        if options.explain:
            _explain(program, catalog, ui)
        if not options.dry_run and not options.yes and confirmed_text != program.text:
            if not ui.interactive:
                raise UsageError("not running the program without confirmation",
                                 "pass -y/--yes to run it, or --dry-run to only check that it loads")
            question = "Run this program?"
            if uses:
                question = f"This program CHANGES THE SYSTEM ({', '.join(n for n, _ in uses)}). Run it anyway?"
            if not ui.confirm(question):
                ui.talk("Not run.")
                return TraceResult(ExitCode.OK, spec, program, failures)
            confirmed_text = program.text
        run_options = RunOptions(command=options.command, duration=options.duration, json=options.json_out,
                                 dry_run=options.dry_run, stop_event=options.stop_event)
        if run_options.duration is None and run_options.command is None and not options.dry_run:
            limit = options.max_seconds if options.max_seconds is not None else (
                None if ui.interactive else DEFAULT_NONINTERACTIVE_SECONDS)
            if limit:
                run_options.duration = limit
                ui.talk(f"(no terminal: tracing stops after {limit:g} s; set -d to change)")
        try:
            outcome = run_program(program, run_options, ui.out, ui.warn)
        except LoadFailed as exc:
            failures.append(exc.failure)
            conversation.record(spec, exc.failure, program.text)
            ui.attempt_failed(attempt, total, exc.failure)
            revised = planner.revise(intent, spec, exc.failure, ctx) if attempt < total else None
            if revised is None:
                break
            spec = revised
            continue
        conversation.record(spec, None, program.text)
        if options.dry_run:
            ui.talk(f"The program loads and attaches on this kernel ({program.backend}).")
            return TraceResult(ExitCode.OK, spec, program, failures)
        if outcome.interrupted:
            return TraceResult(ExitCode.INTERRUPTED, spec, program, failures, outcome.events)
        if outcome.returncode not in (0, None, -2, 130) and not outcome.events:
            raise GpttraceError(f"the tracer stopped with status {outcome.returncode}",
                                "see the messages above", ExitCode.TRACE_FAILED)
        return TraceResult(ExitCode.OK, spec, program, failures, outcome.events)
    listing = "\n".join(f"  {i}. {f.summary()}" for i, f in enumerate(failures, 1))
    raise GpttraceError(f"no program loaded after {len(failures)} attempt(s):\n{listing}",
                        "try rephrasing, or --backend bcc / --backend bpftrace", ExitCode.TRACE_FAILED)


def _save(program: RenderedProgram, path: str, ui: UI) -> None:
    try:
        Path(path).write_text(program.text)
    except OSError as exc:
        raise GpttraceError(f"cannot write {path}: {exc.strerror}", "choose another -o path", ExitCode.USAGE) from None
    ui.talk(f"(program saved to {path})")


def _explain(program: RenderedProgram, catalog: Catalog, ui: UI) -> None:
    try:
        from .explain import explain_program
    except ImportError:
        return
    ui.talk(explain_program(program.text, program.backend, catalog, color=ui.color))


class FixedPlanner:
    """A 'planner' that only has the spec it was given: runs a corpus example or a saved spec."""

    name = "given spec"

    def __init__(self, spec: ProgramSpec) -> None:
        self.spec = spec

    def plan(self, intent: str, ctx: PlanContext) -> ProgramSpec:
        return self.spec

    def refine(self, request: str, spec: ProgramSpec, ctx: PlanContext) -> ProgramSpec:
        return spec

    def revise(self, intent: str, spec: ProgramSpec, failure: LoadFailure, ctx: PlanContext) -> ProgramSpec | None:
        return None


def run_spec(spec: ProgramSpec, *, backend: str = "auto", yes: bool = False, command: list[str] | None = None,
             duration: float | None = None, json_out: bool = False, dry_run: bool = False,
             ui: UI | None = None) -> int:
    """Run a given spec like a one-shot trace (``gpttrace examples run``); returns the exit code."""
    options = TraceOptions(backend=backend, yes=yes, command=command, duration=duration, json_out=json_out,
                           dry_run=dry_run, retries=0)
    return int(trace(spec.title, FixedPlanner(spec), options, ui or UI(), spec=spec).code)
