"""The trace service: one trace, end to end, for the one-shot command, chat, ``examples run`` and MCP alike.

plan → check → render → show/ask → run → remember. Loading is the verifier check and happens once: the run
itself loads and attaches. When the load fails, the error goes back to the planner, which revises the spec;
each attempt is shown on stderr. A request the planner remembers (remember.py) runs its remembered program
without planning; while a request is planned, bpftrace is started ahead to load its libraries meanwhile.
Nothing is imported here at start that a remembered program does not need (the spec models, the templates).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import run, safety, timings
from ..errors import ExitCode, GpttraceError, MissingFeature, UsageError
from ..planning.base import BasicPlanner, Conversation, PlanContext, Planner, PlannerBase, ReplySettings, full_planner
from ..run import LoadFailed
from ..run.failure import LoadFailure
from .options import (
    PlannedProgram,
    TraceOptions,
    TraceResult,
    check_pid,
    check_settings,
    max_event_rate,
    max_seconds,
    save_program,
)

if TYPE_CHECKING:
    from ..kernel.catalog import Catalog
    from ..planning.plan import Plan
    from ..render.program import RenderedProgram
    from ..run import RunOutcome
    from ..spec import ProgramSpec
    from ..ui import UI


class TraceService:
    """Traces for one planner, one set of options and one UI. ``catalog`` and ``conversation`` are the caller's
    when it keeps them across traces (chat); ``planner`` may be None for a service that only runs programs
    it is given (``run_given``)."""

    def __init__(self, planner: BasicPlanner | None, options: TraceOptions, ui: UI, catalog: Catalog | None = None,
                 conversation: Conversation | None = None) -> None:
        self.planner: Planner | None = full_planner(planner) if planner is not None else None
        self.options = options
        self.ui = ui
        self.catalog = catalog
        self.conversation = conversation or Conversation()

    # -- the whole trace ----------------------------------------------------------------------------------------
    def trace(self, intent: str, spec: ProgramSpec | None = None) -> TraceResult:
        """Plan (unless a spec is given), then check, render, show, ask, run, and retry on load failures.

        With GPTTRACE_TIMINGS=1 the time of each phase is printed on stderr at the end (see timings.py)."""
        prestarted = self._prestart()
        try:
            if spec is None:
                result = self._recalled(intent)
                if result is not None:
                    return result
            measure = timings.begin()
            try:
                result = self._trace(intent, spec)
            finally:
                timings.end(measure)
            if spec is None:
                self._remember(intent, result)
            return result
        finally:
            if prestarted:
                from ..run.bpftrace import discard_prestarted

                discard_prestarted()

    def _prestart(self) -> bool:
        """Start bpftrace now, so that it loads its libraries while this process plans (run/bpftrace.py). One
        prestarted tracer serves a process: traces in other threads (chat's runs, MCP's calls) go without."""
        if self.options.backend == "bcc" or self.options.explain or threading.current_thread() is not \
                threading.main_thread():
            return False
        from ..run.bpftrace import prestart

        prestart(self.options.unsafe)
        return True

    def _trace(self, intent: str, given: ProgramSpec | None) -> TraceResult:
        from ..kernel.catalog import Catalog
        from ..planning import edits
        from . import backends

        options, ui = self.options, self.ui
        safety.preflight(options.backend)  # root, capabilities, tracefs, the tracer: before planning anything
        check_settings(options, ui)  # and bad settings
        timings.mark("preflight")
        self._log_intent(intent)
        catalog = self.catalog = self.catalog or Catalog()
        conversation = self.conversation
        ctx = PlanContext(catalog=catalog, backend=options.backend, conversation=conversation)
        planner = self.planner or FixedPlanner(given) if given is not None else self._planner()
        planner.prepare(ReplySettings(retries=options.retries, ui=ui, progress=not options.run.json))
        plan_record = None
        if given is None:
            plan = self.plan(planner, intent, ctx)
            spec, plan_record = plan.spec, plan.record()
        else:
            spec = given
        timings.mark("plan")
        check_pid(spec.filter.pid)
        conversation.intents.append(intent)
        total = max(1, options.retries + 1)
        failures: list[LoadFailure] = planner.take_rejected()
        confirmed_text: str | None = None
        attempt = len(failures)

        def failed(failure: LoadFailure, program_text: str | None) -> ProgramSpec | None:
            """Record and show a failed attempt; the planner's corrected spec, or None when it has no other."""
            nonlocal attempt
            failures.append(failure)
            conversation.record(spec, failure, program_text)
            ui.attempt_failed(attempt, total, failure)
            revised = planner.revise(intent, spec, failure, ctx) if attempt < total else None
            rejected = planner.take_rejected()  # replies the planner itself turned down count as attempts too
            failures.extend(rejected)
            attempt += len(rejected)
            return revised

        while attempt < total:
            attempt += 1
            spec = edits.fit_to_kernel(spec, catalog)
            try:
                backend = backends.choose_backend(spec, options.backend, catalog)
            except UsageError:
                if attempt == total:
                    raise
                backend = "bcc"
            failure = _catalog_failure(spec, catalog, backend)
            timings.mark("check")
            program: RenderedProgram | None = None
            if failure is None:
                program, failure = self.render(spec, backend)
            if failure is not None or program is None:
                assert failure is not None
                revised = failed(failure, None)
                if revised is None:
                    break
                spec = revised
                continue
            this = planned(spec, program, planner.name, plan_record)
            explain = self._explain if options.explain else None
            try:
                outcome = self.show_and_run(this, confirmed_text, explain)
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
            result = self.finish(outcome, this)
            result.attempts = failures
            return result
        listing = "\n".join(f"  {i}. {f.summary()}" for i, f in enumerate(failures, 1))
        raise GpttraceError(f"no program loaded after {len(failures)} attempt(s):\n{listing}", _failure_hint(failures),
                            ExitCode.TRACE_FAILED)

    def _planner(self) -> Planner:
        if self.planner is None:
            raise UsageError("nothing to trace: no planner and no program")
        return self.planner

    # -- plan ---------------------------------------------------------------------------------------------------
    def plan(self, planner: Planner, intent: str, ctx: PlanContext) -> Plan:
        """The request read, checked and planned (planning/plan.py); a program for a machine that has what this
        one lacks is shown (and saved with --dry-run -o) before the refusal."""
        from ..planning.plan import make_plan

        command = self.options.run.command
        starting = (os.path.basename(command[0]),) if command else ()
        try:
            return make_plan(planner, intent, ctx, self.options.unsafe, starting)
        except MissingFeature as exc:
            self._show_unloadable(exc, ctx.catalog)
            raise

    def _show_unloadable(self, exc: MissingFeature, catalog: Catalog) -> None:
        """A program for a machine that has what this one lacks: shown, and saved with --dry-run -o; never loaded."""
        from ..spec import ProgramSpec
        from . import backends

        if not isinstance(exc.program, ProgramSpec):
            return
        program = backends.render(exc.program, backends.choose_backend(exc.program, self.options.backend, catalog),
                                  catalog)
        self.ui.talk("(the program a kernel with this feature would run; it is not loaded here)")
        self.ui.show_program(program, exc.program)
        if self.options.output and self.options.run.dry_run:
            save_program(program, self.options.output, self.ui)

    # -- render -------------------------------------------------------------------------------------------------
    def render(self, spec: ProgramSpec, backend: str) -> tuple[RenderedProgram | None, LoadFailure | None]:
        """The program for ``backend``, or the failure that goes back to the planner when it cannot be rendered."""
        from . import backends

        assert self.catalog is not None
        try:
            program = backends.render(spec, backend, self.catalog)
        except (ValueError, TypeError) as exc:
            return None, LoadFailure(backend=backend, stage="render", message=str(exc))
        finally:
            timings.mark("render")
        return program, None

    # -- show, ask, run -----------------------------------------------------------------------------------------
    def show_and_run(self, planned: PlannedProgram, confirmed: str | None,
                     explain: Callable[[RenderedProgram], None] | None = None) -> RunOutcome | None:
        """Show the program, ask (unless -y; a text the user already accepted is not asked about again), and run
        it. None when the user said no. Raises ``run.LoadFailed`` when the program does not load."""
        options, ui = self.options, self.ui
        program = planned.program
        uses = safety.check(program.text, program.backend, options.unsafe)  # on the text that will run
        if planned.plan is not None:
            self.show_plan(planned.plan)
        if options.show_spec:
            ui.show_spec(planned.spec)
        ui.show_program(program, planned.spec, planned.source)
        if explain is not None:
            explain(program)
        dry_run = options.run.dry_run
        if not dry_run and not options.yes and confirmed != program.text:
            if not ui.interactive:
                raise UsageError("not running the program without confirmation",
                                 "pass -y/--yes to run it, or --dry-run to only check that it loads")
            question = "Run this program?"
            if uses:
                question = f"This program CHANGES THE SYSTEM: {safety.describe(uses)}. Run it anyway?"
            if not ui.confirm(question):
                ui.talk("Not run.")
                return None
        elif uses and not dry_run:
            ui.warn(f"gpttrace: --unsafe: this program CHANGES THE SYSTEM: {safety.describe(uses)}")
        if options.output:  # only once the run is accepted (or only checked, with --dry-run)
            save_program(program, options.output, ui)
        log = options.log
        if log is not None:
            log.spec(planned.spec)
            log.program(program)
        duration = options.run.duration
        if duration is None and planned.plan is not None and planned.plan.get("duration_s"):
            duration = float(planned.plan["duration_s"])  # "for 2 seconds", asked in words
        run_options = dataclasses.replace(
            options.run, duration=duration, unsafe=bool(uses), max_event_rate=max_event_rate(),
            drop_over_rate=_isatty(ui.stdout), overload_hint=planned.overload_hint,
            tracer_name="bpftrace" if program.backend == "bpftrace" else "the BCC program")
        if run_options.duration is None and run_options.command is None and not dry_run:
            limit = max_seconds(options, ui)
            if limit:
                run_options.duration = limit
                configured = options.max_seconds is not None or os.environ.get("GPTTRACE_MAX_SECONDS")
                why = "" if configured else "no terminal: "
                ui.talk(f"({why}tracing stops after {limit:g} s; set -d or --max-seconds to change)")
        timings.mark("show")
        outcome = run.run_program(program, run_options, ui.out, ui.warn)
        timings.ran(outcome.seconds_to_attach, outcome.end_cut)
        return outcome

    def show_plan(self, record: dict[str, Any]) -> None:
        """What was understood, on stderr before the program (and first in --json): the user sees what the program
        will do, and what of the request it leaves out."""
        from ..planning.lexicon import load

        ui = self.ui
        say = load(str(record.get("language") or "en")).say
        if record.get("read_as"):
            ui.talk(f"({record['read_as']})")
        ui.talk(f"{say('understood')}: {record['understood']}")
        if record.get("not_honoured"):
            ui.warn(f"{say('not_honoured')}: {', '.join(record['not_honoured'])}")
        for note in record.get("notes") or []:
            ui.talk(f"{say('note')}: {note}")
        if self.options.run.json:
            ui.out(json.dumps(record, ensure_ascii=False))

    def _explain(self, program: RenderedProgram) -> None:
        from ..explain import explain_program

        assert self.catalog is not None
        # the program itself was just shown: explain it without listing it again
        self.ui.talk(explain_program(program.text, program.backend, self.catalog, color=self.ui.color, listing=False))

    def finish(self, outcome: RunOutcome, planned: PlannedProgram) -> TraceResult:
        """The result of a run that loaded: its exit status, or the error that says how it went wrong."""
        spec = None if isinstance(planned.spec, dict) else planned.spec
        if self.options.run.dry_run:
            self.ui.talk(f"The program loads and attaches on this kernel ({planned.program.backend}).")
            return TraceResult(ExitCode.OK, spec, planned.program, planned=planned, outcome=outcome)
        if outcome.output_error:
            raise GpttraceError(f"cannot write the output: {outcome.output_error}",
                                "free some space, or send the output somewhere else", ExitCode.TRACE_FAILED)
        if outcome.interrupted:
            return TraceResult(ExitCode.INTERRUPTED, spec, planned.program, events=outcome.events, planned=planned,
                               outcome=outcome)
        if outcome.crashed:
            raise GpttraceError(outcome.crashed, "see the messages above" + _nothing_left(planned.program),
                                ExitCode.TRACE_FAILED)
        return TraceResult(ExitCode.OK, spec, planned.program, events=outcome.events, planned=planned,
                           outcome=outcome)

    def run_given(self, planned: PlannedProgram) -> TraceResult:
        """Run a program given ready to run (an MCP client's), with -y: checked, shown, run; never planned."""
        safety.preflight(self.options.backend)
        check_settings(self.options, self.ui)
        outcome = self.show_and_run(planned, None)
        assert outcome is not None  # -y: never asked
        return self.finish(outcome, planned)

    # -- remember -----------------------------------------------------------------------------------------------
    def _recalled(self, intent: str) -> TraceResult | None:
        """The run of the program the planner remembers for this request, as a planned one would run; None when
        it remembers none, or it does not load any more (then it is forgotten, and the request planned anew)."""
        if self.options.explain or self.planner is None:
            return None
        backend = self.options.backend
        remembered = self.planner.recall(intent, backend)
        if remembered is None:
            return None
        measure = timings.begin()
        try:
            safety.preflight(backend)
            check_settings(self.options, self.ui)
            timings.mark("preflight")
            self._log_intent(intent)
            check_pid(remembered.pid)
            timings.mark("plan")
            try:
                outcome = self.show_and_run(remembered, None)
            except LoadFailed as exc:
                timings.mark("load")
                self.ui.warn(f"(the program remembered for this request does not load any more: "
                             f"{exc.failure.summary()}; planning it again)")
                self.planner.stale(intent, backend)
                return None
            if outcome is None:
                return TraceResult(ExitCode.OK, None, remembered.program)
            return self.finish(outcome, remembered)
        finally:
            timings.end(measure)

    def _remember(self, intent: str, result: TraceResult) -> None:
        """After a run whose program loaded: the planner is told, for the next time the same request comes."""
        if result.planned is not None and self.planner is not None and not self.options.explain:
            self.planner.loaded(intent, self.options.backend, result.planned)

    def _log_intent(self, intent: str) -> None:
        log = self.options.log
        if log is not None:
            log.intent(intent)


