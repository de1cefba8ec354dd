"""One trace, end to end: intent → spec → (catalog check) → program → load/run → events, with retries.

Loading is the verifier check and happens once: the run itself loads and attaches. When the load fails,
the error goes back to the planner, which revises the spec; each attempt is shown on stderr.
"""

from __future__ import annotations

import os

from .errors import ExitCode, GpttraceError, MissingFeature, UsageError
from .execute import (
    DEFAULT_MAX_EVENT_RATE,
    DEFAULT_NONINTERACTIVE_SECONDS,
    PlannedProgram,
    TraceOptions,
    TraceResult,
    check_pid,
    check_settings,
    finish,
    log,
    max_seconds,
    parse_command,
    show_and_run,
)
from .kernel.catalog import Catalog
from .planning.base import Conversation, PlanContext, Planner
from .render.program import RenderedProgram
from .run.failure import LoadFailure
from .spec import ProgramSpec
from .ui import UI

BCC_ONLY_KINDS = {"xdp", "tc"}
__all__ = [
    "DEFAULT_MAX_EVENT_RATE",
    "DEFAULT_NONINTERACTIVE_SECONDS",
    "FixedPlanner",
    "TraceOptions",
    "TraceResult",
    "max_seconds",
    "parse_command",
    "planned",
    "run_spec",
    "trace",
]


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
    if catalog.features.bpftrace is None:
        from .kernel.features import find_bcc_python

        if (catalog.features.bcc_python or find_bcc_python()) is not None:
            return "bcc"
    return "bpftrace"


def render(spec: ProgramSpec, backend: str, catalog: Catalog) -> RenderedProgram:
    if backend == "bcc":
        try:
            from .render.bcc import program as bcc
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


def _rejected(planner: Planner) -> list[LoadFailure]:
    """Replies an LLM planner turned down itself (not a valid spec), already shown: they count as attempts."""
    take = getattr(planner, "take_rejected", None)
    return list(take()) if take is not None else []


def trace(intent: str, planner: Planner, options: TraceOptions, ui: UI, catalog: Catalog | None = None,
          conversation: Conversation | None = None, spec: ProgramSpec | None = None) -> TraceResult:
    """Plan (unless a spec is given), then render, check, run, and retry on load failures.

    With GPTTRACE_TIMINGS=1 the time of each phase is printed on stderr at the end (see timings.py)."""
    from . import timings

    measure = timings.begin()
    try:
        return _trace(intent, planner, options, ui, catalog, conversation, spec)
    finally:
        timings.end(measure)


def _trace(intent: str, planner: Planner, options: TraceOptions, ui: UI, catalog: Catalog | None,
           conversation: Conversation | None, spec: ProgramSpec | None) -> TraceResult:
    from . import safety, timings
    from .planning import edits
    from .run import LoadFailed

    safety.preflight(options.backend)  # root, capabilities, tracefs, the tracer: before planning anything
    check_settings(options, ui)  # and bad settings
    timings.mark("preflight")
    log(options, "intent", intent)
    catalog = catalog or Catalog()
    conversation = conversation or Conversation()
    ctx = PlanContext(catalog=catalog, backend=options.backend, conversation=conversation)
    if hasattr(planner, "take_rejected"):  # the LLM planner: its reply budget, and where it reports
        planner.retries = options.retries  # type: ignore[attr-defined]
        planner.ui = ui  # type: ignore[attr-defined]
        planner.progress = not options.json_out  # type: ignore[attr-defined]
    plan_record = None
    if spec is None:
        from .planning.plan import make_plan

        starting = (os.path.basename(options.command[0]),) if options.command else ()
        try:
            plan = make_plan(planner, intent, ctx, options.unsafe, starting)
        except MissingFeature as exc:  # a program for a machine that has it: shown, saved with -o
            _show_unloadable(exc, options, ui, catalog)
            raise
        spec, plan_record = plan.spec, plan.record()
    timings.mark("plan")
    check_pid(spec.filter.pid)
    conversation.intents.append(intent)
    total = max(1, options.retries + 1)
    failures: list[LoadFailure] = _rejected(planner)
    confirmed_text: str | None = None
    attempt = len(failures)
    source = getattr(planner, "name", "")

    def failed(failure: LoadFailure, program_text: str | None) -> ProgramSpec | None:
        """Record and show a failed attempt; the planner's corrected spec, or None when it has no other."""
        nonlocal attempt
        failures.append(failure)
        conversation.record(spec, failure, program_text)
        ui.attempt_failed(attempt, total, failure)
        revised = planner.revise(intent, spec, failure, ctx) if attempt < total else None
        rejected = _rejected(planner)  # replies the planner itself turned down count as attempts too
        failures.extend(rejected)
        attempt += len(rejected)
        return revised

    while attempt < total:
        attempt += 1
        spec = edits.fit_to_kernel(spec, catalog)
        try:
            backend = choose_backend(spec, options.backend, catalog)
        except UsageError:
            if attempt == total:
                raise
            backend = "bcc"
        failure = _catalog_failure(spec, catalog, backend)
        timings.mark("check")
        program: RenderedProgram | None = None
        if failure is None:
            try:
                program = render(spec, backend, catalog)
            except (ValueError, TypeError) as exc:
                failure = LoadFailure(backend=backend, stage="render", message=str(exc))
            timings.mark("render")
        if failure is not None or program is None:
            assert failure is not None
            revised = failed(failure, None)
            if revised is None:
                break
            spec = revised
            continue
        this = planned(spec, program, source, plan_record)
        explain = (lambda p: _explain(p, catalog, ui)) if options.explain else None
        try:
            outcome = show_and_run(this, options, ui, confirmed_text, explain)
        except LoadFailed as exc:
            timings.mark("load")
            revised = failed(exc.failure, program.text)
            if revised is None:
                break
            spec = revised
            confirmed_text = program.text if not options.yes else None
            continue
        if outcome is None:  # the user said no
            return TraceResult(ExitCode.OK, spec, program, failures)
        conversation.record(spec, None, program.text)
        result = finish(outcome, this, options, ui)
        result.attempts = failures
        return result
    listing = "\n".join(f"  {i}. {f.summary()}" for i, f in enumerate(failures, 1))
    raise GpttraceError(f"no program loaded after {len(failures)} attempt(s):\n{listing}", _failure_hint(failures),
                        ExitCode.TRACE_FAILED)


