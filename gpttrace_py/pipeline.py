"""One trace, end to end: intent → spec → (catalog check) → program → load/run → events, with retries.

Loading is the verifier check and happens once: the run itself loads and attaches. When the load fails,
the error goes back to the planner, which revises the spec; each attempt is shown on stderr.
"""

from __future__ import annotations

import os
import shlex
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ExitCode, GpttraceError, UsageError
from .kernel.catalog import Catalog
from .planning.base import Conversation, PlanContext, Planner
from .render.program import RenderedProgram
from .run.failure import LoadFailure
from .spec import ProgramSpec
from .ui import UI

BCC_ONLY_KINDS = {"xdp", "tc"}
DEFAULT_NONINTERACTIVE_SECONDS = 600.0  # run time of a one-shot nobody can Ctrl-C (GPTTRACE_MAX_SECONDS, --max-seconds)
DEFAULT_MAX_EVENT_RATE = 1000.0  # events/s a terminal is shown in a flood (GPTTRACE_MAX_EVENT_RATE; 0: no cap)


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
    max_seconds: float | None = None  # run time without -d/-c (0: none); default GPTTRACE_MAX_SECONDS, 600 s off a TTY
    stop_event: threading.Event | None = None  # lets a REPL stop a running trace
    session_log: Any = None  # a sessionlog.SessionLog: the runner appends events and aggregates as they arrive


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
    if catalog.features.bpftrace is None:
        from .kernel.features import find_bcc_python

        if (catalog.features.bcc_python or find_bcc_python()) is not None:
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
    from .run import LoadFailed, RunOptions, run_program

    safety.preflight(options.backend)  # root, capabilities, tracefs, the tracer: before planning anything
    _max_seconds(options, ui), _max_event_rate()  # and bad settings
    timings.mark("preflight")
    _log(options, "intent", intent)
    catalog = catalog or Catalog()
    conversation = conversation or Conversation()
    ctx = PlanContext(catalog=catalog, backend=options.backend, conversation=conversation)
    if hasattr(planner, "take_rejected"):  # the LLM planner: its reply budget, and where it reports
        planner.retries = options.retries  # type: ignore[attr-defined]
        planner.ui = ui  # type: ignore[attr-defined]
    if spec is None:
        spec = planner.plan(intent, ctx)
    timings.mark("plan")
    _check_pid(spec)
    conversation.intents.append(intent)
    total = max(1, options.retries + 1)
    failures: list[LoadFailure] = _rejected(planner)
    confirmed_text: str | None = None
    attempt = len(failures)

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
        uses = safety.check(program.text, program.backend, options.unsafe)  # on the text that will run
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
                question = f"This program CHANGES THE SYSTEM: {safety.describe(uses)}. Run it anyway?"
            if not ui.confirm(question):
                ui.talk("Not run.")
                return TraceResult(ExitCode.OK, spec, program, failures)
            confirmed_text = program.text
        elif uses and not options.dry_run:
            ui.warn(f"gpttrace: --unsafe: this program CHANGES THE SYSTEM: {safety.describe(uses)}")
        _log(options, "spec", spec)
        _log(options, "program", program)
        run_options = RunOptions(command=options.command, duration=options.duration, json=options.json_out,
                                 dry_run=options.dry_run, stop_event=options.stop_event, unsafe=bool(uses),
                                 max_event_rate=_max_event_rate(), drop_over_rate=_isatty(ui.stdout),
                                 overload_hint=_aggregate_hint(spec), session_log=options.session_log,
                                 tracer_name="bpftrace" if program.backend == "bpftrace" else "the BCC program")
        if run_options.duration is None and run_options.command is None and not options.dry_run:
            limit = _max_seconds(options, ui)
            if limit:
                run_options.duration = limit
                configured = options.max_seconds is not None or os.environ.get("GPTTRACE_MAX_SECONDS")
                why = "" if configured else "no terminal: "
                ui.talk(f"({why}tracing stops after {limit:g} s; set -d or --max-seconds to change)")
        timings.mark("show")
        try:
            outcome = run_program(program, run_options, ui.out, ui.warn)
            timings.ran(outcome.seconds_to_attach)
        except LoadFailed as exc:
            timings.mark("load")
            revised = failed(exc.failure, program.text)
            if revised is None:
                break
            spec = revised
            continue
        conversation.record(spec, None, program.text)
        if options.dry_run:
            ui.talk(f"The program loads and attaches on this kernel ({program.backend}).")
            return TraceResult(ExitCode.OK, spec, program, failures)
        if outcome.output_error:
            raise GpttraceError(f"cannot write the output: {outcome.output_error}",
                                "free some space, or send the output somewhere else", ExitCode.TRACE_FAILED)
        if outcome.interrupted:
            return TraceResult(ExitCode.INTERRUPTED, spec, program, failures, outcome.events)
        if outcome.crashed:
            raise GpttraceError(outcome.crashed, "see the messages above; nothing is left attached",
                                ExitCode.TRACE_FAILED)
        return TraceResult(ExitCode.OK, spec, program, failures, outcome.events)
    listing = "\n".join(f"  {i}. {f.summary()}" for i, f in enumerate(failures, 1))
    raise GpttraceError(f"no program loaded after {len(failures)} attempt(s):\n{listing}", _failure_hint(failures),
                        ExitCode.TRACE_FAILED)


def _max_seconds(options: TraceOptions, ui: UI) -> float | None:
    """The run time of a trace without -d/-c: --max-seconds, GPTTRACE_MAX_SECONDS, or 600 s off a terminal."""
    if options.max_seconds is not None:
        return options.max_seconds or None
    env = os.environ.get("GPTTRACE_MAX_SECONDS")
    if env:
        try:
            value = float(env)
        except ValueError:
            raise UsageError(f"GPTTRACE_MAX_SECONDS={env} is not a number of seconds",
                             "set it to a number (0 for no limit)") from None
        return value if value > 0 else None
    return None if ui.interactive else DEFAULT_NONINTERACTIVE_SECONDS


def _max_event_rate() -> float | None:
    env = os.environ.get("GPTTRACE_MAX_EVENT_RATE")
    if not env:
        return DEFAULT_MAX_EVENT_RATE
    try:
        value = float(env)
    except ValueError:
        raise UsageError(f"GPTTRACE_MAX_EVENT_RATE={env} is not a number of events per second",
                         "set it to a number (0 for no cap)") from None
    return value if value > 0 else None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


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


def _log(options: TraceOptions, what: str, value: Any) -> None:
    log = options.session_log
    fn = getattr(log, what, None) if log is not None else None
    if fn is None:
        return
    try:
        fn(value)
    except Exception:  # a log must never stop a trace
        pass


def _check_pid(spec: ProgramSpec) -> None:
    pid = spec.filter.pid
    if pid is not None and not Path(f"/proc/{pid}").exists():
        raise UsageError(f"no process with pid {pid} is running",
                         "check the pid with `ps -e`, or filter by process name instead")


def _save(program: RenderedProgram, path: str, ui: UI) -> None:
    try:
        Path(path).write_text(program.text)
    except OSError as exc:
        raise GpttraceError(f"cannot write {path}: {exc.strerror}", "choose another -o path", ExitCode.USAGE) from None
    ui.talk(f"(program saved to {path})")


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