def trace(intent: str, planner: BasicPlanner, options: TraceOptions, ui: UI, catalog: Catalog | None = None,
          conversation: Conversation | None = None, spec: ProgramSpec | None = None) -> TraceResult:
    """One trace by a service made for it: ``TraceService(planner, options, ui, ...).trace(intent, spec)``."""
    return TraceService(planner, options, ui, catalog, conversation).trace(intent, spec)


def run_spec(spec: ProgramSpec, *, backend: str = "auto", yes: bool = False, command: list[str] | None = None,
             duration: float | None = None, json_out: bool = False, dry_run: bool = False,
             ui: UI | None = None) -> int:
    """Run a given spec like a one-shot trace (``gpttrace examples run``); returns the exit code."""
    from ..ui import UI

    options = TraceOptions(backend=backend, yes=yes, command=command, duration=duration, json_out=json_out,
                           dry_run=dry_run, retries=0)
    return int(TraceService(FixedPlanner(spec), options, ui or UI()).trace(spec.title, spec).code)


class FixedPlanner(PlannerBase):
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


def planned(spec: ProgramSpec, program: RenderedProgram, source: str,
            plan: dict[str, Any] | None = None) -> PlannedProgram:
    if plan is not None:  # after a retry the spec that runs is another: say what it does
        from ..planning.understand import describe

        plan = {**plan, "understood": describe(spec, plan.get("duration_s"), str(plan.get("language") or "en"))}
    return PlannedProgram(program=program, spec=spec, source=source, overload_hint=_aggregate_hint(spec),
                          pid=spec.filter.pid, plan=plan)


def _catalog_failure(spec: ProgramSpec, catalog: Catalog, backend: str) -> LoadFailure | None:
    problems = catalog.check_spec(spec)
    if not problems:
        return None
    return LoadFailure(backend=backend, stage="catalog", message="; ".join(str(p) for p in problems),
                       log="\n".join(str(p) for p in problems))


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


def _nothing_left(program: RenderedProgram) -> str:
    """'nothing is left attached' when that is sure: probes and bpf links (XDP, tcx) go when the tracer's
    descriptors close, however it ended; a tc program on a kernel without tcx is a clsact filter, which would
    stay (the program says so when it falls back to one), so nothing is claimed for tc programs."""
    return "" if "attach_tc(" in program.text else "; nothing is left attached"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