def _show_unloadable(exc: MissingFeature, options: TraceOptions, ui: UI, catalog: Catalog) -> None:
    """A program for a machine that has what this one lacks: shown, and saved with --dry-run -o; never loaded."""
    from .execute import save_program

    if not isinstance(exc.program, ProgramSpec):
        return
    program = render(exc.program, choose_backend(exc.program, options.backend, catalog), catalog)
    ui.talk("(the program a kernel with this feature would run; it is not loaded here)")
    ui.show_program(program, exc.program)
    if options.output and options.dry_run:
        save_program(program, options.output, ui)


def planned(spec: ProgramSpec, program: RenderedProgram, source: str,
            plan: dict[str, object] | None = None) -> PlannedProgram:
    if plan is not None:  # after a retry the spec that runs is another: say what it does
        from .planning.understand import describe

        plan = {**plan, "understood": describe(spec, plan.get("duration_s"),  # type: ignore[arg-type]
                                               str(plan.get("language") or "en"))}
    return PlannedProgram(program=program, spec=spec, source=source, overload_hint=_aggregate_hint(spec),
                          pid=spec.filter.pid, plan=plan)


def _aggregate_hint(spec: ProgramSpec) -> str:
    """What to ask for instead of a flood of events: a count by process of the same probe."""
    p = spec.probes[0]
    if p.kind == "tracepoint" and p.category == "syscalls":
        what = f"{(p.name or '').removeprefix('sys_enter_').removeprefix('sys_exit_')}() calls"
    elif p.kind == "tracepoint":
        what = f"{p.category}:{p.name}"
    else:
        what = f"{p.name or p.kind} events"
    return f'aggregate in the kernel instead, e.g. gpttrace "count {what} by process"'


def _failure_hint(failures: list[LoadFailure]) -> str:
    text = " ".join(f.message + " " + f.log for f in failures).lower()
    if "btf" in text:
        return ("this kernel has no BTF (/sys/kernel/btf/vmlinux), which kfunc/fentry probes need: ask for a "
                "tracepoint-based program, or use a kernel built with CONFIG_DEBUG_INFO_BTF=y")
    if "tracepoint not found" in text or "no such tracepoint" in text:
        return ("a probe of the program is not in this kernel (gone since it was planned? a module unloaded?): "
                "run again to plan anew, or see `gpttrace doctor`")
    return "try rephrasing, or --backend bcc / --backend bpftrace"


def _explain(program: RenderedProgram, catalog: Catalog, ui: UI) -> None:
    from .explain import explain_program

    # the program itself was just shown: explain it without listing it again
    ui.talk(explain_program(program.text, program.backend, catalog, color=ui.color, listing=False))


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
